"""CPU torch tensors as ``out=`` of every public fill (issue 12, point 1).

The oracle is weightfill's own NumPy call with the same arguments: a tensor must receive its
bits exactly (compared as integers, so NaN payloads and signed zeros count), in its own
storage (same data_ptr, the tensor itself returned), and a tensor that cannot be written gets
an error naming ``out``.
"""

from __future__ import annotations

import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import weightfill as wf  # noqa: E402
from helpers import python_calls  # noqa: E402

SEED = 20261207
STREAM = "block.0.weight"

DTYPES = {
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
    torch.float16: np.dtype(np.float16),
    torch.bfloat16: np.dtype(ml_dtypes.bfloat16),
}
INT_OF = {2: torch.int16, 4: torch.int32, 8: torch.int64}

RANDOM = dict(seed=SEED, stream=STREAM)
# (name, shape, positional args, keyword args): every public fill that takes out=.
FILLS = [
    ("uniform", (6, 10), (-0.5, 2.0), RANDOM),
    ("normal", (6, 10), (0.1, 0.7), RANDOM),
    ("truncated_normal", (6, 10), (0.0, 0.3, -2.0, 2.0), RANDOM),
    ("truncated_normal", (37,), (1.0, 2.0, 3.0, 5.0), RANDOM),
    ("sparse", (12, 7), (0.5,), RANDOM),
    ("zeros", (5, 3), (), {}),
    ("ones", (5, 3), (), {}),
    ("constant", (5, 3), (-0.25,), {}),
    ("xavier_uniform", (8, 5, 3), (1.5,), RANDOM),
    ("xavier_normal", (8, 5, 3), (), RANDOM),
    ("kaiming_uniform", (16, 9), (5 ** 0.5,), RANDOM),
    ("kaiming_normal", (16, 9), (0.0, "fan_out", "relu"), RANDOM),
    ("orthogonal", (6, 9), (), RANDOM),
    ("eye", (4, 6), (), {}),
    ("dirac", (6, 4, 3, 3), (2,), {}),
    ("variance_scaling", (3, 3, 4, 8), (2.0, "fan_avg", "uniform"), RANDOM),
    ("glorot_uniform", (9, 16), (), RANDOM),
    ("glorot_normal", (9, 16), (), RANDOM),
    ("he_uniform", (9, 16), (), RANDOM),
    ("he_normal", (9, 16), (), RANDOM),
    ("lecun_uniform", (9, 16), (), RANDOM),
    ("lecun_normal", (9, 16), (), RANDOM),
    ("identity", (5, 7), (0.5,), {}),
    ("delta_orthogonal", (3, 3, 4, 6), (), RANDOM),
]


def bits(x) -> np.ndarray:
    """The raw bits of a tensor or array, as unsigned integers."""
    if isinstance(x, torch.Tensor):
        x = x.detach().view(INT_OF[x.element_size()]).numpy()
    return x.view(f"u{x.dtype.itemsize}")


def test_every_public_fill_is_covered():
    names = {n for n, *_ in FILLS}
    expected = {n for n in wf.__all__ if n not in (
        "random_raw", "stream_id", "set_num_threads", "get_num_threads", "isa",
        "available_isas", "compute_fans", "calculate_gain", "second_moment_gain",
        "init_params", "Manifest", "TensorEntry", "save", "verify")}
    assert names == expected


@pytest.mark.parametrize("tdtype", list(DTYPES), ids=str)
@pytest.mark.parametrize("name, shape, args, kwargs", FILLS, ids=[f[0] for f in FILLS])
def test_tensor_out_bits_equal_numpy_call(name, shape, args, kwargs, tdtype):
    fn = getattr(wf, name)
    expected = fn(shape, *args, dtype=DTYPES[tdtype], **kwargs)
    t = torch.full(shape, float("nan"), dtype=tdtype)
    ptr = t.data_ptr()
    got = fn(shape, *args, out=t, **kwargs)
    assert got is t
    assert t.data_ptr() == ptr and t.dtype == tdtype and tuple(t.shape) == shape
    np.testing.assert_array_equal(bits(t), bits(expected))
    # shape=None: the tensor's own shape and dtype
    t2 = torch.empty(shape, dtype=tdtype)
    assert fn(None, *args, out=t2, **kwargs) is t2
    np.testing.assert_array_equal(bits(t2), bits(expected))


@pytest.mark.parametrize("tdtype", list(DTYPES), ids=str)
def test_parameter_with_requires_grad(tdtype):
    p = torch.nn.Parameter(torch.zeros(32, 16, dtype=tdtype))
    ptr = p.data_ptr()
    assert wf.kaiming_uniform(None, 5 ** 0.5, seed=SEED, stream=STREAM, out=p) is p
    assert wf.he_normal(None, seed=SEED, stream=STREAM, out=p) is p
    expected = wf.he_normal((32, 16), seed=SEED, stream=STREAM, dtype=DTYPES[tdtype])
    np.testing.assert_array_equal(bits(p), bits(expected))
    assert p.requires_grad and p.is_leaf and p.grad is None and p.data_ptr() == ptr
    (p.float() * 2).sum().backward()  # autograd still works on the filled parameter
    assert torch.equal(p.grad, torch.full_like(p, 2))


def test_region_into_a_slab_of_a_larger_tensor():
    full = wf.normal((10, 6), 0.0, 1.0, seed=SEED, stream=STREAM)
    big = torch.zeros(10, 6)
    slab = big[3:7]  # a contiguous view with a storage offset
    assert wf.normal((10, 6), seed=SEED, stream=STREAM, region=(slice(3, 7),), out=slab) is slab
    np.testing.assert_array_equal(bits(big[3:7]), bits(full[3:7]))
    assert not big[:3].any() and not big[7:].any()


@pytest.mark.parametrize("shape", [(), (0,), (0, 4), (1, 1)])
def test_empty_and_scalar_tensors(shape):
    t = torch.empty(shape)
    assert wf.normal(None, seed=SEED, out=t) is t
    np.testing.assert_array_equal(bits(t), bits(wf.normal(shape, seed=SEED)))


def _neg_view():
    return torch._neg_view(torch.zeros(4))


BAD = [
    ("transposed", lambda: torch.zeros(4, 3).t(), ValueError, "out must be a contiguous"),
    ("strided slice", lambda: torch.zeros(4, 6)[:, ::2], ValueError, "out must be a contiguous"),
    ("channels_last", lambda: torch.zeros(2, 3, 4, 4).to(memory_format=torch.channels_last),
     ValueError, "out must be a contiguous"),
    ("meta device", lambda: torch.zeros(4, device="meta"), ValueError, "out is on device meta"),
    ("int32", lambda: torch.zeros(4, dtype=torch.int32), TypeError, "out has dtype torch.int32"),
    ("int64", lambda: torch.zeros(4, dtype=torch.int64), TypeError, "out has dtype torch.int64"),
    ("bool", lambda: torch.zeros(4, dtype=torch.bool), TypeError, "out has dtype torch.bool"),
    ("float8", lambda: torch.zeros(4, dtype=torch.float8_e4m3fn), TypeError,
     "out has dtype torch.float8_e4m3fn"),
    ("complex conj", lambda: torch.zeros(4, dtype=torch.complex64).conj(), TypeError,
     "out has dtype torch.complex64"),
    ("sparse", lambda: torch.zeros(4, 4).to_sparse(), TypeError, "out has layout torch.sparse_coo"),
    ("negative view", _neg_view, ValueError, "out is a lazily negated view"),
]


@pytest.mark.parametrize("what, make, err, message", BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("name", ["normal", "kaiming_uniform", "he_normal", "zeros", "eye",
                                  "orthogonal"])
def test_unwritable_tensors_get_an_error_naming_out(what, make, err, message, name):
    t = make()
    before = t.clone() if t.layout == torch.strided and t.device.type == "cpu" else None
    kw = {} if name in ("zeros", "eye") else dict(seed=SEED)
    shape = tuple(t.shape) if t.dim() >= 2 else (2, 2)
    with pytest.raises(err, match=message):
        getattr(wf, name)(shape, out=t, **kw)
    if before is not None and before.dtype.is_floating_point:
        assert torch.equal(t.resolve_neg(), before.resolve_neg())  # nothing written


def test_shape_and_dtype_mismatches_name_out():
    t = torch.zeros(4, 5)
    with pytest.raises(ValueError, match=r"out has shape \(4, 5\), expected \(5, 4\)"):
        wf.normal((5, 4), seed=SEED, out=t)
    with pytest.raises(TypeError, match="out has dtype float32, expected float64"):
        wf.normal(None, seed=SEED, dtype=np.float64, out=t)
    assert not t.any()


def test_import_weightfill_does_not_import_torch():
    code = ("import sys, numpy as np, weightfill as wf; wf.normal(None, seed=0, "
            "out=np.zeros(4, np.float32)); print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_weightfill_torch_shares_the_view():
    """weightfill.torch's numpy_view is the out= implementation (one code path)."""
    from weightfill import _backends
    from weightfill.torch import _tensors

    t = torch.zeros(3, 4, dtype=torch.bfloat16)
    v = _tensors.numpy_view(t)
    assert v.dtype == np.dtype(ml_dtypes.bfloat16) and v.ctypes.data == t.data_ptr()
    assert _backends.array_view(t).ctypes.data == t.data_ptr()


# (16-bit uniforms and constants take the Python path, as with a NumPy out=.)
C_TENSOR_CALLS = [(name, args, tdtype)
                  for name, args in [("normal", (0.1, 0.7)), ("uniform", (-1.0, 1.0)),
                                     ("kaiming_normal", ()), ("he_normal", ()), ("zeros", ())]
                  for tdtype in (torch.float32, torch.float64, torch.bfloat16)
                  if not (tdtype is torch.bfloat16 and name in ("uniform", "zeros"))]


@pytest.mark.parametrize("name, args, tdtype", C_TENSOR_CALLS, ids=str)
def test_plain_tensor_calls_fill_in_c_through_the_view(name, args, tdtype):
    """A FastEntry takes a tensor `out` through _backends.array_view (its checks) and fills
    the view in C: no Python code of the fill itself runs, and the tensor is returned."""
    fn = getattr(wf, name)
    kw = {} if name == "zeros" else dict(seed=SEED, stream=STREAM)
    expected = fn((8, 6), *args, dtype=DTYPES[tdtype], **kw)  # a scheme memoizes here
    t = torch.nn.Parameter(torch.full((8, 6), float("nan"), dtype=tdtype))
    got, ran = python_calls(fn, t.shape, *args, out=t, **kw)  # a torch.Size: a tuple subclass
    assert got is t
    assert set(ran) <= {"array_view", "_torch_view", "torch_storage_view"}, ran
    np.testing.assert_array_equal(bits(t), bits(expected))


def test_an_interrupt_while_viewing_a_tensor_propagates():
    """The view is made by Python code; an Exception there hands the call to the Python
    function (which raises it, naming out), but a KeyboardInterrupt is not swallowed."""
    class Flaky(torch.Tensor):
        raised = False

        @property
        def layout(self):
            if not Flaky.raised:
                Flaky.raised = True
                raise KeyboardInterrupt
            return torch.strided

    t = torch.zeros(4, 4).as_subclass(Flaky)
    with pytest.raises(KeyboardInterrupt):
        wf.normal(None, seed=SEED, out=t)
    assert wf.normal(None, seed=SEED, out=t) is t  # the next access succeeds


def test_torch_size_shapes_key_the_memo_as_tuples():
    from weightfill import _engine

    assert _engine.memo_key("s", torch.Size([4, 6]), 1.0) == _engine.memo_key("s", (4, 6), 1.0)
    assert type(_engine.memo_key("s", torch.Size([4, 6]))[1]) is tuple

    class Loose(tuple):
        def __eq__(self, other):
            return True

        __hash__ = tuple.__hash__

    assert _engine.memo_key("s", Loose((4, 6))) is None
    # such a shape still works, through the Python checks
    got, ran = python_calls(wf.kaiming_uniform, Loose((4, 6)), seed=SEED,
                             out=torch.empty(4, 6))
    assert ran and np.array_equal(got.numpy(), wf.kaiming_uniform((4, 6), seed=SEED))


def test_a_region_call_views_the_tensor_once():
    """A call the C path refuses anyway (region=) goes straight to the Python function, which
    makes the tensor's view: once, not also in the entry."""
    t = torch.empty(3, 6)
    got, ran = python_calls(wf.normal, (6, 6), seed=SEED, out=t,
                            region=(slice(3, 6), slice(None)))
    assert got is t and ran.count("array_view") == 1
    np.testing.assert_array_equal(t.numpy(), wf.normal((6, 6), seed=SEED)[3:])
