"""Manifest: round trips, regeneration by region, and every malformed input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import weightfill as wf
from weightfill import Manifest, TensorEntry

SPEC = {
    "fc1.weight": ((64, 48), "kaiming_uniform", {"a": 5 ** 0.5}),
    "fc1.bias": ((64,), "uniform", {"low": -0.1, "high": 0.1}),
    "conv.kernel": ((3, 3, 8, 16), "he_normal"),
    "emb": ((20, 8), "normal", {"std": 0.02, "dtype": "float16"}),
    "ln.weight": ((8,), "ones"),
    "q": ((12, 7), "orthogonal", {"gain": 2.0}),
    "sp": ((30, 10), "sparse", {"sparsity": 0.5}),
    "bf": ((5, 9), "truncated_normal", {"std": 0.5, "lower": -1.0, "upper": 3.0,
                                         "dtype": wf._args.BFLOAT16}),
}


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.dtype(f"u{a.dtype.itemsize}"))


def test_init_params_returns_its_manifest_and_it_regenerates_every_tensor():
    params = wf.init_params(SPEC, seed=7)
    m = params.manifest
    assert list(m) == list(SPEC)
    for name, arr in params.items():
        assert np.array_equal(bits(m.tensor(name)), bits(arr)), name
        assert m[name].dtype == {"float16": "float16", "bfloat16": "bfloat16"}.get(
            str(arr.dtype), str(arr.dtype))


def test_from_params_allocates_nothing_and_equals_init_params_manifest():
    assert Manifest.from_params(SPEC, seed=7) == wf.init_params(SPEC, seed=7).manifest


@pytest.mark.parametrize("name", list(SPEC))
def test_region_equals_slice_of_whole(name):
    m = Manifest.from_params(SPEC, seed=3)
    whole = m.tensor(name)
    region = tuple(slice(1, max(2, n - 1)) for n in whole.shape)
    assert np.array_equal(bits(m.tensor(name, region)), bits(whole[region]))


def test_json_round_trip_is_exact():
    m = Manifest.from_params(SPEC, seed=2 ** 64 - 1)
    again = Manifest.from_json(m.to_json())
    assert again == m
    assert json.loads(again.to_json()) == json.loads(m.to_json())
    for name in m:
        assert np.array_equal(bits(again.tensor(name)), bits(m.tensor(name)))


def test_save_and_load(tmp_path):
    m = Manifest.from_params(SPEC, seed=1)
    path = tmp_path / "m.json"
    m.save(path)
    assert Manifest.load(path) == m
    assert list(tmp_path.iterdir()) == [path]  # no temporary left


def test_zero_rows_and_aliases():
    e = TensorEntry(name="emb.weight", shape=(6, 4), dtype="float32", scheme="normal",
                    params={}, seed=0, stream="emb.weight", zero_rows=(2,),
                    aliases=("head.weight",))
    m = Manifest([e])
    full = m.tensor("head.weight")
    assert np.all(full[2] == 0) and np.all(full[[0, 1, 3, 4, 5]] != 0)
    ref = wf.normal((6, 4), seed=0, stream="emb.weight")
    ref[2] = 0
    assert np.array_equal(full, ref)
    assert np.array_equal(m.tensor("emb.weight", (slice(1, 4),)), ref[1:4])
    assert m.nbytes == 6 * 4 * 4
    assert "head.weight" in m and len(m) == 1


def test_integer_constant_buffers():
    e = TensorEntry(name="bn.num_batches_tracked", shape=(), dtype="int64", scheme="zeros",
                    params={}, seed=0, stream="bn.num_batches_tracked")
    assert e.tensor().dtype == np.int64 and e.tensor() == 0
    with pytest.raises(ValueError, match="only be zeros, ones or constant"):
        TensorEntry(name="x", shape=(2,), dtype="int64", scheme="normal", params={}, seed=0,
                    stream="x")


def _doc(**change):
    d = Manifest.from_params({"w": ((2, 3), "normal")}, seed=0).to_dict()
    d["tensors"][0].update(change)
    return d


@pytest.mark.parametrize("doc,exc,match", [
    ({"format": "other", "version": 1, "tensors": []}, ValueError, "not a weightfill manifest"),
    ({"format": "weightfill-manifest", "version": 2, "tensors": []}, ValueError,
     "version 2 is not supported"),
    ({"format": "weightfill-manifest", "version": 1, "tensors": {}}, ValueError, "list"),
    (_doc(scheme="kaiming_trunc"), ValueError, "unknown scheme 'kaiming_trunc'"),
    (_doc(dtype="int8"), ValueError, "dtype 'int8'"),
    (_doc(spec_version=9), ValueError, "stream-spec version 9"),
    (_doc(shape=[2, -3]), ValueError, "shape"),
    (_doc(seed=-1), ValueError, "seed"),
    (_doc(stream=1.5), TypeError, "stream"),
    (_doc(extra=1), ValueError, "unknown field"),
    (_doc(params={"seed": 3}), ValueError, "params may not set seed"),
    (_doc(zero_rows=[5]), ValueError, "zero_rows"),
])
def test_bad_documents_are_refused(doc, exc, match):
    with pytest.raises(exc, match=match):
        Manifest.from_dict(doc)


def test_missing_field_and_duplicates_and_bad_json():
    d = _doc()
    del d["tensors"][0]["seed"]
    with pytest.raises(ValueError, match="missing field.*seed"):
        Manifest.from_dict(d)
    d = _doc()
    d["tensors"].append(dict(d["tensors"][0]))
    with pytest.raises(ValueError, match="duplicate tensor name 'w'"):
        Manifest.from_dict(d)
    with pytest.raises(ValueError, match="not valid JSON"):
        Manifest.from_json("{")
    with pytest.raises(KeyError, match="no tensor 'nope'"):
        Manifest.from_dict(_doc()).tensor("nope")


def test_from_params_checks_arguments_without_allocating():
    with pytest.raises(ValueError, match=r"spec\['w'\]: mode"):
        Manifest.from_params({"w": ((2, 2), "variance_scaling", {"mode": "fan_sum"})}, seed=0)
    with pytest.raises(TypeError, match="callable"):
        Manifest.from_params({"w": ((2, 2), lambda *a, **k: None)}, seed=0)
    # A huge tensor is described, not made.
    m = Manifest.from_params({"w": ((2 ** 20, 2 ** 20), "normal")}, seed=0)
    assert m.nbytes == 2 ** 42
