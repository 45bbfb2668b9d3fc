"""Settings of the pytest-benchmark suite, run on request and never by the unit tests
(pyproject's ``testpaths`` is ``tests``):

    pip install ".[bench]" && pytest benchmarks --benchmark-only

Each benchmark group is one operation: weightfill's test beside its numpy baseline (and
torch's, when torch is installed), all filling the same preallocated, already faulted buffer.
Environment: ``WEIGHTFILL_BENCH_N`` values per fill (default 2**24), ``WEIGHTFILL_BENCH_THREADS``
(default: weightfill's setting; torch gets the same), ``WEIGHTFILL_BENCH_ROUNDS`` (default 7,
after one warm-up). ``weightfill bench`` gives the same comparisons as one table.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import weightfill as wf
from bench_common import ROUNDS


@pytest.fixture(scope="session")
def threads() -> int:
    n = int(os.environ.get("WEIGHTFILL_BENCH_THREADS", wf.get_num_threads()))
    wf.set_num_threads(n)
    return n


@pytest.fixture(scope="session")
def torch(threads):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(threads)
    return torch


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(1))


@pytest.fixture
def run(benchmark, threads):
    """``run(fn, values)``: times ``fn`` (one warm-up, ROUNDS rounds of one call)."""

    def go(fn, values: int):
        benchmark.extra_info.update(threads=threads, values=values, isa=wf.isa())
        return benchmark.pedantic(fn, rounds=ROUNDS, warmup_rounds=1, iterations=1)

    return go
