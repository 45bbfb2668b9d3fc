"""Torch tensors as weightfill buffers: dtype names, NumPy views of CPU storage, allocation."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import _engine
from .._args import BFLOAT16
from .._backends import torch_storage_view

__all__ = ["numpy_dtype", "dtype_name", "numpy_view", "allocate", "check_fillable"]

_NUMPY = {
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
    torch.float16: np.dtype(np.float16),
    torch.bfloat16: BFLOAT16,
    torch.int64: np.dtype(np.int64),
    torch.int32: np.dtype(np.int32),
}
_NAMES = {
    torch.float32: "float32",
    torch.float64: "float64",
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
    torch.int64: "int64",
    torch.int32: "int32",
}
FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def dtype_name(dtype: torch.dtype, what: str) -> str:
    """The manifest's name of a torch dtype, or a TypeError naming ``what``."""
    try:
        return _NAMES[dtype]
    except KeyError:
        raise TypeError(f"{what}: dtype {dtype} is not supported (float32, float64, float16, "
                        "bfloat16; int64/int32 for constant buffers)") from None


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    return _NUMPY[dtype]


def numpy_view(t: torch.Tensor) -> np.ndarray:
    """A NumPy array over the same memory as the contiguous CPU tensor ``t`` (no copy); a
    bfloat16 tensor gives an ml_dtypes.bfloat16 array with the same bits, and a parameter with
    ``requires_grad`` is written without autograd recording an operation. The one
    implementation is :func:`weightfill._backends.torch_storage_view`, which ``out=`` uses too.
    """
    return torch_storage_view(t)


def allocate(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A new CPU tensor on weightfill's allocator, contents undefined and untouched (the threads
    that fill it fault it in): 64-byte aligned, 2 MiB aligned from 4 MiB up. The tensor keeps
    the NumPy array that owns the memory alive.

    Not advised for transparent huge pages (the system's default applies): on the development
    VM (2 vCPUs, THP on request), ``materialize`` of GPT-2-medium (1354 MiB) in a fresh process
    took 0.82-1.12 s on 4 KiB pages and 2.4-4.6 s with MADV_HUGEPAGE, the kernel's time 0.6-0.8
    s against 2.5-2.9 s (three alternating runs each): there, new huge pages cost far more to
    fault in than the same memory in 4 KiB pages."""
    nd = numpy_dtype(dtype)
    if nd == BFLOAT16:
        return torch.from_numpy(_engine.empty(shape, np.dtype(np.int16), huge_pages=False)
                                ).view(torch.bfloat16)
    return torch.from_numpy(_engine.empty(shape, nd, huge_pages=False))


def check_fillable(t: Any, what: str) -> None:
    """TypeError/ValueError naming ``what`` unless ``t`` is a tensor weightfill can fill."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, not {type(t).__name__}")
    if t.dtype not in FLOATS:
        raise TypeError(f"{what}: dtype {t.dtype} is not a floating-point dtype weightfill "
                        "fills (float32, float64, float16, bfloat16)")
