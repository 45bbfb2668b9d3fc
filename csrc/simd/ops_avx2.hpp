// AVX2 + FMA operations: 8 x 32-bit / 4 x 64-bit lanes. Compiled only in kernels_avx2.cpp.
#pragma once
#include <immintrin.h>
#include <cstdint>

namespace weightfill::simd {

struct OpsAvx2 {
    static constexpr int L = 8;
    static constexpr int LD = 4;
    static constexpr bool kMaskedZero = false;  // zero_where uses its portable loop
    static constexpr bool kHasMasks = false;    // kernels-inl.hpp's generic forms
    using U = __m256i;
    using F = __m256;
    using Q = __m256i;
    using D = __m256d;

    // ---- 32-bit integer
    static U set1(uint32_t x) { return _mm256_set1_epi32(int(x)); }
    static U iota_plus(uint32_t b) { return _mm256_add_epi32(set1(b), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
    static U add32(U a, U b) { return _mm256_add_epi32(a, b); }
    static U sub32(U a, U b) { return _mm256_sub_epi32(a, b); }
    static U xor32(U a, U b) { return _mm256_xor_si256(a, b); }
    static U xor3(U a, U b, U c) { return _mm256_xor_si256(_mm256_xor_si256(a, b), c); }
    static U and32(U a, U b) { return _mm256_and_si256(a, b); }
    static U or32(U a, U b) { return _mm256_or_si256(a, b); }
    static U sel32(U m, U a, U b) { return _mm256_blendv_epi8(b, a, m); }
    template <int N> static U srl32(U a) { return _mm256_srli_epi32(a, N); }
    template <int N> static U sll32(U a) { return _mm256_slli_epi32(a, N); }
    static U cmpgt_i32(U a, U b) { return _mm256_cmpgt_epi32(a, b); }
    // 32x32->64 products of all 8 lanes: even lanes from one vpmuludq, odd lanes from a second.
    static void mulhilo(U a, uint32_t m, U& hi, U& lo) {
        const __m256i mv = _mm256_set1_epi32(int(m));
        const __m256i pe = _mm256_mul_epu32(a, mv);
        const __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), mv);
        hi = _mm256_blend_epi32(_mm256_shuffle_epi32(pe, 0xF5), po, 0xAA);
        lo = _mm256_blend_epi32(pe, _mm256_shuffle_epi32(po, 0xA0), 0xAA);
    }
    static U loadu(const uint32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
    // dst[4*l + k] = x_k[l]: blocks back in counter order.
    static void store4_interleaved(uint32_t* dst, U x0, U x1, U x2, U x3) {
        const __m256i t0 = _mm256_unpacklo_epi32(x0, x1), t1 = _mm256_unpackhi_epi32(x0, x1);
        const __m256i t2 = _mm256_unpacklo_epi32(x2, x3), t3 = _mm256_unpackhi_epi32(x2, x3);
        const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
        const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
        __m256i* d = reinterpret_cast<__m256i*>(dst);
        _mm256_storeu_si256(d + 0, _mm256_permute2x128_si256(u0, u1, 0x20));
        _mm256_storeu_si256(d + 1, _mm256_permute2x128_si256(u2, u3, 0x20));
        _mm256_storeu_si256(d + 2, _mm256_permute2x128_si256(u0, u1, 0x31));
        _mm256_storeu_si256(d + 3, _mm256_permute2x128_si256(u2, u3, 0x31));
    }

    // ---- float32
    static F setf(float x) { return _mm256_set1_ps(x); }
    static F cvt_i32(U a) { return _mm256_cvtepi32_ps(a); }
    static F bitcast_f(U a) { return _mm256_castsi256_ps(a); }
    static U bitcast_u(F a) { return _mm256_castps_si256(a); }
    static F addf(F a, F b) { return _mm256_add_ps(a, b); }
    static F subf(F a, F b) { return _mm256_sub_ps(a, b); }
    static F mulf(F a, F b) { return _mm256_mul_ps(a, b); }
    static F divf(F a, F b) { return _mm256_div_ps(a, b); }
    static F fmaf_(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
    static F minf(F a, F b) { return _mm256_min_ps(a, b); }  // operands never NaN
    static F sqrtf_(F a) { return _mm256_sqrt_ps(a); }

    // ---- 64-bit integer
    static Q set1q(uint64_t x) { return _mm256_set1_epi64x(int64_t(x)); }
    static Q add64(Q a, Q b) { return _mm256_add_epi64(a, b); }
    static Q sub64(Q a, Q b) { return _mm256_sub_epi64(a, b); }
    static Q xor64(Q a, Q b) { return _mm256_xor_si256(a, b); }
    static Q and64(Q a, Q b) { return _mm256_and_si256(a, b); }
    static Q or64(Q a, Q b) { return _mm256_or_si256(a, b); }
    static Q sel64(Q m, Q a, Q b) { return _mm256_blendv_epi8(b, a, m); }
    template <int N> static Q srl64(Q a) { return _mm256_srli_epi64(a, N); }
    template <int N> static Q sll64(Q a) { return _mm256_slli_epi64(a, N); }
    static Q cmpgt_i64(Q a, Q b) { return _mm256_cmpgt_epi64(a, b); }
    static Q loadq(const uint32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
    static void deinterleave64(Q a, Q b, Q& even, Q& odd) {
        const __m256i pa = _mm256_permute4x64_epi64(a, 0xD8), pb = _mm256_permute4x64_epi64(b, 0xD8);
        even = _mm256_permute2x128_si256(pa, pb, 0x20);
        odd = _mm256_permute2x128_si256(pa, pb, 0x31);
    }

    // ---- float64
    static D setd(double x) { return _mm256_set1_pd(x); }
    // Exact for a < 2^53: each 32-bit half becomes a double through the 2^52 bias trick
    // (exact), and hi * 2^32 + lo is representable, so the fma does not round.
    static D cvt_u53(Q a) {
        const __m256i bias = _mm256_set1_epi64x(0x4330000000000000LL);
        const __m256d two52 = _mm256_set1_pd(4503599627370496.0);
        const __m256d lo = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(
            _mm256_and_si256(a, _mm256_set1_epi64x(0xFFFFFFFFLL)), bias)), two52);
        const __m256d hi = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(
            _mm256_srli_epi64(a, 32), bias)), two52);
        return _mm256_fmadd_pd(hi, _mm256_set1_pd(4294967296.0), lo);
    }
    static D bitcast_d(Q a) { return _mm256_castsi256_pd(a); }
    static Q bitcast_q(D a) { return _mm256_castpd_si256(a); }
    static D addd(D a, D b) { return _mm256_add_pd(a, b); }
    static D subd(D a, D b) { return _mm256_sub_pd(a, b); }
    static D muld(D a, D b) { return _mm256_mul_pd(a, b); }
    static D divd(D a, D b) { return _mm256_div_pd(a, b); }
    static D fmad(D a, D b, D c) { return _mm256_fmadd_pd(a, b, c); }
    static D mind(D a, D b) { return _mm256_min_pd(a, b); }
    static D sqrtd(D a) { return _mm256_sqrt_pd(a); }
    static void interleave64(D even, D odd, D& lo, D& hi) {
        const __m256d t0 = _mm256_unpacklo_pd(even, odd), t1 = _mm256_unpackhi_pd(even, odd);
        lo = _mm256_permute2f128_pd(t0, t1, 0x20);
        hi = _mm256_permute2f128_pd(t0, t1, 0x31);
    }
    static void stored(double* p, D a) { _mm256_storeu_pd(p, a); }
    // ---- truncated normal helpers
    // Exact: flip the sign bit to make a signed int, convert, add 2^31 back.
    static D cvt_u32_to_d(const uint32_t* p) {
        const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m256d s = _mm256_cvtepi32_pd(_mm_xor_si128(w, _mm_set1_epi32(int(0x80000000u))));
        return _mm256_add_pd(s, _mm256_set1_pd(2147483648.0));
    }
    static void store_d_as_f(float* p, D a) { _mm_storeu_ps(p, _mm256_cvtpd_ps(a)); }
    static Q cmplt_d(D a, D b) { return _mm256_castpd_si256(_mm256_cmp_pd(a, b, _CMP_LT_OQ)); }
    static bool any64(Q m) { return !_mm256_testz_si256(m, m); }
    static D maxd(D a, D b) { return _mm256_max_pd(a, b); }
    static U cmplt_f(F a, F b) { return _mm256_castps_si256(_mm256_cmp_ps(a, b, _CMP_LT_OQ)); }
    static bool any32(U m) { return !_mm256_testz_si256(m, m); }
    static F maxf(F a, F b) { return _mm256_max_ps(a, b); }
    // ---- 16-bit outputs (round to nearest-even)
    static F loadf(const float* p) { return _mm256_loadu_ps(p); }
    static void store_f16(uint16_t* p, F a) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    static void store_bf16(uint16_t* p, F a) {
        __m256i b = _mm256_castps_si256(a);
        b = _mm256_add_epi32(b, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1))));
        b = _mm256_srli_epi32(b, 16);
        const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p), packed);
    }
    static U bf16_bits(F a) {
        const __m256i b = _mm256_castps_si256(a);
        return _mm256_srli_epi32(_mm256_add_epi32(b, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF),
            _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1)))), 16);
    }
    static void interleave32(U a, U b, U& lo, U& hi) {  // lo = a0 b0 a1 b1 .., hi = a4 b4 ..
        const __m256i t0 = _mm256_unpacklo_epi32(a, b), t1 = _mm256_unpackhi_epi32(a, b);
        lo = _mm256_permute2x128_si256(t0, t1, 0x20);
        hi = _mm256_permute2x128_si256(t0, t1, 0x31);
    }
    static void storeu32(uint32_t* p, U a) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), a); }
    // Bit j: k[j] < t, for j in 0 .. 63 (sparse keys, stream-spec 3.9). AVX2 has no unsigned
    // byte compare: k >= t exactly when max(k, t) == k.
    static uint64_t below64(const uint8_t* k, uint8_t t) {
        const __m256i tv = _mm256_set1_epi8(char(t));
        uint64_t w = 0;
        for (int h = 0; h < 2; ++h) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + 32 * h));
            w |= uint64_t(~uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_max_epu8(v, tv), v)))) << (32 * h);
        }
        return w;
    }
};

}  // namespace weightfill::simd
