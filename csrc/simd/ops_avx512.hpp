// AVX-512 (F, DQ, BW, VL) operations: 16 x 32-bit / 8 x 64-bit lanes.
// Compiled only in kernels_avx512.cpp.
#pragma once
#include <immintrin.h>
#include <cstdint>

namespace weightfill::simd {

struct OpsAvx512 {
    static constexpr int L = 16;
    static constexpr int LD = 8;
    using U = __m512i;
    using F = __m512;
    using Q = __m512i;
    using D = __m512d;

    // ---- 32-bit integer
    static U set1(uint32_t x) { return _mm512_set1_epi32(int(x)); }
    static U iota_plus(uint32_t b) {
        return _mm512_add_epi32(set1(b), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    }
    static U add32(U a, U b) { return _mm512_add_epi32(a, b); }
    static U sub32(U a, U b) { return _mm512_sub_epi32(a, b); }
    static U xor32(U a, U b) { return _mm512_xor_si512(a, b); }
    static U xor3(U a, U b, U c) { return _mm512_ternarylogic_epi32(a, b, c, 0x96); }  // a ^ b ^ c
    static U and32(U a, U b) { return _mm512_and_si512(a, b); }
    static U or32(U a, U b) { return _mm512_or_si512(a, b); }
    // (m & a) | (~m & b) in one vpternlogd: imm 0xCA is the truth table of "m ? a : b".
    static U sel32(U m, U a, U b) { return _mm512_ternarylogic_epi32(m, a, b, 0xCA); }
    template <int N> static U srl32(U a) { return _mm512_srli_epi32(a, N); }
    template <int N> static U sll32(U a) { return _mm512_slli_epi32(a, N); }
    static U cmpgt_i32(U a, U b) { return _mm512_movm_epi32(_mm512_cmpgt_epi32_mask(a, b)); }
    static void mulhilo(U a, uint32_t m, U& hi, U& lo) {
        const __m512i mv = _mm512_set1_epi32(int(m));
        const __m512i pe = _mm512_mul_epu32(a, mv);
        const __m512i po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), mv);
        // Even lanes take the high halves of pe, odd lanes the low halves of po, each with one
        // masked in-lane shuffle: dword pattern (1,1,3,3) resp. (0,0,2,2) of each 128-bit lane.
        hi = _mm512_mask_shuffle_epi32(po, 0x5555, pe, _MM_PERM_DDBB);
        lo = _mm512_mask_shuffle_epi32(pe, 0xAAAA, po, _MM_PERM_CCAA);
    }
    static U loadu(const uint32_t* p) { return _mm512_loadu_si512(p); }
    // dst[4*l + k] = x_k[l]: a 4 x 16 transpose, first within 128-bit lanes, then across them.
    static void store4_interleaved(uint32_t* dst, U x0, U x1, U x2, U x3) {
        U y[4];
        interleave4(x0, x1, x2, x3, y);
        for (int i = 0; i < 4; ++i) _mm512_storeu_si512(dst + 16 * i, y[i]);
    }
    // The same, with element k of dst[0 .. 64) all-zero bits where bit k of z is set (zeroed in
    // registers: the sparse fill's zeros cost no second pass over the row).
    static void store4_interleaved_zero(uint32_t* dst, U x0, U x1, U x2, U x3, uint64_t z) {
        U y[4];
        interleave4(x0, x1, x2, x3, y);
        for (int i = 0; i < 4; ++i) _mm512_storeu_si512(dst + 16 * i, _mm512_maskz_mov_epi32(__mmask16(~(z >> (16 * i))), y[i]));
    }
    // y[0 .. 4): the 64 words of x0 .. x3 in block order (word k of block l at 4 l + k).
    static void interleave4(U x0, U x1, U x2, U x3, U* y) {
        const __m512i t0 = _mm512_unpacklo_epi32(x0, x1), t1 = _mm512_unpackhi_epi32(x0, x1);
        const __m512i t2 = _mm512_unpacklo_epi32(x2, x3), t3 = _mm512_unpackhi_epi32(x2, x3);
        // u_k holds blocks k, k+4, k+8, k+12 in its four 128-bit lanes.
        const __m512i u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
        const __m512i u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
        const __m512i v0 = _mm512_shuffle_i32x4(u0, u1, _MM_SHUFFLE(2, 0, 2, 0));  // 0 8 1 9
        const __m512i v1 = _mm512_shuffle_i32x4(u0, u1, _MM_SHUFFLE(3, 1, 3, 1));  // 4 12 5 13
        const __m512i v2 = _mm512_shuffle_i32x4(u2, u3, _MM_SHUFFLE(2, 0, 2, 0));  // 2 10 3 11
        const __m512i v3 = _mm512_shuffle_i32x4(u2, u3, _MM_SHUFFLE(3, 1, 3, 1));  // 6 14 7 15
        y[0] = _mm512_shuffle_i32x4(v0, v2, _MM_SHUFFLE(2, 0, 2, 0));
        y[1] = _mm512_shuffle_i32x4(v1, v3, _MM_SHUFFLE(2, 0, 2, 0));
        y[2] = _mm512_shuffle_i32x4(v0, v2, _MM_SHUFFLE(3, 1, 3, 1));
        y[3] = _mm512_shuffle_i32x4(v1, v3, _MM_SHUFFLE(3, 1, 3, 1));
    }

    // ---- float32
    static F setf(float x) { return _mm512_set1_ps(x); }
    static F cvt_i32(U a) { return _mm512_cvtepi32_ps(a); }
    static F bitcast_f(U a) { return _mm512_castsi512_ps(a); }
    static U bitcast_u(F a) { return _mm512_castps_si512(a); }
    static F addf(F a, F b) { return _mm512_add_ps(a, b); }
    static F subf(F a, F b) { return _mm512_sub_ps(a, b); }
    static F mulf(F a, F b) { return _mm512_mul_ps(a, b); }
    static F divf(F a, F b) { return _mm512_div_ps(a, b); }
    static F fmaf_(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
    static F minf(F a, F b) { return _mm512_min_ps(a, b); }  // operands never NaN
    static F sqrtf_(F a) { return _mm512_sqrt_ps(a); }

    // ---- 64-bit integer
    static Q set1q(uint64_t x) { return _mm512_set1_epi64(int64_t(x)); }
    static Q add64(Q a, Q b) { return _mm512_add_epi64(a, b); }
    static Q sub64(Q a, Q b) { return _mm512_sub_epi64(a, b); }
    static Q xor64(Q a, Q b) { return _mm512_xor_si512(a, b); }
    static Q and64(Q a, Q b) { return _mm512_and_si512(a, b); }
    static Q or64(Q a, Q b) { return _mm512_or_si512(a, b); }
    static Q sel64(Q m, Q a, Q b) { return _mm512_ternarylogic_epi64(m, a, b, 0xCA); }
    template <int N> static Q srl64(Q a) { return _mm512_srli_epi64(a, N); }
    template <int N> static Q sll64(Q a) { return _mm512_slli_epi64(a, N); }
    static Q cmpgt_i64(Q a, Q b) { return _mm512_movm_epi64(_mm512_cmpgt_epi64_mask(a, b)); }
    static Q loadq(const uint32_t* p) { return _mm512_loadu_si512(p); }
    static void deinterleave64(Q a, Q b, Q& even, Q& odd) {
        even = _mm512_permutex2var_epi64(a, _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), b);
        odd = _mm512_permutex2var_epi64(a, _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15), b);
    }

    // ---- float64
    static D setd(double x) { return _mm512_set1_pd(x); }
    static D cvt_u53(Q a) { return _mm512_cvtepu64_pd(a); }  // exact: a < 2^53
    static D bitcast_d(Q a) { return _mm512_castsi512_pd(a); }
    static Q bitcast_q(D a) { return _mm512_castpd_si512(a); }
    static D addd(D a, D b) { return _mm512_add_pd(a, b); }
    static D subd(D a, D b) { return _mm512_sub_pd(a, b); }
    static D muld(D a, D b) { return _mm512_mul_pd(a, b); }
    static D divd(D a, D b) { return _mm512_div_pd(a, b); }
    static D fmad(D a, D b, D c) { return _mm512_fmadd_pd(a, b, c); }
    static D mind(D a, D b) { return _mm512_min_pd(a, b); }
    static D sqrtd(D a) { return _mm512_sqrt_pd(a); }
    static void interleave64(D even, D odd, D& lo, D& hi) {
        lo = _mm512_permutex2var_pd(even, _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11), odd);
        hi = _mm512_permutex2var_pd(even, _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15), odd);
    }
    static void stored(double* p, D a) { _mm512_storeu_pd(p, a); }
    // ---- truncated normal helpers
    static D cvt_u32_to_d(const uint32_t* p) {
        return _mm512_cvtepu32_pd(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
    static void store_d_as_f(float* p, D a) { _mm256_storeu_ps(p, _mm512_cvtpd_ps(a)); }
    static Q cmplt_d(D a, D b) { return _mm512_movm_epi64(_mm512_cmp_pd_mask(a, b, _CMP_LT_OQ)); }
    static bool any64(Q m) { return _mm512_test_epi64_mask(m, m) != 0; }
    static D maxd(D a, D b) { return _mm512_max_pd(a, b); }
    static U cmplt_f(F a, F b) { return _mm512_movm_epi32(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ)); }
    static bool any32(U m) { return _mm512_test_epi32_mask(m, m) != 0; }
    static F maxf(F a, F b) { return _mm512_max_ps(a, b); }
    // ---- 16-bit outputs (round to nearest-even). bfloat16 uses integer rounding rather than
    // AVX512-BF16's vcvtneps2bf16, which flushes subnormal inputs and so would differ.
    static F loadf(const float* p) { return _mm512_loadu_ps(p); }
    static void store_f16(uint16_t* p, F a) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    // As store_f16, with element k all-zero bits where bit k of z (k < 16) is set.
    static void store_f16_zero(uint16_t* p, F a, uint32_t z) {
        const __m256i h = _mm512_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_maskz_mov_epi16(__mmask16(~z), h));
    }
    static void store_bf16(uint16_t* p, F a) {
        __m512i b = _mm512_castps_si512(a);
        b = _mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1))));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(_mm512_srli_epi32(b, 16)));
    }
    static U bf16_bits(F a) {
        const __m512i b = _mm512_castps_si512(a);
        return _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF),
            _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1)))), 16);
    }
    static void interleave32(U a, U b, U& lo, U& hi) {  // lo = a0 b0 a1 b1 .., hi = a8 b8 ..
        lo = _mm512_permutex2var_epi32(a, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), b);
        hi = _mm512_permutex2var_epi32(a, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), b);
    }
    static void storeu32(uint32_t* p, U a) { _mm512_storeu_si512(p, a); }
    // Stores the 32 16-bit elements of a, all-zero bits where bit k of z is set.
    static void storeu16_zero(uint32_t* p, U a, uint32_t z) { _mm512_storeu_si512(p, _mm512_maskz_mov_epi16(__mmask32(~z), a)); }

    // ---- mask registers (kHasMasks): lane conditions as __mmask16, for kernels-inl.hpp's
    // shorter AVX-512 forms of the same integer operations.
    static constexpr bool kHasMasks = true;
    using K = __mmask16;
    static K test32(U a, uint32_t bits) { return _mm512_test_epi32_mask(a, set1(bits)); }
    static K cmpgt32k(U a, U b) { return _mm512_cmpgt_epi32_mask(a, b); }
    static U mask_add32(U src, K k, U a, U b) { return _mm512_mask_add_epi32(src, k, a, b); }
    static U mask_sub32(U src, K k, U a, U b) { return _mm512_mask_sub_epi32(src, k, a, b); }
    static U blend32(K k, U a, U b) { return _mm512_mask_blend_epi32(k, a, b); }  // k ? b : a
    // a ^ (b & c) in one vpternlogd: 0x78 is the truth table of that function.
    static U xor_and32(U a, U b, U c) { return _mm512_ternarylogic_epi32(a, b, c, 0x78); }

    // ---- sparse: zero element k of p[0 .. 64) where bit k of z is set, by masked stores (a
    // masked-off lane is never written nor faults, so z may end before the array does).
    static constexpr bool kMaskedZero = true;
    static void zero64(uint32_t* p, uint64_t z) {
        for (int i = 0; i < 4; ++i) _mm512_mask_storeu_epi32(p + 16 * i, __mmask16(z >> (16 * i)), _mm512_setzero_si512());
    }
    static void zero64(uint16_t* p, uint64_t z) {
        for (int i = 0; i < 2; ++i) _mm512_mask_storeu_epi16(p + 32 * i, __mmask32(z >> (32 * i)), _mm512_setzero_si512());
    }
    static void zero64(uint64_t* p, uint64_t z) {
        for (int i = 0; i < 8; ++i) _mm512_mask_storeu_epi64(p + 8 * i, __mmask8(z >> (8 * i)), _mm512_setzero_si512());
    }
    // Bit j: k[j] < t, for j in 0 .. 63 (sparse keys, stream-spec 3.9).
    static uint64_t below64(const uint8_t* k, uint8_t t) {
        return _mm512_cmplt_epu8_mask(_mm512_loadu_si512(k), _mm512_set1_epi8(char(t)));
    }
};

}  // namespace weightfill::simd
