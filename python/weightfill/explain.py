"""``weightfill explain``: why the initialization scheme matters, measured layer by layer.

For each scheme, a stack of dense or 2-D convolution layers is initialized with weightfill, a
standard-normal batch is passed forward and a standard-normal output gradient backward, and
every layer reports the standard deviation of its outputs and of the gradients with respect to
them, beside what the variance formula predicts for that scheme and activation. See
docs/explain.md for the formulas, the assumptions behind the prediction and the verdict rules.

NumPy only (float32 matrix products on NumPy's BLAS). matplotlib is imported by
:meth:`Report.plot` alone, never by ``import weightfill``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, TextIO, Union

import numpy as np

from .gains import calculate_gain, second_moment_gain

__all__ = ["explain", "Report", "ACTIVATIONS", "DEFAULT_SCHEMES", "VANISH", "EXPLODE", "STABLE",
           "add_arguments", "run"]

#: The keys of each scheme in the ``--json`` file (issue 16).
JSON_KEYS = ("forward_std", "backward_std", "predicted_forward_std", "dead_fraction",
             "distinct_rows", "verdict")

#: Activation names (``leaky_relu`` takes its slope as ``leaky_relu:0.2``, default 0.01).
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "selu", "gelu", "linear")
#: The schemes compared when none are given (the README's plots).
DEFAULT_SCHEMES = ("kaiming_normal", "xavier_normal", "lecun_normal", "orthogonal",
                   "normal:0.01", "zeros")

# Verdict thresholds, on the ratio of each layer's std to the reference layer's (layer 1
# forward; the last layer backward, where the gradient enters).
STABLE = 20.0    #: every ratio within [1/STABLE, STABLE]: "stable"
VANISH = 1e-6    #: some ratio below this: "vanishes"
EXPLODE = 1e6    #: some ratio above this, or a value that overflows float32: "explodes"
# Two rows of a layer's output count as the same unit when they differ by at most this times
# the layer's largest |value| (rounding differences of a BLAS between identical units).
_SAME_ROW_RTOL = 1e-5

# Streams of the random inputs; every scheme of a run sees the same ones.
INPUT_STREAM = "explain.input"
GRAD_STREAM = "explain.output_grad"


def weight_stream(layer: int) -> str:
    """Stream of layer ``layer``'s weight (1-based): ``"layers.<layer>.weight"``."""
    return f"layers.{layer}.weight"


# ----------------------------------------------------------------------------------------------
# Activations

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
# Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7, float32's resolution): NumPy has no erf, and
# calling math.erf per element would take seconds per layer. The predictions use math.erf.
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf_approx(x: np.ndarray) -> np.ndarray:
    t = 1.0 / (1.0 + _AS_P * np.abs(x))
    poly = t * (_AS_A[0] + t * (_AS_A[1] + t * (_AS_A[2] + t * (_AS_A[3] + t * _AS_A[4]))))
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))


def _phi_cdf(z: np.ndarray, exact: bool) -> np.ndarray:
    if exact:  # float64 quadrature nodes: a few thousand scalar calls
        return 0.5 * (1.0 + np.vectorize(math.erf, otypes=[np.float64])(z / math.sqrt(2.0)))
    return (0.5 * (1.0 + _erf_approx(z / np.float32(math.sqrt(2.0))))).astype(z.dtype)


@dataclass(frozen=True)
class Activation:
    """An activation function, its derivative, and the moments the prediction needs."""

    name: str
    slope: float = 0.0  # leaky_relu's negative slope

    @property
    def label(self) -> str:
        return f"leaky_relu:{self.slope:g}" if self.name == "leaky_relu" else self.name

    @property
    def homogeneous(self) -> bool:
        """``f(c z) = c f(z)`` for ``c > 0``: the moments scale with the variance exactly."""
        return self.name in ("relu", "leaky_relu", "linear")

    def f(self, z: np.ndarray, exact: bool = False) -> np.ndarray:
        n = self.name
        if n == "relu":
            return np.maximum(z, 0)
        if n == "leaky_relu":
            return np.where(z > 0, z, z * z.dtype.type(self.slope))
        if n == "tanh":
            return np.tanh(z)
        if n == "sigmoid":  # the tanh form cannot overflow, unlike 1 / (1 + exp(-z))
            return 0.5 * (1 + np.tanh(0.5 * z))
        if n == "selu":
            neg = z.dtype.type(_SELU_ALPHA) * np.expm1(np.minimum(z, 0))
            return z.dtype.type(_SELU_SCALE) * np.where(z > 0, z, neg)
        if n == "gelu":  # exact GELU, z * Phi(z) (torch's default, approximate="none")
            return z * _phi_cdf(z, exact)
        return z

    def df(self, z: np.ndarray, exact: bool = False) -> np.ndarray:
        n = self.name
        one = z.dtype.type(1)
        if n == "relu":
            return (z > 0).astype(z.dtype)
        if n == "leaky_relu":
            return np.where(z > 0, one, z.dtype.type(self.slope)).astype(z.dtype)
        if n == "tanh":
            t = np.tanh(z)
            return one - t * t
        if n == "sigmoid":
            s = 0.5 * (1 + np.tanh(0.5 * z))
            return s * (one - s)
        if n == "selu":
            pos = np.full_like(z, _SELU_SCALE)
            return np.where(z > 0, pos, z.dtype.type(_SELU_SCALE * _SELU_ALPHA)
                            * np.exp(np.minimum(z, 0)))
        if n == "gelu":
            pdf = np.exp(-0.5 * z * z) * z.dtype.type(1 / math.sqrt(2 * math.pi))
            return _phi_cdf(z, exact) + z * pdf
        return np.ones_like(z)

    def gain(self) -> Optional[float]:
        """``calculate_gain`` of a homogeneous activation (``E[f(z)^2] = 1 / gain^2``)."""
        if self.name == "leaky_relu":
            return calculate_gain("leaky_relu", self.slope)
        return calculate_gain(self.name) if self.homogeneous else None

    def moment(self, q: float, derivative: bool) -> float:
        """``E[f(sqrt(q) z)^2]`` (or of ``f'``) for ``z ~ N(0, 1)``.

        Homogeneous activations: ``q / gain^2`` (``1 / gain^2`` for ``f'``), closed forms.
        Others: ``1 / second_moment_gain(t -> f(sqrt(q) t))^2``, weightfill's quadrature.
        """
        if not math.isfinite(q):
            return math.nan
        fn = self.df if derivative else self.f
        if q == 0.0:  # every pre-activation is 0
            return float(fn(np.zeros(1))[0]) ** 2
        g = self.gain()
        if g is not None:
            return (1.0 if derivative else q) / (g * g)
        s = math.sqrt(q)
        try:
            gain = second_moment_gain(lambda t: fn(s * np.asarray(t, np.float64), exact=True))
        except ValueError:  # the moment underflows or overflows float64
            return 0.0 if q < 1.0 else math.inf
        return 1.0 / (gain * gain)


def parse_activation(text: object) -> Activation:
    """``"relu"``, ``"tanh"``, ``"leaky_relu:0.2"``, ...: an :class:`Activation`."""
    if isinstance(text, Activation):
        return text
    if not isinstance(text, str):
        raise TypeError(f"activation must be a str, not {type(text).__name__}")
    name, _, arg = text.strip().partition(":")
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: unknown activation {text!r}; use one of "
                         f"{', '.join(ACTIVATIONS)} (leaky_relu:SLOPE for a slope)")
    if name == "leaky_relu":
        try:
            slope = float(arg) if arg else 0.01
        except ValueError:
            raise ValueError(f"activation: the slope in {text!r} is not a number") from None
        if not math.isfinite(slope):
            raise ValueError(f"activation: the slope in {text!r} must be finite")
        return Activation(name, slope)
    if arg:
        raise ValueError(f"activation: {name} takes no argument, got {text!r}")
    return Activation(name)


# ----------------------------------------------------------------------------------------------
# Layers

@dataclass(frozen=True)
class LayerKind:
    """``dense`` or ``conv2d`` with a ``kh x kw`` kernel (circular padding, stride 1)."""

    conv: bool = False
    kh: int = 1
    kw: int = 1

    @property
    def label(self) -> str:
        return f"conv2d:{self.kh}x{self.kw}" if self.conv else "dense"

    def weight_shape(self, n_in: int, n_out: int) -> tuple[int, ...]:
        """torch layout: ``(out, in)`` or ``(out, in, kh, kw)``."""
        return (n_out, n_in, self.kh, self.kw) if self.conv else (n_out, n_in)


def parse_layer(text: object) -> LayerKind:
    if isinstance(text, LayerKind):
        return text
    if not isinstance(text, str):
        raise TypeError(f"layer must be a str, not {type(text).__name__}")
    t = text.strip()
    if t == "dense":
        return LayerKind()
    m = re.fullmatch(r"conv2d(?::(\d+)(?:x(\d+))?)?", t)
    if not m:
        raise ValueError(f"layer: unknown layer {text!r}; use dense or conv2d:KxK (e.g. "
                         "conv2d:3x3)")
    kh = int(m.group(1) or 3)
    kw = int(m.group(2) or kh)
    if not (1 <= kh <= 15 and 1 <= kw <= 15):
        raise ValueError(f"layer: kernel sizes must be in [1, 15], got {kh}x{kw}")
    return LayerKind(True, kh, kw)


def _im2col(x: np.ndarray, kh: int, kw: int, ph: int, pw: int) -> np.ndarray:
    """Patches of an NHWC batch under circular padding: ``(N*H*W, C*kh*kw)``, columns in
    torch's weight order ``(c, u, v)``. Output pixel ``(i, j)`` sees input pixels ``(i + u -
    ph, j + v - pw)`` modulo the image size."""
    n, h, w, c = x.shape
    padded = np.pad(x, ((0, 0), (ph, kh - 1 - ph), (pw, kw - 1 - pw), (0, 0)), mode="wrap")
    win = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(1, 2))
    return win.reshape(n * h * w, c * kh * kw)  # (n, h, w, c, kh, kw): one copy


def _conv(x: np.ndarray, weight: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """Circular 2-D convolution (cross-correlation, as torch's) of an NHWC batch with a torch
    layout weight ``(out, in, kh, kw)``, as im2col and one float32 matrix product.

    Written here because NumPy has no multi-channel convolution, SciPy's ``convolve2d`` is
    single-channel (``in * out`` calls per layer) and torch is not a dependency of the
    synthetic stack."""
    n, h, w, _ = x.shape
    co, ci, kh, kw = weight.shape
    cols = _im2col(x, kh, kw, ph, pw)
    return (cols @ weight.reshape(co, ci * kh * kw).T).reshape(n, h, w, co)


def _conv_input_grad(delta: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The gradient of :func:`_conv` with respect to its input: the adjoint of a circular
    correlation is the circular correlation with the kernel flipped and its channel axes
    swapped, aligned by ``k - 1 - p`` instead of ``p``."""
    co, ci, kh, kw = weight.shape
    flipped = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    return _conv(delta, flipped, kh - 1 - kh // 2, kw - 1 - kw // 2)


# ----------------------------------------------------------------------------------------------
# Schemes: parsing and the closed forms of E[W^2]

def _scheme_names() -> tuple[str, ...]:
    from .params import SCHEMES

    return SCHEMES


def _number(text: str) -> Union[float, str]:
    try:
        return float(text)
    except ValueError:
        return text


def split_schemes(text: str) -> list[str]:
    """A comma-separated ``--schemes`` list; a piece that is a number or ``key=value`` belongs
    to the scheme before it, so ``"uniform:-0.1,0.1,zeros"`` is ``["uniform:-0.1,0.1",
    "zeros"]``."""
    out: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            raise ValueError(f"--schemes {text!r}: empty entry")
        if out and ":" in out[-1] and (isinstance(_number(piece), float) or
                                       ("=" in piece and ":" not in piece)):
            out[-1] += "," + piece
        else:
            out.append(piece)
    return out


@dataclass
class Scheme:
    """A scheme as given (``"kaiming_normal"``, ``"normal:0.01"``, ``"xavier_uniform:gain=2"``),
    resolved to a weightfill function and its keyword arguments."""

    text: str
    name: str
    kwargs: dict[str, Any]
    fn: Callable[..., np.ndarray]
    random: bool


def parse_scheme(text: object) -> Scheme:
    """``name`` or ``name:arg,arg,key=value``; positional arguments follow the scheme's own
    signature (``xavier_normal:2`` is gain 2, ``kaiming_normal:0.2`` is ``a=0.2``), except that
    one argument of ``normal``/``truncated_normal`` is the std (``normal:0.01`` is N(0,
    0.01^2)) and one of ``uniform`` is the half-width (``uniform:0.1`` is U(-0.1, 0.1))."""
    from .params import DETERMINISTIC, scheme_function

    if not isinstance(text, str):
        raise TypeError(f"schemes: each scheme must be a str, not {type(text).__name__}")
    name, colon, rest = text.strip().partition(":")
    names = _scheme_names()
    if name not in names:
        raise ValueError(f"schemes: unknown scheme {text!r}; use one of {', '.join(names)} "
                         "(with arguments as name:arg,key=value)")
    args = [a.strip() for a in rest.split(",")] if colon else []
    if colon and not all(args):
        raise ValueError(f"schemes: empty argument in {text!r}")
    fn = scheme_function(name)
    positional_names = [p.name for p in inspect.signature(fn).parameters.values()
                        if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "shape"]
    pos = [_number(a) for a in args if "=" not in a]
    kw = {k.strip(): _number(v.strip()) for k, _, v in (a.partition("=") for a in args if "=" in a)}
    if name in ("normal", "truncated_normal") and len(pos) == 1:
        pos = [0.0, pos[0]]
    if name == "uniform" and len(pos) == 1:
        half = pos[0]
        if not isinstance(half, float):
            raise ValueError(f"schemes: the half-width in {text!r} is not a number")
        pos = [-half, half]
    if len(pos) > len(positional_names):
        raise ValueError(f"schemes: {name} takes at most {len(positional_names)} positional "
                         f"argument(s) ({', '.join(positional_names) or 'none'}), got {text!r}")
    kwargs = dict(zip(positional_names, pos))
    for k, v in kw.items():
        if k in kwargs:
            raise ValueError(f"schemes: {k} given twice in {text!r}")
        if k in ("seed", "stream", "out", "region", "dtype", "shape"):
            raise ValueError(f"schemes: {k} cannot be set in {text!r}")
        kwargs[k] = v
    params = inspect.signature(fn).parameters
    for k in kwargs:
        if k not in params:
            raise ValueError(f"schemes: {name} has no argument {k!r} (in {text!r})")
    if "layout" in params and "layout" not in kwargs:
        kwargs["layout"] = "torch"  # our weights are (out, in[, kh, kw])
    return Scheme(text.strip(), name, kwargs, fn, name not in DETERMINISTIC)


def _trunc_variance(lo: float, hi: float) -> float:
    """Variance of a standard normal truncated to ``[lo, hi]``."""
    def pdf(x: float) -> float:
        return 0.0 if math.isinf(x) else math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)

    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    z = cdf(hi) - cdf(lo)
    lo_t = 0.0 if math.isinf(lo) else lo * pdf(lo)
    hi_t = 0.0 if math.isinf(hi) else hi * pdf(hi)
    m = (pdf(lo) - pdf(hi)) / z
    return 1.0 + (lo_t - hi_t) / z - m * m


def weight_second_moment(scheme: Scheme, shape: tuple[int, ...]) -> Optional[float]:
    """``E[W^2]`` of one entry of a ``shape`` weight (torch layout) under ``scheme``, in closed
    form; ``None`` when the scheme is not zero-mean (ones, constant, eye, identity, dirac,
    normal/uniform off centre), where the variance formula does not apply.

    With ``fan_in = in * kh * kw`` and ``fan_out = out * kh * kw`` (torch's fans):

    - xavier_* (gain ``g``): ``g^2 * 2 / (fan_in + fan_out)``; glorot_*: the same with ``g = 1``
    - kaiming_* (``a``, ``mode``, ``nonlinearity``): ``calculate_gain(nonlinearity, a)^2 / fan``
    - he_*: ``2 / fan_in``; lecun_*: ``1 / fan_in``; variance_scaling: ``scale / n(mode)``
      (the truncated-normal variants are scaled so these hold after truncation)
    - orthogonal (gain ``g``), the ``(out, in*kh*kw)`` matrix semi-orthogonal:
      ``g^2 * min(rows, cols) / (rows * cols)`` (``g^2 / n`` for a square one)
    - delta_orthogonal (scale ``s``): ``s^2 * in / (in * out * kh * kw)``
    - normal(0, s): ``s^2``; uniform(-a, a): ``a^2 / 3``; truncated_normal(0, s, lo, hi):
      ``s^2 * Var(N(0, 1) | lo <= z <= hi)``; sparse (``k`` zeros of ``n`` per column, std
      ``s``): ``(n - k) / n * s^2``; zeros: 0
    """
    kw = scheme.kwargs
    name = scheme.name
    n_out, n_in = shape[0], shape[1]
    k = math.prod(shape[2:])
    fan_in, fan_out = n_in * k, n_out * k

    def num(key: str, default: float) -> float:
        v = kw.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"schemes: {key} of {scheme.text!r} must be a number")
        return float(v)

    if name == "zeros":
        return 0.0
    if name == "constant":
        return 0.0 if num("value", 0.0) == 0.0 else None
    if name in ("xavier_uniform", "xavier_normal"):
        return num("gain", 1.0) ** 2 * 2.0 / (fan_in + fan_out)
    if name in ("kaiming_uniform", "kaiming_normal"):
        gain = calculate_gain(kw.get("nonlinearity", "leaky_relu"), num("a", 0.0))
        fan = fan_in if kw.get("mode", "fan_in") == "fan_in" else fan_out
        return gain * gain / fan
    presets = {"glorot_uniform": (1.0, "fan_avg"), "glorot_normal": (1.0, "fan_avg"),
               "he_uniform": (2.0, "fan_in"), "he_normal": (2.0, "fan_in"),
               "lecun_uniform": (1.0, "fan_in"), "lecun_normal": (1.0, "fan_in")}
    if name in presets or name == "variance_scaling":
        scale, mode = presets.get(name, (num("scale", 1.0), str(kw.get("mode", "fan_in"))))
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2,
             "fan_geo_avg": math.sqrt(fan_in * fan_out)}[mode]
        return scale / max(1.0, n)
    if name == "orthogonal":
        rows, cols = n_out, n_in * k
        return num("gain", 1.0) ** 2 * min(rows, cols) / (rows * cols)
    if name == "delta_orthogonal":
        return num("scale", 1.0) ** 2 * min(n_in, n_out) / (n_in * n_out * k)
    if name == "normal":
        return num("std", 1.0) ** 2 if num("mean", 0.0) == 0.0 else None
    if name == "uniform":
        lo, hi = num("low", 0.0), num("high", 1.0)
        return hi * hi / 3.0 if lo == -hi else None
    if name == "truncated_normal":
        lo, hi = num("lower", -2.0), num("upper", 2.0)
        if num("mean", 0.0) != 0.0 or lo != -hi:
            return None
        return num("std", 1.0) ** 2 * _trunc_variance(lo, hi)
    if name == "sparse":
        axis = int(num("axis", 0))
        n = shape[axis]
        zeros = (n - int(num("nonzeros", 0)) if kw.get("nonzeros") is not None
                 else math.ceil(num("sparsity", 0.0) * n))
        return (n - zeros) / n * num("std", 0.01) ** 2
    return None  # ones, eye, identity, dirac: deterministic and not zero-mean


# ----------------------------------------------------------------------------------------------
# The report

def _ratios(values: Sequence[Optional[float]], ref: Optional[float]) -> list[Optional[float]]:
    if ref is None or not ref > 0:
        return [None] * len(values)
    return [None if v is None else v / ref for v in values]


def verdict(forward: Sequence[Optional[float]], backward: Sequence[Optional[float]],
            distinct: Sequence[Optional[int]], widths: Sequence[int]) -> str:
    """The verdict of one scheme (see docs/explain.md): the first of these that applies.

    - ``symmetric``: every layer wider than one unit has one distinct row (all units compute
      the same function; training cannot tell them apart);
    - ``explodes``: a value overflows float32, or a std exceeds :data:`EXPLODE` times the
      reference (layer 1 forward, the last layer backward);
    - ``vanishes``: a std falls below :data:`VANISH` times the reference (or to 0);
    - ``stable``: every ratio within ``[1/STABLE, STABLE]``;
    - ``shrinks`` / ``grows`` otherwise, by the ratio furthest from 1.
    """
    n = len(forward)
    if all(d == 1 for d, w in zip(distinct, widths) if w > 1) and any(w > 1 for w in widths):
        return "symmetric (every unit of a layer computes the same: 1 distinct row per layer)"
    parts = []
    for label, values, ref_i in (("forward", forward, 0), ("backward", backward, n - 1)):
        if all(v is None for v in values):  # not computed (the forward pass overflowed)
            continue
        bad = [i for i, v in enumerate(values) if v is None or not math.isfinite(v)]
        if bad:
            layer = min(bad) if label == "forward" else max(bad)
            parts.append(("explodes", f"{label} overflows float32 at layer {layer + 1}"))
            continue
        ref = values[ref_i]
        if not ref > 0:  # type: ignore[operator]
            parts.append(("vanishes", f"{label} is 0 at layer {ref_i + 1}"))
            continue
        r = [v / ref for v in values]  # type: ignore[operator]
        order = range(n) if label == "forward" else range(n - 1, -1, -1)
        hi = next((i for i in order if r[i] > EXPLODE), None)
        lo = next((i for i in order if r[i] < VANISH), None)
        far = max(order, key=lambda i: abs(math.log(r[i])) if r[i] > 0 else math.inf)
        end = n - 1 if label == "forward" else 0
        if hi is not None:
            parts.append(("explodes", f"{label} explodes: x{r[end]:.0e} at layer {end + 1}"
                          if math.isfinite(r[end]) else f"{label} explodes"))
        elif lo is not None:
            at = end if r[end] < VANISH else far
            zero = next((i for i in order if r[i] == 0), None)
            parts.append(("vanishes", f"{label} vanishes by {r[at]:.0e} at layer {at + 1}"
                          if zero is None else
                          f"{label} vanishes below {VANISH:g} at layer {lo + 1}, underflows "
                          f"float32 to 0 at layer {zero + 1}"))
        elif 1 / STABLE <= min(r) and max(r) <= STABLE:
            parts.append(("stable", ""))
        else:
            word = "shrinks" if r[far] < 1 else "grows"
            parts.append((word, f"{label} {word} to {r[far]:.2g}x at layer {far + 1}"))
    rank = ["explodes", "vanishes", "shrinks", "grows", "stable"]
    word = min((p[0] for p in parts), key=rank.index)
    details = "; ".join(p[1] for p in parts if p[1])
    return word if word == "stable" else f"{word}: {details}"


@dataclass
class Report:
    """The result of :func:`explain` (or :func:`weightfill.torch.explain`).

    ``settings``: the run's settings; ``schemes``: for each scheme as given, a dict of
    per-layer lists (index 0 is layer 1) ``forward_std``, ``backward_std``,
    ``predicted_forward_std``, ``predicted_backward_std``, ``dead_fraction``,
    ``distinct_rows``, ``width`` (and ``name`` for a torch model), and its ``verdict``.
    ``None`` marks a value that is undefined (overflow; no prediction for the scheme).
    """

    settings: dict[str, Any]
    schemes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object: the run's settings and ``"schemes"``, each scheme with
        exactly the keys of :data:`JSON_KEYS` (the API's extra lists stay in Python)."""
        settings = {k: v for k, v in self.settings.items() if k != "elapsed_s"}
        return {**settings, "schemes": {t: {k: d[k] for k in JSON_KEYS}
                                        for t, d in self.schemes.items()}}

    def to_json(self, path: Optional[str] = None) -> str:
        """The report as JSON; written to ``path`` too when given (whole or not at all)."""
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        if path is not None:
            tmp = f"{path}.tmp{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text + "\n")
            os.replace(tmp, path)
        return text

    def merge(self, *others: "Report") -> "Report":
        """One report with this report's schemes and then the others' (e.g. two
        :func:`weightfill.torch.explain` runs of one model, for one table or plot)."""
        merged = Report(dict(self.settings), dict(self.schemes))
        for o in others:
            for k in o.schemes:
                if k in merged.schemes:
                    raise ValueError(f"merge: both reports have {k!r}")
            merged.schemes.update(o.schemes)
        return merged

    def format(self, rows: int = 8) -> str:
        """Readable tables: per scheme, ``rows`` sampled layers (first, last and evenly
        spaced), then the verdicts."""
        return format_report(self, rows)

    def plot(self, path: str) -> Any:
        """Two panels (forward and backward std per layer, log axis), measured lines and the
        predictions dashed; saved to ``path`` (PNG). Needs matplotlib. Returns the Figure."""
        return plot_report(self, path)


def _sample_layers(n: int, rows: int) -> list[int]:
    if n <= rows:
        return list(range(n))
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, max(rows, 2))})


def _fmt(v: Optional[float], spec: str = ".3g") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return "overflow"
    return format(v, spec)


def format_report(report: Report, rows: int = 8) -> str:
    lines = []
    s = report.settings
    lines.append(" ".join(f"{k}={v}" for k, v in s.items() if k not in ("widths", "schemes", "layers")))
    named = any("name" in d for d in report.schemes.values())
    for text, d in report.schemes.items():
        n = len(d["forward_std"])
        fwd_r = _ratios(d["forward_std"], d["forward_std"][0])
        bwd_r = _ratios(d["backward_std"], d["backward_std"][-1])
        lines.append("")
        lines.append(f"{text}: {d['verdict']}")
        head = ["layer", "name" if named else "width", "fwd std", "/layer1", "predicted",
                "bwd std", f"/layer{n}", "predicted", "dead", "distinct"]
        table = [head]
        for i in _sample_layers(n, rows):
            table.append([
                str(i + 1), str(d["name"][i]) if named else str(d["width"][i]),
                _fmt(d["forward_std"][i]), _fmt(fwd_r[i]), _fmt(d["predicted_forward_std"][i]),
                _fmt(d["backward_std"][i]), _fmt(bwd_r[i]),
                _fmt(d["predicted_backward_std"][i]),
                _fmt(d["dead_fraction"][i], ".0%"), _fmt(d["distinct_rows"][i], "d")])
        widths = [max(len(r[c]) for r in table) for c in range(len(head))]
        for r in table:
            lines.append("  ".join(c.rjust(w) if j != 1 or not named else c.ljust(w)
                                   for j, (c, w) in enumerate(zip(r, widths))).rstrip())
    lines.append("")
    w = max(len(t) for t in report.schemes)
    lines.append("verdicts (std ratios to layer 1 forward, to the last layer backward:")
    lines.append(f"  stable within {1 / STABLE:g}-{STABLE:g}x, vanishes below {VANISH:g}, "
                 f"explodes above {EXPLODE:g})")
    for text, d in report.schemes.items():
        lines.append(f"  {text.ljust(w)}  {d['verdict']}")
    return "\n".join(lines)


def plot_report(report: Report, path: str) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5.2), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True)
    colors = [f"C{i}" for i in range(10)]
    for k, (text, d) in enumerate(report.schemes.items()):
        c = colors[k % 10]
        layers = np.arange(1, len(d["forward_std"]) + 1)
        for ax, key in ((axes[0], "forward"), (axes[1], "backward")):
            measured = np.array([np.nan if v is None or not v > 0 else v
                                 for v in d[f"{key}_std"]], dtype=float)
            label = text if np.isfinite(measured).any() else f"{text} (0 at every layer)"
            ax.plot(layers, measured, color=c, linewidth=1.8, label=label)
            pred = np.array([np.nan if v is None or not v > 0 else v
                             for v in d[f"predicted_{key}_std"]], dtype=float)
            if np.isfinite(pred).any():
                ax.plot(layers, pred, color=c, linewidth=1.2, linestyle="--", alpha=0.8)
    s = report.settings
    for ax, title, ylabel in (
            (axes[0], "forward: std of each layer's outputs",
             "std of layer output (pre-activation)"),
            (axes[1], "backward: std of the gradient w.r.t. each layer's outputs",
             "std of gradient")):
        ax.set_yscale("log")
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("layer")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].plot([], [], color="gray", linestyle="--", label="predicted (variance formula)")
    axes[0].legend(fontsize=8, loc="best")
    if "model" in s:
        sup = f"{s['model']}, input {s['input_shape']}, seed {s['seed']}"
    else:
        sup = (f"{s['activation']}, {s['layer']} x {s['depth']} layers, width "
               f"{_width_text(s['widths'])}, batch {s['batch']}, seed {s['seed']}")
    fig.suptitle(f"weightfill explain: {sup}", fontsize=12)
    fig.savefig(path, dpi=90)
    return fig


def _width_text(widths: Sequence[int]) -> str:
    return str(widths[0]) if len(set(widths)) == 1 else ",".join(map(str, widths))


# ----------------------------------------------------------------------------------------------
# Measurement

def distinct_rows(z: np.ndarray) -> int:
    """The number of distinct units of a layer output ``z`` of shape ``(examples, units)``
    (a unit's column: its values over the batch), two units being the same when they differ
    by at most ``1e-5`` times the largest |value| (BLAS rounding between identical units).

    Units are sorted by their value on the first example: two units whose values there differ
    by more than the tolerance are distinct without a look at the rest, so only neighbours
    closer than that are compared in full (O(units log units + examples * close pairs),
    not all pairs)."""
    units = z.shape[1]
    if units <= 1:
        return units
    with np.errstate(all="ignore"):
        scale = float(np.max(np.abs(z)))
        if not math.isfinite(scale):
            return len(np.unique(z.T, axis=0))
        if scale == 0.0:
            return 1
        tol = _SAME_ROW_RTOL * scale
        order = np.argsort(z[0], kind="stable")
        close = np.flatnonzero(np.diff(z[0, order]) <= tol)
        if close.size == 0:
            return units
        left, right = z[:, order[close]], z[:, order[close + 1]]
        same = np.max(np.abs(left - right), axis=0) <= tol
    return units - int(np.count_nonzero(same))


_TINY32 = np.finfo(np.float32).tiny


def _flush_subnormals(a: np.ndarray) -> None:
    """Sets float32 subnormals (|x| < 1.2e-38) to 0 in place, as GPUs and oneDNN's
    flush-to-zero mode do: a CPU's subnormal arithmetic is 10-100x slower, which would make a
    vanishing stack take minutes. Statistics are taken before the flush."""
    mag = np.abs(a)
    if mag.min() < _TINY32:
        a[mag < _TINY32] = 0


def _std(a: np.ndarray) -> Optional[float]:
    with np.errstate(all="ignore"):
        v = float(np.std(a, dtype=np.float64))
    return v if math.isfinite(v) else math.inf


def _dead(delta: np.ndarray) -> float:
    """Fraction of units (last axis) whose gradient is exactly 0 for every example."""
    flat = delta.reshape(-1, delta.shape[-1])
    return float(np.mean(~np.any(flat != 0, axis=0)))


@dataclass(frozen=True)
class Stack:
    widths: tuple[int, ...]
    activation: Activation
    layer: LayerKind
    batch: int
    image: tuple[int, int]
    seed: int

    @property
    def depth(self) -> int:
        return len(self.widths) - 1

    def weight_shapes(self) -> list[tuple[int, ...]]:
        return [self.layer.weight_shape(a, b) for a, b in zip(self.widths, self.widths[1:])]

    def input_shape(self) -> tuple[int, ...]:
        """torch order: ``(batch, width)`` or ``(batch, channels, H, W)``."""
        if self.layer.conv:
            return (self.batch, self.widths[0], *self.image)
        return (self.batch, self.widths[0])

    def output_shape(self) -> tuple[int, ...]:
        if self.layer.conv:
            return (self.batch, self.widths[-1], *self.image)
        return (self.batch, self.widths[-1])


def _draw_inputs(stack: Stack) -> tuple[np.ndarray, np.ndarray]:
    """The input batch and the output gradient, in the internal layout (channels last)."""
    from .distributions import normal

    x = normal(stack.input_shape(), seed=stack.seed, stream=INPUT_STREAM, dtype=np.float32)
    g = normal(stack.output_shape(), seed=stack.seed, stream=GRAD_STREAM, dtype=np.float32)
    if stack.layer.conv:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        g = np.ascontiguousarray(g.transpose(0, 2, 3, 1))
    return x, g


def make_weights(stack: Stack, scheme: Scheme) -> list[np.ndarray]:
    """The float32 weights of every layer: ``scheme(shape, seed=seed,
    stream="layers.<l>.weight")``, torch layout."""
    weights = []
    for i, shape in enumerate(stack.weight_shapes()):
        kw: dict[str, Any] = dict(scheme.kwargs, dtype=np.float32)
        if scheme.random:
            kw.update(seed=stack.seed, stream=weight_stream(i + 1))
        try:
            w = scheme.fn(shape, **kw)
        except (TypeError, ValueError) as err:
            raise type(err)(f"schemes: {scheme.text!r} on the layer {i + 1} weight {shape}: "
                            f"{err}") from err
        weights.append(np.asarray(w, dtype=np.float32))
    return weights


def predictions(stack: Stack, scheme: Scheme) -> tuple[list[Optional[float]],
                                                       list[Optional[float]]]:
    """The variance formula's forward and backward std per layer (``None`` throughout when
    the scheme is not zero-mean i.i.d.-like). With ``s_l = E[W_l^2]``, ``n_l`` fan-in and
    ``m_l`` fan-out of layer ``l``:

    ``q_1 = n_1 s_1``, ``q_l = n_l s_l E[f(sqrt(q_{l-1}) z)^2]`` (forward variance);
    ``v_L = E[f'(sqrt(q_L) z)^2]``, ``v_l = m_{l+1} s_{l+1} v_{l+1} E[f'(sqrt(q_l) z)^2]``.
    """
    shapes = stack.weight_shapes()
    moments = [weight_second_moment(scheme, s) for s in shapes]
    L = len(shapes)
    if any(m is None for m in moments):
        return [None] * L, [None] * L
    k = math.prod(shapes[0][2:])
    fan_in = [s[1] * k for s in shapes]
    fan_out = [s[0] * k for s in shapes]
    act = stack.activation
    q: list[float] = []
    prev = 1.0  # E[x_0^2] of the standard-normal input
    for i in range(L):
        qi = fan_in[i] * moments[i] * prev  # type: ignore[operator]
        q.append(qi)
        prev = act.moment(qi, derivative=False)
    v = [0.0] * L
    v[L - 1] = act.moment(q[L - 1], derivative=True)
    for i in range(L - 2, -1, -1):
        v[i] = fan_out[i + 1] * moments[i + 1] * v[i + 1] * act.moment(q[i], True)  # type: ignore
    fwd = [math.sqrt(x) if math.isfinite(x) else None for x in q]
    bwd = [math.sqrt(x) if math.isfinite(x) else None for x in v]
    return fwd, bwd


def measure(stack: Stack, weights: Sequence[np.ndarray], x: np.ndarray,
            g: np.ndarray) -> dict[str, list[Any]]:
    """Forward and backward pass of ``x`` and ``g`` (channels last) through the stack: the
    per-layer statistics of the layer outputs ``z_l = W_l x_{l-1}`` and of ``dLoss/dz_l``."""
    act, conv = stack.activation, stack.layer.conv
    ph, pw = stack.layer.kh // 2, stack.layer.kw // 2
    L = len(weights)
    fwd: list[Optional[float]] = [None] * L
    distinct: list[Optional[int]] = [None] * L
    derivs: list[np.ndarray] = []
    h = x
    with np.errstate(all="ignore"):
        for i, w in enumerate(weights):
            z = _conv(h, w, ph, pw) if conv else h @ w.T
            fwd[i] = _std(z)
            distinct[i] = distinct_rows(z.reshape(-1, z.shape[-1]))
            if not math.isfinite(fwd[i]):  # type: ignore[arg-type]
                break
            _flush_subnormals(z)
            derivs.append(act.df(z))
            h = act.f(z)
        bwd: list[Optional[float]] = [None] * L
        dead: list[Optional[float]] = [None] * L
        if len(derivs) == L:
            delta = g * derivs[L - 1]
            for i in range(L - 1, -1, -1):
                bwd[i] = _std(delta)
                dead[i] = _dead(delta)
                if not math.isfinite(bwd[i]) or i == 0:  # type: ignore[arg-type]
                    break
                _flush_subnormals(delta)
                w = weights[i]
                e = _conv_input_grad(delta, w) if conv else delta @ w
                delta = e * derivs[i - 1]
    return {"forward_std": fwd, "backward_std": bwd, "dead_fraction": dead,
            "distinct_rows": distinct}


# ----------------------------------------------------------------------------------------------
# The API

def _positive_int(value: object, what: str) -> int:
    import operator

    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be an integer, not bool")
    try:
        v = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}") from None
    if v < 1:
        raise ValueError(f"{what} must be >= 1, got {v}")
    return v


def _widths(depth: Optional[int], width: Optional[int],
            widths: Optional[Sequence[int]]) -> tuple[int, ...]:
    if widths is not None:
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
            raise TypeError("widths must be a sequence of ints (input width, then each "
                            "layer's output width)")
        ws = tuple(_positive_int(w, f"widths[{i}]") for i, w in enumerate(widths))
        if len(ws) < 2:
            raise ValueError(f"widths must chain at least one layer: the input width and each "
                             f"layer's output width (>= 2 entries), got {list(ws)}")
        if depth is not None and _positive_int(depth, "depth") != len(ws) - 1:
            raise ValueError(f"widths {list(ws)} do not chain {depth} layers: {len(ws) - 1} "
                             f"layers need depth={len(ws) - 1} (or give only one of them)")
        if width is not None:
            raise ValueError("give width or widths, not both")
        return ws
    d = _positive_int(50 if depth is None else depth, "depth")
    w = _positive_int(512 if width is None else width, "width")
    return (w,) * (d + 1)


def explain(
    schemes: Union[str, Sequence[str]] = DEFAULT_SCHEMES,
    *,
    depth: Optional[int] = None,
    width: Optional[int] = None,
    widths: Optional[Sequence[int]] = None,
    activation: str = "relu",
    layer: str = "dense",
    batch: Optional[int] = None,
    image: Union[int, tuple[int, int]] = 8,
    seed: int = 0,
) -> Report:
    """Measures what each scheme does to activations and gradients through a stack of layers.

    For every scheme, the stack (``depth`` layers of ``width`` units, default 50 x 512, or the
    widths given) is initialized with weightfill; a standard-normal batch goes forward
    (``z_l = W_l x_{l-1}``, ``x_l = f(z_l)``, no biases) and a standard-normal gradient of
    ``x_L`` goes back by exact backpropagation. Per layer: the std of ``z_l`` and of
    ``dLoss/dz_l``, their predictions by the variance formula, the fraction of dead units (no
    gradient for any example: a ReLU that never fires) and the number of distinct unit
    responses (1: the symmetry was never broken). See docs/explain.md.

    Parameters
    ----------
    schemes : str or sequence of str
        Scheme names from :data:`weightfill.params.SCHEMES` with optional arguments,
        ``"name:arg,key=value"``: ``"normal:0.01"``, ``"uniform:-0.1,0.1"``,
        ``"kaiming_normal:a=0.2,nonlinearity=leaky_relu"``, ``"xavier_uniform:5/3"`` is not
        parsed (give numbers). A str is a comma-separated list.
    depth, width : int
        Layers and units per layer (default 50 and 512).
    widths : sequence of int
        Instead of depth and width: the input width, then each layer's output width.
    activation : {"relu", "leaky_relu[:slope]", "tanh", "sigmoid", "selu", "gelu", "linear"}
    layer : {"dense", "conv2d:KxK"}
        ``conv2d`` layers are stride 1 with circular padding (every output sees ``fan_in``
        inputs, as the fan-based formulas assume); widths are channel counts.
    batch : int
        Examples (default 1024 for dense, 16 for conv2d: 16 x 8 x 8 = 1024 positions).
    image : int or (int, int)
        Height and width of the conv2d images (default 8).
    seed : int
        Seed of every weight, the input and the output gradient.

    Returns
    -------
    Report

    Reproducibility
    ---------------
    Layer ``l``'s weight is ``scheme(shape, seed=seed, stream="layers.<l>.weight")`` in
    torch layout (all schemes of a run share the underlying draws, which makes their
    comparison paired), the input ``weightfill.normal(input_shape, seed=seed,
    stream="explain.input")`` and the output gradient ``weightfill.normal(output_shape,
    seed=seed, stream="explain.output_grad")``, shapes in torch order (``(batch, C, H, W)``
    for conv2d). Measured values depend on the BLAS's summation order to float32 rounding.
    """
    act = parse_activation(activation)
    kind = parse_layer(layer)
    ws = _widths(depth, width, widths)
    if isinstance(schemes, str):
        texts = split_schemes(schemes)
    elif isinstance(schemes, Sequence):
        texts = list(schemes)
    else:
        raise TypeError(f"schemes must be a str or a sequence of str, not "
                        f"{type(schemes).__name__}")
    if not texts:
        raise ValueError("schemes: give at least one scheme")
    parsed = [parse_scheme(t) for t in texts]
    if len({p.text for p in parsed}) != len(parsed):
        raise ValueError(f"schemes: a scheme is given twice in {texts}")
    b = _positive_int((16 if kind.conv else 1024) if batch is None else batch, "batch")
    if isinstance(image, (tuple, list)):
        if len(image) != 2:
            raise ValueError(f"image must be an int or (height, width), got {image!r}")
        img = (_positive_int(image[0], "image[0]"), _positive_int(image[1], "image[1]"))
    else:
        img = (_positive_int(image, "image"),) * 2
    from .streams import normalize_seed

    s = normalize_seed(seed)
    stack = Stack(ws, act, kind, b, img, s)
    positions = b * (img[0] * img[1] if kind.conv else 1)
    values = positions * sum(ws[1:])
    if values > 1 << 31:
        raise ValueError(f"the stack keeps {values} activations (batch x positions x widths); "
                         "the limit is 2**31: use a smaller batch, depth or width")
    settings: dict[str, Any] = {
        "activation": act.label, "layer": kind.label, "depth": stack.depth,
        "widths": list(ws), "batch": b, "seed": s}
    if kind.conv:
        settings["image"] = list(img)
    report = Report(settings)
    x, g = _draw_inputs(stack)
    t0 = time.perf_counter()
    for p in parsed:
        weights = make_weights(stack, p)
        d: dict[str, Any] = {"width": list(ws[1:])}
        d.update(measure(stack, weights, x, g))
        d["predicted_forward_std"], d["predicted_backward_std"] = predictions(stack, p)
        d["verdict"] = verdict(d["forward_std"], d["backward_std"], d["distinct_rows"], ws[1:])
        for key in ("forward_std", "backward_std"):  # JSON has no infinity: overflow is None
            d[key] = [None if v is not None and not math.isfinite(v) else v for v in d[key]]
        report.schemes[p.text] = d
    settings["elapsed_s"] = round(time.perf_counter() - t0, 3)
    return report


# ----------------------------------------------------------------------------------------------
# Command line

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schemes", default=",".join(DEFAULT_SCHEMES), metavar="LIST",
                   help="comma-separated schemes, name or name:arg,key=value (default: "
                        + ",".join(DEFAULT_SCHEMES) + ")")
    p.add_argument("--depth", type=int, metavar="N", help="layers (default 50)")
    p.add_argument("--width", type=int, metavar="N", help="units (channels) per layer "
                                                          "(default 512)")
    p.add_argument("--widths", metavar="LIST",
                   help="instead of --depth/--width: input width, then each layer's output "
                        "width, e.g. 784,512,512,10")
    p.add_argument("--activation", default="relu",
                   help="relu (default), leaky_relu[:SLOPE], tanh, sigmoid, selu, gelu, linear")
    p.add_argument("--layer", default="dense", help="dense (default) or conv2d:KxK, e.g. "
                                                    "conv2d:3x3 (circular padding)")
    p.add_argument("--batch", type=int, metavar="N",
                   help="examples (default 1024 dense, 16 conv2d)")
    p.add_argument("--image", type=int, default=8, metavar="N",
                   help="conv2d image height and width (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--rows", type=int, default=8, metavar="N",
                   help="layers shown per scheme in the table (default 8)")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON to FILE ('-': "
                                                  "stdout, instead of the table)")
    p.add_argument("--plot", metavar="FILE.png", help="save the two-panel plot (needs "
                                                      "matplotlib: weightfill[plot])")


def _check_output_path(path: str, opt: str, fail: Callable[[str], Any]) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        fail(f"{opt} {path}: folder {folder} does not exist")


def run(args: argparse.Namespace, fail: Callable[[str], Any],
        out: Optional[TextIO] = None) -> int:
    """Runs ``weightfill explain`` with parsed options; returns the exit status."""
    out = out if out is not None else sys.stdout
    if args.rows < 2:
        fail(f"--rows must be >= 2, got {args.rows}")
    if args.plot is not None:
        if not args.plot.lower().endswith(".png"):
            fail(f"--plot {args.plot}: give a .png file name")
        _check_output_path(args.plot, "--plot", fail)
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            fail("--plot needs matplotlib: pip install matplotlib (or weightfill[plot])")
    if args.json is not None and args.json != "-":
        _check_output_path(args.json, "--json", fail)
    widths = None
    if args.widths is not None:
        try:
            widths = [int(w) for w in args.widths.split(",")]
        except ValueError:
            fail(f"--widths {args.widths!r}: give comma-separated integers")
    try:
        report = explain(split_schemes(args.schemes), depth=args.depth, width=args.width,
                         widths=widths, activation=args.activation, layer=args.layer,
                         batch=args.batch, image=args.image, seed=args.seed)
    except (TypeError, ValueError) as err:
        msg = str(err)
        for opt in ("schemes", "activation", "layer", "widths", "width", "depth", "batch",
                    "image", "seed"):
            if msg.startswith(opt):
                msg = "--" + msg
                break
        fail(msg)
        raise
    if args.json == "-":
        out.write(report.to_json() + "\n")
    else:
        if args.json is not None:
            report.to_json(args.json)
        out.write(report.format(args.rows) + "\n")
        if args.json is not None:
            out.write(f"report written to {args.json}\n")
    if args.plot is not None:
        report.plot(args.plot)
        if args.json != "-":
            out.write(f"plot saved to {args.plot}\n")
    out.flush()
    return 0
