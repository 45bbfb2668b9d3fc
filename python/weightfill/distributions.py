"""Engine-level fills: raw Philox words, uniform and normal values.

Every value is a pure function of (seed, stream, global element index, distribution,
parameters, dtype); see docs/stream-spec.md for the exact mapping.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Union

import numpy as np

from . import _engine, _truncnorm
from ._args import (
    OverflowParam,
    RegionLike,
    ShapeLike,
    Target,
    _as_index,
    as_float,
    finite_param,
    largest,
    resolve_target,
)
from .streams import normalize_seed, normalize_stream

__all__ = ["random_raw", "uniform", "normal", "truncated_normal", "sparse"]

_sparse_whole = _engine.sparse_whole
_raw_whole = _engine.raw_whole
_UNIFORM, _NORMAL, _TRUNCATED = _engine.UNIFORM, _engine.NORMAL, _engine.TRUNCATED_NORMAL

Stream = Union[int, str]
DTypeLike = Union[type, np.dtype, str, None]
OutLike = Any  # a NumPy array, a writable buffer or a CPU torch tensor


def random_raw(n: int, *, seed: Optional[int], stream: Stream = 0, offset: int = 0) -> np.ndarray:
    """Raw Philox4x32-10 output words, in counter order.

    Parameters
    ----------
    n : int
        Number of 32-bit words.
    seed : int in [0, 2**64), or None for fresh OS entropy
        The Philox key: ``(seed mod 2**32, seed >> 32)``.
    stream : int in [0, 2**64), or str
        Counter words 2 and 3; a str is mapped by :func:`weightfill.stream_id`.
    offset : int
        Index of the first word. Block ``j`` contributes words ``4j .. 4j+3``.

    Returns
    -------
    numpy.ndarray of uint32, shape (n,)

    Reproducibility
    ---------------
    Word ``k`` is word ``k mod 4`` of ``philox4x32_10(counter=(k//4 mod 2**32, k//4 >> 32,
    stream mod 2**32, stream >> 32), key=(seed mod 2**32, seed >> 32))``, on every machine.
    """
    # Fewer than 2**14 words with plain arguments are checked and made in C (fast_fill.cpp);
    # anything else, errors included, goes through the checks below.
    done = _raw_whole(n, seed, stream, offset)
    if done is not None:
        return done
    count = _as_index(n, "n")
    first = _as_index(offset, "offset")
    if count < 0:
        raise ValueError(f"n must be >= 0, got {count}")
    if first < 0:
        raise ValueError(f"offset must be >= 0, got {first}")
    if first + count > 1 << 66:
        raise ValueError("offset + n must be at most 2**66 (a stream has 2**64 blocks of 4 words)")
    s, t = normalize_seed(seed), normalize_stream(stream)
    dt = np.dtype(np.uint32)
    out = _engine.empty((count,), dt)
    # Block offset // 4 is the block base; the remaining 0..3 words are a region start.
    head = first % 4
    _engine.fill(_engine.Dist.raw, dt, 0.0, 0.0, s, t, (head + count,), (head,), (count,), out,
                 block_base=first // 4)
    return out


@_engine.fast_entry(_UNIFORM, a="low", b="high")
def uniform(
    shape: Optional[ShapeLike] = None,
    low: float = 0.0,
    high: float = 1.0,
    *,
    seed: Optional[int],
    stream: Stream = 0,
    dtype: DTypeLike = None,
    out: Optional[OutLike] = None,
    region: Optional[RegionLike] = None,
) -> np.ndarray:
    """Uniform values in ``[low, high)``.

    ``x = fma(u, high - low, low)`` with ``u = (w >> 8) * 2**-24`` (float32) or
    ``u = (U >> 11) * 2**-53`` (float64), computed in the output dtype; a value that rounding
    would put on ``high`` becomes the largest float below ``high``. ``low == high`` gives
    ``low`` everywhere.

    Parameters
    ----------
    shape : int or tuple of int, optional
        Shape of the full tensor. May be omitted when ``out`` is given without ``region``.
    low, high : float
        Finite bounds with ``low <= high`` whose difference is finite in ``dtype``.
    seed : int in [0, 2**64), or None for fresh OS entropy
    stream : int in [0, 2**64), or str (a parameter name)
    dtype : float32 (default), float64, float16 or ml_dtypes.bfloat16
        Defaults to ``out.dtype`` when ``out`` is given. 16-bit values are the float32 values
        rounded to nearest-even (docs/stream-spec.md 3.7).
    out : numpy.ndarray or torch.Tensor, optional
        Writable C-contiguous array of the region's shape and ``dtype``, filled in place and
        returned; or a contiguous CPU torch tensor (float32, float64, float16, bfloat16; a
        ``requires_grad`` parameter too), written through its own storage (no copy) and
        returned itself, with the same bits as the NumPy call.
    region : tuple of slices, optional
        Step-1 slices of ``shape``: the result equals ``uniform(shape, ...)[region]`` bit for
        bit, so a tensor can be produced in shards.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``out``, or a new 64-byte aligned array that owns the buffer the kernels wrote.

    Reproducibility
    ---------------
    Element ``i`` (flat C-order index in the full ``shape``) depends only on (seed, stream,
    i, low, high, dtype): not on threads, CPU, region or chunking. See docs/stream-spec.md.
    """
    # (The common call, a whole ndarray as out= with plain arguments, is checked and run in C
    # by the fast_entry decorator; anything else, errors included, comes here.)
    s, t = normalize_seed(seed), normalize_stream(stream)
    tgt = resolve_target(shape, dtype, out, region, _engine.empty)
    lo = finite_param(low, "low", tgt.dtype)
    hi = finite_param(high, "high", tgt.dtype)
    if lo > hi:
        raise ValueError(f"low must be <= high, got low={lo}, high={hi}")
    half = 0.5 * largest(tgt.dtype)
    if not (-half <= lo and hi <= half):  # else |high - low| <= max: no overflow possible
        with np.errstate(over="ignore"):
            width = np.asarray(hi, tgt.dtype) - np.asarray(lo, tgt.dtype)
        if not np.isfinite(width):
            raise OverflowParam(f"high - low = {hi - lo} overflows {tgt.dtype}")
    if lo == hi == 0 or (abs(lo) < 1e-37 and abs(hi) < 1e-37 and tgt.dtype != np.float64
                         and np.float32(lo) == np.float32(hi) == 0):
        # Stream-spec 3.1: L == H gives fma(u, H - L, L) = +0.0 when L is a zero of either
        # sign; the kernels' clamp min(x, H) would return H's sign.
        lo = hi = 0.0
    extra: tuple[float, ...] = ()
    if tgt.dtype.itemsize == 2:
        extra = (1.0, _ceiling16(lo, hi, tgt.dtype))
    _fill(_engine.Dist.uniform, tgt, lo, hi, s, t, extra)
    return tgt.result  # type: ignore[no-any-return]


@_engine.fast_entry(_NORMAL, a="mean", b="std")
def normal(
    shape: Optional[ShapeLike] = None,
    mean: float = 0.0,
    std: float = 1.0,
    *,
    seed: Optional[int],
    stream: Stream = 0,
    dtype: DTypeLike = None,
    out: Optional[OutLike] = None,
    region: Optional[RegionLike] = None,
) -> np.ndarray:
    """Normal (Gaussian) values with the given mean and standard deviation.

    Box-Muller on pairs of Philox words with the project's own log, sin and cos, so every
    instruction set gives the same bits; ``x = fma(z, std, mean)`` in the output dtype.
    Values are within 5 ulps (float32) or 4 ulps (float64) of the exact transform of the same
    bits (docs/stream-spec.md 3.5); no value is NaN or infinite. Largest |z|: 6.660437
    (float32), 8.571674 (float64).

    Parameters
    ----------
    shape : int or tuple of int, optional
        Shape of the full tensor. May be omitted when ``out`` is given without ``region``.
    mean : float
        Finite.
    std : float
        Finite and >= 0.
    seed, stream, dtype, out, region
        As in :func:`uniform`.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``out``, or a new 64-byte aligned array that owns the buffer the kernels wrote.

    Reproducibility
    ---------------
    Element ``i`` depends only on (seed, stream, i, mean, std, dtype). Elements ``4j .. 4j+3``
    (float32) or ``2j, 2j+1`` (float64) come from Philox block ``j``. See docs/stream-spec.md.
    """
    s, t = normalize_seed(seed), normalize_stream(stream)
    tgt = resolve_target(shape, dtype, out, region, _engine.empty)
    m, sd = _mean_std(mean, std, tgt.dtype, bounded=False)
    _fill(_engine.Dist.normal, tgt, m, sd, s, t)
    return tgt.result  # type: ignore[no-any-return]


@_engine.fast_entry(_TRUNCATED, a="mean", b="std")
def truncated_normal(
    shape: Optional[ShapeLike] = None,
    mean: float = 0.0,
    std: float = 1.0,
    lower: float = -2.0,
    upper: float = 2.0,
    *,
    seed: Optional[int],
    stream: Stream = 0,
    dtype: DTypeLike = None,
    out: Optional[OutLike] = None,
    region: Optional[RegionLike] = None,
) -> np.ndarray:
    """Normal values conditioned on ``lower <= (x - mean) / std <= upper``.

    ``lower`` and ``upper`` are in units of ``std`` around ``mean`` (the Keras/JAX convention;
    PyTorch's ``trunc_normal_(a, b)`` takes absolute bounds: pass ``(a - mean) / std``).
    Either may be infinite. The sampler is the exact inverse CDF, one Philox word (float32) or
    two (float64) per element: for an interval that straddles 0 it inverts ``erf`` between
    ``erf(lower/sqrt 2)`` and ``erf(upper/sqrt 2)``; for one on a single side it inverts
    ``erfc`` in that tail, so far tails such as (8, 9) or (-inf, -5) keep full relative
    precision. No value falls outside ``[mean + lower*std, mean + upper*std]``, also after
    rounding to ``dtype``.

    Parameters
    ----------
    shape : int or tuple of int, optional
        Shape of the full tensor; may be omitted when ``out`` is given without ``region``.
    mean, std : float
        Finite; ``std >= 0``.
    lower, upper : float
        Bounds in standard deviations, ``lower < upper``; the interval's probability must be
        at least 2**-900 (bounds within about 37 standard deviations of 0).
    seed, stream, dtype, out, region
        As in :func:`uniform`.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``out``, or a new 64-byte aligned array.

    Reproducibility
    ---------------
    Element ``i`` depends only on (seed, stream, i, mean, std, lower, upper, dtype). The
    per-call constants (the bounds' probabilities) are computed with Python's exact
    ``decimal`` arithmetic, so they are the same on every platform. See docs/stream-spec.md
    section 3.6.
    """
    s, t = normalize_seed(seed), normalize_stream(stream)
    tgt = resolve_target(shape, dtype, out, region, _engine.empty)
    m, sd = _mean_std(mean, std, tgt.dtype, bounded=True)
    lo = _bound(lower, "lower")
    hi = _bound(upper, "upper")
    if not lo < hi:
        raise ValueError(f"lower must be < upper, got lower={lo}, upper={hi}")
    if lo == np.inf or hi == -np.inf:
        raise ValueError(f"the interval [{lo}, {hi}] is empty")
    extra = _truncnorm.constants(m, sd, lo, hi, tgt.dtype)
    _truncnorm.remember(m, sd, lo, hi, tgt.dtype, extra)
    _fill(_engine.Dist.truncated_normal, tgt, m, sd, s, t, extra)
    return tgt.result  # type: ignore[no-any-return]


def sparse(
    shape: Optional[ShapeLike] = None,
    sparsity: Optional[float] = None,
    *,
    nonzeros: Optional[int] = None,
    std: float = 0.01,
    axis: int = 0,
    seed: Optional[int],
    stream: Stream = 0,
    dtype: DTypeLike = None,
    out: Optional[OutLike] = None,
    region: Optional[RegionLike] = None,
    method: str = "floyd",
) -> np.ndarray:
    """A 2-D normal(0, std) matrix with an exact number of zeros along ``axis``.

    Every line along ``axis`` (with ``axis=0``, every column: its positions run over the rows)
    gets, at distinct random positions,

    - ``sparsity``: ``ceil(sparsity * n)`` zeros, ``n = shape[axis]``; with ``axis=0`` this is
      PyTorch's ``torch.nn.init.sparse_(tensor, sparsity, std)``;
    - ``nonzeros=k``: exactly ``k`` non-zero entries (Martens' sparse initialization: start
      from zeros and give each unit a few random incoming weights).

    Exactly one of the two must be given. The non-zero entries equal
    ``normal(shape, 0, std)`` at the same positions (same seed and stream), bit for bit. (A
    kept entry can itself be 0.0 when that normal value rounds to zero, as in float16 with a
    small ``std``: about one value in 10^5 for ``std=0.01``.)

    Parameters
    ----------
    shape : tuple of 2 ints
        Shape of the full matrix; may be omitted when ``out`` is given without ``region``.
    sparsity : float in [0, 1], optional
    nonzeros : int in [0, shape[axis]], optional
    std : float
        Standard deviation of the non-zero entries, finite and >= 0.
    axis : 0 or 1 (or -2, -1)
        The axis along which counts are exact.
    seed, stream, dtype, out, region
        As in :func:`uniform`.
    method : "floyd" or "keys"
        How each line's zero positions are drawn. Both make every set of positions equally
        likely, up to a bias far below anything measurable (stream-spec 3.8 and 3.9 bound
        it), from different random numbers, so the two produce different matrices.
        ``"floyd"`` (the default, stream-spec 3.8) draws ``min(zeros, kept)`` positions one
        after another; ``"keys"`` (3.9) gives every position a random 8-bit key (ties broken
        by a 64-bit one) and zeroes the smallest, a cost that does not depend on the
        sparsity. On 4096 x 4096 float32 "keys" takes 1.3-1.4x the time of :func:`normal`
        at any sparsity up to 0.9; Floyd 1.2-1.3x at sparsity 0.1 or 0.9 (less towards 0, and
        about 1.05x from 0.95 on, where only kept values are generated) but 2.0-2.1x at 0.5:
        "keys" is the faster from a sparsity of about 0.12 to 0.88. On short lines (a few
        hundred positions or fewer) Floyd is faster away from 0.5. The method is part of what
        a seed reproduces: keep it fixed with the seed.

    Reproducibility
    ---------------
    Which positions are zero depends only on (seed, stream, method, line index, counts),
    drawn from a reserved part of the counter space that element draws never reach, so
    regions and shards agree with the whole. See docs/stream-spec.md 3.8 and 3.9.
    """
    # A small whole ndarray as out= (or a small new array) with plain arguments is checked and
    # filled in C (fast_fill.cpp); anything else, errors included, goes through the checks below.
    done = _sparse_whole(shape, sparsity, nonzeros, std, axis, seed, stream, dtype, out, region,
                         method)
    if done is not None:
        return done
    s, t = normalize_seed(seed), normalize_stream(stream)
    tgt = resolve_target(shape, dtype, out, region, _engine.empty)
    if len(tgt.shape) != 2:
        got = "shape" if shape is not None else "out of shape"
        raise ValueError(f"sparse needs a 2-D shape, got {got} {tgt.shape}")
    ax = _as_index(axis, "axis")
    if ax not in (0, 1, -1, -2):
        raise ValueError(f"axis must be 0 or 1, got {ax}")
    ax %= 2
    if not isinstance(method, str):
        raise TypeError(f"method must be a str, not {type(method).__name__}")
    if method not in _engine.SPARSE_METHODS:
        names = " or ".join(repr(k) for k in _engine.SPARSE_METHODS)
        raise ValueError(f"method must be {names}, got {method!r}")
    n, lines = tgt.shape[ax], tgt.shape[1 - ax]
    if (sparsity is None) == (nonzeros is None):
        raise TypeError("give exactly one of sparsity and nonzeros")
    if sparsity is not None:
        if isinstance(sparsity, (bool, np.bool_)) or not isinstance(sparsity, numbers.Real):
            raise TypeError(f"sparsity must be a real number, not {type(sparsity).__name__}")
        if not 0.0 <= float(sparsity) <= 1.0:
            raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
        zeros = math.ceil(float(sparsity) * n)  # as torch.nn.init.sparse_
    else:
        k = _as_index(nonzeros, "nonzeros")
        if not 0 <= k <= n:
            raise ValueError(f"nonzeros must be in [0, {n}] (shape[{ax}]), got {k}")
        zeros = n - k
    if lines >= 1 << 31 or n >= 1 << 32:
        raise ValueError(f"shape {tgt.shape} is too large for sparse "
                         "(fewer than 2**31 lines, lines shorter than 2**32)")
    if method == "keys" and n >= 1 << 31:
        raise ValueError(f"method 'keys' needs lines shorter than 2**31 positions, "
                         f"got shape[{ax}] = {n}")
    _, sd = _mean_std(0.0, std, tgt.dtype, bounded=False)
    # Draw whichever of the zeros and the kept positions is fewer.
    sampled_are_zero = zeros <= n - zeros
    _engine.sparse(s, t, sd, tgt.dtype, tgt.shape, ax, zeros if sampled_are_zero else n - zeros,
                   sampled_are_zero, tgt.start, tgt.length, tgt.out, method)
    return tgt.result  # type: ignore[no-any-return]


def _ceiling16(low: float, high: float, dtype: np.dtype) -> float:
    """below16(RNE16(fl32(high))) as a float, or RNE16(fl32(high)) when RNE16(fl32(low)) ==
    RNE16(fl32(high)): the largest 16-bit value a uniform may take (stream-spec 3.7)."""
    h16 = np.asarray(np.float32(high)).astype(dtype)
    if not np.asarray(np.float32(low)).astype(dtype) < h16:
        return float(h16)
    return float(np.nextafter(h16, np.asarray(-np.inf, dtype)))


def _mean_std(mean: object, std: object, dtype: np.dtype, *, bounded: bool) -> tuple[float, float]:
    """Checked (mean, std); unless the values are clamped (``bounded``), also checks that the
    largest |z| (stream-spec 3.3/3.4: 6.660437 for 32-bit draws, 8.571674 for float64) cannot
    overflow ``dtype``."""
    m = finite_param(mean, "mean", dtype)
    sd = finite_param(std, "std", dtype)
    if sd < 0:
        raise ValueError(f"std must be >= 0, got {sd}")
    if bounded:
        return m, sd
    zmax = 8.5717 if dtype.itemsize == 8 else 6.6605  # float64 is the only 8-byte dtype
    if abs(m) + zmax * sd > largest(dtype):
        raise OverflowParam(f"mean={m}, std={sd}: values up to |mean| + {zmax} std overflow "
                            f"{dtype}")
    return m, sd


def _bound(value: object, name: str) -> float:
    if type(value) is float and value == value:  # fast path: a float, not NaN
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, not {type(value).__name__}")
    v = as_float(value, name)
    if v != v:
        raise ValueError(f"{name} must not be NaN")
    return v


def _fill(dist: _engine.Dist, tgt: Target, a: float, b: float, seed: int, stream: int,
          extra: tuple[float, ...] = ()) -> None:
    _engine.fill(dist, tgt.dtype, a, b, seed, stream, tgt.shape, tgt.start, tgt.length, tgt.out,
                 extra=extra)
