"""`weightfill bench`: the command line's fast paths (tiny sizes, one repeat), its JSON, its
errors and its report of skipped peers. The timings themselves are not checked: they are
benchmarks, not tests."""

from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
import types

import numpy as np
import pytest
import weightfill as wf
from weightfill import bench
from weightfill.__main__ import main

TINY = ["--size", "4096", "--shape", "64x64", "--repeats", "1", "--no-progress"]


def run_json(capsys, *args: str) -> dict:
    assert main(["bench", *TINY, "--json", *args]) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def test_quick_json_schema(capsys):
    r = run_json(capsys, "--quick", "--peers", "numpy")
    assert r["schema"] == "weightfill-bench/1"
    assert r["config"]["size"] == 4096 and r["config"]["shape2d"] == [64, 64]
    assert r["config"]["parts"] == ["table"]
    m = r["machine"]
    assert m["isa"] == wf.isa() and m["threads"] == wf.get_num_threads()
    assert m["cores"] >= 1 and m["cpu"] and m["versions"]["numpy"] == np.__version__
    assert [c["name"] for c in r["table"]["cases"]] == list(bench.CASES)
    for case in r["table"]["cases"]:
        values = 64 * 64 if case["name"] in ("kaiming_normal", "xavier_uniform") else 4096
        assert case["values"] == values
        w = case["weightfill"]
        assert w["repeats"] == 1 and w["seconds"] > 0
        assert w["values_per_s"] == pytest.approx(values / w["seconds"])
        assert w["gbps"] == pytest.approx(case["bytes"] / w["seconds"] / 1e9)
        assert w["fraction_of_memfill"] == pytest.approx(
            case["memfill"]["seconds"] / w["seconds"])
        assert (w["statistic"], case["memfill"]["statistic"]) == ("median", "min")
        assert (w["untimed_before"], case["memfill"]["untimed_before"]) == (1, 1)  # tiny calls
        assert case["memfill"]["seconds"] == min(case["memfill"]["times"])
        assert [p["peer"] for p in case["peers"]] == ["numpy-pcg64", "numpy-philox"]
        for p in case["peers"]:
            assert p["speedup"] == pytest.approx(p["seconds"] / w["seconds"])
    assert r["table"]["cases"][-1]["dtype"] == "bfloat16"
    assert r["table"]["skipped"] == {k: "not requested (--peers)"
                                     for k in ("mkl_random", "torch", "jax")}


def test_missing_peer_is_reported_as_skipped(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mkl_random", None)  # import fails with ImportError
    r = run_json(capsys, "--peers", "numpy-pcg64,mkl_random", "--cases", "uniform")
    assert "ImportError" in r["table"]["skipped"]["mkl_random"] or \
        "ModuleNotFoundError" in r["table"]["skipped"]["mkl_random"]
    assert main(["bench", *TINY, "--peers", "mkl_random", "--cases", "normal"]) == 0
    text = capsys.readouterr().out
    assert "skipped: " in text and "mkl_random (" in text and "Error" in text


class _FakeRandomState:
    """mkl_random's RandomState, as far as the bench uses it (float64 results)."""

    def __init__(self, seed, brng):
        assert brng == "PHILOX4X32X10"
        self.gen = np.random.default_rng(seed)

    def uniform(self, low, high, size):
        return self.gen.uniform(low, high, size)

    def normal(self, loc, scale, size):
        return self.gen.normal(loc, scale, size)


def test_mkl_random_peer(capsys, monkeypatch):
    fake = types.ModuleType("mkl_random")
    fake.RandomState = _FakeRandomState
    fake.__version__ = "0.0-fake"
    monkeypatch.setitem(sys.modules, "mkl_random", fake)
    r = run_json(capsys, "--peers", "mkl_random")
    for case in r["table"]["cases"]:
        if case["name"] == "truncated_normal":
            assert case["peers"] == []
            assert "no truncated normal" in case["not_applicable"]["mkl_random"]
        else:
            (p,) = case["peers"]
            assert p["peer"] == "mkl_random" and "cast" in p["call"]
    assert r["machine"]["versions"]["mkl_random"] == "0.0-fake"


def test_real_mkl_random_peer_writes_its_draws():
    """The same checks against the real mkl_random (the `peers` extra; not in `test`, as MKL
    is about 1.1 GB): its calls run and fill the buffer with the row's distribution."""
    mkl_random = pytest.importorskip("mkl_random")
    for op in bench.make_ops(("uniform", "normal", "kaiming_normal"), 1 << 16, (256, 256),
                             np.dtype(np.float32)):
        buf = bench._buffer(op.shape, op.dtype)
        (c,) = [c for c in bench._contenders(op, buf, {"mkl_random": mkl_random})[0]
                if c.who == "mkl_random"]
        c.fn()
        x = buf.astype(np.float64)
        sd = op.scale / 12 ** 0.5 if op.kind == "uniform" else op.scale
        assert x.std() == pytest.approx(sd, rel=0.05), op.key
        assert x.mean() == pytest.approx(op.shift + (op.scale / 2 if op.kind == "uniform" else 0),
                                         abs=0.05 * op.scale)


def test_torch_and_jax_peers(capsys):
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    threads = wf.get_num_threads()
    r = run_json(capsys, "--peers", "torch,jax", "--threads", "1", "--cases",
                 "truncated_normal,kaiming_normal,xavier_uniform,bfloat16_normal")
    assert wf.get_num_threads() == threads  # restored
    calls = {c["name"]: {p["peer"]: p["call"] for p in c["peers"]} for c in r["table"]["cases"]}
    assert calls["kaiming_normal"]["torch"] == "nn.init.kaiming_normal_"
    assert calls["truncated_normal"]["torch"].startswith("nn.init.trunc_normal_")
    assert calls["xavier_uniform"]["jax"] == "jit(initializers.glorot_uniform)"
    assert calls["bfloat16_normal"]["jax"] == "jit(random.normal)"
    assert r["config"]["threads"] == 1


def test_peers_write_what_they_claim():
    """Each contender's buffer holds draws of the row's distribution (a smoke check that the
    peers time the right operation, not that they are fast)."""
    torch = pytest.importorskip("torch")
    n, shape2d = 1 << 16, (256, 256)
    for op in bench.make_ops(bench.CASES, n, shape2d, np.dtype(np.float32)):
        buf = bench._buffer(op.shape, op.dtype)
        contenders, _ = bench._contenders(op, buf, {"numpy-pcg64": np.random.default_rng(0),
                                                    "torch": torch})
        for c in contenders:
            c.fn()
            if c.who == "memfill":
                assert (buf == 0.5).all()
                continue
            x = buf.astype(np.float64)
            lo, hi = op.shift, op.shift + op.scale
            if op.kind == "uniform":
                assert lo <= x.min() and x.max() <= hi, (op.key, c.who)
                assert x.std() == pytest.approx(op.scale / 12 ** 0.5, rel=0.05)
            else:
                sd = op.scale * (0.8796 if op.kind == "trunc" else 1.0)
                assert x.std() == pytest.approx(sd, rel=0.05), (op.key, c.who)
                if op.kind == "trunc":
                    assert np.abs(x).max() <= 2 * op.scale * (1 + 1e-6)


def test_human_table_and_markdown(capsys):
    assert main(["bench", *TINY, "--peers", "numpy", "--cases", "normal,bfloat16_normal",
                 "--markdown"]) == 0
    text = capsys.readouterr().out
    assert "weightfill" in text and "numpy PCG64" in text and "memory fill" in text
    assert "of memory fill" in text and "kernel " + wf.isa() in text
    assert "| normal N(0, 1), bfloat16 |" in text


def test_progress_goes_to_stderr(capsys):
    assert main(["bench", "--size", "4096", "--repeats", "1", "--peers", "none",
                 "--cases", "uniform", "--json"]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)  # stdout stays machine-readable
    assert "[1/1] uniform" in captured.err


def test_progress_redraws_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    p = bench.Progress(True, stream)
    p.start("case", 4)
    p.tick()
    p.finish()
    assert "\r" in stream.getvalue() and "[#####" in stream.getvalue()


@pytest.mark.parametrize("args, message", [
    (["--size", "lots"], "is not a size"),
    (["--size", "0"], "out of range"),
    (["--shape", "4096"], "not a 2-D shape"),
    (["--shape", "0x8"], "positive"),
    (["--threads", "0"], "--threads must be in [1, 1024]"),
    (["--repeats", "0"], "--repeats must be >= 1"),
    (["--peers", "tensorflow"], "unknown peer 'tensorflow'"),
    (["--cases", "gamma"], "unknown case 'gamma'"),
    (["--dtype", "int8"], "invalid choice"),
    (["--plot", "speedups.svg"], ".png"),
    (["--plot", "/no/such/folder/s.png"], "does not exist"),
    (["--json", "--markdown"], "alternatives"),
    (["--targets", "--plot", "s.png"], "cannot go with"),
    (["--models", "--plot", "s.png"], "cannot go with"),
    (["--size", "2**36"], "GiB of memory"),
])
def test_bad_options_exit_2_with_a_message(capsys, args, message):
    with pytest.raises(SystemExit) as e:
        main(["bench", *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "usage: weightfill bench" in err and message in err


def test_plot(capsys, monkeypatch, tmp_path):
    path = tmp_path / "speedups.png"
    args = ["bench", *TINY, "--peers", "numpy-pcg64", "--cases", "uniform,normal",
            "--plot", str(path)]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        assert main(args) == 0
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "plotted to" in capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SystemExit):
        main(args)
    assert "--plot needs matplotlib" in capsys.readouterr().err


def test_targets_quick(capsys):
    pytest.importorskip("torch")
    r = run_json(capsys, "--quick", "--targets")
    assert r["config"]["parts"] == ["targets"] and r["targets"]["quick_shapes"]
    rows = {t["name"]: t for t in r["targets"]["targets"]}
    assert set(rows) == {t.name for t in bench.TARGETS}
    assert rows["kaiming_normal"]["required"] == 7.0
    for t in rows.values():
        if t["paired"]:  # the median of per-round ratios
            ratios = [b / a for a, b in zip(t["weightfill"]["times"], t["peer"]["times"])]
            assert len(ratios) >= bench.PAIRED_ROUNDS
            assert t["ratio"] == pytest.approx(statistics.median(ratios))
        else:
            assert t["ratio"] == pytest.approx(t["peer"]["seconds"] / t["weightfill"]["seconds"])
        assert t["met"] == (t["ratio"] >= t["required"] - t["tolerance"]) and t["judged"] is False
    assert rows["new_array"]["paired"] and rows["new_array"]["tolerance"] == 0.02
    text = bench.format_targets(r)
    assert "not judged (--quick)" in text and "blocked reflector product" in text


def test_equal_work_targets_report_their_noise_margin():
    row = {"name": "new_array", "goal": "no slower", "shape": [4, 4], "required": 1.0,
           "tolerance": 0.02, "paired": True, "ratio": 0.99, "met": True, "judged": True,
           "weightfill": {"seconds": 0.1}, "peer": {"seconds": 0.099}}
    result = {"table": None, "targets": {"targets": [row], "quick_shapes": False}}  # no header
    text = bench.format_targets(result)
    paired = "met (median of paired per-round ratios"
    assert f"0.99x  {paired}; within the 2% noise of equal work)" in text
    row.update(ratio=1.01)
    assert bench.format_targets(result).endswith(f"1.01x  {paired})")
    row.update(paired=False, tolerance=0.0)
    assert bench.format_targets(result).endswith("1.01x  met")


def test_targets_without_torch(capsys):
    r = run_json(capsys, "--quick", "--targets", "--peers", "numpy")
    rows = {t["name"]: t for t in r["targets"]["targets"]}
    assert rows["kaiming_normal"]["met"] is None and "torch" in rows["kaiming_normal"]["skipped"]
    assert rows["new_array"]["ratio"] > 0


def test_models_quick(capsys):
    """The models section at a tiny GPT-2 shape: fresh subprocesses, one repeat; its JSON
    agrees with itself and the model's size with a count from the shape."""
    pytest.importorskip("torch")
    r = run_json(capsys, "--quick", "--models")
    assert r["config"]["parts"] == ["models"]
    (row,) = r["models"]["models"]
    sh = row["shape"]
    assert row["name"] == "gpt2-tiny" and sh == {"name": "gpt2-tiny", "vocab": 2048, "d": 128,
                                                  "blocks": 2, "mlp": 512, "context": 128}
    d, m = sh["d"], sh["mlp"]
    per_block = 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (m * d + m) + (d * m + d)
    params = sh["vocab"] * d + sh["context"] * d + sh["blocks"] * per_block + 2 * d  # tied head
    assert row["parameters"] == params and row["bytes"] == 4 * params
    assert row["threads"] == wf.get_num_threads() and row["judged"] is False
    c, i, p = row["construction"], row["init_module"], row["peak_rss"]
    assert len(c["torch_default_s"]) == len(c["meta_total_s"]) == 1
    assert c["meta_total_s"][0] == pytest.approx(c["meta_construction_s"][0] +
                                                 c["materialize_s"][0])
    assert c["ratio"] == pytest.approx(c["torch_default_s"][0] / c["meta_total_s"][0])
    assert c["met"] == (c["ratio"] >= 8.0) and c["required"] == 8.0
    assert set(c["materialize_cpu"][0]) == {"user", "sys"}
    assert len(i["init_module_s"]) == len(i["reset_parameters_s"]) == 1
    assert i["ratio"] == pytest.approx(i["reset_parameters_s"][0] / i["init_module_s"][0])
    assert i["met"] == (i["ratio"] >= 8.0)
    assert p["growth_bytes"] == p["rss_peak"][0] - p["rss_before"][0] > 0
    assert p["growth_over_model"] == pytest.approx(p["growth_bytes"] / row["bytes"])
    assert p["met"] == (p["growth_bytes"] <= 1.05 * row["bytes"]) and p["required"] == 1.05
    text = bench.format_models(r)
    assert "gpt2-tiny" in text and "(not judged)" in text and "init_module" in text


def test_models_without_torch(capsys, monkeypatch):
    real = bench.models.importlib.util.find_spec
    monkeypatch.setattr(bench.models.importlib.util, "find_spec",
                        lambda name: None if name == "torch" else real(name))
    r = run_json(capsys, "--quick", "--models")
    assert r["models"]["models"] == [] and "torch" in r["models"]["skipped"]
    assert "models: skipped: torch" in bench.format_models(r)


def test_peak_rss_of_a_new_array_call():
    spec = {"func": "normal", "dtype": "float32", "shape": [1 << 22], "kwargs": {}}
    r = bench.measure_peak_rss(spec)
    assert r["nbytes"] == 4 << 22
    growth = r["peak"] - r["before"]
    assert r["nbytes"] <= growth < r["nbytes"] + (16 << 20)


@pytest.mark.parametrize("method", ["floyd", "keys"])
def test_peak_rss_of_a_tall_sparse_matrix(method):
    """2^21 x 2 float16 (8 MiB): column maps for the lines present only, no mask, draws a chunk
    at a time (this shape once took 35-97 MiB of scratch)."""
    spec = {"func": "sparse", "dtype": "float16", "shape": [1 << 21, 2],
            "kwargs": {"sparsity": 0.5, "method": method}}
    r = bench.measure_peak_rss(spec)
    growth = r["peak"] - r["before"]
    assert r["nbytes"] <= growth < 1.01 * r["nbytes"] + (16 << 20)


def test_memory_specs_cover_every_engine_distribution():
    funcs = {(s["func"], s["dtype"]) for s in bench.memory_specs(1 << 20, (1024, 1024), True)}
    for f in ("uniform", "normal", "truncated_normal", "sparse"):
        for dt in bench.DTYPES:
            assert (f, dt) in funcs
    assert ("random_raw", None) in funcs and ("orthogonal", "float32") in funcs
    specs = bench.memory_specs(1 << 20, (64, 64), True)
    methods = {s["kwargs"].get("method", "floyd") for s in specs if s["func"] == "sparse"}
    assert methods == {"floyd", "keys"}


@pytest.mark.parametrize("text, n", [("small", 1 << 20), ("16M", 16 << 20), ("2**24", 1 << 24),
                                     ("1_000_000", 10 ** 6), ("64k", 1 << 16)])
def test_parse_size(text, n):
    assert bench.parse_size(text) == n


def test_parse_shape_and_default_shape():
    assert bench.parse_shape("16384x4096") == (16384, 4096)
    assert bench.parse_shape("16384, 8192") == (16384, 8192)
    assert bench.default_shape2d(1 << 24) == (4096, 4096)
    assert bench.default_shape2d(1 << 25) == (8192, 4096)
    assert bench.parse_peers("numpy,torch") == ("numpy-pcg64", "numpy-philox", "torch")
    assert bench.parse_peers("none") == ()


def test_interleaved_rounds_and_budget():
    log = []
    fast = bench.Contender("a", "a", lambda: log.append("a"))
    slow = bench.Contender("b", "b", lambda: (log.append("b"), __import__("time").sleep(0.02)))
    bench.time_interleaved([fast, slow], 5, budget=0.05, floor=2)
    assert log[:2] == ["a", "b"]  # warm-ups
    assert len(fast.times) == 5 and len(slow.times) == 2  # slow: 5 * 0.02 s > 0.05 s budget
    assert log[2:6] == ["a", "b", "a", "b"]  # interleaved while both run


def test_short_calls_are_timed_right_after_an_untimed_one():
    log = []
    fast = bench.Contender("a", "a", lambda: log.append("a"))
    slow = bench.Contender("b", "b", lambda: (log.append("b"), __import__("time").sleep(0.03)))
    bench.time_interleaved([fast, slow], 2, hot_below=0.02)
    assert (fast.hot, slow.hot) == (1, 0)
    assert log == ["a", "b", "a", "a", "b", "a", "a", "b"]  # warm-ups, then a's extra call
    assert len(fast.times) == len(slow.times) == 2


def test_python_dash_m(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "weightfill", "bench", "--size", "tiny", "--repeats", "1",
         "--peers", "none", "--cases", "uniform", "--json"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["table"]["cases"][0]["name"] == "uniform"
    proc = subprocess.run([sys.executable, "-m", "weightfill"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "COMMAND" in proc.stderr


def test_bench_is_not_imported_with_weightfill():
    code = ("import sys, weightfill; "
            "bad = [m for m in ('weightfill.bench', 'torch', 'jax', 'matplotlib') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
