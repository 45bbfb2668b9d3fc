"""The per-call fast paths of the argument layer (issue 12) change no bit and no error.

Each fast path is checked against the general path it short-cuts: the same fill through a
buffer that cannot take the fast path (a memoryview, a region covering the whole tensor, a
dtype spelled as a string), and the uncached truncated-normal constants.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
import weightfill as wf
from weightfill import _args, _truncnorm, streams

BF16 = np.dtype(ml_dtypes.bfloat16)
DTYPES = [np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16), BF16]


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(f"u{a.dtype.itemsize}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name, args", [
    ("uniform", (-1.0, 3.0)), ("normal", (0.5, 2.0)), ("truncated_normal", (0.0, 1.0, -1.0, 3.0)),
    ("kaiming_uniform", ()), ("he_normal", ()), ("glorot_uniform", ()), ("constant", (0.1,)),
])
def test_fast_and_general_paths_agree(name, args, dtype):
    fn = getattr(wf, name)
    kw = {} if name == "constant" else dict(seed=7, stream="layer.weight")
    shape = (6, 10)
    fast = np.empty(shape, dtype)
    assert fn(None, *args, out=fast, **kw) is fast
    whole = np.empty(shape, dtype)  # region= and a str dtype leave the fast path
    fn(shape, *args, dtype=str(dtype), out=whole, region=(slice(0, 6),), **kw)
    new = fn(shape, *args, dtype=dtype, **kw)
    np.testing.assert_array_equal(bits(fast), bits(whole))
    np.testing.assert_array_equal(bits(fast), bits(new))


def test_fast_flags_are_numpys():
    """_FAST_FLAGS is NumPy's C_CONTIGUOUS | ALIGNED | WRITEABLE as ndarray.flags.num shows."""
    a = np.zeros((4, 4), np.float32)
    assert a.flags.num & _args._FAST_FLAGS == _args._FAST_FLAGS
    ro = a.copy()
    ro.flags.writeable = False
    assert ro.flags.num & _args._FAST_FLAGS != _args._FAST_FLAGS
    assert a[:, ::2].flags.num & _args._FAST_FLAGS != _args._FAST_FLAGS
    misaligned = np.frombuffer(bytearray(20), np.uint8)[1:17].view(np.float32)
    assert not misaligned.flags.aligned
    assert misaligned.flags.num & _args._FAST_FLAGS != _args._FAST_FLAGS


@pytest.mark.parametrize("out, err, message", [
    (np.zeros((4, 4), np.float32)[:, ::2], ValueError, "C-contiguous"),
    (np.frombuffer(bytes(16), np.float32), ValueError, "read-only"),
    (np.frombuffer(bytearray(20), np.uint8)[1:17].view(np.float32), ValueError, "aligned"),
    (np.zeros(4, np.int32), TypeError, "dtype: int32 is not supported"),
    (np.zeros(5, np.float32), ValueError, r"out has shape \(5,\), expected \(4,\)"),
])
def test_arrays_off_the_fast_path_keep_their_errors(out, err, message):
    with pytest.raises(err, match=message):
        wf.normal((4,), seed=0, out=out)


@pytest.mark.parametrize("shape, err", [((True, 4), TypeError), ((4, -1), ValueError),
                                        ((4.0, 4), TypeError), ((2**31, 2**31, 2), ValueError)])
def test_shape_checks_survive_the_fast_path(shape, err):
    with pytest.raises(err, match=r"shape"):
        wf.normal(shape, seed=0, out=np.zeros((4, 4), np.float32))


def test_numpy_integer_seed_shape_and_stream_take_the_general_path():
    out = np.empty((3, 5), np.float32)
    wf.normal((np.int64(3), np.int32(5)), seed=np.uint64(2**63), stream=np.uint32(9), out=out)
    np.testing.assert_array_equal(bits(out), bits(wf.normal((3, 5), seed=2**63, stream=9)))
    for bad, err in [(True, TypeError), (-1, ValueError), (2**64, ValueError), (1.0, TypeError)]:
        with pytest.raises(err, match="seed"):
            wf.normal(out=out, seed=bad)
        with pytest.raises(err, match="stream"):
            wf.normal(out=out, seed=0, stream=bad)


def test_named_streams_cached_and_uncached_agree():
    class Name(str):
        pass

    assert streams.normalize_stream("enc.w") == streams.stream_id("enc.w")
    assert streams.normalize_stream(Name("enc.w")) == streams.stream_id("enc.w")
    for _ in range(2):  # an error is raised every time, never cached
        with pytest.raises(ValueError, match="UTF-8"):
            streams.normalize_stream("bad\ud800")


def _uncached(mean, std, lower, upper, dtype):
    _truncnorm._constants.cache_clear()
    _truncnorm._probabilities.cache_clear()
    return _truncnorm.constants(mean, std, lower, upper, dtype)


def _exact(values):
    return tuple(float(v).hex() for v in values)  # hex tells -0.0 from 0.0


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_signed_zero_arguments_give_the_same_constants(dtype):
    """The cache treats -0.0 and 0.0 as one key; the uncached computation agrees bit for bit."""
    base = (0.0, 0.0, 0.0, 2.0)  # std 0 and a bound at 0 are both legal
    for i in range(4):
        neg = list(base)
        neg[i] = -0.0
        if i == 3:
            base_i, neg = (0.0, 1.0, -2.0, 0.0), (0.0, 1.0, -2.0, -0.0)
        else:
            base_i = base
        assert _exact(_uncached(*base_i, dtype)) == _exact(_uncached(*neg, dtype))


def test_cached_constants_equal_a_fresh_computation():
    cases = [(0.0, 0.3, -2.0, 2.0), (1.0, 2.0, 3.0, 5.0), (0.0, 1.0, -math.inf, -5.0),
             (-3.0, 0.01, -1.0, math.inf)]
    for dtype in DTYPES:
        for case in cases:
            fresh = _uncached(*case, dtype)
            assert _exact(_truncnorm.constants(*case, dtype)) == _exact(fresh)
            assert _exact(_truncnorm.constants(*case, dtype)) == _exact(fresh)  # a cache hit
    with pytest.raises(ValueError, match="2\\*\\*-900"):  # errors are not cached away
        _truncnorm.constants(0.0, 1.0, 40.0, 41.0, DTYPES[0])
    with pytest.raises(ValueError, match="2\\*\\*-900"):
        _truncnorm.constants(0.0, 1.0, 40.0, 41.0, DTYPES[0])


def test_params_near_the_largest_value_keep_the_general_checks():
    big = float(np.finfo(np.float32).max)
    out = np.empty(8, np.float32)
    with pytest.raises(ValueError, match="high - low"):
        wf.uniform(None, -big, big, seed=0, out=out)
    wf.uniform(None, -big / 2, big / 2, seed=0, out=out)  # the fast bound: no overflow
    assert np.isfinite(out).all()
    with pytest.raises(ValueError, match="overflows float16"):
        wf.normal(None, 0.0, 70000.0, seed=0, out=np.empty(4, np.float16))
    with pytest.raises(ValueError, match="mean must be finite"):
        wf.normal(None, math.nan, seed=0, out=out)
