"""init_params: named streams make every tensor independent of the others in the spec."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import weightfill as wf
from weightfill.params import SCHEMES, init_params
from weightfill.schemes import he_normal, kaiming_uniform, orthogonal, zeros

SPEC = {
    "embed.weight": ((1000, 64), "normal", {"std": 0.02}),
    "block0.attn.weight": ((192, 64), "xavier_uniform"),
    "block0.attn.bias": ((192,), "zeros"),
    "block0.norm.weight": ((64,), "ones"),
    "block0.mlp.weight": ((256, 64), "kaiming_uniform", {"a": 5 ** 0.5}),
    "block0.conv.weight": ((3, 3, 64, 64), "he_normal"),
    "block0.rnn.weight": ((64, 64), "orthogonal", {"gain": 2.0}),
    "block0.trunc.weight": ((64, 32), "truncated_normal", {"std": 0.02}),
    "head.weight": ((10, 64), "lecun_normal", {"layout": "torch"}),
    "head.bias": ((10,), "constant", {"value": 0.5}),
}


def bits(a):
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def test_each_tensor_is_its_scheme_on_its_own_stream():
    p = init_params(SPEC, seed=7)
    assert list(p) == list(SPEC)
    np.testing.assert_array_equal(
        bits(p["embed.weight"]),
        bits(wf.normal((1000, 64), 0.0, 0.02, seed=7, stream="embed.weight")))
    np.testing.assert_array_equal(
        bits(p["block0.mlp.weight"]),
        bits(kaiming_uniform((256, 64), a=5 ** 0.5, seed=7, stream="block0.mlp.weight")))
    np.testing.assert_array_equal(
        bits(p["block0.conv.weight"]),
        bits(he_normal((3, 3, 64, 64), seed=7, stream="block0.conv.weight")))
    np.testing.assert_array_equal(
        p["block0.rnn.weight"], orthogonal((64, 64), 2.0, seed=7, stream="block0.rnn.weight"))
    np.testing.assert_array_equal(p["block0.attn.bias"], zeros(192))
    assert np.all(p["block0.norm.weight"] == 1) and np.all(p["head.bias"] == 0.5)
    assert all(a.dtype == np.float32 for a in p.values())


def test_order_and_membership_do_not_change_any_tensor():
    full = init_params(SPEC, seed=11)
    names = list(SPEC)
    reordered = {n: SPEC[n] for n in reversed(names)}
    fewer = {n: SPEC[n] for n in names[::2]}
    more = {"new.weight": ((64, 64), "xavier_normal"), **SPEC,
            "extra.weight": ((8, 8), "he_uniform")}
    for other in (reordered, fewer, more):
        got = init_params(other, seed=11)
        for name in other:
            if name in full:
                np.testing.assert_array_equal(bits(got[name]), bits(full[name]), err_msg=name)


def test_a_different_seed_or_name_changes_the_tensor():
    a = init_params({"w": ((32, 32), "he_normal")}, seed=1)["w"]
    assert not np.array_equal(a, init_params({"w": ((32, 32), "he_normal")}, seed=2)["w"])
    assert not np.array_equal(a, init_params({"v": ((32, 32), "he_normal")}, seed=1)["v"])


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.float64])
def test_dtype_default_and_override(dtype):
    spec = {"w": ((16, 16), "xavier_uniform"), "b": ((16,), "zeros"),
            "g": ((16,), "ones", {"dtype": np.float32})}
    p = init_params(spec, seed=0, dtype=dtype)
    assert p["w"].dtype == dtype and p["b"].dtype == dtype and p["g"].dtype == np.float32
    np.testing.assert_array_equal(
        bits(p["w"]), bits(wf.schemes.xavier_uniform((16, 16), seed=0, stream="w", dtype=dtype)))


def test_sparse_by_name():
    p = init_params({"s": ((40, 30), "sparse", {"sparsity": 0.25})}, seed=3)
    np.testing.assert_array_equal(
        bits(p["s"]), bits(wf.sparse((40, 30), 0.25, seed=3, stream="s")))


def test_callable_scheme_gets_seed_stream_and_dtype():
    seen = {}

    def scheme(shape, *, scale, seed, stream, dtype):
        seen.update(seed=seed, stream=stream, dtype=dtype)
        return wf.uniform(shape, -scale, scale, seed=seed, stream=stream, dtype=dtype)

    p = init_params({"x.weight": ((5, 5), scheme, {"scale": 0.1})}, seed=9)
    assert seen == {"seed": 9, "stream": "x.weight", "dtype": np.float32}
    assert np.abs(p["x.weight"]).max() < 0.1


def test_seed_none_draws_one_seed_for_the_call():
    spec = {"a": ((64,), "normal"), "b": ((64,), "normal")}
    p, q = init_params(spec, seed=None), init_params(spec, seed=None)
    assert not np.array_equal(p["a"], q["a"])
    assert not np.array_equal(p["a"], p["b"])  # different streams under the one seed


def test_every_listed_scheme_resolves():
    shapes = {"eye": (4, 4), "identity": (4, 4), "dirac": (4, 4, 3),
              "delta_orthogonal": (3, 4, 4), "constant": (4, 4)}
    options = {"constant": {"value": 1.0}, "sparse": {"sparsity": 0.5}}
    for name in SCHEMES:
        p = init_params({name: (shapes.get(name, (4, 4)), name, options.get(name))}, seed=1)
        assert p[name].shape == shapes.get(name, (4, 4))


@pytest.mark.parametrize(
    "spec,exc,match",
    [
        ([("w", ((2, 2), "zeros"))], TypeError, "mapping"),
        ({1: ((2, 2), "zeros")}, TypeError, "names must be str"),
        ({"w": ((2, 2),)}, TypeError, r"spec\['w'\]"),
        ({"w": "zeros"}, TypeError, r"spec\['w'\]"),
        ({"w": ((2, 2), "he_normal", [("scale", 1)])}, TypeError, "options must be a mapping"),
        ({"w": ((2, 2), "kaiming_trunc")}, ValueError, "unknown scheme 'kaiming_trunc'"),
        ({"w": ((2, 2), 3)}, TypeError, "scheme must be"),
        ({"w": ((2, 2), "he_normal", {"seed": 1})}, ValueError, "seed"),
        ({"w": ((2, 2), "he_normal", {"stream": "x", "region": None})}, ValueError,
         "stream, region"),
        ({"w": ((2, 2), "variance_scaling", {"mode": "fan_sum"})}, ValueError,
         r"spec\['w'\]: mode"),
        ({"w": ((2, 2), "kaiming_normal", {"gain": 2})}, TypeError, r"spec\['w'\]"),
        ({"w": ((5,), "orthogonal")}, ValueError, r"spec\['w'\]: orthogonal"),
    ],
)
def test_spec_errors_name_the_parameter(spec, exc, match):
    with pytest.raises(exc, match=match):
        init_params(spec, seed=0)


def test_seed_checked_once():
    with pytest.raises(ValueError, match="seed"):
        init_params({"w": ((2, 2), "zeros")}, seed=-1)
