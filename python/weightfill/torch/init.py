"""A drop-in ``torch.nn.init``: the same functions, signatures, defaults and return values,
filled by weightfill.

Every function takes the tensor (any device, dtype float16/bfloat16/float32/float64, any
strides) and returns it, filled in place with the distribution torch's function of the same
name gives, and two keyword-only extras:

- ``seed=``: an int in [0, 2**64). Without it the seed is the one set by :func:`manual_seed`
  (or :func:`patch`), else ``generator.initial_seed()`` when a ``generator`` is passed, else
  ``torch.initial_seed()``.
- ``stream=``: an int or a name. Without it each call takes the next stream of a call counter
  kept per seed (and per generator): ``stream = "torch.nn.init#<k>"`` for the k-th call
  (k = 0, 1, ...) since the seed was set. :func:`manual_seed` and entering :func:`patch`
  start the counter afresh, as ``torch.manual_seed`` restarts torch's generator, so the same
  code under the same seed gives the same weights.

Call-counter streams depend on the order of the calls, as torch's generator does: adding a
layer changes the values of every layer built after it. Names do not: pass
``stream="layer.weight"``, or use :func:`weightfill.torch.init_module`, which names every
tensor's stream after its qualified name.

Semantics are torch's, not weightfill's where the two differ: ``trunc_normal_(a, b)`` takes
absolute bounds, ``sparse_`` zeroes per column, ``orthogonal_`` flattens the trailing
dimensions, ``kaiming_*`` of a zero-element tensor warns and does nothing, and meta tensors
are left alone.

Reproducibility
---------------
A call with explicit ``seed`` and ``stream`` equals the NumPy scheme of the same name with the
same (seed, stream) bit for bit: ``kaiming_uniform_(t, a, seed=s, stream=n)`` is
``weightfill.kaiming_uniform(t.shape, a, seed=s, stream=n, dtype=...)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import numbers
import sys
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Union

import torch

from .. import gains as _gains
from ..params import scheme_function
from ..streams import normalize_seed, normalize_stream
from ._tensors import FLOATS, allocate, numpy_view

__all__ = [
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
    "calculate_gain",
    "manual_seed",
    "patch",
]

Stream = Union[int, str]
_PREFIX = "torch.nn.init#"


# ----------------------------------------------------------------------------------------------
# Seeds and call counters


@dataclass
class _Seeding:
    """The seed set by manual_seed/patch (None: follow torch.initial_seed()) and the call
    counter of every seed used since."""

    seed: Optional[int] = None
    counters: dict[int, int] = field(default_factory=dict)
    # Per generator: (its initial_seed when last used, calls since).
    generators: "weakref.WeakKeyDictionary[torch.Generator, list[int]]" = field(
        default_factory=weakref.WeakKeyDictionary)


_seeding = _Seeding()
# While weightfill.torch.init_module runs a module's own reset_parameters: tensor id -> its
# qualified name and the seed, so the calls it makes draw from named streams.
_named: contextvars.ContextVar[Optional[tuple[dict[int, str], int]]] = contextvars.ContextVar(
    "weightfill_torch_named", default=None)
# Calls seen while recording: (tensor, scheme, params, seed, stream).
_recording: contextvars.ContextVar[Optional[list[tuple[Any, ...]]]] = contextvars.ContextVar(
    "weightfill_torch_recording", default=None)


def manual_seed(seed: int) -> None:
    """Sets the seed of every later call that passes no ``seed=`` and starts its call counter
    afresh (stream ``"torch.nn.init#0"`` next)."""
    s = normalize_seed(seed)
    _seeding.seed = s
    _seeding.counters[s] = 0


def _next_stream(counters: dict[int, int], seed: int) -> str:
    k = counters.get(seed, 0)
    counters[seed] = k + 1
    return f"{_PREFIX}{k}"


def _check_keys(seed: Optional[int], stream: Optional[Stream]) -> None:
    """Validates ``seed`` and ``stream`` of a call torch makes a no-op (a zero-element tensor):
    a bad argument is refused all the same, and no call counter moves, as no draw is made."""
    if seed is not None:
        normalize_seed(seed)
    if stream is not None:
        normalize_stream(stream)


def _seed_and_stream(tensor: torch.Tensor, seed: Optional[int], stream: Optional[Stream],
                     generator: Optional[torch.Generator]) -> tuple[int, Stream]:
    named = _named.get()
    if named is not None and seed is None and stream is None and id(tensor) in named[0]:
        return named[1], named[0][id(tensor)]
    if stream is not None:
        normalize_stream(stream)  # type and range, before anything is consumed
    if seed is not None:
        s = normalize_seed(seed)
        return s, stream if stream is not None else _next_stream(_seeding.counters, s)
    if generator is not None and _seeding.seed is None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, not "
                            f"{type(generator).__name__}")
        s = int(generator.initial_seed())
        state = _seeding.generators.get(generator)
        if state is None or state[0] != s:
            state = _seeding.generators[generator] = [s, 0]
        if stream is not None:
            return s, stream
        state[1] += 1
        return s, f"{_PREFIX}{state[1] - 1}"
    if _seeding.seed is not None:
        s = _seeding.seed
    else:
        s = int(torch.initial_seed())
    return s, stream if stream is not None else _next_stream(_seeding.counters, s)


# ----------------------------------------------------------------------------------------------
# The one fill path


def _apply(tensor: Any, scheme: str, params: dict[str, Any], seed: Optional[int],
           stream: Optional[Stream], generator: Optional[torch.Generator] = None,
           random: bool = True) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, not {type(tensor).__name__}")
    s, t = _seed_and_stream(tensor, seed, stream, generator) if random else (0, 0)
    rec = _recording.get()
    if rec is not None:
        rec.append((tensor, scheme, dict(params), s, t))
    if tensor.is_meta:  # no storage: torch's functions are no-ops too
        return tensor
    fn = scheme_function(scheme)
    if tensor.dtype not in FLOATS:
        if scheme in ("zeros", "ones", "constant"):  # torch fills integer tensors too
            value = params.get("value", 1 if scheme == "ones" else 0)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"val must be a real number, not {type(value).__name__}")
            try:
                with torch.no_grad():
                    return tensor.fill_(value)
            except RuntimeError as err:  # NaN, an infinity or an overflow into an integer
                raise ValueError(f"val {value!r} does not fit a tensor of dtype "
                                 f"{tensor.dtype}: {err}") from None
        raise TypeError(f"tensor: dtype {tensor.dtype} is not a floating-point dtype")
    direct = tensor.is_cpu and tensor.is_contiguous()  # is_cpu: 0.04 us, device.type 0.26
    target = tensor if direct else allocate(tuple(tensor.shape), tensor.dtype)
    out = numpy_view(target)
    if random:
        fn(tuple(tensor.shape), **params, seed=s, stream=t, dtype=out.dtype, out=out)
    else:
        fn(tuple(tensor.shape), **params, dtype=out.dtype, out=out)
    if not direct:  # a view, another layout or device: values in logical order, as torch
        with torch.no_grad():
            tensor.copy_(target)
    return tensor


def _torch_function(fn: Callable[..., Any], tensor: Any, **kwargs: Any) -> Any:
    """torch's own protocol for tensor subclasses with __torch_function__, as torch.nn.init
    does; returns NotImplemented when there is nothing to dispatch."""
    if torch.overrides.has_torch_function_variadic(tensor):
        return torch.overrides.handle_torch_function(fn, (tensor,), tensor=tensor, **kwargs)
    return NotImplemented


# ----------------------------------------------------------------------------------------------
# torch.nn.init, function for function


def calculate_gain(nonlinearity: Any, param: Optional[float] = None) -> float:
    """torch.nn.init.calculate_gain: the recommended gain for ``nonlinearity``."""
    return _gains.calculate_gain(nonlinearity, param)


def uniform_(tensor: torch.Tensor, a: float = 0.0, b: float = 1.0,
             generator: Optional[torch.Generator] = None, *, seed: Optional[int] = None,
             stream: Optional[Stream] = None) -> torch.Tensor:
    """Fills ``tensor`` with U(a, b), as torch.nn.init.uniform_."""
    r = _torch_function(uniform_, tensor, a=a, b=b, generator=generator)
    if r is not NotImplemented:
        return r  # type: ignore[no-any-return]
    return _apply(tensor, "uniform", {"low": a, "high": b}, seed, stream, generator)


def normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0,
            generator: Optional[torch.Generator] = None, *, seed: Optional[int] = None,
            stream: Optional[Stream] = None) -> torch.Tensor:
    """Fills ``tensor`` with N(mean, std**2), as torch.nn.init.normal_."""
    r = _torch_function(normal_, tensor, mean=mean, std=std, generator=generator)
    if r is not NotImplemented:
        return r  # type: ignore[no-any-return]
    return _apply(tensor, "normal", {"mean": mean, "std": std}, seed, stream, generator)


def trunc_normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator: Optional[torch.Generator] = None, *,
                  seed: Optional[int] = None, stream: Optional[Stream] = None) -> torch.Tensor:
    """Fills ``tensor`` with N(mean, std**2) conditioned on ``a <= x <= b``, as
    torch.nn.init.trunc_normal_: ``a`` and ``b`` are absolute values (weightfill's
    ``truncated_normal`` takes them in units of ``std``: ``(a - mean) / std``)."""
    r = _torch_function(trunc_normal_, tensor, mean=mean, std=std, a=a, b=b,
                        generator=generator)
    if r is not NotImplemented:
        return r  # type: ignore[no-any-return]
    for name, value in (("mean", mean), ("std", std), ("a", a), ("b", b)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, not {type(value).__name__}")
    if not std > 0:
        raise ValueError(f"std must be > 0 for trunc_normal_, got {std}")
    if (mean < a - 2 * std) or (mean > b + 2 * std):  # torch's own warning
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)
    params = {"mean": mean, "std": std, "lower": (a - mean) / std, "upper": (b - mean) / std}
    _apply(tensor, "truncated_normal", params, seed, stream, generator)
    if not tensor.is_meta:
        # (a - mean) / std * std + mean can miss a or b by an ulp of float64; torch's values
        # never leave [a, b], so neither do these.
        with torch.no_grad():
            tensor.clamp_(min=a, max=b)
    return tensor


def constant_(tensor: torch.Tensor, val: float) -> torch.Tensor:
    """Fills ``tensor`` with ``val``, as torch.nn.init.constant_."""
    r = _torch_function(constant_, tensor, val=val)
    if r is not NotImplemented:
        return r  # type: ignore[no-any-return]
    return _apply(tensor, "constant", {"value": val}, None, None, random=False)


def ones_(tensor: torch.Tensor) -> torch.Tensor:
    """Fills ``tensor`` with ones, as torch.nn.init.ones_."""
    return _apply(tensor, "ones", {}, None, None, random=False)


def zeros_(tensor: torch.Tensor) -> torch.Tensor:
    """Fills ``tensor`` with zeros, as torch.nn.init.zeros_."""
    return _apply(tensor, "zeros", {}, None, None, random=False)


def eye_(tensor: torch.Tensor) -> torch.Tensor:
    """The 2-D identity, as torch.nn.init.eye_."""
    if not isinstance(tensor, torch.Tensor) or tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _apply(tensor, "eye", {}, None, None, random=False)


def dirac_(tensor: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """The Dirac delta of a convolution weight, as torch.nn.init.dirac_."""
    if not isinstance(tensor, torch.Tensor) or tensor.ndimension() not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    return _apply(tensor, "dirac", {"groups": groups}, None, None, random=False)


def xavier_uniform_(tensor: torch.Tensor, gain: float = 1.0,
                    generator: Optional[torch.Generator] = None, *, seed: Optional[int] = None,
                    stream: Optional[Stream] = None) -> torch.Tensor:
    """Xavier/Glorot uniform, as torch.nn.init.xavier_uniform_."""
    return _apply(tensor, "xavier_uniform", {"gain": gain}, seed, stream, generator)


def xavier_normal_(tensor: torch.Tensor, gain: float = 1.0,
                   generator: Optional[torch.Generator] = None, *, seed: Optional[int] = None,
                   stream: Optional[Stream] = None) -> torch.Tensor:
    """Xavier/Glorot normal (untruncated), as torch.nn.init.xavier_normal_."""
    return _apply(tensor, "xavier_normal", {"gain": gain}, seed, stream, generator)


def _kaiming(fn: Callable[..., Any], scheme: str, tensor: Any, a: float, mode: str,
             nonlinearity: str, generator: Optional[torch.Generator], seed: Optional[int],
             stream: Optional[Stream]) -> torch.Tensor:
    r = _torch_function(fn, tensor, a=a, mode=mode, nonlinearity=nonlinearity,
                        generator=generator)
    if r is not NotImplemented:
        return r  # type: ignore[no-any-return]
    if isinstance(tensor, torch.Tensor) and 0 in tensor.shape:
        _check_keys(seed, stream)
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return tensor
    params = {"a": a, "mode": mode, "nonlinearity": nonlinearity}
    return _apply(tensor, scheme, params, seed, stream, generator)


def kaiming_uniform_(tensor: torch.Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     generator: Optional[torch.Generator] = None, *, seed: Optional[int] = None,
                     stream: Optional[Stream] = None) -> torch.Tensor:
    """Kaiming/He uniform, as torch.nn.init.kaiming_uniform_."""
    return _kaiming(kaiming_uniform_, "kaiming_uniform", tensor, a, mode, nonlinearity,
                    generator, seed, stream)


def kaiming_normal_(tensor: torch.Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    generator: Optional[torch.Generator] = None, *, seed: Optional[int] = None,
                    stream: Optional[Stream] = None) -> torch.Tensor:
    """Kaiming/He normal (untruncated), as torch.nn.init.kaiming_normal_."""
    return _kaiming(kaiming_normal_, "kaiming_normal", tensor, a, mode, nonlinearity,
                    generator, seed, stream)


def orthogonal_(tensor: torch.Tensor, gain: float = 1,
                generator: Optional[torch.Generator] = None, *, seed: Optional[int] = None,
                stream: Optional[Stream] = None) -> torch.Tensor:
    """A (semi-)orthogonal matrix over ``(shape[0], prod(shape[1:]))``, as
    torch.nn.init.orthogonal_ (a different, equally Haar-distributed map from the draw)."""
    if not isinstance(tensor, torch.Tensor) or tensor.ndimension() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:  # torch: "no-op"
        _check_keys(seed, stream)
        return tensor
    return _apply(tensor, "orthogonal", {"gain": gain}, seed, stream, generator)


def sparse_(tensor: torch.Tensor, sparsity: float, std: float = 0.01,
            generator: Optional[torch.Generator] = None, *, seed: Optional[int] = None,
            stream: Optional[Stream] = None) -> torch.Tensor:
    """N(0, std**2) with ``ceil(sparsity * rows)`` zeros in every column, as
    torch.nn.init.sparse_."""
    if not isinstance(tensor, torch.Tensor) or tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _apply(tensor, "sparse", {"sparsity": sparsity, "std": std}, seed, stream, generator)


def _deprecated(meth: Callable[..., Any]) -> Callable[..., Any]:
    """torch.nn.init's deprecated names without the underscore (uniform, normal, ...)."""
    new, old = meth.__name__, meth.__name__[:-1]

    def deprecated_init(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(f"`nn.init.{old}` is now deprecated in favor of `nn.init.{new}`.",
                      FutureWarning, stacklevel=2)
        return meth(*args, **kwargs)

    deprecated_init.__name__ = deprecated_init.__qualname__ = old
    deprecated_init.__doc__ = f"Deprecated alias of :func:`{new}` (as in torch.nn.init)."
    return deprecated_init


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
eye = _deprecated(eye_)
dirac = _deprecated(dirac_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)

#: torch.nn.init's public names that this module replaces under :func:`patch`.
REPLACED = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
            "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
            "kaiming_normal_", "orthogonal_", "sparse_", "calculate_gain", "uniform", "normal",
            "constant", "eye", "dirac", "xavier_uniform", "xavier_normal", "kaiming_uniform",
            "kaiming_normal", "orthogonal", "sparse")


# ----------------------------------------------------------------------------------------------
# patch()

_depth = 0
_saved: list[tuple[Any, str, Any]] = []  # (module, attribute, torch's function), outermost patch


def _replace_everywhere() -> None:
    """Points every loaded module's reference to a torch.nn.init function at ours: torch.nn.init
    itself and the copies other modules imported by name (``from torch.nn.init import
    xavier_uniform_`` in torch.nn.modules.activation and .transformer, and in user code)."""
    import torch.nn.init as tinit

    ours = sys.modules[__name__]
    torchs = {n: getattr(tinit, n) for n in REPLACED}  # before torch.nn.init itself changes
    originals = {id(f): n for n, f in torchs.items()}
    for mod in list(sys.modules.values()):
        if mod is None or mod is ours:
            continue
        d = getattr(mod, "__dict__", None)
        if not isinstance(d, dict):
            continue
        for attr, value in list(d.items()):
            name = originals.get(id(value))
            if name is not None and value is torchs[name]:
                _saved.append((mod, attr, value))
                setattr(mod, attr, getattr(ours, name))


@contextlib.contextmanager
def patch(seed: Optional[int] = None) -> Iterator[None]:
    """Within the block, ``torch.nn.init.*`` (and every copy of those functions that loaded
    modules imported by name) are this module's functions, so existing code (``nn.Linear``,
    ``nn.TransformerEncoderLayer``, a Hugging Face model built from its config) initializes
    with weightfill. Restored on exit, also on an exception; blocks nest (the inner seed
    applies inside and the outer one's counter resumes after).

    ``seed``: the seed of calls that pass none (like :func:`manual_seed`, and the counter
    starts afresh); ``None`` keeps the current rule (manual_seed's seed, else
    ``torch.initial_seed()``).

    Only ``torch.nn.init`` is routed: code that calls ``tensor.normal_()`` or ``torch.randn``
    directly still uses torch's generator. Not thread-safe (it rebinds module attributes).

    Reproducibility
    ---------------
    The streams are call counters: values depend on the order of the calls, as with torch.
    """
    global _depth
    previous = (_seeding.seed, dict(_seeding.counters))
    if seed is not None:
        manual_seed(seed)
    if _depth == 0:
        _replace_everywhere()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            while _saved:
                mod, attr, value = _saved.pop()
                setattr(mod, attr, value)
        _seeding.seed, _seeding.counters = previous[0], previous[1]


@contextlib.contextmanager
def _named_streams(names: dict[int, str], seed: int) -> Iterator[None]:
    """Calls on the tensors in ``names`` (id -> qualified name) draw from stream = name."""
    token = _named.set((names, seed))
    try:
        yield
    finally:
        _named.reset(token)


@contextlib.contextmanager
def _record() -> Iterator[list[tuple[Any, ...]]]:
    calls: list[tuple[Any, ...]] = []
    token = _recording.set(calls)
    try:
        yield calls
    finally:
        _recording.reset(token)
