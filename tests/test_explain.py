"""``weightfill explain`` on the synthetic stack: the forward and backward passes against torch
autograd (float64), the theory of variance propagation at 50 x 512 (batch 1024), the
prediction column against closed forms and scipy quadrature computed here, the CLI, the API
and --json giving the same numbers, the plot's axes, and clear errors on bad input."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import weightfill as wf
from scipy import integrate, special
from weightfill import explain as ex
from weightfill.__main__ import main

torch = pytest.importorskip("torch")
F = torch.nn.functional

SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


# ----------------------------------------------------------------------------------------------
# The passes against torch autograd

TORCH_ACT = {
    "relu": F.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "selu": F.selu,
    "gelu": F.gelu, "linear": lambda z: z, "leaky_relu:0.2": lambda z: F.leaky_relu(z, 0.2),
}


def torch_reference(widths, activation, scheme_fn, *, batch, seed, conv=None, image=(6, 5)):
    """The stack rebuilt from the documented streams and run by torch in float64: per layer
    the std of z_l and of dLoss/dz_l (autograd), dead units, distinct units."""
    shapes = [((o, i) if conv is None else (o, i, *conv)) for i, o in zip(widths, widths[1:])]
    ws = [torch.from_numpy(scheme_fn(s, seed=seed, stream=f"layers.{k + 1}.weight",
                                     dtype=np.float32)).double() for k, s in enumerate(shapes)]
    in_shape = (batch, widths[0]) if conv is None else (batch, widths[0], *image)
    out_shape = (batch, widths[-1]) if conv is None else (batch, widths[-1], *image)
    x = torch.from_numpy(wf.normal(in_shape, seed=seed, stream="explain.input",
                                   dtype=np.float32)).double()
    g = torch.from_numpy(wf.normal(out_shape, seed=seed, stream="explain.output_grad",
                                   dtype=np.float32)).double()
    f = TORCH_ACT[activation]
    zs = []
    h = x
    for w in ws:
        if conv is None:
            z = h @ w.T
        else:  # circular 'same' padding: top/left k // 2
            kh, kw = conv
            z = F.conv2d(F.pad(h, (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2),
                               mode="circular"), w)
        z.requires_grad_(True) if z.is_leaf else z.retain_grad()
        zs.append(z)
        h = f(z)
    (h * g).sum().backward()
    units = [(z.detach().movedim(1, -1).reshape(-1, z.shape[1])) for z in zs]
    grads = [(z.grad.movedim(1, -1).reshape(-1, z.shape[1])) for z in zs]
    return {
        "forward_std": [float(z.detach().std(unbiased=False)) for z in zs],
        "backward_std": [float(d.std(unbiased=False)) for d in grads],
        "dead_fraction": [float((d == 0).all(dim=0).double().mean()) for d in grads],
        "distinct_rows": [int(torch.unique(u.T.float(), dim=0).shape[0]) for u in units],
    }


@pytest.mark.parametrize("activation", sorted(TORCH_ACT))
def test_dense_passes_match_torch_autograd(activation):
    widths = [24, 40, 32, 40, 16]
    r = ex.explain(["kaiming_normal"], widths=widths, activation=activation, batch=96, seed=5)
    got = r.schemes["kaiming_normal"]
    ref = torch_reference(widths, activation, wf.kaiming_normal, batch=96, seed=5)
    np.testing.assert_allclose(got["forward_std"], ref["forward_std"], rtol=2e-5)
    np.testing.assert_allclose(got["backward_std"], ref["backward_std"], rtol=2e-5)
    assert got["distinct_rows"] == ref["distinct_rows"] == widths[1:]
    assert got["dead_fraction"] == ref["dead_fraction"]
    assert got["width"] == widths[1:]


@pytest.mark.parametrize("kernel, activation", [((3, 3), "relu"), ((2, 3), "tanh"),
                                                ((1, 1), "gelu")])
def test_conv_passes_match_torch_autograd(kernel, activation):
    widths = [3, 8, 6, 5]
    layer = f"conv2d:{kernel[0]}x{kernel[1]}"
    r = ex.explain(["xavier_normal", "orthogonal"], widths=widths, activation=activation,
                   layer=layer, batch=4, image=(6, 5), seed=2)
    for text, fn in (("xavier_normal", wf.xavier_normal), ("orthogonal", wf.orthogonal)):
        got = r.schemes[text]
        ref = torch_reference(widths, activation, fn, batch=4, seed=2, conv=kernel)
        np.testing.assert_allclose(got["forward_std"], ref["forward_std"], rtol=2e-5)
        np.testing.assert_allclose(got["backward_std"], ref["backward_std"], rtol=2e-5)
        assert got["distinct_rows"] == ref["distinct_rows"]
        assert got["dead_fraction"] == ref["dead_fraction"]
    assert r.settings["image"] == [6, 5] and r.settings["layer"] == layer


def test_dead_units_and_distinct_rows_are_counted():
    # A ReLU unit with a negative weight row on all-positive inputs never fires; two equal rows
    # are one distinct unit.
    z = np.random.default_rng(1).standard_normal((50, 6)).astype(np.float32)
    z[:, 4] = z[:, 1]
    z[:, 5] = z[:, 1] * np.float32(1 + 1e-7)  # rounding-level difference: the same unit
    assert ex.distinct_rows(z) == 4
    assert ex.distinct_rows(np.zeros((7, 3), np.float32)) == 1
    assert ex.distinct_rows(np.full((7, 3), 2.5, np.float32)) == 1
    delta = np.ones((5, 4), np.float32)
    delta[:, 2] = 0
    assert ex._dead(delta) == 0.25


# ----------------------------------------------------------------------------------------------
# Theory at 50 x 512, batch 1024 (the sizes)

@pytest.fixture(scope="module")
def relu_report():
    return ex.explain(["kaiming_normal", "xavier_normal", "normal:0.01", "zeros"],
                      depth=50, width=512, batch=1024, activation="relu", seed=0)


def test_linear_lecun_normal_keeps_unit_std():
    r = ex.explain(["lecun_normal"], depth=50, width=512, batch=1024, activation="linear")
    fwd = r.schemes["lecun_normal"]["forward_std"]
    assert all(abs(s - 1) < 0.10 for s in fwd), fwd
    assert r.schemes["lecun_normal"]["verdict"] == "stable"


def test_relu_kaiming_normal_within_factor_two(relu_report):
    d = relu_report.schemes["kaiming_normal"]
    for key, ref in (("forward_std", d["forward_std"][0]), ("backward_std",
                                                            d["backward_std"][-1])):
        ratios = np.array(d[key]) / ref
        assert np.all((ratios > 0.5) & (ratios < 2)), (key, ratios)
    # The formula: layer 1 sees the N(0, 1) input through Var(W) = 2/512: std sqrt(2).
    assert d["forward_std"][0] == pytest.approx(math.sqrt(2), rel=0.02)
    assert d["verdict"] == "stable"


def test_relu_xavier_normal_halves_the_variance_per_layer(relu_report):
    """Xavier with n_in = n_out = n gives Var(W) = 1/n: each ReLU layer keeps half the second
    moment, so std_l / std_1 = 2^(-(l-1)/2) in expectation.

    Error bound. Given layer l-1's output X (B x n), unit i's sum of squares over the batch is
    Y_i = sum_b relu(z_bi)^2 with z_i = X w_i, w_i ~ N(0, I/n) independent over units. Each
    term relu(z)^2 of a centred Gaussian z has Var / mean^2 = (3/2 - 1/4) / (1/4) = 5, so by
    Cauchy-Schwarz (sd of a sum <= sum of sds, equality when the batch is perfectly
    correlated) Var(Y_i) / E[Y_i]^2 <= 5, and the layer's mean over n independent units has
    relative variance <= 5/n. The per-layer factors are martingale increments (conditionally
    mean 1 given the past), so by the delta method the log of the 49-layer product has
    variance <= 49 * 5 / n and the log std ratio (half of it) variance <= 49 * 5 / (4 n) =
    0.12 (sd 0.35), and a downward bias of at most half the log-variance of the product, 0.12.
    Bound: |log measured - log 2^(-49/2)| <= 3 sd + 0.12 = 1.16 (a factor 3.2). A per-layer
    error of 5% in the variance factor would move the log ratio by 1.26 and fail.
    """
    d = relu_report.schemes["xavier_normal"]
    n, L = 512, 50
    sd = math.sqrt((L - 1) * 5 / (4 * n))
    bound = 3 * sd + (L - 1) * 5 / (2 * n) / 2
    for l in (10, 25, 50):
        measured = d["forward_std"][l - 1] / d["forward_std"][0]
        sd_l = math.sqrt((l - 1) * 5 / (4 * n))
        assert abs(math.log(measured) + (l - 1) / 2 * math.log(2)) <= (
            3 * sd_l + (l - 1) * 5 / (4 * n)), (l, measured)
    measured_b = d["backward_std"][0] / d["backward_std"][-1]  # the same law backward
    assert abs(math.log(measured_b) + (L - 1) / 2 * math.log(2)) <= bound
    assert d["verdict"].startswith("vanishes")
    assert "forward vanishes by" in d["verdict"] and "at layer 50" in d["verdict"]


def test_small_normal_collapses(relu_report):
    d = relu_report.schemes["normal:0.01"]
    assert d["forward_std"][-1] < 1e-30 * d["forward_std"][0]
    assert d["verdict"].startswith("vanishes")


def test_zeros_is_symmetric_at_every_layer(relu_report):
    d = relu_report.schemes["zeros"]
    assert d["distinct_rows"] == [1] * 50
    assert d["forward_std"] == [0.0] * 50
    assert d["verdict"].startswith("symmetric")
    assert all(v > 1 for v in relu_report.schemes["kaiming_normal"]["distinct_rows"])


def test_tanh_xavier_uniform_is_stable():
    r = ex.explain(["xavier_uniform"], depth=50, width=512, batch=1024, activation="tanh")
    d = r.schemes["xavier_uniform"]
    assert d["verdict"] == "stable"
    # tanh at Var(W) = 1/n decays polynomially (q_l ~ 1/l), not geometrically: the measured
    # curve follows the mean-field prediction.
    np.testing.assert_allclose(d["forward_std"], d["predicted_forward_std"], rtol=0.1)


def test_explosion_is_reported():
    r = ex.explain(["normal:1"], depth=40, width=256, batch=64, activation="relu")
    d = r.schemes["normal:1"]
    assert d["verdict"].startswith("explodes")
    assert "overflows float32 at layer" in d["verdict"]
    k = d["forward_std"].index(None)
    assert all(v is None for v in d["forward_std"][k:]) and d["forward_std"][k - 1] > 1e30
    json.loads(r.to_json())  # overflow is null, not Infinity


# ----------------------------------------------------------------------------------------------
# The prediction column against closed forms computed here

def expect(f, q):
    """E[f(sqrt(q) z)^2], z ~ N(0, 1), by scipy's adaptive quadrature."""
    s = math.sqrt(q)
    return integrate.quad(lambda t: f(s * t) ** 2 * math.exp(-t * t / 2) / math.sqrt(2 * math.pi),
                          -np.inf, np.inf, limit=200, epsabs=0, epsrel=1e-12)[0]


SCALAR = {
    "tanh": (math.tanh, lambda z: 1 - math.tanh(z) ** 2),
    "sigmoid": (lambda z: special.expit(z), lambda z: special.expit(z) * (1 - special.expit(z))),
    "selu": (lambda z: SELU_SCALE * (z if z > 0 else SELU_ALPHA * math.expm1(z)),
             lambda z: SELU_SCALE * (1.0 if z > 0 else SELU_ALPHA * math.exp(z))),
    "gelu": (lambda z: z * special.ndtr(z),
             lambda z: special.ndtr(z) + z * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)),
}


def second_moment(text, shape):
    """Var(W) of the scheme written from torch's and Keras's documentation."""
    fo, fi = shape[0] * math.prod(shape[2:]), shape[1] * math.prod(shape[2:])
    rows, cols = shape[0], fi
    return {
        "kaiming_normal": 2 / fi, "kaiming_uniform:a=2.23606797749979": 1 / (3 * fi),
        "kaiming_normal:mode=fan_out,nonlinearity=relu": 2 / fo,
        "xavier_uniform:1.5": 1.5 ** 2 * 2 / (fi + fo), "xavier_normal": 2 / (fi + fo),
        "glorot_normal": 2 / (fi + fo), "he_uniform": 2 / fi, "lecun_normal": 1 / fi,
        "variance_scaling:2,fan_avg,uniform": 4 / (fi + fo),
        "orthogonal": min(rows, cols) / (rows * cols), "orthogonal:2": 4 * min(rows, cols) / (
            rows * cols),
        "normal:0.05": 0.05 ** 2, "uniform:-0.1,0.1": 0.01 / 3, "uniform:0.2": 0.04 / 3,
        "truncated_normal:0,0.1": 0.01 * 0.7737413035499232,  # Var of N(0,1) | |z| <= 2
        "sparse:0.5,std=0.1": 0.5 * 0.01, "zeros": 0.0,
    }[text]


_MOMENT_SCHEMES = [
    "kaiming_normal", "kaiming_uniform:a=2.23606797749979",
    "kaiming_normal:mode=fan_out,nonlinearity=relu", "xavier_uniform:1.5", "xavier_normal",
    "glorot_normal", "he_uniform", "lecun_normal", "variance_scaling:2,fan_avg,uniform",
    "orthogonal", "orthogonal:2", "normal:0.05", "uniform:-0.1,0.1", "uniform:0.2",
    "truncated_normal:0,0.1", "sparse:0.5,std=0.1", "zeros"]


@pytest.mark.parametrize("text,shape", [
    (text, shape) for text in _MOMENT_SCHEMES
    for shape in [(96, 64), (48, 80), (24, 16, 3, 3)]
    if not (text.startswith("sparse") and len(shape) != 2)])  # sparse fills 2-D matrices only
def test_weight_second_moment_closed_forms(text, shape):
    scheme = ex.parse_scheme(text)
    closed = ex.weight_second_moment(scheme, shape)
    assert closed == pytest.approx(second_moment(text, shape), rel=1e-12, abs=0)
    # ... and it is what the scheme draws: orthogonal exactly, the others within 6 sd of the
    # sample mean of W^2 (relative sd sqrt(Var(W^2) / N) <= sqrt(2 / N) for the normal
    # family, less for uniform; sparse: two-point mixture, sqrt(5 / N)).
    w = scheme.fn(shape, **scheme.kwargs, **({"seed": 3, "stream": "w"} if scheme.random
                                             else {}), dtype=np.float64)
    emp = float(np.mean(w.astype(np.float64) ** 2))
    tol = 1e-12 if text.startswith("orthogonal") or text == "zeros" else 6 * math.sqrt(5 / w.size)
    assert emp == pytest.approx(closed, rel=tol, abs=1e-300)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu:0.2", "linear"])
def test_prediction_homogeneous_closed_form(activation):
    widths = [40, 64, 32, 48]
    r = ex.explain(["xavier_normal", "kaiming_uniform"], widths=widths, activation=activation,
                   batch=8)
    a = 0.2 if activation.startswith("leaky") else (0.0 if activation == "relu" else None)
    m = 1.0 if a is None else (1 + a * a) / 2  # E[f(z)^2] = E[f'(z)^2] for unit variance
    for text, var in (("xavier_normal", lambda i, o: 2 / (i + o)),
                      ("kaiming_uniform", lambda i, o: 2 / i)):
        s = [var(i, o) for i, o in zip(widths, widths[1:])]
        q = [widths[0] * s[0]]
        for k in range(1, 3):
            q.append(widths[k] * s[k] * m * q[-1])
        v = [0.0, 0.0, m]  # backward: fan_out of the next layer, E[f'^2] = m
        v[1] = widths[3] * s[2] * v[2] * m
        v[0] = widths[2] * s[1] * v[1] * m
        d = r.schemes[text]
        np.testing.assert_allclose(d["predicted_forward_std"], np.sqrt(q), rtol=1e-12)
        np.testing.assert_allclose(d["predicted_backward_std"], np.sqrt(v), rtol=1e-12)


@pytest.mark.parametrize("activation", sorted(SCALAR))
def test_prediction_mean_field_recursion(activation):
    """Non-homogeneous activations: q_l = n s E[f(sqrt(q_{l-1}) z)^2], v_l = n s v_{l+1}
    E[f'(sqrt(q_l) z)^2], here by scipy quadrature (the code uses its own Gauss-Legendre
    rule)."""
    f, df = SCALAR[activation]
    widths = [50, 50, 50, 50, 50]
    r = ex.explain(["kaiming_normal", "normal:0.3"], widths=widths, activation=activation,
                   batch=8)
    for text, s in (("kaiming_normal", 2 / 50), ("normal:0.3", 0.09)):
        q = [50 * s]
        for _ in range(3):
            q.append(50 * s * expect(f, q[-1]))
        v = [0.0] * 4
        v[3] = expect(df, q[3])
        for k in (2, 1, 0):
            v[k] = 50 * s * v[k + 1] * expect(df, q[k])
        d = r.schemes[text]
        np.testing.assert_allclose(d["predicted_forward_std"], np.sqrt(q), rtol=1e-7)
        np.testing.assert_allclose(d["predicted_backward_std"], np.sqrt(v), rtol=1e-7)


def test_no_prediction_for_schemes_that_are_not_zero_mean():
    r = ex.explain(["ones", "normal:0.5,0.1", "eye"], depth=3, width=16, batch=8)
    for d in r.schemes.values():
        assert d["predicted_forward_std"] == [None] * 3
        assert d["predicted_backward_std"] == [None] * 3


# ----------------------------------------------------------------------------------------------
# CLI, API and JSON

ARGS = ["--depth", "12", "--width", "48", "--batch", "64", "--activation", "tanh",
        "--schemes", "xavier_uniform,uniform:-0.05,0.05,zeros,orthogonal", "--seed", "7"]


def test_cli_api_json_agree(tmp_path, capsys):
    path = tmp_path / "r.json"
    assert main(["explain", *ARGS, "--json", str(path), "--rows", "12"]) == 0
    table = capsys.readouterr().out
    api = ex.explain("xavier_uniform,uniform:-0.05,0.05,zeros,orthogonal", depth=12, width=48,
                     batch=64, activation="tanh", seed=7)
    data = json.loads(path.read_text())
    assert list(data["schemes"]) == ["xavier_uniform", "uniform:-0.05,0.05", "zeros",
                                     "orthogonal"]
    assert data["depth"] == 12 and data["widths"] == [48] * 13
    assert data["activation"] == "tanh" and data["seed"] == 7 and data["batch"] == 64
    for text, d in data["schemes"].items():
        assert sorted(d) == sorted(["forward_std", "backward_std", "predicted_forward_std",
                                    "dead_fraction", "distinct_rows", "verdict"])
        a = api.schemes[text]
        for key in ("forward_std", "backward_std", "predicted_forward_std", "dead_fraction",
                    "distinct_rows", "verdict"):
            assert d[key] == a[key], (text, key)
        assert f"{text}: {d['verdict']}" in table
        for layer in range(12):  # every layer is shown with --rows 12
            assert f" {ex._fmt(d['forward_std'][layer])} " in table
    capsys.readouterr()
    assert main(["explain", *ARGS, "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["schemes"] == data["schemes"]


def test_table_samples_layers_to_fit():
    r = ex.explain(["kaiming_normal"], depth=50, width=16, batch=32)
    lines = r.format(rows=8).splitlines()
    assert max(len(line) for line in lines) <= 120
    block = [line for line in lines if line[:5].strip().isdigit()]
    assert [int(line.split()[0]) for line in block] == [1, 8, 15, 22, 29, 36, 43, 50]


def test_plot_has_both_panels(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "p.png"
    r = ex.explain(["kaiming_normal", "xavier_normal", "zeros"], depth=10, width=32, batch=32)
    fig = r.plot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    axes = fig.get_axes()
    assert len(axes) == 2
    assert [ax.get_yscale() for ax in axes] == ["log", "log"]
    assert "forward" in axes[0].get_title() and "backward" in axes[1].get_title()
    for ax in axes:
        assert ax.get_xlabel() == "layer"
        lines = ax.get_lines()
        solid = [ln for ln in lines if ln.get_linestyle() == "-"]
        dashed = [ln for ln in lines if ln.get_linestyle() == "--" and len(ln.get_xdata())]
        assert len(solid) == 3 and len(dashed) == 2  # zeros: predicted 0, nothing on a log axis
        np.testing.assert_allclose(solid[0].get_xdata(), np.arange(1, 11))
    fwd = axes[0].get_lines()[0].get_ydata()
    np.testing.assert_allclose(fwd, r.schemes["kaiming_normal"]["forward_std"])
    labels = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert "kaiming_normal" in labels and "zeros (0 at every layer)" in labels
    import matplotlib.image

    assert matplotlib.image.imread(str(path)).shape[2] in (3, 4)
    main(["explain", "--depth", "3", "--width", "8", "--batch", "8", "--plot",
          str(tmp_path / "cli.png")])
    assert (tmp_path / "cli.png").read_bytes()[:4] == b"\x89PNG"


# ----------------------------------------------------------------------------------------------
# Bad input

@pytest.mark.parametrize("kwargs, err, match", [
    ({"activation": "swish"}, ValueError, "activation: unknown activation 'swish'"),
    ({"activation": "leaky_relu:x"}, ValueError, "slope"),
    ({"activation": "tanh:2"}, ValueError, "takes no argument"),
    ({"activation": 3}, TypeError, "activation must be a str"),
    ({"schemes": ["kaiming_normall"]}, ValueError, "unknown scheme 'kaiming_normall'"),
    ({"schemes": ["xavier_normal:1,2"]}, ValueError, "at most 1 positional"),
    ({"schemes": ["xavier_normal:bias=1"]}, ValueError, "no argument 'bias'"),
    ({"schemes": ["normal:seed=3"]}, ValueError, "seed cannot be set"),
    ({"schemes": ["dirac"]}, ValueError, "dirac needs a 3-, 4- or 5-D shape"),
    ({"schemes": []}, ValueError, "at least one scheme"),
    ({"schemes": ["zeros", "zeros"]}, ValueError, "given twice"),
    ({"depth": 0}, ValueError, "depth must be >= 1, got 0"),
    ({"depth": 2.5}, TypeError, "depth must be an integer"),
    ({"width": -3}, ValueError, "width must be >= 1"),
    ({"widths": [784]}, ValueError, "widths must chain at least one layer"),
    ({"widths": [784, 256, 10], "depth": 3}, ValueError, "do not chain 3 layers"),
    ({"widths": [784, 0, 10]}, ValueError, r"widths\[1\] must be >= 1"),
    ({"widths": "784,10"}, TypeError, "widths must be a sequence"),
    ({"widths": [8, 8], "width": 8}, ValueError, "width or widths, not both"),
    ({"layer": "conv3d"}, ValueError, "layer: unknown layer 'conv3d'"),
    ({"layer": "conv2d:0x3"}, ValueError, "kernel sizes"),
    ({"batch": 0}, ValueError, "batch must be >= 1"),
    ({"image": (4, 4, 4)}, ValueError, "image must be"),
    ({"seed": -1}, ValueError, "seed"),
    ({"depth": 100, "width": 4096, "batch": 8192}, ValueError, "limit is 2\\*\\*31"),
])
def test_bad_input(kwargs, err, match):
    args = {"schemes": ["kaiming_normal"], "depth": 2, "width": 8, "batch": 4}
    if "widths" in kwargs:
        args.pop("depth")
        args.pop("width")
    args.update(kwargs)
    with pytest.raises(err, match=match):
        ex.explain(**args)


@pytest.mark.parametrize("argv, match", [
    (["--activation", "swish"], "--activation: unknown activation"),
    (["--schemes", "foo"], "--schemes: unknown scheme 'foo'"),
    (["--depth", "0"], "--depth must be >= 1"),
    (["--widths", "784,a"], "--widths '784,a': give comma-separated integers"),
    (["--widths", "784,10", "--depth", "3"], "do not chain 3 layers"),
    (["--plot", "x.jpg"], "give a .png file name"),
    (["--plot", "/nonexistent/dir/x.png"], "does not exist"),
    (["--json", "/nonexistent/dir/x.json"], "does not exist"),
    (["--rows", "1"], "--rows must be >= 2"),
])
def test_cli_errors(argv, match, capsys):
    with pytest.raises(SystemExit) as e:
        main(["explain", "--depth", "2", "--width", "8", "--batch", "4", *argv])
    assert e.value.code == 2
    assert match in capsys.readouterr().err


def test_split_schemes():
    assert ex.split_schemes("kaiming_normal,uniform:-0.1,0.1,variance_scaling:scale=2,"
                            "mode=fan_avg,zeros") == [
        "kaiming_normal", "uniform:-0.1,0.1", "variance_scaling:scale=2,mode=fan_avg", "zeros"]
    with pytest.raises(ValueError, match="empty entry"):
        ex.split_schemes("zeros,,ones")


def test_import_weightfill_does_not_import_matplotlib():
    import subprocess
    import sys

    code = ("import sys, weightfill, weightfill.explain; "
            "print('matplotlib' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == ["False", "False"]


def test_stdout_is_not_written_on_error():
    buf = io.StringIO()
    import argparse

    def fail(msg):
        raise SystemExit(msg)

    ns = argparse.Namespace(schemes="zeros", depth=0, width=8, widths=None, activation="relu",
                            layer="dense", batch=4, image=8, seed=0, rows=8, json=None,
                            plot=None)
    with pytest.raises(SystemExit, match="--depth must be >= 1"):
        ex.run(ns, fail, out=buf)
    assert buf.getvalue() == ""
