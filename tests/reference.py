"""Independent pure-NumPy / mpmath reference for the weightfill stream specification.

This module is a test oracle. It is written from ``docs/stream-spec.md`` (version 1) and from the
Random123 definition of Philox, and deliberately shares no code with the C++ engine or the
``weightfill`` Python package. It uses only NumPy, mpmath, ``fractions`` and ``hashlib``.

Contents

* Generator and layout (spec sections 1 and 2), bit exact:
  :func:`philox4x32`, :func:`raw_words`, :func:`stream_id`, :func:`combine_u64`.
* Exact transforms (spec section 3), i.e. the real-number values that the library's results are
  rounded approximations of:
  :func:`uniform_f32_exact`, :func:`uniform_f64_exact`, :func:`normal_f32_exact`,
  :func:`normal_f64_exact_mpmath`.
* Correctly rounded expectations where the spec fixes the result bit for bit with a single
  rounding (uniform): :func:`uniform_f32_expected`, :func:`uniform_f64_expected`.
* A bit-exact model of the spec's float32 normal algorithm (section 3.3), written directly from
  the spec with exactly emulated float32 fma: :func:`normal_f32_spec_model` (with
  :func:`ln32_spec`, :func:`sincos32_spec`, :func:`angle32_spec`). Its results are what a
  conforming engine must return bit for bit; comparing it with :func:`normal_f32_exact` measures
  the accuracy the spec's algorithm itself achieves.
* Error measures: :func:`ulp`, :func:`ulp_distance`, :func:`ulp_distance_mpmath`.
* Goodness of fit: :func:`anderson_darling` and its 0.1% critical value.
* Exact-rounding helpers used by the above: :func:`two_sum`, :func:`round_to_f32`,
  :func:`fma_f32`, :func:`fraction_to_float`.

Everything that takes many words is vectorised (uint64 arithmetic on whole arrays); only the
mpmath / Fraction functions loop in Python and are meant for small samples.
"""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction

import mpmath
import numpy as np

__all__ = [
    "M0", "M1", "W0", "W1",
    "philox4x32", "raw_words", "stream_id", "combine_u64",
    "uniform_f32_exact", "uniform_f32_expected", "uniform_f64_exact", "uniform_f64_expected",
    "u1_f32", "cos_sin_2pi_q", "normal_f32_exact", "normal_f64_exact_mpmath",
    "ln32_spec", "sincos32_spec", "angle32_spec", "normal_f32_spec_model",
    "ulp", "ulp_distance", "ulp_distance_mpmath",
    "two_sum", "round_to_f32", "fma_f32", "fraction_to_float",
]

MASK32 = 0xFFFFFFFF
_MASK32_U64 = np.uint64(MASK32)
_SHIFT32 = np.uint64(32)

# Philox4x32 constants (Random123 philox.h: PHILOX_M4x32_0/1, PHILOX_W32_0/1).
M0 = 0xD2511F53
M1 = 0xCD9E8D57
W0 = 0x9E3779B9  # golden ratio
W1 = 0xBB67AE85  # sqrt(3) - 1


# --------------------------------------------------------------------------------------------
# Section 1: Philox4x32-R
# --------------------------------------------------------------------------------------------

def philox4x32(ctr, key, rounds: int = 10) -> np.ndarray:
    """Philox4x32 with ``rounds`` rounds, vectorised over counters.

    Provenance: Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3" (SC'11)
    and Random123 ``philox.h`` (``_philox4x32round``, ``_philox4x32bumpkey``, ``philox4x32_R``)::

        (hi0, lo0) = M0 * c0 ; (hi1, lo1) = M1 * c2          32 x 32 -> 64-bit products
        c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
        between rounds: k0 += W0, k1 += W1 (mod 2^32)        (rounds - 1 bumps)

    Parameters
    ----------
    ctr : array_like, shape (n, 4) or (4,), values in [0, 2^32)
    key : array_like, shape (n, 2) or (2,), values in [0, 2^32); broadcast against ``ctr``
    rounds : int in [0, 16] (Random123's range; weightfill uses 10)

    Returns
    -------
    uint32 array of shape (n, 4) (or (4,) if ``ctr`` was 1-D): words (x0, x1, x2, x3).
    """
    if not 0 <= rounds <= 16:
        raise ValueError("rounds must be in [0, 16]")
    c = np.asarray(ctr, dtype=np.uint64)
    one_d = c.ndim == 1
    c = np.atleast_2d(c)
    if c.shape[-1] != 4 or c.ndim != 2:
        raise ValueError("ctr must have shape (n, 4)")
    k = np.asarray(key, dtype=np.uint64)
    if k.shape[-1] != 2 or k.ndim > 2:
        raise ValueError("key must have shape (2,) or (n, 2)")
    if np.any(c > _MASK32_U64) or np.any(k > _MASK32_U64):
        raise ValueError("counter and key words must be 32-bit")
    k = np.broadcast_to(k, (c.shape[0], 2))

    c0, c1, c2, c3 = (c[:, i].copy() for i in range(4))
    k0, k1 = k[:, 0].copy(), k[:, 1].copy()
    m0, m1 = np.uint64(M0), np.uint64(M1)
    w0, w1 = np.uint64(W0), np.uint64(W1)
    for r in range(rounds):
        if r > 0:
            k0 = (k0 + w0) & _MASK32_U64
            k1 = (k1 + w1) & _MASK32_U64
        p0 = m0 * c0  # < 2^64, exact in uint64
        p1 = m1 * c2
        hi0, lo0 = p0 >> _SHIFT32, p0 & _MASK32_U64
        hi1, lo1 = p1 >> _SHIFT32, p1 & _MASK32_U64
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    out = np.stack([c0, c1, c2, c3], axis=1).astype(np.uint32)
    return out[0] if one_d else out


# --------------------------------------------------------------------------------------------
# Section 2: key / counter layout, stream names, raw words
# --------------------------------------------------------------------------------------------

def stream_id(name: str) -> int:
    """Integer stream id of a stream name (spec section 2, "Stream names").

    ``int.from_bytes(SHA-256(name.encode("utf-8"))[:8], "little")``: the first eight digest bytes
    read as a little-endian unsigned 64-bit integer. Result in [0, 2^64).
    """
    if not isinstance(name, str):
        raise TypeError("stream name must be a str")
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def _check_u64(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer")
    value = int(value)
    if not 0 <= value < 2**64:
        raise ValueError(f"{name} must be in [0, 2^64)")
    return value


def raw_words(seed: int, stream, offset: int, count: int) -> np.ndarray:
    """Words ``offset .. offset+count-1`` of the (seed, stream) sequence (spec section 2).

    Layout: key ``(k0, k1) = (seed mod 2^32, seed >> 32)``; counter of block ``j`` is
    ``(j mod 2^32, j >> 32, t mod 2^32, t >> 32)`` with ``t`` the stream (an int in [0, 2^64), or a
    str mapped by :func:`stream_id`); word ``n`` is word ``n mod 4`` of block ``n // 4``, i.e. of
    ``philox4x32(counter(n // 4), key, 10)``. Blocks range over [0, 2^64), so words over [0, 2^66).

    Returns a uint32 array of length ``count``.
    """
    seed = _check_u64("seed", seed)
    if isinstance(stream, str):
        stream = stream_id(stream)
    stream = _check_u64("stream", stream)
    offset, count = int(offset), int(count)
    if offset < 0 or count < 0:
        raise ValueError("offset and count must be non-negative")
    if offset + count > 2**66:
        raise ValueError("words beyond block 2^64 - 1 do not exist")
    if count == 0:
        return np.zeros(0, dtype=np.uint32)
    first_block = offset // 4
    n_blocks = (offset + count - 1) // 4 - first_block + 1
    j = np.uint64(first_block) + np.arange(n_blocks, dtype=np.uint64)  # no wrap: checked above
    ctr = np.empty((n_blocks, 4), dtype=np.uint64)
    ctr[:, 0] = j & _MASK32_U64
    ctr[:, 1] = j >> _SHIFT32
    ctr[:, 2] = stream & MASK32
    ctr[:, 3] = stream >> 32
    key = np.array([seed & MASK32, seed >> 32], dtype=np.uint64)
    words = philox4x32(ctr, key, 10).reshape(-1)
    start = offset - 4 * first_block
    return words[start:start + count].copy()


def combine_u64(lo_words, hi_words) -> np.ndarray:
    """``lo + 2^32 * hi`` as uint64 (spec section 3 table: ``U = x_{2k} + 2^32 x_{2k+1}``,
    ``A = x0 + 2^32 x1``, ``B = x2 + 2^32 x3``)."""
    lo = np.asarray(lo_words, dtype=np.uint64)
    hi = np.asarray(hi_words, dtype=np.uint64)
    return lo | (hi << _SHIFT32)


# --------------------------------------------------------------------------------------------
# Exact-rounding helpers
# --------------------------------------------------------------------------------------------

def two_sum(a, b):
    """Knuth's TwoSum on float64 arrays: ``s = fl64(a + b)`` and ``e`` with ``s + e == a + b``
    exactly (barring overflow). Requires strict IEEE float64 arithmetic, which NumPy provides."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def round_to_f32(hi, lo=0.0) -> np.ndarray:
    """Round the exact real ``hi + lo`` to float32 (nearest, ties to even), without double
    rounding.

    ``hi``, ``lo`` are float64 with ``hi == fl64(hi + lo)`` (as returned by :func:`two_sum`).
    Casting ``hi`` alone to float32 is correct unless ``hi`` is exactly halfway between two
    float32 values and ``lo != 0``; then the tie is broken by the sign of ``lo`` by moving ``hi``
    one float64 step towards ``lo`` (no float32 midpoint lies within one float64 step of another
    midpoint). Valid for finite results within float32 range (subnormal results included: float32
    midpoints, multiples of 2^-150, are float64 numbers).
    """
    hi = np.asarray(hi, dtype=np.float64)
    lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), hi.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        r = hi.astype(np.float32)
        r64 = r.astype(np.float64)
        toward = np.where(hi >= r64, np.float32(np.inf), np.float32(-np.inf))
        other = np.nextafter(r, toward).astype(np.float64)
        is_mid = (hi != r64) & (hi == 0.5 * (r64 + other))
    fix = is_mid & (lo != 0)
    if np.any(fix):
        nudged = np.nextafter(hi, np.where(lo > 0, np.inf, -np.inf))
        r = np.where(fix, nudged.astype(np.float32), r)
    return r


def fma_f32(a, b, c) -> np.ndarray:
    """Exact emulation of the float32 fused multiply-add ``fl32(a*b + c)`` (single rounding).

    The product of two float32 numbers is exact in float64 (48 significant bits); TwoSum then
    gives the exact sum as ``hi + lo`` and :func:`round_to_f32` rounds it once."""
    a = np.asarray(a, dtype=np.float32).astype(np.float64)
    b = np.asarray(b, dtype=np.float32).astype(np.float64)
    c = np.asarray(c, dtype=np.float32).astype(np.float64)
    s, e = two_sum(a * b, c)
    return round_to_f32(s, e)


def fraction_to_float(x: Fraction, dtype=np.float64):
    """Round an exact rational to the nearest float32/float64 (ties to even), using only integer
    arithmetic (no intermediate float). Returns a NumPy scalar of ``dtype``; overflow gives inf."""
    fi = np.finfo(dtype)
    p = fi.nmant + 1          # significand bits: 24 or 53
    emin = fi.minexp          # exponent of the smallest normal: -126 or -1022
    x = Fraction(x)
    if x == 0:
        return dtype(0.0)
    sign = -1 if x < 0 else 1
    x = abs(x)
    num, den = x.numerator, x.denominator
    e = num.bit_length() - den.bit_length()      # 2^e <= x < 2^(e+1) after adjustment
    if Fraction(num, den) < Fraction(2) ** e:
        e -= 1
    e = max(e, emin)                             # subnormals share the smallest exponent
    shift = p - 1 - e                            # scale so the ulp becomes 1
    if shift >= 0:
        n, d = num << shift, den
    else:
        n, d = num, den << -shift
    q, r = divmod(n, d)
    if 2 * r > d or (2 * r == d and q & 1):
        q += 1
    # value = q * 2^-shift exactly (q <= 2^p, a carry into p+1 bits is still exact)
    try:
        val = math.ldexp(q, -shift)
    except OverflowError:
        val = math.inf
    with np.errstate(over="ignore"):
        return dtype(sign * val)      # exact for float64; for float32, exact or overflow to inf


# --------------------------------------------------------------------------------------------
# ULP measures
# --------------------------------------------------------------------------------------------

def ulp(exact, dtype) -> np.ndarray:
    """Unit in the last place of the *exact* value in ``dtype`` (float32 or float64), as float64.

    For ``2^e <= |x| < 2^(e+1)`` this is ``2^(e - p + 1)`` with p = 24 or 53; below the smallest
    normal (and for 0) it is the subnormal spacing ``2^(emin - p + 1)`` (2^-149 / 2^-1074).
    It is computed from the exponent of ``exact`` itself, not of ``exact`` rounded to ``dtype``
    (the two differ when rounding carries into the next binade, where this one is half as big,
    i.e. stricter).
    """
    fi = np.finfo(dtype)
    p = fi.nmant + 1
    x = np.abs(np.asarray(exact, dtype=np.float64))
    _, e = np.frexp(x)                      # x = m * 2^e, m in [0.5, 1)
    e = np.where(x == 0, fi.minexp + 1, e)
    e = np.maximum(e, fi.minexp + 1)
    return np.ldexp(1.0, (e - p).astype(np.int32))


def ulp_distance(x, exact, dtype) -> np.ndarray:
    """``|x - exact| / ulp(exact)`` in ``dtype`` as a float64 array.

    ``x`` are the library's values (any float dtype; float32 is converted exactly), ``exact`` the
    reference values as float64. Suitable for float32 checks, where float64's relative error
    (1.1e-16) is negligible against a float32 ulp (>= 6e-8 relative). For float64 checks use
    :func:`ulp_distance_mpmath`. Non-finite inputs give inf unless both are the same infinity.
    """
    x = np.asarray(x).astype(np.float64)
    exact = np.asarray(exact, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        d = np.abs(x - exact) / ulp(exact, dtype)
    same = x == exact
    return np.where(same, 0.0, np.where(np.isnan(d), np.inf, d))


def ulp_distance_mpmath(x, exact, dtype=np.float64) -> np.ndarray:
    """``|x - exact| / ulp(exact)`` with ``exact`` a sequence of mpmath numbers (or Fractions);
    the difference is formed exactly in mpmath, so this is right for float64 values."""
    fi = np.finfo(dtype)
    p = fi.nmant + 1
    out = np.empty(len(exact), dtype=np.float64)
    with mpmath.workprec(256):
        for i, (xi, ei) in enumerate(zip(np.asarray(x).astype(np.float64), exact)):
            if isinstance(ei, Fraction):
                ei = mpmath.mpf(ei.numerator) / ei.denominator
            ei = mpmath.mpf(ei)
            if ei == 0:
                e = fi.minexp + 1
            else:
                _, e = mpmath.frexp(ei)     # |ei| = m * 2^e, m in [0.5, 1)
                e = max(int(e), fi.minexp + 1)
            u = mpmath.ldexp(1, e - p)
            out[i] = float(abs(mpmath.mpf(float(xi)) - ei) / u)
    return out


# --------------------------------------------------------------------------------------------
# Section 3.1 / 3.2: uniform
# --------------------------------------------------------------------------------------------

def _f32_params(low, high):
    """``L = fl32(low)``, ``H = fl32(high)``, ``D = fl32(H - L)`` (spec 3.1), D rounded once from
    the exact difference."""
    L = np.float32(low)
    H = np.float32(high)
    s, e = two_sum(np.float64(H), -np.float64(L))
    D = round_to_f32(s, e)[()]
    return L, H, np.float32(D)


def uniform_f32_exact(words, low, high, return_error: bool = False):
    """Exact value ``L + u * D`` of the float32 uniform transform (spec 3.1), before its single
    rounding and before the clamp.

    ``u = (w >> 8) * 2^-24`` (exact, in [0, 1 - 2^-24]); ``L = fl32(low)``, ``H = fl32(high)``,
    ``D = fl32(H - L)`` exactly as the spec computes them (``low``/``high`` are taken as the
    float64 numbers passed in). ``u * D`` is exact in float64 (24 + 24 bits); the sum ``L + u*D``
    is returned as ``fl64(L + u*D)``, and with ``return_error=True`` also the float64 ``err``
    with ``value + err == L + u*D`` exactly (TwoSum), so ``round_to_f32(value, err)`` is the
    correctly rounded float32 result.
    """
    w = np.asarray(words, dtype=np.uint32).astype(np.uint64)
    u = (w >> np.uint64(8)).astype(np.float64) * 2.0**-24
    L, _, D = _f32_params(low, high)
    s, e = two_sum(np.float64(L), u * np.float64(D))
    return (s, e) if return_error else s


def uniform_f32_expected(words, low, high) -> np.ndarray:
    """The float32 values spec 3.1 defines, bit for bit: ``x = fma(u, D, L)`` (one rounding of
    the exact value), then ``if x >= H and H > L: x = largest float32 below H``."""
    L, H, _ = _f32_params(low, high)
    s, e = uniform_f32_exact(words, low, high, return_error=True)
    x = round_to_f32(s, e)
    if H > L:
        below = np.nextafter(H, np.float32(-np.inf))
        x = np.where(x >= H, below, x).astype(np.float32)
    return x


def uniform_f64_exact(U, low, high) -> list:
    """Exact values ``L + u * D`` of the float64 uniform transform (spec 3.2) as Fractions.

    ``u = (U >> 11) * 2^-53`` for 64-bit words ``U``; ``L = fl64(low)``, ``H = fl64(high)``,
    ``D = fl64(H - L)`` (Python float arithmetic is IEEE float64). Python loop: small samples.
    """
    L, H = float(low), float(high)
    D = H - L
    FL, FD = Fraction(L), Fraction(D)
    out = []
    for w in np.asarray(U, dtype=np.uint64).reshape(-1):
        u = Fraction(int(w) >> 11, 2**53)
        out.append(FL + u * FD)
    return out


def uniform_f64_expected(U, low, high) -> np.ndarray:
    """The float64 values spec 3.2 defines: the exact value rounded once (ties to even), then the
    same clamp as 3.1 in float64."""
    L, H = float(low), float(high)
    x = np.array([fraction_to_float(v, np.float64) for v in uniform_f64_exact(U, low, high)],
                 dtype=np.float64)
    if H > L:
        x = np.where(x >= H, np.nextafter(H, -np.inf), x)
    return x


# --------------------------------------------------------------------------------------------
# Section 3.3 / 3.4 / 3.5: normal (Box-Muller) exact transforms
# --------------------------------------------------------------------------------------------

def _round_int_to_f32(n):
    """Round non-negative integers (< 2^53, uint64 array) to float32 with ties to even, by integer
    arithmetic (independent of the platform's int->float conversion); returns float32."""
    n = np.asarray(n, dtype=np.uint64)
    bitlen = np.zeros(n.shape, dtype=np.int64)
    m = n.copy()
    for s in (32, 16, 8, 4, 2, 1):          # bit length by binary search
        big = m >= np.uint64(1 << s)
        bitlen += np.where(big, s, 0)
        m = np.where(big, m >> np.uint64(s), m)
    bitlen += (m > 0).astype(np.int64)
    drop = np.maximum(bitlen - 24, 0).astype(np.uint64)   # bits below the 24-bit significand
    q = n >> drop
    rem = n - (q << drop)
    half = (np.uint64(1) << drop) >> np.uint64(1)        # 2^(drop-1), or 0 when drop == 0
    up = (drop > 0) & ((rem > half) | ((rem == half) & ((q & np.uint64(1)) == 1)))
    q = q + up.astype(np.uint64)
    return np.ldexp(q.astype(np.float64), drop.astype(np.int32)).astype(np.float32)


def u1_f32(a) -> np.ndarray:
    """``u1`` of spec 3.3 from words ``a``: ``v = fl32(int(a >> 1))``,
    ``u1 = fl32(v * 2^-31 + 2^-32)``. Returned as float32; values in [2^-32, 1].

    ``v * 2^-31 + 2^-32`` is a multiple of 2^-32 below 2^1 (at most 33 bits), so it is exact in
    float64 and the float64 -> float32 cast is the single rounding the spec asks for."""
    a = np.asarray(a, dtype=np.uint32).astype(np.uint64)
    v = _round_int_to_f32(a >> np.uint64(1))
    return (v.astype(np.float64) * 2.0**-31 + 2.0**-32).astype(np.float32)


def cos_sin_2pi_q(q, bits: int):
    """``(cos, sin)(2 pi q / 2^bits)`` in float64 for integer ``q`` in [0, 2^bits), with exact
    argument reduction by quadrant.

    ``theta = (pi/2) * (n + g / 2^(bits-2))`` with quadrant ``n = q >> (bits-2)`` and
    ``g = q mod 2^(bits-2)``. For ``g <= 2^(bits-3)`` use ``alpha = (pi/2) g / 2^(bits-2)``
    directly, otherwise its complement ``pi/2 - alpha`` with swapped sin/cos, so the argument of
    np.sin/np.cos is always in [0, pi/4] and zeros of cos/sin (q a multiple of 2^(bits-2)) come
    out exactly 0. Relative error a few float64 ulps for every q (no cancellation near zeros).
    Then rotate: n=0 (c, s); n=1 (-s, c); n=2 (-c, -s); n=3 (s, -c).
    (This is a quadrant formulation, deliberately different from the spec's octant table.)
    """
    q = np.asarray(q, dtype=np.uint64)
    qb = np.uint64(bits - 2)
    n = (q >> qb).astype(np.int64) & 3
    g = (q & np.uint64((1 << (bits - 2)) - 1)).astype(np.int64)
    full = 1 << (bits - 2)
    comp = g > full // 2
    gg = np.where(comp, full - g, g).astype(np.float64)      # exact: < 2^51
    alpha = gg * (np.pi / 2 / full)                            # scaling by 2^-k is exact
    sa, ca = np.sin(alpha), np.cos(alpha)
    s = np.where(comp, ca, sa)
    c = np.where(comp, sa, ca)
    cos = np.select([n == 0, n == 1, n == 2, n == 3], [c, -s, -c, s])
    sin = np.select([n == 0, n == 1, n == 2, n == 3], [s, c, -s, -c])
    return cos, sin


def normal_f32_exact(a, b):
    """Exact Box-Muller transform of float32 word pairs (spec 3.3 / 3.5), in float64.

    ``u1 = u1_f32(a)`` (its float32 roundings are part of the definition), ``q = b >> 8``,
    ``r = sqrt(-2 ln u1)``, ``theta = 2 pi q / 2^24``, returns ``(z0, z1) = (r cos theta,
    r sin theta)`` as float64 arrays. ``r`` in [0, sqrt(64 ln 2) = 6.6604]; r == 0 iff u1 == 1
    (a >> 1 >= 2^31 - 64). Accuracy: np.log/np.sqrt/np.sin/np.cos are within ~1 float64 ulp and
    the angle reduction is exact (see :func:`cos_sin_2pi_q`), so the relative error is a few
    1e-16, about 1e-8 of a float32 ulp. The angle uses the true pi, not the spec's fl32(pi).
    """
    u1 = u1_f32(a).astype(np.float64)
    q = np.asarray(b, dtype=np.uint32).astype(np.uint64) >> np.uint64(8)
    # log1p(u1 - 1) is more accurate than log(u1) near 1; u1 - 1 is exact (Sterbenz) there.
    lg = np.where(u1 > 0.5, np.log1p(u1 - 1.0), np.log(u1))
    r = np.sqrt(-2.0 * lg)
    r = np.where(u1 == 1.0, 0.0, r)
    c, s = cos_sin_2pi_q(q, 24)
    return r * c, r * s


def normal_f64_exact_mpmath(A, B, dps: int = 40):
    """Exact Box-Muller transform of float64 word pairs (spec 3.4 / 3.5) with mpmath.

    ``u1 = (A >> 12) * 2^-52 + 2^-53`` (exact, in [2^-53, 1 - 2^-53]), ``q = B >> 11``,
    ``theta = 2 pi q / 2^53``, ``r = sqrt(-2 ln u1)`` (in (0, 8.5716]). Returns two lists of
    mpf ``(z0, z1)`` computed at ``dps`` decimal digits; ``float()`` of an mpf rounds to nearest.
    Python loop: meant for a few thousand pairs at most.
    """
    A = np.asarray(A, dtype=np.uint64).reshape(-1)
    B = np.asarray(B, dtype=np.uint64).reshape(-1)
    if A.shape != B.shape:
        raise ValueError("A and B must have the same length")
    z0, z1 = [], []
    with mpmath.workdps(dps):
        for a_, b_ in zip(A.tolist(), B.tolist()):
            u1 = mpmath.mpf(int(a_) >> 12) * mpmath.mpf(2) ** -52 + mpmath.mpf(2) ** -53
            r = mpmath.sqrt(-2 * mpmath.log(u1))
            theta = 2 * mpmath.pi * (int(b_) >> 11) / mpmath.mpf(2) ** 53
            z0.append(+(r * mpmath.cos(theta)))
            z1.append(+(r * mpmath.sin(theta)))
    return z0, z1


# --------------------------------------------------------------------------------------------
# Section 3.3, bit-exact model of the float32 algorithm
# --------------------------------------------------------------------------------------------
#
# Every float32 operation below is a single IEEE operation: NumPy's float32 +, -, *, / and sqrt
# are correctly rounded, and fma is emulated exactly by fma_f32. Constants are rounded from exact
# values (rationals, or mpmath at 200 bits) straight to float32, never through float64.

def _f32_const(x) -> np.float32:
    if isinstance(x, mpmath.mpf):
        man, exp = x.man_exp
        x = Fraction(man) * Fraction(2) ** exp
    return np.float32(fraction_to_float(Fraction(x), np.float32))


with mpmath.workprec(200):
    LN2_HI_F32 = np.array([0x3F317200], dtype=np.uint32).view(np.float32)[0]
    LN2_LO_F32 = _f32_const(mpmath.log(2) - mpmath.mpf(float(LN2_HI_F32)))
    PI_F32 = _f32_const(+mpmath.pi)
SQRT2_F32 = np.array([0x3FB504F3], dtype=np.uint32).view(np.float32)[0]
C_F32 = np.float32(np.float64(PI_F32) * 2.0**-23)             # exact power-of-two scaling
ATANH_F32 = tuple(_f32_const(Fraction(2, 2 * n + 1)) for n in range(5))      # 2, 2/3, .., 2/9
SIN_F32 = tuple(_f32_const(Fraction((-1) ** n, math.factorial(2 * n + 1))) for n in range(1, 5))
COS_F32 = tuple(_f32_const(Fraction((-1) ** n, math.factorial(2 * n))) for n in range(1, 6))


def ln32_spec(u) -> np.ndarray:
    """``ln32(u)`` of spec 3.3 for float32 ``u`` in [2^-32, 1] (normal numbers), bit exact:
    split ``u = m * 2^e``; if ``m > fl32(sqrt 2)`` halve m and bump e; ``t = fl32(m-1) /
    fl32(m+1)``; ``p`` = Horner fma chain of fl32(2/(2n+1)); ``fma(e, LN2_HI, fma(e, LN2_LO,
    t*p))``."""
    u = np.asarray(u, dtype=np.float32)
    bits = u.view(np.uint32)
    e = ((bits >> np.uint32(23)) & np.uint32(0xFF)).astype(np.int32) - 127
    m = ((bits & np.uint32(0x7FFFFF)) | np.uint32(0x3F800000)).view(np.float32)
    big = m > SQRT2_F32
    m = np.where(big, m * np.float32(0.5), m).astype(np.float32)
    e = np.where(big, e + 1, e)
    one = np.float32(1.0)
    t = ((m - one) / (m + one)).astype(np.float32)
    t2 = (t * t).astype(np.float32)
    a0, a1, a2, a3, a4 = ATANH_F32
    p = fma_f32(t2, fma_f32(t2, fma_f32(t2, fma_f32(t2, a4, a3), a2), a1), a0)
    ef = e.astype(np.float32)
    return fma_f32(ef, LN2_HI_F32, fma_f32(ef, LN2_LO_F32, (t * p).astype(np.float32)))


def sincos32_spec(phi):
    """``(sin32(phi), cos32(phi))`` of spec 3.3 for float32 ``phi`` in [0, pi/4], bit exact."""
    phi = np.asarray(phi, dtype=np.float32)
    x2 = (phi * phi).astype(np.float32)
    s3, s5, s7, s9 = SIN_F32
    c2, c4, c6, c8, c10 = COS_F32
    sp = fma_f32(x2, fma_f32(x2, fma_f32(x2, s9, s7), s5), s3)
    sin = fma_f32((x2 * phi).astype(np.float32), sp, phi)
    cp = fma_f32(x2, fma_f32(x2, fma_f32(x2, fma_f32(x2, c10, c8), c6), c4), c2)
    cos = fma_f32(x2, cp, np.float32(1.0))
    return sin, cos


def angle32_spec(q):
    """``(c, s)`` of spec 3.3 for 24-bit ``q``: octant fold, ``phi = fl32(f * C)``, sin32/cos32,
    then the swap / negate table. Negation is IEEE negation, so zeros can come out as -0.0
    (``c`` for q = 2^22, ``s`` for q = 2^23)."""
    q = np.asarray(q, dtype=np.uint64)
    o = (q >> np.uint64(21)).astype(np.int64)
    f = (q & np.uint64(2**21 - 1)).astype(np.int64)
    f = np.where(o % 2 == 1, 2**21 - f, f)
    phi = (f.astype(np.float32) * C_F32).astype(np.float32)
    s, c = sincos32_spec(phi)
    swap = np.isin(o, [1, 2, 5, 6])
    s, c = np.where(swap, c, s), np.where(swap, s, c)
    c = np.where(np.isin(o, [2, 3, 4, 5]), -c, c)
    s = np.where(np.isin(o, [4, 5, 6, 7]), -s, s)
    return c.astype(np.float32), s.astype(np.float32)


def normal_f32_spec_model(a, b, mean=None, std=None):
    """Bit-exact model of spec 3.3 for word pairs ``(a, b)``: returns float32 ``(z0, z1)`` with
    ``r = sqrt(-2 * ln32(u1))``, ``z0 = fl32(r * c)``, ``z1 = fl32(r * s)``; if ``mean`` and
    ``std`` are given, the values ``fma(z, fl32(std), fl32(mean))`` instead."""
    r = np.sqrt((np.float32(-2.0) * ln32_spec(u1_f32(a))).astype(np.float32)).astype(np.float32)
    q = np.asarray(b, dtype=np.uint32).astype(np.uint64) >> np.uint64(8)
    c, s = angle32_spec(q)
    z0, z1 = (r * c).astype(np.float32), (r * s).astype(np.float32)
    if mean is None and std is None:
        return z0, z1
    sd, mu = np.float32(1.0 if std is None else std), np.float32(0.0 if mean is None else mean)
    return fma_f32(z0, sd, mu), fma_f32(z1, sd, mu)


# ----------------------------------------------------------------------------------------------
# Goodness of fit

AD_CRIT_0_1_PERCENT = 5.97  # asymptotic 0.1% point of A^2 for a fully specified F


def anderson_darling(x, cdf) -> float:
    """The Anderson-Darling statistic A^2 of the sample ``x`` against the distribution ``cdf``."""
    x = np.sort(np.asarray(x, np.float64))
    n = len(x)
    f = np.clip(cdf(x), 1e-300, 1 - 1e-16)
    i = np.arange(1, n + 1)
    return float(-n - np.sum((2 * i - 1) * (np.log(f) + np.log1p(-f[::-1]))) / n)


def orthonormal_columns_numpy(a: np.ndarray, q: np.ndarray, scale: float = 1.0) -> None:
    """weightfill._haar.orthonormal_columns in NumPy calls only (the form it had before its
    elementwise steps were compiled), for bit-for-bit comparison on the same NumPy/BLAS build:
    the blocked product of Stewart's reflections in the compact form I - V T V^T."""
    nb, rows_per_update = 256, 512
    m, k = a.shape
    ft = a.dtype
    q[...] = 0
    q[np.arange(k), np.arange(k)] = 1
    sign = np.empty(k)
    for j0 in range(((k - 1) // nb) * nb, -1, -nb):
        j1 = min(j0 + nb, k)
        b = j1 - j0
        v = a[j0:, j0:j1]
        v[:b] = np.tril(v[:b])
        i = np.arange(b)
        norm = np.sqrt(np.einsum("ij,ij->j", v, v, dtype=np.float64))
        alpha = v[i, i].astype(np.float64)
        s = np.where(alpha < 0, -1.0, 1.0)
        sign[j0:j1] = np.where(norm > 0, -s, 1.0)
        inv = np.divide(1.0, norm, out=np.zeros(b), where=norm > 0)
        v[i, i] = (alpha + s * norm).astype(ft)
        v *= inv.astype(ft)
        if j1 == m:
            v[:, b - 1] = 0
            sign[m - 1] = 1.0 if alpha[b - 1] >= 0 else -1.0
        vv = np.einsum("ij,ij->j", v, v, dtype=np.float64)
        t_inv = np.triu((v.T @ v).astype(np.float64), 1)
        t_inv[i, i] = np.where(vv > 0, 0.5 * vv, 1.0)
        t = np.linalg.inv(t_inv).astype(ft)
        sub = q[j0:, j0:]
        w = t @ (v.T @ sub)
        for r in range(0, m - j0, rows_per_update):
            sub[r:r + rows_per_update] -= v[r:r + rows_per_update] @ w
    q *= (sign * scale).astype(ft)
