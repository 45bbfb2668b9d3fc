"""Interleaved timing of contenders: warm-up, rounds, medians."""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence





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
