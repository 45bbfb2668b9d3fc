"""sparse: exact counts per line, uniform positions, equality with normal at the kept
positions, regions, kernels and threads; PyTorch's count rule. Both methods ("floyd", stream-spec
3.8, and "keys", 3.9) against independent numpy implementations of the specification."""

from __future__ import annotations

import functools
import math

import ml_dtypes
import numpy as np
import pytest
import weightfill as wf
from scipy import stats

METHODS = ["floyd", "keys"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.9, 0.999, 1.0])
def test_exact_zero_count_per_line(axis, sparsity, method):
    shape = (257, 130)
    a = wf.sparse(shape, sparsity, axis=axis, seed=1, method=method)
    n = shape[axis]
    zeros = np.count_nonzero(a == 0, axis=axis)
    assert (zeros == math.ceil(sparsity * n)).all()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("k", [0, 1, 3, 64, 200])
def test_exact_nonzeros_per_line(axis, k, method):
    shape = (200, 333)
    a = wf.sparse(shape, nonzeros=k, axis=axis, seed=2, std=1.0, method=method)
    assert (np.count_nonzero(a, axis=axis) == k).all()


# 0.7 masks a full normal fill; 0.95 generates only the kept elements (the gather kernel,
# taken when at most 1/20 of a line is kept).
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("sparsity", [0.7, 0.95])
@pytest.mark.parametrize("axis", [0, 1])
def test_kept_values_equal_normal_bit_for_bit(sparsity, axis, method, each_isa):
    shape = (300, 500)
    a = wf.sparse(shape, sparsity, std=0.02, axis=axis, seed=3, stream="w", method=method)
    n = wf.normal(shape, 0.0, 0.02, seed=3, stream="w")
    kept = a != 0
    np.testing.assert_array_equal(a[kept].view(np.uint32), n[kept].view(np.uint32))
    assert kept.mean() == pytest.approx(1 - math.ceil(sparsity * shape[axis]) / shape[axis])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("sparsity", [0.2, 0.8])
def test_positions_are_uniform(axis, sparsity, method):
    """Chi-square over many lines: every position is zero equally often."""
    shape = (64, 20000) if axis == 0 else (20000, 64)
    a = wf.sparse(shape, sparsity, axis=axis, seed=4, method=method)
    per_position = np.count_nonzero(a == 0, axis=1 - axis)  # zeros at each position
    lines = shape[1 - axis]
    p = math.ceil(sparsity * 64) / 64
    expected = lines * p
    chi2 = np.sum((per_position - expected) ** 2 / (expected * (1 - p)))
    assert stats.chi2.sf(chi2, df=63) > 1e-4


@pytest.mark.parametrize("method", METHODS)
def test_pairs_of_positions_are_not_correlated(method):
    # Neither method may favour neighbouring positions (Floyd's draws; keys that share a
    # Philox block): co-occurrence of zeros at positions (i, i+1) matches the hypergeometric rate.
    n, lines, z = 32, 40000, 8
    a = wf.sparse((n, lines), nonzeros=n - z, seed=5, method=method)
    zero = a == 0
    both = np.count_nonzero(zero[:-1] & zero[1:], axis=1)
    rate = z * (z - 1) / (n * (n - 1))
    assert np.all(np.abs(both - lines * rate) < 5 * np.sqrt(lines * rate))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("sparsity", [0.6, 0.95])
@pytest.mark.parametrize("axis", [0, 1])
def test_regions_and_kernels_agree(sparsity, axis, method, each_isa):
    shape = (150, 203)
    full = wf.sparse(shape, sparsity, axis=axis, seed=6, method=method)
    for region in [(slice(10, 90), slice(7, 200)), (slice(0, 1),), (slice(None), slice(100, 101)),
                   (slice(149, 150), slice(0, 203))]:
        part = wf.sparse(shape, sparsity, axis=axis, seed=6, region=region, method=method)
        np.testing.assert_array_equal(part, full[region])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("sparsity", [0.3, 0.9])
@pytest.mark.parametrize("axis", [0, 1])
def test_threads_agree(sparsity, axis, method):
    shape = (1000, 5000)  # more than one strip of columns
    wf.set_num_threads(1)
    one = wf.sparse(shape, sparsity, axis=axis, seed=7, method=method)
    for t in (2, 3, 8):
        wf.set_num_threads(t)
        again = wf.sparse(shape, sparsity, axis=axis, seed=7, method=method)
        np.testing.assert_array_equal(again, one)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("sparsity", [0.5, 0.9])
@pytest.mark.parametrize("dtype", [np.float64, np.float16, ml_dtypes.bfloat16])
def test_other_dtypes(dtype, sparsity, method, each_isa):  # each element size's zeroing kernel
    a = wf.sparse((128, 64), sparsity, seed=8, dtype=dtype, method=method)
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
        (dict(shape=(4, 4), sparsity=0.5, method="sorted"), ValueError, "method"),
        (dict(shape=(4, 4), sparsity=0.5, method=1), TypeError, "method"),
        (dict(shape=(4, 2**31), sparsity=0.5, axis=1, method="keys",
              region=(slice(0, 1), slice(0, 8))), ValueError, "keys"),
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


# ---- method "keys" (stream-spec 3.9)

@functools.lru_cache(maxsize=64)  # the same lines are checked on every ISA
def _keys_reference(seed, stream, line, n, z):
    """stream-spec 3.9 written out independently: the z positions with the smallest (K, T, p),
    by a full lexicographic sort."""
    from reference import raw_words

    base = (1 << 63) + (1 << 62) + line * (1 << 31)
    words = raw_words(seed, stream, 4 * base, (n + 3) // 4).astype(np.uint64)
    k = ((words[:, None] >> np.array([0, 8, 16, 24], np.uint64)) & np.uint64(0xFF)).ravel()[:n]
    tw = raw_words(seed, stream, 4 * (base + (1 << 30)), 2 * n).astype(np.uint64)
    t = tw[0::2] | (tw[1::2] << np.uint64(32))
    order = np.lexsort((np.arange(n), t, k))  # last key first: by K, then T, then p
    return frozenset(order[:z].tolist())


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("shape,sparsity,nonzeros", [
    ((70, 90), 0.2, None), ((70, 90), 0.6, None), ((70, 90), None, 3),
    ((1000, 7), 0.5, None),    # about 4 ties at t* per line: the tie keys decide
    ((4099, 3), 0.37, None),   # n not a multiple of 64 or 4; about 16 ties per line
    ((5, 300), None, 1), ((300, 64), 0.98, None), ((63, 65), 0.05, None),
])
def test_keys_positions_follow_the_specification(axis, shape, sparsity, nonzeros, each_isa):
    seed, stream = 21, "layer"
    a = wf.sparse(shape, sparsity, nonzeros=nonzeros, axis=axis, seed=seed, stream=stream,
                  method="keys")
    n, lines = shape[axis], shape[1 - axis]
    z = math.ceil(sparsity * n) if sparsity is not None else n - nonzeros
    for line in range(lines):
        got = a[:, line] if axis == 0 else a[line]
        assert set(np.flatnonzero(got == 0).tolist()) == _keys_reference(seed, stream, line, n, z)


@pytest.mark.parametrize("axis", [0, 1])
def test_keys_long_lines_follow_the_specification(axis, each_isa):
    """Lines longer than the 2^21 keys held at once (every pass regenerates them, chunk by
    chunk; the last chunk shorter than 64 and not a whole number of words) with about 9000 ties
    at t* (ranked by a selection, not by counting)."""
    n, sparsity = (1 << 21) + 1003, 0.3
    shape = (n, 2) if axis == 0 else (2, n)
    a = wf.sparse(shape, sparsity, axis=axis, seed=22, std=1.0, dtype=np.float16, method="keys")
    z = math.ceil(sparsity * n)
    for line in range(2):
        got = a[:, line] if axis == 0 else a[line]
        assert set(np.flatnonzero(got == 0).tolist()) == _keys_reference(22, 0, line, n, z)


def test_keys_short_lines_whose_threshold_is_the_largest_key(each_isa):
    """Lines of at most 64 positions are ranked from 64 keys padded with 0xFF; when t* is 255
    itself the padding must not count as ties. With 63 positions and one non-zero that happens
    when two keys are 255 (about 3% of lines): checked on every such line of 4000."""
    from reference import raw_words

    n, lines, seed = 63, 4000, 25
    a = wf.sparse((n, lines), nonzeros=1, seed=seed, method="keys")
    checked = 0
    for line in range(lines):
        base = (1 << 63) + (1 << 62) + line * (1 << 31)
        words = raw_words(seed, 0, 4 * base, 16).astype(np.uint64)
        shifts = np.array([0, 8, 16, 24], np.uint64)
        keys = ((words[:, None] >> shifts) & np.uint64(0xFF)).ravel()[:n]
        if np.sort(keys)[n - 2] != 255:
            continue
        checked += 1
        got = set(np.flatnonzero(a[:, line] == 0).tolist())
        assert got == _keys_reference(seed, 0, line, n, n - 1)
    assert checked > 50


def test_methods_differ_but_agree_on_counts():
    a = wf.sparse((500, 40), 0.5, seed=23)
    b = wf.sparse((500, 40), 0.5, seed=23, method="keys")
    assert (np.count_nonzero(a == 0, axis=0) == np.count_nonzero(b == 0, axis=0)).all()
    assert not np.array_equal(a == 0, b == 0)
    both = (a != 0) & (b != 0)
    np.testing.assert_array_equal(a[both], b[both])  # the same normal values where both keep


# Frozen zero positions (seed 42, stream 0, shape (12, 3), sparsity 0.5, axis 0), computed by
# _floyd_reference and _keys_reference above, not by the library; never edit them to follow a
# change in the library (docs/stream-spec.md, section 4).
GOLDEN_ZEROS = {
    "floyd": [[1, 5, 6, 7, 9, 11], [1, 6, 7, 8, 9, 11], [0, 1, 3, 4, 5, 11]],
    "keys": [[1, 4, 5, 6, 8, 11], [0, 2, 7, 8, 10, 11], [0, 2, 5, 6, 8, 10]],
}


@pytest.mark.parametrize("method", METHODS)
def test_golden_zero_positions(method, each_isa):
    a = wf.sparse((12, 3), 0.5, seed=42, method=method)
    got = [sorted(np.flatnonzero(a[:, c] == 0).tolist()) for c in range(3)]
    assert got == GOLDEN_ZEROS[method]


# SHA-256 of np.packbits(zero mask) for sparse((1000, 4), 0.5, seed=42, method="keys"), computed
# by _keys_reference. Column 3's zeros differ from ranking by (K, p) alone: the tie keys T (their
# block range, word pair and order) are frozen too.
GOLDEN_KEYS_TIES = "2e35577547f38ca151fa8aa301f894ad91e4c7cb8e737db1ee26df14185ec54c"


def test_golden_keys_with_ties(each_isa):
    import hashlib

    a = wf.sparse((1000, 4), 0.5, seed=42, method="keys")
    assert hashlib.sha256(np.packbits(a == 0).tobytes()).hexdigest() == GOLDEN_KEYS_TIES


def _ranked_reference(tie_keys, need):
    """The indices of the `need` smallest (T, i), by a full sort (stream-spec 3.9's tie order)."""
    return sorted(sorted(range(len(tie_keys)), key=lambda i: (tie_keys[i], i))[:need])


@pytest.mark.parametrize("m,need", [(2, 1), (16, 5), (16, 11), (64, 30), (65, 30), (300, 150)])
def test_tie_ranking_when_high_words_straddle_the_boundary(m, need):
    """The engine ranks a line's ties by the high 32 bits of T, falling back to the full (T, i)
    order when equal high words straddle the boundary: about m / 2^33 of lines, too rare to
    reach through sparse(), so the ranker is called directly with such keys."""
    from weightfill import _core

    rng = np.random.default_rng(m * 1000 + need)
    for trial in range(200):
        keys = rng.integers(0, 1 << 64, size=m, dtype=np.uint64)
        order = np.argsort(keys, kind="stable")
        below, above = int(order[need - 1]), int(order[need])  # the last chosen, the first not
        hi = int(keys[below]) >> 32
        if trial % 4 == 0:    # same high word, the low words decide
            keys[above] = np.uint64((hi << 32) | (int(keys[above]) & 0xFFFFFFFF))
        elif trial % 4 == 1:  # equal keys: the index decides
            keys[above] = keys[below]
        elif trial % 4 == 2:  # several ties share the boundary's high word
            for j in order[max(0, need - 3):need + 3]:
                keys[j] = np.uint64((hi << 32) | int(rng.integers(0, 1 << 32)))
        tie_keys = [int(k) for k in keys]
        assert _core._rank_ties(tie_keys, need) == _ranked_reference(tie_keys, need)


def test_tie_ranking_rejects_a_need_outside_the_ties():
    from weightfill import _core

    for need in (0, 3):
        with pytest.raises(ValueError, match="need"):
            _core._rank_ties([5, 6, 7], need)


# ---- tall and narrow matrices


def _expected_zeros(method, seed, stream, line, n, z):
    """Line `line`'s zero positions by the specification of `method` (3.8 or 3.9)."""
    if method == "keys":
        return _keys_reference(seed, stream, line, n, z)
    chosen = _floyd_reference(seed, stream, line, n, min(z, n - z))
    return chosen if z <= n - z else set(range(n)) - chosen

@pytest.mark.parametrize("method", METHODS)
def test_tall_matrices_without_a_mask(method):
    """Over a million rows: even a 64-column mask would exceed its memory budget, so rows take
    their bits straight from the column maps; whole narrow rows are written in packed runs."""
    n, sparsity = (1 << 20) + 3000, 0.3
    a = wf.sparse((n, 3), sparsity, seed=24, std=1.0, dtype=np.float16, method=method)
    z = math.ceil(sparsity * n)
    for line in range(3):
        want = _expected_zeros(method, 24, 0, line, n, z)
        assert set(np.flatnonzero(a[:, line] == 0).tolist()) == want
    region = (slice(10, n - 10), slice(1, 3))  # still mask-less, but not whole rows
    part = wf.sparse((n, 3), sparsity, seed=24, std=1.0, dtype=np.float16, method=method,
                     region=region)
    np.testing.assert_array_equal(part, a[region])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("sparsity", [0.5, 0.97])
def test_tall_matrices_in_several_mask_less_strips(method, sparsity):
    """Over a million rows and 40 columns: the column maps' budget allows strips of 31 columns,
    so whole rows are filled once and each strip zeroes its own positions."""
    n, cols = (1 << 20) + 3000, 40
    a = wf.sparse((n, cols), sparsity, seed=27, std=1.0, dtype=np.float16, method=method)
    z = math.ceil(sparsity * n)
    # A kept value can itself be 0.0 (a few of these 42M normal values are): counts may exceed
    # z by that much; the positions below are checked exactly.
    extra = np.count_nonzero(a == 0, axis=0) - z
    assert (extra >= 0).all() and (extra <= 5).all()
    rows = slice(0, 50000)
    ref = wf.normal((n, cols), 0.0, 1.0, seed=27, dtype=np.float16, region=(rows,))
    kept = a[rows] != 0
    np.testing.assert_array_equal(a[rows][kept], ref[kept])
    for line in (0, 30, 31, 39):
        want = _expected_zeros(method, 27, 0, line, n, z)
        assert set(np.flatnonzero(a[:, line] == 0).tolist()) == want


@pytest.mark.parametrize("shape", [(3000, 7), (2000, 63)])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("sparsity", [0.5, 0.97])  # 0.97: only the kept values are generated
def test_narrow_rows_in_packed_runs(method, sparsity, axis, shape, each_isa):
    """Whole rows narrower than 64 columns are written in runs of rows (both axes)."""
    full = wf.sparse(shape, sparsity, seed=25, method=method, axis=axis)
    n = shape[axis]
    assert (np.count_nonzero(full == 0, axis=axis) == math.ceil(sparsity * n)).all()
    kept = full != 0
    ref = wf.normal(shape, 0.0, 0.01, seed=25)
    np.testing.assert_array_equal(full[kept], ref[kept])
    for region in [(slice(37, 1999),), (slice(64, 128),), (slice(5, 6),)]:
        part = wf.sparse(shape, sparsity, seed=25, method=method, axis=axis, region=region)
        np.testing.assert_array_equal(part, full[region])
    if axis == 1:  # positions against the specifications
        z = math.ceil(sparsity * n)
        for line in (0, 1234, 1999):
            want = _expected_zeros(method, 25, 0, line, n, z)
            assert set(np.flatnonzero(full[line] == 0).tolist()) == want


def test_floyd_lines_with_several_chunks_of_draws():
    """Byte-stamp lines (n <= 2^16) drawing more than 8192 positions, whose Philox words are
    generated a chunk at a time: four lines interleaved and one alone."""
    n, lines, sparsity = 60000, 5, 0.5
    a = wf.sparse((n, lines), sparsity, seed=26, stream=3)
    z = math.ceil(sparsity * n)
    for line in range(lines):
        want = _floyd_reference(26, 3, line, n, z)
        assert set(np.flatnonzero(a[:, line] == 0).tolist()) == want
