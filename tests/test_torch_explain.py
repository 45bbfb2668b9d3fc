"""``weightfill.torch.explain`` on real torch models: hooks against statistics computed here
by torch autograd, torch's default init against kaiming_normal rules on a deep ReLU MLP (theory:
torch's kaiming_uniform(a=sqrt(5)) gives Var(W) = 1/(3 fan_in), so each ReLU layer keeps 1/6
of the second moment), the caller's model untouched, in-place activations, and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import weightfill as wf  # noqa: E402
import weightfill.torch as wft  # noqa: E402
from torch import nn  # noqa: E402


def mlp(depth=12, width=128, inplace=False):
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU(inplace=inplace)]
    return nn.Sequential(*layers)


def test_hooks_match_autograd_statistics():
    model = mlp(depth=4, width=32)
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(1))
    r = wft.explain(model, x, seed=3, rules={"*.weight": "kaiming_normal", "*.bias": "zeros"})
    (label, d), = r.schemes.items()
    ref = mlp(depth=4, width=32)
    wft.init_module(ref, seed=3, rules={"*.weight": "kaiming_normal", "*.bias": "zeros"})
    zs, h = [], x
    for lin in ref[::2]:
        z = lin(h)
        z.retain_grad()
        zs.append(z)
        h = torch.relu(z)
    g = torch.from_numpy(wf.normal(tuple(h.shape), seed=3, stream="explain.output_grad",
                                   dtype=np.float32))
    h.backward(g)
    np.testing.assert_allclose(d["forward_std"], [float(z.detach().std(unbiased=False)) for z in zs],
                               rtol=1e-6)
    np.testing.assert_allclose(d["backward_std"],
                               [float(z.grad.std(unbiased=False)) for z in zs], rtol=1e-6)
    assert d["dead_fraction"] == [float((z.grad == 0).all(0).double().mean()) for z in zs]
    assert d["name"] == ["0", "2", "4", "6"]


def test_default_init_vanishes_and_kaiming_is_stable():
    torch.manual_seed(0)
    model = mlp(depth=12, width=256, inplace=True)  # in-place ReLU after each hooked Linear
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(512, 256, generator=torch.Generator().manual_seed(0))
    default = wft.explain(model, x, seed=0)
    kaiming = wft.explain(model, x, seed=0, rules={"*.weight": "kaiming_normal",
                                                   "*.bias": "zeros"})
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(p.grad is None for p in model.parameters())
    d = default.schemes["torch default"]
    k = kaiming.schemes[next(iter(kaiming.schemes))]
    ratio_k = np.array(k["forward_std"]) / k["forward_std"][0]
    assert np.all((ratio_k > 0.5) & (ratio_k < 2)) and k["verdict"] == "stable"
    # Default: weight Var = 1/(3 n) (kaiming_uniform a=sqrt(5)), bias U(+-1/sqrt(n)) Var
    # 1/(3 n): per ReLU layer q -> q/6 + 1/(3 n), the bias floor sqrt(1/(3 n) * 6/5) remains.
    floor = math.sqrt(1 / (3 * 256) * 6 / 5)
    assert d["forward_std"][-1] == pytest.approx(floor, rel=0.25)
    # the local prediction (measured input, the formula for one layer) follows the measurement
    np.testing.assert_allclose(d["forward_std"], d["predicted_forward_std"], rtol=0.2)
    b = np.array(d["backward_std"])
    # backward: n Var(W) E[relu'^2] = 1/6 per layer, no bias floor: std ratio 6^(-11/2)
    assert abs(math.log(b[0] / b[-1]) + 11 / 2 * math.log(6)) < math.log(3)
    assert d["verdict"].startswith("shrinks") or d["verdict"].startswith("vanishes")
    merged = default.merge(kaiming)
    assert list(merged.schemes) == ["torch default", *kaiming.schemes]


def test_as_initialized_and_conv():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, 8, 3),
                          nn.Flatten(), nn.Linear(8 * 6 * 6, 5))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    d = wft.explain(model, x, seed=None).schemes["as initialized"]
    assert d["distinct_rows"] == [1, 1, 1] and d["forward_std"] == [0.0, 0.0, 0.0]
    r = wft.explain(model, x, seed=2)  # torch's laws: units differ again
    d2 = r.schemes["torch default"]
    assert d2["distinct_rows"] == [8, 8, 5]
    assert r.to_dict()["schemes"]["torch default"]["forward_std"] == d2["forward_std"]


def test_errors():
    model = mlp(depth=2, width=16)
    with pytest.raises(ValueError, match=r"example_input: Sequential failed on input of shape "
                                         r"\(4, 15\)"):
        wft.explain(model, torch.randn(4, 15), seed=0)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        wft.explain("model", torch.randn(4, 16), seed=0)
    with pytest.raises(TypeError, match="example_input must be"):
        wft.explain(model, [[1.0] * 16], seed=0)
    with pytest.raises(ValueError, match="rules need a seed"):
        wft.explain(model, torch.randn(4, 16), seed=None, rules={"*": "zeros"})
    with pytest.raises(ValueError, match="no Linear or Conv layer"):
        wft.explain(nn.ReLU(), torch.randn(4, 16), seed=0)
