"""weightfill.checkpoint: safetensors files written from a manifest, read back by the safetensors
library and torch, sharding, bounded memory, verify, interrupted writes and the commands.

Oracles: the safetensors library's readers and torch's load_state_dict; the values are compared
with weightfill.init_params / init_module, which never touch the checkpoint code."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import weightfill as wf
from weightfill import Manifest, TensorEntry
from weightfill import checkpoint as ck
from weightfill._args import BFLOAT16

safetensors = pytest.importorskip("safetensors")
from safetensors import safe_open  # noqa: E402
from safetensors.numpy import load_file as np_load  # noqa: E402

# One tensor per scheme (every name in weightfill.params.SCHEMES), in every float dtype.
SPEC = {
    "constant": ((5, 7), "constant", {"val": 0.25}),
    "delta_orthogonal": ((6, 6, 3, 3), "delta_orthogonal"),
    "dirac": ((4, 4, 3, 3), "dirac"),
    "eye": ((6, 9), "eye"),
    "glorot_normal": ((3, 3, 8, 16), "glorot_normal"),
    "glorot_uniform": ((33, 17), "glorot_uniform"),
    "he_normal": ((3, 3, 8, 16), "he_normal"),
    "he_uniform": ((40, 30), "he_uniform"),
    "identity": ((8, 8), "identity"),
    "kaiming_normal": ((64, 48), "kaiming_normal"),
    "kaiming_uniform": ((64, 48), "kaiming_uniform", {"a": 5 ** 0.5}),
    "lecun_normal": ((21, 13), "lecun_normal"),
    "lecun_uniform": ((21, 13), "lecun_uniform"),
    "normal": ((257,), "normal", {"std": 0.02}),
    "ones": ((9,), "ones"),
    "orthogonal": ((12, 7), "orthogonal", {"gain": 2.0}),
    "sparse": ((30, 10), "sparse", {"sparsity": 0.5}),
    "truncated_normal": ((5, 9, 11), "truncated_normal", {"std": 0.5, "lower": -1.0,
                                                          "upper": 3.0}),
    "uniform": ((3, 1000), "uniform", {"low": -0.1, "high": 0.1}),
    "variance_scaling": ((50, 20), "variance_scaling", {"scale": 2.0}),
    "xavier_normal": ((50, 20), "xavier_normal"),
    "xavier_uniform": ((50, 20), "xavier_uniform"),
    "zeros": ((4, 0, 3), "zeros"),
}
FLOATS = ("float32", "float64", "float16", "bfloat16")
NP_DTYPE = {"float32": np.float32, "float64": np.float64, "float16": np.float16,
            "bfloat16": BFLOAT16}


def bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


def full_spec(dtype: str) -> dict:
    out = {}
    for name, (shape, scheme, *rest) in SPEC.items():
        kw = dict(rest[0]) if rest else {}
        if scheme == "constant":
            kw = {"value": kw.pop("val")}
        kw["dtype"] = NP_DTYPE[dtype]
        out[f"{dtype}.{name}"] = (shape, scheme, kw)
    return out


def all_dtypes_spec() -> dict:
    spec = {}
    for d in FLOATS:
        spec.update(full_spec(d))
    return spec


def with_int_buffers(m: Manifest) -> Manifest:
    ints = [TensorEntry("steps", (), "int64", "zeros", {}, 0, "steps"),
            TensorEntry("counts", (3, 4), "int32", "constant", {"value": 7}, 0, "counts")]
    return Manifest([*m.entries, *ints])


def cli(module_add, module_run, argv):
    """Runs a subcommand through its real parser (as ``weightfill`` builds it); the status."""
    p = argparse.ArgumentParser(prog="weightfill sub")
    module_add(p)
    try:
        args = p.parse_args(argv)
        return module_run(args, p.error)
    except SystemExit as e:
        return e.code


def init_cli(argv):
    return cli(ck.add_arguments, ck.run, argv)


def verify_cli(argv):
    return cli(ck.add_verify_arguments, ck.run_verify, argv)


# --------------------------------------------------------------------------------------------


def test_every_scheme_and_dtype_round_trips_through_safetensors_readers(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file as torch_load

    # Tiny regions, so every tensor is written in many pieces (rows, single elements).
    monkeypatch.setattr(ck, "_CHUNK", 64)
    spec = all_dtypes_spec()
    params = wf.init_params(spec, seed=11)
    m = with_int_buffers(params.manifest)
    path = tmp_path / "m.safetensors"
    assert ck.save(m, path, progress=False) == [str(path)]

    arrays = np_load(str(path))
    assert set(arrays) == set(m)
    for name, want in params.items():
        got = arrays[name]
        assert got.shape == want.shape and got.dtype == want.dtype, name
        assert np.array_equal(bits(got), bits(want)), name
    assert arrays["steps"].dtype == np.int64 and arrays["steps"].shape == ()
    assert np.array_equal(arrays["counts"], np.full((3, 4), 7, np.int32))

    with safe_open(str(path), framework="np") as f:
        meta = f.metadata()
        assert meta["format"] == "pt"
        assert Manifest.from_json(meta[ck.METADATA_KEY]) == m
        assert np.array_equal(bits(f.get_tensor("float16.normal")),
                              bits(params["float16.normal"]))
        sl = f.get_slice("float32.uniform")
        assert np.array_equal(sl[1:2, 10:20], params["float32.uniform"][1:2, 10:20])

    tt = torch_load(str(path))
    assert tt["bfloat16.kaiming_normal"].dtype == torch.bfloat16
    assert tt["float16.he_normal"].dtype == torch.float16
    assert tt["steps"].dtype == torch.int64 and tt["counts"].dtype == torch.int32
    want = params["bfloat16.kaiming_normal"].view(np.uint16).astype(np.int32)
    assert np.array_equal(tt["bfloat16.kaiming_normal"].view(torch.int16).numpy()
                          .astype(np.int32) & 0xFFFF, want)
    assert ck.verify(path).ok


def test_header_is_padded_and_every_tensor_aligned(tmp_path):
    m = with_int_buffers(wf.init_params(all_dtypes_spec(), seed=1).manifest)
    path = tmp_path / "m.safetensors"
    ck.save(m, path, progress=False)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0
    head = json.loads(raw[8:8 + n])
    head.pop("__metadata__")
    spans = sorted(v["data_offsets"] for v in head.values())
    assert spans[0][0] == 0 and spans[-1][1] == len(raw) - 8 - n
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # no holes
    size = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2}
    for v in head.values():
        assert v["data_offsets"][0] % size[v["dtype"]] == 0


def _torch_model(dtype=None):
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8 * 4 * 4, 32),
        nn.LayerNorm(32), nn.Linear(32, 10), nn.Embedding(12, 6, padding_idx=2))
    return model.to(dtype) if dtype is not None else model


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_load_state_dict_into_the_model_of_the_same_manifest(tmp_path, dtype):
    import torch
    import weightfill.torch as wft
    from safetensors.torch import load_file as torch_load

    tdtype = getattr(torch, dtype)
    with torch.device("meta"):
        meta = _torch_model(tdtype)
    m = wft.manifest(meta, seed=3)
    path = tmp_path / "model.safetensors"
    ck.save(m, path, progress=False)

    expected = _torch_model(tdtype)
    wft.init_module(expected, seed=3)  # the oracle: weightfill.torch, in memory
    real = _torch_model(tdtype)
    result = real.load_state_dict(torch_load(str(path)), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for (k, a), (_, b) in zip(real.state_dict().items(), expected.state_dict().items()):
        assert a.dtype == b.dtype and torch.equal(a, b), k
    assert ck.verify(path).ok  # including the Embedding's zeroed padding row


def test_empty_manifest_gives_a_valid_empty_file(tmp_path):
    path = tmp_path / "empty.safetensors"
    ck.save(Manifest(), path, progress=False)
    assert np_load(str(path)) == {}
    assert ck.verify(path).ok


def test_sharded_checkpoint_has_hugging_face_layout(tmp_path):
    import torch
    from safetensors.torch import load_file as torch_load

    spec = {f"layers.{i}.weight": ((64, 64), "kaiming_uniform") for i in range(5)}
    spec["head.weight"] = ((300, 64), "normal")  # larger than a shard: a shard of its own
    params = wf.init_params(spec, seed=2)
    out = tmp_path / "ckpt"
    out.mkdir()
    written = ck.save(params.manifest, out, max_shard_size=40000, progress=False)
    index_path = out / "model.safetensors.index.json"
    assert written[-1] == str(index_path)
    index = json.loads(index_path.read_text())
    shards = sorted(set(index["weight_map"].values()))
    n = len(shards)
    assert n >= 3
    assert shards == [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    assert sorted(os.listdir(out)) == sorted(shards + ["model.safetensors.index.json"])
    # What transformers' sharded loader does: each shard by the weight map, in the directory.
    state: dict = {}
    for shard in shards:
        part = torch_load(str(out / shard))
        assert {k for k, v in index["weight_map"].items() if v == shard} == set(part)
        state.update(part)
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size()
                                                  for t in state.values())
    assert set(state) == set(spec)
    for name, want in params.items():
        assert torch.equal(state[name], torch.from_numpy(want)), name
    assert ck.verify(index_path).ok
    assert verify_cli([str(index_path), "--quiet"]) == 0


# Peak RSS of the child's own address space: /proc's VmHWM. Not ru_maxrss: Linux carries that
# high-water mark across fork + exec, and once torch is imported here subprocess forks (measured:
# a child of a process holding torch starts with ru_maxrss 219 MiB, VmHWM 9 MiB).
RSS_SCRIPT = """
import sys, time

def peak():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))  # KiB

import weightfill as wf
from weightfill import checkpoint as ck
n = 6
spec = {f"l{i}.weight": ((16384, 4096), "kaiming_uniform") for i in range(n)}  # 6 x 256 MiB
spec["norm.weight"] = ((4096,), "ones")
m = wf.Manifest.from_params(spec, seed=0)
path = sys.argv[1]
t = time.perf_counter()
ck.save(m, path, progress=False)
t_save = time.perf_counter() - t
r1 = peak()
t = time.perf_counter()
ok = ck.verify(path).ok
t_verify = time.perf_counter() - t
r2 = peak()
print(m.nbytes, r1, r2, ok, t_save, t_verify)
"""


@pytest.mark.timeout(120)
def test_peak_rss_stays_bounded_for_a_checkpoint_six_times_the_allowance(tmp_path):
    path = tmp_path / "big.safetensors"
    res = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(path)], capture_output=True,
                         text=True, timeout=110)
    assert res.returncode == 0, res.stderr
    nbytes, rss_save, rss_verify, ok, *_ = res.stdout.split()
    assert int(nbytes) >= 6 * 256 * 2 ** 20
    assert os.path.getsize(path) > int(nbytes)
    assert int(rss_save) * 1024 < 256 * 2 ** 20, res.stdout  
    assert int(rss_verify) * 1024 < 256 * 2 ** 20, res.stdout
    assert ok == "True"
    # A region read by safetensors equals the same region regenerated.
    with safe_open(str(path), framework="np") as f:
        got = f.get_slice("l5.weight")[16000:16384]
    m = Manifest.from_params({"l5.weight": ((16384, 4096), "kaiming_uniform")}, seed=0)
    assert np.array_equal(got, m.tensor("l5.weight", (slice(16000, 16384), slice(0, 4096))))


def _flip(path, dst, name, element, bit=3):
    raw = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    info = json.loads(raw[8:8 + n])[name]
    item = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}[info["dtype"]]
    pos = 8 + n + info["data_offsets"][0] + element * item
    raw[pos] ^= 1 << bit
    dst.write_bytes(bytes(raw))


def test_verify_catches_one_flipped_bit_and_names_tensor_and_element(tmp_path, capsys):
    spec = {"a": ((40, 30), "normal"), "b": ((17, 5, 3), "xavier_uniform",
                                            {"dtype": BFLOAT16}), "c": ((8,), "zeros")}
    m = wf.init_params(spec, seed=4).manifest
    good = tmp_path / "good.safetensors"
    ck.save(m, good, progress=False)
    assert ck.verify(good).ok and verify_cli([str(good)]) == 0
    bad = tmp_path / "bad.safetensors"
    element = 2 * 15 + 4 * 3 + 1  # b[2, 4, 1]
    _flip(good, bad, "b", element, bit=0)
    report = ck.verify(bad)
    assert not report.ok
    first = report.first_mismatch
    assert (first.name, first.status, first.index, first.flat_index) == \
        ("b", "mismatch", (2, 4, 1), element)
    assert [t.name for t in report.tensors if t.ok] == ["a", "c"]
    capsys.readouterr()
    assert verify_cli([str(bad)]) == 1
    err = capsys.readouterr().err
    assert "'b'" in err and "[2, 4, 1]" in err
    # Against a separately given manifest (JSON file), a different seed mismatches everywhere.
    other = tmp_path / "other.json"
    wf.init_params(spec, seed=5).manifest.save(other)
    assert verify_cli([str(good), str(other)]) == 1
    # Sampling: reproducible from its seed, and a tensor of one region is caught whenever drawn.
    r1, r2 = ck.verify(bad, sample=5, seed=1), ck.verify(bad, sample=5, seed=1)
    assert [t.checked_bytes for t in r1.tensors] == [t.checked_bytes for t in r2.tensors]
    assert not ck.verify(bad, sample=200).ok


def test_verify_reports_missing_extra_and_layout(tmp_path):
    m = wf.init_params({"a": ((4, 4), "normal"), "b": ((3,), "ones")}, seed=0).manifest
    path = tmp_path / "m.safetensors"
    ck.save(m, path, progress=False)
    other = Manifest.from_params({"a": ((4, 5), "normal"), "z": ((2,), "ones")}, seed=0)
    report = ck.verify(path, other)
    status = {t.name: t.status for t in report.tensors}
    assert status == {"a": "layout", "b": "extra", "z": "missing"}
    assert not report


INTERRUPT_SCRIPT = """
import sys
from weightfill import checkpoint as ck
import argparse
p = argparse.ArgumentParser(); ck.add_arguments(p)
args = p.parse_args(sys.argv[1:])
sys.exit(ck.run(args, p.error))
"""


@pytest.mark.timeout(60)
def test_ctrl_c_mid_write_leaves_no_final_and_no_temporary_file(tmp_path):
    spec = {f"w{i}": ((8192, 8192), "normal") for i in range(16)}  # 4 GiB: never done in time
    man = tmp_path / "m.json"
    Manifest.from_params(spec, seed=0).save(man)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPT_SCRIPT, str(man), "-o",
                             str(out / "model.safetensors"), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until data is flowing into the temporary file
            tmps = [f for f in os.listdir(out) if ".tmp-" in f]
            if tmps and os.stat(out / tmps[0]).st_blocks and _written(out / tmps[0]):
                break
            time.sleep(0.02)
        else:
            pytest.fail("no temporary file appeared")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert os.listdir(out) == []


def _written(path) -> bool:
    # Some data past the header is non-zero: generation has started.
    with open(path, "rb") as f:
        f.seek(1 << 20)
        return any(f.read(4096))


@pytest.mark.timeout(60)
def test_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path):
    # RLIMIT_FSIZE makes the kernel refuse to grow the file (EFBIG), as a full disk would.
    script = textwrap.dedent("""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8 << 20, 8 << 20))
    """) + INTERRUPT_SCRIPT
    man = tmp_path / "m.json"
    Manifest.from_params({"w": ((4096, 1024), "normal")}, seed=0).save(man)  # 16 MiB
    out = tmp_path / "out"
    out.mkdir()
    res = subprocess.run([sys.executable, "-c", script, str(man), "-o",
                          str(out / "m.safetensors"), "--quiet"], capture_output=True, text=True,
                         timeout=50)
    assert res.returncode == 1, res.stderr
    assert "nothing was written" in res.stderr and "File too large" in res.stderr
    assert os.listdir(out) == []


def test_bad_inputs_are_clear_errors(tmp_path, capsys):
    good = Manifest.from_params({"a": ((4, 4), "normal")}, seed=0)
    doc = good.to_dict()

    def write(d, name):
        p = tmp_path / name
        p.write_text(json.dumps(d))
        return str(p)

    out = str(tmp_path / "o.safetensors")
    cases = {
        "version": (dict(doc, version=99), "version 99"),
        "scheme": (dict(doc, tensors=[dict(doc["tensors"][0], scheme="nope")]),
                   "unknown scheme 'nope'"),
        "dtype": (dict(doc, tensors=[dict(doc["tensors"][0], dtype="int8")]), "dtype 'int8'"),
        "dup": (dict(doc, tensors=[doc["tensors"][0], doc["tensors"][0]]),
                "duplicate tensor name 'a'"),
        "unrecorded": (dict(doc, unrecorded=["bn.weight"]), "cannot be regenerated"),
    }
    for key, (d, msg) in cases.items():
        capsys.readouterr()
        assert init_cli([write(d, f"{key}.json"), "-o", out, "--quiet"]) == 2, key
        assert msg in capsys.readouterr().err, key
        assert not os.path.exists(out)
    assert init_cli([write(doc, "good.json"), "-o", out, "--max-shard-size", "lots"]) == 2
    assert init_cli([write(doc, "good.json"), "-o", out, "--quiet"]) == 0
    capsys.readouterr()
    assert init_cli([write(doc, "good.json"), "-o", out, "--quiet"]) == 2
    assert "exists" in capsys.readouterr().err
    assert init_cli([write(doc, "good.json"), "-o", out, "--quiet", "--overwrite"]) == 0
    assert init_cli([write(doc, "good.json"), "-o", str(tmp_path / "no" / "x.safetensors"),
                     "--quiet"]) == 2
    with pytest.raises(FileExistsError):
        ck.save(good, out, progress=False)
    with pytest.raises(TypeError, match="manifest"):
        ck.save({"a": 1}, out, overwrite=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_shard_size"):
        ck.save(good, out, overwrite=True, max_shard_size=0)
    with pytest.raises(ValueError, match="threads"):
        ck.save(good, out, overwrite=True, threads=0, progress=False)
    assert ck.parse_size("5GB") == 5 * 10 ** 9 and ck.parse_size("2MiB") == 2 << 20
    # verify: not a checkpoint, no manifest in metadata, bad sample.
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{oops")
    assert verify_cli([str(junk)]) == 2
    assert verify_cli([str(tmp_path / "missing.safetensors")]) == 2
    assert verify_cli([out, "--sample", "0"]) == 2
    from safetensors.numpy import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"a": np.zeros((4, 4), np.float32)}, str(plain))
    with pytest.raises(ValueError, match="no weightfill manifest"):
        ck.verify(plain)
    assert ck.verify(plain, good).first_mismatch.status == "mismatch"


def test_progress_bar_shows_bytes_and_tensors_and_quiet_hides_it(tmp_path, capsys):
    m = Manifest.from_params({"a": ((64, 64), "normal"), "b": ((8,), "ones")}, seed=0)
    ck.save(m, tmp_path / "a.safetensors")
    err = capsys.readouterr().err
    assert "tensors 2/2" in err and re.search(r"16\.\d+k|16k|B", err)
    man = tmp_path / "m.json"
    m.save(man)
    assert init_cli([str(man), "-o", str(tmp_path / "b.safetensors"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()


def test_threads_do_not_change_the_bytes_and_are_restored(tmp_path):
    m = Manifest.from_params({"a": ((512, 300), "truncated_normal")}, seed=8)
    before = wf.get_num_threads()
    ck.save(m, tmp_path / "1.safetensors", threads=1, progress=False)
    ck.save(m, tmp_path / "2.safetensors", threads=2, progress=False)
    assert wf.get_num_threads() == before
    assert (tmp_path / "1.safetensors").read_bytes() == (tmp_path / "2.safetensors").read_bytes()
    shutil.rmtree(tmp_path)


def test_tied_weights_are_stored_once_and_load_back_tied(tmp_path):
    import torch
    import weightfill.torch as wft
    from safetensors.torch import load_file as torch_load
    from torch import nn

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(50, 16)
            self.head = nn.Linear(16, 50, bias=False)
            self.head.weight = self.emb.weight

    with torch.device("meta"):
        meta = Tied()
    m = wft.manifest(meta, seed=1)
    path = tmp_path / "tied.safetensors"
    ck.save(m, path, progress=False)
    state = torch_load(str(path))
    assert list(state) == ["emb.weight"]  # as safetensors' own writers keep shared tensors
    real = Tied()
    result = real.load_state_dict(state, strict=False)
    assert result.missing_keys == ["head.weight"] and not result.unexpected_keys
    expected = Tied()
    wft.init_module(expected, seed=1)
    assert torch.equal(real.head.weight, expected.emb.weight)
    assert real.head.weight.data_ptr() == real.emb.weight.data_ptr()
