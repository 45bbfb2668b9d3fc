"""Argument checks shared by every public function: shapes, regions, dtypes, outputs and
parameters. Each error names the argument it is about."""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any, Optional, Sequence, Union

import ml_dtypes
import numpy as np

from . import _backends

ShapeLike = Union[int, Sequence[int]]
RegionLike = Union[slice, Sequence[slice]]

# Element indices stay below 2**62, so element draws never reach the counter space reserved
# for auxiliary draws (docs/stream-spec.md, section 2).
MAX_ELEMENTS = 1 << 62

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16), BFLOAT16)

# The largest finite value of each float dtype (ml_dtypes' finfo knows bfloat16); looked up
# on every call, and a finfo costs about a microsecond to build.
_LARGEST = {dt: float(ml_dtypes.finfo(dt).max) for dt in FLOAT_DTYPES}
# NumPy's NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_WRITEABLE (ndarraytypes.h),
# read from ndarray.flags.num: one attribute instead of a flags object and three lookups.
_FAST_FLAGS = 0x0001 | 0x0100 | 0x0400


def finfo(dtype: np.dtype) -> Any:
    """numpy.finfo that also knows bfloat16."""
    return ml_dtypes.finfo(dtype)  # type: ignore[no-untyped-call]


def _as_index(value: object, what: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be an integer, not bool")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}") from None


def normalize_shape(shape: object) -> tuple[int, ...]:
    if type(shape) is tuple:  # fast path: a tuple of non-negative ints is its own result
        for d in shape:
            if type(d) is not int or not 0 <= d < MAX_ELEMENTS:
                break
        else:
            if math.prod(shape) < MAX_ELEMENTS:
                return shape
    if isinstance(shape, (tuple, list)):
        dims = tuple(_as_index(d, f"shape[{i}]") for i, d in enumerate(shape))
    else:
        dims = (_as_index(shape, "shape"),)
    for i, d in enumerate(dims):
        if d < 0:
            raise ValueError(f"shape[{i}] must be >= 0, got {d}")
        if d >= MAX_ELEMENTS:  # allowed by the element count only beside a 0: refused too
            raise ValueError(f"shape[{i}] = {d} is too large; the limit is 2**62")
    if math.prod(dims) >= MAX_ELEMENTS:
        raise ValueError(f"shape {dims} has {math.prod(dims)} elements; the limit is 2**62")
    return dims


def normalize_dtype(dtype: object, allowed: Sequence[np.dtype] = FLOAT_DTYPES) -> np.dtype:
    try:
        dt: np.dtype = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"dtype: {dtype!r} is not a NumPy dtype") from None
    if dt not in allowed:
        names = ", ".join(str(a) for a in allowed)
        raise TypeError(f"dtype: {dt} is not supported (use one of {names})")
    return dt


def normalize_region(
    region: object, shape: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(start, length) per axis of a tuple of step-1 slices of ``shape``.

    Fewer slices than axes leave the trailing axes whole; negative bounds count from the end of
    the axis, as in NumPy. Unlike NumPy indexing, a bound outside the axis is an error rather
    than being clipped, since a shard that silently shrinks would lose data.
    """
    if region is None:
        return (0,) * len(shape), shape
    slices = (region,) if isinstance(region, slice) else region
    if not isinstance(slices, (tuple, list)) or not all(isinstance(s, slice) for s in slices):
        raise TypeError("region must be a slice or a tuple of slices")
    if len(slices) > len(shape):
        raise ValueError(f"region has {len(slices)} slices but the shape has {len(shape)} axes")
    start, length = [], []
    for axis, n in enumerate(shape):
        s = slices[axis] if axis < len(slices) else slice(None)
        if s.step is not None and _as_index(s.step, f"region[{axis}].step") != 1:
            raise ValueError(f"region[{axis}]: step must be 1, got {s.step}")
        lo = 0 if s.start is None else _as_index(s.start, f"region[{axis}].start")
        hi = n if s.stop is None else _as_index(s.stop, f"region[{axis}].stop")
        lo = lo + n if lo < 0 else lo
        hi = hi + n if hi < 0 else hi
        if not 0 <= lo <= hi <= n:
            raise ValueError(
                f"region[{axis}]: {s} does not lie within axis {axis} of length {n}"
            )
        start.append(lo)
        length.append(hi - lo)
    return tuple(start), tuple(length)


def out_shape(out: object) -> tuple[int, ...]:
    """The shape of an ``out`` argument (a NumPy array, a torch tensor or a buffer), unchecked."""
    if isinstance(out, np.ndarray):
        return out.shape
    shape = _backends.tensor_shape(out)
    if shape is not None:
        return shape
    return _as_array(out).shape


def _as_array(out: object) -> np.ndarray:
    try:
        return np.asarray(memoryview(out))  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"out must be a NumPy array, a CPU torch tensor or a writable buffer, not "
            f"{type(out).__name__}"
        ) from None


def check_out(out: object, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """``out`` as an ndarray view of the same memory, after checking it can take the result."""
    arr = out if isinstance(out, np.ndarray) else _as_array(out)
    if not arr.flags.writeable:
        raise ValueError("out is read-only")
    if not arr.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    if arr.dtype != dtype:
        raise TypeError(f"out has dtype {arr.dtype}, expected {dtype}")
    if arr.ndim and arr.size and arr.__array_interface__["data"][0] % arr.dtype.itemsize:
        raise ValueError("out is not aligned to its item size")
    if arr.shape != shape:
        raise ValueError(f"out has shape {arr.shape}, expected {shape}")
    return arr


class OverflowParam(ValueError):
    """A finite parameter, or a value derived from parameters, that overflows the dtype. Schemes
    re-raise it naming the parameter of theirs it was derived from (a gain, a scale)."""


def as_float(value: Any, name: str) -> float:
    """``float(value)`` of a real number, with Python's OverflowError for one beyond the float
    range (an int of 400 digits) turned into a ValueError naming the argument."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{name} must be finite, got {value!r:.40} (beyond the float "
                         "range)") from None


def finite_param(value: object, name: str, dtype: np.dtype) -> float:
    """A real parameter that stays finite when rounded to ``dtype``."""
    if type(value) is float or type(value) is int:  # fast path: plainly within range
        big = _LARGEST.get(dtype)
        if big is not None and -big <= value <= big:  # exact for ints of any size
            return float(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, not {type(value).__name__}")
    v = as_float(value, name)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if abs(v) <= largest(dtype):  # representable range: rounding cannot overflow
        return v
    with np.errstate(over="ignore"):  # above max but maybe below the rounding threshold
        if not np.isfinite(np.asarray(v, dtype=dtype)):
            raise OverflowParam(f"{name}={v} overflows {dtype}")
    return v


def largest(dtype: np.dtype) -> float:
    """The largest finite value of a float dtype."""
    big = _LARGEST.get(dtype)
    return float(finfo(dtype).max) if big is None else big


class Target:
    """Where a fill goes: the full tensor's shape, the region, and the output array.

    A plain class with slots: built on every call, and a frozen dataclass's ``__init__``
    costs about a microsecond."""

    __slots__ = ("shape", "start", "length", "dtype", "out", "result")

    def __init__(self, shape: tuple[int, ...], start: tuple[int, ...],
                 length: tuple[int, ...], dtype: np.dtype, out: np.ndarray,
                 result: Any) -> None:
        self.shape = shape
        self.start = start
        self.length = length
        self.dtype = dtype
        self.out = out
        self.result = result  # what the public function returns: the caller's `out` or a new array


def resolve_target(
    shape: Optional[object],
    dtype: Optional[object],
    out: Optional[object],
    region: Optional[object],
    new_array: Any,
    allowed: Sequence[np.dtype] = FLOAT_DTYPES,
) -> Target:
    """Checks (shape, dtype, out, region) together; allocates the result when out is None.

    ``out`` may be a NumPy array, a writable buffer or a CPU torch tensor (written through a
    NumPy view of its storage and returned itself)."""
    result = out
    if out is not None and type(out) is not np.ndarray:
        view = _backends.array_view(out)
        if view is not None:
            out = view
    # Fast path, the adapters' and most callers' case: a whole, writable, aligned, C-contiguous
    # array of a float dtype, no dtype or the same one. Anything else takes the checks below.
    if region is None and type(out) is np.ndarray \
            and out.flags.num & _FAST_FLAGS == _FAST_FLAGS:
        dt = out.dtype
        if dt in _LARGEST and (allowed is FLOAT_DTYPES or dt in allowed) \
                and (dtype is None or dtype is dt or dtype is dt.type):
            full = out.shape if shape is None else normalize_shape(shape)
            if full == out.shape:
                return Target(full, (0,) * len(full), full, dt, out, result)
    if dtype is None:
        dt = out.dtype if isinstance(out, np.ndarray) else np.dtype(np.float32)
        dt = normalize_dtype(dt, allowed)
    else:
        dt = normalize_dtype(dtype, allowed)
    if shape is None:
        if out is None:
            raise TypeError("shape is required when out is not given")
        if region is not None:
            raise TypeError("shape (of the full tensor) is required when region is given")
        full = normalize_shape(out_shape(out))
    else:
        full = normalize_shape(shape)
    start, length = normalize_region(region, full)
    if out is None:
        arr = new_array(length, dt)
        return Target(full, start, length, dt, arr, arr)
    return Target(full, start, length, dt, check_out(out, dt, length), result)
