"""weightfill.keras under KERAS_BACKEND=jax and =torch, each in a subprocess (Keras picks its
backend at import). Oracles: weightfill's NumPy schemes for bits, keras.initializers' own
samples for the law (two-sample KS), Keras's .keras save/load for serialization."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

# Not imported here: Keras picks its backend at import (the default, tensorflow, is absent).
if importlib.util.find_spec("keras") is None:
    pytest.skip("keras is not installed", allow_module_level=True)

SCRIPT = textwrap.dedent("""
    import os, tempfile, warnings
    import numpy as np, keras
    from scipy import stats
    import weightfill as wf
    from weightfill.keras import initializers as I
    assert keras.backend.backend() == os.environ["KERAS_BACKEND"]
    K = keras.initializers
    def npy(t):
        return np.asarray(keras.ops.convert_to_numpy(t))

    # bits: an int seed is (seed, stream 0)
    cases = [
        (I.GlorotUniform(seed=3), lambda s: wf.variance_scaling(s, 1.0, "fan_avg", "uniform", seed=3)),
        (I.HeNormal(seed=3), lambda s: wf.variance_scaling(s, 2.0, "fan_in", "truncated_normal", seed=3)),
        (I.LecunNormal(seed=3), lambda s: wf.variance_scaling(s, 1.0, "fan_in", "truncated_normal", seed=3)),
        (I.VarianceScaling(2.0, "fan_out", "untruncated_normal", seed=3),
         lambda s: wf.variance_scaling(s, 2.0, "fan_out", "normal", seed=3)),
        (I.RandomUniform(-0.1, 0.3, seed=3), lambda s: wf.uniform(s, -0.1, 0.3, seed=3)),
        (I.RandomNormal(0.5, 0.2, seed=3), lambda s: wf.normal(s, 0.5, 0.2, seed=3)),
        (I.TruncatedNormal(0.0, 0.2, seed=3), lambda s: wf.truncated_normal(s, 0.0, 0.2, -2, 2, seed=3)),
        (I.Orthogonal(2.0, seed=3), lambda s: wf.orthogonal(s, 2.0, layout="keras", seed=3)),
    ]
    for init, oracle in cases:
        for shape in ((30, 20), (3, 3, 8, 4)):
            v = init(shape, "float32")
            assert keras.ops.dtype(v) == "float32", keras.ops.dtype(v)
            np.testing.assert_array_equal(npy(v), oracle(shape), err_msg=repr(init))
            np.testing.assert_array_equal(npy(init(shape, "float32")), npy(v))  # int: same
    np.testing.assert_array_equal(npy(I.Identity(3.0)((3, 5))), 3.0 * np.eye(3, 5))
    assert np.all(npy(I.Zeros()((2, 3))) == 0) and np.all(npy(I.Ones()((4,))) == 1)
    assert np.all(npy(I.Constant(0.25)((2, 2), "float16")) == 0.25)
    # explicit fan axes, as keras.src.initializers.compute_fans: fan_in = 6*5 = 30 (no field)
    ax = I.VarianceScaling(1.0, "fan_in", "uniform", seed=1, input_axes=[0, 1], output_axes=[2])
    lim = np.sqrt(3.0 / 30)
    w = npy(ax((6, 5, 4), "float32"))
    assert np.abs(w).max() <= lim and np.abs(w).max() > 0.9 * lim

    # law: KS against Keras's own initializer of the same name and arguments
    for name, kw in (("GlorotUniform", {}), ("HeNormal", {}), ("LecunUniform", {}),
                     ("TruncatedNormal", {"stddev": 0.3}), ("RandomNormal", {"stddev": 0.3}),
                     ("VarianceScaling", {"scale": 3.0, "mode": "fan_avg", "distribution": "normal"})):
        ours = npy(getattr(I, name)(seed=5, **kw)((300, 100))).ravel()
        theirs = npy(getattr(K, name)(seed=5, **kw)((300, 100))).ravel()
        p = stats.ks_2samp(ours, theirs).pvalue
        assert p > 1e-4, (name, p)

    # seeds as Keras documents: None fixed per instance, new per instance; SeedGenerator fresh
    a = I.HeUniform()
    np.testing.assert_array_equal(npy(a((8, 8))), npy(a((8, 8))))
    assert not np.array_equal(npy(a((8, 8))), npy(I.HeUniform()((8, 8))))
    assert a.get_config()["seed"] is None
    g = I.RandomNormal(seed=keras.random.SeedGenerator(7))
    x1, x2 = npy(g((50,))), npy(g((50,)))
    assert not np.array_equal(x1, x2)
    g2 = I.RandomNormal(seed=keras.random.SeedGenerator(7))
    np.testing.assert_array_equal(npy(g2((50,))), x1)

    # config round trip and a model saved to .keras
    for init, _ in cases:
        again = type(init).from_config(init.get_config())
        np.testing.assert_array_equal(npy(again((5, 4))), npy(init((5, 4))))
        assert keras.initializers.get(keras.initializers.serialize(init)).__class__ is type(init)
    model = keras.Sequential([keras.Input((6,)),
        keras.layers.Dense(5, kernel_initializer=I.HeNormal(seed=11), bias_initializer=I.Constant(0.5)),
        keras.layers.Dense(3, kernel_initializer=I.Orthogonal(seed=2))])
    np.testing.assert_array_equal(npy(model.layers[0].kernel),
        wf.variance_scaling((6, 5), 2.0, "fan_in", "truncated_normal", seed=11))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    layer = loaded.layers[0]
    assert type(layer.kernel_initializer) is I.HeNormal, type(layer.kernel_initializer)
    assert layer.kernel_initializer.seed == 11
    assert type(layer.bias_initializer) is I.Constant and layer.bias_initializer.value == 0.5
    np.testing.assert_array_equal(npy(layer.kernel), npy(model.layers[0].kernel))
    clone = keras.models.clone_model(loaded)  # re-initializes through our initializers
    np.testing.assert_array_equal(npy(clone.layers[0].kernel), npy(model.layers[0].kernel))

    # bad input
    for bad, exc in ((lambda: I.VarianceScaling(mode="fan_x"), ValueError),
                     (lambda: I.VarianceScaling(scale=-1.0), ValueError),
                     (lambda: I.VarianceScaling(distribution="cauchy"), ValueError),
                     (lambda: I.HeNormal(seed="x"), ValueError),
                     (lambda: I.RandomNormal(stddev="a"), TypeError),
                     (lambda: I.HeNormal(foo=1), TypeError),
                     (lambda: I.Orthogonal(seed=1)((5,)), ValueError),
                     (lambda: I.Identity()((2, 2, 2)), ValueError),
                     (lambda: I.HeNormal(seed=1)((2, 2), "int32"), TypeError),
                     (lambda: I.HeNormal(seed=1)("ab"), TypeError)):
        try:
            bad()
        except exc:
            pass
        else:
            raise AssertionError(f"no {exc.__name__}")
    print("OK")
""")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_keras_backend(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                       timeout=110)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("OK")
