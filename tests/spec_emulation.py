"""Bit-exact, pure-Python emulation of docs/stream-spec.md (version 1), section 3.

This is a test oracle for the golden tests (tests/test_golden.py). It is written from the text of
the specification only and shares no code with the C++ engine, the ``weightfill`` package or
tests/reference.py. Every value is held as an exact ``fractions.Fraction``; every operation the
spec names (+, -, *, /, sqrt, fma, int -> float conversion) is carried out exactly and then
rounded once to float32 or float64, round to nearest, ties to even. It loops in Python and is
meant for a few thousand values at most.

Public helpers

* rounding: :func:`round_f32`, :func:`round_f64`, :func:`round_fmt`, :func:`sqrt_round`,
  :func:`next_below`, and the per-format arithmetic object :data:`F32` / :data:`F64`
  (``add``, ``sub``, ``mul``, ``div``, ``fma``, ``sqrt``);
* bits: :func:`exponent_of`, :func:`frexp_exact` (biased exponent / significand of an exactly
  representable value, as used by ln32 / ln64), :func:`to_bits`, :func:`from_bits`;
* generator: :func:`philox4x32_10`, :func:`stream_to_int`, :func:`block_words`,
  :func:`raw_words`;
* transforms: :func:`uniform_f32`, :func:`uniform_f64`, :func:`normal_f32`, :func:`normal_f64`,
  :func:`ln32`, :func:`ln64`, :func:`sincos32`, :func:`sincos64`;
* truncated normal (3.6): :func:`truncnorm_f32`, :func:`truncnorm_f64`,
  :func:`truncnorm_float32_path`, :func:`erfinv_ratio`, :class:`TruncnormConstants`;
  :func:`parse_erfinv_header` reads the erfinv coefficients from csrc/simd/erfinv_coeffs.hpp
  (part of the spec) at import; the per-call constants (cL0, cH0, w2, lowest, highest) are
  inputs, computed by the caller (the golden tests take weightfill._truncnorm.constants, the
  spec's definition, and check it against mpmath);
* element level: :func:`emulate`, :func:`emulate_truncnorm`.

Signed zeros are not modelled (a Fraction has no sign of zero); the transforms never need one
for the parameters the golden tests use.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------------------------
# IEEE 754 binary formats and correctly rounded arithmetic on Fractions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fmt:
    name: str
    p: int  # significand bits, including the hidden bit
    emin: int  # smallest normal exponent
    emax: int  # largest finite exponent
    bias: int
    np_dtype: type
    uint_dtype: type


FMT32 = Fmt("float32", 24, -126, 127, 127, np.float32, np.uint32)
FMT64 = Fmt("float64", 53, -1022, 1023, 1023, np.float64, np.uint64)


def exponent_of(x: Fraction) -> int:
    """floor(log2 |x|) for x != 0, exactly."""
    n, d = abs(x.numerator), x.denominator
    if n == 0:
        raise ValueError("exponent_of(0)")
    e = n.bit_length() - d.bit_length()
    # now 2^(e-1) < n/d < 2^(e+1)
    if e >= 0:
        if n < (d << e):
            e -= 1
    else:
        if (n << -e) < d:
            e -= 1
    return e


def _pow2(k: int) -> Fraction:
    return Fraction(1 << k) if k >= 0 else Fraction(1, 1 << -k)


def round_fmt(x: Fraction, fmt: Fmt) -> Fraction:
    """fl(x): x rounded to the nearest value of ``fmt``, ties to even (gradual underflow)."""
    if not isinstance(x, Fraction):
        x = Fraction(x)
    if x == 0:
        return Fraction(0)
    sign = -1 if x < 0 else 1
    n, d = abs(x.numerator), x.denominator
    e = max(exponent_of(x), fmt.emin)
    shift = fmt.p - 1 - e  # quantum of the binade is 2^-shift
    num, den = (n << shift, d) if shift >= 0 else (n, d << -shift)
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and (q & 1)):
        q += 1
    # q <= 2^p; q == 2^p is the next binade's first value, still exactly representable
    if q > 0 and exponent_of(Fraction(q)) - shift > fmt.emax:
        raise OverflowError(f"{float(x)!r} overflows {fmt.name}")
    return sign * Fraction(q) * _pow2(-shift)


def round_f32(x: Fraction) -> Fraction:
    return round_fmt(x, FMT32)


def round_f64(x: Fraction) -> Fraction:
    return round_fmt(x, FMT64)


def is_representable(x: Fraction, fmt: Fmt) -> bool:
    return round_fmt(x, fmt) == x


def sqrt_round(x: Fraction, fmt: Fmt) -> Fraction:
    """fl(sqrt(x)), correctly rounded (ties to even, though a tie cannot occur for float x)."""
    if not isinstance(x, Fraction):
        x = Fraction(x)
    if x < 0:
        raise ValueError("sqrt of a negative number")
    if x == 0:
        return Fraction(0)
    # 2^E <= x < 2^(E+1)  =>  2^(E//2) <= sqrt(x) < 2^(E//2 + 1)
    e = exponent_of(x) // 2
    if e < fmt.emin:
        raise ValueError("subnormal sqrt result not supported")
    shift = fmt.p - 1 - e
    # S = x * 2^(2 shift); sqrt(S) in [2^(p-1), 2^p); m = round(sqrt(S))
    s = x * _pow2(2 * shift)
    m0 = math.isqrt(s.numerator // s.denominator)  # == floor(sqrt(S)) for real S >= 0
    # round up iff sqrt(S) > m0 + 1/2, i.e. 4 S > (2 m0 + 1)^2 ; equality is a tie
    lhs = 4 * s
    rhs = Fraction((2 * m0 + 1) ** 2)
    m = m0
    if lhs > rhs or (lhs == rhs and (m0 & 1)):
        m += 1
    r = Fraction(m) * _pow2(-shift)
    assert r == round_fmt(r, fmt)
    return r


def next_below(h: Fraction, fmt: Fmt) -> Fraction:
    """The largest value of ``fmt`` strictly below the representable value ``h``."""
    assert is_representable(h, fmt)
    tiny = _pow2(fmt.emin - fmt.p + 1)
    if h == 0:
        return -tiny
    if h > 0:
        e = max(exponent_of(h), fmt.emin)
        step = _pow2(e - fmt.p + 1)
        if h == _pow2(e) and e > fmt.emin:
            step = _pow2(e - fmt.p)  # just below a power of two the spacing halves
        return h - step
    # h < 0: move away from zero
    e = max(exponent_of(h), fmt.emin)
    return h - _pow2(e - fmt.p + 1)


class Arith:
    """Correctly rounded IEEE operations of one format on exact Fractions."""

    def __init__(self, fmt: Fmt):
        self.fmt = fmt

    def rnd(self, x) -> Fraction:
        return round_fmt(Fraction(x), self.fmt)

    def add(self, a, b):
        return self.rnd(a + b)

    def sub(self, a, b):
        return self.rnd(a - b)

    def mul(self, a, b):
        return self.rnd(a * b)

    def div(self, a, b):
        return self.rnd(Fraction(a) / Fraction(b))

    def fma(self, a, b, c):
        return self.rnd(a * b + c)  # one rounding of the exact a*b + c

    def sqrt(self, a):
        return sqrt_round(Fraction(a), self.fmt)

    def from_int(self, n: int):
        return self.rnd(Fraction(n))


F32 = Arith(FMT32)
F64 = Arith(FMT64)


# --------------------------------------------------------------------------------------------
# Bit patterns
# --------------------------------------------------------------------------------------------


def to_bits(x: Fraction, fmt: Fmt) -> int:
    """IEEE bit pattern of the exactly representable (normal or zero) value x."""
    if not is_representable(x, fmt):
        raise ValueError(f"{x} is not a {fmt.name} value")
    if fmt is FMT32:
        return struct.unpack("<I", struct.pack("<f", float(x)))[0]
    return struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def from_bits(bits: int, fmt: Fmt) -> Fraction:
    if fmt is FMT32:
        v = struct.unpack("<f", struct.pack("<I", bits))[0]
    else:
        v = struct.unpack("<d", struct.pack("<Q", bits))[0]
    if not math.isfinite(v):
        raise ValueError("not finite")
    return Fraction(v)  # exact: float -> Fraction is exact


def frexp_exact(u: Fraction, fmt: Fmt) -> tuple[int, Fraction]:
    """(e, m) with e = biased exponent of u - bias and m = u * 2^-e in [1, 2).

    Done on the bit pattern, as the spec's ln32/ln64 describe ("bit manipulation, exact"), and
    cross-checked against the arithmetic definition. u must be a positive normal value."""
    bits = to_bits(u, fmt)
    mant_bits = fmt.p - 1
    exp_bits = (32 if fmt is FMT32 else 64) - 1 - mant_bits  # 8 or 11
    biased = (bits >> mant_bits) & ((1 << exp_bits) - 1)
    if biased == 0 or u <= 0:
        raise ValueError("frexp_exact needs a positive normal value")
    e = biased - fmt.bias
    # m: same significand field, biased exponent field replaced by the bias (exponent 0)
    m_bits = (bits & ((1 << mant_bits) - 1)) | (fmt.bias << mant_bits)
    m = from_bits(m_bits, fmt)
    assert e == exponent_of(u) and m == u * _pow2(-e) and 1 <= m < 2
    return e, m


# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------


def _ln2_fraction(bits: int = 260) -> Fraction:
    """ln 2 to within 2^-bits, from ln 2 = sum_{k>=1} 1/(k 2^k), integer arithmetic."""
    scale = 1 << (bits + 16)
    acc = 0
    k = 1
    while True:
        term = scale // (k << k)
        if term == 0:
            break
        acc += term
        k += 1
    return Fraction(acc, scale)


def _atan_inv(x: int, scale: int) -> int:
    """scale * atan(1/x), truncated series, integer arithmetic."""
    total = 0
    power = scale // x
    n = 1
    sign = 1
    x2 = x * x
    while power:
        total += sign * (power // n)
        power //= x2
        n += 2
        sign = -sign
    return total


def _pi_fraction(bits: int = 260) -> Fraction:
    """pi to within ~2^-bits by Machin's formula, integer arithmetic."""
    scale = 1 << (bits + 16)
    return Fraction(16 * _atan_inv(5, scale) - 4 * _atan_inv(239, scale), scale)


def _mp_to_fraction(v) -> Fraction:
    man, exp = v.man_exp
    return Fraction(man) * _pow2(exp)


def _constants():
    try:
        import mpmath

        ctx = mpmath.mp.clone()
        ctx.dps = 60
        ln2 = _mp_to_fraction(ctx.log(2))
        pi = _mp_to_fraction(ctx.pi)
        # independent cross-check of the mpmath values (agree to ~190 bits)
        assert abs(ln2 - _ln2_fraction()) < Fraction(1, 1 << 190)
        assert abs(pi - _pi_fraction()) < Fraction(1, 1 << 190)
    except ImportError:  # pragma: no cover - mpmath is a test dependency
        ln2 = _ln2_fraction()
        pi = _pi_fraction()
    return ln2, pi


LN2, PI = _constants()

# float32 (spec 3.3)
LN2_HI_32 = from_bits(0x3F317200, FMT32)
assert LN2_HI_32 == Fraction("0.693145751953125")
LN2_LO_32 = round_f32(LN2 - LN2_HI_32)
SQRT2_32 = from_bits(0x3FB504F3, FMT32)
assert SQRT2_32 == round_f32(sqrt_round(Fraction(2), FMT32))
C_32 = round_f32(PI) * _pow2(-23)
LOG_COEF_32 = [round_f32(Fraction(2, 2 * n + 1)) for n in range(5)]  # 2, 2/3, ..., 2/9
SIN_COEF_32 = [round_f32(Fraction((-1) ** n, math.factorial(2 * n + 1))) for n in range(1, 5)]
COS_COEF_32 = [round_f32(Fraction((-1) ** n, math.factorial(2 * n))) for n in range(1, 6)]

# float64 (spec 3.4)
LN2_HI_64 = from_bits(0x3FE62E42FEE00000, FMT64)
LN2_LO_64 = round_f64(LN2 - LN2_HI_64)
# "the same algorithm in float64": the reduction threshold is fl64(sqrt 2) (0x3FF6A09E667F3BCD)
SQRT2_64 = sqrt_round(Fraction(2), FMT64)
assert to_bits(SQRT2_64, FMT64) == 0x3FF6A09E667F3BCD
C_64 = round_f64(PI) * _pow2(-52)
LOG_COEF_64 = [round_f64(Fraction(2, 2 * n + 1)) for n in range(11)]  # 2, ..., 2/21
SIN_COEF_64 = [round_f64(Fraction((-1) ** n, math.factorial(2 * n + 1))) for n in range(1, 9)]
COS_COEF_64 = [round_f64(Fraction((-1) ** n, math.factorial(2 * n))) for n in range(1, 10)]


def _horner(A: Arith, x2, coefs):
    """fma(x2, fma(x2, ... fma(x2, c[-1], c[-2]) ..., c[1]), c[0]), as written in the spec."""
    acc = A.fma(x2, coefs[-1], coefs[-2])
    for c in reversed(coefs[:-2]):
        acc = A.fma(x2, acc, c)
    return acc


# --------------------------------------------------------------------------------------------
# Section 3.1 / 3.2: uniform
# --------------------------------------------------------------------------------------------


def _uniform_params(A: Arith, low, high):
    L = A.rnd(Fraction(low))
    H = A.rnd(Fraction(high))
    D = A.sub(H, L)
    return L, H, D


def _uniform_one(A: Arith, u: Fraction, L, H, D):
    x = A.fma(u, D, L)
    if x >= H and H > L:
        x = next_below(H, A.fmt)
    return x


def uniform_f32(words, low, high) -> list[Fraction]:
    """Spec 3.1 for 32-bit words ``words``; returns exact float32 values as Fractions."""
    L, H, D = _uniform_params(F32, low, high)
    out = []
    for w in words:
        u = Fraction(int(w) >> 8, 1 << 24)
        out.append(_uniform_one(F32, u, L, H, D))
    return out


def uniform_f64(words64, low, high) -> list[Fraction]:
    """Spec 3.2 for 64-bit words ``U``; returns exact float64 values as Fractions."""
    L, H, D = _uniform_params(F64, low, high)
    out = []
    for U in words64:
        u = Fraction(int(U) >> 11, 1 << 53)
        out.append(_uniform_one(F64, u, L, H, D))
    return out


# --------------------------------------------------------------------------------------------
# Section 3.3 / 3.4: normal
# --------------------------------------------------------------------------------------------


def ln32(u: Fraction) -> Fraction:
    A = F32
    e, m = frexp_exact(u, FMT32)
    if m > SQRT2_32:
        m = m / 2  # exact
        e = e + 1
    t = A.div(A.sub(m, 1), A.add(m, 1))
    t2 = A.mul(t, t)
    p = _horner(A, t2, LOG_COEF_32)
    ef = A.from_int(e)
    return A.fma(ef, LN2_HI_32, A.fma(ef, LN2_LO_32, A.mul(t, p)))


def ln64(u: Fraction) -> Fraction:
    A = F64
    e, m = frexp_exact(u, FMT64)
    if m > SQRT2_64:
        m = m / 2
        e = e + 1
    t = A.div(A.sub(m, 1), A.add(m, 1))
    t2 = A.mul(t, t)
    p = _horner(A, t2, LOG_COEF_64)
    ef = A.from_int(e)
    return A.fma(ef, LN2_HI_64, A.fma(ef, LN2_LO_64, A.mul(t, p)))


def _sincos(A: Arith, phi, sin_coefs, cos_coefs):
    x2 = A.mul(phi, phi)
    sp = _horner(A, x2, sin_coefs)
    s = A.fma(A.mul(x2, phi), sp, phi)
    cp = _horner(A, x2, cos_coefs)
    c = A.fma(x2, cp, 1)
    return s, c


def sincos32(phi: Fraction):
    return _sincos(F32, phi, SIN_COEF_32, COS_COEF_32)


def sincos64(phi: Fraction):
    return _sincos(F64, phi, SIN_COEF_64, COS_COEF_64)


def _octant(s, c, o):
    if o in (1, 2, 5, 6):
        s, c = c, s
    if o in (2, 3, 4, 5):
        c = -c
    if o in (4, 5, 6, 7):
        s = -s
    return s, c


def normal_pair_f32(a: int, b: int):
    """(z0, z1) of spec 3.3 for the 32-bit words (a, b), before mean/std."""
    A = F32
    v = A.from_int(int(a) >> 1)
    u1 = A.rnd(v * _pow2(-31) + _pow2(-32))
    r = A.sqrt(-2 * ln32(u1))  # -2 * ln is exact
    q = int(b) >> 8
    o = q >> 21
    f = q & ((1 << 21) - 1)
    if o & 1:
        f = (1 << 21) - f
    phi = A.mul(Fraction(f), C_32)
    s, c = sincos32(phi)
    s, c = _octant(s, c, o)
    return A.mul(r, c), A.mul(r, s)


def normal_pair_f64(Aw: int, Bw: int):
    """(z0, z1) of spec 3.4 for the 64-bit words (A, B), before mean/std."""
    A = F64
    u1 = Fraction(int(Aw) >> 12, 1 << 52) + _pow2(-53)  # exact
    assert is_representable(u1, FMT64)
    r = A.sqrt(-2 * ln64(u1))
    q = int(Bw) >> 11
    o = q >> 50
    f = q & ((1 << 50) - 1)
    if o & 1:
        f = (1 << 50) - f
    phi = A.mul(Fraction(f), C_64)
    s, c = sincos64(phi)
    s, c = _octant(s, c, o)
    return A.mul(r, c), A.mul(r, s)


def _scale(A: Arith, z, mean, std):
    return A.fma(z, A.rnd(Fraction(std)), A.rnd(Fraction(mean)))


def normal_f32(pairs, mean, std) -> list[Fraction]:
    """Spec 3.3: for each pair (a, b) of 32-bit words, the two values (even k, odd k)."""
    out = []
    for a, b in pairs:
        z0, z1 = normal_pair_f32(a, b)
        out += [_scale(F32, z0, mean, std), _scale(F32, z1, mean, std)]
    return out


def normal_f64(pairs, mean, std) -> list[Fraction]:
    """Spec 3.4: for each pair (A, B) of 64-bit words, the two values (even k, odd k)."""
    out = []
    for Aw, Bw in pairs:
        z0, z1 = normal_pair_f64(Aw, Bw)
        out += [_scale(F64, z0, mean, std), _scale(F64, z1, mean, std)]
    return out


# --------------------------------------------------------------------------------------------
# Sections 1 and 2: Philox4x32-10, key and counter layout
# --------------------------------------------------------------------------------------------

M32 = 0xFFFFFFFF
PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85


def philox4x32_10(ctr, key):
    """Philox4x32 with 10 rounds on one counter (c0..c3) and key (k0, k1); Python ints."""
    c0, c1, c2, c3 = (int(x) & M32 for x in ctr)
    k0, k1 = (int(x) & M32 for x in key)
    for rnd in range(10):
        if rnd:
            k0 = (k0 + PHILOX_W0) & M32
            k1 = (k1 + PHILOX_W1) & M32
        p0 = PHILOX_M0 * c0
        p1 = PHILOX_M1 * c2
        hi0, lo0 = p0 >> 32, p0 & M32
        hi1, lo1 = p1 >> 32, p1 & M32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return (c0, c1, c2, c3)


def stream_to_int(stream) -> int:
    if isinstance(stream, str):
        return int.from_bytes(hashlib.sha256(stream.encode("utf-8")).digest()[:8], "little")
    t = int(stream)
    if not 0 <= t < 1 << 64:
        raise ValueError("stream out of range")
    return t


def block_words(seed: int, stream, j: int):
    """The four words of block j for (seed, stream)."""
    if not 0 <= seed < 1 << 64:
        raise ValueError("seed out of range")
    if not 0 <= j < 1 << 64:
        raise ValueError("block out of range")
    t = stream_to_int(stream)
    return philox4x32_10((j & M32, j >> 32, t & M32, t >> 32), (seed & M32, seed >> 32))


def raw_words(seed: int, stream, offset: int, count: int) -> np.ndarray:
    """Words offset .. offset+count-1 of the (seed, stream) sequence (spec 2, "Raw words")."""
    out = np.empty(count, dtype=np.uint32)
    cache = {}
    for idx in range(count):
        n = offset + idx
        j = n // 4
        if j not in cache:
            cache[j] = block_words(seed, stream, j)
        out[idx] = cache[j][n % 4]
    return out


# --------------------------------------------------------------------------------------------
# Element level
# --------------------------------------------------------------------------------------------


def _to_numpy(values, fmt: Fmt) -> np.ndarray:
    bits = np.array([to_bits(v, fmt) for v in values], dtype=fmt.uint_dtype)
    return bits.view(fmt.np_dtype)


def emulate_indices(dist: str, dtype, seed: int, stream, indices, a, b) -> np.ndarray:
    """Values of elements ``indices`` (flat C-order indices into the full tensor).

    dist is "uniform" (a, b = low, high) or "normal" (a, b = mean, std); dtype float32/float64.
    """
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        fmt = FMT32
    elif dtype == np.float64:
        fmt = FMT64
    else:
        raise ValueError(dtype)
    per_block = 4 if fmt is FMT32 else 2
    blocks = {}
    values = []
    for i in indices:
        i = int(i)
        j, k = divmod(i, per_block)
        key = (j,)
        if key not in blocks:
            x = block_words(seed, stream, j)
            if dist == "uniform":
                if fmt is FMT32:
                    blocks[key] = uniform_f32(x, a, b)
                else:
                    U = [x[0] + (x[1] << 32), x[2] + (x[3] << 32)]
                    blocks[key] = uniform_f64(U, a, b)
            elif dist == "normal":
                if fmt is FMT32:
                    blocks[key] = normal_f32([(x[0], x[1]), (x[2], x[3])], a, b)
                else:
                    blocks[key] = normal_f64([(x[0] + (x[1] << 32), x[2] + (x[3] << 32))], a, b)
            else:
                raise ValueError(dist)
        values.append(blocks[key][k])
    return _to_numpy(values, fmt)


def emulate(dist: str, dtype, seed: int, stream, first_index: int, count: int, a, b) -> np.ndarray:
    """Elements first_index .. first_index+count-1 of a tensor, as a numpy array of ``dtype``."""
    return emulate_indices(dist, dtype, seed, stream, range(first_index, first_index + count), a, b)


# --------------------------------------------------------------------------------------------
# Section 3.6: truncated_normal
# --------------------------------------------------------------------------------------------
#
# The erfinv polynomials are part of the specification but live in a generated header; they are
# parsed from it each time this module is imported (never copied here), so a regenerated header
# is picked up automatically. The branch structure (starts, t-offsets, w or sqrt(w)) is the
# spec's table in 3.6 and is checked against the header.

ERFINV_HEADER = Path(__file__).resolve().parent.parent / "csrc" / "simd" / "erfinv_coeffs.hpp"

# Spec 3.6 table: (header name, start of the branch, t-offset, t uses sqrt(w)). The first
# branch of a set has no start in the table: it is taken for every w below the second's start.
SPEC_BRANCHES_32 = [("F32_A", 0, Fraction(3125, 1000), False),
                    ("F32_B", Fraction(625, 100), Fraction(325, 100), True),
                    ("F32_C", 16, 7, True)]
SPEC_BRANCHES_64 = [("A", 0, Fraction(15625, 10000), False),
                    ("B", Fraction(3125, 1000), Fraction(46875, 10000), False),
                    ("C", Fraction(625, 100), Fraction(325, 100), True),
                    ("D", 16, 6, True),
                    ("E", 64, 16, True)]

_NUM = r"[-+]?(?:0[xX][0-9a-fA-F]*\.?[0-9a-fA-F]*[pP][-+]?\d+|\d+\.?\d*(?:[eE][-+]?\d+)?)"


def _cxx_literal(text: str, fmt: Fmt) -> Fraction:
    """The value of a C++ floating literal (hex or decimal, optional f suffix) of type fmt."""
    text = text.strip()
    is_hex = text.lstrip("+-").lower().startswith("0x")
    if re.fullmatch(r".*[pP][-+]?\d+[fF]" if is_hex else r".*[fF]", text):
        text = text[:-1]  # the f suffix (a hex literal's digits may end in f, its exponent not)
    if is_hex:
        # float.fromhex is exact for at most 53 significant bits; check that it was
        sign = -1 if text.startswith("-") else 1
        body = text.lstrip("+-")[2:]
        mant, exp = re.split(r"[pP]", body)
        ip, _, fp = mant.partition(".")
        exact = Fraction(int(ip or "0", 16) * 16 ** len(fp) + int(fp or "0", 16), 16 ** len(fp))
        exact = sign * exact * _pow2(int(exp))
    else:
        exact = Fraction(text)
    return round_fmt(exact, fmt)


def parse_erfinv_header(path=None) -> dict:
    """{name: {"offset", "coefs" (lowest first), "fmt", "comment"}} from erfinv_coeffs.hpp.

    Each literal is given the value the C++ compiler gives it: the exact literal rounded once
    to the array's type (double or float)."""
    text = Path(path or ERFINV_HEADER).read_text()
    out = {}
    block = (r"//\s*branch\s+(\w+):([^\n]*)\n"
             r"\s*inline\s+constexpr\s+(double|float)\s+k(\w+)_offset\s*=\s*([^;]+);\s*"
             r"inline\s+constexpr\s+(double|float)\s+k(\w+)\[(\d+)\]\s*=\s*"
             r"\{([^}]*)\}\s*;")
    for m in re.finditer(block, text):
        name, comment, t_off, n_off, off, t_arr, n_arr, size, body = m.groups()
        if not (name == n_off == n_arr and t_off == t_arr):
            raise ValueError(f"erfinv header: inconsistent block for branch {name}")
        fmt = FMT64 if t_arr == "double" else FMT32
        lits = [s for s in (x.strip() for x in body.split(",")) if s]
        if len(lits) != int(size) or not all(re.fullmatch(_NUM + "[fF]?", s) for s in lits):
            raise ValueError(f"erfinv header: cannot parse the coefficients of branch {name}")
        out[name] = {"offset": _cxx_literal(off, fmt),
                     "coefs": [_cxx_literal(s, fmt) for s in lits],
                     "fmt": fmt, "comment": comment.strip()}
    if not out:
        raise ValueError(f"no erfinv branches found in {path or ERFINV_HEADER}")
    return out


@dataclass(frozen=True)
class ErfinvBranch:
    name: str
    start: Fraction
    offset: Fraction
    use_sqrt: bool
    coefs: tuple  # lowest first


def erfinv_sets(path=None):
    """(float32 set, float64 set) of ErfinvBranch, coefficients from the header, structure from
    the spec's table (the header's offsets must agree with it)."""
    hdr = parse_erfinv_header(path)
    sets = []
    for table, fmt in ((SPEC_BRANCHES_32, FMT32), (SPEC_BRANCHES_64, FMT64)):
        branches = []
        for name, start, offset, use_sqrt in table:
            h = hdr[name]
            if h["fmt"] is not fmt:
                raise ValueError(f"erfinv branch {name} has the wrong type")
            if h["offset"] != Fraction(offset):
                raise ValueError(f"erfinv branch {name}: header offset {h['offset']} != spec "
                                 f"{offset}")
            branches.append(ErfinvBranch(name, Fraction(start), Fraction(offset), use_sqrt,
                                         tuple(h["coefs"])))
        sets.append(tuple(branches))
    return tuple(sets)


ERFINV_32, ERFINV_64 = erfinv_sets()
SQRT2_FOR = {id(FMT32): SQRT2_32, id(FMT64): SQRT2_64}  # fl(sqrt 2) of the path's precision


def erfinv_ratio(A: Arith, w: Fraction, branches) -> Fraction:
    """R(w) = erfinv(y) / y of spec 3.6: the last branch whose start is <= w, t = fl(w - off)
    or fl(fl(sqrt w) - off), Horner with fma from the highest coefficient."""
    br = branches[0]
    for b in branches[1:]:
        if b.start <= w:
            br = b
    t = A.sub(A.sqrt(w) if br.use_sqrt else w, br.offset)
    c = br.coefs
    acc = c[-1]
    for k in range(len(c) - 2, -1, -1):
        acc = A.fma(acc, t, c[k])
    return acc


def _truncnorm_z(A: Arith, u: Fraction, cl0, ch0, w2, ln, branches) -> Fraction:
    """z = s * Q^-1(c / 2) of spec 3.6 for one uniform u, all in the arithmetic of A."""
    one_minus_u = 1 - u
    assert is_representable(u, A.fmt) and is_representable(one_minus_u, A.fmt)
    cl = A.fma(u, w2, cl0)
    ch = A.fma(one_minus_u, w2, ch0)
    if cl <= 1:
        c, s = cl, -1
    else:
        c, s = ch, 1
    y = A.sub(1, c)
    w = -ln(A.mul(c, A.sub(2, c)))  # negation exact
    assert w >= 0, "w < 0: no branch start is <= w"  # cannot happen: fl(c (2 - c)) <= 1
    r = erfinv_ratio(A, w, branches)
    return s * A.mul(A.mul(y, SQRT2_FOR[id(A.fmt)]), r)


@dataclass(frozen=True)
class TruncnormConstants:
    """The per-call constants of spec 3.6 as exact float64 values (Fractions)."""
    cl0: Fraction
    ch0: Fraction
    w2: Fraction
    lowest: Fraction  # values of the output dtype
    highest: Fraction

    @classmethod
    def from_floats(cls, cl0, ch0, w2, lowest, highest):
        return cls(*(Fraction(float(v)) for v in (cl0, ch0, w2, lowest, highest)))


def truncnorm_float32_path(k: TruncnormConstants) -> bool:
    """Spec 3.6 table: float32 output uses float32 arithmetic iff cL0, cH0 are 0 or >= 2^-100
    and w2 >= 2^-100."""
    lim = _pow2(-100)
    return all(v == 0 or v >= lim for v in (k.cl0, k.ch0)) and k.w2 >= lim


def truncnorm_f32(words, mean, std, k: TruncnormConstants) -> list[Fraction]:
    """Spec 3.6, float32 output, for the elements' 32-bit words; exact float32 values."""
    assert is_representable(k.lowest, FMT32) and is_representable(k.highest, FMT32)
    out = []
    if truncnorm_float32_path(k):
        A = F32
        cl0, ch0, w2 = A.rnd(k.cl0), A.rnd(k.ch0), A.rnd(k.w2)  # fl32(float64 value)
        m, sd = A.rnd(Fraction(mean)), A.rnd(Fraction(std))
        for wd in words:
            u = Fraction(2 * (int(wd) >> 9) + 1, 1 << 24)
            z = _truncnorm_z(A, u, cl0, ch0, w2, ln32, ERFINV_32)
            out.append(min(max(A.fma(z, sd, m), k.lowest), k.highest))
    else:
        A = F64
        m, sd = A.rnd(Fraction(mean)), A.rnd(Fraction(std))  # float64 arithmetic: fl64(param)
        for wd in words:
            u = Fraction(2 * int(wd) + 1, 1 << 33)
            z = _truncnorm_z(A, u, k.cl0, k.ch0, k.w2, ln64, ERFINV_64)
            # lowest/highest are float32 values, so clamping before or after the rounding to
            # float32 gives the same result (rounding is monotone)
            out.append(round_f32(min(max(A.fma(z, sd, m), k.lowest), k.highest)))
    return out


def truncnorm_f64(words64, mean, std, k: TruncnormConstants) -> list[Fraction]:
    """Spec 3.6, float64 output, for the elements' 64-bit words U; exact float64 values."""
    assert is_representable(k.lowest, FMT64) and is_representable(k.highest, FMT64)
    A = F64
    m, sd = A.rnd(Fraction(mean)), A.rnd(Fraction(std))
    out = []
    for U in words64:
        u = Fraction(2 * (int(U) >> 12) + 1, 1 << 53)
        z = _truncnorm_z(A, u, k.cl0, k.ch0, k.w2, ln64, ERFINV_64)
        out.append(min(max(A.fma(z, sd, m), k.lowest), k.highest))
    return out


def emulate_truncnorm_indices(dtype, seed: int, stream, indices, mean, std,
                              k: TruncnormConstants) -> np.ndarray:
    """truncated_normal values of elements ``indices`` (flat C-order indices of the full
    tensor). ``k`` holds the per-call constants (cL0, cH0, w2, lowest, highest) of spec 3.6."""
    dtype = np.dtype(dtype)
    fmt = FMT32 if dtype == np.float32 else FMT64
    if dtype not in (np.float32, np.float64):
        raise ValueError(dtype)
    per_block = 4 if fmt is FMT32 else 2
    words = []
    cache = {}
    for i in indices:
        j, kk = divmod(int(i), per_block)
        if j not in cache:
            cache[j] = block_words(seed, stream, j)
        x = cache[j]
        words.append(x[kk] if fmt is FMT32 else x[2 * kk] + (x[2 * kk + 1] << 32))
    values = (truncnorm_f32 if fmt is FMT32 else truncnorm_f64)(words, mean, std, k)
    return _to_numpy(values, fmt)


def emulate_truncnorm(dtype, seed: int, stream, first_index: int, count: int, mean, std,
                      k: TruncnormConstants) -> np.ndarray:
    """Elements first_index .. first_index+count-1 of a truncated_normal tensor."""
    return emulate_truncnorm_indices(dtype, seed, stream,
                                     range(first_index, first_index + count), mean, std, k)
