"""weightfill.dask.array on a real dask.distributed cluster (two worker processes).

The oracle for every chunked array is the NumPy call of the same scheme on the whole shape:
the counter contract says each block equals that slice bit for bit, whatever the chunking and
whichever worker fills it.
"""

from __future__ import annotations

import math
import os
import pickle
import shutil
import signal
import time

import ml_dtypes
import numpy as np
import pytest

import weightfill as wf

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")
wfd = pytest.importorskip("weightfill.dask")

TIMEOUT = 120  # seconds for any one cluster operation
# Every test talks to worker processes (the module fixture's setup counts towards the first).
pytestmark = pytest.mark.timeout(180)
DTYPES = [np.float32, np.float64, np.float16, ml_dtypes.bfloat16]


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GiB",
        dashboard_address=None, silence_logs=40,  # logging.ERROR: the kill test's warnings
    )
    c = distributed.Client(cluster, timeout=TIMEOUT)
    try:
        c.wait_for_workers(2, timeout=TIMEOUT)
        yield c
    finally:
        c.close(timeout=TIMEOUT)
        cluster.close(timeout=TIMEOUT)


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


def whole(scheme: str, shape, dtype, seed=7, stream="layer.weight", **params) -> np.ndarray:
    fn = getattr(wf, scheme)
    if scheme in ("zeros", "ones", "constant", "eye", "identity", "dirac"):
        return fn(shape, dtype=dtype, **params)
    return fn(shape, seed=seed, stream=stream, dtype=dtype, **params)


# (scheme, shape, params): every scheme family; 2-D shapes are 37 x 29 (odd, so blocks start
# mid Philox block), sparse also along its chunked axis.
CASES = [
    ("uniform", (37, 29), dict(low=-0.5, high=2.0)),
    ("normal", (37, 29), dict(mean=0.25, std=3.0)),
    ("truncated_normal", (37, 29), dict(std=0.02, lower=-1.5, upper=2.5)),
    ("sparse", (37, 29), dict(sparsity=0.3)),  # axis=0: lines run down the chunked rows
    ("sparse", (37, 29), dict(nonzeros=4, axis=1, method="keys")),
    ("kaiming_uniform", (37, 29), dict(a=math.sqrt(5))),
    ("kaiming_normal", (37, 29), dict(mode="fan_out")),
    ("xavier_uniform", (37, 29), dict(gain=2.0)),
    ("xavier_normal", (37, 29), {}),
    ("variance_scaling", (37, 29), dict(scale=0.5, mode="fan_avg", distribution="uniform")),
    ("he_normal", (37, 29), {}),
    ("he_uniform", (37, 29), dict(layout="torch")),
    ("glorot_uniform", (37, 29), {}),
    ("glorot_normal", (4, 37, 29), dict(batch_axis=0)),  # stacked: JAX fans
    ("lecun_normal", (37, 29), {}),
    ("lecun_uniform", (37, 29), {}),
    ("orthogonal", (37, 29), dict(gain=1.5)),
    ("orthogonal", (29, 37), dict(layout="keras")),
    ("delta_orthogonal", (3, 3, 16, 24), {}),
    ("eye", (37, 29), {}),
    ("identity", (37, 29), dict(gain=-2.0)),
    ("dirac", (12, 6, 3, 3), dict(groups=2)),
    ("constant", (37, 29), dict(value=0.125)),
    ("zeros", (37, 29), {}),
    ("ones", (37, 29), {}),
]


def chunkings(shape):
    """Whole, odd blocks, single rows, single columns, irregular, per-axis auto."""
    out = [tuple(-1 for _ in shape), tuple(max(1, n // 3 + 1) for n in shape),
           (1,) + tuple(-1 for _ in shape[1:]), tuple(-1 for _ in shape[:-1]) + (1,),
           "auto"]
    first = (shape[0] - shape[0] // 2, shape[0] // 2)
    out.append((first,) + tuple((n,) for n in shape[1:]))
    return out


def test_every_scheme_family_and_dtype_equals_the_numpy_call(client):
    assert set(s for s, _, _ in CASES) == set(wfd.SCHEMES)
    for scheme, shape, params in CASES:
        arrays, expected = [], []
        for dtype in DTYPES:
            ref = whole(scheme, shape, dtype, **params)
            for chunks in chunkings(shape):
                x = wfd.array(scheme, shape, chunks=chunks, seed=7, stream="layer.weight",
                              dtype=dtype, **params)
                assert x.shape == shape and x.dtype == ref.dtype
                arrays.append(x)
                expected.append((ref, chunks, dtype))
        got = client.gather(client.compute(arrays))
        for g, (ref, chunks, dtype) in zip(got, expected):
            assert g.dtype == ref.dtype and g.shape == ref.shape
            assert np.array_equal(bits(g), bits(ref)), (scheme, params, chunks, dtype)


def test_non_trivial_values_and_default_dtype(client):
    x = wfd.array("sparse", (64, 48), chunks=(10, 48), sparsity=0.5, seed=3)
    got = client.compute(x).result(timeout=TIMEOUT)
    assert got.dtype == np.float32
    assert (got == 0).sum(axis=0).tolist() == [32] * 48  # exact zeros per column, chunked rows
    assert np.array_equal(got, wf.sparse((64, 48), sparsity=0.5, seed=3))


def test_one_thread_per_task_on_nanny_workers_and_the_cap(client):
    # A nanny starts each worker with OMP_NUM_THREADS=1 (dask's pre-spawn environment).
    assert set(client.run(wf.get_num_threads).values()) == {1}
    client.run(wf.set_num_threads, 8)
    try:
        x = wfd.array("normal", (64, 64), chunks=(8, 64), seed=1)
        client.compute(x).result(timeout=TIMEOUT)
        cpus = len(os.sched_getaffinity(0))  # the test and its workers share this host
        after = client.run(wf.get_num_threads)
        capped = min(8, max(1, cpus // 1))  # threads_per_worker=1: one task at a time
        assert capped in after.values()  # a worker that ran a task was lowered to its budget
        assert all(v in (8, capped) for v in after.values())
    finally:
        client.run(wf.set_num_threads, 1)


def test_graph_is_small_deterministic_and_deduplicated():
    x = wfd.array("normal", (16384, 8192), chunks=(2048, 8192), seed=1, stream="w", std=0.02)
    y = wfd.array("normal", (16384, 8192), chunks=(2048, 8192), seed=1, stream="w", std=0.02)
    assert x.name == y.name and x.name.startswith("weightfill-normal-")
    for other in (
        wfd.array("normal", (16384, 8192), chunks=(1024, 8192), seed=1, stream="w", std=0.02),
        wfd.array("normal", (16384, 8192), chunks=(2048, 8192), seed=2, stream="w", std=0.02),
        wfd.array("normal", (16384, 8192), chunks=(2048, 8192), seed=1, stream="v", std=0.02),
        wfd.array("normal", (16384, 8192), chunks=(2048, 8192), seed=1, stream="w", std=0.03),
        wfd.array("normal", (16384, 8192), chunks=(2048, 8192), seed=1, stream="w", std=0.02,
                  dtype=np.float64),
    ):
        assert other.name != x.name
    graph = dict(x.__dask_graph__())
    assert len(graph) == 8
    blob = pickle.dumps(graph)
    assert len(blob) < 8 * 1024, len(blob)  # 512 MiB of values; no array in the graph
    assert b"numpy.core.multiarray\n_reconstruct" not in blob and b"_reconstruct" not in blob
    # Equal arrays are the same keys, so a graph holding both computes them once.
    assert len({**graph, **dict(y.__dask_graph__())}) == 8
    # The whole-matrix path (one task, then dask's rechunk) is named deterministically too.
    o = [wfd.array("orthogonal", (64, 32), chunks=(16, 32), seed=s) for s in (0, 0, 1)]
    assert o[0].name == o[1].name != o[2].name
    assert dict(o[0].__dask_graph__()).keys() == dict(o[1].__dask_graph__()).keys()


def test_seed_none_is_drawn_once_at_call_time(client):
    x = wfd.array("uniform", (40, 30), chunks=(7, 30), seed=None)
    a = client.compute(x).result(timeout=TIMEOUT)
    b = client.compute(x).result(timeout=TIMEOUT)
    assert np.array_equal(a, b)  # every chunk and recomputation shares the seed
    assert not np.array_equal(a, client.compute(
        wfd.array("uniform", (40, 30), chunks=(7, 30), seed=None)).result(timeout=TIMEOUT))


@pytest.mark.parametrize("call, err, words", [
    (lambda: wfd.array("nope", (4, 4), seed=0), ValueError, "unknown scheme 'nope'"),
    (lambda: wfd.array(wf.normal, (4, 4), seed=0), TypeError, "scheme must be a str"),
    (lambda: wfd.array("normal", (4, 4)), TypeError, "needs seed="),
    (lambda: wfd.array("normal", (4, 4), seed=-1), ValueError, "seed must be in"),
    (lambda: wfd.array("normal", (4, 4), seed=0, stream=1.5), TypeError, "stream"),
    (lambda: wfd.array("normal", (4, -4), seed=0), ValueError, "shape[1] must be >= 0"),
    (lambda: wfd.array("normal", (4, 4), seed=0, std=-1.0), ValueError, "std must be >= 0"),
    (lambda: wfd.array("normal", (4, 4), seed=0, dtype=np.int32), TypeError, "dtype"),
    (lambda: wfd.array("normal", (4, 4), seed=0, dtype="float8"), TypeError, "dtype"),
    (lambda: wfd.array("normal", (4, 4), seed=0, stdev=1.0), TypeError, "stdev"),
    (lambda: wfd.array("normal", (4, 4), seed=0, region=(slice(0, 1),)), TypeError,
     "region"),
    (lambda: wfd.array("normal", (4, 4), seed=0, chunks=(2, 2, 2)), ValueError, "chunks"),
    (lambda: wfd.array("normal", (4, 4), seed=0, chunks=(0, 4)), ValueError, "chunks"),
    (lambda: wfd.array("normal", (4, 4), seed=0, chunks=((1, 2), (4,))), ValueError,
     "chunks"),
    (lambda: wfd.array("normal", (4, 4), seed=0, chunks=(1.5, 4)), ValueError, "chunks"),
    (lambda: wfd.array("uniform", (4, 4), seed=0, low=2.0, high=1.0), ValueError, "low"),
    (lambda: wfd.array("truncated_normal", (4, 4), seed=0, lower=1, upper=1), ValueError,
     "lower must be < upper"),
    (lambda: wfd.array("sparse", (4, 4, 4), seed=0, sparsity=0.1), ValueError, "2-D"),
    (lambda: wfd.array("sparse", (4, 4), seed=0, sparsity=1.5), ValueError, "sparsity"),
    (lambda: wfd.array("sparse", (4, 4), seed=0), TypeError, "exactly one of"),
    (lambda: wfd.array("kaiming_normal", (4, 4), seed=0, mode="fan_sideways"), ValueError,
     "mode"),
    (lambda: wfd.array("variance_scaling", (4, 4), seed=0, scale=0.0), ValueError, "scale"),
    (lambda: wfd.array("orthogonal", (4,), seed=0), ValueError, "at least 2 dimensions"),
    (lambda: wfd.array("orthogonal", (4, 4), seed=0, layout="tf"), ValueError, "layout"),
    (lambda: wfd.array("orthogonal", (4, 4), seed=0, gain=float("nan")), ValueError, "gain"),
    (lambda: wfd.array("delta_orthogonal", (3, 3, 8, 4), seed=0), ValueError, "in <= out"),
    (lambda: wfd.array("delta_orthogonal", (8, 4), seed=0), ValueError, "3-, 4- or 5-D"),
    (lambda: wfd.array("dirac", (6, 4, 3), groups=4), ValueError, "divisible"),
    (lambda: wfd.array("eye", (4, 4, 4)), ValueError, "2-D"),
    (lambda: wfd.array("constant", (4, 4), value=1e6, dtype=np.float16), ValueError,
     "overflows"),
])
def test_bad_input_fails_at_call_time(call, err, words):
    with pytest.raises(err) as info:
        call()
    assert words in str(info.value)


def test_orthogonal_at_call_time_does_not_compute(monkeypatch):
    """The argument check must not build the matrix (that is the graph's one task's job)."""
    from weightfill import _haar

    def fail(*a, **k):
        raise AssertionError("orthogonal matrix computed at call time")

    monkeypatch.setattr(_haar, "orthonormal_columns", fail)
    x = wfd.array("orthogonal", (2048, 1024), chunks=(256, 1024), seed=0)
    d = wfd.array("delta_orthogonal", (3, 3, 512, 512), chunks=(1, 1, 512, 512), seed=0)
    assert x.numblocks == (8, 1) and d.numblocks == (3, 3, 1, 1)


def _kill_once(block, flag, victim, block_id=None):
    """Kills this worker process (SIGKILL, mid-computation) the first time it meets block
    ``victim``; the flag file makes every later attempt pass through."""
    if block_id == victim:
        try:
            fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return block
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)
    return block


def test_a_worker_killed_mid_computation_is_retried_with_identical_result(client, tmp_path):
    shape, chunks = (4096, 1024), (256, 1024)
    pids_before = set(client.run(os.getpid).values())
    x = wfd.array("normal", shape, chunks=chunks, seed=11, stream="big", dtype=np.float32)
    flag = str(tmp_path / "killed")
    y = x.map_blocks(_kill_once, flag, (10, 0), dtype=x.dtype)
    got = client.compute(y).result(timeout=TIMEOUT)
    assert os.path.exists(flag), "no worker was killed"
    with open(flag) as f:
        victim = int(f.read())
    assert victim in pids_before
    client.wait_for_workers(2, timeout=TIMEOUT)  # the nanny restarts the killed worker
    pids_after = set(client.run(os.getpid).values())
    assert victim not in pids_after and len(pids_after) == 2
    assert np.array_equal(bits(got), bits(wf.normal(shape, seed=11, stream="big")))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_4gib_to_zarr_with_workers_that_cannot_hold_it(client, tmp_path):
    shape, chunks = (32768, 32768), (1024, 32768)  # 4 GiB float32, 32 blocks of 128 MiB
    nbytes = math.prod(shape) * 4
    limits = [w["memory_limit"] for w in client.scheduler_info()["workers"].values()]
    assert len(limits) == 2 and sum(limits) < nbytes  # two 1 GiB workers: 2 GiB < 4 GiB
    addresses = set(client.scheduler_info()["workers"])
    path = str(tmp_path / "w.zarr")
    x = wfd.array("normal", shape, chunks=chunks, seed=5, stream="embed", std=0.02)
    t0 = time.perf_counter()
    # Uncompressed (random floats do not compress); zarr 3 and zarr 2 spell it differently.
    raw = {"compressors": None} if int(zarr.__version__.split(".")[0]) >= 3 else {
        "compressor": None}
    client.compute(x.to_zarr(path, compute=False, **raw)).result(timeout=600)
    elapsed = time.perf_counter() - t0
    print(f"4 GiB to zarr: {elapsed:.1f} s")
    # No worker died of memory on the way (a restarted worker has a new address).
    assert set(client.scheduler_info()["workers"]) == addresses
    z = zarr.open_array(path, mode="r")
    assert z.shape == shape and z.dtype == np.float32
    regions = [
        (slice(0, 3), slice(0, 5)),                   # first elements
        (slice(1000, 1100), slice(32700, 32768)),     # across a block boundary, last columns
        (slice(16383, 16386), slice(None)),           # whole rows around the middle
        (slice(32760, 32768), slice(12345, 12400)),   # last rows
        (slice(None), slice(777, 778)),               # a whole column: every block
    ]
    try:
        for region in regions:
            expected = wf.normal(shape, std=0.02, seed=5, stream="embed", region=region)
            assert np.array_equal(bits(z[region]), bits(expected)), region
    finally:
        shutil.rmtree(path)  # pytest keeps the last runs' tmp dirs: 4 GiB each
