"""Initialization schemes beside numpy recipes and torch.nn.init: one group per scheme."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import weightfill as wf
from bench_common import SHAPE2D, buffer

ROWS, COLS = SHAPE2D
SPARSE = (4096, 4096)
ORTHO = int(os.environ.get("WEIGHTFILL_BENCH_ORTHO", 1024))  # QR is cubic: 4096 takes seconds


@pytest.fixture(scope="module")
def out():
    return buffer(SHAPE2D)


# kaiming_normal (torch's: untruncated, gain sqrt(2), fan_in) -----------------------------------


@pytest.mark.benchmark(group="kaiming_normal")
def test_kaiming_normal_weightfill(run, out):
    run(lambda: wf.kaiming_normal(seed=1, out=out), out.size)


@pytest.mark.benchmark(group="kaiming_normal")
def test_kaiming_normal_numpy(run, out, rng):
    std = math.sqrt(2.0 / COLS)

    def fill():
        rng.standard_normal(dtype=np.float32, out=out)
        np.multiply(out, std, out=out)

    run(fill, out.size)


@pytest.mark.benchmark(group="kaiming_normal")
def test_kaiming_normal_torch(run, out, torch):
    t = torch.from_numpy(out)
    run(lambda: torch.nn.init.kaiming_normal_(t), out.size)


# xavier_uniform --------------------------------------------------------------------------------


@pytest.mark.benchmark(group="xavier_uniform")
def test_xavier_uniform_weightfill(run, out):
    run(lambda: wf.xavier_uniform(seed=1, out=out), out.size)


@pytest.mark.benchmark(group="xavier_uniform")
def test_xavier_uniform_numpy(run, out, rng):
    a = math.sqrt(6.0 / (ROWS + COLS))

    def fill():
        rng.random(dtype=np.float32, out=out)
        np.multiply(out, 2 * a, out=out)
        np.subtract(out, a, out=out)

    run(fill, out.size)


@pytest.mark.benchmark(group="xavier_uniform")
def test_xavier_uniform_torch(run, out, torch):
    t = torch.from_numpy(out)
    run(lambda: torch.nn.init.xavier_uniform_(t), out.size)


# sparse ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def square():
    return buffer(SPARSE)


@pytest.mark.benchmark(group="sparse")
def test_sparse_weightfill(run, square):
    run(lambda: wf.sparse(sparsity=0.9, seed=1, out=square), square.size)


@pytest.mark.benchmark(group="sparse")
def test_sparse_keys_weightfill(run, square):
    run(lambda: wf.sparse(sparsity=0.9, seed=1, out=square, method="keys"), square.size)


@pytest.mark.benchmark(group="sparse")
def test_sparse_numpy(run, square, rng):
    """torch's recipe in numpy: normal(0, 0.01), then ceil(0.9 * rows) zeros per column."""
    rows, cols = SPARSE
    zeros = math.ceil(0.9 * rows)

    def fill():
        rng.standard_normal(dtype=np.float32, out=square)
        np.multiply(square, 0.01, out=square)
        idx = rng.random((rows, cols), dtype=np.float32).argsort(axis=0)[:zeros]
        np.put_along_axis(square, idx, 0.0, axis=0)

    run(fill, square.size)


@pytest.mark.benchmark(group="sparse")
def test_sparse_torch(run, square, torch):
    t = torch.from_numpy(square)
    run(lambda: torch.nn.init.sparse_(t, 0.9), square.size)


# orthogonal ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ortho():
    return buffer((ORTHO, ORTHO))


@pytest.mark.benchmark(group="orthogonal")
def test_orthogonal_weightfill(run, ortho):
    run(lambda: wf.orthogonal(seed=1, out=ortho), ortho.size)


@pytest.mark.benchmark(group="orthogonal")
def test_orthogonal_numpy(run, ortho, rng):
    """QR of a float32 normal draw, signs fixed by diag(R) (torch's recipe)."""

    def fill():
        q, r = np.linalg.qr(rng.standard_normal(ortho.shape, dtype=np.float32))
        np.multiply(q, np.sign(np.diagonal(r)), out=ortho)

    run(fill, ortho.size)


@pytest.mark.benchmark(group="orthogonal")
def test_orthogonal_torch(run, ortho, torch):
    t = torch.from_numpy(ortho)
    run(lambda: torch.nn.init.orthogonal_(t), ortho.size)
