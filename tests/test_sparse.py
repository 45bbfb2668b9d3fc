"""sparse: exact counts per line, uniform positions, equality with normal at the kept
positions, regions, kernels and threads; PyTorch's count rule."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
import weightfill as wf
from scipy import stats


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.9, 0.999, 1.0])
def test_exact_zero_count_per_line(axis, sparsity):
    shape = (257, 130)
    a = wf.sparse(shape, sparsity, axis=axis, seed=1)
    n = shape[axis]
    zeros = np.count_nonzero(a == 0, axis=axis)
    assert (zeros == math.ceil(sparsity * n)).all()


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("k", [0, 1, 3, 64, 200])
def test_exact_nonzeros_per_line(axis, k):
    shape = (200, 333)
    a = wf.sparse(shape, nonzeros=k, axis=axis, seed=2, std=1.0)
    assert (np.count_nonzero(a, axis=axis) == k).all()


# 0.7 masks a full normal fill; 0.95 generates only the kept elements (the gather kernel,
# taken when at most 1/20 of a line is kept).
@pytest.mark.parametrize("sparsity", [0.7, 0.95])
@pytest.mark.parametrize("axis", [0, 1])
def test_kept_values_equal_normal_bit_for_bit(sparsity, axis, each_isa):
    shape = (300, 500)
    a = wf.sparse(shape, sparsity, std=0.02, axis=axis, seed=3, stream="w")
    n = wf.normal(shape, 0.0, 0.02, seed=3, stream="w")
    kept = a != 0
    np.testing.assert_array_equal(a[kept].view(np.uint32), n[kept].view(np.uint32))
    assert kept.mean() == pytest.approx(1 - math.ceil(sparsity * shape[axis]) / shape[axis])


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("sparsity", [0.2, 0.8])
def test_positions_are_uniform(axis, sparsity):
    """Chi-square over many lines: every position is zero equally often."""
    shape = (64, 20000) if axis == 0 else (20000, 64)
    a = wf.sparse(shape, sparsity, axis=axis, seed=4)
    per_position = np.count_nonzero(a == 0, axis=1 - axis)  # zeros at each position
    lines = shape[1 - axis]
    p = math.ceil(sparsity * 64) / 64
    expected = lines * p
    chi2 = np.sum((per_position - expected) ** 2 / (expected * (1 - p)))
    assert stats.chi2.sf(chi2, df=63) > 1e-4


def test_pairs_of_positions_are_not_correlated():
    # Floyd's algorithm must not favour neighbouring positions: co-occurrence of zeros at
    # positions (i, i+1) matches the hypergeometric rate.
    n, lines, z = 32, 40000, 8
    a = wf.sparse((n, lines), nonzeros=n - z, seed=5)
    zero = a == 0
    both = np.count_nonzero(zero[:-1] & zero[1:], axis=1)
    rate = z * (z - 1) / (n * (n - 1))
    assert np.all(np.abs(both - lines * rate) < 5 * np.sqrt(lines * rate))


@pytest.mark.parametrize("sparsity", [0.6, 0.95])
@pytest.mark.parametrize("axis", [0, 1])
def test_regions_and_kernels_agree(sparsity, axis, each_isa):
    shape = (150, 203)
    full = wf.sparse(shape, sparsity, axis=axis, seed=6)
    for region in [(slice(10, 90), slice(7, 200)), (slice(0, 1),), (slice(None), slice(100, 101)),
                   (slice(149, 150), slice(0, 203))]:
        part = wf.sparse(shape, sparsity, axis=axis, seed=6, region=region)
        np.testing.assert_array_equal(part, full[region])


@pytest.mark.parametrize("sparsity", [0.3, 0.9])
@pytest.mark.parametrize("axis", [0, 1])
def test_threads_agree(sparsity, axis):
    shape = (1000, 5000)  # more than one strip of columns
    wf.set_num_threads(1)
    one = wf.sparse(shape, sparsity, axis=axis, seed=7)
    for t in (2, 3, 8):
        wf.set_num_threads(t)
        np.testing.assert_array_equal(wf.sparse(shape, sparsity, axis=axis, seed=7), one)


@pytest.mark.parametrize("sparsity", [0.5, 0.9])
@pytest.mark.parametrize("dtype", [np.float64, np.float16, ml_dtypes.bfloat16])
def test_other_dtypes(dtype, sparsity, each_isa):  # each element size's zeroing kernel
    a = wf.sparse((128, 64), sparsity, seed=8, dtype=dtype)
    ref = wf.normal((128, 64), 0.0, 0.01, seed=8, dtype=dtype)
    assert a.dtype == dtype
    assert (np.count_nonzero(a == 0, axis=0) == math.ceil(sparsity * 128)).all()
    kept = a != 0
    np.testing.assert_array_equal(a[kept], ref[kept])


def test_out_and_torch_count_rule():
    out = np.full((10, 4), np.nan, np.float32)
    assert wf.sparse(sparsity=0.25, out=out, seed=9) is out
    assert (np.count_nonzero(out == 0, axis=0) == math.ceil(0.25 * 10)).all()


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        (dict(shape=(3, 4, 5), sparsity=0.5), ValueError, "2-D"),
        (dict(shape=10, sparsity=0.5), ValueError, "2-D"),
        (dict(shape=(4, 4)), TypeError, "exactly one"),
        (dict(shape=(4, 4), sparsity=0.5, nonzeros=2), TypeError, "exactly one"),
        (dict(shape=(4, 4), sparsity=1.5), ValueError, "sparsity"),
        (dict(shape=(4, 4), sparsity=-0.1), ValueError, "sparsity"),
        (dict(shape=(4, 4), sparsity="x"), TypeError, "sparsity"),
        (dict(shape=(4, 4), nonzeros=5), ValueError, "nonzeros"),
        (dict(shape=(4, 4), nonzeros=-1), ValueError, "nonzeros"),
        (dict(shape=(4, 4), nonzeros=1.5), TypeError, "nonzeros"),
        (dict(shape=(4, 4), sparsity=0.5, axis=2), ValueError, "axis"),
        (dict(shape=(4, 4), sparsity=0.5, std=-1.0), ValueError, "std"),
        # float64 draws reach 8.57 std: 2.5e307 * 8.57 overflows although 6.66 * it does not.
        (dict(shape=(4, 4), sparsity=0.5, std=2.5e307, dtype=np.float64), ValueError, "overflow"),
    ],
)
def test_bad_arguments(kw, exc, match):
    with pytest.raises(exc, match=match):
        wf.sparse(seed=1, **kw)


def _floyd_reference(seed, stream, line, n, s):
    """stream-spec 3.8 written out independently: Floyd's algorithm on the reserved blocks."""
    from reference import raw_words

    words = raw_words(seed, stream, 4 * ((1 << 63) + line * (1 << 31)), 2 * s).astype(object)
    chosen = set()
    for d in range(s):
        v = int(words[2 * d]) | (int(words[2 * d + 1]) << 32)
        j = n - s + d
        t = (v * (j + 1)) >> 64
        chosen.add(j if t in chosen else t)
    return chosen


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("sparsity,nonzeros", [(0.2, None), (0.6, None), (None, 3), (None, 12)])
def test_positions_follow_the_specification(axis, sparsity, nonzeros, each_isa):
    shape = (70, 90)
    seed, stream = 11, 5
    a = wf.sparse(shape, sparsity, nonzeros=nonzeros, axis=axis, seed=seed, stream=stream)
    n, lines = shape[axis], shape[1 - axis]
    z = math.ceil(sparsity * n) if sparsity is not None else n - nonzeros
    s = min(z, n - z)
    expect_zero = np.zeros(shape, bool)
    for line in range(lines):
        chosen = _floyd_reference(seed, stream, line, n, s)
        zero_pos = chosen if z <= n - z else set(range(n)) - chosen
        for p in zero_pos:
            expect_zero[(p, line) if axis == 0 else (line, p)] = True
    np.testing.assert_array_equal(a == 0, expect_zero)


@pytest.mark.parametrize("axis", [0, 1])
def test_long_lines_follow_the_specification(axis):
    """Lines longer than 2^16 positions keep their Floyd sets as bitmaps instead of byte
    stamps; both must give the specification's positions."""
    n, lines, sparsity = 70001, 5, 0.3
    shape = (n, lines) if axis == 0 else (lines, n)
    a = wf.sparse(shape, sparsity, axis=axis, seed=12, stream=6)
    z = math.ceil(sparsity * n)
    for line in range(lines):
        got = a[:, line] if axis == 0 else a[line]
        chosen = _floyd_reference(12, 6, line, n, min(z, n - z))
        assert set(np.flatnonzero(got == 0).tolist()) == chosen


@pytest.mark.parametrize("axis", [0, 1])
def test_many_lines_on_one_thread_follow_the_specification(axis):
    """One thread draws all 2100 lines, four at a time, so its byte stamps' generation counter
    wraps (every 255 draws): positions must still be the specification's."""
    n, lines, sparsity = 40, 2100, 0.3
    shape = (n, lines) if axis == 0 else (lines, n)
    wf.set_num_threads(1)  # restored by conftest
    a = wf.sparse(shape, sparsity, axis=axis, seed=13, stream=7)
    z = math.ceil(sparsity * n)
    for line in range(lines):
        got = a[:, line] if axis == 0 else a[line]
        assert set(np.flatnonzero(got == 0).tolist()) == _floyd_reference(13, 7, line, n, z)


def test_strips_and_regions_on_axis0():
    """Several column strips (up to 4096 columns each) with a region starting mid-strip, and a
    matrix tall enough for narrow strips of long (bitmap) lines."""
    full = wf.sparse((100, 9000), 0.4, seed=14)
    region = (slice(5, 95), slice(1000, 8500))
    np.testing.assert_array_equal(wf.sparse((100, 9000), 0.4, seed=14, region=region), full[region])
    tall = wf.sparse((140000, 70), 0.3, std=1.0, seed=15, dtype=np.float16)
    z = math.ceil(0.3 * 140000)
    for line in (0, 69):
        chosen = _floyd_reference(15, 0, line, 140000, z)
        assert set(np.flatnonzero(tall[:, line] == 0).tolist()) == chosen
    part = (slice(1000, 139000), slice(3, 60))
    np.testing.assert_array_equal(
        wf.sparse((140000, 70), 0.3, std=1.0, seed=15, dtype=np.float16, region=part), tall[part])
