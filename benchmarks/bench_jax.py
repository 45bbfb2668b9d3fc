"""weightfill.jax.initializers.he_normal() against jax.nn.initializers.he_normal(), jitted, CPU.

Both initializers are jitted with the shape static and called with the same key; each call's
result is waited for (``block_until_ready``). The two are timed in alternation in one process
(each round times one call of each, after one untimed warm-up call of each that compiles), and
the medians and their ratio are printed. Target: ratio >= 10.

Each timed call starts after a pause (``--gap``, 50 ms): both runtimes' worker threads spin for
a while after a call ends (XLA's Eigen pool, weightfill's OpenMP pool), and on a 2-core machine
a call that starts at once competes with the other's spinning threads. Measured 2026-12-07:
without the pause weightfill's median rose from 20-28 ms to 39-46 ms, JAX's barely moved.

``--parts`` also times, in the same rounds, what a call is made of: the engine's truncated
normal fill (he_normal's) and its uniform fill into NumPy memory already faulted in, the
FFI path with the uniform fill (new XLA output buffer, cheap sampler) and XLA's own
``jnp.zeros`` of the shape (a new buffer, no sampler). From these it prints the fastest the
FFI he_normal could be with this sampler in a new buffer, and the ratio that allows.

    python benchmarks/bench_jax.py [--rounds 15] [--shape 4096 4096] [--gap 0.05] [--parts]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
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
    ap.add_argument("--parts", action="store_true",
                    help="also time the parts of a call (see the docstring)")
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
    parts = _parts(shape) if args.parts else {}
    t_ours, t_theirs = [], []
    t_parts: dict[str, list[float]] = {name: [] for name in parts}
    for i in range(args.rounds):
        k = jax.random.fold_in(key, i)
        t_ours.append(_timed(ours, k, args.gap))
        t_theirs.append(_timed(theirs, k, args.gap))
        for name, fn in parts.items():
            t_parts[name].append(_timed(fn, k, args.gap))
    m_ours, m_theirs = statistics.median(t_ours), statistics.median(t_theirs)
    ratio = m_theirs / m_ours
    print(f"he_normal {shape} float32, jitted, CPU, {args.rounds} interleaved rounds, "
          f"{weightfill.get_num_threads()} weightfill threads, jax {jax.__version__}")
    print(f"  weightfill.jax    median {m_ours * 1e3:8.2f} ms")
    print(f"  jax.nn            median {m_theirs * 1e3:8.2f} ms")
    print(f"  ratio (jax / weightfill) {ratio:6.1f}x   (target >= 10x: "
          f"{'met' if ratio >= 10 else 'NOT met'})")
    result = {"weightfill_s": m_ours, "jax_s": m_theirs, "ratio": ratio}
    if parts:
        med = {name: statistics.median(t) for name, t in t_parts.items()}
        for name, t in med.items():
            print(f"  {name:<44} median {t * 1e3:8.2f} ms")
        # The new buffer's cost on the FFI path: the uniform call less its sampler's share.
        buffer = med["FFI uniform (new XLA buffer)"] - med["engine uniform, faulted-in memory"]
        best = med["engine truncated normal, faulted-in memory"] + buffer
        print(f"  new-buffer cost on the FFI path {buffer * 1e3:.2f} ms; with this sampler the "
              f"FFI he_normal takes at least {best * 1e3:.2f} ms: ratio <= "
              f"{m_theirs / best:.1f}x")
        result.update({name: t for name, t in med.items()}, bound_ratio=m_theirs / best)
    return result


class _Ready:
    """A NumPy result with block_until_ready, so _timed times engine calls as it does JAX's."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, key):
        self.fn()
        return self

    def block_until_ready(self):
        return self


def _parts(shape):
    """The parts of an initializer call, each a callable of a key with block_until_ready."""
    # he_normal's std, for fan_in = shape[-2]
    std = (2.0 / shape[-2]) ** 0.5 / weightfill.schemes.TRUNCATED_NORMAL_STD
    buf = np.zeros(shape, np.float32)  # faulted in, and kept so
    parts = {
        "engine truncated normal, faulted-in memory": _Ready(
            lambda: weightfill.truncated_normal(None, 0.0, std, -2.0, 2.0, seed=1, out=buf)),
        "engine uniform, faulted-in memory": _Ready(
            lambda: weightfill.uniform(None, seed=1, out=buf)),
        "FFI uniform (new XLA buffer)": jax.jit(
            lambda k: wfj.initializers.uniform()(k, shape, jnp.float32)),
        "XLA jnp.zeros (new XLA buffer)": jax.jit(lambda k: jnp.zeros(shape, jnp.float32)),
    }
    for fn in parts.values():
        fn(jax.random.key(0)).block_until_ready()
    return parts


if __name__ == "__main__":
    main()
