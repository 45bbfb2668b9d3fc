"""Per-call overhead of every public fill on small tensors, against NumPy, side by side.

    python benchmarks/bench_overhead.py [--rounds 15] [--sizes 16 256 4096] [--dtype float32]
                                        [--torch] [--init]

For every public fill (distributions and schemes) at 16, 256 and 4096 values it prints the
median time per call of weightfill filling a preallocated ``out=`` and of NumPy's equivalent
on the same buffer: ``Generator(PCG64).random(out=)`` for uniform fills,
``.standard_normal(out=)`` for normal, truncated-normal and sparse fills, ``ndarray.fill``
for constant fills, ``fill(0)`` and ``np.fill_diagonal`` for ``eye``/``identity`` (and zeros
plus the centre ones for ``dirac``), ``np.linalg.qr`` of a standard normal matrix for the
orthogonal schemes, ``PCG64.random_raw(n)`` for ``random_raw`` (both make a new array). The
two are timed in alternating batches of calls (each batch about a millisecond), so machine
load drifts over both; the ratio is weightfill's median over NumPy's.
Targets (issue 12): ratio <= 3 at 16 values, <= 1 from 256 values on.

Distributions are called as ``normal(None, seed=0, out=buf)`` (the call the issue measured),
schemes as ``he_normal(shape, seed=0, stream="layer.weight", out=buf)``, as an adapter does.
``--torch`` adds rows for a torch tensor as ``out=`` against torch's in-place ``normal_`` /
``uniform_`` / ``torch.nn.init.kaiming_uniform_`` (the "peer" column is then torch's time).
``--init`` compares the drop-in ``weightfill.torch.init`` with ``torch.nn.init`` function for
function on the same tensor (each weightfill call names a fresh stream, ``torch.nn.init#k``, as
under ``patch()``; the schemes fill a Parameter, as a module's ``reset_parameters`` does).
``--new`` times the calls that make a new array instead (``normal(shape, seed=0)``,
``he_normal(shape, seed=0, stream=...)``, ``zeros(shape)``, ``eye(shape)``) against NumPy's
calls that make one (``standard_normal(shape, dtype=)``, ``np.zeros``, ``np.eye``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Callable

import numpy as np
import weightfill as wf

STREAM = "layer.weight"


def _shape2d(n: int) -> tuple[int, int]:
    r = int(round(n ** 0.5))
    return (r, n // r)


def fills(dtype: np.dtype) -> list[tuple[str, str, Callable[[np.ndarray], object]]]:
    """(name, numpy contender, call on a buffer) for every public fill."""
    kw = dict(seed=0, stream=STREAM)
    rows: list[tuple[str, str, Callable[[np.ndarray], object]]] = [
        ("uniform", "random", lambda b: wf.uniform(None, seed=0, out=b)),
        ("normal", "standard_normal", lambda b: wf.normal(None, seed=0, out=b)),
        ("truncated_normal", "standard_normal",
         lambda b: wf.truncated_normal(None, seed=0, out=b)),
        ("truncated_normal(3, 5)", "standard_normal",
         lambda b: wf.truncated_normal(None, 0.0, 1.0, 3.0, 5.0, seed=0, out=b)),
        ("sparse(0.5)", "standard_normal", lambda b: wf.sparse(b.shape, 0.5, out=b, **kw)),
    ]
    for name in ("xavier_uniform", "kaiming_uniform", "he_uniform", "lecun_uniform",
                 "glorot_uniform"):
        rows.append((name, "random", _scheme(getattr(wf, name), kw)))
    for name in ("xavier_normal", "kaiming_normal", "he_normal", "lecun_normal",
                 "glorot_normal", "variance_scaling"):
        rows.append((name, "standard_normal", _scheme(getattr(wf, name), kw)))
    rows.append(("variance_scaling(uniform)", "random",
                 lambda b: wf.variance_scaling(b.shape, 2.0, "fan_avg", "uniform", out=b, **kw)))
    rows.append(("constant(0.5)", "fill", lambda b: wf.constant(b.shape, 0.5, out=b)))
    rows.append(("zeros", "fill", lambda b: wf.zeros(b.shape, out=b)))
    rows.append(("ones", "fill", lambda b: wf.ones(b.shape, out=b)))
    rows.append(("eye", "fill_diagonal", lambda b: wf.eye(b.shape, out=b)))
    rows.append(("identity(2.0)", "fill_diagonal", lambda b: wf.identity(b.shape, 2.0, out=b)))
    rows.append(("dirac", "dirac", lambda b: wf.dirac(b.shape + (1, 1), out=_conv(b))))
    rows.append(("orthogonal", "qr", lambda b: wf.orthogonal(b.shape, out=b, **kw)))
    rows.append(("delta_orthogonal", "qr",
                 lambda b: wf.delta_orthogonal((1, 1) + b.shape, out=b.reshape((1, 1) + b.shape),
                                               **kw)))
    rows.append(("random_raw", "random_raw", lambda b: wf.random_raw(b.size, seed=0)))
    return rows


def _conv(b: np.ndarray) -> np.ndarray:
    """``b`` as a 1 x 1 convolution weight (out, in, 1, 1)."""
    return b.reshape(b.shape + (1, 1))


def new_fills(dtype: np.dtype) -> list[tuple[str, str, Callable[[tuple[int, int]], object]]]:
    """(name, numpy contender, call on a shape) for the public fills into a new array."""
    kw = dict(seed=0, stream=STREAM, dtype=dtype)
    rows: list[tuple[str, str, Callable[[tuple[int, int]], object]]] = [
        ("uniform", "random", lambda s: wf.uniform(s, seed=0, dtype=dtype)),
        ("normal", "standard_normal", lambda s: wf.normal(s, seed=0, dtype=dtype)),
        ("truncated_normal", "standard_normal",
         lambda s: wf.truncated_normal(s, seed=0, dtype=dtype)),
        ("sparse(0.5)", "standard_normal", lambda s: wf.sparse(s, 0.5, **kw)),
    ]
    for name in ("kaiming_uniform", "glorot_uniform"):
        rows.append((name, "random", lambda s, f=getattr(wf, name): f(s, **kw)))
    for name in ("kaiming_normal", "he_normal"):
        rows.append((name, "standard_normal", lambda s, f=getattr(wf, name): f(s, **kw)))
    rows += [("zeros", "zeros", lambda s: wf.zeros(s, dtype=dtype)),
             ("ones", "ones", lambda s: wf.ones(s, dtype=dtype)),
             ("constant(0.5)", "full", lambda s: wf.constant(s, 0.5, dtype=dtype)),
             ("eye", "eye", lambda s: wf.eye(s, dtype=dtype))]
    return rows


def new_contender(kind: str, gen: np.random.Generator,
                  dtype: np.dtype) -> Callable[[tuple[int, int]], object]:
    if kind == "random":
        return lambda s: gen.random(s, dtype=dtype)
    if kind == "standard_normal":
        return lambda s: gen.standard_normal(s, dtype=dtype)
    if kind == "zeros":
        return lambda s: np.zeros(s, dtype)
    if kind == "ones":
        return lambda s: np.ones(s, dtype)
    if kind == "full":
        return lambda s: np.full(s, 0.5, dtype)
    return lambda s: np.eye(*s, dtype=dtype)


def _dirac(b: np.ndarray) -> None:
    """NumPy's Dirac delta weight: zeros, then ones at [i, i, centre...]."""
    w = _conv(b)
    w.fill(0)
    i = np.arange(min(w.shape[:2]))
    w[i, i, 0, 0] = 1


def _scheme(fn: Callable[..., object], kw: dict) -> Callable[[np.ndarray], object]:
    return lambda b: fn(b.shape, out=b, **kw)


def contender(kind: str, gen: np.random.Generator) -> Callable[[np.ndarray], object]:
    if kind == "random":
        return lambda b: gen.random(out=b, dtype=b.dtype)
    if kind == "standard_normal":
        return lambda b: gen.standard_normal(out=b, dtype=b.dtype)
    if kind == "fill_diagonal":
        return lambda b: (b.fill(0), np.fill_diagonal(b, 1.0))
    if kind == "dirac":
        return _dirac
    if kind == "qr":  # an orthogonal matrix as NumPy users make one
        return lambda b: np.linalg.qr(gen.standard_normal(b.shape, dtype=b.dtype))
    if kind == "random_raw":
        bits = np.random.PCG64(0)
        return lambda b: bits.random_raw(b.size)
    return lambda b: b.fill(0.5)


def per_call(fn: Callable[[], object], k: int) -> float:
    t0 = time.perf_counter()
    for _ in range(k):
        fn()
    return (time.perf_counter() - t0) / k


def calls_per_batch(fn: Callable[[], object], budget: float = 1e-3) -> int:
    fn()  # warm-up: caches, first-call imports, page faults
    k = 1
    while True:
        t = per_call(fn, k) * k
        if t >= budget / 4 or k >= 1 << 16:
            return max(1, int(k * budget / max(t, 1e-9)))
        k *= 4


def side_by_side(fa: Callable[[], object], fb: Callable[[], object],
                 rounds: int) -> tuple[float, float]:
    """Medians of per-call times, batches of ``fa`` and ``fb`` alternating (and which goes
    first alternating too)."""
    ka, kb = calls_per_batch(fa), calls_per_batch(fb)
    ta, tb = [], []
    for r in range(rounds):
        if r % 2:
            tb.append(per_call(fb, kb))
            ta.append(per_call(fa, ka))
        else:
            ta.append(per_call(fa, ka))
            tb.append(per_call(fb, kb))
    return statistics.median(ta), statistics.median(tb)


def target(n: int) -> float:
    return 3.0 if n <= 16 else 1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15, help="alternating batches (median)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 256, 4096])
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--only", nargs="*", default=None, help="fill names to run")
    ap.add_argument("--torch", action="store_true", help="add torch-tensor out= rows")
    ap.add_argument("--new", action="store_true", help="time calls that make a new array")
    ap.add_argument("--init", action="store_true",
                    help="weightfill.torch.init against torch.nn.init instead")
    args = ap.parse_args(argv)
    dt = np.dtype(args.dtype)
    gen = np.random.Generator(np.random.PCG64(0))
    print(f"weightfill {wf.__version__}, numpy {np.__version__}, python "
          f"{sys.version.split()[0]}, {wf.get_num_threads()} threads, {dt}; median of "
          f"{args.rounds} alternating batches")
    print(f"{'fill':<26}{'n':>6}{'weightfill us':>15}{'peer us':>10}  {'contender':<16}"
          f"{'ratio':>7}{'target':>8}")
    misses = 0
    rows = fills(dt) if not args.new else new_fills(dt)  # type: ignore[assignment]
    if args.init:
        rows = _init_rows()
    elif args.torch:
        rows += _torch_rows()
    for name, kind, call in rows:
        if args.only and name not in args.only:
            continue
        for n in args.sizes:
            if kind.startswith("torch"):
                a_fn, b_fn = call(n, dt)  # type: ignore[call-arg]
            elif args.new:
                shape = _shape2d(n)
                a_fn, b_fn = (lambda c=call, s=shape: c(s)), (
                    lambda c=new_contender(kind, gen, dt), s=shape: c(s))
            else:
                buf = np.zeros(_shape2d(n), dt)
                a_fn, b_fn = (lambda c=call, b=buf: c(b)), (lambda c=contender(kind, gen),
                                                             b=buf: c(b))
            ta, tb = side_by_side(a_fn, b_fn, args.rounds)
            ratio = ta / tb
            ok = ratio <= target(n)
            misses += not ok
            print(f"{name:<26}{n:>6}{ta * 1e6:>15.2f}{tb * 1e6:>10.2f}  {kind:<16}"
                  f"{ratio:>7.2f}{'<= ' + str(target(n)):>8}{'' if ok else '  MISS'}")
    print(f"{misses} case(s) miss their target")
    return 0


def _torch_rows() -> list[tuple[str, str, Callable[..., object]]]:
    import torch

    def normal(n: int, dt: np.dtype) -> tuple[Callable[[], object], Callable[[], object]]:
        t = torch.zeros(_shape2d(n), dtype=getattr(torch, dt.name))
        return (lambda: wf.normal(None, seed=0, out=t)), (lambda: t.normal_())

    def uniform(n: int, dt: np.dtype) -> tuple[Callable[[], object], Callable[[], object]]:
        t = torch.zeros(_shape2d(n), dtype=getattr(torch, dt.name))
        return (lambda: wf.uniform(None, seed=0, out=t)), (lambda: t.uniform_())

    def kaiming(n: int, dt: np.dtype) -> tuple[Callable[[], object], Callable[[], object]]:
        t = torch.nn.Parameter(torch.zeros(_shape2d(n), dtype=getattr(torch, dt.name)))
        return ((lambda: wf.kaiming_uniform(t.shape, seed=0, stream=STREAM, out=t)),
                (lambda: torch.nn.init.kaiming_uniform_(t)))

    return [("normal(out=tensor)", "torch normal_", normal),
            ("uniform(out=tensor)", "torch uniform_", uniform),
            ("kaiming_uniform(Parameter)", "torch kaiming_", kaiming)]


def _init_rows() -> list[tuple[str, str, Callable[..., object]]]:
    import torch
    import weightfill.torch as wft

    # name, extra positional arguments, whether it fills a Parameter, the tensor's shape
    cases: list[tuple[str, tuple, bool, Callable[[int], tuple[int, ...]]]] = [
        ("uniform_", (), False, _shape2d), ("normal_", (), False, _shape2d),
        ("trunc_normal_", (), False, _shape2d), ("constant_", (0.5,), False, _shape2d),
        ("ones_", (), False, _shape2d), ("zeros_", (), False, _shape2d),
        ("eye_", (), False, _shape2d), ("dirac_", (), False, lambda n: (4, n // 16, 4)),
        ("xavier_uniform_", (), True, _shape2d), ("xavier_normal_", (), True, _shape2d),
        ("kaiming_uniform_", (), True, _shape2d), ("kaiming_normal_", (), True, _shape2d),
        ("orthogonal_", (), True, _shape2d), ("sparse_", (0.5,), True, _shape2d)]

    def row(name: str, extra: tuple, param: bool, shape: Callable[[int], tuple[int, ...]]):
        def make(n: int, dt: np.dtype) -> tuple[Callable[[], object], Callable[[], object]]:
            t = torch.zeros(shape(n), dtype=getattr(torch, dt.name))
            if param:
                t = torch.nn.Parameter(t)
            ours, theirs = getattr(wft.init, name), getattr(torch.nn.init, name)
            return (lambda: ours(t, *extra)), (lambda: theirs(t, *extra))
        return (f"init.{name}", "torch.nn.init", make)

    wft.manual_seed(0)
    return [row(*c) for c in cases]


if __name__ == "__main__":
    raise SystemExit(main())
