"""The counter contract: the same bits whatever the instruction set, thread count, region,
chunking or call order (DESIGN.md section 1)."""

from __future__ import annotations

import threading

import ml_dtypes
import numpy as np
import pytest
import weightfill as wf
from conftest import ISAS
from weightfill import _engine

DTYPES = [np.float32, np.float64, np.float16, ml_dtypes.bfloat16]
CASES = [
    ("uniform", dict(low=-0.5, high=2.0)),
    ("normal", dict(mean=0.25, std=1.5)),
    ("truncated_normal", dict(mean=0.25, std=1.5, lower=-2.0, upper=2.0)),
    ("truncated_normal", dict(mean=0.0, std=1.0, lower=-30.0, upper=-29.0)),  # float64 arithmetic
]


def bits(a: np.ndarray) -> np.ndarray:
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def draw(name, shape, dtype, **kw):
    return getattr(wf, name)(shape, seed=2024, stream="layer.weight", dtype=dtype, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,params", CASES)
def test_every_isa_equals_scalar(name, params, dtype):
    shape = (37, 1031)  # odd sizes: partial blocks and batches at every row
    _engine.force_isa("scalar")
    ref = draw(name, shape, dtype, **params)
    for isa in ISAS:
        _engine.force_isa(isa)
        got = draw(name, shape, dtype, **params)
        np.testing.assert_array_equal(bits(got), bits(ref), err_msg=isa)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,params", CASES)
def test_thread_counts_agree(name, params, dtype):
    n = (1 << 20) + 7  # above the per-thread minimum so every count really splits the work
    wf.set_num_threads(1)
    ref = draw(name, n, dtype, **params)
    for t in (2, 3, 5, 8):
        wf.set_num_threads(t)
        got = draw(name, n, dtype, **params)
        np.testing.assert_array_equal(bits(got), bits(ref), err_msg=f"{t} threads")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,params", CASES)
def test_regions_equal_the_full_tensor(name, params, dtype, each_isa):
    shape = (6, 35, 9)
    full = draw(name, shape, dtype, **params)
    regions = [
        (slice(0, 6), slice(0, 35), slice(0, 9)),
        (slice(1, 4),),
        (slice(2, 3), slice(5, 30), slice(1, 8)),
        (slice(None), slice(None), slice(3, 4)),
        (slice(-2, None), slice(7, -3)),
        (slice(3, 3),),
        slice(5, 6),
    ]
    for region in regions:
        part = draw(name, shape, dtype, region=region, **params)
        np.testing.assert_array_equal(bits(part), bits(full[region]), err_msg=str(region))


@pytest.mark.parametrize("dtype", DTYPES)
def test_chunks_and_mid_block_offsets(dtype, each_isa):
    n = 5000
    full = wf.normal(n, seed=5, dtype=dtype)
    out = np.empty(n, dtype)
    cuts = [0, 1, 2, 3, 5, 64, 67, 129, 1000, 1001, 4095, 4999, 5000]
    for a, b in zip(cuts[:-1], cuts[1:]):
        wf.normal(n, seed=5, dtype=dtype, region=(slice(a, b),), out=out[a:b])
    np.testing.assert_array_equal(bits(out), bits(full))


def test_shards_of_a_large_matrix_are_independent_of_order():
    shape = (64, 4099)
    full = wf.uniform(shape, seed=8)
    rows = [wf.uniform(shape, seed=8, region=(slice(r, r + 16),)) for r in (48, 0, 32, 16)]
    np.testing.assert_array_equal(np.concatenate([rows[1], rows[3], rows[2], rows[0]]), full)
    cols = [wf.uniform(shape, seed=8, region=(slice(None), slice(c, min(c + 1000, 4099))))
            for c in range(0, 4099, 1000)]
    np.testing.assert_array_equal(np.concatenate(cols, axis=1), full)


def test_seed_and_stream_change_everything():
    a = wf.normal(1000, seed=1)
    assert not np.array_equal(a, wf.normal(1000, seed=2))
    assert not np.array_equal(a, wf.normal(1000, seed=1, stream=1))
    assert not np.array_equal(a, wf.normal(1000, seed=1 << 32))
    assert not np.array_equal(a, wf.normal(1000, seed=1, stream=1 << 32))
    np.testing.assert_array_equal(a, wf.normal(1000, seed=1))


def test_seed_none_draws_fresh_entropy():
    assert not np.array_equal(wf.uniform(64, seed=None), wf.uniform(64, seed=None))


def test_concurrent_calls_from_python_threads():
    shapes = [(300, 1000 + i) for i in range(8)]
    expect = [wf.normal(s, seed=i, stream="t") for i, s in enumerate(shapes)]
    got = [None] * len(shapes)

    def work(i):
        for _ in range(3):
            got[i] = wf.normal(shapes[i], seed=i, stream="t")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(shapes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e, g in zip(expect, got):
        np.testing.assert_array_equal(g, e)


def test_new_arrays_are_aligned_owned_and_writable():
    for dtype in DTYPES:
        for n in (0, 1, 7, 1 << 16):
            a = wf.normal((n,), seed=1, dtype=dtype)
            assert a.dtype == dtype and a.shape == (n,)
            assert a.flags.c_contiguous and a.flags.writeable
            assert a.ctypes.data % 64 == 0
            assert a.base is not None  # the capsule that frees the kernel's buffer


def test_out_is_filled_in_place_and_returned():
    out = np.full((10, 20), np.nan, np.float32)
    res = wf.uniform(out=out, seed=3)
    assert res is out
    np.testing.assert_array_equal(out, wf.uniform((10, 20), seed=3))
    out64 = np.zeros((4, 5))
    assert wf.normal(out=out64, seed=3) is out64  # dtype taken from out
    np.testing.assert_array_equal(out64, wf.normal((4, 5), seed=3, dtype=np.float64))


def test_out_can_be_a_view_memmap_or_buffer(tmp_path):
    base = np.zeros((8, 100), np.float32)
    view = base[2:5]  # C-contiguous row block of a larger array
    wf.normal((8, 100), seed=4, region=(slice(2, 5),), out=view)
    np.testing.assert_array_equal(base[2:5], wf.normal((8, 100), seed=4)[2:5])
    assert not base[:2].any() and not base[5:].any()

    mm = np.memmap(tmp_path / "w.bin", dtype=np.float32, mode="w+", shape=(3, 1000))
    assert wf.uniform(out=mm, seed=4) is mm
    mm.flush()
    back = np.fromfile(tmp_path / "w.bin", dtype=np.float32).reshape(3, 1000)
    np.testing.assert_array_equal(back, wf.uniform((3, 1000), seed=4))

    import array

    buf = array.array("f", [0.0] * 50)
    wf.uniform(50, out=buf, seed=4)
    np.testing.assert_array_equal(np.frombuffer(buf, np.float32), wf.uniform(50, seed=4))


def test_uniform_bounds_and_degenerate_interval():
    a = wf.uniform(1 << 18, -2.0, 3.0, seed=1)
    assert a.min() >= -2.0 and a.max() < 3.0
    b = wf.uniform(1 << 18, 5.0, 5.0, seed=1, dtype=np.float64)
    assert (b == 5.0).all()


def test_uniform_clamps_values_that_round_onto_high():
    # In float32, 1e7 + u * 1 lands on 1e7 + 1 for the top u, so the clamp must fire.
    low, high = 1.0e7, 1.0e7 + 1.0
    a = wf.uniform(1 << 20, low, high, seed=11)
    assert a.max() < np.float32(high)
    assert a.max() == np.nextafter(np.float32(high), np.float32(0))


def test_normal_has_no_nan_or_inf_and_std_zero_gives_mean():
    a = wf.normal(1 << 22, seed=99)
    assert np.isfinite(a).all()
    assert np.abs(a).max() <= 6.6605  # the largest radius of the float32 transform
    assert (wf.normal(1000, 3.0, 0.0, seed=1) == 3.0).all()
