"""The one module that imports the compiled engine (``weightfill._core``).

Everything above this module passes validated, normalised arguments; everything below it is
C++. Keeping the boundary in one place keeps the rest of the package importable and testable
as plain Python.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import threading
import weakref
from typing import Any, Callable, Iterator, Optional, TypeVar, cast

import numpy as np

from . import _backends, _core, streams
from ._args import BFLOAT16, FLOAT_DTYPES, largest

Dist = _core.Dist
_DTYPE_CODES = {
    np.dtype(np.uint32): _core.DType.u32,
    np.dtype(np.float32): _core.DType.f32,
    np.dtype(np.float64): _core.DType.f64,
    np.dtype(np.float16): _core.DType.f16,
    BFLOAT16: _core.DType.bf16,
}


def empty(shape: tuple[int, ...], dtype: np.dtype, huge_pages: bool = True) -> np.ndarray:
    """A new C-contiguous, 64-byte aligned, writable array that owns its memory; from 4 MiB,
    2 MiB aligned and (``huge_pages``) advised for transparent huge pages."""
    # (A shape over NumPy's byte limit is a ValueError from empty_aligned, before it allocates.)
    try:
        arr = _core.empty_aligned(list(shape), dtype, huge_pages)
    except MemoryError:
        nbytes = math.prod(shape) * dtype.itemsize
        raise MemoryError(f"cannot allocate {nbytes} bytes for shape {shape} of {dtype}") from None
    plan = _local.plan
    if plan is not None:
        plan.fresh[_address(arr)] = (arr.nbytes, weakref.ref(arr))
    return arr


def fill(
    dist: _core.Dist,
    dtype: np.dtype,
    a: float,
    b: float,
    seed: int,
    stream: int,
    shape: tuple[int, ...],
    start: tuple[int, ...],
    length: tuple[int, ...],
    out: np.ndarray,
    block_base: int = 0,
    extra: tuple[float, ...] = (),
) -> None:
    """Writes region (start, length) of the full tensor of ``shape`` into ``out``.

    Element i of the full tensor takes its bits from Philox block ``block_base + i // epb``
    (mod 2**64), epb being 4 for 32-bit and 2 for 64-bit outputs.

    Releases the GIL for the fill and raises KeyboardInterrupt (or whatever a signal handler
    raises) within a few milliseconds of a signal.
    """
    if dtype.itemsize == 2:
        out = out.view(np.uint16)  # the buffer protocol has no format for bfloat16
    # pybind11 takes any sequence for the vector arguments: the tuples go as they are.
    item = (dist, _DTYPE_CODES[dtype], a, b, seed, stream, block_base, shape, start, length,
            out, extra)
    plan = _local.plan
    if plan is not None and not plan.is_fresh(out):
        plan.items.append(item)
    else:
        _core.fill(*item)


# The whole-array fast path (csrc/bindings/fast_fill.cpp): fill_whole(kind, shape, a, b, seed,
# stream, dtype, out, region, extra) fills `out` and returns it when the call is a plain one
# (a whole, aligned, writable C-contiguous ndarray of a float dtype, or out None and a small
# shape: a new array; int or float arguments, plainly valid), else returns None and the caller
# runs its full checks; sparse_whole and raw_whole do the same for a small sparse fill and a
# small random_raw. fast_entry (below) makes public fills C callables that try it.
fill_whole = _core.fill_whole
memo_setup = _core._memo_setup
sparse_whole = _core.sparse_whole
raw_whole = _core.raw_whole
UNIFORM, NORMAL, TRUNCATED_NORMAL = (d.value for d in (Dist.uniform, Dist.normal,
                                                      Dist.truncated_normal))
CONSTANT = _core.FILL_CONSTANT
# _fill_whole_setup takes the float dtypes in DType order, as FLOAT_DTYPES lists them.
assert [_DTYPE_CODES[d] for d in FLOAT_DTYPES] == [
    _core.DType.f32, _core.DType.f64, _core.DType.f16, _core.DType.bf16]
_core._fill_whole_setup(FLOAT_DTYPES, tuple(d.type for d in FLOAT_DTYPES),
                        [largest(d) for d in FLOAT_DTYPES], streams._NAMED,
                        streams._named_stream)
# A FastEntry fills a torch tensor `out` through this view of its memory (checked as the Python
# path checks it), so a plain call with a tensor runs no Python function of its own either.
_core._array_view_setup(_backends.array_view)


_F = TypeVar("_F", bound=Callable[..., Any])
MEMO = _core.FILL_MEMO  # the kind of a scheme's entry: its fill comes from the memo
DIAGONAL = _core.FILL_DIAGONAL  # a on the diagonal of a 2-D array, zeros elsewhere
DIRAC = _core.FILL_DIRAC  # schemes.dirac with a = groups; its layout parameter gives the axes


def fast_entry(kind: int, *, memo: Optional[tuple[str, tuple[str, ...]]] = None,
               **fixed: object) -> Callable[[_F], _F]:
    """Decorator: the public fill it decorates as a ``_core.FastEntry``, which binds a call's
    arguments in C and fills a whole ``out=`` array there (or a new one of fewer than 2**14
    elements when ``out`` is None) when every argument is plainly valid, and
    calls the Python function for every other call, with the arguments as they were given.
    Saves the Python frame (about 0.1 us; a 256-value uniform takes 0.3 us).

    ``kind`` is the fill: a distribution (UNIFORM, NORMAL, TRUNCATED_NORMAL), CONSTANT,
    DIAGONAL or DIRAC, with fill_whole's ``a`` and ``b`` parameters; ``fixed`` says what ``a``
    and ``b`` are (the name of a parameter, or a value: ``zeros`` has ``a=0.0``), and ``seed``
    and ``stream`` when the function has no such parameter. The function's other parameters
    must be fill_whole's arguments (shape, seed, stream, dtype, out, region), a truncated
    normal's ``lower`` and ``upper``, or a ``layout`` (checked as fans.check_layout does; only
    DIRAC's fill depends on it).

    A scheme's entry (``kind=MEMO``) fills what the scheme memoized (schemes._common._MEMO)
    under ``memo_key(tag, shape, *values)`` for ``memo = (tag, names)``: the values of the
    parameters ``names`` names, in that order, or for a name that is no parameter the value
    ``fixed`` gives it (a preset's scale, say). Every parameter but the arguments above must be
    one of ``names``."""
    roles = _core.FAST_ENTRY_ROLES  # whole()'s arguments, "layout", "lower", "upper", "key"
    tag, key_names = memo if memo is not None else (None, ())

    def wrap(fn: _F) -> _F:
        params = list(inspect.signature(fn).parameters.values())
        values = dict(fixed)  # a role's or a key name's fixed value
        if kind == MEMO:
            values.update(a=None, b=None)  # unused: a memo hit gives them
        # Parameters that stand for a or b (uniform: a="low").
        renamed = {values.pop(r): r for r in ("a", "b") if isinstance(values.get(r), str)}
        role_of = []
        for p in params:
            role = "key" if p.name in key_names else renamed.get(p.name, p.name)
            if role not in roles or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                raise TypeError(f"fast_entry: {fn.__name__}'s parameter {p.name} has no role")
            role_of.append(roles.index(role))
        index = {p.name: i for i, p in enumerate(params)}
        missing = [n for n in key_names if n not in index and n not in values]
        if missing:
            raise TypeError(f"fast_entry: {fn.__name__} has no value for key items {missing}")
        key = tuple(index[n] if n in index else (values.pop(n),) for n in key_names)
        for r in ("layout", "lower", "upper"):  # roles of a few fills only: else unused
            if roles.index(r) not in role_of:
                values.setdefault(r, None)
        empty = inspect.Parameter.empty
        role_values = tuple(values.pop(r, empty) for r in roles[:-1])
        if values:
            raise TypeError(f"fast_entry: {fn.__name__} has no use for {sorted(values)}")
        npos = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
        entry = _core.FastEntry(fn, kind, tuple(p.name for p in params), npos, tuple(role_of),
                                tuple(p.default for p in params), role_values, empty, tag, key)
        functools.update_wrapper(entry, fn)
        return cast(_F, entry)

    return wrap


# The types of the values a memo key may hold besides (): hashing them runs no Python code, and
# the key holds each value's type too, since True == 1 == 1.0 and (4, 6) == (4.0, 6).
_ATOMS = frozenset({type(None), bool, int, float, str})


def memo_key(tag: str, shape: object, *values: object) -> Optional[tuple[object, ...]]:
    """The key a scheme's FastEntry (``fast_entry(MEMO, memo=(tag, names))``) looks up for a
    call with this shape and these values of ``names``, or None when the call has no key (a
    shape that is neither a tuple nor a tuple subclass that hashes and compares as one, as
    torch.Size does; a value that is not a plain atom)."""
    if type(shape) is not tuple:
        # a tuple subclass that hashes and compares as a tuple (torch.Size) keys as its tuple
        t = type(shape)
        if not isinstance(shape, tuple) or t.__hash__ is not tuple.__hash__ \
                or t.__eq__ is not tuple.__eq__:
            return None
        shape = tuple(shape)
    key: list[object] = [tag, shape]
    for v in values:
        t = type(v)
        if t not in _ATOMS and not (t is tuple and v == ()):
            return None
        key += (v, t)
    return tuple(key)


def fill_constant(out: np.ndarray, value: np.ndarray) -> None:
    """Sets every element of the C-contiguous ``out`` to the 0-d array ``value`` of ``out``'s
    dtype, bit for bit, over the library's threads (a plain memory fill)."""
    uint = np.dtype(f"u{out.dtype.itemsize}")
    item = (out.view(uint), int(value.view(uint)))
    plan = _local.plan
    if plan is not None and not plan.is_fresh(out):
        plan.items.append(item)
    else:
        _core.fill_pattern(*item)


def sparse(seed: int, stream: int, std: float, dtype: np.dtype, shape: tuple[int, ...],
           axis: int, sampled: int, sampled_are_zero: bool, start: tuple[int, ...],
           length: tuple[int, ...], out: np.ndarray, method: str = "floyd") -> None:
    """Fills the region ``out`` of a sparse matrix (stream-spec 3.8, or 3.9 for "keys")."""
    if dtype.itemsize == 2:
        out = out.view(np.uint16)
    plan = _local.plan
    if plan is not None and not plan.is_fresh(out):
        flush()  # not planned: what is pending for this memory must be written first
    _core.sparse(seed, stream, std, _DTYPE_CODES[dtype], shape[0], shape[1], axis, sampled,
                 sampled_are_zero, start[0], length[0], start[1], length[1], out,
                 SPARSE_METHODS[method])


#: sparse position mappings by name: stream-spec 3.8 ("floyd") and 3.9 ("keys").
SPARSE_METHODS = {"floyd": 0, "keys": 1}


set_num_threads = _core.set_num_threads
get_num_threads = _core.get_num_threads
thread_backend = _core.thread_backend
isa = _core.isa
available_isas = _core.available_isas
force_isa = _core.force_isa


# ----------------------------------------------------------------------------------------------
# Fill plans


class _Plan:
    """The fills recorded by the innermost :func:`deferred` block of one thread."""

    def __init__(self) -> None:
        # Items as _core.fill_plan takes them; each holds its output array, so the memory of a
        # pending fill cannot be freed and handed to a new array before the plan runs.
        self.items: list[tuple[Any, ...]] = []
        self.flushed = 0  # items flush() has run
        # Arrays empty() made inside the block, by data address: (bytes, weak reference).
        self.fresh: dict[int, tuple[int, weakref.ref[np.ndarray]]] = {}

    def is_fresh(self, out: np.ndarray) -> bool:
        """Whether ``out`` lies in an array that empty() made inside the block: such an array
        is a result its maker returns or reads at once (a new-array call, orthogonal's normal
        draw), so fills into it run immediately. (No pending item can share its memory: every
        pending item's array was alive, and so distinct, when empty() made it.)"""
        if not self.fresh:
            return False
        addr = _address(out)
        hit = self.fresh.get(addr)
        if hit is not None and hit[1]() is not None:
            return True
        for start, (size, ref) in list(self.fresh.items()):  # views inside a fresh array
            if ref() is None:
                del self.fresh[start]
            elif start <= addr < start + size:
                return True
        return False


class _Local(threading.local):
    # A class attribute, so that a thread that never planned reads None without the cost of
    # getattr's missed lookup (0.67 us per fill, a fifth of a small call).
    plan: Optional[_Plan] = None


_local = _Local()


def _address(arr: np.ndarray) -> int:
    return int(arr.__array_interface__["data"][0])


def flush() -> None:
    """Runs the fills the current :func:`deferred` block has recorded so far (none outside a
    block): code inside a block calls it before it reads or writes, other than through the
    engine, memory it handed to a fill as ``out``."""
    plan = _local.plan
    if plan is not None and plan.items:
        items, plan.items = plan.items, []
        plan.flushed += len(items)
        _core.fill_plan(items)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Records the fills requested inside the block (``fill``, ``fill_constant``) and runs them
    on leaving it as one fill plan: one engine call with the GIL released, the threads spread
    over all tensors as well as within each (docs/architecture.md). The values are those the
    calls would have written one by one, bit for bit; fills into overlapping memory keep their
    order.

    Inside the block, a buffer given to a fill as ``out`` holds undefined values until the
    block ends (or :func:`flush`): read or write it only through the engine. Fills into arrays
    that :func:`empty` made inside the block (the results of new-array calls, orthogonal's draw)
    run at once, and ``sparse`` first runs what is pending, so schemes that read their own draws
    keep their meaning. Nothing recorded runs if the block raises. Blocks are per thread; a
    nested block belongs to the outer one (its fills run when the outer block ends, and are
    dropped if the inner block raises, except those a flush() has run).
    """
    outer = _local.plan
    if outer is not None:
        mark = outer.flushed + len(outer.items)
        try:
            yield
        except BaseException:
            del outer.items[max(0, mark - outer.flushed):]
            raise
        return
    plan = _local.plan = _Plan()
    _core._deferred_blocks(1)  # fill_whole steps aside while a block is open
    try:
        yield
    finally:
        _local.plan = None
        _core._deferred_blocks(-1)
    if plan.items:
        _core.fill_plan(plan.items)
