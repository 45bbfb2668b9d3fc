"""The table: every case, every contender, side by side."""

from __future__ import annotations

import gc
from typing import Any


from ._constants import TABLE_BUDGET_S, TABLE_HOT_BELOW_S, TABLE_SETTLE_S
from .config import Config, Progress
from .contenders import _buffer, _contenders, _measure, load_peers, make_ops
from .machine import CpuMonitor, _threads
from .timing import time_interleaved


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
