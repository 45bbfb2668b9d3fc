"""weightfill: fast, bit-for-bit reproducible initialization of weight tensors.

Every value is a pure function of (seed, stream, global element index, distribution,
parameters, dtype): the same on every machine, instruction set, thread count, region and
chunking. See docs/stream-spec.md for the exact definition.
"""

from __future__ import annotations

from ._engine import available_isas, get_num_threads, isa
from ._engine import set_num_threads as _set_num_threads
from .distributions import normal, random_raw, sparse, truncated_normal, uniform
from .fans import compute_fans
from .gains import calculate_gain, second_moment_gain
from .manifest import Manifest, TensorEntry
from .params import init_params
from .schemes import (
    constant,
    delta_orthogonal,
    dirac,
    eye,
    glorot_normal,
    glorot_uniform,
    he_normal,
    he_uniform,
    identity,
    kaiming_normal,
    kaiming_uniform,
    lecun_normal,
    lecun_uniform,
    ones,
    orthogonal,
    variance_scaling,
    xavier_normal,
    xavier_uniform,
    zeros,
)
from .streams import stream_id

__all__ = [
    # engine
    "random_raw",
    "uniform",
    "normal",
    "truncated_normal",
    "sparse",
    "stream_id",
    "set_num_threads",
    "get_num_threads",
    "isa",
    "available_isas",
    # fans and gains
    "compute_fans",
    "calculate_gain",
    "second_moment_gain",
    # schemes
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
    # many tensors by name
    "init_params",
    "Manifest",
    "TensorEntry",
    # checkpoints (weightfill.checkpoint, imported on first use)
    "save",
    "verify",
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


def __getattr__(name: str) -> object:
    # save and verify live in weightfill.checkpoint, imported on first use.
    if name in ("save", "verify"):
        from . import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'weightfill' has no attribute {name!r}")
