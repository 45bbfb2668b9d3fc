"""Progress output, the run's Config and the parsers of its flags."""

from __future__ import annotations

import math
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Optional, TextIO

import numpy as np

from ._constants import CASES, DEFAULT_REPEATS, DEFAULT_SIZE, PEERS, SIZE_PRESETS


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
