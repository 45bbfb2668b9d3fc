"""weightfill.jax.initializers.he_normal() against jax.nn.initializers.he_normal(), jitted, CPU.

Both initializers are jitted with the shape static and called with the same key; each call's
result is waited for (``block_until_ready``). The two are timed in alternation in one process
(each round times one call of each, after one untimed warm-up call of each that compiles), and
the medians and their ratio are printed. Target: ratio >= 10.

Each timed call starts after a pause (``--gap``, 50 ms): both runtimes' worker threads spin for
a while after a call ends (XLA's Eigen pool, weightfill's OpenMP pool), and on a 2-core machine
a call that starts at once competes with the other's spinning threads. Measured 2026-12-07:
without the pause weightfill's median rose from 20-28 ms to 39-46 ms, JAX's barely moved.

    python benchmarks/bench_jax.py [--rounds 15] [--shape 4096 4096] [--gap 0.05]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

import weightfill
import weightfill.jax as wfj


def _timed(fn, key, gap):
    time.sleep(gap)
    t0 = time.perf_counter()
    fn(key).block_until_ready()
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--shape", type=int, nargs="+", default=[4096, 4096])
    ap.add_argument("--gap", type=float, default=0.05,
                    help="seconds of pause before each timed call (see the docstring)")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    if args.gap < 0:
        ap.error("--gap must be >= 0")
    shape = tuple(args.shape)
    key = jax.random.key(0)
    ours = jax.jit(lambda k: wfj.initializers.he_normal()(k, shape, jnp.float32))
    theirs = jax.jit(lambda k: jax.nn.initializers.he_normal()(k, shape, jnp.float32))
    for fn in (ours, theirs):  # compile and warm up
        fn(key).block_until_ready()
    t_ours, t_theirs = [], []
    for i in range(args.rounds):
        k = jax.random.fold_in(key, i)
        t_ours.append(_timed(ours, k, args.gap))
        t_theirs.append(_timed(theirs, k, args.gap))
    m_ours, m_theirs = statistics.median(t_ours), statistics.median(t_theirs)
    ratio = m_theirs / m_ours
    print(f"he_normal {shape} float32, jitted, CPU, {args.rounds} interleaved rounds, "
          f"{weightfill.get_num_threads()} weightfill threads, jax {jax.__version__}")
    print(f"  weightfill.jax    median {m_ours * 1e3:8.2f} ms")
    print(f"  jax.nn            median {m_theirs * 1e3:8.2f} ms")
    print(f"  ratio (jax / weightfill) {ratio:6.1f}x   (target >= 10x: "
          f"{'met' if ratio >= 10 else 'NOT met'})")
    return {"weightfill_s": m_ours, "jax_s": m_theirs, "ratio": ratio}


if __name__ == "__main__":
    main()
