"""Seeds and streams: the inputs of the counter contract (docs/stream-spec.md, section 2)."""

from __future__ import annotations

import hashlib
import operator
import secrets

__all__ = ["stream_id"]

_U64 = 1 << 64


def stream_id(name: str) -> int:
    """The stream number of a named stream.

    The first eight bytes of the SHA-256 digest of ``name.encode("utf-8")``, read as a
    little-endian unsigned 64-bit integer. The same on every platform and in every process
    (unlike Python's ``hash()``), so a parameter's name selects the same stream everywhere.

    >>> stream_id("encoder.layer3.weight") == stream_id("encoder.layer3.weight")
    True
    """
    if not isinstance(name, str):
        raise TypeError(f"stream name must be a str, not {type(name).__name__}")
    try:
        data = name.encode("utf-8")
    except UnicodeEncodeError as err:  # a lone surrogate such as "\ud800" has no UTF-8 form
        raise ValueError(f"stream name {name!r} is not encodable as UTF-8 (character "
                         f"{name[err.start]!r} at position {err.start}); stream names are "
                         "hashed as UTF-8") from None
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "little")


def _as_u64(value: object, what: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an integer, not bool")
    try:
        v = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}") from None
    if not 0 <= v < _U64:
        raise ValueError(f"{what} must be in [0, 2**64), got {v}")
    return v


def normalize_seed(seed: object) -> int:
    """An int seed in [0, 2**64); None draws 64 bits of fresh OS entropy."""
    if type(seed) is int and 0 <= seed < _U64:  # fast path
        return seed
    if seed is None:
        return secrets.randbits(64)
    return _as_u64(seed, "seed")


def normalize_stream(stream: object) -> int:
    """An int stream in [0, 2**64), or a str mapped by :func:`stream_id`."""
    if type(stream) is int and 0 <= stream < _U64:  # fast path
        return stream
    if type(stream) is str:
        return _named_stream(stream)
    if isinstance(stream, str):  # a str subclass: its own __eq__ and __hash__, not cached
        return stream_id(stream)
    return _as_u64(stream, "stream")


# Stream ids of names seen recently, by exact str: a model's parameter names recur (every
# re-initialization, every shard of a tensor), and SHA-256 costs about half a microsecond per
# name. A plain dict rather than an lru_cache so that the C fast paths can read it too (they
# call _named_stream for a name it lacks); emptied when it holds 2**16 names.
_NAMED: dict[str, int] = {}


def _named_stream(name: str) -> int:
    sid = _NAMED.get(name)
    if sid is None:
        sid = stream_id(name)  # raises for a name with no UTF-8 form: never cached
        if len(_NAMED) >= 1 << 16:
            _NAMED.clear()
        _NAMED[name] = sid
    return sid
