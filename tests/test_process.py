"""Behaviour that needs a fresh process: environment variables, fork, Ctrl-C, peak memory."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import weightfill as wf
from conftest import ISAS


def run_py(code: str, env: dict | None = None,
           timeout: float = 60.0) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                          capture_output=True, text=True, timeout=timeout)


DIGEST = """
import hashlib, numpy as np, weightfill as wf
a = wf.normal((513, 1000), seed=17, stream="p")
b = wf.uniform((513, 1000), seed=17, stream="p", dtype=np.float64)
print(wf.isa(), wf.get_num_threads(), hashlib.sha256(a.tobytes() + b.tobytes()).hexdigest())
"""


def local_digest() -> str:
    a = wf.normal((513, 1000), seed=17, stream="p")
    b = wf.uniform((513, 1000), seed=17, stream="p", dtype=np.float64)
    return hashlib.sha256(a.tobytes() + b.tobytes()).hexdigest()


@pytest.mark.parametrize("isa", ISAS)
def test_weightfill_isa_environment_variable(isa):
    res = run_py(DIGEST, env={"WEIGHTFILL_ISA": isa})
    assert res.returncode == 0, res.stderr
    got_isa, _, digest = res.stdout.split()
    assert got_isa == isa
    assert digest == local_digest()


# Every kind of call meets a bad environment variable first with the same ValueError: the C
# fast paths (a small new array, a small out=, a constant fill, sparse, random_raw), the Python
# path (region=) and a fill large enough for threads.
ENV_CALLS = ["wf.normal(4, seed=1)", "wf.normal(None, seed=1, out=np.empty(4, np.float32))",
             "wf.zeros((2, 2))", "wf.sparse((4, 4), 0.5, seed=1)", "wf.random_raw(4, seed=1)",
             "wf.normal((4,), seed=1, region=(slice(0, 2),))", "wf.normal(1 << 20, seed=1)"]


@pytest.mark.parametrize("call", ENV_CALLS)
@pytest.mark.parametrize("var, value", [("WEIGHTFILL_ISA", "avx9"),
                                        ("WEIGHTFILL_THREADING", "tbb")])
def test_bad_environment_values_fail_every_call(var, value, call):
    res = run_py(f"import numpy as np, weightfill as wf; {call}", env={var: value})
    assert res.returncode != 0
    assert var in res.stderr and "ValueError" in res.stderr, res.stderr


def test_weightfill_isa_refuses_levels_the_cpu_lacks():
    missing = {"scalar", "avx2", "avx512"} - set(ISAS)
    for isa in missing:  # only testable on a CPU that lacks a level
        res = run_py("import weightfill as wf; wf.isa()", env={"WEIGHTFILL_ISA": isa})
        assert "not supported by this CPU" in res.stderr


@pytest.mark.parametrize("threads", [1, 2, 3, 5, 8])
def test_omp_num_threads_gives_the_same_bits(threads):
    res = run_py(DIGEST, env={"OMP_NUM_THREADS": str(threads)})
    assert res.returncode == 0, res.stderr
    _, got_threads, digest = res.stdout.split()
    assert int(got_threads) == threads
    assert digest == local_digest()


@pytest.mark.parametrize("backend", ["pool", "openmp"])
def test_fill_in_a_forked_child_does_not_hang(backend):
    code = """
    import os, sys, numpy as np, weightfill as wf
    from weightfill import _core, _engine
    wf.set_num_threads(2)
    parent = wf.normal(1 << 22, seed=1)   # starts the parent's workers
    pid = os.fork()
    if pid == 0:
        child = wf.normal(1 << 22, seed=1)
        # the child's own pool has a worker (a reused copy of the parent's would have none)
        ok = (np.array_equal(child, parent) and _engine.thread_backend() == "pool"
              and _core._parallel_probe(2, -1) == 2)
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    again = wf.normal(1 << 22, seed=1)    # the parent's workers still work
    print(os.waitstatus_to_exitcode(status), np.array_equal(again, parent),
          _engine.thread_backend())
    """
    res = run_py(code, env={"WEIGHTFILL_THREADING": backend}, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["0", "True", backend]


@pytest.mark.parametrize("backend", ["pool", "openmp"])
def test_multiprocessing_fork_pool(backend):
    code = """
    import multiprocessing as mp, numpy as np, weightfill as wf
    wf.set_num_threads(2)
    wf.normal(1 << 20, seed=0)
    def work(i):
        return float(wf.normal(1 << 20, seed=i).sum())
    if __name__ == "__main__":
        with mp.get_context("fork").Pool(2) as pool:
            got = pool.map(work, range(4))
        print(got == [work(i) for i in range(4)])
    """
    res = run_py(code, env={"WEIGHTFILL_THREADING": backend}, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "True"


@pytest.mark.parametrize("backend", ["pool", "openmp"])
@pytest.mark.parametrize("threads", [2, 3])
def test_threading_backends_give_the_same_bits(backend, threads):
    res = run_py(DIGEST + "from weightfill import _engine; print(_engine.thread_backend())",
                 env={"WEIGHTFILL_THREADING": backend, "OMP_NUM_THREADS": str(threads)})
    assert res.returncode == 0, res.stderr
    _, got_threads, digest, got_backend = res.stdout.split()
    assert (int(got_threads), got_backend) == (threads, backend)
    assert digest == local_digest()


@pytest.mark.parametrize("backend", ["pool", "openmp"])
def test_parallel_calls_take_workers_and_hand_back_their_errors(backend):
    # The probe itself raises if run_parallel returned while a runner was still inside; the
    # errors are the caller's (runner 0) or a worker's, rethrown after both have left.
    code = """
    import numpy as np, weightfill as wf
    from weightfill import _core, _engine
    wf.set_num_threads(2)
    expect = wf.normal(1 << 20, seed=5)
    entered = [_core._parallel_probe(2, -1), _core._parallel_probe(1, -1)]
    errors = []
    for thrower in (0, 1, 0, 1):
        try:
            _core._parallel_probe(2, thrower)
        except RuntimeError as e:
            errors.append(str(e))
    print(_engine.thread_backend(), entered, errors,
          np.array_equal(wf.normal(1 << 20, seed=5), expect))
    """
    res = run_py(code, env={"WEIGHTFILL_THREADING": backend})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == (
        f"{backend} [2, 1] ['runner 0', 'runner 1', 'runner 0', 'runner 1'] True")


@pytest.mark.parametrize("call", [
    "wf.normal(1 << 29, seed=1)",
    # out= takes the whole-array fast path (_core.fill_whole), which runs the same plan
    "wf.normal(None, seed=1, out=np.empty(1 << 29, np.float32))",
], ids=["new-array", "out"])
def test_ctrl_c_interrupts_a_long_fill_quickly(call):
    # The portable kernel keeps the fill long enough (several seconds for 2**29 values).
    code = """
    import os, signal, threading, time, resource, gc, numpy as np, weightfill as wf
    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    base = rss_mib()
    t_sig = []
    def fire():
        t_sig.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)
    threading.Timer(0.5, fire).start()
    t0 = time.perf_counter()
    try:
        CALL
        raise SystemExit("finished before the signal")
    except KeyboardInterrupt:
        latency = time.perf_counter() - t_sig[0]
    gc.collect()  # the traceback (which holds the half-filled array) is gone by now
    print("interrupted", latency, rss_mib() - base)
    """
    res = run_py(code.replace("CALL", call), env={"WEIGHTFILL_ISA": "scalar",
                                                  "OMP_NUM_THREADS": "2"}, timeout=120)
    assert res.returncode == 0, res.stderr
    words = res.stdout.split()
    assert words[0] == "interrupted", res.stdout
    latency, leaked_mib = float(words[1]), float(words[2])
    assert latency < 0.5
    assert leaked_mib < 64  # the 2 GiB output was freed


def test_new_array_peak_memory_is_the_output_only():
    code = """
    import resource, numpy as np, weightfill as wf
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    a = wf.normal(1 << 26, seed=1)          # 256 MiB
    b = wf.uniform(1 << 25, seed=1, dtype=np.float64)  # 256 MiB
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) / 1024)
    """
    res = run_py(code)
    assert res.returncode == 0, res.stderr
    grown_mib = float(res.stdout)
    assert grown_mib < 512 * 1.01 + 16, grown_mib
