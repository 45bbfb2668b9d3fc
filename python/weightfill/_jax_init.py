"""``weightfill.jax.initializers``: every ``jax.nn.initializers`` factory, filled by the engine.

Each factory has JAX's signature and defaults and returns an :class:`Initializer`, a callable
``init(key, shape, dtype=None, out_sharding=None) -> jax.Array`` that JAX, Flax linen and Flax
nnx accept wherever they take an initializer. Its values are those of a weightfill NumPy
scheme (``init.numpy(shape, seed=, stream=)``) at the ``(seed, stream)`` the key decides
(:func:`key_seed_stream`). Inside ``jax.jit`` the fill runs on the host through
``jax.pure_callback``; under ``jax.eval_shape`` nothing runs.

jax is imported by this module (it is imported by ``weightfill.jax`` only).
"""

from __future__ import annotations

import hashlib
import math
import numbers
from typing import Any, Callable, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from . import _engine, _jax_ffi
from ._args import BFLOAT16, as_float
from .params import DETERMINISTIC, SCHEMES, scheme_function

__all__ = [
    "Initializer",
    "key_seed_stream",
    "words_seed_stream",
    "zeros",
    "ones",
    "constant",
    "uniform",
    "normal",
    "truncated_normal",
    "variance_scaling",
    "glorot_uniform",
    "glorot_normal",
    "xavier_uniform",
    "xavier_normal",
    "he_uniform",
    "he_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "delta_orthogonal",
]

AxisLike = Union[int, Sequence[int]]
_FLOATS = (np.dtype(np.float16), BFLOAT16, np.dtype(np.float32), np.dtype(np.float64))


# ----------------------------------------------------------------------------------------------
# The key rule


def words_seed_stream(words: Any) -> tuple[int, int]:
    """``(seed, stream)`` of a PRNG key's data words (``jax.random.key_data(key)``).

    The rule (stream-spec independent; fixed):

    - ``seed`` = words 0 and 1 as one unsigned 64-bit integer, word 0 high:
      ``w0 * 2**32 + w1`` (a one-word key: ``w0``). ``jax.random.key(s)`` (threefry2x32) has
      the words ``[s >> 32, s & 0xFFFFFFFF]``, so its seed is ``s`` itself (for ``s >= 2**32`` only
      with ``jax_enable_x64``; otherwise JAX keeps the low 32 bits).
    - ``stream`` = 0 for a two-word key (threefry2x32, JAX's default); for a four-word key
      (``rbg``, ``unsafe_rbg``) words 2 and 3 the same way, ``w2 * 2**32 + w3``; for any
      other length the first 8 bytes of the SHA-256 digest of words 2.. as little-endian
      uint32 bytes, read little-endian (the construction of :func:`weightfill.stream_id`).

    Two- and four-word keys map one to one onto ``(seed, stream)`` pairs, so distinct keys
    (``split``, ``fold_in``) never share values; a 128-bit key keeps all its bits.
    """
    w = np.asarray(words)
    if w.dtype != np.uint32 or w.ndim != 1 or w.size == 0:
        raise ValueError(f"key data must be a non-empty 1-D uint32 array, got {w.dtype} "
                         f"of shape {w.shape}")
    v = [int(x) for x in w]
    seed = v[0] if len(v) == 1 else (v[0] << 32) | v[1]
    rest = v[2:]
    if not rest:
        stream = 0
    elif len(rest) == 2:
        stream = (rest[0] << 32) | rest[1]
    else:
        digest = hashlib.sha256(np.asarray(rest, "<u4").tobytes()).digest()
        stream = int.from_bytes(digest[:8], "little")
    return seed, stream


def _key_words(key: Any) -> jax.Array:
    """The uint32 data words of one PRNG key (typed, or a raw uint32 key of the default
    implementation), concrete or traced; a clear error for anything else."""
    if isinstance(key, (int, float, bool)) or key is None:
        raise TypeError("key must be a JAX PRNG key (jax.random.key(seed)) or a raw uint32 key "
                        f"(jax.random.PRNGKey(seed)), not {type(key).__name__}")
    if not hasattr(key, "dtype"):
        key = np.asarray(key)
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"key must be a single PRNG key (shape ()), got a key array of "
                             f"shape {key.shape}; use jax.vmap to initialize with many keys")
        return jax.random.key_data(key)
    if key.dtype != np.uint32:
        raise TypeError(f"key: a raw key must be uint32 (jax.random.PRNGKey), got dtype "
                        f"{key.dtype}")
    if key.ndim != 1:
        raise ValueError(f"key: a raw key must be 1-D (one key), got shape {key.shape}")
    try:
        typed = jax.random.wrap_key_data(key)
    except TypeError as err:
        raise ValueError(f"key: {err}") from None
    return jax.random.key_data(typed)


def key_seed_stream(key: Any) -> tuple[int, int]:
    """``(seed, stream)`` of a concrete JAX PRNG key, by :func:`words_seed_stream`.

    >>> import jax
    >>> key_seed_stream(jax.random.key(42))
    (42, 0)
    """
    words = _key_words(key)
    if isinstance(words, jax.core.Tracer):
        raise TypeError("key_seed_stream needs a concrete key, not a traced one")
    return words_seed_stream(np.asarray(words))


# ----------------------------------------------------------------------------------------------
# Arguments


def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of ints, not {type(shape).__name__}") from None
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise TypeError(f"shape must be a tuple of ints, got {shape!r}")
        if d < 0:
            raise ValueError(f"shape must have non-negative sizes, got {shape!r}")
        out.append(int(d))
    return tuple(out)


def _dtype(dtype: Any) -> np.dtype:
    """The dtype JAX would use (float64 becomes float32 unless jax_enable_x64), checked."""
    try:
        dt = np.dtype(jax.dtypes.canonicalize_dtype(
            jnp.float_ if dtype is None else dtype))
    except TypeError:
        raise TypeError(f"dtype: {dtype!r} is not a dtype") from None
    if dt not in _FLOATS:
        raise TypeError(f"dtype: {dt} is not supported (weightfill fills float16, bfloat16, "
                        "float32 and float64; complex and integer weights are not drawn)")
    return dt


def _real(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number, not bool")
    if isinstance(value, numbers.Real):
        return as_float(value, name)
    if isinstance(value, (np.ndarray, jax.Array)) and not isinstance(value, jax.core.Tracer) \
            and value.shape == () and value.dtype.kind in "iuf":
        return as_float(value, name)
    raise TypeError(f"{name} must be a real number, not {type(value).__name__}")


def _axes(value: Any, name: str) -> Union[int, list[int]]:
    """An axis argument as the JSON-able value the scheme takes (int or list of int)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a sequence of ints, not "
                        f"{type(value).__name__}") from None
    if any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in items):
        raise TypeError(f"{name} must be an int or a sequence of ints, got {value!r}")
    return [int(a) for a in items]


def _empty_region(shape: tuple[int, ...]) -> tuple[slice, ...]:
    return (slice(0, 0),) + tuple(slice(0, n) for n in shape[1:]) if shape else ()


# ----------------------------------------------------------------------------------------------
# The initializer


class _Recorder:
    """The weightfill initializers called while :func:`weightfill.jax.materialize` traces a
    constructor: (traced output, initializer)."""

    active: Optional[list[tuple[Any, "Initializer"]]] = None


class Initializer:
    """A JAX initializer whose values come from a weightfill scheme.

    ``init(key, shape, dtype=None, out_sharding=None)`` returns a ``jax.Array`` equal, bit for
    bit, to ``init.numpy(shape, seed=seed, stream=stream, dtype=dtype)`` where ``(seed,
    stream) = key_seed_stream(key)``.

    Attributes
    ----------
    name : str
        The ``jax.nn.initializers`` factory it mirrors (``"he_normal"``).
    scheme : str
        The weightfill scheme (a name in :data:`weightfill.params.SCHEMES`).
    params : dict
        The scheme's keyword arguments (JSON values): ``weightfill.<scheme>(shape, **params,
        seed=, stream=, dtype=)`` gives the values.
    column_axis : int or None
        ``orthogonal``/``delta_orthogonal`` only: JAX's column axis. The manifest form (scheme
        and params alone) exists only for the last axis.
    dtype : numpy.dtype or None
        The default dtype (JAX's ``dtype=`` factory argument).

    Reproducibility
    ---------------
    The values depend only on (key words, shape, dtype, arguments): not on jit, vmap, the
    device count or the call order.
    """

    def __init__(self, name: str, scheme: str, params: dict[str, Any], dtype: Any,
                 column_axis: Optional[int] = None) -> None:
        self.name = name
        self.scheme = scheme
        self.params = params
        self.dtype = None if dtype is None else _dtype(dtype)
        self.column_axis = column_axis
        self.__name__ = name
        self.__qualname__ = name

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"weightfill.jax.initializers.{self.name}({args})"

    @property
    def random(self) -> bool:
        return self.scheme not in DETERMINISTIC

    @property
    def manifest_params(self) -> dict[str, Any]:
        """``params``, or a ValueError when no scheme call alone reproduces the values."""
        if self.column_axis is not None and self.column_axis != -1:
            raise ValueError(f"{self.name}(column_axis={self.column_axis}) has no manifest form "
                             "(the scheme's columns are the last axis); use column_axis=-1")
        return dict(self.params)

    # The values -------------------------------------------------------------------------------
    def _check(self, shape: tuple[int, ...], dt: np.dtype) -> None:
        """Every argument error, raised before any callback is staged."""
        fn = scheme_function(self.scheme)
        if self.scheme == "orthogonal":
            if len(shape) < 2:
                raise ValueError(f"orthogonal initializer requires at least a 2D shape, got "
                                 f"{shape}")
            _column_axis(self.column_axis, len(shape))
            return
        if self.scheme == "delta_orthogonal":
            if len(shape) not in (3, 4, 5):
                raise ValueError(f"delta_orthogonal requires a 3D, 4D or 5D shape, got {shape}")
            if shape[-1] < shape[-2]:
                raise ValueError(f"delta_orthogonal: fan_in (shape[-2]={shape[-2]}) must be <= "
                                 f"fan_out (shape[-1]={shape[-1]})")
            return
        kw: dict[str, Any] = dict(self.params, dtype=dt, region=_empty_region(shape))
        if self.random:
            kw.update(seed=0, stream=0)
        fn(shape, **kw)

    def numpy(self, shape: Any, *, seed: Optional[int], stream: Union[int, str] = 0,
              dtype: Any = None, out: Optional[np.ndarray] = None) -> np.ndarray:
        """The values as a NumPy array: the weightfill scheme call this initializer makes."""
        full = _shape(shape)
        dt = _dtype(dtype if dtype is not None else self.dtype)
        fn = scheme_function(self.scheme)
        kw: dict[str, Any] = dict(self.params, dtype=dt)
        if self.random:
            kw.update(seed=seed, stream=stream)
        if self.scheme == "orthogonal" and _column_axis(self.column_axis, len(full)) != \
                len(full) - 1:
            # JAX: the (rows, cols) matrix with cols along column_axis, the rest in order.
            ax = _column_axis(self.column_axis, len(full))
            moved = tuple(np.delete(full, ax)) + (full[ax],)
            res = np.moveaxis(fn(moved, **kw), -1, ax)
        elif self.scheme == "delta_orthogonal" and \
                _column_axis(self.column_axis, 2) == 0:
            res = _delta_transposed(full, kw)
        else:
            if out is not None:
                return fn(full, out=out, **kw)  # type: ignore[no-any-return]
            return fn(full, **kw)  # type: ignore[no-any-return]
        if out is not None:
            out[...] = res
            return out
        return np.ascontiguousarray(res)

    def _fill(self, shape: tuple[int, ...], dt: np.dtype) -> Callable[[np.ndarray, np.ndarray],
                                                                     None]:
        """fill(words, out): ``out[i]`` (shape ``(*batch, *shape)``) from key ``words[i]``
        (shape ``(*batch, n)``); under ``vmap`` each batch element has its own key."""

        def fill(words: np.ndarray, out: np.ndarray) -> None:
            for i in np.ndindex(*words.shape[:-1]):
                seed, stream = words_seed_stream(words[i])
                self.numpy(shape, seed=seed, stream=stream, dtype=dt, out=out[i])

        return fill

    def _host(self, shape: tuple[int, ...], dt: np.dtype) -> Callable[[np.ndarray], np.ndarray]:
        fill = self._fill(shape, dt)

        def host(words: np.ndarray) -> np.ndarray:
            words = np.asarray(words)
            out = _engine.empty(words.shape[:-1] + shape, dt)
            fill(words, out)
            return out

        return host

    def _staged(self, words: Any, shape: tuple[int, ...], dt: np.dtype) -> jax.Array:
        """The traced call: the FFI target on the CPU (fills XLA's buffer in place), else
        ``pure_callback`` (fills a NumPy array that XLA then copies)."""
        result = jax.ShapeDtypeStruct(shape, dt)
        if jax.default_backend() == "cpu" and _jax_ffi.available():
            key = (self.scheme, repr(sorted(self.params.items())), self.column_axis, shape,
                   dt.str)
            k = _jax_ffi.slot(key, self._fill(shape, dt), dt)
            call = jax.ffi.ffi_call(_jax_ffi.TARGET, result, vmap_method="expand_dims")
            return call(words, jnp.asarray(k, jnp.int32))  # type: ignore[no-any-return]
        return jax.pure_callback(self._host(shape, dt), result,  # type: ignore[no-any-return]
                                 words, vmap_method="expand_dims")

    def __call__(self, key: Any, shape: Any, dtype: Any = None,
                 out_sharding: Any = None) -> jax.Array:
        full = _shape(shape)
        dt = _dtype(dtype if dtype is not None else self.dtype)
        self._check(full, dt)
        sharding = _out_sharding(out_sharding)
        if not self.random:
            value = self.params.get("value", {"zeros": 0.0, "ones": 1.0}.get(self.scheme))
            const = jnp.full(full, value, dt, device=sharding)
            if _Recorder.active is not None:
                _Recorder.active.append((const, self))
            return const
        words = _key_words(key)
        if not isinstance(words, jax.core.Tracer):
            seed, stream = words_seed_stream(np.asarray(words))
            if isinstance(sharding, jax.sharding.Sharding):
                from .jax import make_array  # each shard filled by itself, no full-size draw

                return make_array(self, full, sharding, seed=seed, stream=stream, dtype=dt)
            # device_put aliases the engine's (64-byte aligned) array on the CPU: no copy.
            return jax.device_put(self.numpy(full, seed=seed, stream=stream, dtype=dt))
        result = self._staged(words, full, dt)
        if sharding is not None:
            result = jax.lax.with_sharding_constraint(result, sharding)
        if _Recorder.active is not None:
            _Recorder.active.append((result, self))
        return result  # type: ignore[no-any-return]


def _out_sharding(value: Any) -> Any:
    if value is None or isinstance(value, jax.sharding.Sharding):
        return value
    if isinstance(value, jax.sharding.PartitionSpec):
        mesh = jax.sharding.get_mesh()
        if mesh is None or mesh.empty:
            raise ValueError("out_sharding: a PartitionSpec needs a mesh set with "
                             "jax.set_mesh(mesh); or pass a NamedSharding")
        return jax.sharding.NamedSharding(mesh, value)
    raise TypeError(f"out_sharding must be a jax.sharding.Sharding, a PartitionSpec or None, "
                    f"not {type(value).__name__}")


def _column_axis(axis: Optional[int], ndim: int) -> int:
    a = -1 if axis is None else axis
    if not -ndim <= a < ndim:
        raise ValueError(f"column_axis {a} is out of range for a {ndim}-D shape")
    return a % ndim


def _delta_transposed(full: tuple[int, ...], kw: dict[str, Any]) -> np.ndarray:
    """delta_orthogonal with column_axis=-2: JAX's orthogonal of the (in, out) centre with its
    columns on axis 0, i.e. ``orthogonal((out, in), scale).T`` at the kernel centre."""
    dt = kw["dtype"]
    q = scheme_function("orthogonal")((full[-1], full[-2]), kw["scale"], layout="jax",
                                      seed=kw["seed"], stream=kw["stream"], dtype=dt)
    w = np.zeros(full, dt)
    centre = tuple((k - 1) // 2 for k in full[:-2])
    w[centre] = q.T
    return w


# ----------------------------------------------------------------------------------------------
# Factories (jax.nn.initializers' signatures and defaults, JAX 0.10.2)


def _make(name: str, scheme: str, params: dict[str, Any], dtype: Any,
          column_axis: Optional[int] = None) -> Initializer:
    assert scheme in SCHEMES
    init = Initializer(name, scheme, params, dtype, column_axis)
    # Argument errors at construction, as far as they do not depend on the shape.
    probe = {"orthogonal": (1, 1), "delta_orthogonal": (1, 1, 1)}.get(scheme, (1,) * 6)
    if scheme in ("uniform", "normal", "truncated_normal", "constant"):
        probe = (1,)
    if not any(isinstance(v, list) or (isinstance(v, int) and k.endswith("axis"))
               for k, v in params.items()):
        scheme_function(scheme)(probe, **dict(params, region=_empty_region(probe),
                                              **({"seed": 0} if init.random else {})))
    return init


zeros = Initializer("zeros", "zeros", {}, None)
zeros.__doc__ = """Zeros, as ``jax.nn.initializers.zeros`` (an initializer itself; the key is
ignored)."""
ones = Initializer("ones", "ones", {}, None)
ones.__doc__ = """Ones, as ``jax.nn.initializers.ones`` (an initializer itself; the key is
ignored)."""


def constant(value: Any, dtype: Any = None) -> Initializer:
    """``value`` everywhere, as ``jax.nn.initializers.constant`` (a real scalar here)."""
    return _make("constant", "constant", {"value": _real(value, "value")}, dtype)


def uniform(scale: Any = 1e-2, dtype: Any = None) -> Initializer:
    """``U[0, scale)``, as ``jax.nn.initializers.uniform``: weightfill's
    ``uniform(shape, 0, scale)``."""
    s = _real(scale, "scale")
    if s < 0:
        raise ValueError(f"scale must be >= 0, got {s}")
    return _make("uniform", "uniform", {"low": 0.0, "high": s}, dtype)


def normal(stddev: Any = 1e-2, dtype: Any = None) -> Initializer:
    """``N(0, stddev**2)``, as ``jax.nn.initializers.normal``: weightfill's
    ``normal(shape, 0, stddev)``."""
    return _make("normal", "normal", {"mean": 0.0, "std": _real(stddev, "stddev")}, dtype)


def truncated_normal(stddev: Any = 1e-2, dtype: Any = None, lower: Any = -2.0,
                     upper: Any = 2.0) -> Initializer:
    """``stddev`` times a standard normal truncated to ``[lower, upper]``, as
    ``jax.nn.initializers.truncated_normal`` (``stddev`` is the untruncated one; no
    correction): weightfill's ``truncated_normal(shape, 0, stddev, lower, upper)``."""
    return _make("truncated_normal", "truncated_normal",
                 {"mean": 0.0, "std": _real(stddev, "stddev"), "lower": _real(lower, "lower"),
                  "upper": _real(upper, "upper")}, dtype)


def _axis_params(in_axis: Any, out_axis: Any, batch_axis: Any) -> dict[str, Any]:
    i, o, b = _axes(in_axis, "in_axis"), _axes(out_axis, "out_axis"), _axes(batch_axis,
                                                                          "batch_axis")
    if i == -2 and o == -1 and b == []:
        return {"layout": "jax"}  # JAX's rule: a 0-D or 1-D shape is an error, as in JAX
    return {"in_axis": i, "out_axis": o, "batch_axis": b}


def variance_scaling(scale: Any, mode: str, distribution: str, in_axis: AxisLike = -2,
                     out_axis: AxisLike = -1, batch_axis: AxisLike = (),
                     dtype: Any = None) -> Initializer:
    """As ``jax.nn.initializers.variance_scaling``: ``Var(W) = scale / n``; ``"normal"`` is
    untruncated, ``"truncated_normal"`` is truncated at 2 standard deviations and rescaled
    (JAX's meanings). weightfill's :func:`~weightfill.variance_scaling` with JAX's fan rule."""
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a str, not {type(mode).__name__}")
    if not isinstance(distribution, str):
        raise TypeError(f"distribution must be a str, not {type(distribution).__name__}")
    if distribution not in ("truncated_normal", "normal", "uniform"):
        raise ValueError(f"invalid distribution for variance scaling initializer: "
                         f"{distribution!r} (use 'truncated_normal', 'normal' or 'uniform')")
    params = {"scale": _real(scale, "scale"), "mode": mode, "distribution": distribution,
              **_axis_params(in_axis, out_axis, batch_axis)}
    return _make("variance_scaling", "variance_scaling", params, dtype)


def _preset(name: str, alias: str) -> Callable[..., Initializer]:
    def factory(in_axis: AxisLike = -2, out_axis: AxisLike = -1, batch_axis: AxisLike = (),
                dtype: Any = None) -> Initializer:
        return _make(alias, name, _axis_params(in_axis, out_axis, batch_axis), dtype)

    factory.__name__ = factory.__qualname__ = alias
    factory.__doc__ = (f"As ``jax.nn.initializers.{alias}``: weightfill's :func:`~weightfill."
                       f"{name}` with JAX's fan rule (``in_axis``, ``out_axis``, ``batch_axis``).")
    return factory


glorot_uniform = _preset("glorot_uniform", "glorot_uniform")
glorot_normal = _preset("glorot_normal", "glorot_normal")
xavier_uniform = _preset("glorot_uniform", "xavier_uniform")
xavier_normal = _preset("glorot_normal", "xavier_normal")
he_uniform = _preset("he_uniform", "he_uniform")
he_normal = _preset("he_normal", "he_normal")
kaiming_uniform = _preset("he_uniform", "kaiming_uniform")
kaiming_normal = _preset("he_normal", "kaiming_normal")
lecun_uniform = _preset("lecun_uniform", "lecun_uniform")
lecun_normal = _preset("lecun_normal", "lecun_normal")


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return int(value)


def orthogonal(scale: Any = 1.0, column_axis: int = -1, dtype: Any = None) -> Initializer:
    """A (semi-)orthogonal matrix times ``scale``, as ``jax.nn.initializers.orthogonal``:
    ``cols = shape[column_axis]``, ``rows`` the product of the other axes. weightfill's
    :func:`~weightfill.orthogonal` with ``layout="jax"`` (its columns moved to
    ``column_axis``)."""
    return _make("orthogonal", "orthogonal", {"gain": _real(scale, "scale"), "layout": "jax"},
                 dtype, _int(column_axis, "column_axis"))


def delta_orthogonal(scale: Any = 1.0, column_axis: int = -1, dtype: Any = None) -> Initializer:
    """Delta-orthogonal kernel, as ``jax.nn.initializers.delta_orthogonal``: weightfill's
    :func:`~weightfill.delta_orthogonal` (``column_axis`` -1 or 1; -2 or 0 takes the centre
    matrix's columns along its first axis, as JAX does)."""
    ax = _int(column_axis, "column_axis")
    _column_axis(ax, 2)
    return _make("delta_orthogonal", "delta_orthogonal",
                 {"scale": _real(scale, "scale"), "layout": "jax"}, dtype, ax)

