"""The one module that imports the compiled engine (``weightfill._core``).

Everything above this module passes validated, normalised arguments; everything below it is
C++. Keeping the boundary in one place keeps the rest of the package importable and testable
as plain Python.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import numpy as np

from . import _core
from ._args import BFLOAT16

Dist = _core.Dist
_DTYPE_CODES = {
    np.dtype(np.uint32): _core.DType.u32,
    np.dtype(np.float32): _core.DType.f32,
    np.dtype(np.float64): _core.DType.f64,
    np.dtype(np.float16): _core.DType.f16,
    BFLOAT16: _core.DType.bf16,
}


def empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A new C-contiguous, 64-byte aligned, writable array that owns its memory."""
    # NumPy's own limit (zero-length axes aside), checked before anything is allocated.
    nbytes = math.prod(n for n in shape if n) * dtype.itemsize
    if nbytes >= 1 << 63:
        raise ValueError(f"shape {shape} of {dtype} needs {nbytes} bytes, more than an array "
                         "can address (2**63 - 1)")
    try:
        return _core.empty_aligned(list(shape), dtype)
    except MemoryError:
        raise MemoryError(f"cannot allocate {nbytes} bytes for shape {shape} of {dtype}") from None


def fill(
    dist: _core.Dist,
    dtype: np.dtype,
    a: float,
    b: float,
    seed: int,
    stream: int,
    shape: tuple[int, ...],
    start: tuple[int, ...],
    length: tuple[int, ...],
    out: np.ndarray,
    block_base: int = 0,
    extra: tuple[float, ...] = (),
) -> None:
    """Writes region (start, length) of the full tensor of ``shape`` into ``out``.

    Element i of the full tensor takes its bits from Philox block ``block_base + i // epb``
    (mod 2**64), epb being 4 for 32-bit and 2 for 64-bit outputs.

    Releases the GIL for the fill and raises KeyboardInterrupt (or whatever a signal handler
    raises) within a few milliseconds of a signal.
    """
    if dtype.itemsize == 2:
        out = out.view(np.uint16)  # the buffer protocol has no format for bfloat16
    _core.fill(dist, _DTYPE_CODES[dtype], a, b, seed, stream, block_base,
               list(shape), list(start), list(length), out, list(extra))


def fill_constant(out: np.ndarray, value: np.ndarray) -> None:
    """Sets every element of the C-contiguous ``out`` to the 0-d array ``value`` of ``out``'s
    dtype, bit for bit, over the library's threads (a plain memory fill)."""
    uint = np.dtype(f"u{out.dtype.itemsize}")
    _core.fill_pattern(out.view(uint), int(value.view(uint)))


def sparse(seed: int, stream: int, std: float, dtype: np.dtype, shape: tuple[int, ...],
           axis: int, sampled: int, sampled_are_zero: bool, start: tuple[int, ...],
           length: tuple[int, ...], out: np.ndarray, method: str = "floyd") -> None:
    """Fills the region ``out`` of a sparse matrix (stream-spec 3.8, or 3.9 for "keys")."""
    if dtype.itemsize == 2:
        out = out.view(np.uint16)
    _core.sparse(seed, stream, std, _DTYPE_CODES[dtype], shape[0], shape[1], axis, sampled,
                 sampled_are_zero, start[0], length[0], start[1], length[1], out,
                 SPARSE_METHODS[method])


#: sparse position mappings by name: stream-spec 3.8 ("floyd") and 3.9 ("keys").
SPARSE_METHODS = {"floyd": 0, "keys": 1}


set_num_threads = _core.set_num_threads
get_num_threads = _core.get_num_threads
thread_backend = _core.thread_backend
isa = _core.isa
available_isas = _core.available_isas
force_isa = _core.force_isa


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Fills requested inside the block (``fill``, ``fill_constant``) are recorded and run
    together on leaving it, as one fill plan (docs/architecture.md); nothing runs if the block
    raises. Placeholder: runs each fill at once until the plan engine lands."""
    yield
