"""The machine: CPU name, load, other processes' CPU use."""

from __future__ import annotations

import contextlib
import os
import platform
import time
from typing import Any, Iterator, Optional

import numpy as np

from .. import _engine



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
    from .. import __version__

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
