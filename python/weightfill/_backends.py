"""Framework tensors as ``out=`` buffers, without importing any framework.

A torch tensor can only exist if the caller imported torch, so ``sys.modules`` tells whether
an ``out`` object may be one; weightfill's import stays free of torch either way.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

import ml_dtypes
import numpy as np


def _torch_view(t: Any, torch: Any) -> np.ndarray:
    """A NumPy array over the storage of the CPU torch tensor ``t`` (no copy), or an error
    naming ``out``."""
    if t.layout != torch.strided:
        raise TypeError(f"out: a {t.layout} torch tensor cannot be filled; pass a dense tensor")
    if t.device.type != "cpu":
        raise ValueError(f"out is on device {t.device}; weightfill fills CPU tensors (fill on "
                         "the CPU and copy with .to(device))")
    if not t.is_floating_point():
        raise TypeError(f"out has dtype {t.dtype}, expected a floating-point tensor (float32, "
                        "float64, float16 or bfloat16)")
    if not t.is_contiguous():
        raise ValueError("out must be a contiguous tensor (for channels_last, fill "
                         "t.contiguous() and copy back, or use weightfill.torch.init)")
    if t.is_conj() or t.is_neg():
        raise ValueError("out is a lazily conjugated or negated view; resolve it first")
    # detach() shares the storage and leaves autograd out of the write, as torch.nn.init's
    # no_grad fills do; .numpy() has no bfloat16, so that is viewed as int16 with the same bits.
    d = t.detach()
    if d.dtype == torch.bfloat16:
        return d.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    if d.dtype not in (torch.float32, torch.float64, torch.float16):
        raise TypeError(f"out has dtype {t.dtype}, expected float32, float64, float16 or "
                        "bfloat16")
    return d.numpy()


def array_view(out: object) -> Optional[np.ndarray]:
    """``out`` as a NumPy array over the same memory if it is a framework tensor weightfill
    knows (torch), else None."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(out, torch.Tensor):
        return _torch_view(out, torch)
    return None
