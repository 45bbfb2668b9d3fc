"""Fans and gains against the real anchors: torch.nn.init's _calculate_fan_in_and_fan_out and
calculate_gain, Keras's compute_fans (jax backend) and JAX's _compute_fans, on the weight shapes
the frameworks' own layers create."""

from __future__ import annotations

import math
import os
import tempfile

import numpy as np
import pytest
import scipy.integrate
import scipy.special

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "weightfill-keras-home"))

import keras  # noqa: E402
import torch  # noqa: E402
from jax._src.nn import initializers as jax_init  # noqa: E402  (JAX's private _compute_fans)
from keras.src.initializers.random_initializers import compute_fans as keras_compute_fans  # noqa: E402
from weightfill.fans import compute_fans  # noqa: E402
from weightfill.gains import calculate_gain, second_moment_gain  # noqa: E402

torch_fans = torch.nn.init._calculate_fan_in_and_fan_out
jax_fans = jax_init._compute_fans


def torch_weight_shapes():
    """Weights of real torch layers: (name, shape)."""
    nn = torch.nn
    layers = {
        "linear": nn.Linear(784, 300),
        "conv1d": nn.Conv1d(16, 64, 5),
        "conv2d": nn.Conv2d(3, 64, 7),
        "conv3d": nn.Conv3d(8, 32, 3),
        "conv2d_grouped": nn.Conv2d(32, 64, 3, groups=4),
        "conv1d_depthwise": nn.Conv1d(12, 24, 4, groups=12),
        "conv_transpose2d": nn.ConvTranspose2d(16, 32, 3),
        "conv_transpose3d_grouped": nn.ConvTranspose3d(8, 12, 2, groups=2),
    }
    return [(k, tuple(m.weight.shape)) for k, m in layers.items()]


def keras_kernel_shapes():
    """Kernels of real Keras layers: (name, shape)."""
    L = keras.layers
    cases = {
        "dense": (L.Dense(300), (None, 784)),
        "conv1d": (L.Conv1D(64, 5), (None, 100, 16)),
        "conv2d": (L.Conv2D(64, 7), (None, 32, 32, 3)),
        "conv3d": (L.Conv3D(32, 3), (None, 8, 8, 8, 8)),
        "conv2d_grouped": (L.Conv2D(64, 3, groups=4), (None, 16, 16, 32)),
        "conv2d_transpose": (L.Conv2DTranspose(32, 3), (None, 8, 8, 16)),
    }
    shapes = []
    for name, (layer, inp) in cases.items():
        layer.build(inp)
        shapes.append((name, tuple(layer.kernel.shape)))
    return shapes


TORCH_SHAPES = torch_weight_shapes()
KERAS_SHAPES = keras_kernel_shapes()


@pytest.mark.parametrize("name,shape", TORCH_SHAPES, ids=[n for n, _ in TORCH_SHAPES])
def test_torch_layout_equals_torch(name, shape):
    assert compute_fans(shape) == torch_fans(torch.empty(shape))
    assert compute_fans(shape, layout="torch") == torch_fans(torch.empty(shape))


@pytest.mark.parametrize("shape", [(5, 3), (1, 1), (4, 0), (2, 3, 0, 5), (6, 2, 1, 1, 1, 3)])
def test_torch_layout_odd_shapes(shape):
    assert compute_fans(shape) == torch_fans(torch.empty(shape))


@pytest.mark.parametrize("shape", [(), (7,)])
def test_torch_layout_rejects_fewer_than_two_dims(shape):
    with pytest.raises(ValueError, match="fewer than 2"):
        torch_fans(torch.empty(shape))
    with pytest.raises(ValueError, match="fewer than 2"):
        compute_fans(shape)


@pytest.mark.parametrize("name,shape", KERAS_SHAPES, ids=[n for n, _ in KERAS_SHAPES])
def test_keras_layout_equals_keras(name, shape):
    assert compute_fans(shape, layout="keras") == keras_compute_fans(shape)


@pytest.mark.parametrize("shape", [(), (7,), (1,), (3, 4), (2, 2, 2, 2, 2, 2)])
def test_keras_layout_small_ranks(shape):
    assert compute_fans(shape, layout="keras") == keras_compute_fans(shape)


def test_keras_layout_clamps_to_one():
    # Keras's compute_fans returns 0 here and VarianceScaling divides by max(1, fan).
    assert keras_compute_fans((0, 3)) == (0, 3)
    assert compute_fans((0, 3), layout="keras") == (1, 3)
    assert compute_fans((0,), layout="keras") == (1, 1)


JAX_CASES = [
    # shape, in_axis, out_axis, batch_axis
    ((784, 300), -2, -1, ()),
    ((5, 16, 64), -2, -1, ()),
    ((3, 3, 8, 64), -2, -1, ()),
    ((3, 3, 3, 8, 32), -2, -1, ()),
    ((8, 256, 512), -2, -1, 0),  # stacked experts
    ((8, 4, 256, 512), -2, -1, (0, 1)),  # experts x layers
    ((64, 8, 3, 3), 1, 0, ()),  # torch-ordered conv through JAX's rule
    ((6, 4, 5, 7), (0, 1), -1, ()),  # multi-axis input
    ((6, 4, 5, 7), 0, (1, 2), 3),
    ((2, 3, 4), 2, 0, 1),
]


@pytest.mark.parametrize("shape,in_axis,out_axis,batch_axis", JAX_CASES)
def test_jax_rule_equals_jax(shape, in_axis, out_axis, batch_axis):
    expected = jax_fans(shape, in_axis, out_axis, batch_axis)
    got = compute_fans(shape, layout="jax", in_axis=in_axis, out_axis=out_axis,
                       batch_axis=batch_axis)
    assert got == expected
    assert all(isinstance(f, int) for f in got)
    # Explicit axes select JAX's rule whatever the layout.
    assert compute_fans(shape, in_axis=in_axis, out_axis=out_axis,
                        batch_axis=batch_axis) == expected


def test_jax_rule_defaults_and_1d():
    assert compute_fans((3, 3, 8, 64), layout="jax") == jax_fans((3, 3, 8, 64))
    with pytest.raises(ValueError):
        jax_fans((7,))
    with pytest.raises(ValueError, match="in_axis"):
        compute_fans((7,), layout="jax")


def test_batch_axes_removed_for_torch_and_keras_layouts():
    # Expert-batched weights: torch Linear (experts, out, in), Keras kernel (experts, in, out).
    assert compute_fans((8, 512, 256), batch_axis=0) == torch_fans(torch.empty(512, 256))
    assert compute_fans((8, 256, 512), layout="keras", batch_axis=0) == \
        keras_compute_fans((256, 512))
    assert compute_fans((8, 256, 512), layout="keras", batch_axis=0) == \
        jax_fans((8, 256, 512), batch_axis=0)
    # Leading batch axes: the JAX rule and removal agree.
    assert compute_fans((4, 3, 3, 8, 64), layout="jax", batch_axis=0) == \
        compute_fans((4, 3, 3, 8, 64), layout="keras", batch_axis=0)


def test_explicit_axes_default_to_the_layouts():
    # Only out_axis given in torch layout: in_axis stays 1.
    assert compute_fans((8, 64, 32), layout="torch", out_axis=1, in_axis=2,
                        batch_axis=0) == (32, 64)
    assert compute_fans((64, 32, 3), layout="torch", out_axis=0) == (96, 192)
    assert compute_fans((3, 32, 64), layout="keras", in_axis=1) == (96, 192)


def test_transposed_gives_the_true_fans():
    nn = torch.nn
    t = nn.ConvTranspose2d(16, 32, 3).weight
    forward = nn.Conv2d(16, 32, 3).weight
    assert compute_fans(t.shape) == torch_fans(t)  # torch's behaviour by default
    assert compute_fans(t.shape, transposed=True) == torch_fans(forward)
    assert compute_fans(t.shape, transposed=True) != torch_fans(t)

    layer, fwd = keras.layers.Conv2DTranspose(32, 3), keras.layers.Conv2D(32, 3)
    layer.build((None, 8, 8, 16))
    fwd.build((None, 8, 8, 16))
    kt, kf = tuple(layer.kernel.shape), tuple(fwd.kernel.shape)
    assert compute_fans(kt, layout="keras") == keras_compute_fans(kt)
    assert compute_fans(kt, layout="keras", transposed=True) == keras_compute_fans(kf)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(layout="tf"), ValueError, "layout"),
        (dict(layout=None), TypeError, "layout"),
        (dict(layout="jax", in_axis=4), ValueError, "in_axis"),
        (dict(layout="jax", in_axis=0, out_axis=0), ValueError, "share an axis"),
        (dict(layout="jax", batch_axis=-1), ValueError, "share an axis"),
        (dict(in_axis=(0, 0)), ValueError, "twice"),
        (dict(in_axis="0"), TypeError, "in_axis"),
        (dict(batch_axis=True), TypeError, "batch_axis"),
        (dict(transposed=1), TypeError, "transposed"),
    ],
)
def test_fan_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        compute_fans((3, 3, 8, 64), **kwargs)


def test_shape_errors():
    with pytest.raises(ValueError, match=r"shape\[1\]"):
        compute_fans((3, -1))
    with pytest.raises(TypeError, match="shape"):
        compute_fans((3, 2.0))


# ----------------------------------------------------------------------------------------------
# Gains

TORCH_NAMES = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
               "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_gain_table_equals_torch(name):
    assert calculate_gain(name) == torch.nn.init.calculate_gain(name)


@pytest.mark.parametrize("slope", [None, 0, 0.2, 1, 3, -0.5, 0.01])
def test_leaky_relu_gain_equals_torch(slope):
    assert calculate_gain("leaky_relu", slope) == torch.nn.init.calculate_gain("leaky_relu", slope)


def test_param_ignored_except_for_leaky_relu():
    assert calculate_gain("relu", 0.3) == torch.nn.init.calculate_gain("relu", 0.3)
    assert calculate_gain("tanh", "ignored") == torch.nn.init.calculate_gain("tanh", "ignored")


@pytest.mark.parametrize(
    "args",
    [("gelu",), ("ReLU",), ("",), ("leaky_relu", "0.2"), ("leaky_relu", True),
     ("leaky_relu", [0.1])],
)
def test_gain_errors_match_torch(args):
    with pytest.raises(ValueError) as ours:
        calculate_gain(*args)
    with pytest.raises(ValueError) as theirs:
        torch.nn.init.calculate_gain(*args)
    assert str(ours.value).split(" (")[0] == str(theirs.value)


def test_gain_type_error():
    with pytest.raises(TypeError, match="nonlinearity"):
        calculate_gain(3)


def _quad_gain(f, points=(0.0,)):
    pts = sorted(points)
    edges = [-np.inf, *pts, np.inf]
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        val, _ = scipy.integrate.quad(lambda x: f(x) ** 2 * math.exp(-x * x / 2), lo, hi,
                                      epsabs=0, epsrel=1e-13, limit=200)
        total += val
    return 1.0 / math.sqrt(total / math.sqrt(2 * math.pi))


def test_callable_relu_is_exactly_sqrt2():
    g = calculate_gain(lambda x: np.maximum(x, 0.0))
    assert abs(g - math.sqrt(2.0)) <= 1e-12 * math.sqrt(2.0)


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 1.0, 5.0])
def test_callable_leaky_relu_equals_torch_formula(slope):
    g = calculate_gain(lambda x: np.where(x > 0, x, slope * x))
    assert g == pytest.approx(torch.nn.init.calculate_gain("leaky_relu", slope), rel=1e-13)


SMOOTH = {
    "tanh": (np.tanh, ()),
    "sigmoid": (scipy.special.expit, ()),
    "gelu": (lambda x: 0.5 * x * (1 + scipy.special.erf(x / math.sqrt(2))), ()),
    "silu": (lambda x: x * scipy.special.expit(x), ()),
    "elu": (lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))), (0.0,)),
    "softplus": (lambda x: np.logaddexp(0, x), ()),
    "hardtanh": (lambda x: np.clip(x, -1, 1), (-1.0, 1.0)),
    "relu6": (lambda x: np.clip(x, 0, 6), (0.0, 6.0)),
}


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_callable_gain_against_adaptive_quadrature(name):
    f, kinks = SMOOTH[name]
    expected = _quad_gain(lambda x: float(f(np.float64(x))), kinks)
    assert calculate_gain(f) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("c", [1.0, 2.0, -1.5])
def test_callable_exponential_closed_form(c):
    # E[exp(c z)^2] = exp(2 c^2), so the gain is exp(-c^2).
    assert calculate_gain(lambda x: np.exp(c * x)) == pytest.approx(math.exp(-c * c), rel=1e-13)


def test_callable_selu_is_self_normalising():
    alpha, lam = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    g = calculate_gain(lambda x: lam * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))))
    assert g == pytest.approx(1.0, abs=1e-8)  # the SELU constants are given to ~1e-9 here
    assert calculate_gain("selu") == 0.75  # torch's empirical value, by name


def test_scalar_only_and_torch_callables():
    assert calculate_gain(math.tanh) == pytest.approx(calculate_gain(np.tanh), rel=1e-15)
    assert calculate_gain(lambda x: torch.relu(torch.as_tensor(x)).numpy()) == \
        pytest.approx(math.sqrt(2), rel=1e-14)
    assert second_moment_gain(np.tanh) == calculate_gain(np.tanh)


@pytest.mark.parametrize("f", [lambda x: 0 * x, lambda x: np.full_like(x, np.nan),
                               lambda x: np.exp(x * x)])
def test_callable_gain_errors(f):
    with pytest.raises(ValueError, match="nonlinearity|E\\[f"):
        calculate_gain(f)
