"""``weightfill bench``: weightfill's speed beside numpy, torch, JAX and mkl_random, in one process.

Three parts, chosen by flags (the table when neither ``--targets`` nor ``--memory`` is given):

- **the table**: uniform, normal, truncated normal (±2σ), ``kaiming_normal`` and
  ``xavier_uniform`` on a 2-D shape, and bfloat16 normal. For each, the median time,
  throughput (values/s and GB/s) of weightfill and of every peer, weightfill's speed-up over
  each peer, and weightfill's fraction of a plain memory fill of the same buffer on the same
  threads (``weightfill.constant``'s string stores, the fastest of its calls: what writing the
  bytes alone costs, 1.3-2.3x the rate of a one-thread ``ndarray.fill`` on the development
  machine). weightfill's time is a median, so the fraction is a lower bound.
- ``--targets``: the speed targets at their own shapes, each met or missed.
- ``--memory``: the peak resident memory of each engine distribution's new-array call, each in
  a fresh subprocess, against the output's size.

Method. Every contender fills the same preallocated buffer, faulted in beforehand, wherever its
API allows: weightfill through ``out=``, numpy through ``out=`` (its 16-bit results via a
float32 scratch array and a cast), torch in place on ``torch.from_numpy`` of the buffer. JAX
has no in-place form: its calls are jitted and allocate their result (``block_until_ready``).
mkl_random returns float64 arrays, which are cast into the buffer. One warm-up call each, then
rounds in which every contender runs once, in turn (interleaved, so drift and other load on
the machine hit all of them alike), each call after a 10 ms pause that lets the previous
contender's spinning thread pool go to sleep; each contender's median. In the table, a
contender whose call takes under 50 ms is timed right after one untimed call of its own (its
threads awake: a thread woken after an idle pause can take milliseconds on a virtual
machine, which would dominate such calls); the same rule for all. A contender whose
warm-up shows it would need more than a few seconds in all gets fewer rounds (never fewer than
3 in the table), and the output says so. The CPU time other processes used meanwhile (from
/proc/stat) is reported with every result, and rows measured on a busy machine are flagged.

torch, JAX, mkl_random and matplotlib are imported here, on demand, never by ``import
weightfill``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence, TextIO

import numpy as np

from . import _engine
from ._args import BFLOAT16

__all__ = ["add_arguments", "run", "run_table", "run_targets", "run_memory", "PEERS", "CASES"]

SCHEMA = "weightfill-bench/1"

#: Peers in table order; "numpy" in ``--peers`` means both numpy generators.
PEERS = ("numpy-pcg64", "numpy-philox", "mkl_random", "torch", "jax")
PEER_LABELS = {
    "numpy-pcg64": "numpy PCG64",
    "numpy-philox": "numpy Philox",
    "mkl_random": "mkl_random",
    "torch": "torch",
    "jax": "JAX",
}

#: Table rows, in order.
CASES = ("uniform", "normal", "truncated_normal", "kaiming_normal", "xavier_uniform",
         "bfloat16_normal")

SIZE_PRESETS = {"tiny": 1 << 16, "small": 1 << 20, "medium": 1 << 24, "large": 1 << 26}
DEFAULT_SIZE = SIZE_PRESETS["medium"]  # 64 MiB of float32, twice this machine's L3
QUICK_SIZE = SIZE_PRESETS["small"]
DEFAULT_REPEATS = 5
QUICK_REPEATS = 3
DTYPES = ("float32", "float64", "float16", "bfloat16")

TRUNC_STD = 0.02  # GPT-style std; the bounds are ±2 std
TABLE_BUDGET_S = 4.0  # seconds of timed calls per contender and case before rounds are cut
# Pause before each timed call: thread pools (weightfill's and torch's OpenMP, JAX's, BLAS's)
# spin for a while after a call, and would otherwise slow the next contender down.
TABLE_SETTLE_S = 0.01
# Table contenders whose call takes less than this are timed right after one untimed call:
# after the pause a parallel call can wait milliseconds for a sleeping thread on a virtual
# machine (GNU OpenMP's threads stop spinning after about 10-20 ms), which would dominate
# calls this short and measure the hypervisor rather than the fill. Applied to every
# contender alike; slower calls are timed cold, the wake-up being a few % of them.
TABLE_HOT_BELOW_S = 0.05
BUSY_CORES = 0.1  # other processes' average use above which a row is flagged as noisy
TARGETS_BUDGET_S = 12.0

_MiB = 1 << 20


# ----------------------------------------------------------------------------------------------
# Timing


@dataclass
class Contender:
    """One thing to time: ``who`` is "weightfill", "memfill" or a peer key."""

    who: str
    call: str
    fn: Callable[[], object]
    note: str = ""
    times: list[float] = field(default_factory=list)
    warmup: float = 0.0
    hot: int = 0  # untimed calls right before each timed one (threads awake, caches warm)
    fastest: bool = False  # report the fastest call (a ceiling), not the median

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def seconds(self) -> float:
        return min(self.times) if self.fastest else self.median


def _rounds_for(warmup: float, repeats: int, budget: Optional[float], floor: int) -> int:
    if budget is None or warmup * repeats <= budget:
        return repeats
    return max(min(floor, repeats), min(repeats, int(budget / max(warmup, 1e-9))))


def time_interleaved(contenders: Sequence[Contender], repeats: int, *,
                     budget: Optional[float] = None, floor: int = 3, settle: float = 0.0,
                     hot_below: float = 0.0, tick: Callable[[], None] = lambda: None) -> None:
    """Fills each contender's ``times``: one warm-up call each (page faults, thread pools, JIT),
    then rounds in which each contender runs once, in the given order.

    A contender whose warm-up times ``repeats`` exceeds ``budget`` seconds runs
    ``max(floor, budget // warm-up)`` rounds instead (never more than ``repeats``). ``settle``
    seconds of sleep precede each call, for contenders whose BLAS threads spin after a call;
    a contender's ``hot`` untimed calls come after the sleep, right before its timed call, and
    a contender whose warm-up took less than ``hot_below`` seconds gets at least one.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for c in contenders:
            time.sleep(settle)
            t0 = time.perf_counter()
            c.fn()
            c.warmup = time.perf_counter() - t0
            c.times = []
            tick()
        for c in contenders:
            if c.warmup < hot_below:
                c.hot = max(c.hot, 1)
        rounds = [_rounds_for(c.warmup, repeats, budget, floor) for c in contenders]
        for r in range(max(rounds, default=0)):
            for c, k in zip(contenders, rounds):
                if r < k:
                    time.sleep(settle)
                    for _ in range(c.hot):
                        c.fn()
                    t0 = time.perf_counter()
                    c.fn()
                    c.times.append(time.perf_counter() - t0)
            tick()
    finally:
        if was_enabled:
            gc.enable()


# ----------------------------------------------------------------------------------------------
# The machine


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _loadavg() -> Optional[list[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


class CpuMonitor:
    """How much CPU other processes (and the hypervisor: steal) took while we measured, from
    /proc/stat less this process's own CPU time. On a shared machine this says how far to
    trust a number; on other systems it reports nothing."""

    def __init__(self) -> None:
        self.start = self._snapshot()

    @staticmethod
    def _snapshot() -> Optional[tuple[float, float, float, float]]:
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        hz = os.sysconf("SC_CLK_TCK")
        # user nice system idle iowait irq softirq steal ...
        busy = sum(fields[i] for i in (0, 1, 2, 5, 6) if i < len(fields)) / hz
        steal = (fields[7] if len(fields) > 7 else 0) / hz
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        return time.perf_counter(), busy, steal, own

    def other_cores(self) -> Optional[dict[str, float]]:
        """Average cores used by other processes, and stolen, since construction."""
        end = self._snapshot()
        if self.start is None or end is None:
            return None
        wall = end[0] - self.start[0]
        if wall <= 0:
            return None
        other = (end[1] - self.start[1] - (end[3] - self.start[3])) / wall
        return {"other_processes": round(max(other, 0.0), 3),
                "steal": round((end[2] - self.start[2]) / wall, 3)}


def machine_info(threads: int, peers: dict[str, Any]) -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    from . import __version__

    versions["weightfill"] = __version__
    for key, mod in peers.items():
        if key in ("torch", "jax", "mkl_random"):
            versions[key] = str(getattr(mod, "__version__", "?"))
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "isa": _engine.isa(),
        "available_isas": list(_engine.available_isas()),
        "threads": threads,
        "thread_backend": _engine.thread_backend(),
        "versions": versions,
    }


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


# ----------------------------------------------------------------------------------------------
# Progress


class Progress:
    """Progress on stderr: one line redrawn in place on a terminal, a line per step otherwise."""

    def __init__(self, enabled: bool, stream: Optional[TextIO] = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self.label = ""
        self.done = 0
        self.total = 0

    def start(self, label: str, total: int) -> None:
        self.label, self.done, self.total = label, 0, total
        if self.enabled and not self.tty:
            print(f"  {label} ...", file=self.stream, flush=True)
        self._draw()

    def tick(self) -> None:
        self.done += 1
        self._draw()

    def _draw(self) -> None:
        if not self.tty:
            return
        width = 20
        filled = width * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (width - filled)
        elapsed = time.perf_counter() - self.t0
        self.stream.write(f"\r\033[K  {self.label} [{bar}] {elapsed:5.1f} s")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


# ----------------------------------------------------------------------------------------------
# Settings


@dataclass
class Config:
    size: int = DEFAULT_SIZE
    shape: Optional[tuple[int, int]] = None
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))
    threads: int = 1
    repeats: int = DEFAULT_REPEATS
    peers: tuple[str, ...] = PEERS
    cases: tuple[str, ...] = CASES
    quick: bool = False

    @property
    def shape2d(self) -> tuple[int, int]:
        return self.shape if self.shape is not None else default_shape2d(self.size)


def default_shape2d(n: int) -> tuple[int, int]:
    """About ``n`` values as (rows, cols), rows a power of two >= cols: 2**24 -> (4096, 4096),
    2**26 -> (8192, 8192), 2**25 -> (8192, 4096)."""
    k = max(n.bit_length() - 1, 0)
    rows = 1 << ((k + 1) // 2)
    return rows, max(n // rows, 1)


def parse_size(text: str) -> int:
    """A preset (tiny, small, medium, large), an integer (1_000_000, 16777216), ``2**N``, or a
    count with a binary suffix (64K, 16M, 1G)."""
    s = text.strip().lower().replace("_", "").replace(",", "")
    if s in SIZE_PRESETS:
        return SIZE_PRESETS[s]
    m = re.fullmatch(r"2\*\*(\d{1,2})", s)
    if m:
        n = 1 << int(m.group(1))
    else:
        m = re.fullmatch(r"(\d+)([kmg]?)", s)
        if not m:
            raise ValueError(f"{text!r} is not a size: use a number (16777216, 2**24, 16M) or "
                             f"one of {', '.join(SIZE_PRESETS)}")
        n = int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2)]
    if not 1 <= n <= 1 << 36:
        raise ValueError(f"size {n} is out of range [1, 2**36]")
    return n


def parse_shape(text: str) -> tuple[int, int]:
    parts = re.split(r"[x,×]", text.strip().lower().replace(" ", ""))
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not a 2-D shape: use ROWSxCOLS, e.g. 16384x4096")
    rows, cols = int(parts[0]), int(parts[1])
    if rows < 1 or cols < 1:
        raise ValueError(f"shape {rows}x{cols} must have positive dimensions")
    return rows, cols


def parse_peers(text: str) -> tuple[str, ...]:
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    if names == ["none"]:
        return ()
    chosen: set[str] = set()
    for p in names:
        if p == "all":
            chosen.update(PEERS)
        elif p == "numpy":
            chosen.update(("numpy-pcg64", "numpy-philox"))
        elif p in PEERS:
            chosen.add(p)
        else:
            raise ValueError(f"unknown peer {p!r}: choose from all, none, numpy, "
                             + ", ".join(PEERS))
    return tuple(k for k in PEERS if k in chosen)


def parse_cases(text: str) -> tuple[str, ...]:
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    for p in names:
        if p not in CASES:
            raise ValueError(f"unknown case {p!r}: choose from {', '.join(CASES)}")
    if not names:
        raise ValueError("no case given")
    return tuple(k for k in CASES if k in names)


def _available_memory() -> Optional[int]:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _table_memory_need(cfg: Config) -> int:
    """A generous estimate of the table's peak memory: the buffer, a float32 scratch for
    16-bit numpy draws, JAX's new array, mkl's float64 result and numpy's |x| temporaries."""
    n = max(cfg.size, math.prod(cfg.shape2d))
    return n * (cfg.dtype.itemsize * 3 + 4 + 8 + 1)


# ----------------------------------------------------------------------------------------------
# The table


def run_table(cfg: Config, progress: Progress) -> dict[str, Any]:
    peers, skipped = load_peers(cfg.peers, cfg.dtype)
    with _threads(cfg.threads, peers.get("torch")):
        cases = _table_cases(cfg, peers, progress)
    return {"cases": cases, "skipped": skipped, "peers": list(peers)}


def _table_cases(cfg: Config, peers: dict[str, Any], progress: Progress) -> list[dict[str, Any]]:
    ops = make_ops(cfg.cases, cfg.size, cfg.shape2d, cfg.dtype)
    cases = []
    for i, op in enumerate(ops):
        buf = _buffer(op.shape, op.dtype)
        contenders, na = _contenders(op, buf, peers)
        progress.start(f"[{i + 1}/{len(ops)}] {op.title}", len(contenders) + cfg.repeats)
        monitor = CpuMonitor()
        time_interleaved(contenders, cfg.repeats, budget=TABLE_BUDGET_S, floor=3,
                         settle=TABLE_SETTLE_S, hot_below=TABLE_HOT_BELOW_S,
                         tick=progress.tick)
        other = monitor.other_cores()
        isz = op.dtype.itemsize
        by = {c.who: c for c in contenders}
        w, m = by["weightfill"], by["memfill"]
        wf_row = _measure(w, op.values, isz)
        wf_row["fraction_of_memfill"] = m.seconds / w.seconds
        peer_rows = []
        for c in contenders:
            if c.who in ("weightfill", "memfill"):
                continue
            row = _measure(c, op.values, isz)
            row["peer"] = c.who
            row["speedup"] = c.median / w.median
            peer_rows.append(row)
        cases.append({
            "name": op.key,
            "title": op.title,
            "dtype": str(op.dtype),
            "shape": list(op.shape),
            "values": op.values,
            "bytes": op.values * isz,
            "weightfill": wf_row,
            "memfill": _measure(m, op.values, isz),
            "peers": peer_rows,
            "not_applicable": na,
            "other_cpu": other,
        })
        del buf, contenders, by, w, m
        gc.collect()
    progress.finish()
    return cases


# ----------------------------------------------------------------------------------------------
# Targets


@dataclass
class Target:
    name: str
    goal: str
    required: float  # weightfill must be at least this many times faster
    shape: tuple[int, ...]
    quick_shape: tuple[int, ...]
    needs_torch: bool = True
    # Targets on equal work ("no slower than" the same fill into np.empty): the ratio is the
    # median of per-round paired ratios over at least PAIRED_ROUNDS rounds (more with a larger
    # --repeats), and ratios down to `required - tolerance` are met: two identical calls,
    # measured so, differ by up to 2% on the development machine.
    tolerance: float = 0.0


TARGETS = (
    Target("kaiming_normal", "kaiming_normal >= 7x torch.nn.init.kaiming_normal_", 7.0,
           (16384, 8192), (1024, 512)),
    Target("xavier_uniform", "xavier_uniform >= 12x torch.nn.init.xavier_uniform_", 12.0,
           (16384, 8192), (1024, 512)),
    Target("truncated_normal", "truncated_normal ±2σ >= 50x torch.nn.init.trunc_normal_", 50.0,
           (4096, 4096), (512, 512)),
    Target("sparse", "sparse(sparsity=0.9) >= 20x torch.nn.init.sparse_", 20.0,
           (4096, 4096), (512, 512)),
    Target("orthogonal", "orthogonal no slower than torch.nn.init.orthogonal_", 1.0,
           (4096, 4096), (256, 256)),
    Target("bfloat16_normal", "bfloat16 normal >= 10x torch bfloat16 Tensor.normal_", 10.0,
           (1 << 26,), (1 << 18,)),
    Target("new_array", "normal(shape) no slower than np.empty + normal(out=)", 1.0,
           (16384, 8192), (1024, 512), needs_torch=False, tolerance=0.02),
)
PAIRED_ROUNDS = 11


def _target_pair(tg: Target, shape: tuple[int, ...],
                 torch: Any) -> tuple[Contender, Contender, str]:
    """(weightfill, peer, note) for one target; both write float32 (bfloat16 for that one)
    into the same buffer."""
    import weightfill as wf

    if tg.name == "new_array":
        def new() -> object:
            return wf.normal(shape, seed=1)

        def empty_then_fill() -> object:
            out = np.empty(shape, np.float32)
            return wf.normal(seed=1, out=out)

        return (Contender("weightfill", "weightfill.normal(shape)", new),
                Contender("numpy", "np.empty + weightfill.normal(out=)", empty_then_fill), "")
    dtype = BFLOAT16 if tg.name == "bfloat16_normal" else np.dtype(np.float32)
    buf = _buffer(shape, dtype)
    t = _torch_view(torch, buf)
    init = torch.nn.init
    s = TRUNC_STD
    pairs: dict[str, tuple[str, Callable[[], object], str, Callable[[], object]]] = {
        "kaiming_normal": ("kaiming_normal(out=)", lambda: wf.kaiming_normal(seed=1, out=buf),
                           "nn.init.kaiming_normal_", lambda: init.kaiming_normal_(t)),
        "xavier_uniform": ("xavier_uniform(out=)", lambda: wf.xavier_uniform(seed=1, out=buf),
                           "nn.init.xavier_uniform_", lambda: init.xavier_uniform_(t)),
        "truncated_normal": (
            "truncated_normal(std=s, lower=-2, upper=2, out=)",
            lambda: wf.truncated_normal(std=s, lower=-2.0, upper=2.0, seed=1, out=buf),
            "nn.init.trunc_normal_(std=s, a=-2s, b=2s)",
            lambda: init.trunc_normal_(t, std=s, a=-2 * s, b=2 * s)),
        "sparse": ("sparse(sparsity=0.9, out=)", lambda: wf.sparse(sparsity=0.9, seed=1, out=buf),
                   "nn.init.sparse_(0.9)", lambda: init.sparse_(t, 0.9)),
        "orthogonal": ("orthogonal(out=)", lambda: wf.orthogonal(seed=1, out=buf),
                       "nn.init.orthogonal_", lambda: init.orthogonal_(t)),
        "bfloat16_normal": ("normal(out=bfloat16)", lambda: wf.normal(seed=1, out=buf),
                            "Tensor.normal_ (bfloat16)", lambda: t.normal_()),
    }
    wcall, wfn, pcall, pfn = pairs[tg.name]
    note = ""
    if tg.name == "orthogonal":
        note = "weightfill: float32 blocked reflector product (NumPy BLAS); torch: float32 QR"
    return (Contender("weightfill", "weightfill." + wcall, wfn),
            Contender("torch", "torch." + pcall, pfn), note)


def run_targets(cfg: Config, progress: Progress) -> dict[str, Any]:
    peers, skipped = load_peers(("torch",) if "torch" in cfg.peers else (), cfg.dtype)
    torch = peers.get("torch")
    with _threads(cfg.threads, torch):
        results = _target_rows(cfg, torch, skipped, progress)
    return {"targets": results, "quick_shapes": cfg.quick}


def _target_rows(cfg: Config, torch: Any, skipped: dict[str, str],
                 progress: Progress) -> list[dict[str, Any]]:
    results = []
    for i, tg in enumerate(TARGETS):
        shape = tg.quick_shape if cfg.quick else tg.shape
        row: dict[str, Any] = {"name": tg.name, "goal": tg.goal, "shape": list(shape),
                               "required": tg.required}
        if tg.needs_torch and torch is None:
            row.update(met=None, skipped=f"torch: {skipped.get('torch', 'not loaded')}")
            results.append(row)
            continue
        w, p, note = _target_pair(tg, shape, torch)
        # Orthogonal runs BLAS for a second; its threads spin for a while after it: let them settle.
        settle = 0.25 if tg.name == "orthogonal" else TABLE_SETTLE_S
        # Equal-work targets always get PAIRED_ROUNDS rounds at least (no budget cut).
        repeats = max(cfg.repeats, PAIRED_ROUNDS) if tg.tolerance else cfg.repeats
        floor = PAIRED_ROUNDS if tg.tolerance else 1
        progress.start(f"[{i + 1}/{len(TARGETS)}] target {tg.name} {shape}", 2 + repeats)
        monitor = CpuMonitor()
        time_interleaved([w, p], repeats, budget=TARGETS_BUDGET_S, floor=floor, settle=settle,
                         tick=progress.tick)
        other = monitor.other_cores()
        if tg.tolerance:  # equal work: pair each round's calls, so that drift cancels
            ratio = statistics.median(b / a for a, b in zip(w.times, p.times))
        else:
            ratio = p.median / w.median
        isz = 2 if tg.name == "bfloat16_normal" else 4
        row.update(weightfill=_measure(w, math.prod(shape), isz),
                   peer=_measure(p, math.prod(shape), isz), ratio=ratio,
                   paired=bool(tg.tolerance), tolerance=tg.tolerance,
                   met=bool(ratio >= tg.required - tg.tolerance), judged=not cfg.quick,
                   note=note, other_cpu=other)
        results.append(row)
        del w, p
        gc.collect()
    progress.finish()
    return results


# ----------------------------------------------------------------------------------------------
# Memory


_MEMORY_CHILD = r"""
import json, sys
import numpy as np
import weightfill as wf

spec = json.loads(sys.argv[1])

def status(name):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(name + " not in /proc/self/status")

if spec["dtype"] == "bfloat16":
    import ml_dtypes
    dtype = ml_dtypes.bfloat16
else:
    dtype = np.dtype(spec["dtype"]) if spec["dtype"] else None
fn = getattr(wf, spec["func"])
kwargs = dict(spec["kwargs"])
if dtype is not None:
    kwargs["dtype"] = dtype
shape = tuple(spec["shape"])
args = (shape[0],) if spec["func"] == "random_raw" else (shape,)
small = (8,) if spec["func"] == "random_raw" else (tuple(min(d, 8) for d in shape),)
fn(*small, seed=1, **kwargs)  # thread pool, lazy constants: not what is measured
before = status("VmRSS")
method = "VmHWM after clear_refs"
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak (VmHWM) to the current RSS
except OSError:
    import resource
    method = "ru_maxrss (peak since start: may undercount)"
a = fn(*args, seed=1, **kwargs)
if method.startswith("VmHWM"):
    peak = status("VmHWM")
else:
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"before": before, "peak": peak, "nbytes": int(a.nbytes), "method": method}))
"""


def memory_specs(n: int, shape2d: tuple[int, int], quick: bool) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = [
        {"func": "random_raw", "dtype": None, "shape": [n], "kwargs": {}}]
    for func in ("uniform", "normal", "truncated_normal"):
        for dt in DTYPES:
            specs.append({"func": func, "dtype": dt, "shape": [n], "kwargs": {}})
    for dt in DTYPES:
        specs.append({"func": "sparse", "dtype": dt, "shape": list(shape2d),
                      "kwargs": {"sparsity": 0.9}})
    specs.append({"func": "sparse", "dtype": "float32", "shape": list(shape2d),
                  "kwargs": {"sparsity": 0.5, "method": "keys"}})
    specs.append({"func": "sparse", "dtype": "float16", "shape": [1 << 21, 2],  # tall, narrow
                  "kwargs": {"sparsity": 0.5}})
    for func in ("kaiming_normal", "xavier_uniform"):
        specs.append({"func": func, "dtype": "float32", "shape": list(shape2d), "kwargs": {}})
    side = 256 if quick else 2048
    specs.append({"func": "orthogonal", "dtype": "float32", "shape": [side, side], "kwargs": {},
                  "documented_only": True})
    return specs


def measure_peak_rss(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs one new-array call in a fresh interpreter; returns its RSS before the call, the peak
    during it and the output's size."""
    proc = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, json.dumps(spec)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child for {spec['func']} failed:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_memory(cfg: Config, progress: Progress) -> dict[str, Any]:
    specs = memory_specs(cfg.size, cfg.shape2d, cfg.quick)
    rows = []
    progress.start("memory: one subprocess per call", len(specs))
    env_threads = str(cfg.threads)
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = env_threads
    try:
        for spec in specs:
            r = measure_peak_rss(spec)
            growth = r["peak"] - r["before"]
            allowed = 0.01 * r["nbytes"] + 16 * _MiB
            row = {**{k: spec[k] for k in ("func", "dtype", "shape", "kwargs")},
                   "output_bytes": r["nbytes"], "rss_before": r["before"], "rss_peak": r["peak"],
                   "growth_bytes": growth, "excess_bytes": growth - r["nbytes"],
                   "growth_over_output": growth / r["nbytes"] if r["nbytes"] else None,
                   "method": r["method"]}
            if spec.get("documented_only"):
                row["allowed_excess_bytes"] = None
                row["met"] = None
            else:
                row["allowed_excess_bytes"] = allowed
                row["met"] = bool(growth - r["nbytes"] < allowed)
            rows.append(row)
            progress.tick()
    finally:
        if old is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = old
    progress.finish()
    return {"memory": rows}


# ----------------------------------------------------------------------------------------------
# Output


def _g(x: float) -> str:
    """Values per second, short: 3.21 G, 512 M."""
    if x >= 1e9:
        return f"{x / 1e9:.2f} G"
    if x >= 1e6:
        return f"{x / 1e6:.0f} M"
    return f"{x / 1e3:.0f} k"


def _ms(t: float) -> str:
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


def _header(result: dict[str, Any]) -> list[str]:
    m, c = result["machine"], result["config"]
    v = m["versions"]
    peers = ", ".join(f"{k} {v[k]}" for k in ("torch", "jax", "mkl_random") if k in v)
    lines = [
        f"weightfill {v['weightfill']} bench: {m['cpu']}, {m['cores']} cores, kernel {m['isa']}, "
        f"{_threads_text(m['threads'])} ({m['thread_backend']})",
        f"numpy {v['numpy']}" + (f", {peers}" if peers else "") + f"; python {v['python']}",
        f"median of {c['repeats']} timed calls after a warm-up, contenders interleaved; "
        f"{_fmt_other(m.get('other_cpu'))}",
    ]
    return lines


def _fmt_other(x: Optional[dict[str, float]]) -> str:
    if not x:
        return "other load unknown"
    return (f"other processes used {x['other_processes']:.2f} cores on average meanwhile"
            + (f", the hypervisor stole {x['steal']:.2f}" if x["steal"] >= 0.01 else ""))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(result: dict[str, Any]) -> str:
    lines = _header(result)
    lines.append("")
    reps = result["config"]["repeats"]
    for case in result["table"]["cases"]:
        lines.append(f"{case['title']}: {case['values']:,} values, "
                     f"{case['bytes'] / _MiB:.1f} MiB")
        lines.append(f"  {'contender':<13}{'call':<45}{'median':>9}{'values/s':>10}{'GB/s':>7}"
                     f"  speed-up")
        w = case["weightfill"]
        rows = [("weightfill", w, f"{w['fraction_of_memfill']:.0%} of memory fill")]
        rows += [(PEER_LABELS[p["peer"]], p, f"{p['speedup']:.1f}x") for p in case["peers"]]
        rows.append(("memory fill", case["memfill"], "(ceiling)"))
        for who, r, tail in rows:
            if r.get("statistic") == "min":
                n = f" (fastest of {r['repeats']})"
            else:
                n = "" if r["repeats"] == reps else f" (median of {r['repeats']})"
            lines.append(f"  {who:<13}{_clip(r['call'], 44):<45}{_ms(r['seconds']):>9}"
                         f"{_g(r['values_per_s']):>10}{r['gbps']:>7.2f}  {tail}{n}")
        for key, why in case["not_applicable"].items():
            lines.append(f"  {PEER_LABELS[key]:<13}n/a: {why}")
        busy = case.get("other_cpu")
        if busy and busy["other_processes"] + busy["steal"] >= BUSY_CORES:
            lines.append(f"  (noisy: {_fmt_other(busy)})")
        lines.append("")
    lines += _skipped_lines(result["table"]["skipped"])
    lines += [
        "speed-up: the peer's median time over weightfill's. Into the same buffer: weightfill "
        "and numpy (out=), torch (in place on",
        "torch.from_numpy), mkl_random (float64 result cast in); JAX allocates its result "
        "(jitted, block_until_ready).",
        "calls under 50 ms are timed right after an untimed one (threads awake). memory fill: "
        "weightfill.constant into the same buffer,",
        "on weightfill's threads, the fastest call. "
        f"Elapsed {result['elapsed_s']:.1f} s.",
    ]
    return "\n".join(lines)


def _skipped_lines(skipped: dict[str, str]) -> list[str]:
    if not skipped:
        return []
    return ["skipped: " + "; ".join(f"{PEER_LABELS[k]} ({why})" for k, why in skipped.items())]


def format_markdown(result: dict[str, Any]) -> str:
    """The table as README markdown: a row per operation, a column per peer."""
    table = result["table"]
    keys = table["peers"]
    head = ["operation", "weightfill values/s (GB/s)", "of memory fill"] + [
        PEER_LABELS[k] + " (speed-up)" for k in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case in table["cases"]:
        w = case["weightfill"]
        cells = [case["title"], f"{_g(w['values_per_s'])}/s ({w['gbps']:.1f} GB/s)",
                 f"{w['fraction_of_memfill']:.0%}"]
        by = {p["peer"]: p for p in case["peers"]}
        for k in keys:
            if k in by:
                p = by[k]
                cells.append(f"{_g(p['values_per_s'])}/s (**{p['speedup']:.1f}x**)")
            else:
                cells.append("n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_targets(result: dict[str, Any]) -> str:
    lines = [] if "table" in result else _header(result) + [""]
    t = result["targets"]
    if t["quick_shapes"]:
        lines.append("targets (--quick: reduced shapes, not the targets' own)")
    else:
        lines.append("targets")
    lines.append(f"{'':2}{'target':<62}{'shape':>14}{'weightfill':>12}{'peer':>10}{'ratio':>9}"
                 f"  result")
    for r in t["targets"]:
        shape = "x".join(str(d) for d in r["shape"])
        if r["met"] is None:
            lines.append(f"{'':2}{r['goal']:<62}{shape:>14}  skipped: {r.get('skipped', '')}")
            continue
        verdict = ("met" if r["met"] else "MISSED") if r["judged"] else "not judged (--quick)"
        if r.get("paired"):  # not the ratio of the medians printed beside it
            verdict += " (median of paired per-round ratios"
            if r["judged"] and r["met"] and r["ratio"] < r["required"]:
                verdict += f"; within the {r['tolerance']:.0%} noise of equal work"
            verdict += ")"
        lines.append(f"{'':2}{r['goal']:<62}{shape:>14}{_ms(r['weightfill']['seconds']):>12}"
                     f"{_ms(r['peer']['seconds']):>10}{r['ratio']:>8.2f}x  {verdict}")
        if r.get("note"):
            lines.append(f"{'':4}{r['note']}")
        busy = r.get("other_cpu")
        if busy and busy["other_processes"] + busy["steal"] >= BUSY_CORES:
            lines.append(f"{'':4}(noisy: {_fmt_other(busy)})")
    return "\n".join(lines)


def format_memory(result: dict[str, Any]) -> str:
    lines = [] if ("table" in result or "targets" in result) else _header(result)[:1] + [""]
    lines.append("memory: peak RSS growth of a new-array call (fresh process; allowed: output "
                 "+ 1% + 16 MiB)")
    lines.append(f"{'':2}{'call':<34}{'shape':>12}{'output':>12}{'growth':>12}{'excess':>11}"
                 f"  result")
    for r in result["memory"]["memory"]:
        dt = r["dtype"] or "uint32"
        method = r["kwargs"].get("method")
        call = f"{r['func']}({dt}" + (f", method={method!r})" if method else ")")
        shape = "x".join(str(d) for d in r["shape"])
        if r["met"] is None:
            verdict = f"{r['growth_over_output']:.2f}x the output (documented, no target)"
        else:
            verdict = "met" if r["met"] else "MISSED"
        lines.append(f"{'':2}{call:<34}{shape:>12}{r['output_bytes'] / _MiB:>8.1f} MiB"
                     f"{r['growth_bytes'] / _MiB:>8.1f} MiB{r['excess_bytes'] / _MiB:>7.1f} MiB"
                     f"  {verdict}")
    return "\n".join(lines)


def plot_speedups(result: dict[str, Any], path: str) -> None:
    """A grouped bar chart of weightfill's speed-up over each peer, one group per operation."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    table = result["table"]
    keys = table["peers"]
    cases = table["cases"]
    fig = Figure(figsize=(max(6.0, 1.6 * len(cases) + 2), 4.5), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / max(len(keys), 1)
    for j, k in enumerate(keys):
        xs, ys = [], []
        for i, case in enumerate(cases):
            by = {p["peer"]: p for p in case["peers"]}
            if k in by:
                xs.append(i + (j - (len(keys) - 1) / 2) * width)
                ys.append(by[k]["speedup"])
        bars = ax.bar(xs, ys, width, label=PEER_LABELS[k])
        ax.bar_label(bars, labels=[f"{y:.0f}x" if y >= 10 else f"{y:.1f}x" for y in ys],
                     fontsize=7, padding=1)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}x"))
    ax.set_xticks(range(len(cases)), [c["name"].replace("_", "\n", 1) for c in cases],
                  fontsize=8)
    ax.set_ylabel("weightfill speed-up (peer time / weightfill time)")
    m = result["machine"]
    ax.set_title(f"weightfill vs peers ({result['config']['dtype']}): {m['cpu']}, "
                 f"{_threads_text(m['threads'])}, {m['isa']}", fontsize=10)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)


# ----------------------------------------------------------------------------------------------
# Command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", metavar="N",
                   help="values per fill: a number (16777216, 2**24, 16M) or tiny, small, "
                        "medium, large (2**16, 2**20, 2**24, 2**26); default medium, "
                        "--quick small")
    p.add_argument("--shape", metavar="ROWSxCOLS",
                   help="2-D shape of kaiming_normal and xavier_uniform (default: about --size "
                        "values, e.g. 4096x4096)")
    p.add_argument("--dtype", choices=DTYPES, default="float32",
                   help="dtype of every row but the bfloat16 one (default float32)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="threads for weightfill and torch (default: weightfill's current "
                        "setting); numpy draws on one thread, JAX uses its own pool")
    p.add_argument("--repeats", type=int, metavar="N",
                   help=f"timed calls per contender, after a warm-up (default "
                        f"{DEFAULT_REPEATS}, --quick {QUICK_REPEATS})")
    p.add_argument("--peers", default="all", metavar="LIST",
                   help="comma-separated: all (default), none, numpy, " + ", ".join(PEERS))
    p.add_argument("--cases", metavar="LIST",
                   help="comma-separated table rows (default all): " + ", ".join(CASES))
    p.add_argument("--quick", action="store_true",
                   help="small sizes and 3 repeats: seconds, for a smoke test")
    p.add_argument("--targets", action="store_true",
                   help="check the speed targets at their own shapes (about a minute or two)")
    p.add_argument("--memory", action="store_true",
                   help="peak RSS of each engine distribution's new-array call, in subprocesses")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--markdown", action="store_true",
                   help="also print the table as markdown (README)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="save a bar chart of the speed-ups (needs matplotlib)")
    p.add_argument("--no-progress", action="store_true", help="no progress on stderr")


def config_from_args(args: argparse.Namespace, fail: Callable[[str], Any]) -> Config:
    """Checks the options; ``fail(message)`` reports a bad one (argparse's ``error``)."""
    import weightfill as wf

    try:
        if args.size is not None:
            size = parse_size(args.size)
        else:
            size = QUICK_SIZE if args.quick else DEFAULT_SIZE
        shape = parse_shape(args.shape) if args.shape is not None else None
        peers = parse_peers(args.peers)
        cases = parse_cases(args.cases) if args.cases is not None else CASES
    except ValueError as e:
        fail(str(e))
        raise
    repeats = args.repeats if args.repeats is not None else (
        QUICK_REPEATS if args.quick else DEFAULT_REPEATS)
    if repeats < 1:
        fail(f"--repeats must be >= 1, got {repeats}")
    threads = args.threads if args.threads is not None else wf.get_num_threads()
    if not 1 <= threads <= 1024:
        fail(f"--threads must be in [1, 1024], got {threads}")
    if args.plot is not None:
        if args.targets or args.memory:
            fail("--plot draws the table's speed-ups: it cannot go with --targets or --memory")
        if not args.plot.lower().endswith(".png"):
            fail(f"--plot {args.plot}: give a .png file name")
        folder = os.path.dirname(os.path.abspath(args.plot))
        if not os.path.isdir(folder):
            fail(f"--plot {args.plot}: folder {folder} does not exist")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            fail("--plot needs matplotlib: pip install matplotlib (or weightfill[plot])")
    if args.markdown and args.json:
        fail("--markdown and --json are alternatives: choose one")
    cfg = Config(size=size, shape=shape, dtype=np.dtype(BFLOAT16 if args.dtype == "bfloat16"
                                                        else args.dtype),
                 threads=threads, repeats=repeats, peers=peers, cases=cases, quick=args.quick)
    if not (args.targets or args.memory):
        need, have = _table_memory_need(cfg), _available_memory()
        if have is not None and need > 0.8 * have:
            fail(f"--size {size} needs about {need / 2**30:.1f} GiB of memory, "
                 f"{have / 2**30:.1f} GiB available: choose a smaller --size or --shape")
    return cfg


@contextlib.contextmanager
def _threads(n: int, torch: Any = None) -> Iterator[None]:
    """weightfill's (and torch's) thread count set to ``n`` for the block, then restored."""
    import weightfill as wf

    before = wf.get_num_threads()
    torch_before = torch.get_num_threads() if torch is not None else None
    wf.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        wf.set_num_threads(before)
        if torch is not None:
            torch.set_num_threads(torch_before)


def run(args: argparse.Namespace, fail: Callable[[str], Any], out: Optional[TextIO] = None) -> int:
    """Runs ``weightfill bench`` with parsed options; returns the exit status."""
    out = out if out is not None else sys.stdout
    cfg = config_from_args(args, fail)
    progress = Progress(not args.no_progress)
    parts = [p for p, on in (("table", not (args.targets or args.memory)),
                             ("targets", args.targets), ("memory", args.memory)) if on]
    load_start = _loadavg()
    monitor = CpuMonitor()
    t0 = time.perf_counter()
    result: dict[str, Any] = {"schema": SCHEMA}
    result["config"] = {
        "size": cfg.size, "shape2d": list(cfg.shape2d), "dtype": str(cfg.dtype),
        "threads": cfg.threads, "repeats": cfg.repeats, "peers": list(cfg.peers),
        "cases": list(cfg.cases), "quick": cfg.quick, "parts": parts,
    }
    if "table" in parts:
        result["table"] = run_table(cfg, progress)
    if "targets" in parts:
        result["targets"] = run_targets(cfg, progress)
    if "memory" in parts:
        result["memory"] = run_memory(cfg, progress)
    result["elapsed_s"] = time.perf_counter() - t0
    result["machine"] = machine_info(cfg.threads, {k: sys.modules[k] for k in PEERS
                                                   if k in sys.modules})
    result["machine"]["loadavg_start"] = load_start
    result["machine"]["loadavg_end"] = _loadavg()
    result["machine"]["other_cpu"] = monitor.other_cores()
    if args.json:
        json.dump(result, out, indent=1)
        out.write("\n")
    else:
        texts = []
        if "table" in result:
            texts.append(format_table(result))
            if args.markdown:
                texts.append(format_markdown(result))
        if "targets" in result:
            texts.append(format_targets(result))
        if "memory" in result:
            texts.append(format_memory(result))
        out.write("\n\n".join(texts) + "\n")
    if args.plot is not None:
        plot_speedups(result, args.plot)
        if not args.json:
            out.write(f"speed-ups plotted to {args.plot}\n")
    out.flush()
    return 0
