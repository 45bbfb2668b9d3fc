"""Whole models: torch's construction against weightfill.torch's, each in fresh processes.

The row is a GPT-2-medium shape (the issue's benchmark), built from plain torch modules so
that no model library is needed. Three measurements, each against its goal:

- **construction**: torch's default construction (every module's own ``reset_parameters`` on
  new CPU storage) against construction on the meta device plus
  :func:`weightfill.torch.materialize`; each run in its own fresh subprocess, alternating, both
  after the same imports and a warm-up on a tiny model of the same kind, so that one-time
  costs (imports, thread pools, lazy constants) fall on neither.
- **init_module**: :func:`weightfill.torch.init_module` on an existing CPU model against the
  modules' own ``reset_parameters`` on the same memory, interleaved in one subprocess.
- **peak RSS** of the meta path: the resident-memory peak during meta construction and
  ``materialize`` (``VmHWM`` after ``clear_refs``) over the RSS before it, against the
  model's bytes.

The meta construction runs under :func:`weightfill.torch.patch`, as docs/torch.md advises:
without it torch's own ``normal_`` on a meta tensor (``nn.Embedding``'s reset) imports
torch._dynamo the first time, 2-4 s on the development machine; the child measures that
plain construction too (``meta_plain_first_s``), after everything else.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any, Optional, Union

from .config import Config, Progress
from .machine import CpuMonitor

__all__ = ["GPT2Shape", "GPT2_MEDIUM", "GPT2_TINY", "MODEL_GOALS", "run_models", "build_gpt2"]


@dataclass(frozen=True)
class GPT2Shape:
    """A GPT-2-style decoder's sizes (tied input embedding and output head)."""

    name: str
    vocab: int
    d: int
    blocks: int
    mlp: int
    context: int


GPT2_MEDIUM = GPT2Shape("gpt2-medium", vocab=50257, d=1024, blocks=24, mlp=4096, context=1024)
GPT2_TINY = GPT2Shape("gpt2-tiny", vocab=2048, d=128, blocks=2, mlp=512, context=128)

#: construction and init_module: weightfill at least this many times faster; peak_rss: the
#: meta path's growth at most this times the model's bytes (the issue's goals).
MODEL_GOALS = {"construction": 8.0, "init_module": 8.0, "peak_rss": 1.05}


def build_gpt2(shape: GPT2Shape) -> Any:
    """A GPT-2-shaped torch model on the current default device: token and position
    embeddings, ``blocks`` pre-norm blocks (LayerNorm, a fused QKV Linear and its output
    projection, LayerNorm, an MLP of two Linears) and a final LayerNorm, the head tied to the
    token embedding. The parameters only; no forward pass is needed here."""
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln_1 = nn.LayerNorm(shape.d)
            self.attn = nn.Linear(shape.d, 3 * shape.d)
            self.attn_proj = nn.Linear(shape.d, shape.d)
            self.ln_2 = nn.LayerNorm(shape.d)
            self.fc = nn.Linear(shape.d, shape.mlp)
            self.fc_proj = nn.Linear(shape.mlp, shape.d)

    class GPT2(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte = nn.Embedding(shape.vocab, shape.d)
            self.wpe = nn.Embedding(shape.context, shape.d)
            self.h = nn.ModuleList(Block() for _ in range(shape.blocks))
            self.ln_f = nn.LayerNorm(shape.d)
            self.lm_head = nn.Linear(shape.d, shape.vocab, bias=False)
            self.lm_head.weight = self.wte.weight

    return GPT2()


def _model_bytes(model: Any) -> int:
    """Bytes of the distinct tensors (tied ones once)."""
    seen: dict[int, int] = {}
    for t in list(model.parameters()) + list(model.buffers()):
        seen[id(t)] = t.numel() * t.element_size()
    return sum(seen.values())


# ----------------------------------------------------------------------------------------------
# The child processes


def _status(name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{name} not in /proc/self/status")


def _reset_peak() -> str:
    """Resets VmHWM to the current RSS where the kernel allows it; returns the method."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return "VmHWM after clear_refs"
    except OSError:
        return "VmHWM since start (clear_refs refused: may overcount)"


def _cpu(since: Optional[dict[str, float]] = None) -> dict[str, float]:
    """This process's CPU seconds in user and kernel mode (minus ``since``): the kernel's share
    of a first write to new memory is the page faults (zeroing the pages)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    now = {"user": r.ru_utime, "sys": r.ru_stime}
    return {k: v - since[k] for k, v in now.items()} if since else now


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement in this (fresh) process; ``spec``: kind, shape, threads, seed, repeats."""
    import gc
    import time

    import torch

    import weightfill as wf
    import weightfill.torch as wt

    from .timing import Contender, time_interleaved

    torch.set_num_threads(spec["threads"])
    wf.set_num_threads(spec["threads"])
    shape = GPT2Shape(**spec["shape"])
    tiny = GPT2_TINY
    seed = spec["seed"]
    kind = spec["kind"]
    if kind == "torch_default":
        build_gpt2(tiny)  # warm-up: the same code paths, on a tiny model
        gc.collect()
        r0, t0 = _cpu(), time.perf_counter()
        model = build_gpt2(shape)
        return {"construction_s": time.perf_counter() - t0, "construction_cpu": _cpu(r0),
                "bytes": _model_bytes(model)}
    if kind in ("meta", "meta_zeros"):
        # meta_zeros: every tensor zeros instead of its law (benchmarks/bench_construction.py),
        # what materialize costs with a sampler that costs nothing.
        rules: Optional[dict[Union[str, type], Any]] = \
            {"*": "zeros"} if kind == "meta_zeros" else None
        with torch.device("meta"), wt.patch():
            warm = build_gpt2(tiny)
        wt.materialize(warm, seed=seed, rules=rules)
        del warm
        gc.collect()
        before = _status("VmRSS")
        method = _reset_peak()
        t0 = time.perf_counter()
        with torch.device("meta"), wt.patch():
            model = build_gpt2(shape)
        r1, t1 = _cpu(), time.perf_counter()
        wt.materialize(model, seed=seed, rules=rules)
        t2 = time.perf_counter()
        peak = _status("VmHWM")
        result = {"meta_construction_s": t1 - t0, "materialize_s": t2 - t1,
                  "materialize_cpu": _cpu(r1),
                  "rss_before": before, "rss_peak": peak, "rss_method": method,
                  "bytes": _model_bytes(model)}
        del model
        gc.collect()
        t0 = time.perf_counter()
        with torch.device("meta"):  # torch alone: its first meta normal_ imports torch._dynamo
            build_gpt2(shape)
        result["meta_plain_first_s"] = time.perf_counter() - t0
        return result
    if kind == "init_module":
        model = build_gpt2(shape)

        def reset() -> None:
            for m in model.modules():
                if callable(getattr(m, "reset_parameters", None)):
                    m.reset_parameters()

        w = Contender("weightfill", "weightfill.torch.init_module(model)",
                      lambda: wt.init_module(model, seed=seed))
        p = Contender("torch", "every module's reset_parameters()", reset)
        time_interleaved([w, p], spec["repeats"])
        return {"init_module_s": w.times, "reset_parameters_s": p.times,
                "bytes": _model_bytes(model)}
    raise ValueError(f"kind: {kind!r}")


def _run_child(spec: dict[str, Any]) -> dict[str, Any]:
    code = "import json, sys; from weightfill.bench.models import child; " \
           "print(json.dumps(child(json.loads(sys.argv[1]))))"
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True,
                          text=True, timeout=900, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"models child {spec['kind']} failed:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------------------------
# The section


def run_models(cfg: Config, progress: Progress) -> dict[str, Any]:
    """The ``models`` section: one row, GPT-2-medium (``--quick``: a tiny GPT-2 shape)."""
    if importlib.util.find_spec("torch") is None:
        return {"models": [], "skipped": "torch is not installed (the torch extra)"}
    shape = GPT2_TINY if cfg.quick else GPT2_MEDIUM
    base = {"shape": asdict(shape), "threads": cfg.threads, "seed": 0, "repeats": cfg.repeats}
    progress.start(f"models: {shape.name}, {2 * cfg.repeats + 1} subprocesses",
                   2 * cfg.repeats + 1)
    monitor = CpuMonitor()
    torch_runs, meta_runs = [], []
    for _ in range(cfg.repeats):  # alternating, so drift and load hit both alike
        torch_runs.append(_run_child({**base, "kind": "torch_default"}))
        progress.tick()
        meta_runs.append(_run_child({**base, "kind": "meta"}))
        progress.tick()
    init = _run_child({**base, "kind": "init_module"})
    progress.tick()
    other = monitor.other_cores()
    progress.finish()

    nbytes = meta_runs[0]["bytes"]
    torch_s = [r["construction_s"] for r in torch_runs]
    meta_s = [r["meta_construction_s"] + r["materialize_s"] for r in meta_runs]
    construction_ratio = statistics.median(torch_s) / statistics.median(meta_s)
    init_ratio = statistics.median(init["reset_parameters_s"]) / statistics.median(
        init["init_module_s"])
    growth = max(r["rss_peak"] - r["rss_before"] for r in meta_runs)  # the worst run
    judged = not cfg.quick
    row = {
        "name": shape.name, "shape": asdict(shape), "bytes": nbytes,
        "parameters": nbytes // 4, "dtype": "float32", "threads": cfg.threads,
        "construction": {
            "goal": "torch default construction / (meta construction + materialize)",
            "torch_default_s": torch_s,
            "torch_default_cpu": [r["construction_cpu"] for r in torch_runs],
            "materialize_cpu": [r["materialize_cpu"] for r in meta_runs],
            "meta_construction_s": [r["meta_construction_s"] for r in meta_runs],
            "materialize_s": [r["materialize_s"] for r in meta_runs],
            "meta_total_s": meta_s,
            "meta_plain_first_s": [r["meta_plain_first_s"] for r in meta_runs],
            "ratio": construction_ratio, "required": MODEL_GOALS["construction"],
            "met": bool(construction_ratio >= MODEL_GOALS["construction"]),
        },
        "init_module": {
            "goal": "modules' own reset_parameters / init_module, same memory",
            "init_module_s": init["init_module_s"],
            "reset_parameters_s": init["reset_parameters_s"],
            "ratio": init_ratio, "required": MODEL_GOALS["init_module"],
            "met": bool(init_ratio >= MODEL_GOALS["init_module"]),
        },
        "peak_rss": {
            "goal": "peak RSS growth of meta construction + materialize / model bytes",
            "rss_before": [r["rss_before"] for r in meta_runs],
            "rss_peak": [r["rss_peak"] for r in meta_runs],
            "growth_bytes": growth, "growth_over_model": growth / nbytes,
            "required": MODEL_GOALS["peak_rss"],
            "met": bool(growth <= MODEL_GOALS["peak_rss"] * nbytes),
            "method": meta_runs[0]["rss_method"],
        },
        "judged": judged, "other_cpu": other,
    }
    return {"models": [row]}
