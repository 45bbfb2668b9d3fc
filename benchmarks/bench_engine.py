"""Engine speed against numpy.random, measured side by side in one process.

    python benchmarks/bench_engine.py [--n 134217728] [--repeats 7]

Fills a preallocated float32 array of n values (2**27 by default) and prints, for each case,
the median time of weightfill and of its numpy baseline, interleaved run by run so that drift
affects both, and their ratio. Cases follow issue 2's targets: normal and uniform with all
threads, normal with one thread, normal on the AVX2 kernel, and the thread scaling of normal.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

import weightfill as wf
from weightfill import _engine


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up: page faults, thread start-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(fa, fb, repeats: int) -> tuple[float, float]:
    fa(), fb()
    ta, tb = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fa()
        ta.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fb()
        tb.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1 << 27, help="values per fill (default 2**27)")
    ap.add_argument("--repeats", type=int, default=7, help="timed runs per case (median)")
    args = ap.parse_args()
    n, reps = args.n, args.repeats

    out = np.empty(n, np.float32)
    out.fill(0)  # fault the pages in once, for every contender
    gen = np.random.Generator(np.random.PCG64(12345))
    threads = wf.get_num_threads()
    best = _engine.available_isas()[-1]
    print(f"{cpu_name()}, {threads} threads, kernels {_engine.available_isas()}, "
          f"numpy {np.__version__}, n = {n:,} float32, median of {reps}")

    def np_normal():
        gen.standard_normal(dtype=np.float32, out=out)

    def np_uniform():
        gen.random(dtype=np.float32, out=out)

    def wf_normal():
        wf.normal(seed=1, out=out)

    def wf_uniform():
        wf.uniform(seed=1, out=out)

    rows = []

    def case(label, isa, nthreads, f_wf, f_np, target):
        _engine.force_isa(isa)
        wf.set_num_threads(nthreads)
        t_wf, t_np = interleaved(f_wf, f_np, reps)
        rows.append((label, isa, nthreads, n / t_wf / 1e9, n / t_np / 1e9, t_np / t_wf, target))
        return t_wf

    case("normal", best, threads, wf_normal, np_normal, ">= 15x")
    case("uniform", best, threads, wf_uniform, np_uniform, ">= 6x")
    t1 = case("normal", best, 1, wf_normal, np_normal, ">= 8x")
    if "avx2" in _engine.available_isas():
        case("normal", "avx2", threads, wf_normal, np_normal, ">= 6x")
    _engine.force_isa(best)
    wf.set_num_threads(threads)
    tn = median_time(wf_normal, reps)

    print(f"\n{'case':<9}{'kernel':<8}{'threads':>8}{'weightfill':>14}{'numpy':>12}{'speed-up':>10}  target")
    for label, isa, nt, g_wf, g_np, ratio, target in rows:
        print(f"{label:<9}{isa:<8}{nt:>8}{g_wf:>10.3f} G/s{g_np:>8.3f} G/s{ratio:>9.1f}x  {target}")
    print(f"\nnormal, {threads} threads vs 1 thread: {t1 / tn:.2f}x (target >= 1.8x)")


if __name__ == "__main__":
    main()
