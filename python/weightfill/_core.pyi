"""Type stubs for the compiled engine (csrc/bindings). Use the weightfill package instead."""

from typing import Any, Callable, Optional

import numpy as np

class Dist:
    raw: Dist
    uniform: Dist
    normal: Dist
    truncated_normal: Dist
    @property
    def value(self) -> int: ...

class DType:
    u32: DType
    f32: DType
    f64: DType
    f16: DType
    bf16: DType

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def thread_backend() -> str: ...
def isa() -> str: ...
def available_isas() -> list[str]: ...
def force_isa(name: str) -> None: ...
def _parallel_probe(nthreads: int, thrower: int) -> int: ...
def _rank_ties(tie_keys: list[int], need: int) -> list[int]: ...
def empty_aligned(shape: list[int], dtype: np.dtype[Any],
                  huge_pages: bool = ...) -> np.ndarray[Any, Any]: ...
def fill_pattern(out: np.ndarray[Any, Any], bits: int) -> None: ...
def haar_unit(q: np.ndarray[Any, Any]) -> None: ...
def haar_zero_above(v: np.ndarray[Any, Any]) -> None: ...
def haar_reflectors(v: np.ndarray[Any, Any], norm: np.ndarray[Any, Any],
                    sign: np.ndarray[Any, Any], last: bool) -> None: ...
def haar_t_inverse(g: np.ndarray[Any, Any], vv: np.ndarray[Any, Any]) -> None: ...
def haar_scale(q: np.ndarray[Any, Any], sign: np.ndarray[Any, Any], scale: float) -> None: ...
def fill_whole(kind: int, shape: object, a: object, b: object, seed: object, stream: object,
               dtype: object, out: object, region: object,
               extra: object) -> Optional[np.ndarray[Any, Any]]: ...
def _fill_whole_setup(descrs: tuple[np.dtype[Any], ...], scalar_types: tuple[type, ...],
                      largest: list[float], streams: dict[str, int],
                      named_stream: Callable[[str], int]) -> None: ...
def _deferred_blocks(delta: int) -> int: ...
def _memo_setup(memo: dict[Any, Any], known: dict[Any, Any]) -> None: ...
def _array_view_setup(fn: Callable[[object], Optional[np.ndarray[Any, Any]]]) -> None: ...
def raw_whole(n: object, seed: object, stream: object,
              offset: object) -> Optional[np.ndarray[Any, Any]]: ...
def sparse_whole(shape: object, sparsity: object, nonzeros: object, std: object, axis: object,
                 seed: object, stream: object, dtype: object, out: object, region: object,
                 method: object) -> Optional[np.ndarray[Any, Any]]: ...

class FastEntry:
    def __init__(self, fallback: Callable[..., Any], kind: int, names: tuple[str, ...],
                 npos: int, roles: tuple[int, ...], defaults: tuple[object, ...],
                 fixed: tuple[object, ...], required: object, tag: object = None,
                 key: tuple[object, ...] = ()) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

FAST_ENTRY_ROLES: tuple[str, ...]
FILL_MEMO: int
FILL_DIAGONAL: int
FILL_DIRAC: int

FILL_CONSTANT: int
def fill_plan(items: list[tuple[Any, ...]]) -> None: ...
def fill(
    dist: Dist,
    dtype: DType,
    a: float,
    b: float,
    seed: int,
    stream: int,
    block_base: int,
    shape: list[int],
    start: list[int],
    len: list[int],
    out: Any,
    extra: list[float] = ...,
) -> None: ...
def sparse(
    seed: int,
    stream: int,
    std: float,
    dtype: DType,
    rows: int,
    cols: int,
    axis: int,
    sampled: int,
    sampled_are_zero: bool,
    r0: int,
    nr: int,
    c0: int,
    nc: int,
    out: Any,
    method: int = ...,
) -> None: ...
