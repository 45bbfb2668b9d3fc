"""truncated_normal: distribution (scipy.stats.truncnorm), bounds after rounding, accuracy of
the transform (stream-spec 3.6) and argument checks."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest
import weightfill as wf
from reference import (
    AD_CRIT_0_1_PERCENT,
    anderson_darling,
    fma_f32,
    ulp_distance,
    ulp_distance_mpmath,
)
from scipy import special, stats
from weightfill import _truncnorm

BOUNDS = [(-2, 2), (0, np.inf), (3, 5), (8, 9), (-10, -8), (-np.inf, -5), (-1e-3, 1e-3)]
N = 1 << 20


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lower,upper", BOUNDS)
def test_matches_scipy_truncnorm(lower, upper, dtype):
    mean, std = 0.25, 1.5
    x = wf.truncated_normal(N, mean, std, lower, upper, seed=12, stream="tn", dtype=dtype)
    dist = stats.truncnorm(lower, upper, loc=mean, scale=std)
    xs = x.astype(np.float64)
    # KS/AD on the standardised values through scipy's own CDF.
    assert stats.kstest(xs, dist.cdf).pvalue > 1e-3
    assert anderson_darling(xs, dist.cdf) < AD_CRIT_0_1_PERCENT
    assert np.isfinite(xs).all()
    lo = mean + lower * std
    hi = mean + upper * std
    assert xs.min() >= lo and xs.max() <= hi


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bounds_hold_after_rounding(dtype, each_isa):
    # Bounds that are not representable in float32: mean + 2 std must still not be passed.
    mean, std = 0.1, 0.3
    x = wf.truncated_normal(1 << 18, mean, std, -2.0, 2.0, seed=3, dtype=dtype)
    lo = Fraction(mean) + Fraction(-2.0) * Fraction(std)
    hi = Fraction(mean) + Fraction(2.0) * Fraction(std)
    assert Fraction(float(x.min())) >= lo and Fraction(float(x.max())) <= hi
    # A narrow interval far from 0 in float32: every value is one of a handful of floats.
    y = wf.truncated_normal(1 << 16, 1e7, 1e-3, -2.0, 2.0, seed=3)
    assert (y == np.float32(1e7)).all()


def _c_values_f32(words, consts):
    """cL, cH and the selected c of the float32 path, emulated exactly."""
    _, cl0, ch0, w2, _, _ = (np.float32(c) for c in consts)
    k = ((words >> np.uint32(9)).astype(np.uint64) * 2 + 1).astype(np.float64)
    u = (k * 2.0**-24).astype(np.float32)
    cl = fma_f32(u, w2, cl0)
    ch = fma_f32(np.float32(1) - u, w2, ch0)
    low = cl <= 1
    return np.where(low, cl, ch), np.where(low, -1.0, 1.0)


@pytest.mark.parametrize("lower,upper", BOUNDS + [(-np.inf, np.inf)])
def test_float32_path_accuracy(lower, upper, each_isa):
    """The float32 path against sqrt(2) * erfcinv(c) of its own c, in float64.

    Measured on the development machine: at most 3.26 ulps (bounds (-2, 2)); bound 4 ulps."""
    consts = _truncnorm.constants(0.0, 1.0, lower, upper, np.dtype(np.float32))
    assert consts[0] == 1.0  # these bounds take the float32 path
    n = 1 << 18
    words = wf.random_raw(n, seed=8, stream=1)
    x = wf.truncated_normal(n, 0.0, 1.0, lower, upper, seed=8, stream=1)
    c, s = _c_values_f32(words, consts)
    exact = s * np.sqrt(2.0) * special.erfcinv(c.astype(np.float64))
    exact = np.clip(exact, consts[4], consts[5])
    d = ulp_distance(x, exact, np.float32)
    assert d.max() <= ACCURACY_F32, f"{d.max():.2f} ulps"


ACCURACY_F32 = 4.0
ACCURACY_F64 = 64.0


@pytest.mark.parametrize("lower,upper", [(-2, 2), (8, 9), (-np.inf, -5), (-1e-3, 1e-3)])
def test_float64_path_accuracy(lower, upper):
    """The float64 path against mpmath: sqrt(2) * erfinv(1 - c) at 40 digits, c computed
    exactly as the spec defines it. Measured: at most 35.5 ulps (the polynomial fits are good
    to about 4e-15); bound 64 ulps."""
    consts = _truncnorm.constants(0.0, 1.0, lower, upper, np.dtype(np.float64))
    _, cl0, ch0, w2, lowest, highest = consts
    n = 600
    raw = wf.random_raw(2 * n, seed=4, stream=2).astype(np.uint64)
    words = raw[0::2] | (raw[1::2] << np.uint64(32))
    x = wf.truncated_normal(n, 0.0, 1.0, lower, upper, seed=4, stream=2, dtype=np.float64)
    exact = []
    with mpmath.workdps(40):
        for U in words.tolist():
            u = Fraction(2 * (U >> 12) + 1, 2**53)
            cl = float(u * Fraction(w2) + Fraction(cl0))  # fma: one rounding
            if cl <= 1:
                c, s = cl, -1
            else:
                c, s = float((1 - u) * Fraction(w2) + Fraction(ch0)), 1
            z = s * mpmath.sqrt(2) * mpmath.erfinv(1 - mpmath.mpf(c))
            exact.append(min(max(z, mpmath.mpf(lowest)), mpmath.mpf(highest)))
    d = ulp_distance_mpmath(x, exact)
    assert d.max() <= ACCURACY_F64, f"{d.max():.1f} ulps"


def test_far_tail_bounds_use_float64_arithmetic_for_float32():
    consts = _truncnorm.constants(0.0, 1.0, -30.0, -29.0, np.dtype(np.float32))
    assert consts[0] == 0.0
    x = wf.truncated_normal(1 << 16, 0.0, 1.0, -30.0, -29.0, seed=1)
    assert x.min() >= -30 and x.max() <= -29
    # Mean of a far tail: E[X | X > a] ~ a + 1/a for large a (Mills ratio), here about 29.034.
    assert abs(-x.astype(np.float64).mean() - stats.truncnorm(29, 30).mean()) < 1e-3


def test_decimal_constants_agree_with_mpmath():
    mpmath.mp.dps = 50
    for z in [0.0, 0.5, -1.3, 2.9, 3.1, 8.0, 14.0, 37.0, -5.0]:
        e, c = _truncnorm.erf_erfc(z)
        ref_e = mpmath.erf(mpmath.mpf(z) / mpmath.sqrt(2))
        ref_c = mpmath.erfc(mpmath.mpf(z) / mpmath.sqrt(2))
        assert abs(mpmath.mpf(str(e)) - ref_e) < mpmath.mpf(10) ** -45
        assert abs(mpmath.mpf(str(c)) / ref_c - 1) < mpmath.mpf(10) ** -45


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        (dict(lower=2.0, upper=2.0), ValueError, "lower"),
        (dict(lower=3.0, upper=-1.0), ValueError, "lower"),
        (dict(lower=float("nan")), ValueError, "lower"),
        (dict(upper=float("nan")), ValueError, "upper"),
        (dict(lower=float("inf"), upper=float("inf")), ValueError, "lower"),
        (dict(lower=40.0, upper=41.0), ValueError, "2\\*\\*-900"),
        (dict(lower="a"), TypeError, "lower"),
        (dict(std=-1.0), ValueError, "std"),
        (dict(mean=float("inf")), ValueError, "mean"),
    ],
)
def test_bad_arguments(kw, exc, match):
    with pytest.raises(exc, match=match):
        wf.truncated_normal(10, seed=1, **kw)
