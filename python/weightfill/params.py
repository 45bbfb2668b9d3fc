"""Many tensors at once, by name: each parameter draws from the stream named after it."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

from . import schemes
from .streams import normalize_seed

__all__ = ["init_params", "SCHEMES"]

# Schemes without random draws: called without seed and stream.
_DETERMINISTIC = {"zeros", "ones", "constant", "eye", "identity", "dirac"}
_RESERVED = ("seed", "stream", "out", "region")

#: Scheme names init_params accepts: every scheme in :mod:`weightfill.schemes` and the engine's
#: uniform, normal, truncated_normal and sparse fills.
SCHEMES = tuple(sorted(
    [n for n in list(schemes.__all__) if n != "TRUNCATED_NORMAL_STD"]
    + ["uniform", "normal", "truncated_normal", "sparse"]
))

SchemeLike = Union[str, Callable[..., np.ndarray]]


def _resolve(name: str) -> Callable[..., np.ndarray]:
    if name in ("uniform", "normal", "truncated_normal", "sparse"):
        from . import distributions  # truncated_normal and sparse are looked up when used

        try:
            return getattr(distributions, name)  # type: ignore[no-any-return]
        except AttributeError:
            raise ValueError(f"scheme {name!r} is not available in this build") from None
    return getattr(schemes, name)  # type: ignore[no-any-return]


def init_params(
    spec: Mapping[str, Any],
    *,
    seed: Optional[int],
    dtype: Any = np.float32,
) -> dict[str, np.ndarray]:
    """Initializes many named tensors; tensor ``name`` uses ``stream=name``.

    Because each tensor's values depend only on (seed, its own name, its shape, scheme and
    options, dtype), adding, removing, renaming or reordering other entries of ``spec`` never
    changes a tensor: a model can grow a layer and keep every other initial weight.

    Parameters
    ----------
    spec : mapping of str to tuple
        ``name -> (shape, scheme)`` or ``name -> (shape, scheme, options)``. ``scheme`` is a
        name from :data:`SCHEMES` (e.g. ``"kaiming_uniform"``, ``"he_normal"``, ``"zeros"``,
        ``"normal"``) or a callable taking ``(shape, **options, seed=, stream=, dtype=)``.
        ``options`` is a mapping of the scheme's keyword arguments (``{"gain": 2.0}``,
        ``{"std": 0.02}``, ``{"layout": "keras"}``); it may override ``dtype`` for one tensor
        but not ``seed``, ``stream``, ``out`` or ``region``.
    seed : int in [0, 2**64), or None
        One seed for all tensors; ``None`` draws one fresh seed from the OS for the whole call.
    dtype : float dtype
        Default dtype of every tensor (float32).

    Returns
    -------
    dict of str to numpy.ndarray
        In the order of ``spec``.

    Examples
    --------
    >>> params = init_params({
    ...     "fc1.weight": ((256, 784), "kaiming_uniform", {"a": 5 ** 0.5}),
    ...     "fc1.bias": ((256,), "zeros"),
    ...     "fc2.weight": ((10, 256), "xavier_normal"),
    ... }, seed=0)

    Reproducibility
    ---------------
    ``params[name]`` equals ``scheme(shape, **options, seed=seed, stream=name, dtype=dtype)``
    bit for bit; see each scheme's note (orthogonal schemes depend on the BLAS).
    """
    if not isinstance(spec, Mapping):
        raise TypeError(f"spec must be a mapping of name -> (shape, scheme[, options]), "
                        f"not {type(spec).__name__}")
    s = normalize_seed(seed)
    result: dict[str, np.ndarray] = {}
    for name, entry in spec.items():
        if not isinstance(name, str):
            raise TypeError(f"spec: parameter names must be str, not {type(name).__name__}")
        where = f"spec[{name!r}]"
        if not isinstance(entry, (tuple, list)) or len(entry) not in (2, 3):
            raise TypeError(f"{where} must be (shape, scheme) or (shape, scheme, options)")
        shape, scheme = entry[0], entry[1]
        options = dict(entry[2]) if len(entry) == 3 and entry[2] is not None else {}
        if len(entry) == 3 and entry[2] is not None and not isinstance(entry[2], Mapping):
            raise TypeError(f"{where}: options must be a mapping, not {type(entry[2]).__name__}")
        bad = [k for k in _RESERVED if k in options]
        if bad:
            raise ValueError(f"{where}: options may not set {', '.join(bad)} "
                             "(init_params sets seed and stream; call the scheme directly "
                             "for out= or region=)")
        options.setdefault("dtype", dtype)
        if isinstance(scheme, str):
            if scheme not in SCHEMES:
                raise ValueError(f"{where}: unknown scheme {scheme!r}; use one of "
                                 f"{', '.join(SCHEMES)} or a callable")
            fn = _resolve(scheme)
            random = scheme not in _DETERMINISTIC
        elif callable(scheme):
            fn, random = scheme, True
        else:
            raise TypeError(f"{where}: scheme must be a str or a callable, "
                            f"not {type(scheme).__name__}")
        try:
            if random:
                result[name] = fn(shape, seed=s, stream=name, **options)
            else:
                result[name] = fn(shape, **options)
        except (TypeError, ValueError) as err:
            if type(err) in (TypeError, ValueError):
                raise type(err)(f"{where}: {err}") from err
            raise
    return result
