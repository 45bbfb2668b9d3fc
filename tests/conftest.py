"""Shared fixtures: run a test under every instruction set this CPU has, and restore the
engine's settings afterwards."""

from __future__ import annotations

import pytest
import weightfill as wf
from weightfill import _engine

ISAS = _engine.available_isas()


@pytest.fixture(autouse=True)
def _restore_engine_settings():
    isa, threads = wf.isa(), wf.get_num_threads()
    yield
    _engine.force_isa(isa)
    wf.set_num_threads(threads)


@pytest.fixture(params=ISAS)
def each_isa(request):
    """Runs the test once per available kernel (scalar, avx2, avx512 where the CPU has them)."""
    _engine.force_isa(request.param)
    return request.param
