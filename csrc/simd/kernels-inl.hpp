// Kernel bodies, written once against the operation set `O` (ops_scalar.hpp, ops_avx2.hpp,
// ops_avx512.hpp) and compiled once per instruction set by kernels_<isa>.cpp.
//
// Every function here implements docs/stream-spec.md literally: the same sequence of correctly
// rounded IEEE operations (explicit fma where the spec says fma) on every path, so every path
// gives the same bits. The build passes -ffp-contract=off so that the compiler never fuses a
// multiply and an add on its own.
//
// Everything is in an unnamed namespace: each includer gets its own copy compiled with its own
// flags, and nothing compiled for AVX-512 can be picked by the linker for the portable path.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../engine.hpp"
#include "../rng/philox.hpp"
#include "erfinv_coeffs.hpp"

namespace weightfill::kernels {
namespace {

// ----------------------------------------------------------------------------------------
// Philox: O::L consecutive blocks j0 .. j0 + L - 1, one block per lane; x_k holds word k of
// each block ("SoA"). The round keys are broadcast once per fill, not once per batch.
template <class O>
struct Philox {
    using U = typename O::U;
    StreamKey sk;
    U rk0[kPhiloxRounds], rk1[kPhiloxRounds], c2, c3;

    explicit Philox(const StreamKey& key) : sk(key), c2(O::set1(key.c2)), c3(O::set1(key.c3)) {
        uint32_t k0 = key.k0, k1 = key.k1;
        for (int r = 0; r < kPhiloxRounds; ++r) {
            rk0[r] = O::set1(k0);
            rk1[r] = O::set1(k1);
            k0 += kPhiloxW0;
            k1 += kPhiloxW1;
        }
    }

    void operator()(uint64_t j0, U& x0, U& x1, U& x2, U& x3) const {
        const uint32_t lo = static_cast<uint32_t>(j0);
        if (lo > 0xFFFFFFFFu - (O::L - 1)) {
            carry_path(j0, x0, x1, x2, x3);
            return;
        }
        rounds(O::iota_plus(lo), O::set1(static_cast<uint32_t>(j0 >> 32)), x0, x1, x2, x3);
    }

    // Lane l computes block (c1[l] << 32) | c0[l]: any blocks, in any order.
    void rounds(U a0, U a1, U& x0, U& x1, U& x2, U& x3) const {
        U a2 = c2, a3 = c3;
        for (int r = 0; r < kPhiloxRounds; ++r) {
            U hi0, lo0, hi1, lo1;
            O::mulhilo(a0, kPhiloxM0, hi0, lo0);
            O::mulhilo(a2, kPhiloxM1, hi1, lo1);
            a0 = O::xor3(hi1, a1, rk0[r]);
            a2 = O::xor3(hi0, a3, rk1[r]);
            a1 = lo1;
            a3 = lo0;
        }
        x0 = a0; x1 = a1; x2 = a2; x3 = a3;
    }

    // Two batches j0 .. j0 + 2L - 1 as two independent chains, interleaved round by round so
    // that the multiplier latency of one hides behind the other.
    void pair(uint64_t j0, U& x0, U& x1, U& x2, U& x3, U& y0, U& y1, U& y2, U& y3) const {
        const uint32_t lo = static_cast<uint32_t>(j0);
        if (lo > 0xFFFFFFFFu - (2 * O::L - 1)) {
            (*this)(j0, x0, x1, x2, x3);
            (*this)(j0 + O::L, y0, y1, y2, y3);
            return;
        }
        const U hi = O::set1(static_cast<uint32_t>(j0 >> 32));
        U a0 = O::iota_plus(lo), a1 = hi, a2 = c2, a3 = c3;
        U b0 = O::iota_plus(lo + uint32_t(O::L)), b1 = hi, b2 = c2, b3 = c3;
        for (int r = 0; r < kPhiloxRounds; ++r) {
            U ha0, la0, ha1, la1, hb0, lb0, hb1, lb1;
            O::mulhilo(a0, kPhiloxM0, ha0, la0);
            O::mulhilo(b0, kPhiloxM0, hb0, lb0);
            O::mulhilo(a2, kPhiloxM1, ha1, la1);
            O::mulhilo(b2, kPhiloxM1, hb1, lb1);
            a0 = O::xor3(ha1, a1, rk0[r]);
            b0 = O::xor3(hb1, b1, rk0[r]);
            a2 = O::xor3(ha0, a3, rk1[r]);
            b2 = O::xor3(hb0, b3, rk1[r]);
            a1 = la1; b1 = lb1;
            a3 = la0; b3 = lb0;
        }
        x0 = a0; x1 = a1; x2 = a2; x3 = a3;
        y0 = b0; y1 = b1; y2 = b2; y3 = b3;
    }

    // The low counter word wraps inside this batch (once per 2^32 blocks): the scalar block
    // function handles the carry into c1.
    void carry_path(uint64_t j0, U& x0, U& x1, U& x2, U& x3) const {
        alignas(64) uint32_t w[4][O::L];
        for (int l = 0; l < O::L; ++l) {
            uint32_t b[4];
            philox4x32_10(sk, j0 + uint64_t(l), b);
            for (int k = 0; k < 4; ++k) w[k][l] = b[k];
        }
        x0 = O::loadu(w[0]); x1 = O::loadu(w[1]); x2 = O::loadu(w[2]); x3 = O::loadu(w[3]);
    }
};

// ----------------------------------------------------------------------------------------
// float32 elementary functions (stream-spec 3.3).

// ln(u) for u in [2^-32, 1]; atanh series in t = (m - 1) / (m + 1), |t| <= 0.1716.
template <class O>
inline typename O::F ln32(typename O::F u) {
    using U = typename O::U;
    using F = typename O::F;
    const U bits = O::bitcast_u(u);
    const U mant = O::and32(bits, O::set1(0x007FFFFFu));
    U e, mbits;
    // m > fl32(sqrt 2): halve m, bump e (all-ones mask = -1, so e - big = e + 1).
    if constexpr (O::kHasMasks) {  // the same integers with a mask register
        const auto big = O::cmpgt32k(mant, O::set1(0x003504F3u));
        const U e0 = O::sub32(O::template srl32<23>(bits), O::set1(127));
        e = O::mask_add32(e0, big, e0, O::set1(1));
        const U m0 = O::or32(mant, O::set1(0x3F800000u));
        mbits = O::mask_sub32(m0, big, m0, O::set1(0x00800000u));
    } else {
        const U big = O::cmpgt_i32(mant, O::set1(0x003504F3u));
        e = O::sub32(O::sub32(O::template srl32<23>(bits), O::set1(127)), big);
        mbits = O::sub32(O::or32(mant, O::set1(0x3F800000u)), O::and32(big, O::set1(0x00800000u)));
    }
    const F m = O::bitcast_f(mbits);
    const F one = O::setf(1.0f);
    const F t = O::divf(O::subf(m, one), O::addf(m, one));
    const F t2 = O::mulf(t, t);
    F p = O::fmaf_(t2, O::setf(2.0f / 9.0f), O::setf(2.0f / 7.0f));
    p = O::fmaf_(t2, p, O::setf(2.0f / 5.0f));
    p = O::fmaf_(t2, p, O::setf(2.0f / 3.0f));
    p = O::fmaf_(t2, p, O::setf(2.0f));
    const F ef = O::cvt_i32(e);
    // LN2_HI = 0x3F317200 has 16 significant bits, so e * LN2_HI is exact for |e| <= 32.
    const F ln2_hi = O::bitcast_f(O::set1(0x3F317200u));
    const F ln2_lo = O::setf(0x1.7f7d1cp-20f);  // fl32(ln 2 - LN2_HI), from mpmath
    return O::fmaf_(ef, ln2_hi, O::fmaf_(ef, ln2_lo, O::mulf(t, p)));
}

// sin and cos of phi in [0, pi/4]: Taylor polynomials, coefficients fl32(+-1/n!).
template <class O>
inline void sincos32(typename O::F phi, typename O::F& s, typename O::F& c) {
    using F = typename O::F;
    const F x2 = O::mulf(phi, phi);
    F sp = O::fmaf_(x2, O::setf(1.0f / 362880.0f), O::setf(-1.0f / 5040.0f));
    sp = O::fmaf_(x2, sp, O::setf(1.0f / 120.0f));
    sp = O::fmaf_(x2, sp, O::setf(-1.0f / 6.0f));
    s = O::fmaf_(O::mulf(x2, phi), sp, phi);
    F cp = O::fmaf_(x2, O::setf(-1.0f / 3628800.0f), O::setf(1.0f / 40320.0f));
    cp = O::fmaf_(x2, cp, O::setf(-1.0f / 720.0f));
    cp = O::fmaf_(x2, cp, O::setf(1.0f / 24.0f));
    cp = O::fmaf_(x2, cp, O::setf(-0.5f));
    c = O::fmaf_(x2, cp, O::setf(1.0f));
}

// Box-Muller on word pairs (a, b): z0 = r cos(theta), z1 = r sin(theta).
template <class O>
inline void box_muller32(typename O::U a, typename O::U b, typename O::F& z0, typename O::F& z1) {
    using U = typename O::U;
    using F = typename O::F;
    // u1 = fl32(fl32(a >> 1) * 2^-31 + 2^-32) in [2^-32, 1]; the product is exact.
    const F u1 = O::fmaf_(O::cvt_i32(O::template srl32<1>(a)), O::setf(0x1p-31f), O::setf(0x1p-32f));
    const F r = O::sqrtf_(O::mulf(ln32<O>(u1), O::setf(-2.0f)));

    // Octant o = b >> 29 and f = (b >> 8) & (2^21 - 1), reflected (2^21 - f) in odd octants.
    const U q = O::template srl32<8>(b);
    U f = O::and32(q, O::set1(0x001FFFFFu));
    if constexpr (O::kHasMasks) {
        f = O::mask_sub32(f, O::test32(b, 1u << 29), O::set1(1u << 21), f);  // bit 29: o odd
    } else {
        const U odd = O::sub32(O::set1(0), O::and32(O::template srl32<29>(b), O::set1(1)));
        f = O::sel32(odd, O::sub32(O::set1(1u << 21), f), f);
    }
    // C = fl32(pi) * 2^-23 (exact scaling of 0x40490FDB).
    const F phi = O::mulf(O::cvt_i32(f), O::setf(0x1.921fb6p-22f));
    F s, c;
    sincos32<O>(phi, s, c);
    // Octant o: swap sin and cos where bit 1 of o + 1 is set; negate cos where bit 2 of o + 2
    // is set, sin where bit 2 of o is. Since b = o 2^29 + (lower bits), those are bit 30 of
    // b + 2^29, bit 31 of b + 2^30 and bit 31 of b (wrapping mod 2^32 as o + 1, o + 2 mod 8).
    const U su = O::bitcast_u(s), cu = O::bitcast_u(c);
    const U sign = O::set1(0x80000000u);
    U cos_u, sin_u;
    if constexpr (O::kHasMasks) {
        const auto swap = O::test32(O::add32(b, O::set1(1u << 29)), 1u << 30);
        cos_u = O::xor_and32(O::blend32(swap, cu, su), O::add32(b, O::set1(1u << 30)), sign);
        sin_u = O::xor_and32(O::blend32(swap, su, cu), b, sign);
    } else {
        const U o = O::template srl32<29>(b);
        const U one = O::set1(1);
        const U swap = O::sub32(O::set1(0), O::and32(O::template srl32<1>(O::add32(o, one)), one));
        const U neg_c = O::template sll32<31>(O::template srl32<2>(O::add32(o, O::set1(2))));
        const U neg_s = O::and32(b, sign);
        cos_u = O::xor32(O::sel32(swap, su, cu), neg_c);
        sin_u = O::xor32(O::sel32(swap, cu, su), neg_s);
    }
    z0 = O::mulf(r, O::bitcast_f(cos_u));
    z1 = O::mulf(r, O::bitcast_f(sin_u));
}

// ----------------------------------------------------------------------------------------
// float64 elementary functions (stream-spec 3.4).

// Converts a small signed 64-bit integer (|e| < 1024) to double exactly.
template <class O>
inline typename O::D small_i64_to_f64(typename O::Q e) {
    return O::subd(O::cvt_u53(O::add64(e, O::set1q(1023))), O::setd(1023.0));
}

template <class O>
inline typename O::D ln64(typename O::D u) {
    using Q = typename O::Q;
    using D = typename O::D;
    const Q bits = O::bitcast_q(u);
    const Q mant = O::and64(bits, O::set1q(0x000FFFFFFFFFFFFFull));
    const Q big = O::cmpgt_i64(mant, O::set1q(0x0006A09E667F3BCDull));  // m > fl64(sqrt 2)
    const Q e = O::sub64(O::sub64(O::template srl64<52>(bits), O::set1q(1023)), big);
    const Q mbits = O::sub64(O::or64(mant, O::set1q(0x3FF0000000000000ull)),
                             O::and64(big, O::set1q(0x0010000000000000ull)));
    const D m = O::bitcast_d(mbits);
    const D one = O::setd(1.0);
    const D t = O::divd(O::subd(m, one), O::addd(m, one));
    const D t2 = O::muld(t, t);
    D p = O::fmad(t2, O::setd(2.0 / 21.0), O::setd(2.0 / 19.0));
    p = O::fmad(t2, p, O::setd(2.0 / 17.0));
    p = O::fmad(t2, p, O::setd(2.0 / 15.0));
    p = O::fmad(t2, p, O::setd(2.0 / 13.0));
    p = O::fmad(t2, p, O::setd(2.0 / 11.0));
    p = O::fmad(t2, p, O::setd(2.0 / 9.0));
    p = O::fmad(t2, p, O::setd(2.0 / 7.0));
    p = O::fmad(t2, p, O::setd(2.0 / 5.0));
    p = O::fmad(t2, p, O::setd(2.0 / 3.0));
    p = O::fmad(t2, p, O::setd(2.0));
    const D ef = small_i64_to_f64<O>(e);
    // LN2_HI = 0x3FE62E42FEE00000 (32 significant bits): e * LN2_HI is exact.
    const D ln2_hi = O::bitcast_d(O::set1q(0x3FE62E42FEE00000ull));
    const D ln2_lo = O::setd(0x1.a39ef35793c76p-33);  // fl64(ln 2 - LN2_HI), from mpmath
    return O::fmad(ef, ln2_hi, O::fmad(ef, ln2_lo, O::muld(t, p)));
}

template <class O>
inline void sincos64(typename O::D phi, typename O::D& s, typename O::D& c) {
    using D = typename O::D;
    const D x2 = O::muld(phi, phi);
    // 1/n! for n = 3 .. 18; each literal quotient is correctly rounded by the compiler.
    D sp = O::fmad(x2, O::setd(1.0 / 355687428096000.0), O::setd(-1.0 / 1307674368000.0));
    sp = O::fmad(x2, sp, O::setd(1.0 / 6227020800.0));
    sp = O::fmad(x2, sp, O::setd(-1.0 / 39916800.0));
    sp = O::fmad(x2, sp, O::setd(1.0 / 362880.0));
    sp = O::fmad(x2, sp, O::setd(-1.0 / 5040.0));
    sp = O::fmad(x2, sp, O::setd(1.0 / 120.0));
    sp = O::fmad(x2, sp, O::setd(-1.0 / 6.0));
    s = O::fmad(O::muld(x2, phi), sp, phi);
    D cp = O::fmad(x2, O::setd(-1.0 / 6402373705728000.0), O::setd(1.0 / 20922789888000.0));
    cp = O::fmad(x2, cp, O::setd(-1.0 / 87178291200.0));
    cp = O::fmad(x2, cp, O::setd(1.0 / 479001600.0));
    cp = O::fmad(x2, cp, O::setd(-1.0 / 3628800.0));
    cp = O::fmad(x2, cp, O::setd(1.0 / 40320.0));
    cp = O::fmad(x2, cp, O::setd(-1.0 / 720.0));
    cp = O::fmad(x2, cp, O::setd(1.0 / 24.0));
    cp = O::fmad(x2, cp, O::setd(-0.5));
    c = O::fmad(x2, cp, O::setd(1.0));
}

template <class O>
inline void box_muller64(typename O::Q a, typename O::Q b, typename O::D& z0, typename O::D& z1) {
    using Q = typename O::Q;
    using D = typename O::D;
    // u1 = (A >> 12) * 2^-52 + 2^-53, exact, in [2^-53, 1 - 2^-53].
    const D u1 = O::fmad(O::cvt_u53(O::template srl64<12>(a)), O::setd(0x1p-52), O::setd(0x1p-53));
    const D r = O::sqrtd(O::muld(ln64<O>(u1), O::setd(-2.0)));

    const Q q = O::template srl64<11>(b);
    const Q o = O::template srl64<50>(q);
    const Q one = O::set1q(1);
    Q f = O::and64(q, O::set1q((uint64_t{1} << 50) - 1));
    const Q odd = O::sub64(O::set1q(0), O::and64(o, one));
    f = O::sel64(odd, O::sub64(O::set1q(uint64_t{1} << 50), f), f);
    // C64 = fl64(pi) * 2^-52.
    const D phi = O::muld(O::cvt_u53(f), O::setd(0x1.921fb54442d18p-51));
    D s, c;
    sincos64<O>(phi, s, c);
    const Q swap = O::sub64(O::set1q(0), O::and64(O::template srl64<1>(O::add64(o, one)), one));
    const Q neg_c = O::template sll64<63>(O::template srl64<2>(O::add64(o, O::set1q(2))));
    const Q neg_s = O::template sll64<63>(O::template srl64<2>(o));
    const Q su = O::bitcast_q(s), cu = O::bitcast_q(c);
    z0 = O::muld(r, O::bitcast_d(O::xor64(O::sel64(swap, su, cu), neg_c)));
    z1 = O::muld(r, O::bitcast_d(O::xor64(O::sel64(swap, cu, su), neg_s)));
}

// ----------------------------------------------------------------------------------------
// Transforms: the words of O::L blocks (SoA, from Philox) -> O::L * kEPB elements in order.

// Raw words, as 32-bit elements (RawU32: element i is word i mod 4 of block i / 4) or as 64-bit
// ones (RawU64: element i is x_{2k} + 2^32 x_{2k+1}, k = i mod 2, of block i / 2; sparse tie keys
// and Floyd's draws, stream-spec 3.8-3.9). Each lane stores x0 x1 x2 x3 in order, which in
// little-endian memory is both layouts.
template <class O, class Elem>
struct RawWords {
    using U = typename O::U;
    using T = Elem;
    static constexpr int kEPB = int(16 / sizeof(Elem));
    explicit RawWords(const FillParams&) {}
    void operator()(U x0, U x1, U x2, U x3, T* out) const {
        O::store4_interleaved(reinterpret_cast<uint32_t*>(out), x0, x1, x2, x3);
    }
};
template <class O> using RawU32 = RawWords<O, uint32_t>;
template <class O> using RawU64 = RawWords<O, uint64_t>;

// Largest float below h (h finite, h > some finite low, so h is not -inf and not -max).
inline float below(float h) {
    uint32_t u;
    std::memcpy(&u, &h, 4);
    if (h > 0.0f) --u; else if (h < 0.0f) ++u; else u = 0x80000001u;
    std::memcpy(&h, &u, 4);
    return h;
}
inline double below(double h) {
    uint64_t u;
    std::memcpy(&u, &h, 8);
    if (h > 0.0) --u; else if (h < 0.0) ++u; else u = 0x8000000000000001ull;
    std::memcpy(&h, &u, 8);
    return h;
}

// x = fma(u, D, L) clamped below H (stream-spec 3.1/3.2). Two rewrites that give the same
// bits with fewer operations:
// - u = k * 2^-p exactly, so fma(u, D, L) == fma(k, D * 2^-p, L) whenever D * 2^-p is exact,
//   i.e. D is zero or at least 2^(p + emin) (2^-102 / 2^-969); tinier D takes the literal path.
// - the exact u * D + L is below H (u <= 1 - 2^-p and D <= (H - L)(1 + 2^-p)), so rounding
//   can reach H but never pass it; "if x >= H: below(H)" is then min(x, below(H)).
template <class O>
struct UniformF32 {
    using U = typename O::U;
    using F = typename O::F;
    using T = float;
    static constexpr int kEPB = 4;
    F lo, mul, ceiling;
    bool folded;
    explicit UniformF32(const FillParams& p) {
        const float l = static_cast<float>(p.a), h = static_cast<float>(p.b);
        const float d = h - l;
        folded = d == 0.0f || d >= 0x1p-102f;
        lo = O::setf(l);
        mul = O::setf(folded ? d * 0x1p-24f : d);
        // A 16-bit output passes its own ceiling, below16(RNE16(H)), as a float (spec 3.7).
        ceiling = O::setf(p.extra[0] != 0.0 ? float(p.extra[1]) : h > l ? below(h) : h);
    }
    U value(U w) const {
        F k = O::cvt_i32(O::template srl32<8>(w));
        if (!folded) k = O::mulf(k, O::setf(0x1p-24f));
        return O::bitcast_u(O::minf(O::fmaf_(k, mul, lo), ceiling));
    }
    void operator()(U x0, U x1, U x2, U x3, T* out) const {
        O::store4_interleaved(reinterpret_cast<uint32_t*>(out), value(x0), value(x1), value(x2), value(x3));
    }
};

template <class O>
struct UniformF64 {
    using U = typename O::U;
    using D = typename O::D;
    using T = double;
    static constexpr int kEPB = 2;
    D lo, mul, ceiling;
    bool folded;
    explicit UniformF64(const FillParams& p) {
        const double l = p.a, h = p.b, d = h - l;
        folded = d == 0.0 || d >= 0x1p-969;
        lo = O::setd(l);
        mul = O::setd(folded ? d * 0x1p-53 : d);
        ceiling = O::setd(h > l ? below(h) : h);
    }
    void operator()(U x0, U x1, U x2, U x3, T* out) const {
        alignas(64) uint32_t w[4 * O::L];
        O::store4_interleaved(w, x0, x1, x2, x3);
        // 4 L words = 2 L 64-bit words U = x_{2k} + 2^32 x_{2k+1} (little-endian loads).
        for (int i = 0; i < 2 * O::L / O::LD; ++i) {
            D k = O::cvt_u53(O::template srl64<11>(O::loadq(w + 2 * i * O::LD)));
            if (!folded) k = O::muld(k, O::setd(0x1p-53));
            O::stored(out + i * O::LD, O::mind(O::fmad(k, mul, lo), ceiling));
        }
    }
};

template <class O>
struct NormalF32 {
    using U = typename O::U;
    using T = float;
    static constexpr int kEPB = 4;
    typename O::F mean, sd;
    explicit NormalF32(const FillParams& p)
        : mean(O::setf(static_cast<float>(p.a))), sd(O::setf(static_cast<float>(p.b))) {}
    static constexpr bool kZeroStore = true;  // has the masked operator() below
    void operator()(U x0, U x1, U x2, U x3, T* out) const {
        U y0, y1, y2, y3;
        values(x0, x1, x2, x3, y0, y1, y2, y3);
        O::store4_interleaved(reinterpret_cast<uint32_t*>(out), y0, y1, y2, y3);
    }
    // As above, with element k of out[0 .. 64) all-zero bits where bit k of z is set (O::L = 16).
    void operator()(U x0, U x1, U x2, U x3, T* out, uint64_t z) const {
        U y0, y1, y2, y3;
        values(x0, x1, x2, x3, y0, y1, y2, y3);
        O::store4_interleaved_zero(reinterpret_cast<uint32_t*>(out), y0, y1, y2, y3, z);
    }
    void values(U x0, U x1, U x2, U x3, U& y0, U& y1, U& y2, U& y3) const {
        // Words (x0, x1) and (x2, x3) of each block are Box-Muller pairs: x0 and x2 give the
        // radius, x1 and x3 the angle; elements 4j, 4j+2 get r cos, elements 4j+1, 4j+3 r sin.
        typename O::F z0, z1, z2, z3;
        box_muller32<O>(x0, x1, z0, z1);
        box_muller32<O>(x2, x3, z2, z3);
        auto scaled = [this](typename O::F z) { return O::bitcast_u(O::fmaf_(z, sd, mean)); };
        y0 = scaled(z0), y1 = scaled(z1), y2 = scaled(z2), y3 = scaled(z3);
    }
};

template <class O>
struct NormalF64 {
    using U = typename O::U;
    using T = double;
    static constexpr int kEPB = 2;
    typename O::D mean, sd;
    explicit NormalF64(const FillParams& p) : mean(O::setd(p.a)), sd(O::setd(p.b)) {}
    void operator()(U x0, U x1, U x2, U x3, T* out) const {
        alignas(64) uint32_t w[4 * O::L];
        O::store4_interleaved(w, x0, x1, x2, x3);
        // 64-bit words alternate A (radius), B (angle): one pair per block.
        for (int i = 0; i < O::L / O::LD; ++i) {
            typename O::Q a, b;
            O::deinterleave64(O::loadq(w + 4 * i * O::LD), O::loadq(w + (4 * i + 2) * O::LD), a, b);
            typename O::D z0, z1, lo, hi;
            box_muller64<O>(a, b, z0, z1);
            O::interleave64(O::fmad(z0, sd, mean), O::fmad(z1, sd, mean), lo, hi);
            O::stored(out + 2 * i * O::LD, lo);
            O::stored(out + (2 * i + 1) * O::LD, hi);
        }
    }
};

// ----------------------------------------------------------------------------------------
// Truncated normal (stream-spec 3.6): inverse CDF in float64 for both output dtypes.

// Horner evaluation of sum_k c[k] t^k, highest coefficient first.
template <class O, int N>
inline typename O::D horner(typename O::D t, const double (&c)[N]) {
    typename O::D p = O::setd(c[N - 1]);
    for (int k = N - 2; k >= 0; --k) p = O::fmad(p, t, O::setd(c[k]));
    return p;
}
template <class O, int N>
inline typename O::F horner(typename O::F t, const float (&c)[N]) {
    typename O::F p = O::setf(c[N - 1]);
    for (int k = N - 2; k >= 0; --k) p = O::fmaf_(p, t, O::setf(c[k]));
    return p;
}

// erfinv(y) / y as a function of w = -ln((1 - y)(1 + y)) (tools/fit_erfinv.py). A branch is
// evaluated only when some lane of the vector needs it, so central intervals such as (-2, 2)
// cost one polynomial. Lanes with w >= a branch's start take that branch.
template <class O>
inline typename O::D erfinv_ratio(typename O::D w) {
    namespace ec = erfinv_coeffs;
    using D = typename O::D;
    using Q = typename O::Q;
    const Q ones = O::set1q(~uint64_t{0});
    auto at_least = [&](double lo) { return O::xor64(O::cmplt_d(w, O::setd(lo)), ones); };
    auto take = [](Q m, D a, D b) { return O::bitcast_d(O::sel64(m, O::bitcast_q(a), O::bitcast_q(b))); };

    D r = horner<O>(O::subd(w, O::setd(ec::kA_offset)), ec::kA);
    Q m = at_least(3.125);
    if (!O::any64(m)) return r;
    r = take(m, horner<O>(O::subd(w, O::setd(ec::kB_offset)), ec::kB), r);
    if (!O::any64(m = at_least(6.25))) return r;
    const D sw = O::sqrtd(w);
    r = take(m, horner<O>(O::subd(sw, O::setd(ec::kC_offset)), ec::kC), r);
    if (!O::any64(m = at_least(16.0))) return r;
    r = take(m, horner<O>(O::subd(sw, O::setd(ec::kD_offset)), ec::kD), r);
    if (!O::any64(m = at_least(64.0))) return r;
    return take(m, horner<O>(O::subd(sw, O::setd(ec::kE_offset)), ec::kE), r);
}

template <class O>
inline typename O::F erfinv_ratio32(typename O::F w) {
    namespace ec = erfinv_coeffs;
    using F = typename O::F;
    using U = typename O::U;
    const U ones = O::set1(~0u);
    auto at_least = [&](float lo) { return O::xor32(O::cmplt_f(w, O::setf(lo)), ones); };
    auto take = [](U m, F a, F b) { return O::bitcast_f(O::sel32(m, O::bitcast_u(a), O::bitcast_u(b))); };

    F r = horner<O>(O::subf(w, O::setf(ec::kF32_A_offset)), ec::kF32_A);
    U m = at_least(6.25f);
    if (!O::any32(m)) return r;
    const F sw = O::sqrtf_(w);
    r = take(m, horner<O>(O::subf(sw, O::setf(ec::kF32_B_offset)), ec::kF32_B), r);
    if (!O::any32(m = at_least(16.0f))) return r;
    return take(m, horner<O>(O::subf(sw, O::setf(ec::kF32_C_offset)), ec::kF32_C), r);
}

// extra[] layout (python/weightfill/_truncnorm.py): 0 core (1: float32 arithmetic, 0: float64),
// 1 cL0 = 2 Phi(lower), 2 cH0 = 2 Q(upper), 3 w2 = 2 (Phi(upper) - Phi(lower)),
// 4, 5 lowest and highest output (the bounds rounded inward to the output dtype).
// Per element, with u in (0, 1) (1 - u exact):
//   cL = fma(u, w2, cL0), cH = fma(1 - u, w2, cH0)   [cL + cH = 2; both sums of non-negatives]
//   (c, s) = (cL, -1) if cL <= 1 else (cH, +1)       [the side of the median the value is on]
//   y = 1 - c; w = -ln(c * (2 - c)); z = s * ((y * sqrt 2) * erfinv_ratio(w))
//   value = min(max(fma(z, std, mean), lowest), highest)
// z = s * sqrt(2) * erfinv(1 - c) = s * Q^-1(c / 2): the probability that stays small is the one
// computed, so far tails keep their relative precision.
template <class O>
struct TruncCore64 {
    using D = typename O::D;
    using Q = typename O::Q;
    D cl0, ch0, w2, mean, sd, lowest, highest;
    explicit TruncCore64(const FillParams& p)
        : cl0(O::setd(p.extra[1])), ch0(O::setd(p.extra[2])), w2(O::setd(p.extra[3])),
          mean(O::setd(p.a)), sd(O::setd(p.b)), lowest(O::setd(p.extra[4])), highest(O::setd(p.extra[5])) {}

    D operator()(D u) const {
        const D one = O::setd(1.0);
        const D cl = O::fmad(u, w2, cl0), ch = O::fmad(O::subd(one, u), w2, ch0);
        const Q low = O::xor64(O::cmplt_d(one, cl), O::set1q(~uint64_t{0}));  // cl <= 1
        const D c = O::bitcast_d(O::sel64(low, O::bitcast_q(cl), O::bitcast_q(ch)));
        const Q sign = O::and64(low, O::set1q(uint64_t{1} << 63));
        const D y = O::subd(one, c);
        const D w = O::muld(ln64<O>(O::muld(c, O::subd(O::setd(2.0), c))), O::setd(-1.0));
        const D z = O::muld(O::muld(y, O::setd(0x1.6a09e667f3bcdp+0)), erfinv_ratio<O>(w));
        const D x = O::fmad(O::bitcast_d(O::xor64(O::bitcast_q(z), sign)), sd, mean);
        return O::mind(O::maxd(x, lowest), highest);
    }
};

template <class O>
struct TruncCore32 {
    using F = typename O::F;
    using U = typename O::U;
    F cl0, ch0, w2, mean, sd, lowest, highest;
    explicit TruncCore32(const FillParams& p)
        : cl0(O::setf(float(p.extra[1]))), ch0(O::setf(float(p.extra[2]))), w2(O::setf(float(p.extra[3]))),
          mean(O::setf(float(p.a))), sd(O::setf(float(p.b))), lowest(O::setf(float(p.extra[4]))),
          highest(O::setf(float(p.extra[5]))) {}

    F operator()(F u) const {
        const F one = O::setf(1.0f);
        const F cl = O::fmaf_(u, w2, cl0), ch = O::fmaf_(O::subf(one, u), w2, ch0);
        const U low = O::xor32(O::cmplt_f(one, cl), O::set1(~0u));
        const F c = O::bitcast_f(O::sel32(low, O::bitcast_u(cl), O::bitcast_u(ch)));
        const U sign = O::and32(low, O::set1(0x80000000u));
        const F y = O::subf(one, c);
        const F w = O::mulf(ln32<O>(O::mulf(c, O::subf(O::setf(2.0f), c))), O::setf(-1.0f));
        const F z = O::mulf(O::mulf(y, O::setf(0x1.6a09e6p+0f)), erfinv_ratio32<O>(w));
        const F x = O::fmaf_(O::bitcast_f(O::xor32(O::bitcast_u(z), sign)), sd, mean);
        return O::minf(O::maxf(x, lowest), highest);
    }
};

template <class O>
struct TruncatedNormalF32 {
    using U = typename O::U;
    using T = float;
    static constexpr int kEPB = 4;
    bool f32_core;
    TruncCore32<O> c32;
    TruncCore64<O> c64;
    explicit TruncatedNormalF32(const FillParams& p) : f32_core(p.extra[0] != 0.0), c32(p), c64(p) {}
    typename O::F value32(U w) const {
        // u = (2 (w >> 9) + 1) 2^-24 = (w >> 9) 2^-23 + 2^-24: 24 bits, exact (so the fma does
        // not round), never 0 or 1, and 1 - u exact too.
        const auto k = O::cvt_i32(O::template srl32<9>(w));
        return c32(O::fmaf_(k, O::setf(0x1p-23f), O::setf(0x1p-24f)));
    }
    void operator()(U x0, U x1, U x2, U x3, T* out) const {
        if (f32_core) {
            O::store4_interleaved(reinterpret_cast<uint32_t*>(out), O::bitcast_u(value32(x0)),
                                  O::bitcast_u(value32(x1)), O::bitcast_u(value32(x2)), O::bitcast_u(value32(x3)));
            return;
        }
        // float64 arithmetic for bounds too far in the tail for float32: u = (2 w + 1) 2^-33.
        alignas(64) uint32_t w[4 * O::L];
        O::store4_interleaved(w, x0, x1, x2, x3);
        for (int i = 0; i < 4 * O::L; i += O::LD) {
            const auto u = O::fmad(O::cvt_u32_to_d(w + i), O::setd(0x1p-32), O::setd(0x1p-33));
            O::store_d_as_f(out + i, c64(u));
        }
    }
};

template <class O>
struct TruncatedNormalF64 {
    using U = typename O::U;
    using T = double;
    static constexpr int kEPB = 2;
    TruncCore64<O> core;
    explicit TruncatedNormalF64(const FillParams& p) : core(p) {}
    void operator()(U x0, U x1, U x2, U x3, T* out) const {
        // u = (2 (U >> 12) + 1) 2^-53: 53 bits, exact, never 0 or 1.
        alignas(64) uint32_t w[4 * O::L];
        O::store4_interleaved(w, x0, x1, x2, x3);
        for (int i = 0; i < 2 * O::L; i += O::LD) {
            const auto k = O::cvt_u53(O::template srl64<12>(O::loadq(w + 2 * i)));
            O::stored(out + i, core(O::fmad(k, O::setd(0x1p-52), O::setd(0x1p-53))));
        }
    }
};

// ----------------------------------------------------------------------------------------
// `count` whole batches of O::L blocks from block j: emit(x0, x1, x2, x3, b) for batch b in
// order, two Philox chains in flight (pairs of batches, then a last single one).
template <class O, class Emit>
inline void whole_batches(const Philox<O>& philox, uint64_t j, uint64_t count, Emit&& emit) {
    uint64_t b = 0;
    for (; count - b >= 2; b += 2, j += 2 * O::L) {
        typename O::U x0, x1, x2, x3, y0, y1, y2, y3;
        philox.pair(j, x0, x1, x2, x3, y0, y1, y2, y3);
        emit(x0, x1, x2, x3, b);
        emit(y0, y1, y2, y3, b + 1);
    }
    if (b < count) {
        typename O::U x0, x1, x2, x3;
        philox(j, x0, x1, x2, x3);
        emit(x0, x1, x2, x3, b);
    }
}

// Range driver: elements first .. first + n - 1, any start (mid-block too) and any length.
template <class O, template <class> class Tr>
void fill_range(const FillParams& p, uint64_t first, uint64_t n, void* out_v) {
    using X = Tr<O>;
    using T = typename X::T;
    constexpr uint64_t kBatch = uint64_t(O::L) * X::kEPB;  // elements per Philox batch
    const X tr(p);
    const Philox<O> philox(p.key);
    T* out = static_cast<T*>(out_v);
    alignas(64) T tmp[kBatch];

    // Batches start at multiples of O::L blocks: a batch is the unit of work, not a boundary
    // in the stream, so this only affects speed. A batch started mid-block or cut short goes
    // through tmp: the head (first not a block's first element) and the tail.
    uint64_t j = p.block_base + first / X::kEPB;
    auto partial = [&](uint64_t skip, uint64_t take) {
        typename O::U x0, x1, x2, x3;
        philox(j, x0, x1, x2, x3);
        j += O::L;
        tr(x0, x1, x2, x3, tmp);
        std::memcpy(out, tmp + skip, take * sizeof(T));
        out += take;
        n -= take;
    };
    if (const uint64_t skip = first % X::kEPB; skip != 0 && n > 0) partial(skip, kBatch - skip < n ? kBatch - skip : n);
    const uint64_t whole = n / kBatch;
    whole_batches(philox, j, whole, [&](auto x0, auto x1, auto x2, auto x3, uint64_t b) { tr(x0, x1, x2, x3, out + b * kBatch); });
    j += whole * O::L;
    out += whole * kBatch;
    n -= whole * kBatch;
    if (n > 0) partial(0, n);
}

// float16 / bfloat16: the float32 transform into a small buffer, then rounded to nearest-even
// in registers (stream-spec 3.7).
template <class O, template <class> class Inner, bool kBF16>
struct Narrow {
    using U = typename O::U;
    using T = uint16_t;
    static constexpr int kEPB = 4;
    static constexpr bool kZeroStore = !kBF16;  // float16 has the masked operator() below
    Inner<O> inner;
    explicit Narrow(const FillParams& p) : inner(p) {}
    void operator()(U x0, U x1, U x2, U x3, T* out) const {
        alignas(64) float tmp[4 * O::L];
        inner(x0, x1, x2, x3, tmp);
        for (int i = 0; i < 4; ++i) {
            const auto v = O::loadf(tmp + i * O::L);
            if constexpr (kBF16) O::store_bf16(out + i * O::L, v);
            else O::store_f16(out + i * O::L, v);
        }
    }
    // float16, with element k of out[0 .. 64) all-zero bits where bit k of z is set (O::L = 16).
    void operator()(U x0, U x1, U x2, U x3, T* out, uint64_t z) const {
        alignas(64) float tmp[4 * O::L];
        inner(x0, x1, x2, x3, tmp);
        for (int i = 0; i < 4; ++i) O::store_f16_zero(out + i * O::L, O::loadf(tmp + i * O::L), uint32_t(z >> (16 * i)));
    }
};
template <class O> using UniformF16 = Narrow<O, UniformF32, false>;
template <class O> using UniformBF16 = Narrow<O, UniformF32, true>;
template <class O> using NormalF16 = Narrow<O, NormalF32, false>;
// bfloat16 normal, the most used 16-bit case, rounds the four Box-Muller vectors in registers
// and packs element pairs into 32-bit words (no float32 buffer); the same bits as Narrow.
template <class O>
struct NormalBF16 {
    using U = typename O::U;
    using T = uint16_t;
    static constexpr int kEPB = 4;
    static constexpr bool kZeroStore = true;
    NormalF32<O> f32;
    explicit NormalBF16(const FillParams& p) : f32(p) {}
    void operator()(U x0, U x1, U x2, U x3, T* out) const {
        U lo, hi;
        packed(x0, x1, x2, x3, lo, hi);
        uint32_t* w = reinterpret_cast<uint32_t*>(out);
        O::storeu32(w, lo);
        O::storeu32(w + O::L, hi);
    }
    // As above, with element k of out[0 .. 64) all-zero bits where bit k of z is set (O::L = 16).
    void operator()(U x0, U x1, U x2, U x3, T* out, uint64_t z) const {
        U lo, hi;
        packed(x0, x1, x2, x3, lo, hi);
        uint32_t* w = reinterpret_cast<uint32_t*>(out);
        O::storeu16_zero(w, lo, uint32_t(z));
        O::storeu16_zero(w + O::L, hi, uint32_t(z >> 32));
    }
    void packed(U x0, U x1, U x2, U x3, U& lo, U& hi) const {
        typename O::F z0, z1, z2, z3;
        box_muller32<O>(x0, x1, z0, z1);
        box_muller32<O>(x2, x3, z2, z3);
        auto bits = [this](typename O::F z) { return O::bf16_bits(O::fmaf_(z, f32.sd, f32.mean)); };
        // Word 2l holds elements 4l, 4l+1 of block l; word 2l+1 holds 4l+2, 4l+3 (little-endian).
        const U p01 = O::or32(bits(z0), O::template sll32<16>(bits(z1)));
        const U p23 = O::or32(bits(z2), O::template sll32<16>(bits(z3)));
        O::interleave32(p01, p23, lo, hi);
    }
};
template <class O> using TruncatedNormalF16 = Narrow<O, TruncatedNormalF32, false>;
template <class O> using TruncatedNormalBF16 = Narrow<O, TruncatedNormalF32, true>;

// Elements at arbitrary global indices: each lane computes its element's block, the transform
// turns the L blocks into L * kEPB values, and each lane keeps the one of its element. Costs
// kEPB times a range fill per element, so it pays off when few elements of a range are needed.
template <class O, template <class> class Tr>
void fill_at(const FillParams& p, const uint64_t* index, uint64_t n, void* out_v) {
    using X = Tr<O>;
    using T = typename X::T;
    const X tr(p);
    const Philox<O> philox(p.key);
    T* out = static_cast<T*>(out_v);
    alignas(64) uint32_t lo[O::L], hi[O::L];
    alignas(64) T tmp[O::L * X::kEPB];
    for (uint64_t i = 0; i < n; i += O::L) {
        const uint64_t m = (n - i < uint64_t(O::L)) ? n - i : uint64_t(O::L);
        for (int l = 0; l < O::L; ++l) {
            const uint64_t j = p.block_base + index[i + (uint64_t(l) < m ? uint64_t(l) : 0)] / X::kEPB;
            lo[l] = static_cast<uint32_t>(j);
            hi[l] = static_cast<uint32_t>(j >> 32);
        }
        typename O::U x0, x1, x2, x3;
        philox.rounds(O::loadu(lo), O::loadu(hi), x0, x1, x2, x3);
        tr(x0, x1, x2, x3, tmp);
        for (uint64_t l = 0; l < m; ++l) out[i + l] = tmp[l * X::kEPB + index[i + l] % X::kEPB];
    }
}

// Zeroes the elements whose bit is set: out[k] where bit k % 64 of bits[(k / 64) * stride] ^
// flip is set. AVX-512: masked stores of zeros, 16 floats per instruction. Elsewhere an AND
// with a lane mask made from 32-bit shifts, a form GCC vectorizes (a select or a 64-bit shift
// it leaves scalar, with a branch per element). Integer bit patterns only, so every path gives
// the same bits.
template <class O, class T>
void zero_strided(T* out, const uint64_t* bits, uint64_t stride, uint64_t n, uint64_t flip) {
    if constexpr (O::kMaskedZero) {
        for (uint64_t c = 0; c < n; c += 64) {
            const uint64_t z = bits[c / 64 * stride] ^ flip;
            O::zero64(out + c, n - c < 64 ? z & ((uint64_t{1} << (n - c)) - 1) : z);
        }
        return;
    }
    uint64_t c = 0;
    for (; c + 64 <= n; c += 64) {
        T* o = out + c;
        const uint64_t z = bits[c / 64 * stride] ^ flip;
        const uint32_t half[2] = {uint32_t(z), uint32_t(z >> 32)};
        for (int h = 0; h < 2; ++h)
            for (uint32_t k = 0; k < 32; ++k) o[32 * h + k] &= T(T((half[h] >> k) & 1u) - 1u);
    }
    for (; c < n; ++c)
        if (((bits[c / 64 * stride] ^ flip) >> (c % 64)) & 1) out[c] = T(0);
}

template <class O, class T>
void zero_where(void* out, const uint64_t* bits, uint64_t n, uint64_t flip) {
    zero_strided<O>(static_cast<T*>(out), bits, 1, n, flip);
}

// Bits o .. o + len - 1 (len in 1 .. 64, o + len <= the mask's length) of a mask whose word w
// is words[w * stride] ^ flip, as the low len bits.
inline uint64_t mask_bits(const uint64_t* words, uint64_t stride, uint64_t flip, uint64_t o, uint64_t len) {
    const uint64_t w = o / 64, s = o % 64;
    uint64_t m = (words[w * stride] ^ flip) >> s;
    if (s != 0 && s + len > 64) m |= (words[(w + 1) * stride] ^ flip) << (64 - s);
    return len == 64 ? m : m & ((uint64_t{1} << len) - 1);
}

// Whether transform X has the masked operator() (it declares kZeroStore).
template <class X, class = void>
struct HasZeroStore : std::false_type {};
template <class X>
struct HasZeroStore<X, std::void_t<decltype(X::kZeroStore)>> : std::bool_constant<X::kZeroStore> {};

// A sparse row in one pass: out[0 .. n) as fill_range's elements first .. first + n - 1, with
// all-zero bits where bit k of the mask (word w at words[w * stride] ^ flip) is set. Normal
// transforms with a masked store (AVX-512, 64 elements a batch) zero in registers as they
// store; elsewhere a range fill, then the zeros right after it.
template <class O, template <class> class Tr>
void fill_range_where(const FillParams& p, uint64_t first, uint64_t n, void* out_v, const uint64_t* words,
                      uint64_t stride, uint64_t flip) {
    using X = Tr<O>;
    using T = typename X::T;
    T* const out = static_cast<T*>(out_v);
    constexpr uint64_t kBatch = uint64_t(O::L) * X::kEPB;
    if constexpr (!(O::kMaskedZero && HasZeroStore<X>::value && kBatch == 64)) {
        using Bits = std::conditional_t<sizeof(T) == 2, uint16_t, std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>;
        fill_range<O, Tr>(p, first, n, out);
        zero_strided<O>(reinterpret_cast<Bits*>(out), words, stride, n, flip);
    } else {
        // Elements before the first block boundary and after the last whole batch: fewer than
        // 4 and 64, through the range fill and a loop over their zero bits.
        auto edge = [&](uint64_t o, uint64_t len) {
            if (len == 0) return;
            fill_range<O, Tr>(p, first + o, len, out + o);
            for (uint64_t z = mask_bits(words, stride, flip, o, len); z; z &= z - 1) out[o + uint64_t(__builtin_ctzll(z))] = T(0);
        };
        const uint64_t to_block = (X::kEPB - first % X::kEPB) % X::kEPB;
        const uint64_t head = to_block < n ? to_block : n, whole = (n - head) / kBatch;
        edge(0, head);
        const X tr(p);
        whole_batches(Philox<O>(p.key), p.block_base + (first + head) / X::kEPB, whole, [&](auto x0, auto x1, auto x2, auto x3, uint64_t b) {
            const uint64_t o = head + b * kBatch;
            tr(x0, x1, x2, x3, out + o, mask_bits(words, stride, flip, o, 64));
        });
        edge(head + whole * kBatch, n - head - whole * kBatch);
    }
}

// Counts keys below two thresholds: popcounts of below64's masks (AVX-512: a compare into a
// mask register per 64 keys). Byte-lane counters cost one op less per 64 keys but their
// 64-lane reduction outweighs that on lines shorter than about 4096.
template <class O>
void count_below(const uint8_t* keys, uint64_t n, uint32_t a, uint32_t b, uint64_t* counts) {
    const uint8_t ta = uint8_t(a), tb = uint8_t(b);
    uint64_t ca = 0, cb = 0, p = 0;
    for (; n - p >= 64; p += 64) {
        ca += uint64_t(__builtin_popcountll(O::below64(keys + p, ta)));
        cb += uint64_t(__builtin_popcountll(O::below64(keys + p, tb)));
    }
    for (; p < n; ++p) ca += keys[p] < ta, cb += keys[p] < tb;
    counts[0] = ca;
    counts[1] = cb;
}

template <class O>
void below_bits(const uint8_t* keys, uint64_t n, uint32_t t, uint64_t* bits) {
    const uint64_t words = (n + 63) / 64;
    if (t == 0 || t > 0xFF) {  // none below 0; all below 256
        for (uint64_t w = 0; w < words; ++w) bits[w] = t == 0 ? 0 : ~uint64_t{0};
        if (t != 0 && n % 64) bits[words - 1] = (uint64_t{1} << (n % 64)) - 1;
        return;
    }
    uint64_t p = 0;
    for (; n - p >= 64; p += 64) bits[p / 64] = O::below64(keys + p, uint8_t(t));
    if (p < n) {
        uint64_t w = 0;
        for (uint64_t j = 0; p + j < n; ++j) w |= uint64_t{keys[p + j] < t} << j;
        bits[p / 64] = w;
    }
}

template <class O>
void tie_bits(const uint8_t* keys, uint64_t n, uint32_t t, uint64_t* below, uint64_t* equal) {
    const uint8_t lt = uint8_t(t), le = uint8_t(t + 1);  // keys < 0: none; keys < 256: all
    const uint64_t all = t == 0xFF ? ~uint64_t{0} : 0;
    uint64_t p = 0;
    for (; n - p >= 64; p += 64) {
        const uint64_t b = O::below64(keys + p, lt);
        below[p / 64] = b;
        equal[p / 64] = (O::below64(keys + p, le) | all) & ~b;
    }
    if (p < n) {
        uint64_t b = 0, e = 0;
        for (uint64_t j = 0; p + j < n; ++j) b |= uint64_t{keys[p + j] < t} << j, e |= uint64_t{keys[p + j] == t} << j;
        below[p / 64] = b;
        equal[p / 64] = e;
    }
}

// Two levels of 15 counts: the number of thresholds 16 h (h = 1 .. 15) with fewer than z keys
// below them is t* / 16; then the number of t* / 16 * 16 + i (i = 1 .. 15) with fewer than z
// below is t* mod 16 (fewer than z keys below x exactly when x <= t*). The padding 0xFF is
// below no threshold (at most 255), but equals t* = 255.
template <class O>
KthKey kth_key64(const uint8_t* keys, uint64_t n, uint64_t z, uint64_t* below, uint64_t* equal) {
    auto count = [keys](uint32_t t) { return uint64_t(__builtin_popcountll(O::below64(keys, uint8_t(t)))); };
    uint32_t base = 0;
    for (uint32_t h = 1; h < 16; ++h) base += count(16 * h) < z;
    base *= 16;
    uint32_t t = base;
    for (uint32_t i = 1; i < 16; ++i) t += count(base + i) < z;
    const uint64_t present = n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1;
    *below = O::below64(keys, uint8_t(t));
    *equal = (t == 0xFF ? present : O::below64(keys, uint8_t(t + 1)) & present) & ~*below;
    return KthKey{t, uint32_t(__builtin_popcountll(*below)), uint32_t(__builtin_popcountll(*equal))};
}

template <class O>
KernelTable make_table(const char* name) {
    KernelTable t{name, {}, {}, &fill_at<O, RawU64>, {}, &count_below<O>, &below_bits<O>, &tie_bits<O>, &kth_key64<O>, {}};
    auto set = [&t](Dist d, DType ty, RangeFn f) { t.fn[int(d)][int(ty)] = f; };
    set(Dist::raw, DType::u32, &fill_range<O, RawU32>);
    set(Dist::uniform, DType::f32, &fill_range<O, UniformF32>);
    set(Dist::uniform, DType::f64, &fill_range<O, UniformF64>);
    set(Dist::uniform, DType::f16, &fill_range<O, UniformF16>);
    set(Dist::uniform, DType::bf16, &fill_range<O, UniformBF16>);
    set(Dist::normal, DType::f32, &fill_range<O, NormalF32>);
    set(Dist::normal, DType::f64, &fill_range<O, NormalF64>);
    set(Dist::normal, DType::f16, &fill_range<O, NormalF16>);
    set(Dist::normal, DType::bf16, &fill_range<O, NormalBF16>);
    set(Dist::truncated_normal, DType::f32, &fill_range<O, TruncatedNormalF32>);
    set(Dist::truncated_normal, DType::f64, &fill_range<O, TruncatedNormalF64>);
    set(Dist::truncated_normal, DType::f16, &fill_range<O, TruncatedNormalF16>);
    set(Dist::truncated_normal, DType::bf16, &fill_range<O, TruncatedNormalBF16>);
    t.gather_normal[int(DType::f32)] = &fill_at<O, NormalF32>;
    t.gather_normal[int(DType::f64)] = &fill_at<O, NormalF64>;
    t.gather_normal[int(DType::f16)] = &fill_at<O, NormalF16>;
    t.gather_normal[int(DType::bf16)] = &fill_at<O, NormalBF16>;
    t.zero_where[int(DType::u32)] = t.zero_where[int(DType::f32)] = &zero_where<O, uint32_t>;
    t.zero_where[int(DType::f64)] = &zero_where<O, uint64_t>;
    t.zero_where[int(DType::f16)] = t.zero_where[int(DType::bf16)] = &zero_where<O, uint16_t>;
    t.normal_where[int(DType::f32)] = &fill_range_where<O, NormalF32>;
    t.normal_where[int(DType::f64)] = &fill_range_where<O, NormalF64>;
    t.normal_where[int(DType::f16)] = &fill_range_where<O, NormalF16>;
    t.normal_where[int(DType::bf16)] = &fill_range_where<O, NormalBF16>;
    return t;
}

}  // namespace
}  // namespace weightfill::kernels
