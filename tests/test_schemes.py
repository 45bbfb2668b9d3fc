"""Schemes: parity with the anchors (torch.nn.init, keras.initializers, jax.nn.initializers) on a
battery of layer shapes, statistics, regions, orthogonality, exact placement and argument
checks."""

from __future__ import annotations

import math
import os
import tempfile

import ml_dtypes
import numpy as np
import pytest
from scipy import stats

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "weightfill-keras-home"))

import jax  # noqa: E402
import keras  # noqa: E402
import torch  # noqa: E402
import weightfill as wf  # noqa: E402
from jax._src.nn.initializers import _compute_fans as jax_fans  # noqa: E402
from weightfill import _core  # noqa: E402
from weightfill.schemes import (  # noqa: E402
    TRUNCATED_NORMAL_STD,
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

SEED = 20240611
BF16 = np.dtype(ml_dtypes.bfloat16)
ENGINE_DTYPES = [np.float32, np.float64, np.float16, ml_dtypes.bfloat16]
torch_fans = torch.nn.init._calculate_fan_in_and_fan_out

# Weight shapes of torch layers: Linear(784, 300); Conv1d(16, 64, 5); Conv2d(3, 64, 7);
# Conv3d(8, 32, 3); Conv2d(32, 64, 3, groups=4); ConvTranspose2d(16, 32, 3).
TORCH_SHAPES = [(300, 784), (64, 16, 5), (64, 3, 7, 7), (32, 8, 3, 3, 3), (64, 8, 3, 3),
                (16, 32, 3, 3)]
# The same layers in Keras: Dense, Conv1D, Conv2D, Conv3D, grouped Conv2D, Conv2DTranspose.
KERAS_SHAPES = [(784, 300), (5, 16, 64), (7, 7, 3, 64), (3, 3, 3, 8, 32), (3, 3, 8, 64),
                (3, 3, 32, 16)]


def bits(a: np.ndarray) -> np.ndarray:
    kind = {2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    return np.ascontiguousarray(a).view(kind)


def assert_same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(bits(a), bits(b))


def test_battery_shapes_are_the_frameworks_own():
    nn, L = torch.nn, keras.layers
    modules = [nn.Linear(784, 300), nn.Conv1d(16, 64, 5), nn.Conv2d(3, 64, 7), nn.Conv3d(8, 32, 3),
               nn.Conv2d(32, 64, 3, groups=4), nn.ConvTranspose2d(16, 32, 3)]
    assert [tuple(m.weight.shape) for m in modules] == TORCH_SHAPES
    layers = [(L.Dense(300), (None, 784)), (L.Conv1D(64, 5), (None, 50, 16)),
              (L.Conv2D(64, 7), (None, 16, 16, 3)), (L.Conv3D(32, 3), (None, 6, 6, 6, 8)),
              (L.Conv2D(64, 3, groups=4), (None, 8, 8, 32)),
              (L.Conv2DTranspose(32, 3), (None, 8, 8, 16))]
    for layer, inp in layers:
        layer.build(inp)
    assert [tuple(layer.kernel.shape) for layer, _ in layers] == KERAS_SHAPES


# ----------------------------------------------------------------------------------------------
# Parity: each scheme is one engine fill whose parameters are the anchor's formula, computed
# here from the anchor's own fans and gains.


def torch_expected(name, shape, dtype, **kw):
    fan_in, fan_out = torch_fans(torch.empty(shape))
    if name in ("xavier_uniform", "xavier_normal"):
        std = kw.get("gain", 1.0) * math.sqrt(2.0 / float(fan_in + fan_out))
    else:
        gain = torch.nn.init.calculate_gain(kw.get("nonlinearity", "leaky_relu"), kw.get("a", 0))
        std = gain / math.sqrt(fan_in if kw.get("mode", "fan_in") == "fan_in" else fan_out)
    args = dict(seed=SEED, stream="w", dtype=dtype)
    if name.endswith("uniform"):
        a = math.sqrt(3.0) * std
        return wf.uniform(shape, -a, a, **args)
    return wf.normal(shape, 0.0, std, **args)


TORCH_CASES = [
    (xavier_uniform, {}),
    (xavier_uniform, dict(gain=5.0 / 3)),
    (xavier_normal, dict(gain=math.sqrt(2.0))),
    (kaiming_uniform, {}),
    (kaiming_uniform, dict(a=math.sqrt(5.0))),  # nn.Linear / nn.Conv*d reset_parameters
    (kaiming_uniform, dict(mode="fan_out", nonlinearity="relu")),
    (kaiming_normal, dict(a=0.2, mode="fan_out")),
    (kaiming_normal, dict(nonlinearity="tanh")),
]


@pytest.mark.parametrize("dtype", ENGINE_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", TORCH_SHAPES, ids=str)
@pytest.mark.parametrize("scheme,kw", TORCH_CASES,
                         ids=lambda c: str(c) if isinstance(c, dict) else c.__name__)
def test_torch_schemes_equal_the_torch_formula(scheme, kw, shape, dtype):
    got = scheme(shape, **kw, seed=SEED, stream="w", dtype=dtype)
    assert_same_bits(got, torch_expected(scheme.__name__, shape, dtype, **kw))


def keras_expected(shape, scale, mode, distribution, dtype, batch_axis=()):
    fan_in, fan_out = jax_fans(shape, batch_axis=batch_axis)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2,
         "fan_geo_avg": math.sqrt(fan_in * fan_out)}[mode]
    variance = scale / max(1.0, n)
    args = dict(seed=SEED, stream="k", dtype=dtype)
    if distribution == "truncated_normal":
        return wf.truncated_normal(shape, 0.0, math.sqrt(variance) / 0.87962566103423978,
                                   -2.0, 2.0, **args)
    if distribution == "uniform":
        limit = math.sqrt(3.0 * variance)
        return wf.uniform(shape, -limit, limit, **args)
    return wf.normal(shape, 0.0, math.sqrt(variance), **args)


PRESETS = [
    (glorot_uniform, (1.0, "fan_avg", "uniform")),
    (glorot_normal, (1.0, "fan_avg", "truncated_normal")),
    (he_uniform, (2.0, "fan_in", "uniform")),
    (he_normal, (2.0, "fan_in", "truncated_normal")),
    (lecun_uniform, (1.0, "fan_in", "uniform")),
    (lecun_normal, (1.0, "fan_in", "truncated_normal")),
]


@pytest.mark.parametrize("dtype", ENGINE_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", KERAS_SHAPES, ids=str)
@pytest.mark.parametrize("scheme,params", PRESETS, ids=lambda c: getattr(c, "__name__", ""))
def test_keras_presets_equal_the_keras_formula(scheme, params, shape, dtype):
    got = scheme(shape, seed=SEED, stream="k", dtype=dtype)
    assert_same_bits(got, keras_expected(shape, *params, dtype))


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg", "fan_geo_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_variance_scaling_equals_the_jax_formula(mode, distribution):
    shape = (3, 3, 8, 64)
    got = variance_scaling(shape, 0.7, mode, distribution, seed=SEED, stream="k")
    assert_same_bits(got, keras_expected(shape, 0.7, mode, distribution, np.float32))


def test_expert_batched_weights():
    # 8 experts of a (256 -> 512) channels-last dense layer: fans exclude the expert axis.
    shape = (8, 256, 512)
    got = he_normal(shape, batch_axis=0, seed=SEED, stream="k")
    assert_same_bits(got, keras_expected(shape, 2.0, "fan_in", "truncated_normal", np.float32,
                                         batch_axis=0))
    # The torch-layout equivalent (experts, out, in) with the batch axis removed.
    t = kaiming_normal((8, 512, 256), batch_axis=0, nonlinearity="relu", seed=SEED, stream="w")
    std = math.sqrt(2.0) / math.sqrt(torch_fans(torch.empty(512, 256))[0])
    assert_same_bits(t, wf.normal((8, 512, 256), 0.0, std, seed=SEED, stream="w"))


def test_layout_override():
    # A torch scheme on a channels-last kernel, and a Keras preset on a torch weight.
    k = (3, 3, 8, 64)
    assert_same_bits(kaiming_normal(k, layout="keras", seed=1),
                     kaiming_normal(k, in_axis=-2, out_axis=-1, seed=1))
    fan_in = 72
    assert_same_bits(kaiming_normal(k, layout="keras", seed=1),
                     wf.normal(k, 0.0, math.sqrt(2.0) / math.sqrt(fan_in), seed=1))
    t = (64, 8, 3, 3)
    assert_same_bits(he_uniform(t, layout="torch", seed=1),
                     kaiming_uniform(t, nonlinearity="relu", seed=1))
    assert_same_bits(he_uniform(t, in_axis=1, out_axis=0, seed=1),
                     kaiming_uniform(t, nonlinearity="relu", seed=1))
    # torch's xavier_uniform and Keras's glorot_uniform are the same distribution.
    assert_same_bits(glorot_uniform((784, 300), seed=1), xavier_uniform((784, 300), layout="keras",
                                                                         seed=1))


def test_transposed_option():
    shape = (16, 32, 3, 3)  # torch ConvTranspose2d(16, 32, 3)
    a = kaiming_normal(shape, transposed=True, seed=3)
    std = math.sqrt(2.0) / math.sqrt(16 * 9)
    assert_same_bits(a, wf.normal(shape, 0.0, std, seed=3))
    k = (3, 3, 32, 16)  # Keras Conv2DTranspose(32, 3) on 16 channels
    assert_same_bits(he_uniform(k, transposed=True, seed=3),
                     wf.uniform(k, -math.sqrt(6 / 144), math.sqrt(6 / 144), seed=3))


def test_small_ranks_follow_keras():
    # Keras: 1-D (n, n) and 0-D (1, 1); JAX would raise on both.
    assert_same_bits(lecun_uniform((10,), seed=2),
                     wf.uniform((10,), -math.sqrt(3 / 10), math.sqrt(3 / 10), seed=2))
    assert_same_bits(he_uniform((), seed=2), wf.uniform((), -math.sqrt(6), math.sqrt(6), seed=2))
    with pytest.raises(ValueError, match="in_axis"):
        he_uniform((10,), layout="jax", seed=2)
    with pytest.raises(ValueError, match="fewer than 2"):
        kaiming_uniform((10,), seed=2)


# ----------------------------------------------------------------------------------------------
# Statistics: our samples, and the anchors' own samples, against the anchors' target.

T_SHAPE, K_SHAPE = (512, 64, 3, 3), (3, 3, 64, 512)
N = math.prod(T_SHAPE)
FAN_IN, FAN_OUT = 576, 4608


def check_sample(w, target_std):
    w = np.asarray(w, np.float64)
    rel_se = math.sqrt(0.5 / w.size)  # of a sample std; the normal case is the widest here
    assert abs(w.std() / target_std - 1) < 6 * rel_se
    assert abs(w.mean()) < 6 * target_std / math.sqrt(w.size)


STAT_CASES = [
    # (ours, torch's in-place function or None, JAX initializer or None, shape, target std, kind)
    (lambda: xavier_uniform(T_SHAPE, seed=5), torch.nn.init.xavier_uniform_, None, T_SHAPE,
     math.sqrt(2 / (FAN_IN + FAN_OUT)), "uniform"),
    (lambda: xavier_normal(T_SHAPE, gain=2.0, seed=5),
     lambda t: torch.nn.init.xavier_normal_(t, gain=2.0), None, T_SHAPE,
     2.0 * math.sqrt(2 / (FAN_IN + FAN_OUT)), "normal"),
    (lambda: kaiming_uniform(T_SHAPE, a=math.sqrt(5), seed=5),
     lambda t: torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5)), None, T_SHAPE,
     math.sqrt(2 / 6) / math.sqrt(FAN_IN), "uniform"),
    (lambda: kaiming_normal(T_SHAPE, mode="fan_out", nonlinearity="relu", seed=5),
     lambda t: torch.nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"), None,
     T_SHAPE, math.sqrt(2 / FAN_OUT), "normal"),
    (lambda: glorot_uniform(K_SHAPE, seed=5), None, jax.nn.initializers.glorot_uniform(), K_SHAPE,
     math.sqrt(2 / (FAN_IN + FAN_OUT)), "uniform"),
    (lambda: glorot_normal(K_SHAPE, seed=5), None, jax.nn.initializers.glorot_normal(), K_SHAPE,
     math.sqrt(2 / (FAN_IN + FAN_OUT)), "truncated"),
    (lambda: he_uniform(K_SHAPE, seed=5), None, jax.nn.initializers.he_uniform(), K_SHAPE,
     math.sqrt(2 / FAN_IN), "uniform"),
    (lambda: he_normal(K_SHAPE, seed=5), None, jax.nn.initializers.he_normal(), K_SHAPE,
     math.sqrt(2 / FAN_IN), "truncated"),
    (lambda: lecun_uniform(K_SHAPE, seed=5), None, jax.nn.initializers.lecun_uniform(), K_SHAPE,
     math.sqrt(1 / FAN_IN), "uniform"),
    (lambda: lecun_normal(K_SHAPE, seed=5), None, jax.nn.initializers.lecun_normal(), K_SHAPE,
     math.sqrt(1 / FAN_IN), "truncated"),
    (lambda: variance_scaling(K_SHAPE, 3.0, "fan_geo_avg", "normal", seed=5), None,
     jax.nn.initializers.variance_scaling(3.0, "fan_geo_avg", "normal"), K_SHAPE,
     math.sqrt(3.0 / math.sqrt(FAN_IN * FAN_OUT)), "normal"),
]


@pytest.mark.parametrize("case", range(len(STAT_CASES)))
def test_sample_std_matches_the_anchor_and_its_samples(case):
    ours, torch_fn, jax_init, shape, target, kind = STAT_CASES[case]
    w = ours()
    check_sample(w, target)
    if torch_fn is not None:
        torch.manual_seed(0)
        check_sample(torch_fn(torch.empty(shape)).numpy(), target)
    if jax_init is not None:
        check_sample(jax_init(jax.random.key(0), shape, np.float32), target)
    if kind == "uniform":
        bound = np.float32(math.sqrt(3) * target)
        assert np.abs(w).max() <= bound  # never beyond the bound (in the output dtype)
        assert np.abs(w).max() > bound * (1 - 1e-3)
    if kind == "truncated":
        edge = np.float32(2 * target / TRUNCATED_NORMAL_STD)  # 2 standard deviations, untruncated
        assert np.abs(w).max() <= edge
        assert np.abs(w).max() > edge * (1 - 1e-3)
        # JAX computes its scale in float32, which may round one ulp higher.
        jw = np.asarray(jax_init(jax.random.key(0), shape, np.float32))
        assert np.abs(jw).max() <= edge * (1 + 1e-6)


@pytest.mark.parametrize("dtype", ENGINE_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("scheme", [glorot_normal, he_normal, lecun_normal, glorot_uniform,
                                    he_uniform, lecun_uniform, xavier_uniform, kaiming_uniform],
                         ids=lambda s: s.__name__)
def test_bounds_hold_in_every_dtype(scheme, dtype):
    w = scheme((64, 64, 3, 3), seed=9, dtype=dtype).astype(np.float64)
    name = scheme.__name__
    if name in ("xavier_uniform", "kaiming_uniform"):
        fan_in, fan_out = torch_fans(torch.empty(64, 64, 3, 3))
        std = (math.sqrt(2 / (fan_in + fan_out)) if name == "xavier_uniform"
               else math.sqrt(2) / math.sqrt(fan_in))
        bound = math.sqrt(3) * std
    else:
        fan_in, fan_out = jax_fans((64, 64, 3, 3))  # channels-last reading
        scale = {"glorot": 1.0, "he": 2.0, "lecun": 1.0}[name.split("_")[0]]
        n = fan_in if not name.startswith("glorot") else (fan_in + fan_out) / 2
        bound = (2 * math.sqrt(scale / n) / TRUNCATED_NORMAL_STD if name.endswith("normal")
                 else math.sqrt(3 * scale / n))
    assert np.abs(w).max() <= float(np.asarray(bound, dtype))


def test_keras_normal_is_silently_truncated_ours_is_not():
    shape = (1000, 1000)
    sigma = math.sqrt(1 / 1000)
    k = np.asarray(keras.initializers.VarianceScaling(1.0, "fan_in", "normal", seed=1)(shape))
    assert np.abs(k).max() <= 2 * sigma / TRUNCATED_NORMAL_STD * (1 + 1e-6)  # Keras truncates
    ours = variance_scaling(shape, 1.0, "fan_in", "normal", seed=1)
    assert np.abs(ours).max() > 4 * sigma  # untruncated, as JAX's "normal"
    check_sample(ours, sigma)
    assert_same_bits(ours, variance_scaling(shape, 1.0, "fan_in", "untruncated_normal", seed=1))
    assert_same_bits(variance_scaling(shape, distribution="truncated_normal", seed=1),
                     variance_scaling(shape, distribution="TRUNCATED_NORMAL", seed=1))


# ----------------------------------------------------------------------------------------------
# Regions, out= and shape=None

R_TORCH, R_KERAS = (6, 10, 3, 3), (3, 3, 10, 12)


def regions_for(shape, count=6):
    """A few hand-picked regions (whole, one leading slab, an empty one) and random boxes."""
    regions = [tuple(slice(0, n) for n in shape), (slice(shape[0] - 1, shape[0]),),
               (slice(1, 1),)]
    rng = np.random.default_rng(len(shape) * 1000 + shape[-1])
    for _ in range(count):
        box = []
        for n in shape:
            a, b = sorted(int(v) for v in rng.integers(0, n + 1, 2))
            box.append(slice(a, b))
        regions.append(tuple(box[: rng.integers(1, len(shape) + 1)]))
    return regions


RANDOM_SCHEMES = [
    (xavier_uniform, R_TORCH, {}), (xavier_normal, R_TORCH, {}),
    (kaiming_uniform, R_TORCH, {}), (kaiming_normal, R_TORCH, dict(mode="fan_out")),
    (orthogonal, R_TORCH, {}), (orthogonal, R_KERAS, dict(layout="keras")),
    (variance_scaling, R_KERAS, dict(distribution="normal")),
    (variance_scaling, R_KERAS, dict(distribution="uniform", mode="fan_avg")),
    (variance_scaling, R_KERAS, {}),
    (glorot_uniform, R_KERAS, {}), (glorot_normal, R_KERAS, {}), (he_uniform, R_KERAS, {}),
    (he_normal, R_KERAS, {}), (lecun_uniform, R_KERAS, {}), (lecun_normal, R_KERAS, {}),
    (he_normal, (4, 10, 12), dict(batch_axis=0)),
    (delta_orthogonal, R_KERAS, {}), (delta_orthogonal, (12, 10, 3, 3), dict(layout="torch")),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("scheme,shape,kw", RANDOM_SCHEMES,
                         ids=[f"{s.__name__}-{i}" for i, (s, _, _) in enumerate(RANDOM_SCHEMES)])
def test_region_equals_slice_of_full(scheme, shape, kw, dtype):
    full = scheme(shape, **kw, seed=SEED, stream="r", dtype=dtype)
    for region in regions_for(shape):
        part = scheme(shape, **kw, seed=SEED, stream="r", dtype=dtype, region=region)
        assert_same_bits(part, full[region])
        out = np.empty(full[region].shape, dtype)
        assert scheme(shape, **kw, seed=SEED, stream="r", out=out, region=region) is out
        assert_same_bits(out, full[region])


DETERMINISTIC = [
    (zeros, (4, 5, 6), {}), (ones, (4, 5, 6), {}), (constant, (4, 5, 6), dict(value=0.25)),
    (eye, (7, 5), {}), (eye, (5, 7), {}), (identity, (6, 9), dict(gain=-1.5)),
    (dirac, (6, 4, 3, 3), dict(groups=2)), (dirac, (3, 3, 4, 6), dict(layout="keras")),
]


@pytest.mark.parametrize("scheme,shape,kw", DETERMINISTIC,
                         ids=[f"{s.__name__}-{i}" for i, (s, _, _) in enumerate(DETERMINISTIC)])
def test_deterministic_regions(scheme, shape, kw):
    full = scheme(shape, **kw)
    rng = np.random.default_rng(0)
    for _ in range(20):
        region = []
        for n in shape:
            a, b = sorted(rng.integers(0, n + 1, 2))
            region.append(slice(int(a), int(b)))
        part = scheme(shape, **kw, region=tuple(region))
        assert_same_bits(part, full[tuple(region)])
    out = np.full(full.shape, 7.0, np.float32)
    assert scheme(None, **kw, out=out) is out  # shape taken from out; stale values overwritten
    assert_same_bits(out, full)


def test_shape_from_out():
    out = np.empty((64, 16, 3), np.float32)
    assert kaiming_uniform(out=out, seed=4) is out
    assert_same_bits(out, kaiming_uniform((64, 16, 3), seed=4))
    out64 = np.empty((16, 64), np.float64)
    orthogonal(out=out64, seed=4)
    assert_same_bits(out64, orthogonal((16, 64), seed=4, dtype=np.float64))
    with pytest.raises(TypeError, match="shape"):
        he_normal(seed=4)
    with pytest.raises(TypeError, match="shape"):
        he_normal(out=out, region=(slice(0, 2),), seed=4)


def test_empty_tensors():
    assert kaiming_normal((0, 5), seed=1).shape == (0, 5)
    assert kaiming_uniform((5, 0, 3), seed=1).shape == (5, 0, 3)
    assert xavier_normal((0, 0), seed=1).shape == (0, 0)
    assert he_normal((3, 0), seed=1).shape == (3, 0)
    assert orthogonal((0, 4), seed=1).shape == (0, 4)
    assert delta_orthogonal((3, 0, 4), seed=1).shape == (3, 0, 4)


# ----------------------------------------------------------------------------------------------
# Orthogonal

ORTHO_SHAPES = [(20, 50), (50, 20), (32, 32), (16, 4, 3, 3), (4, 2, 3, 5, 2)]


def reflector_product(a):
    """Stewart's (1980) Haar construction, written out naively in float64 as the oracle for
    the blocked code: for each column j of the tall (m, k) draw, the Householder reflection
    taking a[j:, j] to a multiple of e_0, applied one at a time to [I_k; 0], then each column
    multiplied by the sign that makes R's diagonal positive (a 1-long last column: its sign)."""
    a = np.array(a, np.float64)
    m, k = a.shape
    q = np.eye(m)[:, :k]
    signs = np.ones(k)
    for j in range(k - 1, -1, -1):
        x = a[j:, j]
        s = 1.0 if x[0] >= 0 else -1.0
        if len(x) == 1:
            signs[j] = s
            continue
        v = x.copy()
        v[0] += s * np.linalg.norm(x)
        signs[j] = -s
        q[j:, :] -= np.outer(v, (2.0 / (v @ v)) * (v @ q[j:, :]))
    return q * signs


@pytest.mark.parametrize("shape", ORTHO_SHAPES + [(1, 1), (7, 1), (1, 7), (300, 300), (600, 257)],
                         ids=str)
def test_orthogonal_is_the_reflector_product_of_our_draw(shape):
    rows, cols = shape[0], math.prod(shape[1:])
    w = orthogonal(shape, gain=-1.5, seed=SEED, stream="o", dtype=np.float64)
    a = wf.normal((rows, cols), seed=SEED, stream="o", dtype=np.float64)
    ref = reflector_product(a) if rows >= cols else reflector_product(a.T).T
    np.testing.assert_allclose(w.reshape(rows, cols), -1.5 * ref, rtol=0, atol=1e-12)
    # The first column of the tall matrix is the draw's, normalized (its reflection maps e_0 to
    # it up to sign, and the sign fix makes the correlation positive).
    tall, draw = (w.reshape(rows, cols), a) if rows >= cols else (w.reshape(rows, cols).T, a.T)
    np.testing.assert_allclose(-tall[:, 0] / 1.5, draw[:, 0] / np.linalg.norm(draw[:, 0]),
                               rtol=0, atol=1e-13)


def _draw_with_edge_cases(shape, dtype, case):
    a = np.random.default_rng(sum(shape) + case).standard_normal(shape).astype(dtype)
    if case == 1:  # -0.0 and +0.0 on the diagonal: both take the sign +1 (np.where's test)
        a[0, 0], a[min(1, shape[1] - 1), min(1, shape[1] - 1)] = -0.0, 0.0
    if case == 2 and shape[1] > 1:  # a zero column below the diagonal: no reflection
        a[1:, 1] = 0
    return a


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 1), (2, 1), (2, 2), (3, 3), (5, 3), (16, 16), (17, 9),
                                   (64, 64), (255, 200), (257, 257), (600, 300), (530, 520)],
                         ids=str)
@pytest.mark.parametrize("case", [0, 1, 2], ids=["plain", "signed-zeros", "zero-column"])
def test_compiled_steps_write_the_numpy_expressions_bits(case, shape, dtype):
    """_haar's elementwise steps are compiled (csrc/bindings/haar.cpp); the same computation
    in NumPy calls only (tests/reference.py) gives the same bits on the same BLAS build, for
    plain and transposed views, several blocks (k > 256), the last row's 1-long reflection
    (k == m) and the probability-0 cases (a zero column, signed zeros)."""
    from reference import orthonormal_columns_numpy
    from weightfill import _haar

    a = _draw_with_edge_cases(shape, dtype, case)
    for transposed in (False, True):
        got_a, ref_a = (a.T.copy().T, a.T.copy().T) if transposed else (a.copy(), a.copy())
        got, ref = np.full(shape, np.nan, dtype), np.full(shape, np.nan, dtype)
        if transposed:
            got, ref = np.full(shape[::-1], np.nan, dtype).T, np.full(shape[::-1], np.nan,
                                                                       dtype).T
        _haar.orthonormal_columns(got_a, got, -1.25)
        orthonormal_columns_numpy(ref_a, ref, -1.25)
        assert_same_bits(got, ref)
        assert_same_bits(got_a, ref_a)  # the Householder vectors left in the draw


def test_haar_inverse_is_numpys():
    from weightfill import _haar

    rng = np.random.default_rng(5)
    for b in (1, 2, 7, 64, 256):
        t_inv = np.triu(rng.standard_normal((b, b)), 1) + np.diag(rng.uniform(0.5, 2.0, b))
        assert_same_bits(_haar._inv(t_inv), np.linalg.inv(t_inv))


def test_haar_steps_refuse_bad_arrays():
    import pickle

    from weightfill import _core

    for bad in (np.zeros((3, 3), np.int32), np.zeros((3, 3), ">f8")):
        with pytest.raises(TypeError, match="q: must be native float32 or float64"):
            _core.haar_unit(bad)
    q = pickle.loads(pickle.dumps(np.zeros((3, 2))))  # an equal dtype, not the same object
    _core.haar_unit(q)
    assert_same_bits(q, np.eye(3, 2))
    with pytest.raises(ValueError, match="v: need rows >= columns"):
        _core.haar_zero_above(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="norm: need a contiguous float64 vector of 3"):
        _core.haar_reflectors(np.zeros((3, 3)), np.zeros(2), np.zeros(3), False)
    with pytest.raises(ValueError, match="sign: need a writable contiguous float64 vector"):
        _core.haar_reflectors(np.zeros((3, 3)), np.ones(3),
                              np.frombuffer(bytes(24), np.float64), False)
    with pytest.raises(ValueError, match="read-only"):
        _core.haar_scale(np.frombuffer(bytes(72), np.float64).reshape(3, 3), np.ones(3), 1.0)
    with pytest.raises(ValueError, match="g: need a square float64"):
        _core.haar_t_inverse(np.zeros((3, 3), np.float32), np.zeros(3))


def _ortho_samples(shape, n, dtype=np.float64):
    return np.stack([orthogonal(shape, seed=SEED, stream=1000 + i, dtype=dtype)
                     for i in range(n)])


def test_orthogonal_is_haar_distributed():
    """Against theory and an independent sampler (scipy.stats.ortho_group): on O(3) every
    entry is uniform on [-1, 1]; the determinant is +-1 with probability 1/2 each; on O(5) the
    trace and an entry match scipy's samples; for a tall (6, 2) matrix Q_ij^2 ~ Beta(1/2, 5/2).
    Eight tests at p > 1e-4 each: a false alarm about once in a thousand seeds."""
    q3 = _ortho_samples((3, 3), 3000)
    for i, j in [(0, 0), (1, 2), (2, 1)]:
        assert stats.kstest(q3[:, i, j], stats.uniform(-1, 2).cdf).pvalue > 1e-4
    det = np.linalg.det(q3)
    np.testing.assert_allclose(np.abs(det), 1, atol=1e-12)
    assert stats.binomtest(int((det > 0).sum()), len(det)).pvalue > 1e-4
    q5 = _ortho_samples((5, 5), 3000)
    ref = stats.ortho_group.rvs(5, size=3000, random_state=np.random.default_rng(3))
    trace, ref_trace = np.trace(q5, axis1=1, axis2=2), np.trace(ref, axis1=1, axis2=2)
    assert stats.ks_2samp(trace, ref_trace).pvalue > 1e-4
    assert stats.ks_2samp(q5[:, 4, 0], ref[:, 4, 0]).pvalue > 1e-4
    tall = _ortho_samples((6, 2), 3000, np.float32)
    for i, j in [(0, 0), (5, 1)]:
        sq = tall[:, i, j].astype(np.float64) ** 2
        assert stats.kstest(sq, stats.beta(0.5, 2.5).cdf).pvalue > 1e-4


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 2e-6),
                                       (np.float16, 4e-3), (BF16, 3e-2)],
                         ids=["float64", "float32", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", ORTHO_SHAPES, ids=str)
def test_orthogonality_in_every_dtype(shape, dtype, tol):
    w = orthogonal(shape, gain=1.0, seed=1, dtype=dtype)
    assert w.dtype == dtype and w.shape == shape
    m = w.reshape(shape[0], -1).astype(np.float64)
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    np.testing.assert_allclose(gram, np.eye(len(gram)), atol=tol * math.sqrt(max(m.shape)))
    if dtype in (np.float16, BF16):  # narrow dtypes: the float32 result rounded once
        assert_same_bits(w, orthogonal(shape, seed=1, dtype=np.float32).astype(dtype))
    if dtype == np.float32:  # float32 arithmetic on the float32 draw, against float64's
        rows, cols = m.shape
        a = wf.normal((rows, cols), seed=1, dtype=np.float32).astype(np.float64)
        ref = reflector_product(a) if rows >= cols else reflector_product(a.T).T
        np.testing.assert_allclose(m, ref, rtol=0, atol=2e-6)


def test_orthogonal_gain_and_keras_layout():
    a = orthogonal((12, 30), seed=2, dtype=np.float64)
    assert_same_bits(orthogonal((12, 30), gain=2.0, seed=2, dtype=np.float64), 2 * a)
    k = orthogonal((3, 3, 16, 32), layout="keras", seed=2, dtype=np.float64)
    m = k.reshape(-1, 32)  # Keras/JAX: columns are the last axis; 144 x 32 has orthonormal columns
    np.testing.assert_allclose(m.T @ m, np.eye(32), atol=1e-12)
    t = orthogonal((3, 3, 16, 32), seed=2, dtype=np.float64).reshape(3, -1)  # torch: 3 rows
    np.testing.assert_allclose(t @ t.T, np.eye(3), atol=1e-12)


# ----------------------------------------------------------------------------------------------
# Exact placement: dirac, eye, identity, delta_orthogonal


@pytest.mark.parametrize("shape,groups", [((4, 2, 3), 1), ((6, 4, 3, 3), 1), ((6, 6, 4, 4), 3),
                                          ((8, 4, 2, 3, 4), 2), ((3, 5, 5), 1), ((4, 6, 5), 2),
                                          ((2, 1, 1, 2), 2)])
def test_dirac_equals_torch(shape, groups):
    expected = torch.nn.init.dirac_(torch.empty(shape), groups).numpy()
    assert_same_bits(dirac(shape, groups), expected)
    # Channels-last: the same pattern with the axes moved to (*kernel, in, out).
    n = len(shape)
    k_shape = shape[2:] + (shape[1], shape[0])
    assert_same_bits(dirac(k_shape, groups, layout="keras"),
                     np.ascontiguousarray(expected.transpose(*range(2, n), 1, 0)))
    assert_same_bits(dirac(shape, groups, dtype=BF16), expected.astype(BF16))


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4), (1, 7), (0, 3)])
def test_eye_equals_torch_and_identity_equals_keras(shape):
    assert_same_bits(eye(shape), torch.nn.init.eye_(torch.empty(shape)).numpy())
    assert_same_bits(eye(shape, dtype=np.float64), np.eye(*shape))
    expected = np.asarray(keras.initializers.Identity(gain=2.5)(shape, dtype="float32"))
    assert_same_bits(identity(shape, 2.5), expected)


@pytest.mark.parametrize("shape", [(3, 4, 8), (4, 4, 2, 6), (3, 2, 3, 2, 5), (2, 2, 3, 3),
                                   (1, 5, 5)])
def test_delta_orthogonal_placement_equals_jax(shape):
    jw = np.asarray(jax.nn.initializers.delta_orthogonal(scale=1.5)(jax.random.key(0), shape))
    w = delta_orthogonal(shape, 1.5, seed=3, dtype=np.float64)
    np.testing.assert_array_equal(w != 0, jw != 0)  # same centre, (k - 1) // 2
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    q = w[centre]
    np.testing.assert_allclose(q @ q.T, 2.25 * np.eye(shape[-2]), atol=1e-12)
    np.testing.assert_allclose(jw[centre] @ jw[centre].T, 2.25 * np.eye(shape[-2]), atol=1e-5)
    assert_same_bits(q, 1.5 * orthogonal(shape[-2:], seed=3, dtype=np.float64))
    # torch layout (out, in, *kernel): the same values with the axes moved.
    n = len(shape)
    t_shape = (shape[-1], shape[-2]) + shape[:-2]
    t = delta_orthogonal(t_shape, 1.5, layout="torch", seed=3, dtype=np.float64)
    assert_same_bits(t, np.ascontiguousarray(w.transpose(n - 1, n - 2, *range(n - 2))))


def test_delta_orthogonal_rejects_what_jax_rejects():
    for shape in [(3, 8, 4), (3, 3), (2, 2, 2, 2, 2, 2)]:
        with pytest.raises(ValueError):
            jax.nn.initializers.delta_orthogonal()(jax.random.key(0), shape)
        with pytest.raises(ValueError, match="delta_orthogonal"):
            delta_orthogonal(shape, seed=0)


# ----------------------------------------------------------------------------------------------
# Constant fills


@pytest.mark.parametrize("dtype", [np.float16, BF16, np.float32, np.float64],
                         ids=["float16", "bfloat16", "float32", "float64"])
def test_constant_fills(dtype):
    assert_same_bits(zeros((3, 4), dtype=dtype), np.zeros((3, 4), dtype))
    assert_same_bits(ones(5, dtype=dtype), np.ones(5, dtype))
    assert_same_bits(constant((2, 3), 0.1, dtype=dtype), np.full((2, 3), 0.1, dtype))
    out = np.empty((4, 4), dtype)
    assert ones(out=out) is out and np.all(out == 1)
    assert zeros((8, 4), out=out, region=(slice(2, 6),)) is out and np.all(out == 0)
    assert constant((8, 4), -2.0, dtype=dtype, region=(slice(7, 8), slice(1, 3))).shape == (1, 2)


def test_constant_values():
    assert np.isnan(constant(3, float("nan"))).all()
    assert np.isinf(constant(3, float("-inf"), dtype=np.float16)).all()
    with pytest.raises(ValueError, match="value"):
        constant(3, 1e5, dtype=np.float16)
    with pytest.raises(TypeError, match="value"):
        constant(3, "1")
    with pytest.raises(TypeError, match="value"):
        constant(3, True)
    assert constant(3, 7).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float16, BF16, np.float32, np.float64],
                         ids=["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_constant_fill_is_exact_at_every_size_and_offset(dtype, threads):
    # The threaded fill writes 8-byte words in 1 MiB chunks: sizes just off those boundaries,
    # views that start off an 8-byte boundary, and values whose bytes differ (not memset-able)
    # must all come out as numpy's own full(). The guard elements around the view stay intact.
    itemsize = np.dtype(dtype).itemsize
    chunk = (1 << 20) // itemsize
    wf.set_num_threads(threads)  # restored by conftest's autouse fixture
    for n in (1, 3, 7, 9, 1000, chunk - 1, chunk + 1, 3 * chunk + 5):
        for skip in range(0, 8 // itemsize + 1):
            for value in (-1.7, 0.0, -0.0, 3.0e-5):
                backing = np.full(n + skip + 1, 9.0, dtype)
                view = backing[skip:skip + n]
                assert constant(None, value, out=view) is view
                assert_same_bits(view, np.full(n, value, dtype))
                assert_same_bits(backing[:skip], np.full(skip, 9.0, dtype))
                assert_same_bits(backing[skip + n:], np.full(1, 9.0, dtype))


def test_constant_keeps_nan_and_signed_zero_bits():
    assert np.signbit(constant(4, -0.0)).all()
    assert np.signbit(zeros(4)).sum() == 0
    nan = np.float32(np.nan)
    assert_same_bits(constant(5, float("nan")), np.full(5, nan))


def test_pattern_fill_rejects_what_it_cannot_write():
    with pytest.raises(ValueError, match="read-only"):
        ro = np.zeros(4, np.uint32)
        ro.flags.writeable = False
        _core.fill_pattern(ro, 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.fill_pattern(np.zeros((4, 4), np.uint32)[:, ::2], 1)
    with pytest.raises(ValueError, match="itemsize"):
        _core.fill_pattern(np.zeros(4, "V3"), 1)


# ----------------------------------------------------------------------------------------------
# Argument checks: each names the argument

S = (8, 4, 3)
ERRORS = [
    (lambda: kaiming_uniform(S, mode="fan_avg", seed=0), ValueError, "mode"),
    (lambda: kaiming_normal(S, nonlinearity="gelu", seed=0), ValueError, "nonlinearity"),
    (lambda: kaiming_normal(S, nonlinearity="leaky_relu", a="x", seed=0), TypeError, "a must"),
    (lambda: kaiming_normal(S, mode=3, seed=0), TypeError, "mode"),
    (lambda: xavier_uniform(S, gain=-1.0, seed=0), ValueError, "gain"),
    (lambda: xavier_normal(S, gain=float("nan"), seed=0), ValueError, "gain"),
    (lambda: xavier_normal(S, gain="1", seed=0), TypeError, "gain"),
    (lambda: xavier_uniform((8,), seed=0), ValueError, "fewer than 2"),
    (lambda: xavier_uniform(S, layout="tf", seed=0), ValueError, "layout"),
    (lambda: variance_scaling(S, 0.0, seed=0), ValueError, "scale"),
    (lambda: variance_scaling(S, -2.0, seed=0), ValueError, "scale"),
    (lambda: variance_scaling(S, float("inf"), seed=0), ValueError, "scale"),
    (lambda: variance_scaling(S, mode="fan_sum", seed=0), ValueError, "mode"),
    (lambda: variance_scaling(S, distribution="laplace", seed=0), ValueError, "distribution"),
    (lambda: variance_scaling(S, distribution=None, seed=0), TypeError, "distribution"),
    (lambda: variance_scaling(S, layout="torch", in_axis=0, seed=0), ValueError, "layout"),
    (lambda: variance_scaling(S, in_axis=0, out_axis=0, seed=0), ValueError, "share"),
    (lambda: he_normal(S, in_axis=5, seed=0), ValueError, "in_axis"),
    (lambda: glorot_uniform(S, layout="caffe", seed=0), ValueError, "layout"),
    (lambda: orthogonal((5,), seed=0), ValueError, "2 dimensions"),
    (lambda: orthogonal(S, gain=float("nan"), seed=0), ValueError, "gain"),
    (lambda: orthogonal(S, layout="x", seed=0), ValueError, "layout"),
    (lambda: orthogonal(S, seed=0, dtype=np.int32), TypeError, "dtype"),
    (lambda: eye((3, 3, 3)), ValueError, "2-D"),
    (lambda: identity((3,)), ValueError, "2-D"),
    (lambda: identity((3, 3), gain=None), TypeError, "gain"),
    (lambda: dirac((4, 4)), ValueError, "3-, 4- or 5-D"),
    (lambda: dirac((6, 4, 3), groups=4), ValueError, "groups"),
    (lambda: dirac((6, 4, 3), groups=0), ValueError, "groups"),
    (lambda: dirac((6, 4, 3), groups=1.5), TypeError, "groups"),
    (lambda: delta_orthogonal((3, 8, 4), seed=0), ValueError, "in <= out"),
    (lambda: delta_orthogonal((3, 4, 8), scale="1", seed=0), TypeError, "scale"),
    (lambda: zeros((3, 3), dtype=np.int64), TypeError, "dtype"),
    (lambda: ones((3, 3), out=np.empty((3, 4), np.float32)), ValueError, "out"),
    (lambda: ones((3, 3), region=(slice(0, 4),)), ValueError, "region"),
    (lambda: he_uniform(S, seed=-1), ValueError, "seed"),
    (lambda: he_uniform(S, seed=0, region=(slice(0, 2, 2),)), ValueError, "step"),
]


@pytest.mark.parametrize("call,exc,match", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_argument_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_callable_nonlinearity():
    relu = lambda x: np.maximum(x, 0)  # noqa: E731
    assert_same_bits(kaiming_normal(S, nonlinearity=relu, seed=0),
                     wf.normal(S, 0.0, calculate_relu_gain() / math.sqrt(12), seed=0))


def calculate_relu_gain():
    from weightfill.gains import calculate_gain

    return calculate_gain(lambda x: np.maximum(x, 0))


def test_seed_is_required_and_none_is_fresh():
    with pytest.raises(TypeError):
        he_normal(S)  # seed is keyword-only and required, as in the engine
    a, b = he_normal(S, seed=None), he_normal(S, seed=None)
    assert not np.array_equal(a, b)
