"""Constant fills: ``zeros``, ``ones``, ``constant``."""

from __future__ import annotations

import math
import numbers
from typing import Optional

import numpy as np

from .. import _engine
from .._args import (
    RegionLike,
    ShapeLike,
    as_float,
    largest,
)
from ._common import (
    DTypeLike,
    _target,
)

_CONSTANT = _engine.CONSTANT


@_engine.fast_entry(_CONSTANT, a=0.0, b=0.0, seed=0, stream=0)
def zeros(
    shape: Optional[ShapeLike] = None,
    *,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    region: Optional[RegionLike] = None,
) -> np.ndarray:
    """Zeros: bias initialization, BatchNorm/LayerNorm beta.

    Parameters
    ----------
    shape : int or tuple of int, optional
        Shape of the full tensor; may be omitted when ``out`` is given without ``region``.
    dtype : float16, bfloat16, float32 (default, or ``out.dtype``) or float64
    out : numpy.ndarray or torch.Tensor, optional
        Writable C-contiguous array of the region's shape, filled in place and returned; or a
        contiguous CPU torch tensor (a ``requires_grad`` parameter too), written through its
        own storage and returned itself, with the same bits as an array.
    region : tuple of slices, optional
        Step-1 slices of ``shape``; the result has the region's shape.

    Returns
    -------
    numpy.ndarray or torch.Tensor

    Reproducibility
    ---------------
    Deterministic; no random draws.
    """
    return constant(shape, 0.0, dtype=dtype, out=out, region=region)


@_engine.fast_entry(_CONSTANT, a=1.0, b=0.0, seed=0, stream=0)
def ones(
    shape: Optional[ShapeLike] = None,
    *,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    region: Optional[RegionLike] = None,
) -> np.ndarray:
    """Ones: BatchNorm/LayerNorm gamma. Arguments as in :func:`zeros`.

    Reproducibility
    ---------------
    Deterministic; no random draws.
    """
    return constant(shape, 1.0, dtype=dtype, out=out, region=region)


@_engine.fast_entry(_CONSTANT, a="value", b=0.0, seed=0, stream=0)
def constant(
    shape: Optional[ShapeLike] = None,
    value: float = 0.0,
    *,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    region: Optional[RegionLike] = None,
) -> np.ndarray:
    """Every element equal to ``value`` (rounded once to ``dtype``), written at memory speed.

    Parameters
    ----------
    shape, dtype, out, region
        As in :func:`zeros`.
    value : float
        A real number; infinities and NaN are allowed, a finite value that overflows
        ``dtype`` is an error.

    Returns
    -------
    numpy.ndarray or torch.Tensor

    Reproducibility
    ---------------
    Deterministic; no random draws.
    """
    if type(value) is not float and type(value) is not int and (
            isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)):
        raise TypeError(f"value must be a real number, not {type(value).__name__}")
    tgt = _target(shape, dtype, out, region)
    v = as_float(value, "value")
    if abs(v) <= largest(tgt.dtype):  # cannot overflow
        rounded = np.asarray(v, tgt.dtype)
    else:
        with np.errstate(over="ignore"):
            rounded = np.asarray(v, tgt.dtype)
        if math.isfinite(v) and not np.isfinite(rounded.astype(np.float64)):
            raise ValueError(f"value={v} overflows {tgt.dtype}")
    _engine.fill_constant(tgt.out, rounded)
    return tgt.result

