"""Engine distributions beside numpy.random (and torch): one benchmark group per operation."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import weightfill as wf
from bench_common import N, buffer

STD = 0.02  # truncated normal: std 0.02, bounds ±2 std


@pytest.fixture(scope="module")
def out():
    return buffer(N)


# uniform ---------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="uniform")
def test_uniform_weightfill(run, out):
    run(lambda: wf.uniform(seed=1, out=out), N)


@pytest.mark.benchmark(group="uniform")
def test_uniform_numpy(run, out, rng):
    run(lambda: rng.random(dtype=np.float32, out=out), N)


@pytest.mark.benchmark(group="uniform")
def test_uniform_torch(run, out, torch):
    t = torch.from_numpy(out)
    run(lambda: t.uniform_(), N)


# constant (the plain memory fill every other group is bounded by) -----------------------------


@pytest.mark.benchmark(group="constant")
def test_constant_weightfill(run, out):
    run(lambda: wf.constant(None, 0.5, out=out), N)


@pytest.mark.benchmark(group="constant")
def test_constant_numpy(run, out):
    run(lambda: out.fill(0.5), N)


@pytest.mark.benchmark(group="constant")
def test_constant_torch(run, out, torch):
    t = torch.from_numpy(out)
    run(lambda: t.fill_(0.5), N)


# normal ----------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="normal")
def test_normal_weightfill(run, out):
    run(lambda: wf.normal(seed=1, out=out), N)


@pytest.mark.benchmark(group="normal")
def test_normal_numpy(run, out, rng):
    run(lambda: rng.standard_normal(dtype=np.float32, out=out), N)


@pytest.mark.benchmark(group="normal")
def test_normal_torch(run, out, torch):
    t = torch.from_numpy(out)
    run(lambda: t.normal_(), N)


# truncated normal ------------------------------------------------------------------------------


@pytest.mark.benchmark(group="truncated_normal")
def test_truncated_normal_weightfill(run, out):
    run(lambda: wf.truncated_normal(std=STD, lower=-2.0, upper=2.0, seed=1, out=out), N)


@pytest.mark.benchmark(group="truncated_normal")
def test_truncated_normal_numpy(run, out, rng):
    """numpy has no truncated normal: draw, redraw what lies outside ±2, scale."""

    def fill():
        rng.standard_normal(dtype=np.float32, out=out)
        bad = np.flatnonzero(np.abs(out) > 2)
        while bad.size:
            out[bad] = rng.standard_normal(bad.size, dtype=np.float32)
            bad = bad[np.abs(out[bad]) > 2]
        np.multiply(out, STD, out=out)

    run(fill, N)


@pytest.mark.benchmark(group="truncated_normal")
def test_truncated_normal_torch(run, out, torch):
    t = torch.from_numpy(out)
    run(lambda: torch.nn.init.trunc_normal_(t, std=STD, a=-2 * STD, b=2 * STD), N)


# bfloat16 normal -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def out_bf16():
    return buffer(N, ml_dtypes.bfloat16)


@pytest.mark.benchmark(group="normal-bfloat16")
def test_normal_bfloat16_weightfill(run, out_bf16):
    run(lambda: wf.normal(seed=1, out=out_bf16), N)


@pytest.mark.benchmark(group="normal-bfloat16")
def test_normal_bfloat16_numpy(run, out_bf16, out, rng):
    """numpy draws float32 only: draw into a scratch array, cast."""

    def fill():
        rng.standard_normal(dtype=np.float32, out=out)
        out_bf16[...] = out

    run(fill, N)


@pytest.mark.benchmark(group="normal-bfloat16")
def test_normal_bfloat16_torch(run, out_bf16, torch):
    t = torch.from_numpy(out_bf16.view(np.uint16)).view(torch.bfloat16)
    run(lambda: t.normal_(), N)


# new array against np.empty + out= -------------------------------------------------------------


@pytest.mark.benchmark(group="new-array")
def test_new_array_weightfill(run):
    run(lambda: wf.normal(N, seed=1), N)


@pytest.mark.benchmark(group="new-array")
def test_new_array_numpy_empty_then_fill(run):
    run(lambda: wf.normal(seed=1, out=np.empty(N, np.float32)), N)
