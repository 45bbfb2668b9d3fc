"""Framework tensors as ``out=`` buffers, without importing any framework.

A torch tensor can only exist if the caller imported torch, so ``sys.modules`` tells whether
an ``out`` object may be one (einops' ``_backends`` detects frameworks the same way);
weightfill's import stays free of torch either way.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

import ml_dtypes
import numpy as np

__all__ = ["array_view", "tensor_shape", "torch_storage_view"]


def torch_storage_view(t: Any) -> np.ndarray:
    """A NumPy array over the memory of the contiguous CPU torch tensor ``t`` (no copy),
    unchecked: callers have checked ``t`` (:func:`array_view` does; weightfill.torch checks
    its own tensors).

    ``detach()`` shares the storage and keeps autograd out of the write, as torch.nn.init's
    ``no_grad`` fills do, so a parameter with ``requires_grad`` is filled without complaint
    (it is skipped otherwise: it costs a few hundred ns). ``Tensor.numpy()`` has no bfloat16:
    that is viewed as int16 and re-typed as ml_dtypes.bfloat16, the same bits.
    """
    d = t.detach() if t.requires_grad else t
    torch = sys.modules["torch"]
    if d.dtype is torch.bfloat16:
        return d.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return d.numpy()  # type: ignore[no-any-return]


_TORCH_FLOATS: frozenset[Any] = frozenset()


def _torch_view(t: Any, torch: Any) -> np.ndarray:
    """:func:`torch_storage_view` of ``t`` after checking it can be written as ``out``; every
    error names ``out``."""
    global _TORCH_FLOATS
    if not _TORCH_FLOATS:
        _TORCH_FLOATS = frozenset((torch.float32, torch.float64, torch.float16, torch.bfloat16))
    if t.layout != torch.strided:
        raise TypeError(f"out has layout {t.layout}; weightfill fills dense (torch.strided) "
                        "tensors")
    if not t.is_cpu:
        raise ValueError(f"out is on device {t.device}; weightfill fills CPU tensors (fill on "
                         "the CPU and copy with .to(device))")
    if t.dtype not in _TORCH_FLOATS:
        raise TypeError(f"out has dtype {t.dtype}, expected a floating-point tensor (float32, "
                        "float64, float16 or bfloat16)")
    if not t.is_contiguous():
        raise ValueError("out must be a contiguous tensor (for channels_last or a strided "
                         "view, fill a contiguous tensor and copy it in, or use "
                         "weightfill.torch.init)")
    if t.is_neg():  # only a float tensor gets here: is_conj() needs a complex one
        raise ValueError("out is a lazily negated view (torch._neg_view); resolve it first")
    return torch_storage_view(t)


def array_view(out: object) -> Optional[np.ndarray]:
    """``out`` as a NumPy array over the same memory if it is a framework tensor weightfill
    knows (torch), else None."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(out, torch.Tensor):
        return _torch_view(out, torch)
    return None


def tensor_shape(out: object) -> Optional[tuple[int, ...]]:
    """The shape of ``out`` if it is a framework tensor weightfill knows, else None; no checks
    (:func:`array_view` makes them when the tensor is written)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(out, torch.Tensor):
        return tuple(out.shape)
    return None
