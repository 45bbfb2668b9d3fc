"""Sizes and buffers shared by the benchmark modules (kept out of conftest.py so that
importing them never depends on which conftest module Python finds first)."""

from __future__ import annotations

import os

import numpy as np

N = int(os.environ.get("WEIGHTFILL_BENCH_N", 1 << 24))
ROUNDS = int(os.environ.get("WEIGHTFILL_BENCH_ROUNDS", 7))
SHAPE2D = (4096, max(N // 4096, 1))


def buffer(shape, dtype=np.float32) -> np.ndarray:
    """A C-contiguous array with its pages faulted in, so no contender pays for them."""
    out = np.empty(shape, dtype)
    out.view(f"u{out.dtype.itemsize}").fill(0)
    return out
