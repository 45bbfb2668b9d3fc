"""Fill plans (``_core.fill_plan``, ``_engine.deferred``): a block of fills run as one engine
call gives, bit for bit, what the same calls give one by one; nothing runs when the block
raises; fills that must be read at once (new arrays, orthogonal's draw, sparse) keep their
meaning; a plan stops on Ctrl-C."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import ml_dtypes
import numpy as np
import pytest
import weightfill as wf
from weightfill import _core, _engine

DTYPES = [np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16),
          np.dtype(ml_dtypes.bfloat16)]
# (full shape, region): whole tensors, regions that start and end inside a Philox block,
# single rows and columns, a 0-d tensor, odd 3-D boxes, empty ones.
REGIONS = [
    ((1000,), None),
    ((1001,), (slice(3, 998),)),
    ((37, 53), None),
    ((37, 53), (slice(5, 6), slice(0, 53))),
    ((37, 53), (slice(0, 37), slice(7, 8))),
    ((37, 53), (slice(2, 35), slice(1, 50))),
    ((), None),
    ((6, 7, 9), (slice(1, 5), slice(2, 7), slice(3, 8))),
    ((300, 300), (slice(10, 290), slice(0, 300))),  # larger than a fill chunk
    ((0,), None),
    ((5, 0), None),
    ((9, 9), (slice(4, 4), slice(0, 9))),
]


def _sentinel(dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """An array of all-ones bits: NaN in every float dtype, which no fill writes."""
    a = np.empty(shape, dtype)
    _bits(a)[...] = np.iinfo(_bits(a).dtype).max
    return a


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


def _calls(dtype: np.dtype) -> list:
    """One call per distribution and scheme family that reaches the engine, as f(shape, out,
    region, stream)."""
    return [
        lambda s, o, r, t: wf.uniform(s, -0.5, 2.0, seed=3, stream=t, out=o, region=r),
        lambda s, o, r, t: wf.normal(s, 1.0, 0.25, seed=3, stream=t, out=o, region=r),
        lambda s, o, r, t: wf.truncated_normal(s, 0.0, 0.02, -2.0, 2.0, seed=3, stream=t,
                                               out=o, region=r),
        lambda s, o, r, t: wf.truncated_normal(s, 0.5, 1.0, 3.0, np.inf, seed=3, stream=t,
                                               out=o, region=r),
        lambda s, o, r, t: wf.constant(s, -1.75, out=o, region=r),
        lambda s, o, r, t: wf.zeros(s, out=o, region=r),
    ]


def _region_shape(shape, region):
    if region is None:
        return shape
    return tuple(sl.stop - sl.start for sl in region)


def _run_all(cases, deferred: bool, check_pending: bool = False) -> list[np.ndarray]:
    """Runs every (call, shape, region, dtype, stream) into a new sentinel array, inside one
    deferred block or one by one; returns the arrays."""
    outs = [_sentinel(dt, _region_shape(s, r)) for _, s, r, dt, _ in cases]
    if not deferred:
        for (f, s, r, _, t), o in zip(cases, outs):
            f(s, o, r, t)
        return outs
    with _engine.deferred():
        for (f, s, r, _, t), o in zip(cases, outs):
            f(s, o, r, t)
        if check_pending:  # recorded, not yet run
            for o in outs:
                assert (_bits(o) == np.iinfo(_bits(o).dtype).max).all()
    return outs


def _cases(n_streams: int = 1):
    return [(f, s, r, dt, f"t{k}") for dt in DTYPES for s, r in REGIONS
            for f in _calls(dt) for k in range(n_streams)]


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_plan_equals_the_calls_one_by_one(each_isa, threads):
    wf.set_num_threads(threads)
    cases = _cases()
    one_by_one = _run_all(cases, deferred=False)
    planned = _run_all(cases, deferred=True, check_pending=True)
    for (_, s, r, dt, _), a, b in zip(cases, one_by_one, planned):
        np.testing.assert_array_equal(_bits(a), _bits(b), err_msg=f"{s} {r} {dt}")
        if a.size:
            assert not np.isnan(a.astype(np.float64)).any()  # every element was written


def test_many_tiny_tensors_mixed_dtypes():
    rng = np.random.default_rng(0)
    cases = []
    for k in range(6000):
        n = int(rng.integers(0, 300))
        f = _calls(DTYPES[0])[k % 6]
        cases.append((f, (n,), None, DTYPES[k % 4], f"layer{k}.weight"))
    cases.append((_calls(DTYPES[0])[1], (1 << 20,), None, DTYPES[0], "big"))  # grouped + split
    for threads in (1, 2, 3):
        wf.set_num_threads(threads)
        one_by_one = _run_all(cases, deferred=False)
        planned = _run_all(cases, deferred=True)
        assert all(np.array_equal(_bits(a), _bits(b)) for a, b in zip(one_by_one, planned))


def test_plan_matches_fill_values_from_other_threads_counts():
    cases = _cases()
    wf.set_num_threads(1)
    ref = _run_all(cases, deferred=True)
    wf.set_num_threads(3)
    got = _run_all(cases, deferred=True)
    assert all(np.array_equal(_bits(a), _bits(b)) for a, b in zip(ref, got))


def test_an_exception_inside_the_block_runs_nothing():
    a = _sentinel(np.dtype(np.float32), (1000,))
    b = _sentinel(np.dtype(np.float64), (10, 10))
    with pytest.raises(RuntimeError, match="boom"):
        with _engine.deferred():
            wf.normal(seed=1, out=a)
            wf.ones(out=b)
            raise RuntimeError("boom")
    assert np.isnan(a).all() and np.isnan(b).all()
    wf.normal(seed=1, out=a)  # no block is left open: this runs at once
    assert not np.isnan(a).any()


def test_nested_blocks_join_the_outer_and_a_raising_inner_block_drops_its_fills():
    a, b, c = (_sentinel(np.dtype(np.float32), (100,)) for _ in range(3))
    with _engine.deferred():
        wf.uniform(seed=1, out=a)
        with pytest.raises(KeyError):
            with _engine.deferred():
                wf.uniform(seed=2, out=b)
                raise KeyError("x")
        with _engine.deferred():
            wf.uniform(seed=3, out=c)
        assert np.isnan(c).all()  # runs with the outer block, not the inner one
    np.testing.assert_array_equal(a, wf.uniform(100, seed=1))
    assert np.isnan(b).all()
    np.testing.assert_array_equal(c, wf.uniform(100, seed=3))


def test_fills_into_the_same_memory_keep_their_order():
    a = _sentinel(np.dtype(np.float32), (4, 1000))
    with _engine.deferred():
        wf.normal(seed=1, out=a)
        wf.zeros(out=a[1])  # a view overlapping the first fill
        wf.uniform(seed=2, out=a[2:4])
        wf.normal(seed=5, out=a[3])
    expect = wf.normal((4, 1000), seed=1)
    expect[1] = 0
    expect[2] = wf.uniform((2, 1000), seed=2)[0]
    expect[3] = wf.normal(1000, seed=5)
    np.testing.assert_array_equal(_bits(a), _bits(expect))


def test_new_arrays_and_schemes_that_read_their_draws_run_at_once():
    out = _sentinel(np.dtype(np.float32), (64, 48))
    sp = _sentinel(np.dtype(np.float32), (64, 48))
    with _engine.deferred():
        fresh = wf.normal((7, 5), seed=4)
        assert not np.isnan(fresh).any()  # a returned new array is filled on return
        wf.orthogonal(seed=4, stream="q", out=out)  # reads its own normal draw
        wf.normal(seed=9, out=sp)
        wf.sparse(sparsity=0.5, seed=4, out=sp)  # must come after the pending normal
        np.testing.assert_array_equal(sp, wf.sparse((64, 48), sparsity=0.5, seed=4))
    np.testing.assert_array_equal(fresh, wf.normal((7, 5), seed=4))
    np.testing.assert_array_equal(out, wf.orthogonal((64, 48), seed=4, stream="q"))
    np.testing.assert_array_equal(sp, wf.sparse((64, 48), sparsity=0.5, seed=4))


def test_flush_runs_what_is_pending():
    a = _sentinel(np.dtype(np.float32), (50,))
    _engine.flush()  # outside a block: nothing to do
    with _engine.deferred():
        wf.uniform(seed=1, out=a)
        assert np.isnan(a).all()
        _engine.flush()
        np.testing.assert_array_equal(a, wf.uniform(50, seed=1))
        a[...] = 7.0  # a plain write after the flush stays
    assert (a == 7.0).all()


def test_blocks_are_per_thread():
    a = _sentinel(np.dtype(np.float32), (100,))
    seen = []
    with _engine.deferred():
        t = threading.Thread(target=lambda: seen.append(wf.uniform(seed=1, out=a).copy()))
        t.start()
        t.join(timeout=30)
        assert not t.is_alive()
    np.testing.assert_array_equal(seen[0], wf.uniform(100, seed=1))  # ran in its thread


def test_a_bad_item_is_rejected_before_anything_is_written():
    good = _sentinel(np.dtype(np.float32), (100,))
    small = np.zeros(10, np.float32)
    item = (_core.Dist.normal, _core.DType.f32, 0.0, 1.0, 1, 0, 0, [100], [0], [100], good, [])
    for bad, message in [
        ((_core.Dist.normal, _core.DType.f32, 0.0, 1.0, 1, 0, 0, [100], [0], [100], small, []),
         "wrong number of elements"),
        ((_core.Dist.normal, _core.DType.f32, 0.0, 1.0, 1, 0, 0, [10], [5], [10], small, []),
         "outside the shape"),
        ((np.zeros(4, np.float32)[::2], 0), "not C-contiguous"),
        ((small,), "a tuple of 12"),
    ]:
        with pytest.raises(ValueError, match=message):
            _core.fill_plan([item, bad])
        assert np.isnan(good).all()
    read_only = np.zeros(100, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError):
        _core.fill_plan([item, (read_only, 0)])
    assert np.isnan(good).all()
    _core.fill_plan([])  # an empty plan is a no-op


def test_a_block_reaches_the_engine_in_one_call(monkeypatch):
    """Every fill of a block reaches the engine in one fill_plan call."""
    calls = []
    real = _core.fill_plan
    monkeypatch.setattr(_core, "fill_plan", lambda items: (calls.append(len(items)),
                                                           real(items)))
    outs = [np.empty((16, 8), np.float32) for _ in range(50)]
    with _engine.deferred():
        for k, o in enumerate(outs):
            wf.kaiming_uniform(seed=2, stream=f"l{k}", out=o)
    assert calls == [50]
    for k, o in enumerate(outs):
        np.testing.assert_array_equal(o, wf.kaiming_uniform((16, 8), seed=2, stream=f"l{k}"))


def test_init_module_and_materialize_fill_in_one_plan(monkeypatch):
    torch = pytest.importorskip("torch")
    import weightfill.torch as wt

    calls = []
    real = _core.fill_plan
    monkeypatch.setattr(_core, "fill_plan", lambda items: (calls.append(len(items)),
                                                           real(items)))

    def make():
        return torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.LayerNorm(8),
                                   torch.nn.Linear(8, 16), torch.nn.Linear(16, 4))

    model = make()
    manifest = wt.init_module(model, seed=5)
    assert calls == [7]  # 7 tensors, one engine call
    with torch.device("meta"):
        meta = make()
    wt.materialize(meta, seed=5)
    assert calls == [7, 7]
    for name, t in list(model.state_dict().items()):
        expect = manifest.tensor(name)
        np.testing.assert_array_equal(t.numpy(), expect)
        np.testing.assert_array_equal(meta.state_dict()[name].numpy(), expect)


def test_ctrl_c_interrupts_a_long_plan():
    code = """
    import os, signal, threading, time
    import numpy as np
    import weightfill as wf
    from weightfill import _engine
    outs = [np.empty(1 << 21, np.float32) for _ in range(256)]  # 2 GiB, scalar kernels
    for o in outs:
        o[...] = 1.0  # faulted in beforehand: the plan is what takes long
    t_sig = []
    def fire():
        t_sig.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)
    threading.Timer(0.5, fire).start()
    try:
        with _engine.deferred():
            for k, o in enumerate(outs):
                wf.normal(seed=1, stream=k, out=o)
        raise SystemExit("finished before the signal")
    except KeyboardInterrupt:
        latency = time.perf_counter() - t_sig[0]
    print("interrupted", latency, sum(bool(o[-1] == 1.0) for o in outs))
    """
    env = {**os.environ, "WEIGHTFILL_ISA": "scalar", "OMP_NUM_THREADS": "2"}
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    words = res.stdout.split()
    assert words[0] == "interrupted", res.stdout
    assert float(words[1]) < 1.0  # the 20 ms poll, plus a loaded machine's scheduling
    assert int(words[2]) > 0  # stopped before the last tensors


@pytest.mark.parametrize("dtype", [np.dtype(np.float32), np.dtype(np.float16)])
def test_large_items_in_huge_page_chunks_equal_the_whole(dtype):
    """Items of 16 MiB and more are cut into 2 MiB chunks: a region of one, planned beside
    small items on 3 threads, equals the same slice of the whole tensor made on one thread."""
    n = 4200 if dtype.itemsize == 2 else 2100
    region = (slice(1, n), slice(3, n - 1))
    wf.set_num_threads(1)
    whole = wf.normal((n, n), seed=8, stream="big", dtype=dtype)
    wf.set_num_threads(3)
    part = _engine.empty((n - 1, n - 4), dtype)
    assert part.nbytes >= 16 << 20
    small = _sentinel(dtype, (1000,))
    with _engine.deferred():
        wf.uniform(seed=8, out=small)
        wf.normal((n, n), seed=8, stream="big", out=part, region=region)
    np.testing.assert_array_equal(_bits(part), _bits(whole[region]))
    np.testing.assert_array_equal(_bits(small), _bits(wf.uniform(1000, seed=8, dtype=dtype)))


def test_untouched_and_file_backed_memory(tmp_path):
    """Chunks whose pages are not resident yet are faulted in with MADV_POPULATE_WRITE before
    they are written: the values are those of a fill into faulted-in memory, also in a
    file-backed np.memmap and at offsets that are not page aligned."""
    n = 3 << 20
    expect = wf.normal(n, seed=6, stream="u")
    fresh = _engine.empty((n,), np.dtype(np.float32), huge_pages=False)  # never touched
    mapped = np.memmap(tmp_path / "m.bin", np.float32, "w+", shape=(n + 3,))
    with _engine.deferred():
        wf.normal(seed=6, stream="u", out=fresh)
        wf.normal(seed=6, stream="u", out=mapped[3:])
    np.testing.assert_array_equal(fresh, expect)
    mapped.flush()
    np.testing.assert_array_equal(np.fromfile(tmp_path / "m.bin", np.float32)[3:], expect)
