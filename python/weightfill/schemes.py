"""Initialization schemes, each with the exact meaning of its namesake.

PyTorch's names (``xavier_*``, ``kaiming_*``, ``orthogonal``, ``eye``, ``dirac``) behave like
``torch.nn.init``'s and read shapes as ``(out, in, *kernel)``; Keras and JAX's names
(``variance_scaling``, ``glorot_*``, ``he_*``, ``lecun_*``, ``identity``, ``delta_orthogonal``)
behave like ``keras.initializers``/``jax.nn.initializers`` and read shapes channels-last,
``(*kernel, in, out)``. The same name can mean different things in different frameworks: torch's
``kaiming_normal`` is an untruncated normal, Keras/JAX's ``he_normal`` a normal truncated at two
standard deviations and rescaled. docs/schemes.md has the table.

Every random scheme is one call of an engine fill (``uniform``, ``normal``,
``truncated_normal``) with ``seed``, ``stream``, ``dtype``, ``out`` and ``region`` passed
through, so it inherits the counter contract: element ``i`` depends only on (seed, stream, i,
distribution, parameters, dtype), and ``region`` gives exactly that sub-block of the full
tensor. Fans always come from the full shape. ``orthogonal`` and ``delta_orthogonal`` are the
exceptions: they turn a normal draw into an orthogonal matrix with BLAS matrix products (see
their notes).
"""

from __future__ import annotations

import functools
import math
import numbers
import os
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from . import _engine, _haar
from ._args import (
    FLOAT_DTYPES,
    OverflowParam,
    RegionLike,
    ShapeLike,
    Target,
    _as_index,
    finite_param,
    largest,
    normalize_shape,
    out_shape,
    resolve_target,
)
from .distributions import normal, truncated_normal, uniform
from .fans import AxisLike, check_layout, compute_fans
from .gains import Nonlinearity, calculate_gain
from .streams import normalize_seed, normalize_stream

__all__ = [
    "zeros",
    "ones",
    "constant",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "orthogonal",
    "eye",
    "dirac",
    "variance_scaling",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "identity",
    "delta_orthogonal",
    "TRUNCATED_NORMAL_STD",
]

Stream = Union[int, str]
DTypeLike = Any

#: Standard deviation of a standard normal truncated to [-2, 2]; Keras and JAX divide the
#: target standard deviation by it so the truncated draw has the target variance.
TRUNCATED_NORMAL_STD = 0.87962566103423978


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
    if type(value) is float or type(value) is int:  # fast path
        v = float(value)
        if math.isfinite(v):
            return v
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, not {type(value).__name__}")
    v = float(value)
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


# ----------------------------------------------------------------------------------------------
# Constant fills


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
    v = float(value)
    if abs(v) <= largest(tgt.dtype):  # cannot overflow
        rounded = np.asarray(v, tgt.dtype)
    else:
        with np.errstate(over="ignore"):
            rounded = np.asarray(v, tgt.dtype)
        if math.isfinite(v) and not np.isfinite(rounded.astype(np.float64)):
            raise ValueError(f"value={v} overflows {tgt.dtype}")
    _engine.fill_constant(tgt.out, rounded)
    return tgt.result


# ----------------------------------------------------------------------------------------------
# PyTorch semantics


def xavier_uniform(
    shape: Optional[ShapeLike] = None,
    gain: float = 1.0,
    *,
    layout: str = "torch",
    in_axis: Optional[AxisLike] = None,
    out_axis: Optional[AxisLike] = None,
    batch_axis: AxisLike = (),
    transposed: bool = False,
    seed: Optional[int],
    stream: Stream = 0,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    region: Optional[RegionLike] = None,
) -> np.ndarray:
    """Xavier/Glorot uniform, as ``torch.nn.init.xavier_uniform_``.

    ``U(-a, a)`` with ``a = gain * sqrt(2 / (fan_in + fan_out)) * sqrt(3)``, so
    ``Var(W) = gain**2 * 2 / (fan_in + fan_out)``.

    Parameters
    ----------
    shape : int or tuple of int, optional
        Shape of the full tensor, ``(out, in, *kernel)`` in the default layout; may be omitted
        when ``out`` is given without ``region``.
    gain : float
        Finite, >= 0; e.g. ``calculate_gain("tanh")``.
    layout, in_axis, out_axis, batch_axis, transposed
        How fans are read from the shape: see :func:`weightfill.fans.compute_fans`.
    seed : int in [0, 2**64), or None for fresh OS entropy
    stream : int in [0, 2**64), or str (a parameter name)
    dtype : float32 (default, or ``out.dtype``) or float64, or any dtype the engine takes
    out : numpy.ndarray or torch.Tensor, optional
        Filled in place and returned (see :func:`zeros`).
    region : tuple of slices, optional
        Produce only this sub-block of the full tensor; fans come from the full shape.

    Returns
    -------
    numpy.ndarray or torch.Tensor

    Reproducibility
    ---------------
    Bit for bit ``weightfill.uniform(shape, -a, a, seed=seed, stream=stream, dtype=dtype)``:
    the same on every machine, thread count and region. torch's own values come from torch's
    generator and are not reproduced; the distribution is.
    """
    g = _nonnegative(gain, "gain")
    full = _full_shape(shape, out, region)
    fan_in, fan_out = _torch_fans(full, layout, in_axis, out_axis, batch_axis, transposed)
    a = 0.0
    if math.prod(full):
        std = g * math.sqrt(2.0 / float(fan_in + fan_out))
        a = math.sqrt(3.0) * std
    return _derived("gain", gain, uniform, full, -a, a, seed=seed, stream=stream, dtype=dtype,
                    out=out, region=region)


def xavier_normal(
    shape: Optional[ShapeLike] = None,
    gain: float = 1.0,
    *,
    layout: str = "torch",
    in_axis: Optional[AxisLike] = None,
    out_axis: Optional[AxisLike] = None,
    batch_axis: AxisLike = (),
    transposed: bool = False,
    seed: Optional[int],
    stream: Stream = 0,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    region: Optional[RegionLike] = None,
) -> np.ndarray:
    """Xavier/Glorot normal, as ``torch.nn.init.xavier_normal_``: an untruncated normal.

    ``N(0, std**2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``. (Keras/JAX's
    ``glorot_normal`` truncates at two standard deviations instead.)

    Parameters
    ----------
    shape, gain, layout, in_axis, out_axis, batch_axis, transposed, seed, stream, dtype, out, region
        As in :func:`xavier_uniform`.

    Returns
    -------
    numpy.ndarray or torch.Tensor

    Reproducibility
    ---------------
    Bit for bit ``weightfill.normal(shape, 0, std, seed=seed, stream=stream, dtype=dtype)``.
    """
    g = _nonnegative(gain, "gain")
    full = _full_shape(shape, out, region)
    fan_in, fan_out = _torch_fans(full, layout, in_axis, out_axis, batch_axis, transposed)
    std = g * math.sqrt(2.0 / float(fan_in + fan_out)) if math.prod(full) else 0.0
    return _derived("gain", gain, normal, full, 0.0, std, seed=seed, stream=stream, dtype=dtype,
                    out=out, region=region)


def _kaiming_std(full: tuple[int, ...], a: object, mode: object, nonlinearity: Nonlinearity,
                 layout: str, in_axis: Optional[AxisLike], out_axis: Optional[AxisLike],
                 batch_axis: AxisLike, transposed: bool) -> float:
    if type(a) is not float and type(a) is not int and (
            isinstance(a, (bool, np.bool_)) or not isinstance(a, numbers.Real)):
        raise TypeError(f"a must be a real number, not {type(a).__name__}")
    # torch ignores ``a`` unless the nonlinearity is leaky_relu, even when it is NaN; a
    # non-finite slope is always a caller's bug, so it is refused whatever the nonlinearity.
    if not math.isfinite(a):
        raise ValueError(f"a must be finite, got {a!r}")
    m = _choice(mode, "mode", ("fan_in", "fan_out"))
    if type(nonlinearity) is str:
        gain = _named_gain(nonlinearity, float(a))
    else:
        gain = calculate_gain(nonlinearity, float(a))
    fan_in, fan_out = _torch_fans(full, layout, in_axis, out_axis, batch_axis, transposed)
    if not math.prod(full):
        return 0.0
    fan = fan_in if m == "fan_in" else fan_out
    return gain / math.sqrt(fan)


# calculate_gain of a name, cached: keys are a str and a float, compared by value.
_named_gain = functools.lru_cache(maxsize=256)(calculate_gain)


def kaiming_uniform(
    shape: Optional[ShapeLike] = None,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: Nonlinearity = "leaky_relu",
    *,
    layout: str = "torch",
    in_axis: Optional[AxisLike] = None,
    out_axis: Optional[AxisLike] = None,
    batch_axis: AxisLike = (),
    transposed: bool = False,
    seed: Optional[int],
    stream: Stream = 0,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    region: Optional[RegionLike] = None,
) -> np.ndarray:
    """Kaiming/He uniform, as ``torch.nn.init.kaiming_uniform_``.

    ``U(-bound, bound)`` with ``bound = sqrt(3) * gain / sqrt(fan)``, ``gain =
    calculate_gain(nonlinearity, a)`` and ``fan`` = fan_in or fan_out (``mode``). With the
    defaults (leaky_relu, ``a = 0``) the gain is ``sqrt(2)``: ``Var(W) = 2 / fan_in``.
    (``torch.nn.Linear`` and ``Conv*d`` reset their weights with ``a = sqrt(5)``, which gives
    ``bound = 1 / sqrt(fan_in)``.)

    Parameters
    ----------
    shape, layout, in_axis, out_axis, batch_axis, transposed, seed, stream, dtype, out, region
        As in :func:`xavier_uniform`.
    a : float
        Negative slope of the rectifier (used with ``"leaky_relu"`` only, as in torch).
    mode : {"fan_in", "fan_out"}
        fan_in keeps the forward activations' variance, fan_out the backward gradients'.
    nonlinearity : str or callable
        A name from :func:`weightfill.gains.calculate_gain`, or the activation function
        itself (its second-moment gain).

    Returns
    -------
    numpy.ndarray or torch.Tensor

    Reproducibility
    ---------------
    Bit for bit ``weightfill.uniform(shape, -bound, bound, seed=seed, stream=stream,
    dtype=dtype)``.
    """
    full = _full_shape(shape, out, region)
    std = _kaiming_std(full, a, mode, nonlinearity, layout, in_axis, out_axis, batch_axis,
                       transposed)
    bound = math.sqrt(3.0) * std
    return _derived("nonlinearity", nonlinearity, uniform, full, -bound, bound, seed=seed,
                    stream=stream, dtype=dtype, out=out, region=region)


def kaiming_normal(
    shape: Optional[ShapeLike] = None,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: Nonlinearity = "leaky_relu",
    *,
    layout: str = "torch",
    in_axis: Optional[AxisLike] = None,
    out_axis: Optional[AxisLike] = None,
    batch_axis: AxisLike = (),
    transposed: bool = False,
    seed: Optional[int],
    stream: Stream = 0,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    region: Optional[RegionLike] = None,
) -> np.ndarray:
    """Kaiming/He normal, as ``torch.nn.init.kaiming_normal_``: an untruncated normal.

    ``N(0, std**2)`` with ``std = gain / sqrt(fan)``. (Keras/JAX's ``he_normal`` truncates at
    two standard deviations and divides by 0.8796; this one does not.)

    Parameters
    ----------
    shape, a, mode, nonlinearity, layout, in_axis, out_axis, batch_axis, transposed
        As in :func:`kaiming_uniform`.
    seed, stream, dtype, out, region
        As in :func:`xavier_uniform`.

    Returns
    -------
    numpy.ndarray or torch.Tensor

    Reproducibility
    ---------------
    Bit for bit ``weightfill.normal(shape, 0, std, seed=seed, stream=stream, dtype=dtype)``.
    """
    full = _full_shape(shape, out, region)
    std = _kaiming_std(full, a, mode, nonlinearity, layout, in_axis, out_axis, batch_axis,
                       transposed)
    return _derived("nonlinearity", nonlinearity, normal, full, 0.0, std, seed=seed,
                    stream=stream, dtype=dtype, out=out, region=region)


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


def orthogonal(
    shape: Optional[ShapeLike] = None,
    gain: float = 1.0,
    *,
    layout: str = "torch",
    seed: Optional[int],
    stream: Stream = 0,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    region: Optional[RegionLike] = None,
) -> np.ndarray:
    """A (semi-)orthogonal matrix times ``gain``, as ``torch.nn.init.orthogonal_`` (Saxe et
    al., 2013).

    The tensor is viewed as a matrix of ``rows = shape[0]`` and ``cols = prod(shape[1:])``
    (``layout="torch"``), or ``rows = prod(shape[:-1])``, ``cols = shape[-1]``
    (``layout="keras"`` or ``"jax"``, as Keras's ``Orthogonal`` and JAX's ``orthogonal()``).
    The matrix is Haar-distributed (uniform over the orthogonal group), exactly as torch's
    ``Q`` of the QR factorization of a normal matrix with ``diag(R) > 0``. It is formed by
    Stewart's method, which skips the factorization: with ``A`` the standard normal
    ``(rows, cols)`` draw (transposed when ``rows < cols``), ``Q = H_0 H_1 ... [I; 0] D`` where
    ``H_j`` reflects ``A[j:, j]`` onto a multiple of ``e_j`` and ``D`` holds the signs that
    make ``R``'s diagonal positive; transposed back when ``rows < cols``. So ``W W^T = gain**2
    I`` when ``rows <= cols``, ``W^T W = gain**2 I`` otherwise: an orthogonal matrix keeps the
    norm of every vector, so activations and gradients neither grow nor shrink through the
    layer. The product is blocked (NumPy matrix products): about half the work of a QR, 2-3x
    faster than ``torch.nn.init.orthogonal_`` at 4096 x 4096.

    The draw and the arithmetic are float64 for a float64 ``dtype`` and float32 otherwise
    (float16 and bfloat16 are the float32 result rounded once). Memory: the draw and, unless
    ``out`` is a whole float32/float64 C-contiguous tensor written in place, the result, plus
    ``512 x min(rows, cols)`` and ``256 x min(rows, cols)`` blocks. The matrix products run
    on NumPy's BLAS threads (e.g. ``OPENBLAS_NUM_THREADS``), not :func:`set_num_threads`'s.
    Written in place, ``out`` holds intermediate values until the call returns: a call that
    fails or is interrupted leaves it partly computed.

    Parameters
    ----------
    shape : int or tuple of int, optional
        At least 2 dimensions; may be omitted when ``out`` is given without ``region``.
    gain : float
        Finite (any sign).
    layout : {"torch", "keras", "jax"}
    seed, stream, out
        As in :func:`xavier_uniform`.
    dtype : float16, bfloat16, float32 (default, or ``out.dtype``) or float64
    region : tuple of slices, optional
        The full matrix is computed and the region copied out of it: orthogonality is a
        property of the whole matrix, so this scheme is not shardable (each shard costs the
        full work and full-size memory), but a region still equals the same slice of the whole.

    Returns
    -------
    numpy.ndarray or torch.Tensor

    Reproducibility
    ---------------
    The normal draw is ``weightfill.normal((rows, cols), seed=seed, stream=stream,
    dtype=float32 or float64)``, bit for bit; the reflections are applied with NumPy's BLAS. The
    result is the same on every run with the same NumPy/BLAS build and CPU, and agrees across
    them to rounding (about 1e-7 in float32), but unlike the other random schemes it is not
    promised bit-identical across BLAS implementations or CPU models. It differs from
    ``torch.nn.init.orthogonal_`` applied to the same draw (a different, equally Haar, map
    from draws to matrices).
    """
    lay = check_layout(layout)
    tgt = _target(shape, dtype, out, region)
    g = finite_param(gain, "gain", tgt.dtype)  # |entries| <= |gain|: no value can overflow
    full = tgt.shape
    if len(full) < 2:
        raise ValueError(f"orthogonal needs a shape of at least 2 dimensions, got {full}")
    if math.prod(full) == 0:
        normalize_seed(seed), normalize_stream(stream)  # refused even when nothing is drawn
        tgt.out[...] = 0
        return tgt.result
    if lay == "torch":
        rows, cols = full[0], math.prod(full[1:])
    else:
        rows, cols = math.prod(full[:-1]), full[-1]
    out = tgt.out
    direct = (out.dtype == np.float64 or out.dtype == np.float32) and out.shape == full \
        and out.flags.c_contiguous
    if direct:  # the whole tensor in a compute dtype: no copy
        _orthogonal_matrix(rows, cols, seed, stream, g, tgt.dtype, out.reshape(rows, cols))
    else:
        w = _orthogonal_matrix(rows, cols, seed, stream, g, tgt.dtype)
        out[...] = w.reshape(full)[_slices(tgt)].astype(tgt.dtype)
    return tgt.result


def eye(
    shape: Optional[ShapeLike] = None,
    *,
    layout: str = "torch",
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    region: Optional[RegionLike] = None,
) -> np.ndarray:
    """The identity matrix, as ``torch.nn.init.eye_``: ``W[i, i] = 1`` for ``i <
    min(shape)``, zeros elsewhere; only 2-D shapes. The diagonal is the same in every layout
    (``layout`` is accepted for uniformity and checked).

    Parameters
    ----------
    shape, dtype, out, region
        As in :func:`zeros`.
    layout : {"torch", "keras", "jax"}

    Returns
    -------
    numpy.ndarray or torch.Tensor

    Reproducibility
    ---------------
    Deterministic; a region writes only its own part of the diagonal.
    """
    return _diagonal(shape, 1.0, layout, dtype, out, region, "eye")


def identity(
    shape: Optional[ShapeLike] = None,
    gain: float = 1.0,
    *,
    layout: str = "keras",
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    region: Optional[RegionLike] = None,
) -> np.ndarray:
    """``gain`` times the identity matrix, as ``keras.initializers.Identity``: only 2-D
    shapes, ``W[i, i] = gain`` for ``i < min(shape)``.

    Parameters
    ----------
    shape, dtype, out, region
        As in :func:`zeros`.
    gain : float
        Finite (any sign).
    layout : {"torch", "keras", "jax"}
        Accepted for uniformity; the diagonal is the same in every layout.

    Returns
    -------
    numpy.ndarray or torch.Tensor

    Reproducibility
    ---------------
    Deterministic.
    """
    return _diagonal(shape, _real(gain, "gain"), layout, dtype, out, region, "identity",
                     "gain")


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


def dirac(
    shape: Optional[ShapeLike] = None,
    groups: int = 1,
    *,
    layout: str = "torch",
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    region: Optional[RegionLike] = None,
) -> np.ndarray:
    """The Dirac delta, as ``torch.nn.init.dirac_``: a convolution that passes its inputs
    through unchanged (as many channels as fit, per group).

    For a 3-, 4- or 5-D weight ``(out, in, *kernel)`` (``layout="torch"``), with ``per =
    out // groups``: ``W[g*per + d, d, k1//2, k2//2, ...] = 1`` for every group ``g`` and
    ``d < min(per, in)``, zeros elsewhere. The kernel centre is ``k // 2``, torch's (JAX's
    ``delta_orthogonal`` uses ``(k - 1) // 2``; they differ for even kernels). With
    ``layout="keras"``/``"jax"`` the weight is ``(*kernel, in, out)`` and the same positions
    are used with the axes in that order.

    Parameters
    ----------
    shape, dtype, out, region
        As in :func:`zeros`.
    groups : int
        >= 1, dividing the out-channel count.
    layout : {"torch", "keras", "jax"}

    Returns
    -------
    numpy.ndarray or torch.Tensor

    Reproducibility
    ---------------
    Deterministic; vectorised placement, and a region writes only its own part.
    """
    g = _as_index(groups, "groups")
    if g < 1:
        raise ValueError(f"groups must be >= 1, got {g}")
    lay = check_layout(layout)
    tgt = _target(shape, dtype, out, region)
    full = tgt.shape
    if len(full) not in (3, 4, 5):
        raise ValueError(f"dirac needs a 3-, 4- or 5-D shape, got {full}")
    o_ax, i_ax, k_axes = _conv_axes(full, lay)
    if full[o_ax] % g != 0:
        raise ValueError(f"the out-channel count {full[o_ax]} (axis {o_ax}) must be divisible "
                         f"by groups={g}")
    per, n_in = full[o_ax] // g, full[i_ax]
    # Ones at (out = j*per + k, in = k) for group j and k < min(per, n_in). Only the groups
    # and k that meet the region are listed, so a small region of a huge shape stays cheap.
    o0, o1 = tgt.start[o_ax], tgt.start[o_ax] + tgt.length[o_ax]
    i0, i1 = tgt.start[i_ax], tgt.start[i_ax] + tgt.length[i_ax]
    outs_l, ins_l = [], []
    if o1 > o0 and i1 > i0 and per:
        for j in range(o0 // per, (o1 - 1) // per + 1):  # at most o1 - o0 groups
            k = np.arange(max(i0, o0 - j * per), min(per, n_in, i1, o1 - j * per))
            outs_l.append(j * per + k)
            ins_l.append(k)
    outs = np.concatenate(outs_l) if outs_l else np.empty(0, np.intp)
    ins = np.concatenate(ins_l) if ins_l else np.empty(0, np.intp)
    _place(tgt, _conv_index(full, lay, outs, ins, [full[a] // 2 for a in k_axes]), 1.0)
    return tgt.result


# ----------------------------------------------------------------------------------------------
# Keras / JAX semantics

_MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
_DISTRIBUTIONS = ("truncated_normal", "normal", "untruncated_normal", "uniform")


def variance_scaling(
    shape: Optional[ShapeLike] = None,
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    *,
    in_axis: AxisLike = -2,
    out_axis: AxisLike = -1,
    batch_axis: AxisLike = (),
    layout: Optional[str] = None,
    transposed: bool = False,
    seed: Optional[int],
    stream: Stream = 0,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    region: Optional[RegionLike] = None,
) -> np.ndarray:
    """Variance scaling, as ``jax.nn.initializers.variance_scaling`` and
    ``keras.initializers.VarianceScaling``: ``Var(W) = scale / n``.

    ``n`` is, by ``mode``: ``fan_in``, ``fan_out``, ``fan_avg = (fan_in + fan_out) / 2`` or
    ``fan_geo_avg = sqrt(fan_in * fan_out)`` (JAX's; Keras lacks it), never below 1 (Keras's
    clamp; it only matters for empty tensors). Then, by ``distribution``:

    ``"truncated_normal"`` (default)
        ``N(0, s**2)`` truncated to ``[-2 s, 2 s]`` with ``s = sqrt(scale / n) /
        0.87962566103423978``; that constant is the standard deviation of a standard normal
        truncated to [-2, 2], so the values' standard deviation is ``sqrt(scale / n)``.
    ``"normal"`` (or ``"untruncated_normal"``)
        ``N(0, scale / n)``, untruncated: JAX's meaning. Keras silently maps its
        ``distribution="normal"`` to the truncated normal; pass ``"truncated_normal"`` to get
        what Keras gives for ``"normal"``.
    ``"uniform"``
        ``U(-limit, limit)`` with ``limit = sqrt(3 * scale / n)``.

    Fans are read channels-last: the default axes ``in_axis=-2, out_axis=-1`` follow Keras's
    rule (which agrees with JAX's on 2-D and larger shapes, and also takes 0-D and 1-D shapes:
    ``(1, 1)`` and ``(n, n)``); other axes, or batch axes, follow JAX's rule; ``layout=``
    ("torch", "keras" or "jax") selects that layout's rule instead. See
    :func:`weightfill.fans.compute_fans`.

    Parameters
    ----------
    shape : int or tuple of int, optional
        Shape of the full tensor; may be omitted when ``out`` is given without ``region``.
    scale : float
        Finite, > 0 (as Keras requires).
    mode : {"fan_in", "fan_out", "fan_avg", "fan_geo_avg"}
    distribution : {"truncated_normal", "normal", "untruncated_normal", "uniform"}
    in_axis, out_axis, batch_axis : int or sequence of int
        JAX's axes; batch axes (stacked experts or layers) count towards neither fan.
    layout : {"torch", "keras", "jax"}, optional
        Use this layout's fan rule instead of the axes (the axes must then be the defaults).
    transposed : bool
        Swap the fans (true fans of a transposed convolution's kernel).
    seed, stream, dtype, out, region
        As in :func:`xavier_uniform`.

    Returns
    -------
    numpy.ndarray or torch.Tensor

    Reproducibility
    ---------------
    Bit for bit the engine's ``truncated_normal(shape, 0, s, -2, 2)``, ``normal(shape, 0,
    sqrt(scale / n))`` or ``uniform(shape, -limit, limit)`` with the same seed, stream, dtype
    and region. JAX's and Keras's own values come from their generators and are not
    reproduced; the distribution is.
    """
    sc = _real(scale, "scale")
    if sc <= 0:
        raise ValueError(f"scale must be > 0, got {sc}")
    m = _choice(mode, "mode", _MODES)
    dist = _choice(distribution, "distribution", _DISTRIBUTIONS)
    if layout is not None:
        check_layout(layout)
    full = _full_shape(shape, out, region)
    fan_in, fan_out = _keras_fans(full, layout, in_axis, out_axis, batch_axis, transposed)
    if m == "fan_in":
        denominator = float(fan_in)
    elif m == "fan_out":
        denominator = float(fan_out)
    elif m == "fan_avg":
        denominator = (fan_in + fan_out) / 2.0
    else:
        denominator = math.sqrt(float(fan_in) * float(fan_out))
    variance = sc / max(1.0, denominator) if math.prod(full) else 0.0
    kw = dict(seed=seed, stream=stream, dtype=dtype, out=out, region=region)
    if dist == "truncated_normal":
        stddev = math.sqrt(variance) / TRUNCATED_NORMAL_STD
        return _derived("scale", scale, truncated_normal, full, 0.0, stddev, -2.0, 2.0, **kw)
    if dist == "uniform":
        limit = math.sqrt(3.0 * variance)
        return _derived("scale", scale, uniform, full, -limit, limit, **kw)
    return _derived("scale", scale, normal, full, 0.0, math.sqrt(variance), **kw)


def _preset(scale: float, mode: str, distribution: str, doc: str) -> Callable[..., np.ndarray]:
    def scheme(
        shape: Optional[ShapeLike] = None,
        *,
        in_axis: AxisLike = -2,
        out_axis: AxisLike = -1,
        batch_axis: AxisLike = (),
        layout: Optional[str] = None,
        transposed: bool = False,
        seed: Optional[int],
        stream: Stream = 0,
        dtype: DTypeLike = None,
        out: Optional[np.ndarray] = None,
        region: Optional[RegionLike] = None,
    ) -> np.ndarray:
        return variance_scaling(shape, scale, mode, distribution, in_axis=in_axis,
                                out_axis=out_axis, batch_axis=batch_axis, layout=layout,
                                transposed=transposed, seed=seed, stream=stream, dtype=dtype,
                                out=out, region=region)

    scheme.__doc__ = doc + f"""
    ``variance_scaling(shape, scale={scale}, mode="{mode}", distribution="{distribution}")``,
    the Keras and JAX preset of this name.

    Parameters
    ----------
    shape, in_axis, out_axis, batch_axis, layout, transposed, seed, stream, dtype, out, region
        As in :func:`variance_scaling`.

    Returns
    -------
    numpy.ndarray or torch.Tensor

    Reproducibility
    ---------------
    As :func:`variance_scaling`: bit for bit one engine fill.
    """
    return scheme


glorot_uniform = _preset(1.0, "fan_avg", "uniform", """Glorot/Xavier uniform (Keras, JAX):
    ``U(-limit, limit)``, ``limit = sqrt(6 / (fan_in + fan_out))``; ``Var(W) = 2 / (fan_in +
    fan_out)``. Same distribution as torch's ``xavier_uniform`` with gain 1.
""")
glorot_normal = _preset(1.0, "fan_avg", "truncated_normal", """Glorot/Xavier normal (Keras,
    JAX): a normal truncated at two standard deviations with standard deviation ``sqrt(2 /
    (fan_in + fan_out))`` after truncation. (torch's ``xavier_normal`` is untruncated.)
""")
he_uniform = _preset(2.0, "fan_in", "uniform", """He/Kaiming uniform (Keras, JAX):
    ``U(-limit, limit)``, ``limit = sqrt(6 / fan_in)``; ``Var(W) = 2 / fan_in``.
""")
he_normal = _preset(2.0, "fan_in", "truncated_normal", """He/Kaiming normal (Keras, JAX): a
    normal truncated at two standard deviations, standard deviation ``sqrt(2 / fan_in)`` after
    truncation (the untruncated one is that divided by 0.87962566103423978); every value lies
    within ``2 * sqrt(2 / fan_in) / 0.87962566103423978``. (torch's ``kaiming_normal`` is
    untruncated.)
""")
lecun_uniform = _preset(1.0, "fan_in", "uniform", """LeCun uniform (Keras, JAX):
    ``U(-limit, limit)``, ``limit = sqrt(3 / fan_in)``; ``Var(W) = 1 / fan_in``.
""")
lecun_normal = _preset(1.0, "fan_in", "truncated_normal", """LeCun normal (Keras, JAX; the
    initialization SELU networks need): a normal truncated at two standard deviations,
    standard deviation ``sqrt(1 / fan_in)`` after truncation.
""")
for _f, _n in ((glorot_uniform, "glorot_uniform"), (glorot_normal, "glorot_normal"),
               (he_uniform, "he_uniform"), (he_normal, "he_normal"),
               (lecun_uniform, "lecun_uniform"), (lecun_normal, "lecun_normal")):
    _f.__name__ = _f.__qualname__ = _n
del _f, _n


def delta_orthogonal(
    shape: Optional[ShapeLike] = None,
    scale: float = 1.0,
    *,
    layout: str = "keras",
    seed: Optional[int],
    stream: Stream = 0,
    dtype: DTypeLike = None,
    out: Optional[np.ndarray] = None,
    region: Optional[RegionLike] = None,
) -> np.ndarray:
    """Delta-orthogonal convolution kernel, as ``jax.nn.initializers.delta_orthogonal`` (Xiao
    et al., 2018): zeros except at the kernel centre, which holds ``scale`` times an orthogonal
    ``(in, out)`` matrix.

    For a 3-, 4- or 5-D kernel ``(*kernel, in, out)`` (``layout="keras"`` or ``"jax"``) with
    ``in <= out``: ``W[(k1-1)//2, (k2-1)//2, ..., :, :] = scale * Q`` where ``Q`` has
    orthonormal rows (:func:`orthogonal` of shape ``(in, out)``). The centre is ``(k - 1) //
    2``, JAX's (torch's ``dirac`` uses ``k // 2``). With ``layout="torch"`` the weight is
    ``(out, in, *kernel)`` and holds ``Q`` transposed at ``[:, :, centre...]``, the same
    values as the channels-last kernel with its axes moved.

    Parameters
    ----------
    shape : int or tuple of int, optional
        3-, 4- or 5-D with ``in <= out``.
    scale : float
        Finite (any sign).
    layout : {"keras", "jax", "torch"}
    seed, stream, dtype, out, region
        As in :func:`orthogonal`; the orthogonal matrix is only ``in x out``, so a region
        costs little.

    Returns
    -------
    numpy.ndarray or torch.Tensor

    Reproducibility
    ---------------
    The matrix is ``orthogonal((in, out), seed=seed, stream=stream)`` in float64 for a float64
    ``dtype``, float32 otherwise (see :func:`orthogonal`: BLAS-dependent rounding); its
    placement is deterministic, and a region equals the same slice of the whole.
    """
    lay = check_layout(layout)
    tgt = _target(shape, dtype, out, region)
    sc = finite_param(scale, "scale", tgt.dtype)  # |entries| <= |scale|
    full = tgt.shape
    if len(full) not in (3, 4, 5):
        raise ValueError(f"delta_orthogonal needs a 3-, 4- or 5-D shape, got {full}")
    o_ax, i_ax, k_axes = _conv_axes(full, lay)
    n_in, n_out = full[i_ax], full[o_ax]
    if n_in > n_out:
        raise ValueError(f"delta_orthogonal needs in <= out (fan_in <= fan_out), got "
                         f"in={n_in}, out={n_out} for shape {full} in layout {lay!r}")
    if math.prod(full) == 0:
        normalize_seed(seed), normalize_stream(stream)  # refused even when nothing is drawn
        tgt.out[...] = 0
        return tgt.result
    q = _orthogonal_matrix(n_in, n_out, seed, stream, sc, tgt.dtype)
    ins, outs = np.indices((n_in, n_out)).reshape(2, -1)
    _place(tgt, _conv_index(full, lay, outs, ins, [(full[a] - 1) // 2 for a in k_axes]),
              q.ravel())
    return tgt.result
