"""Keras 3 adapter: ``keras.initializers`` classes whose values come from weightfill's schemes.

:data:`initializers` holds ``GlorotUniform``, ``GlorotNormal``, ``HeUniform``, ``HeNormal``,
``LecunUniform``, ``LecunNormal``, ``VarianceScaling``, ``RandomUniform``, ``RandomNormal``,
``TruncatedNormal``, ``Orthogonal``, ``Identity``, ``Zeros``, ``Ones`` and ``Constant``:
``keras.initializers.Initializer`` subclasses with Keras 3's constructor arguments and
defaults, ``get_config``/``from_config``, registered as Keras serializables (package
``"weightfill"``) so a model saved to ``.keras`` and loaded again keeps them. The values are
filled by the engine on the host and converted to a tensor of the active backend
(``keras.ops.convert_to_tensor``); they work with every backend (tested: jax, torch).

Seeds, as Keras 3 documents for its own initializers:

- an int: reproducible; ``weightfill.<scheme>(shape, ..., seed=seed, stream=0)``;
- ``None``: a fresh seed is drawn when the initializer is built, so one instance gives the
  same values on every call, two instances differ; the config keeps ``None`` (a loaded
  model's initializer draws again);
- a ``keras.random.SeedGenerator``: fresh values on every call (the generator's next state,
  two uint32 words ``[a, b]``, is ``(seed, stream) = (a, b)``).

keras is imported by this module only, never by ``import weightfill``. docs/keras.md.
"""

from __future__ import annotations

import math
import secrets
import types
from typing import Any, Optional

import keras
import numpy as np

from . import distributions as _d
from . import schemes as _s
from ._args import as_float

__all__ = ["initializers", "WeightfillInitializer"]

_PACKAGE = "weightfill"
_FLOATS = {"float16": np.float16, "float32": np.float32, "float64": np.float64}


def _dtype(dtype: Any) -> tuple[str, Any]:
    name = keras.backend.standardize_dtype(dtype if dtype is not None else
                                           keras.backend.floatx())
    if name == "bfloat16":
        from ._args import BFLOAT16

        return name, BFLOAT16
    if name not in _FLOATS:
        raise TypeError(f"dtype: {name} is not supported (weightfill fills float16, bfloat16, "
                        "float32 and float64)")
    return name, _FLOATS[name]


def _shape(shape: Any) -> tuple[int, ...]:
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of ints, not {type(shape).__name__}") from None
    if any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0 for d in dims):
        raise TypeError(f"shape must be a tuple of non-negative ints, got {shape!r}")
    return tuple(int(d) for d in dims)


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, not {type(value).__name__}")
    v = as_float(value, name)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


class WeightfillInitializer(keras.initializers.Initializer):
    """Base of the weightfill Keras initializers: ``init(shape, dtype=None)`` -> tensor."""

    random = True

    def __init__(self, seed: Any = None) -> None:
        self._init_seed = seed
        if seed is None:
            self.seed: Any = secrets.randbits(63)  # Keras: drawn once, at construction
        elif isinstance(seed, dict):
            self.seed = keras.saving.deserialize_keras_object(seed)
        elif isinstance(seed, keras.random.SeedGenerator):
            self.seed = seed
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            if not 0 <= int(seed) < 2**64:
                raise ValueError(f"seed must be in [0, 2**64), got {seed}")
            self.seed = int(seed)
        else:
            raise ValueError("`seed` argument should be an instance of "
                             "`keras.random.SeedGenerator()` or an integer (or None). "
                             f"Received: seed={seed!r}")

    def _seed_stream(self) -> tuple[int, int]:
        if isinstance(self.seed, keras.random.SeedGenerator):
            w = np.asarray(keras.ops.convert_to_numpy(self.seed.next())).astype(np.int64)
            return int(w[0]) & 0xFFFFFFFF, int(w[1]) & 0xFFFFFFFF
        return self.seed, 0

    def numpy(self, shape: Any, dtype: Any = None, *, seed: Optional[int] = None,
              stream: int = 0) -> np.ndarray:
        """The values as a NumPy array at an explicit ``(seed, stream)``."""
        return self._fill(_shape(shape), _dtype(dtype)[1], seed, stream)

    def _fill(self, shape: tuple[int, ...], dt: Any, seed: Optional[int],
              stream: int) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        full = _shape(shape)
        name, dt = _dtype(dtype)
        seed, stream = self._seed_stream() if self.random else (None, 0)
        values = self._fill(full, dt, seed, stream)
        return keras.ops.convert_to_tensor(values, dtype=name)

    def get_config(self) -> dict[str, Any]:
        if not self.random:
            return {}
        return {"seed": keras.saving.serialize_keras_object(self._init_seed)}


def _register(cls: type) -> type:
    return keras.saving.register_keras_serializable(package=_PACKAGE)(cls)


class VarianceScaling(WeightfillInitializer):
    """As ``keras.initializers.VarianceScaling``: ``Var(W) = scale / max(1, n)``; Keras's
    ``distribution="normal"`` is its truncated normal (Keras maps it so), ``"untruncated_normal"``
    the plain one. ``input_axes``/``output_axes`` (both, or neither) give the fans as the
    products of those axes, as Keras's ``compute_fans`` does. Values:
    :func:`weightfill.variance_scaling` with Keras's fan rule."""

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", seed: Any = None,
                 input_axes: Any = None, output_axes: Any = None) -> None:
        scale = _real(scale, "scale")
        if scale <= 0.0:
            raise ValueError(f"Argument `scale` must be positive float. Received: scale={scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"Invalid `mode` argument: {mode!r}. Please use one of "
                             "'fan_in', 'fan_out', 'fan_avg'")
        if not isinstance(distribution, str):
            raise TypeError(f"distribution must be a str, not {type(distribution).__name__}")
        distribution = distribution.lower()
        if distribution == "normal":
            distribution = "truncated_normal"  # Keras 3's own mapping
        if distribution not in ("uniform", "truncated_normal", "untruncated_normal"):
            raise ValueError(f"Invalid `distribution` argument: {distribution!r}. Please use "
                             "one of 'uniform', 'truncated_normal', 'untruncated_normal'")
        for name, axes in (("input_axes", input_axes), ("output_axes", output_axes)):
            if axes is not None and (isinstance(axes, (str, bytes)) or not all(
                    isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                    for a in axes)):
                raise TypeError(f"{name} must be a list of ints or None, got {axes!r}")
        self.scale, self.mode, self.distribution = scale, mode, distribution
        self.input_axes = None if input_axes is None else [int(a) for a in input_axes]
        self.output_axes = None if output_axes is None else [int(a) for a in output_axes]
        super().__init__(seed=seed)

    def _fill(self, shape, dt, seed, stream):  # type: ignore[no-untyped-def]
        dist = "normal" if self.distribution == "untruncated_normal" else self.distribution
        kw: dict[str, Any] = {}
        if self.input_axes is not None and self.output_axes is not None:
            # Keras: fans = products of the given axes, no receptive field; in JAX's terms
            # every other axis is a batch axis.
            nd = len(shape)
            used = {a % nd for a in self.input_axes + self.output_axes}
            kw = {"in_axis": self.input_axes, "out_axis": self.output_axes,
                  "batch_axis": [a for a in range(nd) if a not in used]}
        return _s.variance_scaling(shape, self.scale, self.mode, dist, seed=seed,
                                   stream=stream, dtype=dt, **kw)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale, "mode": self.mode,
                "distribution": self.distribution, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


def _preset(name: str, scale: float, mode: str, distribution: str) -> type:
    def __init__(self, seed: Any = None, input_axes: Any = None,  # noqa: N807
                 output_axes: Any = None) -> None:
        VarianceScaling.__init__(self, scale, mode, distribution, seed, input_axes,
                                 output_axes)

    def get_config(self) -> dict[str, Any]:
        return {"seed": keras.saving.serialize_keras_object(self._init_seed),
                "input_axes": self.input_axes, "output_axes": self.output_axes}

    doc = (f"As ``keras.initializers.{name}`` (``VarianceScaling(scale={scale}, "
           f"mode={mode!r}, distribution={distribution!r})``).")
    return _register(type(name, (VarianceScaling,), {
        "__init__": __init__, "get_config": get_config, "__doc__": doc,
        "__module__": __name__}))


VarianceScaling = _register(VarianceScaling)
GlorotUniform = _preset("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _preset("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _preset("HeUniform", 2.0, "fan_in", "uniform")
HeNormal = _preset("HeNormal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _preset("LecunUniform", 1.0, "fan_in", "uniform")
LecunNormal = _preset("LecunNormal", 1.0, "fan_in", "truncated_normal")


@_register
class RandomUniform(WeightfillInitializer):
    """As ``keras.initializers.RandomUniform``: ``U[minval, maxval)``."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: Any = None) -> None:
        self.minval, self.maxval = _real(minval, "minval"), _real(maxval, "maxval")
        if self.maxval < self.minval:
            raise ValueError(f"maxval ({self.maxval}) must be >= minval ({self.minval})")
        super().__init__(seed=seed)

    def _fill(self, shape, dt, seed, stream):  # type: ignore[no-untyped-def]
        return _d.uniform(shape, self.minval, self.maxval, seed=seed, stream=stream, dtype=dt)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


@_register
class RandomNormal(WeightfillInitializer):
    """As ``keras.initializers.RandomNormal``: ``N(mean, stddev**2)``."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: Any = None) -> None:
        self.mean, self.stddev = _real(mean, "mean"), _real(stddev, "stddev")
        if self.stddev < 0:
            raise ValueError(f"stddev must be >= 0, got {self.stddev}")
        super().__init__(seed=seed)

    def _fill(self, shape, dt, seed, stream):  # type: ignore[no-untyped-def]
        return _d.normal(shape, self.mean, self.stddev, seed=seed, stream=stream, dtype=dt)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


@_register
class TruncatedNormal(RandomNormal):
    """As ``keras.initializers.TruncatedNormal``: ``N(mean, stddev**2)`` conditioned on
    ``|x - mean| <= 2 stddev`` (``stddev`` is the untruncated one, as in Keras)."""

    def _fill(self, shape, dt, seed, stream):  # type: ignore[no-untyped-def]
        return _d.truncated_normal(shape, self.mean, self.stddev, -2.0, 2.0, seed=seed,
                                   stream=stream, dtype=dt)


@_register
class Orthogonal(WeightfillInitializer):
    """As ``keras.initializers.Orthogonal``: the ``(prod(shape[:-1]), shape[-1])`` matrix is
    (semi-)orthogonal, times ``gain`` (:func:`weightfill.orthogonal`, ``layout="keras"``)."""

    def __init__(self, gain: float = 1.0, seed: Any = None) -> None:
        self.gain = _real(gain, "gain")
        super().__init__(seed=seed)

    def _fill(self, shape, dt, seed, stream):  # type: ignore[no-untyped-def]
        if len(shape) < 2:
            raise ValueError(f"The tensor to initialize must be at least two-dimensional. "
                             f"Received: shape={shape} of rank {len(shape)}.")
        return _s.orthogonal(shape, self.gain, layout="keras", seed=seed, stream=stream, dtype=dt)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gain": self.gain}


@_register
class Identity(WeightfillInitializer):
    """As ``keras.initializers.Identity``: ``gain`` times the identity (2-D shapes only)."""

    random = False

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = _real(gain, "gain")

    def _fill(self, shape, dt, seed, stream):  # type: ignore[no-untyped-def]
        if len(shape) != 2:
            raise ValueError(f"Identity matrix initializer can only be used for 2D matrices. "
                             f"Received: shape={shape} of rank {len(shape)}.")
        return _s.identity(shape, self.gain, layout="keras", dtype=dt)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}


@_register
class Constant(WeightfillInitializer):
    """As ``keras.initializers.Constant``: ``value`` everywhere (a real scalar here)."""

    random = False

    def __init__(self, value: float = 0.0) -> None:
        self.value = _real(value, "value")

    def _fill(self, shape, dt, seed, stream):  # type: ignore[no-untyped-def]
        return _s.constant(shape, self.value, dtype=dt)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


@_register
class Zeros(WeightfillInitializer):
    """As ``keras.initializers.Zeros``."""

    random = False

    def __init__(self) -> None:
        pass

    def _fill(self, shape, dt, seed, stream):  # type: ignore[no-untyped-def]
        return _s.zeros(shape, dtype=dt)


@_register
class Ones(Zeros):
    """As ``keras.initializers.Ones``."""

    def _fill(self, shape, dt, seed, stream):  # type: ignore[no-untyped-def]
        return _s.ones(shape, dtype=dt)


initializers = types.SimpleNamespace(
    GlorotUniform=GlorotUniform, GlorotNormal=GlorotNormal, HeUniform=HeUniform,
    HeNormal=HeNormal, LecunUniform=LecunUniform, LecunNormal=LecunNormal,
    VarianceScaling=VarianceScaling, RandomUniform=RandomUniform, RandomNormal=RandomNormal,
    TruncatedNormal=TruncatedNormal, Orthogonal=Orthogonal, Identity=Identity, Zeros=Zeros,
    Ones=Ones, Constant=Constant)
