"""Keras's and JAX's schemes, as ``keras.initializers`` and ``jax.nn.initializers`` define
them, shapes read channels-last as ``(*kernel, in, out)``: ``variance_scaling`` and its presets
(``glorot_*``, ``he_*``, ``lecun_*``), ``identity``, ``delta_orthogonal``."""

from __future__ import annotations

import math
from typing import Callable, Optional, Union

import numpy as np

from .._args import (
    RegionLike,
    ShapeLike,
    finite_param,
)
from .._engine import DIAGONAL, MEMO, fast_entry, memo_key
from .._engine import NORMAL as _NORMAL
from .._engine import TRUNCATED_NORMAL as _TRUNCATED
from .._engine import UNIFORM as _UNIFORM
from ..distributions import normal, truncated_normal, uniform
from ..fans import AxisLike, check_layout
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
    _keras_fans,
    _memo,
    _orthogonal_matrix,
    _place,
    _real,
    _target,
)

#: Standard deviation of a standard normal truncated to [-2, 2]; Keras and JAX divide the
#: target standard deviation by it so the truncated draw has the target variance.
TRUNCATED_NORMAL_STD = 0.87962566103423978


@fast_entry(DIAGONAL, a="gain", b=0.0, seed=0, stream=0)
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


_MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
_DISTRIBUTIONS = ("truncated_normal", "normal", "untruncated_normal", "uniform")


# The arguments a derivation depends on besides the shape: what memo keys hold (_common._MEMO).
_VARIANCE_SCALING_KEY = ("scale", "mode", "distribution", "in_axis", "out_axis", "batch_axis",
                         "layout", "transposed")


@fast_entry(MEMO, memo=("variance_scaling", _VARIANCE_SCALING_KEY))
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
    key = memo_key("variance_scaling", shape, scale, mode, distribution, in_axis, out_axis,
                   batch_axis, layout, transposed)
    if dist == "truncated_normal":
        stddev = math.sqrt(variance) / TRUNCATED_NORMAL_STD
        _memo(key, _TRUNCATED, 0.0, stddev, -2.0, 2.0)
        return _derived("scale", scale, truncated_normal, full, 0.0, stddev, -2.0, 2.0, **kw)
    if dist == "uniform":
        limit = math.sqrt(3.0 * variance)
        _memo(key, _UNIFORM, -limit, limit)
        return _derived("scale", scale, uniform, full, -limit, limit, **kw)
    _memo(key, _NORMAL, 0.0, math.sqrt(variance))
    return _derived("scale", scale, normal, full, 0.0, math.sqrt(variance), **kw)


def _preset(scale: float, mode: str, distribution: str, doc: str, *,
            name: str) -> Callable[..., np.ndarray]:
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
    scheme.__name__ = scheme.__qualname__ = name
    # Its memo key is variance_scaling's for this scale, mode and distribution: the preset finds
    # what variance_scaling derived, and the other way round.
    return fast_entry(MEMO, memo=("variance_scaling", _VARIANCE_SCALING_KEY), scale=scale,
                      mode=mode, distribution=distribution)(scheme)


glorot_uniform = _preset(1.0, "fan_avg", "uniform", """Glorot/Xavier uniform (Keras, JAX):
    ``U(-limit, limit)``, ``limit = sqrt(6 / (fan_in + fan_out))``; ``Var(W) = 2 / (fan_in +
    fan_out)``. Same distribution as torch's ``xavier_uniform`` with gain 1.
""", name="glorot_uniform")
glorot_normal = _preset(1.0, "fan_avg", "truncated_normal", """Glorot/Xavier normal (Keras,
    JAX): a normal truncated at two standard deviations with standard deviation ``sqrt(2 /
    (fan_in + fan_out))`` after truncation. (torch's ``xavier_normal`` is untruncated.)
""", name="glorot_normal")
he_uniform = _preset(2.0, "fan_in", "uniform", """He/Kaiming uniform (Keras, JAX):
    ``U(-limit, limit)``, ``limit = sqrt(6 / fan_in)``; ``Var(W) = 2 / fan_in``.
""", name="he_uniform")
he_normal = _preset(2.0, "fan_in", "truncated_normal", """He/Kaiming normal (Keras, JAX): a
    normal truncated at two standard deviations, standard deviation ``sqrt(2 / fan_in)`` after
    truncation (the untruncated one is that divided by 0.87962566103423978); every value lies
    within ``2 * sqrt(2 / fan_in) / 0.87962566103423978``. (torch's ``kaiming_normal`` is
    untruncated.)
""", name="he_normal")
lecun_uniform = _preset(1.0, "fan_in", "uniform", """LeCun uniform (Keras, JAX):
    ``U(-limit, limit)``, ``limit = sqrt(3 / fan_in)``; ``Var(W) = 1 / fan_in``.
""", name="lecun_uniform")
lecun_normal = _preset(1.0, "fan_in", "truncated_normal", """LeCun normal (Keras, JAX; the
    initialization SELU networks need): a normal truncated at two standard deviations,
    standard deviation ``sqrt(1 / fan_in)`` after truncation.
""", name="lecun_normal")


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
        normalize_seed(seed)  # a bad seed or stream is refused even when nothing is drawn
        normalize_stream(stream)
        tgt.out[...] = 0
        return tgt.result
    q = _orthogonal_matrix(n_in, n_out, seed, stream, sc, tgt.dtype)
    centre = [(full[a] - 1) // 2 for a in k_axes]
    if tgt.length == full:  # the whole tensor: the centre is one (in, out) block of it
        at: list[Union[int, slice]] = [slice(None)] * len(full)
        for a, c in zip(k_axes, centre):
            at[a] = c
        tgt.out[...] = 0
        # the block's axes are in and out in the layout's order; a 16-bit dtype's values are
        # rounded as _place rounds them (through float64, exact for q's float32 values)
        block = q if i_ax < o_ax else q.T
        tgt.out[tuple(at)] = block if q.dtype == tgt.dtype else \
            np.asarray(block, np.float64).astype(tgt.dtype)
    else:
        ins, outs = np.indices((n_in, n_out)).reshape(2, -1)
        _place(tgt, _conv_index(full, lay, outs, ins, centre), q.ravel())
    return tgt.result
