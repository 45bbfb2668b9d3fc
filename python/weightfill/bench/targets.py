"""The speed targets at their own shapes, each met or missed."""

from __future__ import annotations

import gc
import math
import statistics
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .._args import BFLOAT16
from ._constants import TABLE_SETTLE_S, TARGETS_BUDGET_S, TRUNC_STD
from .config import Config, Progress
from .contenders import _buffer, _measure, _torch_view, load_peers
from .machine import CpuMonitor, _threads
from .timing import Contender, time_interleaved


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
