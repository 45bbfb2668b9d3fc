"""The speed-up plot (matplotlib, on demand)."""

from __future__ import annotations

from typing import Any


from ._constants import PEER_LABELS
from .contenders import _threads_text


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
