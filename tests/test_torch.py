"""weightfill.torch: torch's laws per module type (torch's own reset code is the oracle),
materialize, rules, tied weights, unknown modules, and the drop-in torch.nn.init."""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
import scipy.stats as st

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import weightfill as wf  # noqa: E402
import weightfill.torch as wft  # noqa: E402
from weightfill.torch import init as winit  # noqa: E402

SEED = 1234


def as_np(t):
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().copy()
    return t.numpy().copy()


def state_bits(m):
    return {k: as_np(v) for k, v in m.state_dict().items()}


def assert_same_state(a, b):
    sa, sb = state_bits(a), state_bits(b)
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and np.array_equal(
            sa[k].view(f"u{sa[k].itemsize}"), sb[k].view(f"u{sb[k].itemsize}")), k


def torch_reference(module, seed, prefix=""):
    """The module re-initialized by torch's own code: every module's reset method, children
    before parents (the order torch's constructors run them in), with torch.nn.init routed to
    weightfill and each tensor's calls on the stream named after it. torch's code decides the
    law; only the random numbers come from weightfill."""
    ref = copy.deepcopy(module)
    names = {}
    for n, t in list(ref.named_parameters()) + list(ref.named_buffers()):
        names.setdefault(id(t), ".".join(p for p in (prefix, n) if p))
    with winit.patch(), winit._named_streams(names, seed), torch.no_grad():
        for m in reversed(list(ref.modules())):
            for method in ("_reset_parameters", "reset_parameters"):
                if method in type(m).__dict__ or any(method in c.__dict__
                                                     for c in type(m).__mro__[1:-2]):
                    getattr(m, method)()
                    break
    return ref


MODULES = {
    "linear": lambda: nn.Linear(37, 19),
    "linear_nobias": lambda: nn.Linear(5, 3, bias=False),
    "linear_empty_in": lambda: nn.Linear(0, 3),
    "conv1d": lambda: nn.Conv1d(4, 6, 3),
    "conv2d_groups": lambda: nn.Conv2d(6, 9, (3, 2), groups=3),
    "conv3d": lambda: nn.Conv3d(2, 4, 2),
    "convT2d": lambda: nn.ConvTranspose2d(4, 6, 3, groups=2),
    "convT1d": lambda: nn.ConvTranspose1d(3, 5, 4),
    "bilinear": lambda: nn.Bilinear(3, 4, 5),
    "embedding": lambda: nn.Embedding(11, 6, padding_idx=3),
    "embedding_bag": lambda: nn.EmbeddingBag(9, 4, padding_idx=0),
    "layernorm": lambda: nn.LayerNorm((4, 5)),
    "layernorm_nobias": lambda: nn.LayerNorm(4, bias=False),
    "groupnorm": lambda: nn.GroupNorm(2, 6),
    "rmsnorm": lambda: nn.RMSNorm(7),
    "batchnorm2d": lambda: nn.BatchNorm2d(5),
    "instancenorm": lambda: nn.InstanceNorm1d(4, affine=True, track_running_stats=True),
    "mha_packed": lambda: nn.MultiheadAttention(8, 2, add_bias_kv=True),
    "mha_separate": lambda: nn.MultiheadAttention(8, 2, kdim=5, vdim=3),
    "mha_nobias": lambda: nn.MultiheadAttention(8, 4, bias=False),
    "rnn": lambda: nn.RNN(4, 6, 2, bidirectional=True),
    "lstm_proj": lambda: nn.LSTM(4, 6, 1, proj_size=3),
    "gru": lambda: nn.GRU(3, 5),
    "lstm_cell": lambda: nn.LSTMCell(3, 4),
    "gru_cell": lambda: nn.GRUCell(3, 4),
    "rnn_cell": lambda: nn.RNNCell(3, 4),
    "prelu": lambda: nn.PReLU(3, init=0.1),
    "encoder_layer": lambda: nn.TransformerEncoderLayer(16, 2, 32),
    "decoder_layer": lambda: nn.TransformerDecoderLayer(16, 2, 32, norm_first=True),
    "transformer": lambda: nn.Transformer(16, 2, 1, 1, 24, batch_first=True),
}


@pytest.mark.parametrize("kind", list(MODULES))
@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")  # torch's, Linear(0, 3)
def test_each_module_type_follows_torchs_own_reset_code(kind):
    m = MODULES[kind]()
    man = wft.init_module(m, seed=SEED, prefix="net")
    assert_same_state(m, torch_reference(m, SEED, prefix="net"))
    assert list(man) == ["net." + k for k in m.state_dict()]
    # Every tensor is its manifest entry's NumPy scheme call, bit for bit.
    state = m.state_dict()
    for name, e in man.items():
        assert np.array_equal(as_np(state[name[4:]]), e.tensor()), name


def test_torch_fans_and_bounds_match_torchs_functions():
    m = nn.Conv2d(6, 8, (3, 5), groups=2)
    man = wft.init_module(m, seed=0)
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
    e = man["weight"]
    assert (e.resolved["fan_in"], e.resolved["fan_out"]) == (fan_in, fan_out)
    gain = nn.init.calculate_gain("leaky_relu", math.sqrt(5))
    assert e.resolved["bound"] == math.sqrt(3.0) * gain / math.sqrt(fan_in)
    assert man["bias"].params == {"low": -1 / math.sqrt(fan_in), "high": 1 / math.sqrt(fan_in)}
    assert float(m.weight.detach().abs().max()) <= np.float32(e.resolved["bound"])


def test_laws_statistically():
    lin = nn.Linear(1024, 512)
    emb = nn.Embedding(2000, 256)
    lstm = nn.LSTM(64, 256)
    model = nn.ModuleDict({"lin": lin, "emb": emb, "lstm": lstm})
    wft.init_module(model, seed=5)
    b = 1 / math.sqrt(1024)
    w = lin.weight.detach().numpy().ravel().astype(np.float64)
    assert st.kstest(w, st.uniform(-b, 2 * b).cdf).pvalue > 1e-3
    e = emb.weight.detach().numpy().ravel().astype(np.float64)
    assert st.kstest(e, "norm").pvalue > 1e-3
    s = 1 / math.sqrt(256)
    h = lstm.weight_hh_l0.detach().numpy().ravel().astype(np.float64)
    assert st.kstest(h, st.uniform(-s, 2 * s).cdf).pvalue > 1e-3


class Block(nn.Module):
    def __init__(self, d=12):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, 3)
        self.norm = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 2 * d)


class Net(nn.Module):
    def __init__(self, extra=False, dtype=None):
        super().__init__()
        self.emb = nn.Embedding(50, 12, padding_idx=0, dtype=dtype)
        if extra:
            self.inserted = nn.Linear(12, 12, dtype=dtype)
        self.block = Block()
        self.head = nn.Linear(12, 50, bias=False, dtype=dtype)
        self.head.weight = self.emb.weight  # tied


def test_order_independence_adding_a_layer_keeps_every_other_tensor():
    a, b = Net(), Net(extra=True)
    wft.init_module(a, seed=9)
    wft.init_module(b, seed=9)
    sa, sb = state_bits(a), state_bits(b)
    assert set(sa) < set(sb)
    for k in sa:
        assert np.array_equal(sa[k], sb[k]), k


def test_tied_weights_filled_once_and_stay_tied():
    with torch.device("meta"):
        m = Net()
    man = wft.materialize(m, seed=1)
    assert m.head.weight is m.emb.weight
    assert man["emb.weight"].aliases == ("head.weight",)
    assert "head.weight" in man and man["head.weight"] is man["emb.weight"]
    assert torch.all(m.emb.weight[0] == 0)  # padding row, the embedding's law


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_materialize_equals_init_module(dtype):
    def build():
        return nn.Sequential(nn.Linear(9, 7, dtype=dtype), nn.LayerNorm(7, dtype=dtype),
                             nn.Conv2d(2, 3, 3, dtype=dtype),
                             nn.Embedding(5, 3, padding_idx=1, dtype=dtype),
                             nn.BatchNorm1d(3, dtype=dtype),
                             nn.TransformerEncoderLayer(8, 2, 16, dtype=dtype))

    cpu = build()
    with torch.device("meta"):
        meta = build()
    m1 = wft.init_module(cpu, seed=3)
    m2 = wft.materialize(meta, seed=3)
    assert m1 == m2
    assert all(not t.is_meta for t in meta.state_dict().values())
    assert_same_state(cpu, meta)
    assert m2["0.weight"].dtype == {torch.float32: "float32", torch.float16: "float16",
                                    torch.bfloat16: "bfloat16", torch.float64: "float64"}[dtype]
    out = meta[5](torch.randn(3, 2, 8, dtype=dtype))  # the materialized model runs
    assert torch.isfinite(out).all()


def test_manifest_of_a_meta_model_touches_nothing():
    with torch.device("meta"):
        m = nn.Sequential(nn.Linear(4096, 4096), nn.LayerNorm(4096))
    man = wft.manifest(m, seed=0)
    assert m[0].weight.is_meta
    assert man.nbytes == (4096 * 4096 + 4096 * 3) * 4
    cpu = nn.Sequential(nn.Linear(4096, 4096), nn.LayerNorm(4096))
    assert wft.init_module(cpu, seed=0) == man


def test_rules_first_match_wins_and_is_recorded():
    m = nn.Sequential(nn.Linear(20, 10), nn.LayerNorm(10), nn.Linear(10, 4))
    rules = {
        "2.weight": ("orthogonal", {"gain": 2.0}),
        "*.weight": ("normal", {"std": 0.02}),
        "*.bias": "zeros",
        nn.LayerNorm: "ones",  # never reached for LayerNorm's weight: "*.weight" comes first
    }
    man = wft.init_module(m, seed=4, rules=rules)
    assert man["2.weight"].source == "rule:2.weight" and man["2.weight"].scheme == "orthogonal"
    assert man["0.weight"].source == "rule:*.weight"
    assert man["1.weight"].source == "rule:*.weight"
    assert man["1.bias"].scheme == "zeros"
    np.testing.assert_array_equal(m[0].weight.detach().numpy(),
                                  wf.normal((10, 20), std=0.02, seed=4, stream="0.weight"))
    w2 = m[2].weight.detach().numpy().astype(np.float64)
    np.testing.assert_allclose(w2 @ w2.T, 4 * np.eye(4), atol=1e-5)


def test_class_rules_and_keras_family_read_torch_layout():
    m = nn.Sequential(nn.Linear(300, 50), nn.Linear(50, 10))
    man = wft.init_module(m, seed=0, rules={nn.Linear: {"weight": "he_normal", "bias": "zeros"}})
    assert man["0.weight"].params == {"layout": "torch"}
    assert man["0.weight"].source == "rule:Linear.weight"
    w = m[0].weight.detach().numpy()
    # he_normal truncates at 2 sigma with sigma = sqrt(2 / fan_in) / 0.8796, fan_in = 300
    assert abs(w).max() <= 2 * math.sqrt(2 / 300) / 0.87962566103423978 * (1 + 1e-6)
    assert abs(w.std() - math.sqrt(2 / 300)) < 0.05 * math.sqrt(2 / 300)
    assert torch.all(m[0].bias == 0)


def test_channels_last_is_filled_in_logical_order():
    a = nn.Conv2d(3, 8, 3)
    b = nn.Conv2d(3, 8, 3).to(memory_format=torch.channels_last)
    assert not b.weight.is_contiguous()
    wft.init_module(a, seed=2)
    wft.init_module(b, seed=2)
    assert torch.equal(a.weight, b.weight)
    assert not b.weight.is_contiguous()  # its layout is kept


class Custom(nn.Module):
    """A module type weightfill has no law for, with its own reset."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.empty(6, 4))
        self.offset = nn.Parameter(torch.empty(4))
        self.noise = nn.Parameter(torch.empty(3))
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.kaiming_uniform_(self.scale, a=1.0)
        nn.init.constant_(self.offset, 0.5)
        with torch.no_grad():
            self.noise.normal_()  # torch's generator, not routed


def test_unknown_module_runs_its_own_reset_on_named_streams():
    m1 = nn.ModuleDict({"c": Custom(), "l": nn.Linear(3, 3)})
    m2 = nn.ModuleDict({"x": nn.Linear(5, 5), "c": Custom()})
    man1 = wft.init_module(m1, seed=8)
    wft.init_module(m2, seed=8)
    assert torch.equal(m1["c"].scale, m2["c"].scale)
    assert torch.equal(m1["c"].noise, m2["c"].noise)  # torch's generator seeded by name
    np.testing.assert_array_equal(m1["c"].scale.detach().numpy(),
                                  wf.kaiming_uniform((6, 4), a=1.0, seed=8, stream="c.scale"))
    assert man1["c.scale"].source == "torch:Custom.reset_parameters"
    assert torch.all(m1["c"].offset == 0.5)
    # c.noise is set outside torch.nn.init: reproducible, but not in the manifest
    assert man1.unrecorded == ("c.noise",) and "c.noise" not in man1
    assert wf.Manifest.from_json(man1.to_json()).unrecorded == ("c.noise",)
    man = wft.init_module(m1, seed=8, rules={"c.noise": "zeros"})
    assert man["c.noise"].source == "rule:c.noise" and man.unrecorded == ()
    with pytest.raises(ValueError, match="c.scale"):
        wft.manifest(m1, seed=8)


class NoReset(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.empty(3))


def test_unknown_module_without_reset_is_an_error_unless_a_rule_covers_it():
    m = nn.Sequential(nn.Linear(2, 2), NoReset())
    with pytest.raises(ValueError, match=r"1\.w: no initialization .* NoReset.*give a rule"):
        wft.init_module(m, seed=0)
    man = wft.init_module(m, seed=0, rules={"*.w": ("constant", {"value": 2.0})})
    assert np.all(man["1.w"].tensor() == 2.0) and torch.all(m[1].w == 2.0)


def test_bad_arguments():
    m = nn.Linear(3, 2)
    with pytest.raises(TypeError, match="module must be a torch.nn.Module"):
        wft.init_module("linear", seed=0)
    with pytest.raises(ValueError, match="seed"):
        wft.init_module(m, seed=-1)
    with pytest.raises(TypeError, match="rules must be a mapping"):
        wft.init_module(m, seed=0, rules=["*.weight"])
    with pytest.raises(ValueError, match="unknown scheme 'kaiming_trunc'"):
        wft.init_module(m, seed=0, rules={"*": "kaiming_trunc"})
    with pytest.raises(TypeError, match="a key must be a glob pattern"):
        wft.init_module(m, seed=0, rules={3: "zeros"})
    with pytest.raises(TypeError, match=r"rules\['\*'\] must be a scheme name"):
        wft.init_module(m, seed=0, rules={"*": ("normal", 0.1)})
    with pytest.raises(ValueError, match="params may not set seed"):
        wft.init_module(m, seed=0, rules={"*": ("normal", {"seed": 1})})
    with pytest.raises(ValueError, match=r"bias .*xavier_uniform.*2 dimensions"):
        wft.init_module(m, seed=0, rules={"*": "xavier_uniform"})
    with pytest.raises(TypeError, match="prefix must be a str"):
        wft.init_module(m, seed=0, prefix=1)
    with torch.device("meta"):
        meta = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="meta device: use materialize"):
        wft.init_module(meta, seed=0)
    before = m.weight.detach().clone()
    with pytest.raises(ValueError):
        wft.init_module(m, seed=0, rules={"bias": "xavier_uniform"})
    assert torch.equal(m.weight, before)  # checked before anything was written


# ----------------------------------------------------------------------------------------------
# The drop-in torch.nn.init

SHAPE = (24, 16)


@pytest.mark.parametrize("fn,scheme,kwargs,params", [
    (winit.uniform_, "uniform", {"a": -2.0, "b": 3.0}, {"low": -2.0, "high": 3.0}),
    (winit.normal_, "normal", {"mean": 1.0, "std": 0.5}, {"mean": 1.0, "std": 0.5}),
    (winit.xavier_uniform_, "xavier_uniform", {"gain": 2.0}, {"gain": 2.0}),
    (winit.xavier_normal_, "xavier_normal", {}, {}),
    (winit.kaiming_uniform_, "kaiming_uniform", {"a": 0.2, "mode": "fan_out"},
     {"a": 0.2, "mode": "fan_out"}),
    (winit.kaiming_normal_, "kaiming_normal", {"nonlinearity": "relu"},
     {"nonlinearity": "relu"}),
    (winit.orthogonal_, "orthogonal", {"gain": 0.5}, {"gain": 0.5}),
    (winit.sparse_, "sparse", {"sparsity": 0.3}, {"sparsity": 0.3}),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_drop_in_equals_numpy_scheme(fn, scheme, kwargs, params, dtype):
    t = torch.empty(SHAPE, dtype=dtype)
    assert fn(t, **kwargs, seed=11, stream="w") is t
    ref = getattr(wf, scheme)(SHAPE, **params, seed=11, stream="w",
                              dtype=wf._args.BFLOAT16 if dtype == torch.bfloat16 else np.float32)
    assert np.array_equal(as_np(t), ref.view(np.int16) if dtype == torch.bfloat16 else ref)


def test_trunc_normal_takes_absolute_bounds():
    t = torch.empty(200_000)
    winit.trunc_normal_(t, mean=1.0, std=2.0, a=0.0, b=4.0, seed=0, stream="t")
    x = t.numpy().astype(np.float64)
    assert x.min() >= 0.0 and x.max() <= 4.0
    ref = st.truncnorm((0.0 - 1.0) / 2.0, (4.0 - 1.0) / 2.0, loc=1.0, scale=2.0)
    assert st.kstest(x, ref.cdf).pvalue > 1e-3


def test_sparse_zeros_per_column_and_orthogonal_flattens():
    t = torch.empty(10, 30)
    winit.sparse_(t, 0.25, seed=0, stream=0)
    assert ((t == 0).sum(0) == math.ceil(0.25 * 10)).all()
    w = torch.empty(4, 3, 5)
    winit.orthogonal_(w, seed=0, stream=0)
    q = w.reshape(4, -1).double()
    torch.testing.assert_close(q @ q.T, torch.eye(4, dtype=torch.float64), atol=1e-5, rtol=0)


def test_constants_eye_dirac_and_integers():
    t = torch.empty(3, 5)
    assert torch.all(winit.constant_(t, 0.3) == torch.tensor(0.3))
    assert torch.equal(winit.eye_(t), torch.eye(3, 5))
    assert torch.all(winit.ones_(t) == 1) and torch.all(winit.zeros_(t) == 0)
    d = winit.dirac_(torch.empty(4, 2, 3), groups=2)
    ref = torch.empty(4, 2, 3)
    nn.init.dirac_(ref, groups=2)
    assert torch.equal(d, ref)
    i = torch.ones(4, dtype=torch.int64)
    assert torch.all(winit.zeros_(i) == 0)


def test_views_other_layouts_parameters_and_meta():
    base = torch.zeros(8, 10)
    view = base[:, ::2]
    winit.normal_(view, seed=1, stream="v")
    assert np.array_equal(view.numpy(), wf.normal((8, 5), seed=1, stream="v"))
    assert torch.all(base[:, 1::2] == 0)
    p = nn.Parameter(torch.empty(6, 4))
    ptr = p.data_ptr()
    winit.kaiming_uniform_(p, seed=0, stream="p")
    assert p.data_ptr() == ptr and p.requires_grad and p.grad_fn is None
    m = torch.empty(3, 3, device="meta")
    assert winit.normal_(m) is m


def test_torchs_argument_checks_are_kept():
    t = torch.empty(3, 4)
    for fn in (nn.init.kaiming_uniform_, winit.kaiming_uniform_):
        with pytest.raises(ValueError):
            fn(t, mode="fan_avg")
        with pytest.raises(ValueError):
            fn(t, nonlinearity="swish")
    for fn in (nn.init.xavier_uniform_, winit.xavier_uniform_, nn.init.xavier_normal_,
               winit.xavier_normal_):
        with pytest.raises(ValueError):
            fn(torch.empty(5))
    for fn in (nn.init.eye_, winit.eye_, nn.init.sparse_, winit.sparse_):
        with pytest.raises(ValueError):
            fn(torch.empty(2, 2, 2), *([0.1] if "sparse" in fn.__name__ else []))
    for fn in (nn.init.orthogonal_, winit.orthogonal_):
        with pytest.raises(ValueError):
            fn(torch.empty(4))
    with pytest.raises(TypeError, match="tensor must be a torch.Tensor"):
        winit.normal_(np.zeros(3))
    with pytest.raises(TypeError, match="floating-point"):
        winit.normal_(torch.zeros(3, dtype=torch.int32))
    with pytest.warns(UserWarning, match="zero-element"):
        winit.kaiming_normal_(torch.empty(0, 3))
    with pytest.warns(FutureWarning, match="deprecated"):
        winit.normal(torch.empty(2), seed=0, stream=0)
    assert winit.calculate_gain("leaky_relu", 0.2) == nn.init.calculate_gain("leaky_relu", 0.2)


def test_seed_rules_call_counter_and_generators():
    t1, t2 = torch.empty(64), torch.empty(64)
    wft.manual_seed(5)
    winit.normal_(t1)
    winit.normal_(t2)
    assert np.array_equal(t1.numpy(), wf.normal(64, seed=5, stream="torch.nn.init#0"))
    assert np.array_equal(t2.numpy(), wf.normal(64, seed=5, stream="torch.nn.init#1"))
    wft.manual_seed(5)  # the counter starts afresh
    winit.normal_(t2)
    assert torch.equal(t1, t2)
    g = torch.Generator().manual_seed(77)
    winit.uniform_(t1, generator=g)
    winit.uniform_(t2, generator=g)
    wft.init._seeding.seed = None  # back to the default rule: a generator gives the seed
    g.manual_seed(77)
    a, b = torch.empty(64), torch.empty(64)
    winit.uniform_(a, generator=g)
    winit.uniform_(b, generator=g)
    assert np.array_equal(a.numpy(), wf.uniform(64, seed=77, stream="torch.nn.init#0"))
    assert np.array_equal(b.numpy(), wf.uniform(64, seed=77, stream="torch.nn.init#1"))


def test_patch_routes_construction_restores_and_nests():
    originals = {n: getattr(nn.init, n) for n in winit.REPLACED}
    from torch.nn.modules import activation, transformer

    act_copy = activation.xavier_uniform_
    with wft.patch(seed=3):
        assert nn.init.kaiming_uniform_ is winit.kaiming_uniform_
        assert activation.xavier_uniform_ is winit.xavier_uniform_
        assert transformer.xavier_uniform_ is winit.xavier_uniform_
        a = nn.Linear(16, 8)
        with wft.patch(seed=4):
            inner = nn.Linear(16, 8)
        b = nn.Linear(16, 8)
    with wft.patch(seed=3):
        a2 = nn.Linear(16, 8)
        b2 = nn.Linear(16, 8)  # the first block's inner calls did not count for the outer
    assert torch.equal(a.weight, a2.weight) and torch.equal(b.weight, b2.weight)
    assert np.array_equal(a.weight.detach().numpy(),
                          wf.kaiming_uniform((8, 16), a=math.sqrt(5), seed=3,
                                             stream="torch.nn.init#0"))
    assert np.array_equal(inner.weight.detach().numpy(),
                          wf.kaiming_uniform((8, 16), a=math.sqrt(5), seed=4,
                                             stream="torch.nn.init#0"))
    assert not torch.equal(b2.weight, a2.weight)
    assert {n: getattr(nn.init, n) for n in winit.REPLACED} == originals
    assert activation.xavier_uniform_ is act_copy
    with pytest.raises(RuntimeError, match="boom"):
        with wft.patch(seed=0):
            raise RuntimeError("boom")
    assert {n: getattr(nn.init, n) for n in winit.REPLACED} == originals
    with wft.patch(seed=0):  # a whole transformer layer constructs with weightfill
        layer = nn.TransformerEncoderLayer(16, 2, 32)
    assert layer.self_attn.in_proj_weight.abs().max() > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.Linear(2, 2)  # torch's own again
