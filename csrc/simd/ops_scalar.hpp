// One-lane "vector" operations for the portable kernel. Same names and semantics as
// ops_avx2.hpp / ops_avx512.hpp so that kernels-inl.hpp is written once.
// std::fma is correctly rounded (glibc uses the FMA instruction where the CPU has it and an
// exact software fallback elsewhere), so this path gives the same bits as the SIMD ones.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace weightfill::simd {

struct OpsScalar {
    static constexpr int L = 1;   // 32-bit lanes
    static constexpr int LD = 1;  // 64-bit lanes
    static constexpr bool kMaskedZero = false;  // zero_where uses its portable loop
    static constexpr bool kHasMasks = false;    // kernels-inl.hpp's generic forms
    using U = uint32_t;
    using F = float;
    using Q = uint64_t;
    using D = double;

    // ---- 32-bit integer
    static U set1(uint32_t x) { return x; }
    static U iota_plus(uint32_t base) { return base; }
    static U add32(U a, U b) { return a + b; }
    static U sub32(U a, U b) { return a - b; }
    static U xor32(U a, U b) { return a ^ b; }
    static U xor3(U a, U b, U c) { return a ^ b ^ c; }
    static U and32(U a, U b) { return a & b; }
    static U or32(U a, U b) { return a | b; }
    static U sel32(U m, U a, U b) { return (m & a) | (~m & b); }
    template <int N> static U srl32(U a) { return a >> N; }
    template <int N> static U sll32(U a) { return a << N; }
    static U cmpgt_i32(U a, U b) { return int32_t(a) > int32_t(b) ? ~0u : 0u; }
    static void mulhilo(U a, uint32_t m, U& hi, U& lo) {
        const uint64_t p = uint64_t{a} * m;
        hi = uint32_t(p >> 32);
        lo = uint32_t(p);
    }
    static U loadu(const uint32_t* p) { return *p; }
    // memcpy, not assignment: dst is often float storage, and the SIMD stores are alias-safe.
    static void store4_interleaved(uint32_t* dst, U x0, U x1, U x2, U x3) {
        const uint32_t w[4] = {x0, x1, x2, x3};
        std::memcpy(dst, w, sizeof w);
    }

    // ---- float32
    static F setf(float x) { return x; }
    static F cvt_i32(U a) { return static_cast<float>(int32_t(a)); }
    static F bitcast_f(U a) { float f; std::memcpy(&f, &a, 4); return f; }
    static U bitcast_u(F a) { uint32_t u; std::memcpy(&u, &a, 4); return u; }
    static F addf(F a, F b) { return a + b; }
    static F subf(F a, F b) { return a - b; }
    static F mulf(F a, F b) { return a * b; }
    static F divf(F a, F b) { return a / b; }
    static F fmaf_(F a, F b, F c) { return std::fma(a, b, c); }
    static F minf(F a, F b) { return a < b ? a : b; }  // operands never NaN
    static F sqrtf_(F a) { return std::sqrt(a); }

    // ---- 64-bit integer
    static Q set1q(uint64_t x) { return x; }
    static Q add64(Q a, Q b) { return a + b; }
    static Q sub64(Q a, Q b) { return a - b; }
    static Q xor64(Q a, Q b) { return a ^ b; }
    static Q and64(Q a, Q b) { return a & b; }
    static Q or64(Q a, Q b) { return a | b; }
    static Q sel64(Q m, Q a, Q b) { return (m & a) | (~m & b); }
    template <int N> static Q srl64(Q a) { return a >> N; }
    template <int N> static Q sll64(Q a) { return a << N; }
    static Q cmpgt_i64(Q a, Q b) { return int64_t(a) > int64_t(b) ? ~uint64_t{0} : 0; }
    static Q loadq(const uint32_t* p) { uint64_t q; std::memcpy(&q, p, 8); return q; }
    static void deinterleave64(Q a, Q b, Q& even, Q& odd) { even = a; odd = b; }

    // ---- float64
    static D setd(double x) { return x; }
    static D cvt_u53(Q a) { return static_cast<double>(a); }  // exact: a < 2^53
    static D bitcast_d(Q a) { double d; std::memcpy(&d, &a, 8); return d; }
    static Q bitcast_q(D a) { uint64_t q; std::memcpy(&q, &a, 8); return q; }
    static D addd(D a, D b) { return a + b; }
    static D subd(D a, D b) { return a - b; }
    static D muld(D a, D b) { return a * b; }
    static D divd(D a, D b) { return a / b; }
    static D fmad(D a, D b, D c) { return std::fma(a, b, c); }
    static D mind(D a, D b) { return a < b ? a : b; }
    static D sqrtd(D a) { return std::sqrt(a); }
    static void interleave64(D even, D odd, D& lo, D& hi) { lo = even; hi = odd; }
    static void stored(double* p, D a) { *p = a; }
    // ---- truncated normal helpers
    static D cvt_u32_to_d(const uint32_t* p) { return static_cast<double>(*p); }
    static void store_d_as_f(float* p, D a) { *p = static_cast<float>(a); }
    static Q cmplt_d(D a, D b) { return a < b ? ~uint64_t{0} : 0; }
    static bool any64(Q m) { return m != 0; }
    static D maxd(D a, D b) { return a > b ? a : b; }  // operands never NaN
    static U cmplt_f(F a, F b) { return a < b ? ~0u : 0u; }
    static bool any32(U m) { return m != 0; }
    static F maxf(F a, F b) { return a > b ? a : b; }
    // ---- 16-bit outputs (round to nearest-even, as F16C and ml_dtypes do)
    static F loadf(const float* p) { return *p; }
    static void store_bf16(uint16_t* p, F a) {
        uint32_t b = bitcast_u(a);
        b += 0x7FFFu + ((b >> 16) & 1u);  // finite inputs only
        *p = uint16_t(b >> 16);
    }
    static void store_f16(uint16_t* p, F a) {
        const uint32_t b = bitcast_u(a);
        const uint32_t sign = (b >> 16) & 0x8000u, mant = b & 0x7FFFFFu;
        const int e = int((b >> 23) & 0xFFu) - 127 + 15;
        uint32_t h;
        if (e >= 31) {
            h = 0x7C00u;  // overflow: infinity (finite inputs only)
        } else if (e >= 1) {
            h = (uint32_t(e) << 10) | (mant >> 13);
            const uint32_t rem = mant & 0x1FFFu;
            if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry may make it inf
        } else {
            const int shift = 14 - e;  // subnormal half: value = m * 2^-24 after the shift
            if (shift > 24) {
                h = 0;
            } else {
                const uint32_t m = mant | 0x800000u;
                h = m >> shift;
                const uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
                if (rem > half || (rem == half && (h & 1u))) ++h;
            }
        }
        *p = uint16_t(sign | h);
    }
    static U bf16_bits(F a) {  // round to nearest-even, as store_bf16; result in the low half
        const uint32_t b = bitcast_u(a);
        return (b + 0x7FFFu + ((b >> 16) & 1u)) >> 16;
    }
    static void interleave32(U a, U b, U& lo, U& hi) { lo = a; hi = b; }
    static void storeu32(uint32_t* p, U a) { std::memcpy(p, &a, 4); }
    // Bit j: k[j] < t, for j in 0 .. 63 (sparse keys, stream-spec 3.9).
    static uint64_t below64(const uint8_t* k, uint8_t t) {
        uint64_t w = 0;
        for (int j = 0; j < 64; ++j) w |= uint64_t{k[j] < t} << j;
        return w;
    }
};

}  // namespace weightfill::simd
