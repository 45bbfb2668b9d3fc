"""weightfill: fast, bit-for-bit reproducible initialization of weight tensors.

Every value is a pure function of (seed, stream, global element index, distribution,
parameters, dtype): the same on every machine, instruction set, thread count, region and
chunking. See docs/stream-spec.md for the exact definition.
"""

from __future__ import annotations

from ._engine import available_isas, get_num_threads, isa, set_num_threads as _set_num_threads
from .distributions import normal, random_raw, sparse, truncated_normal, uniform
from .streams import stream_id

__all__ = [
    "available_isas",
    "get_num_threads",
    "isa",
    "normal",
    "random_raw",
    "set_num_threads",
    "sparse",
    "stream_id",
    "truncated_normal",
    "uniform",
]

__version__ = "0.1.0"


def set_num_threads(n: int) -> None:
    """Sets the number of threads used by every later fill (default: OMP_NUM_THREADS, or the
    number of CPUs). Results do not depend on it."""
    import operator

    if isinstance(n, bool):
        raise TypeError("n must be an integer, not bool")
    try:
        k = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be an integer, not {type(n).__name__}") from None
    if not 1 <= k <= 1024:
        raise ValueError(f"n must be in [1, 1024], got {k}")
    _set_num_threads(k)
