"""Many tensors at once, by name: each parameter draws from the stream named after it."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

from . import schemes
from ._args import normalize_shape
from .manifest import TensorEntry, dtype_name
from .streams import normalize_seed

__all__ = ["init_params", "SCHEMES", "InitResult"]

#: Schemes without random draws: called without seed and stream.
DETERMINISTIC = frozenset({"zeros", "ones", "constant", "eye", "identity", "dirac"})
_RESERVED = ("seed", "stream", "out", "region")
# Whose argument checks would compute the whole tensor even for an empty region: checked when
# the tensor is made instead.
_CHECKED_WHEN_MADE = frozenset({"orthogonal", "delta_orthogonal"})

#: Scheme names init_params accepts: every scheme in :mod:`weightfill.schemes` and the engine's
#: uniform, normal, truncated_normal and sparse fills.
SCHEMES = tuple(sorted(
    [n for n in list(schemes.__all__) if n != "TRUNCATED_NORMAL_STD"]
    + ["uniform", "normal", "truncated_normal", "sparse"]
))

SchemeLike = Union[str, Callable[..., np.ndarray]]


@functools.lru_cache(maxsize=None)
def scheme_function(name: str) -> Callable[..., np.ndarray]:
    """The function of scheme ``name`` (a name from :data:`SCHEMES`). Cached: the lookup (an
    import statement and getattr, 0.4 us) was a tenth of a small weightfill.torch.init call;
    an unknown name raises every time."""
    if name in ("uniform", "normal", "truncated_normal", "sparse"):
        from . import distributions  # truncated_normal and sparse are looked up when used

        try:
            return getattr(distributions, name)  # type: ignore[no-any-return]
        except AttributeError:
            raise ValueError(f"scheme {name!r} is not available in this build") from None
    return getattr(schemes, name)  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=None)
def scheme_parameters(name: str) -> frozenset[str]:
    """The keyword arguments scheme ``name`` takes besides the target's (shape, seed, stream,
    dtype, out, region)."""
    taken = inspect.signature(scheme_function(name)).parameters
    return frozenset(taken) - {"shape", "seed", "stream", "dtype", "out", "region"}


def check_param_names(scheme: str, params: Mapping[str, Any], where: str) -> None:
    """A clear error for a parameter ``scheme`` does not take (``where`` names the owner)."""
    unknown = sorted(k for k in params if k not in scheme_parameters(scheme))
    if unknown:
        takes = ", ".join(sorted(scheme_parameters(scheme))) or "no parameters"
        raise ValueError(f"{where}: params {', '.join(map(repr, unknown))} not taken by "
                         f"{scheme} (it takes {takes})")


class InitResult(dict):  # type: ignore[type-arg]
    """The dict of arrays :func:`init_params` returns, with the :class:`~weightfill.Manifest`
    that regenerates it as ``.manifest`` (``None`` when the spec used callables)."""

    manifest: Any = None


def _wrap(where: str, err: Exception) -> Exception:
    """``err`` with ``where`` in front of its message (TypeError and ValueError only)."""
    return type(err)(f"{where}: {err}")


def _parse_entry(name: object, entry: object, seed: int, dtype: Any) -> tuple[
        str, tuple[Any, Any, dict[str, Any]]]:
    if not isinstance(name, str):
        raise TypeError(f"spec: parameter names must be str, not {type(name).__name__}")
    where = f"spec[{name!r}]"
    if not isinstance(entry, (tuple, list)) or len(entry) not in (2, 3):
        raise TypeError(f"{where} must be (shape, scheme) or (shape, scheme, options)")
    shape, scheme = entry[0], entry[1]
    if len(entry) == 3 and entry[2] is not None and not isinstance(entry[2], Mapping):
        raise TypeError(f"{where}: options must be a mapping, not {type(entry[2]).__name__}")
    options = dict(entry[2]) if len(entry) == 3 and entry[2] is not None else {}
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
    elif not callable(scheme):
        raise TypeError(f"{where}: scheme must be a str or a callable, "
                        f"not {type(scheme).__name__}")
    return where, (shape, scheme, options)


def _call(fn: Callable[..., Any], random: bool, shape: Any, seed: int, stream: str,
          options: dict[str, Any], where: str) -> Any:
    try:
        if random:
            return fn(shape, seed=seed, stream=stream, **options)
        return fn(shape, **options)
    except (TypeError, ValueError) as err:
        if type(err) in (TypeError, ValueError):
            raise _wrap(where, err) from err
        raise


#: Arguments an adapter's rule may not set: the adapter supplies them per tensor.
RULE_RESERVED = ("seed", "stream", "out", "region", "dtype", "shape")


def parse_rule(value: Any, where: str, *, layout: str,
               kinds: str = "a scheme name or (scheme, {params})") -> tuple[str, dict[str, Any]]:
    """An adapter rule's value, ``"scheme"`` or ``("scheme", {params})``, as (scheme, params),
    checked; schemes with a ``layout`` argument get ``layout`` (the framework's shape
    convention) unless the params set one. ``where`` names the rule in errors."""
    if isinstance(value, str):
        scheme, params = value, {}
    elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) \
            and isinstance(value[1], Mapping):
        scheme, params = value[0], dict(value[1])
    else:
        raise TypeError(f"rules[{where}] must be {kinds}, not {value!r}")
    if scheme not in SCHEMES:
        raise ValueError(f"rules[{where}]: unknown scheme {scheme!r}; use one of "
                         f"{', '.join(SCHEMES)}")
    bad = [k for k in RULE_RESERVED if k in params]
    if bad:
        raise ValueError(f"rules[{where}]: params may not set {', '.join(bad)}")
    check_param_names(scheme, params, f"rules[{where}]")
    if "layout" in scheme_parameters(scheme):
        params.setdefault("layout", layout)
    return scheme, params


def parse_spec(spec: Mapping[str, Any], *, seed: Optional[int],
               dtype: Any = np.float32) -> list[TensorEntry]:
    """The manifest entries of an :func:`init_params` spec (named schemes only), with every
    argument checked by making an empty region of each tensor; allocates nothing."""
    if not isinstance(spec, Mapping):
        raise TypeError(f"spec must be a mapping of name -> (shape, scheme[, options]), "
                        f"not {type(spec).__name__}")
    s = normalize_seed(seed)
    entries = []
    for name, raw in spec.items():
        where, (shape, scheme, options) = _parse_entry(name, raw, s, dtype)
        if not isinstance(scheme, str):
            raise TypeError(f"{where}: a manifest needs a named scheme, not a callable")
        try:
            full = normalize_shape(shape)
            dt = dtype_name(options["dtype"])
        except (TypeError, ValueError) as err:
            raise _wrap(where, err) from err
        if scheme not in _CHECKED_WHEN_MADE:
            probe = dict(options, region=(slice(0, 0),)) if full else options
            _call(scheme_function(scheme), scheme not in DETERMINISTIC, full, s, name, probe,
                  where)
        params = {k: v for k, v in options.items() if k != "dtype"}
        try:
            entries.append(TensorEntry(name=name, shape=full, dtype=dt, scheme=scheme,
                                       params=params, seed=s, stream=name, source="spec"))
        except (TypeError, ValueError) as err:
            raise _wrap(where, err) from err
    return entries


def init_params(
    spec: Mapping[str, Any],
    *,
    seed: Optional[int],
    dtype: Any = np.float32,
) -> InitResult:
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
    InitResult (a dict of str to numpy.ndarray)
        In the order of ``spec``; ``.manifest`` is the :class:`~weightfill.Manifest` that
        regenerates every tensor (``None`` if a scheme was a callable).

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
    result = InitResult()
    entries: Optional[list[TensorEntry]] = []
    for name, raw in spec.items():
        where, (shape, scheme, options) = _parse_entry(name, raw, s, dtype)
        if isinstance(scheme, str):
            fn, random = scheme_function(scheme), scheme not in DETERMINISTIC
        else:
            fn, random = scheme, True
        arr = result[name] = _call(fn, random, shape, s, name, options, where)
        if isinstance(scheme, str) and entries is not None:
            params = {k: v for k, v in options.items() if k != "dtype"}
            entries.append(TensorEntry(name=name, shape=arr.shape, dtype=dtype_name(arr.dtype),
                                       scheme=scheme, params=params, seed=s, stream=name,
                                       source="spec"))
        else:
            entries = None
    if entries is not None:
        from .manifest import Manifest

        result.manifest = Manifest(entries)
    return result
