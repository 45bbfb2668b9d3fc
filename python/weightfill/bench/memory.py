"""Peak resident memory of new-array calls, each in a fresh subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any


from ._constants import DTYPES, _MiB
from .config import Config, Progress


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
