"""Argument helpers and the matrix and index builders both scheme families share."""

from __future__ import annotations

import functools
import math
import numbers
import os
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from .. import _engine, _haar, _truncnorm
from .._args import (
    FLOAT_DTYPES,
    OverflowParam,
    RegionLike,
    ShapeLike,
    Target,
    as_float,
    finite_param,
    normalize_shape,
    out_shape,
    resolve_target,
)
from ..distributions import normal
from ..fans import AxisLike, check_layout, compute_fans

Stream = Union[int, str]
DTypeLike = Any

# ----------------------------------------------------------------------------------------------
# Arguments


# The float dtypes the Python-side schemes produce, in the order their errors list them.
_DTYPES = (FLOAT_DTYPES[2], FLOAT_DTYPES[3], FLOAT_DTYPES[0], FLOAT_DTYPES[1])


def _full_shape(shape: Optional[ShapeLike], out: object, region: object) -> tuple[int, ...]:
    """The full tensor's shape: ``shape``, or ``out``'s when only ``out`` is given."""
    if shape is not None:
        return normalize_shape(shape)
    if out is None:
        raise TypeError("shape is required when out is not given")
    if region is not None:
        raise TypeError("shape (of the full tensor) is required when region is given")
    return normalize_shape(out_shape(out))


def _target(shape: Optional[ShapeLike], dtype: DTypeLike, out: object,
            region: object) -> Target:
    """Where a Python-side (deterministic or orthogonal) result goes."""
    return resolve_target(shape, dtype, out, region, _engine.empty, _DTYPES)


def _slices(tgt: Target) -> tuple[slice, ...]:
    return tuple(slice(s, s + n) for s, n in zip(tgt.start, tgt.length))


def _place(tgt: Target, index: Sequence[np.ndarray], values: Union[float, np.ndarray]) -> None:
    """Writes ``values`` at the full-tensor positions ``index`` that fall in the region of
    ``tgt``, zeros everywhere else."""
    tgt.out[...] = 0
    if not index or index[0].size == 0:
        return
    keep = np.ones(index[0].shape, bool)
    for idx, s, n in zip(index, tgt.start, tgt.length):
        keep &= (idx >= s) & (idx < s + n)
    local = tuple(idx[keep] - s for idx, s in zip(index, tgt.start))
    vals = np.asarray(values, np.float64)
    tgt.out[local] = (vals[keep] if vals.ndim else vals).astype(tgt.dtype)


def _real(value: object, name: str) -> float:
    if type(value) is float and math.isfinite(value):  # fast path
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, not {type(value).__name__}")
    v = as_float(value, name)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def _nonnegative(value: object, name: str) -> float:
    v = _real(value, name)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


def _derived(param: str, value: object, fill: Callable[..., np.ndarray], *args: Any,
             **kw: Any) -> np.ndarray:
    """``fill(*args, **kw)``, whose std or bounds were derived from the scheme's ``param``: an
    overflow of the dtype is reported as that parameter's."""
    try:
        return fill(*args, **kw)
    except OverflowParam as err:
        raise ValueError(f"{param}={value!r} is too large for the dtype: {err}") from None


# ----------------------------------------------------------------------------------------------
# Memoized derivations

# What plain scheme calls derived, by the call's arguments: key -> (distribution, its
# parameters) of the engine fill they make. A model's tensors share few shapes, and deriving
# fans, gain and bound in Python costs 2-3 us a call, more than filling a small tensor. A key is
# _engine.memo_key(scheme, shape, *arguments): plain atoms with their types, since True == 1 ==
# 1.0 would otherwise let a bool reach an int's entry. The shape alone may equal one of other
# types ((4.0, 4) == (4, 4)): the fill accepts only exact ints equal to out's shape, so such a
# call still goes through the full checks. An entry goes in after its derivation passed every
# check; the dict is emptied at 4096 entries. The schemes' FastEntry objects (_engine.fast_entry)
# build the same keys in C, look them up (fast_fill.cpp, memo_whole) and fill on a hit; a
# truncated normal's constants come from _truncnorm's record of checked arguments.
_MEMO: dict[tuple[object, ...], tuple[int, tuple[float, ...]]] = {}
_engine.memo_setup(_MEMO, _truncnorm._KNOWN)


def _memo(key: Optional[tuple[object, ...]], kind: int, *params: float) -> None:
    """Records a derivation that passed its checks: the engine fill ``kind`` (an _engine kind)
    with the distribution's parameters (low, high / mean, std [, lower, upper]). Nothing when
    ``key`` is None."""
    if key is None:
        return
    if len(_MEMO) >= 4096:
        _MEMO.clear()
    try:
        _MEMO[key] = (kind, params)
    except TypeError:
        pass


def _choice(value: object, name: str, allowed: Sequence[str]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    v = value.lower()
    if v not in allowed:
        raise ValueError(f"{name} {value!r} is not supported; use one of {', '.join(allowed)}")
    return v


def _torch_fans(full: tuple[int, ...], layout: str, in_axis: Optional[AxisLike],
                out_axis: Optional[AxisLike], batch_axis: AxisLike,
                transposed: bool) -> tuple[int, int]:
    if in_axis is None and out_axis is None and _is_empty_axes(batch_axis) \
            and type(layout) is str and type(transposed) is bool:
        return _layout_fans(full, layout, transposed)
    return compute_fans(full, layout=layout, in_axis=in_axis, out_axis=out_axis,
                        batch_axis=batch_axis, transposed=transposed)


@functools.lru_cache(maxsize=1024)
def _layout_fans(full: tuple[int, ...], layout: str, transposed: bool) -> tuple[int, int]:
    """compute_fans with a layout's default axes, cached: a model's layers share few shapes,
    and the general rule costs microseconds per tensor. Callers pass a normalised shape, a str
    and a bool only, so equal keys mean equal arguments (an int 1 would equal True)."""
    return compute_fans(full, layout=layout, transposed=transposed)


def _keras_fans(full: tuple[int, ...], layout: Optional[str], in_axis: AxisLike,
                out_axis: AxisLike, batch_axis: AxisLike, transposed: bool) -> tuple[int, int]:
    """Fans for the Keras/JAX family: with the default axes, Keras's rule (which agrees with
    JAX's on 2-D and larger shapes and also takes 0-D and 1-D ones); with other axes or batch
    axes, JAX's rule; with ``layout``, that layout's rule."""
    default_axes = _is_axis(in_axis, -2) and _is_axis(out_axis, -1)
    if layout is not None:
        if not default_axes:
            raise ValueError("pass either layout or in_axis/out_axis, not both")
        return compute_fans(full, layout=layout, batch_axis=batch_axis, transposed=transposed)
    if default_axes and _is_empty_axes(batch_axis):
        if type(transposed) is bool:
            return _layout_fans(full, "keras", transposed)
        return compute_fans(full, layout="keras", transposed=transposed)
    return compute_fans(full, layout="jax", in_axis=in_axis, out_axis=out_axis,
                        batch_axis=batch_axis, transposed=transposed)


def _is_axis(value: object, axis: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value == axis


def _is_empty_axes(value: object) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 0


@functools.lru_cache(maxsize=None)
def _physical_memory() -> float:
    """Bytes of physical memory (infinite where the OS does not say)."""
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return math.inf


def _orthogonal_matrix(rows: int, cols: int, seed: Optional[int], stream: Stream, scale: float,
                       dtype: np.dtype, into: Optional[np.ndarray] = None) -> np.ndarray:
    """``scale`` times a Haar-distributed (rows, cols) matrix with orthonormal rows (rows <=
    cols) or columns, computed in float64 for a float64 ``dtype`` and in float32 otherwise,
    from the normal draw of that precision. ``into``: a C-contiguous (rows, cols) array of the
    compute dtype to write the result to (else a new one)."""
    ft = np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)
    need = rows * cols * ft.itemsize * (1 if into is not None else 2)  # the draw and the result
    if need > _physical_memory():
        raise ValueError(f"shape: the whole {rows} x {cols} matrix is needed and takes "
                         f"{need / 2**30:.1f} GiB in {ft}, more than this machine's "
                         f"{_physical_memory() / 2**30:.1f} GiB of memory")
    a = normal((rows, cols), seed=seed, stream=stream, dtype=ft)
    w = np.empty((rows, cols), ft) if into is None else into
    if rows >= cols:
        _haar.orthonormal_columns(a, w, scale)
    else:  # W^T has orthonormal columns: transposed views, no copies
        _haar.orthonormal_columns(a.T, w.T, scale)
    return w


def _diagonal(shape: Optional[ShapeLike], value: float, layout: str, dtype: DTypeLike,
              out: Optional[np.ndarray], region: Optional[RegionLike], name: str,
              what: str = "value") -> np.ndarray:
    check_layout(layout)
    tgt = _target(shape, dtype, out, region)
    value = finite_param(value, what, tgt.dtype)
    if len(tgt.shape) != 2:
        got = "shape" if shape is not None else "out of shape"
        raise ValueError(f"{name} needs a 2-D shape, got {got} {tgt.shape}")
    (r0, c0), (nr, nc) = tgt.start, tgt.length
    lo, hi = max(r0, c0), min(r0 + nr, c0 + nc)
    i = np.arange(lo, max(lo, hi))
    _place(tgt, (i, i), value)
    return tgt.result


def _conv_axes(full: tuple[int, ...], layout: str) -> tuple[int, int, tuple[int, ...]]:
    """(out axis, in axis, kernel axes) of a convolution weight in ``layout``."""
    n = len(full)
    if layout == "torch":
        return 0, 1, tuple(range(2, n))
    return n - 1, n - 2, tuple(range(n - 2))


def _conv_index(full: tuple[int, ...], layout: str, outs: np.ndarray, ins: np.ndarray,
                centre: Sequence[int]) -> tuple[np.ndarray, ...]:
    """Index arrays (one per axis) of positions (out=outs[k], in=ins[k], kernel=centre)."""
    o_ax, i_ax, k_axes = _conv_axes(full, layout)
    index: list[np.ndarray] = [np.empty(0, np.intp)] * len(full)
    index[o_ax], index[i_ax] = outs, ins
    for ax, c in zip(k_axes, centre):
        index[ax] = np.full(outs.shape, c, np.intp)
    return tuple(index)

