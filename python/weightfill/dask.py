"""dask.array adapter: a lazy dask array whose every chunk the engine fills with ``region=``.

``weightfill.dask.array("normal", shape, chunks=..., seed=...)`` is a ``dask.array.Array``
whose block at array location ``(a0:b0, a1:b1, ...)`` is ``weightfill.normal(shape, ...,
region=(slice(a0, b0), slice(a1, b1), ...))``. By the counter contract that block equals the
same slice of the whole NumPy call bit for bit, so the values never depend on the chunking,
on which worker computes which chunk, or on a chunk being recomputed after a worker is lost.

dask is imported when this module is imported, never by ``import weightfill``.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Mapping, Optional, Union

import dask
import dask.array
import numpy as np
from dask.base import tokenize
from dask.blockwise import blockwise
from dask.highlevelgraph import HighLevelGraph
from dask.layers import ArraySliceDep

from . import _engine
from ._args import normalize_shape
from .fans import check_layout
from .params import DETERMINISTIC, SCHEMES, scheme_function
from .schemes._common import _conv_axes
from .streams import normalize_seed, normalize_stream

__all__ = ["array", "SCHEMES"]

Stream = Union[int, str]

#: Schemes whose result is a property of the whole matrix (computed once, then sliced).
_WHOLE = frozenset({"orthogonal"})
_RESERVED = ("out", "region", "shape")
_MISSING: Any = object()


def array(
    scheme: str,
    shape: Any,
    *,
    chunks: Any = "auto",
    seed: Optional[int] = _MISSING,
    stream: Stream = 0,
    dtype: Any = None,
    **params: Any,
) -> dask.array.Array:
    """A lazy dask array of ``scheme(shape, **params, seed=seed, stream=stream, dtype=dtype)``.

    Parameters
    ----------
    scheme : str
        Any name in :data:`weightfill.params.SCHEMES`: the engine's ``uniform``, ``normal``,
        ``truncated_normal`` and ``sparse`` and every scheme (``kaiming_normal``,
        ``he_normal``, ``zeros``, ``orthogonal``, ...).
    shape : int or tuple of int
        Shape of the full tensor.
    chunks : dask chunks
        Anything ``dask.array.normalize_chunks`` accepts (``"auto"``, ``(2048, -1)``,
        explicit block sizes per axis). ``"auto"`` sizes blocks by ``array.chunk-size`` for the
        output dtype.
    seed : int in [0, 2**64), or None
        Required for random schemes. ``None`` draws one seed from the OS now, at call time, so
        every chunk (and every recomputation of one) uses the same seed; the array is then not
        reproducible across calls. Deterministic schemes (zeros, ones, constant, eye,
        identity, dirac) ignore ``seed`` and ``stream``.
    stream : int in [0, 2**64), or str (a parameter name)
    dtype : float32 (default), float64, float16 or ml_dtypes.bfloat16
    **params
        The scheme's own keyword arguments (``std=0.02``, ``mode="fan_out"``,
        ``sparsity=0.9``, ``layout="keras"``, ...). Positional parameters of the NumPy call
        (``normal``'s ``mean`` and ``std``) are given by name.

    Returns
    -------
    dask.array.Array
        Lazy; nothing is computed until ``.compute()``, ``.persist()``, ``.to_zarr()`` or
        another dask operation asks for it. Its name is a token of the arguments, so two
        equal calls give the same dask keys and dask computes them once.

    Raises
    ------
    ValueError, TypeError
        At call time, never at compute time, for an unknown scheme, bad parameters, shape,
        chunks or dtype: the scheme itself checks its arguments on an empty region of the full
        shape before the graph is built.

    Notes
    -----
    Each block is one task: the scheme called with ``region=`` the block's array location,
    taken from dask's own ``ArraySliceDep`` (the slices ``dask.array.from_array`` uses). The
    graph holds only the scheme's name and scalar arguments: no array, and nothing that grows
    with the tensor.

    ``orthogonal`` is a property of the whole matrix, so one task computes the whole matrix
    (its time and about 2.4x the output's memory, on one worker) and each block is a copy of
    its slice: the tensor must fit in one worker's memory. ``delta_orthogonal`` fills each
    block with ``region=``, and each block computes the ``(in, out)`` orthogonal matrix again
    (``in * out * min(in, out)`` multiply-adds per block, small next to the kernel for the
    usual shapes). Both use NumPy's BLAS, see :func:`weightfill.orthogonal`.

    Threads: a worker started by a dask nanny (``LocalCluster(processes=True)``,
    ``dask worker``) has ``OMP_NUM_THREADS=1`` (dask's ``distributed.nanny.pre-spawn-environ``),
    so each task fills on one thread and dask's worker threads are the parallelism: no
    oversubscription whatever the number of worker processes per host. See docs/dask.md.

    Examples
    --------
    >>> import weightfill.dask
    >>> w = weightfill.dask.array("normal", (16384, 8192), chunks=(2048, 8192), std=0.02,
    ...                           seed=0, stream="decoder.layer0.weight")
    >>> w.to_zarr("weights.zarr")  # doctest: +SKIP

    Reproducibility
    ---------------
    ``array(scheme, shape, chunks=c, ...).compute()`` equals ``scheme(shape, ...)`` bit for
    bit for every chunking ``c``, on any number of workers (for orthogonal schemes, given the
    same NumPy/BLAS build and CPU, as the NumPy call itself).
    """
    if not isinstance(scheme, str):
        raise TypeError(f"scheme must be a str, not {type(scheme).__name__}")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    bad = [k for k in _RESERVED if k in params]
    if bad:
        raise TypeError(f"{', '.join(bad)} cannot be given: the dask array's chunks are the "
                        "regions, and shape is the second argument")
    full = normalize_shape(shape)
    random = scheme not in DETERMINISTIC
    kw: dict[str, Any] = dict(params)
    if random:
        if seed is _MISSING:
            raise TypeError(f"scheme {scheme!r} needs seed= (an int in [0, 2**64), or None for "
                            "fresh OS entropy)")
        # Resolved once here: every chunk, and every recomputation of one, uses the same seed.
        kw["seed"] = normalize_seed(seed)
        normalize_stream(stream)  # checked now; passed as given (a name stays readable)
        kw["stream"] = stream
    out_dtype = _validate(scheme, full, dtype, kw)
    kw["dtype"] = out_dtype
    try:
        blocks = dask.array.core.normalize_chunks(chunks, full, dtype=out_dtype)
    except ZeroDivisionError:  # dask divides by a 0 block size of a non-empty axis
        raise ValueError(f"chunks: block sizes must be >= 1 (or -1 for a whole axis) on "
                         f"axes of nonzero length, got {chunks!r}") from None
    except (TypeError, ValueError) as err:
        raise ValueError(f"chunks: {err}") from err
    token = tokenize("weightfill", scheme, full, blocks, kw)
    name = f"weightfill-{scheme}-{token}"
    out_ind = tuple(range(len(full)))
    meta = np.empty((0,) * len(full), out_dtype)
    if scheme in _WHOLE:
        # One task computes the matrix; dask's rechunk slices the blocks out of it.
        whole = dask.delayed(_fill_whole, pure=True, name=f"{name}-whole")(scheme, full, kw)
        one = dask.array.from_delayed(whole, full, dtype=out_dtype, meta=meta)
        return one.rechunk(blocks)
    # dask's own from_array and ones build their graphs this way: one Blockwise layer whose
    # only per-block argument is ArraySliceDep's tuple of slices, which is the engine's
    # region. It is built in O(1) whatever the number of blocks (31 ms for 65536 blocks on the
    # loaded 2-core dev machine; a map_blocks with block_info over the same blocks, which
    # carries a dict per block, took 6.3 s to build and materialize against this graph's 2.4 s).
    layer = blockwise(_fill_region, name, out_ind, ArraySliceDep(blocks), out_ind,
                      numblocks={}, scheme=scheme, shape=full, kwargs=kw)
    graph = HighLevelGraph.from_collections(name, layer)
    return dask.array.core.Array(graph, name, blocks, meta=meta)


def _validate(scheme: str, full: tuple[int, ...], dtype: Any, kw: Mapping[str, Any]) -> np.dtype:
    """Runs the scheme's own argument checks on an empty region (or, for the orthogonal
    schemes, whose empty regions still compute the whole matrix, on a shape of the same rank
    with no elements) and returns the output dtype."""
    fn = scheme_function(scheme)
    probe_shape = full
    if scheme == "orthogonal" and len(full) >= 2:
        probe_shape = (0,) + full[1:]
    elif scheme == "delta_orthogonal" and len(full) in (3, 4, 5):
        # Empty kernel axes keep in and out (their check) but make the tensor empty, where
        # delta_orthogonal returns before drawing its matrix.
        _, _, kernel = _conv_axes(full, check_layout(kw.get("layout", "keras")))
        probe_shape = tuple(0 if a in kernel else n for a, n in enumerate(full))
    empty = tuple(slice(0, 0) for _ in probe_shape)
    try:
        probe = fn(probe_shape, dtype=dtype, region=empty, **kw)
    except TypeError as err:
        if "unexpected keyword argument" in str(err):
            raise TypeError(f"scheme {scheme!r}: {err}") from err
        raise
    return np.dtype(probe.dtype)


def _fill_region(region: tuple[slice, ...], *, scheme: str, shape: tuple[int, ...],
                 kwargs: Mapping[str, Any]) -> np.ndarray:
    """One block: the scheme's fill of ``region`` of the full ``shape`` (a task)."""
    _cap_threads()
    return scheme_function(scheme)(shape, region=region, **kwargs)


def _fill_whole(scheme: str, shape: tuple[int, ...], kwargs: Mapping[str, Any]) -> np.ndarray:
    """The whole tensor, for schemes that are a property of the whole matrix (a task)."""
    _cap_threads()
    return scheme_function(scheme)(shape, **kwargs)


def _cap_threads() -> None:
    """In a dask worker, at most (CPUs this process may use) // (the worker's task threads)
    weightfill threads, so a worker's concurrent tasks never run more fill threads than it has
    cores. Only ever lowers the count: a nanny-started worker already has 1 (its
    OMP_NUM_THREADS=1), and several worker processes on one host cannot see each other here,
    which is why that environment setting matters. Measured in benchmarks/bench_dask.py: 2
    workers x 2 weightfill threads on 2 cores took 1.6x the time of 2 x 1."""
    distributed = sys.modules.get("distributed")
    if distributed is None:  # a worker has imported distributed; anything else is not one
        return
    try:
        worker = distributed.get_worker()
    except ValueError:  # not inside a worker's task
        return
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    budget = max(1, (cpus or 1) // max(1, worker.state.nthreads))
    if _engine.get_num_threads() > budget:
        _engine.set_num_threads(budget)
