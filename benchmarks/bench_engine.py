"""Engine speed against numpy.random, measured side by side in one process.

    python benchmarks/bench_engine.py [--n 134217728] [--repeats 7]

Fills a preallocated array of n values (2**27 by default) and prints, for each case, the
median time of weightfill and of its baseline, interleaved run by run so that drift affects
both, and their ratio. Cases follow the engine issues' targets: normal and uniform with all
threads, normal with one thread and on the AVX2 kernel, thread scaling; truncated normal
(-2, 2) against numpy and torch.nn.init.trunc_normal_; bfloat16 normal against float32 normal
and torch's bfloat16 normal_; sparse (4096, 4096) at sparsity 0.1, 0.5 and 0.9 with both
methods ("sparse": Floyd, the default; "keys") against normal of the same shape. torch cases
run when torch is installed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import weightfill as wf
from weightfill import _engine
from weightfill.bench import cpu_name


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

    def case(label, isa, nthreads, f_wf, f_np, target, count=n):
        _engine.force_isa(isa)
        wf.set_num_threads(nthreads)
        t_wf, t_np = interleaved(f_wf, f_np, reps)
        rows.append((label, isa, nthreads, count / t_wf / 1e9, count / t_np / 1e9, t_np / t_wf,
                     target))
        print(f"  {label:<11} {isa:<7} {nthreads} threads: {t_np / t_wf:.2f}x", flush=True)
        return t_wf

    try:
        import torch
    except ImportError:
        torch = None
        print("torch not installed: its cases are skipped")

    case("normal", best, threads, wf_normal, np_normal, ">= 15x")
    case("uniform", best, threads, wf_uniform, np_uniform, ">= 6x")
    t1 = case("normal", best, 1, wf_normal, np_normal, ">= 8x")
    if "avx2" in _engine.available_isas():
        case("normal", "avx2", threads, wf_normal, np_normal, ">= 6x")
    _engine.force_isa(best)
    wf.set_num_threads(threads)
    tn = median_time(wf_normal, reps)

    def wf_trunc():
        wf.truncated_normal(seed=1, out=out)

    case("trunc", best, threads, wf_trunc, np_normal, ">= 10x")
    import ml_dtypes

    out_bf16 = np.zeros(n, ml_dtypes.bfloat16)

    def wf_bf16():
        wf.normal(seed=1, out=out_bf16)

    case("bf16/f32", best, threads, wf_bf16, wf_normal, ">= 0.9x")
    if torch is not None:
        torch.set_num_threads(threads)
        t_out = torch.from_numpy(out)
        t_bf16 = torch.empty(n, dtype=torch.bfloat16)

        def torch_trunc():
            torch.nn.init.trunc_normal_(t_out, std=1.0, a=-2.0, b=2.0)

        def torch_bf16():
            t_bf16.normal_()

        case("trunc", best, threads, wf_trunc, torch_trunc, ">= 5x torch")
        case("bf16", best, threads, wf_bf16, torch_bf16, ">= 10x torch")
    square = np.zeros((4096, 4096), np.float32)

    def wf_normal_square():
        wf.normal(std=0.01, seed=1, out=square)

    for method, tag in (("floyd", "sparse"), ("keys", "keys")):
        for sparsity in (0.1, 0.5, 0.9):
            def wf_sparse(sparsity=sparsity, method=method):
                wf.sparse(sparsity=sparsity, seed=1, out=square, method=method)

            case(f"{tag}{sparsity}", best, threads, wf_sparse, wf_normal_square,
                 ">= 0.67x (1.5x time)", square.size)

    header = f"{'case':<11}{'kernel':<8}{'threads':>8}{'weightfill':>14}{'baseline':>12}"
    print(f"\n{header}{'speed-up':>10}  target")
    for label, isa, nt, g_wf, g_np, ratio, target in rows:
        print(f"{label:<11}{isa:<8}{nt:>8}{g_wf:>10.3f} G/s{g_np:>8.3f} G/s{ratio:>9.2f}x  "
              f"{target}")
    print(f"\nnormal, {threads} threads vs 1 thread: {t1 / tn:.2f}x (target >= 1.8x)")


if __name__ == "__main__":
    main()
