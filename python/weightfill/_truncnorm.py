"""Per-call constants of the truncated normal (docs/stream-spec.md section 3.6).

The probabilities of the bounds are computed here with Python's ``decimal`` module at 80
significant digits and rounded once to float64. ``decimal`` is exact, portable arithmetic, so
these constants (and so every output bit) are the same on every platform, which a platform
``erfc`` would not promise. That costs 0.1-1 ms, so results are cached: the probabilities by
bounds, the whole set by (mean, std, bounds, dtype). The values are those of the uncached
computation; the cache only skips repeating it.
"""

from __future__ import annotations

import functools
import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np

from ._args import finfo

# pi to 64 significant digits (a well-known constant; checked against mpmath in the tests).
_PI = Decimal("3.141592653589793238462643383279502884197169399375105820974944592")
_PREC = 80
# Tail probabilities below 2**-900 are rejected: the kernel's c stays a normal float64.
_MIN_TAIL = 2.0**-900


def _erf_series(x: Decimal) -> Decimal:
    """erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)), for |x| <= 3."""
    x2 = x * x
    term = x
    total = x
    eps = Decimal(10) ** -(_PREC - 5)
    n = 0
    while True:
        n += 1
        term = -term * x2 / n
        add = term / (2 * n + 1)
        total += add
        if abs(add) < eps:
            break
    return 2 * total / _PI.sqrt()


def _erfc_cf(x: Decimal) -> Decimal:
    """erfc(x) for x > 3 by Laplace's continued fraction
    erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + (2/2)/(x + (3/2)/(x + ...)))),
    evaluated bottom-up from 400 levels (ample for 80 digits at x >= 3)."""
    f = x
    for k in range(400, 0, -1):
        f = x + Decimal(k) / 2 / f
    return (-x * x).exp() / _PI.sqrt() / f


def erf_erfc(z: float) -> tuple[Decimal, Decimal]:
    """(erf(z / sqrt 2), erfc(z / sqrt 2)) for a finite float z, to about 75 digits."""
    with localcontext() as ctx:
        ctx.prec = _PREC
        x = Decimal(z) / Decimal(2).sqrt()
        ax = abs(x)
        if ax <= 3:
            e = _erf_series(ax)
            c = 1 - e
        else:
            c = _erfc_cf(ax)
            e = 1 - c
        if x < 0:
            return -e, 2 - c
        return e, c


def _round_inward(q: Fraction, dtype: np.dtype, up: bool) -> float:
    """The smallest value of ``dtype`` >= q (up) or the largest <= q (not up), as a float."""
    with np.errstate(over="ignore"):
        return _round_inward_impl(q, dtype, up)


def _round_inward_impl(q: Fraction, dtype: np.dtype, up: bool) -> float:
    v = np.asarray(float(q), dtype=dtype)
    step = np.asarray(np.inf if up else -np.inf, dtype=dtype)
    back = np.asarray(-np.inf if up else np.inf, dtype=dtype)

    def beyond(x: np.ndarray) -> bool:  # x is on the wrong side of q
        return bool(np.isfinite(x)) and (Fraction(float(x)) < q if up else Fraction(float(x)) > q)

    while beyond(v) or (not np.isfinite(v) and (v > 0) == up):
        if not np.isfinite(v):
            v = np.asarray(finfo(dtype).max * (1 if v > 0 else -1), dtype=dtype)
            if beyond(v):
                return float(v) * math.inf  # nothing of dtype on the right side of q
            continue
        v = np.nextafter(v, step)
    while True:
        w = np.nextafter(v, back)
        if not np.isfinite(w) or beyond(w):
            return float(v)
        v = w


def _c(x: float) -> Decimal:
    """C(x) = erfc(x / sqrt 2) = 2 Q(x), with C(-inf) = 2 and C(inf) = 0."""
    if math.isinf(x):
        return Decimal(2 if x < 0 else 0)
    return erf_erfc(x)[1]


def _usable(v: float, floor: float) -> bool:
    return v == 0.0 or v >= floor


def constants(mean: float, std: float, lower: float, upper: float,
              dtype: np.dtype) -> tuple[float, ...]:
    """The kernel's ``extra`` constants (docs/stream-spec.md 3.6):
    (float32 core?, cL0 = C(-lower), cH0 = C(upper), w2 = C(lower) - C(upper), lowest, highest)
    with C(x) = erfc(x / sqrt 2), each computed exactly to 80 digits and rounded once to float64.

    Cached. Keys compare floats by value, so -0.0 and 0.0 share an entry: harmless, as every
    argument enters the computation through ``Decimal``/``Fraction`` or a comparison, where
    the sign of a zero makes no difference (tests/test_truncnorm.py checks the two agree).
    """
    return _constants(mean, std, lower, upper, dtype)


# Constants of argument sets truncated_normal has checked, keyed (mean, std, lower, upper,
# dtype): its whole-array fast path (fast_fill.cpp, truncated_whole) looks the caller's
# arguments up here and, on a hit, skips the Python checks (mean and std are checked again
# there). Only checked arguments go in, so a hit vouches for the bounds. Emptied when it holds
# 1024 entries.
_KNOWN: dict[tuple[object, ...], tuple[float, ...]] = {}


def remember(mean: float, std: float, lower: float, upper: float, dtype: np.dtype,
             extra: tuple[float, ...]) -> None:
    """Records ``extra`` as the constants of checked arguments (see _KNOWN)."""
    if len(_KNOWN) >= 1024:
        _KNOWN.clear()
    _KNOWN[(mean, std, lower, upper, dtype)] = extra


@functools.lru_cache(maxsize=1024)
def _constants(mean: float, std: float, lower: float, upper: float,
               dtype: np.dtype) -> tuple[float, ...]:
    cl, ch, w = _probabilities(lower, upper)
    # float32 arithmetic keeps every intermediate a normal float32 when these are >= 2**-100.
    f32_core = dtype.itemsize <= 4 and _usable(cl, 2.0**-100) and _usable(ch, 2.0**-100) \
        and w >= 2.0**-100
    fmax = Fraction(float(finfo(dtype).max))
    lo_q = -fmax if math.isinf(lower) else Fraction(mean) + Fraction(lower) * Fraction(std)
    hi_q = fmax if math.isinf(upper) else Fraction(mean) + Fraction(upper) * Fraction(std)
    lowest = _round_inward(max(lo_q, -fmax), dtype, up=True)
    highest = _round_inward(min(hi_q, fmax), dtype, up=False)
    if not lowest <= highest:
        raise ValueError(
            f"no {dtype} value lies in [mean + lower*std, mean + upper*std] = "
            f"[{float(lo_q)}, {float(hi_q)}]")
    return (1.0 if f32_core else 0.0, cl, ch, w, lowest, highest)


@functools.lru_cache(maxsize=256)
def _probabilities(lower: float, upper: float) -> tuple[float, float, float]:
    """(cL0, cH0, w2) of the bounds, each rounded once to float64; the costly part (the erf
    series and continued fraction), shared by every mean, std and dtype."""
    with localcontext() as ctx:
        ctx.prec = _PREC
        cl0, ch0 = _c(-lower), _c(upper)
        # 2 (Phi(upper) - Phi(lower)), from the side where both terms are small (no cancellation).
        w2 = _c(-upper) - _c(-lower) if upper <= 0 else _c(lower) - _c(upper)
        cl, ch, w = float(cl0), float(ch0), float(w2)
    if not (_usable(cl, _MIN_TAIL) and _usable(ch, _MIN_TAIL) and w >= _MIN_TAIL):
        raise ValueError(
            f"lower={lower}, upper={upper}: the interval's probability (or a bound's tail "
            "probability) is below 2**-900; bounds must lie within about 37 standard deviations")
    return cl, ch, w
