"""PyTorch's schemes, as ``torch.nn.init`` defines them, shapes read as ``(out, in, *kernel)``:
``xavier_*``, ``kaiming_*``, ``orthogonal``, ``eye``, ``dirac``."""

from __future__ import annotations

import functools
import math
import numbers
from typing import Optional

import numpy as np

from .._args import (
    RegionLike,
    ShapeLike,
    _as_index,
    finite_param,
)
from .._engine import DIAGONAL, DIRAC, MEMO, fast_entry, memo_key
from .._engine import NORMAL as _NORMAL
from .._engine import UNIFORM as _UNIFORM
from ..distributions import normal, uniform
from ..fans import AxisLike, check_layout
from ..gains import Nonlinearity, calculate_gain
from ..streams import normalize_seed, normalize_stream
from ._common import (
    DTypeLike,
    Stream,
    _choice,
    _conv_axes,
    _conv_index,
    _derived,
    _diagonal,
    _full_shape,
    _memo,
    _nonnegative,
    _orthogonal_matrix,
    _place,
    _slices,
    _target,
    _torch_fans,
)

# The arguments a derivation depends on besides the shape: what memo keys hold (_common._MEMO).
_XAVIER_KEY = ("gain", "layout", "in_axis", "out_axis", "batch_axis", "transposed")
_KAIMING_KEY = ("a", "mode", "nonlinearity", "layout", "in_axis", "out_axis", "batch_axis",
                "transposed")


@fast_entry(MEMO, memo=("xavier_uniform", _XAVIER_KEY))
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
    key = memo_key("xavier_uniform", shape, gain, layout, in_axis, out_axis, batch_axis, transposed)
    _memo(key, _UNIFORM, -a, a)
    return _derived("gain", gain, uniform, full, -a, a, seed=seed, stream=stream, dtype=dtype,
                    out=out, region=region)


@fast_entry(MEMO, memo=("xavier_normal", _XAVIER_KEY))
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
    key = memo_key("xavier_normal", shape, gain, layout, in_axis, out_axis, batch_axis, transposed)
    _memo(key, _NORMAL, 0.0, std)
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


@fast_entry(MEMO, memo=("kaiming_uniform", _KAIMING_KEY))
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
    key = memo_key("kaiming_uniform", shape, a, mode, nonlinearity, layout, in_axis, out_axis,
                   batch_axis, transposed)
    _memo(key, _UNIFORM, -bound, bound)
    return _derived("nonlinearity", nonlinearity, uniform, full, -bound, bound, seed=seed,
                    stream=stream, dtype=dtype, out=out, region=region)


@fast_entry(MEMO, memo=("kaiming_normal", _KAIMING_KEY))
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
    key = memo_key("kaiming_normal", shape, a, mode, nonlinearity, layout, in_axis, out_axis,
                   batch_axis, transposed)
    _memo(key, _NORMAL, 0.0, std)
    return _derived("nonlinearity", nonlinearity, normal, full, 0.0, std, seed=seed,
                    stream=stream, dtype=dtype, out=out, region=region)


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
        normalize_seed(seed)  # a bad seed or stream is refused even when nothing is drawn
        normalize_stream(stream)
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


@fast_entry(DIAGONAL, a=1.0, b=0.0, seed=0, stream=0)
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


@fast_entry(DIRAC, a="groups", b=0.0, seed=0, stream=0)
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

