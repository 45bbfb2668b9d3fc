"""The contenders: weightfill and each peer's call for one case."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .. import _engine
from .._args import BFLOAT16
from ._constants import PEERS, TRUNC_STD, _MiB
from .timing import Contender


# ----------------------------------------------------------------------------------------------
# Peers


def load_peers(requested: Sequence[str], dtype: np.dtype) -> tuple[dict[str, Any], dict[str, str]]:
    """Imports the requested peers. Returns ``({key: module or generator}, {key: reason})``
    for the ones available and the ones skipped."""
    loaded: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for key in PEERS:
        if key not in requested:
            skipped[key] = "not requested (--peers)"
            continue
        try:
            if key == "numpy-pcg64":
                loaded[key] = np.random.Generator(np.random.PCG64(1))
            elif key == "numpy-philox":
                loaded[key] = np.random.Generator(np.random.Philox(1))
            elif key == "mkl_random":
                import mkl_random  # type: ignore[import-not-found,import-untyped,unused-ignore]

                loaded[key] = mkl_random
            elif key == "torch":
                import torch

                loaded[key] = torch
            elif key == "jax":
                import jax

                jax.devices("cpu")
                if dtype == np.float64 and not getattr(jax.config, "jax_enable_x64", False):
                    skipped[key] = "float64 needs jax_enable_x64 (JAX would return float32)"
                    continue
                loaded[key] = jax
        except Exception as e:  # ImportError, or a broken install (OSError from a library)
            skipped[key] = f"{type(e).__name__}: {e}"
    return loaded, skipped


def _torch_view(torch: Any, buf: np.ndarray) -> Any:
    if buf.dtype == BFLOAT16:  # torch.from_numpy does not know ml_dtypes' bfloat16
        return torch.from_numpy(buf.view(np.uint16)).view(torch.bfloat16)
    return torch.from_numpy(buf)


def _jax_dtype(jax: Any, dtype: np.dtype) -> Any:
    import jax.numpy as jnp

    return {"float32": jnp.float32, "float64": jnp.float64, "float16": jnp.float16,
            "bfloat16": jnp.bfloat16}[str(dtype)]


# ----------------------------------------------------------------------------------------------
# The table's operations


@dataclass(frozen=True)
class Op:
    """One table row. Values are ``scale * x + shift`` with ``x`` from ``kind`` (U[0, 1),
    N(0, 1), or N(0, 1) conditioned on |x| <= 2)."""

    key: str
    title: str
    kind: str
    scale: float
    shift: float
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def values(self) -> int:
        return math.prod(self.shape)


def make_ops(keys: Sequence[str], n: int, shape2d: tuple[int, int], dtype: np.dtype) -> list[Op]:
    rows, cols = shape2d
    kaiming_std = math.sqrt(2.0) / math.sqrt(cols)  # gain sqrt(2) (leaky_relu, a=0), fan_in
    xavier_a = math.sqrt(6.0 / (rows + cols))
    name = str(dtype)
    table = {
        "uniform": Op("uniform", f"uniform U(0, 1), {name}", "uniform", 1.0, 0.0, (n,), dtype),
        "normal": Op("normal", f"normal N(0, 1), {name}", "normal", 1.0, 0.0, (n,), dtype),
        "truncated_normal": Op("truncated_normal",
                               f"truncated normal std {TRUNC_STD}, ±2σ, {name}", "trunc",
                               TRUNC_STD, 0.0, (n,), dtype),
        "kaiming_normal": Op("kaiming_normal", f"kaiming_normal {rows}x{cols}, {name}",
                             "normal", kaiming_std, 0.0, shape2d, dtype),
        "xavier_uniform": Op("xavier_uniform", f"xavier_uniform {rows}x{cols}, {name}",
                             "uniform", 2 * xavier_a, -xavier_a, shape2d, dtype),
        "bfloat16_normal": Op("bfloat16_normal", "normal N(0, 1), bfloat16", "normal", 1.0,
                              0.0, (n,), BFLOAT16),
    }
    return [table[k] for k in keys]


def _wf_fn(op: Op, buf: np.ndarray) -> tuple[str, Callable[[], object]]:
    import weightfill as wf

    if op.key == "uniform":
        return "uniform(out=)", lambda: wf.uniform(seed=1, out=buf)
    if op.key in ("normal", "bfloat16_normal"):
        return "normal(out=)", lambda: wf.normal(seed=1, out=buf)
    if op.key == "truncated_normal":
        return ("truncated_normal(out=)",
                lambda: wf.truncated_normal(std=TRUNC_STD, lower=-2.0, upper=2.0, seed=1,
                                            out=buf))
    if op.key == "kaiming_normal":
        return "kaiming_normal(out=)", lambda: wf.kaiming_normal(seed=1, out=buf)
    if op.key == "xavier_uniform":
        return "xavier_uniform(out=)", lambda: wf.xavier_uniform(seed=1, out=buf)
    raise KeyError(op.key)


def _reject_outside(gen: np.random.Generator, flat: np.ndarray, bound: float) -> None:
    """Redraws the entries of a standard normal draw that lie outside [-bound, bound]: how a
    numpy user gets a truncated normal (4.6% of the draws at ±2)."""
    bad = np.flatnonzero(np.abs(flat) > bound)
    while bad.size:
        flat[bad] = gen.standard_normal(bad.size, dtype=flat.dtype)
        bad = bad[np.abs(flat[bad]) > bound]


def _numpy_fn(gen: np.random.Generator, op: Op,
              buf: np.ndarray) -> tuple[str, Callable[[], object], str]:
    narrow = buf.dtype.itemsize == 2  # numpy draws float32 and float64 only
    x = np.empty(buf.shape, np.float32) if narrow else buf
    flat = x.reshape(-1)
    scale, shift = op.scale, op.shift
    call = "random" if op.kind == "uniform" else "standard_normal"
    call += "(out=f32 scratch)" if narrow else "(out=)"
    if op.kind == "trunc":
        call += ", redraw |x|>2"
    if shift != 0.0:
        call += ", *= 2a, -= a"
    elif scale != 1.0:
        call += ", *= std"
    if narrow:
        call += ", cast"

    def fn() -> None:
        if op.kind == "uniform":
            gen.random(dtype=flat.dtype, out=flat)
        else:
            gen.standard_normal(dtype=flat.dtype, out=flat)
            if op.kind == "trunc":
                _reject_outside(gen, flat, 2.0)
        if scale != 1.0:
            np.multiply(flat, scale, out=flat)
        if shift != 0.0:
            np.add(flat, shift, out=flat)
        if narrow:
            buf[...] = x

    return call, fn, ("float32 draw cast to " + str(buf.dtype) if narrow else "")


def _mkl_fn(mkl: Any, op: Op, buf: np.ndarray) -> tuple[str, Optional[Callable[[], object]], str]:
    if op.kind == "trunc":
        return "", None, "mkl_random has no truncated normal"
    # MKLRandomState since mkl_random 1.3.2, which deprecates RandomState (same generators).
    cls = getattr(mkl, "MKLRandomState", None) or mkl.RandomState
    rs = cls(1, brng="PHILOX4X32X10")
    shape, scale, shift = op.shape, op.scale, op.shift
    if op.kind == "uniform":
        def fn() -> None:
            buf[...] = rs.uniform(shift, shift + scale, size=shape)
        call = f"{cls.__name__}(PHILOX4X32X10).uniform, cast"
    else:
        def fn() -> None:
            buf[...] = rs.normal(0.0, scale, size=shape)
        call = f"{cls.__name__}(PHILOX4X32X10).normal, cast"
    return call, fn, "float64 result, cast"


def _torch_fn(torch: Any, op: Op, buf: np.ndarray) -> tuple[str, Callable[[], object]]:
    t = _torch_view(torch, buf)
    init = torch.nn.init
    if op.key == "uniform":
        return "Tensor.uniform_", lambda: t.uniform_(0.0, 1.0)
    if op.key in ("normal", "bfloat16_normal"):
        return "Tensor.normal_", lambda: t.normal_()
    if op.key == "truncated_normal":
        s = TRUNC_STD
        return ("nn.init.trunc_normal_(std=s, a=-2s, b=2s)",
                lambda: init.trunc_normal_(t, std=s, a=-2 * s, b=2 * s))
    if op.key == "kaiming_normal":
        return "nn.init.kaiming_normal_", lambda: init.kaiming_normal_(t)
    if op.key == "xavier_uniform":
        return "nn.init.xavier_uniform_", lambda: init.xavier_uniform_(t)
    raise KeyError(op.key)


def _jax_fn(jax: Any, op: Op) -> tuple[str, Callable[[], object]]:
    dt = _jax_dtype(jax, op.dtype)
    shape = op.shape
    inits = jax.nn.initializers
    if op.key == "uniform":
        call, f = "random.uniform", lambda k: jax.random.uniform(k, shape, dt)
    elif op.key in ("normal", "bfloat16_normal"):
        call, f = "random.normal", lambda k: jax.random.normal(k, shape, dt)
    elif op.key == "truncated_normal":
        init = inits.truncated_normal(stddev=TRUNC_STD, lower=-2.0, upper=2.0)
        call, f = "initializers.truncated_normal", lambda k: init(k, shape, dt)
    elif op.key == "kaiming_normal":
        # torch's kaiming_normal_ is untruncated; JAX's he_normal is truncated.
        init = inits.variance_scaling(2.0, "fan_in", "normal", in_axis=1, out_axis=0)
        call = "variance_scaling(2, fan_in, normal)"
        f = lambda k: init(k, shape, dt)  # noqa: E731
    elif op.key == "xavier_uniform":
        init = inits.glorot_uniform(in_axis=1, out_axis=0)
        call, f = "initializers.glorot_uniform", lambda k: init(k, shape, dt)
    else:
        raise KeyError(op.key)
    jitted = jax.jit(f)
    key = jax.device_put(jax.random.PRNGKey(1), jax.devices("cpu")[0])
    return "jit(" + call + ")", lambda: jitted(key).block_until_ready()


def _threads_text(n: int) -> str:
    return f"{n} thread" + ("s" if n != 1 else "")


def _memfill_fn(buf: np.ndarray) -> Callable[[], object]:
    import weightfill as wf

    return lambda: wf.constant(None, 0.5, out=buf)


def _buffer(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    buf = np.empty(shape, dtype)
    buf.view(f"u{dtype.itemsize}").fill(0)  # fault the pages in, for every contender
    return buf


def _contenders(op: Op, buf: np.ndarray,
                peers: dict[str, Any]) -> tuple[list[Contender], dict[str, str]]:
    out: list[Contender] = []
    na: dict[str, str] = {}
    call, fn = _wf_fn(op, buf)
    out.append(Contender("weightfill", call, fn))
    for key in PEERS:
        if key not in peers:
            continue
        mod = peers[key]
        if key.startswith("numpy"):
            call, fn, note = _numpy_fn(mod, op, buf)
            out.append(Contender(key, "Generator." + call, fn, note))
        elif key == "mkl_random":
            call, mfn, note = _mkl_fn(mod, op, buf)
            if mfn is None:
                na[key] = note
            else:
                out.append(Contender(key, call, mfn, note))
        elif key == "torch":
            call, fn = _torch_fn(mod, op, buf)
            out.append(Contender(key, call, fn, "in place, torch.from_numpy of the buffer"))
        elif key == "jax":
            call, fn = _jax_fn(mod, op)
            out.append(Contender(key, call, fn, "allocates its result"))
    # The ceiling is the fastest of its calls (on a shared host the memory's rate moves between
    # calls), so weightfill's fraction of it (a median) is a lower bound; like every short call
    # it is timed with its threads awake (TABLE_HOT_BELOW_S). The fill runs in 1 MiB chunks, at
    # most one thread per chunk.
    threads = min(_engine.get_num_threads(), max(1, -(-buf.nbytes // _MiB)))
    out.append(Contender("memfill", f"constant(out=), {_threads_text(threads)}",
                         _memfill_fn(buf), fastest=True))
    return out, na


def _measure(c: Contender, values: int, itemsize: int) -> dict[str, Any]:
    t = c.seconds
    return {
        "call": c.call,
        "seconds": t,
        "statistic": "min" if c.fastest else "median",
        "untimed_before": c.hot,
        "times": c.times,
        "warmup_seconds": c.warmup,
        "repeats": len(c.times),
        "values_per_s": values / t,
        "gbps": values * itemsize / t / 1e9,
        "note": c.note,
    }
