"""float16 and bfloat16 outputs: the float32 value rounded to nearest-even (stream-spec 3.7),
with the documented clamps, the same bits on every kernel."""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import weightfill as wf
from scipy import stats

BF16 = np.dtype(ml_dtypes.bfloat16)
HALF = [np.dtype(np.float16), BF16]


def u16(a):
    return a.view(np.uint16)


@pytest.mark.parametrize(
    "dtype,mean,std",
    [(dt, m, s) for dt in HALF for m, s in [(0.0, 1.0), (0.5, 3.0), (0.0, 1e-6)]]
    + [(BF16, 0.0, 1e-39)],  # subnormal float32 values; 1e-39 is not a float16 std
)
def test_normal_is_float32_rounded(dtype, mean, std, each_isa):
    n = 100_003
    x = wf.normal(n, mean, std, seed=5, stream="h", dtype=dtype)
    ref = wf.normal(n, mean, std, seed=5, stream="h").astype(dtype)  # ml_dtypes / numpy RNE
    np.testing.assert_array_equal(u16(x), u16(ref))


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("lower,upper", [(-2, 2), (8, 9), (-30, -29), (0, np.inf)])
def test_truncated_normal_is_float32_rounded_then_clamped(dtype, lower, upper, each_isa):
    n = 50_000
    mean, std = 0.1, 0.3
    x = wf.truncated_normal(n, mean, std, lower, upper, seed=6, dtype=dtype)
    ref = wf.truncated_normal(n, mean, std, lower, upper, seed=6).astype(dtype)
    # The interval is the exact rational [mean + lower*std, mean + upper*std].
    lo = Fraction(mean) + Fraction(lower) * Fraction(std)
    hi = Fraction(mean) + Fraction(upper) * Fraction(std) if np.isfinite(upper) else None

    def within(v: float) -> bool:
        return Fraction(v) >= lo and (hi is None or Fraction(v) <= hi)

    assert all(within(v) for v in np.unique(x.astype(np.float64)).tolist())
    # Equal to the rounded float32 values except where rounding left the interval.
    ok = {v: within(v) for v in np.unique(ref.astype(np.float64)).tolist()}
    inside = np.array([ok[v] for v in ref.astype(np.float64).tolist()])
    np.testing.assert_array_equal(u16(x)[inside], u16(ref)[inside])
    assert inside.mean() > 0.99


@pytest.mark.parametrize("dtype", HALF)
def test_uniform_is_float32_rounded_and_stays_below_high(dtype, each_isa):
    n = 1 << 18
    x = wf.uniform(n, -1.0, 1.0, seed=7, dtype=dtype)
    ref = wf.uniform(n, -1.0, 1.0, seed=7).astype(dtype)
    top = np.nextafter(np.asarray(1.0, dtype), np.asarray(-np.inf, dtype))
    assert x.max() == top  # some values rounded up to 1.0 and were clamped
    fine = ref.astype(np.float64) < 1.0
    np.testing.assert_array_equal(u16(x)[fine], u16(ref)[fine])
    assert (x[~fine] == top).all()


@pytest.mark.parametrize("dtype", HALF)
def test_half_distributions(dtype):
    x = wf.normal(1 << 20, seed=9, dtype=dtype).astype(np.float64)
    # Rounding to 8 (bfloat16) or 11 (float16) significant bits moves the CDF by at most
    # half an ulp: compare with the rounded distribution's own KS distance bound.
    d = stats.kstest(x, "norm").statistic
    assert d < (0.005 if dtype == BF16 else 0.002)
    assert abs(x.mean()) < 0.005 and abs(x.std() - 1) < 0.01


def test_half_parameter_overflow_is_rejected():
    with pytest.raises(ValueError, match="std"):
        wf.normal(10, 0.0, 1e5, seed=1, dtype=np.float16)  # std itself overflows float16
    with pytest.raises(ValueError, match="overflow"):
        wf.normal(10, 0.0, 2e4, seed=1, dtype=np.float16)  # 6.66 * 2e4 > 65504
    with pytest.raises(ValueError, match="overflow"):
        wf.normal(10, 0.0, 1e38, seed=1)  # float32 too
