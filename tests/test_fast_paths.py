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
from helpers import python_calls
from weightfill import _args, _engine, _truncnorm, streams

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


_FRESH = iter(range(10**9))


@pytest.mark.parametrize("call", ["normal", "he_uniform", "sparse", "raw", "truncated"])
def test_a_new_stream_name_stays_on_the_c_path(call):
    """A name not in the cache of named streams is hashed (streams._named_stream; besides it
    only the Python shells of sparse and random_raw run, which call C first) and the call goes
    on in C, with the values of the name's stream_id."""
    name = f"fresh.{call}.{next(_FRESH)}"
    assert name not in streams._NAMED
    sid = streams.stream_id(name)
    fills = {
        "normal": lambda s: wf.normal(None, seed=5, stream=s, out=np.empty((3, 4), np.float32)),
        "he_uniform": lambda s: wf.he_uniform((3, 4), seed=5, stream=s,
                                              out=np.empty((3, 4), np.float64)),
        "sparse": lambda s: wf.sparse((6, 4), 0.5, seed=5, stream=s),
        "raw": lambda s: wf.random_raw(9, seed=5, stream=s),
        "truncated": lambda s: wf.truncated_normal(None, seed=5, stream=s,
                                                   out=np.empty((3, 4), np.float32)),
    }
    fills[call](name)  # warms the scheme memo and the truncated constants, not the name
    streams._NAMED.pop(name)
    got, ran = python_calls(fills[call], name)
    shell = {"sparse": ["sparse"], "raw": ["random_raw"]}.get(call, [])
    assert ran == ["<lambda>", *shell, "_named_stream", "stream_id"]
    assert streams._NAMED[name] == sid
    np.testing.assert_array_equal(bits(got), bits(fills[call](sid)))


def test_a_new_stream_name_with_no_utf8_form_is_refused_every_time():
    out = np.empty(4, np.float32)
    for _ in range(2):
        with pytest.raises(ValueError, match="UTF-8"):
            wf.normal(None, seed=0, stream="new\ud800", out=out)
    assert "new\ud800" not in streams._NAMED


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


# ----------------------------------------------------------------------------------------------
# The whole-array fast path in C (_core.fill_whole): the same bits as the Python path, and every
# call it does not take left to the Python checks.

KINDS = {"uniform": _engine.UNIFORM, "normal": _engine.NORMAL,
         "truncated_normal": _engine.TRUNCATED_NORMAL, "constant": _engine.CONSTANT}


def _python_path(name, shape, args, dtype, **kw):
    """The same fill through the Python checks and _core.fill: a region covering the whole
    tensor never takes the fast path."""
    whole = np.empty(shape, dtype)
    getattr(wf, name)(shape, *args, dtype=dtype, out=whole, region=(slice(None),), **kw)
    return whole


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n", [1, 7, 256, (1 << 14) - 1, (1 << 14) + 5, 300_001])
@pytest.mark.parametrize("name, args", [
    ("uniform", (-1.5, 3.0)), ("uniform", (0, 1)), ("normal", (0.5, 2.0)), ("normal", (-3, 0)),
    ("truncated_normal", (0.0, 1.0, -2.0, 2.0)), ("truncated_normal", (1.0, 0.5, 3.0, 5.0)),
    ("constant", (0.1,)), ("constant", (-7,)),
])
def test_fill_whole_writes_the_python_paths_bits(name, args, n, dtype):
    """Sizes on both sides of the direct (GIL held) / plan (threads) split at 2**14."""
    kw = {} if name == "constant" else dict(seed=2**63 + 11, stream="fast.path.weight")
    expect = _python_path(name, (n,), args, dtype, **kw)
    out = np.full(n, np.nan, dtype)
    assert getattr(wf, name)(None, *args, out=out, **kw) is out
    np.testing.assert_array_equal(bits(out), bits(expect))
    # Did that call take the fast path? (16-bit uniforms and constants take the Python one.)
    direct_ok = not (dtype.itemsize == 2 and name in ("uniform", "constant"))
    if name == "truncated_normal":
        extra = _truncnorm._KNOWN.get((*args, dtype))
        assert extra is not None  # remembered by the calls above
        a, b = args[:2]
    else:
        extra, (a, b) = (), (tuple(args) + (0.0,))[:2]
    again = np.full(n, np.nan, dtype)
    seed, stream = kw.get("seed", 0), kw.get("stream", 0)
    got = _engine.fill_whole(KINDS[name], (n,), a, b, seed, stream, None, again, None, extra)
    if direct_ok:
        assert got is again
        np.testing.assert_array_equal(bits(again), bits(expect))
    else:
        assert got is None and np.isnan(again.astype(np.float32)).all()


def test_fill_whole_takes_nd_arrays_and_matching_shape_and_dtype_arguments():
    out = np.empty((3, 4, 5), np.float32)
    expect = wf.normal((3, 4, 5), seed=1, stream=2)
    for shape, dtype in [(None, None), ((3, 4, 5), None), ((3, 4, 5), np.float32),
                         (None, np.dtype(np.float32))]:
        out[...] = np.nan
        assert _engine.fill_whole(_engine.NORMAL, shape, 0.0, 1.0, 1, 2, dtype, out, None,
                                  ()) is out
        np.testing.assert_array_equal(out, expect)


@pytest.mark.parametrize("change, where", [
    # (how the call differs from a plain one, what the Python path says about it)
    (dict(seed=True), "seed"), (dict(seed=-1), "seed"), (dict(seed=2**64), "seed"),
    (dict(seed=np.uint64(3)), None), (dict(seed=None), None),
    (dict(stream=-5), "stream"), (dict(stream=2**64), "stream"), (dict(stream=1.0), "stream"),
    (dict(stream="a.name with no UTF-8 form \ud800"), "UTF-8"), (dict(stream=np.int32(4)), None),
    (dict(a=float("nan")), "mean"), (dict(a=float("inf")), "mean"), (dict(a=True), "mean"),
    (dict(a=10**400), "mean"), (dict(a=np.float64(0.5)), None),
    (dict(b=-1.0), "std"), (dict(b=3e38), "std"), (dict(b=6e37), "overflow"),
    (dict(shape=(4, 5)), "shape"), (dict(shape=(4.0, 6)), "shape"),
    (dict(shape=(True, 6)), "shape"),
    (dict(shape=[4, 6]), None), (dict(shape=(np.int64(4), 6)), None), (dict(shape=24), "shape"),
    (dict(dtype=np.float64), "dtype"), (dict(dtype="float32"), None),
    (dict(region=(slice(0, 4),)), None),
    (dict(out="strided"), "C-contiguous"), (dict(out="readonly"), "read-only"),
    (dict(out="swapped"), "dtype"), (dict(out="int32"), "dtype"), (dict(out="list"), "out"),
])
def test_fill_whole_leaves_every_other_call_to_the_python_checks(change, where):
    """fill_whole returns None (writing nothing) for any call that is not plainly valid; the
    public function then raises its own error (`where` is in the message) or, for a valid but
    unusual call, writes the Python path's values."""
    base = np.zeros((4, 6), np.float32)
    outs = {"strided": np.zeros((4, 12), np.float32)[:, ::2],
            "readonly": np.frombuffer(bytes(96), np.float32).reshape(4, 6),
            "swapped": np.zeros((4, 6), ">f4"), "int32": np.zeros((4, 6), np.int32),
            "list": [[0.0] * 6] * 4}
    call = dict(shape=None, a=0.0, b=1.0, seed=0, stream=0, dtype=None, out=base, region=None)
    call.update(change)
    if isinstance(call["out"], str):
        call["out"] = outs[call["out"]]
    before = np.array(call["out"], copy=True)
    args = [call[k] for k in ("shape", "a", "b", "seed", "stream", "dtype", "out", "region")]
    assert _engine.fill_whole(_engine.NORMAL, *args, ()) is None
    np.testing.assert_array_equal(np.asarray(call["out"]), before)
    kw = dict(seed=call["seed"], stream=call["stream"], dtype=call["dtype"], out=call["out"],
              region=call["region"])
    if where is None:
        if call["seed"] is None:
            return  # fresh entropy: nothing to compare with
        got = wf.normal(call["shape"] if call["region"] is None else (4, 6), call["a"],
                        call["b"], **kw)
        expect = wf.normal((4, 6), float(call["a"]), call["b"], seed=int(call["seed"]),
                           stream=call["stream"] if isinstance(call["stream"], str)
                           else int(call["stream"]))[call["region"] or ...]
        np.testing.assert_array_equal(np.asarray(got), expect)
    else:
        with pytest.raises((TypeError, ValueError), match=where):
            wf.normal(call["shape"], call["a"], call["b"], **kw)


@pytest.mark.parametrize("low, high, expect", [
    (0.0, 0.0, 0.0), (-0.0, -0.0, 0.0), (-0.0, 0.0, 0.0), (0.0, -0.0, None),
    (-1e-46, -1e-46, 0.0), (-1e-46, 1e-46, 0.0), (-1e-40, -1e-40, -1e-40), (2.5, 2.5, 2.5),
])
def test_fill_whole_uniform_zero_width_and_signed_zeros(low, high, expect):
    """Stream-spec 3.1: low == high gives +0.0 for zeros of either sign (also after rounding
    to float32); 0.0 > -0.0 is not an error (they are equal)."""
    for dtype in (np.float32, np.float64):
        fast = np.full(8, np.nan, dtype)
        wf.uniform(None, low, high, seed=0, out=fast)
        slow = _python_path("uniform", (8,), (low, high), np.dtype(dtype), seed=0)
        np.testing.assert_array_equal(bits(fast), bits(slow))
        if expect is not None and dtype == np.float32:
            np.testing.assert_array_equal(bits(fast), bits(np.full(8, expect, dtype)))


def test_fill_whole_steps_aside_inside_deferred_blocks():
    out = np.zeros(16, np.float32)
    with _engine.deferred():
        assert _engine.fill_whole(_engine.NORMAL, None, 0.0, 1.0, 0, 0, None, out, None,
                                  ()) is None
        wf.normal(None, seed=0, out=out)  # recorded in the plan, not yet run
        assert not out.any()
        with _engine.deferred():  # nested: still the Python path
            assert _engine.fill_whole(_engine.NORMAL, None, 0.0, 1.0, 0, 0, None, out, None,
                                      ()) is None
    np.testing.assert_array_equal(out, wf.normal(16, seed=0))
    with pytest.raises(RuntimeError):
        with _engine.deferred():
            raise RuntimeError
    # every block closed, also the one that raised: the fast path is back
    assert _engine.fill_whole(_engine.NORMAL, None, 0.0, 1.0, 0, 0, None, out, None,
                              ()) is out


def test_fill_whole_in_threads_gives_each_call_its_values():
    from concurrent.futures import ThreadPoolExecutor

    def job(i):
        out = np.empty(5000 + i, np.float32)
        wf.normal(None, seed=i, stream=f"t{i % 3}", out=out)
        return np.array_equal(out, wf.normal(5000 + i, seed=i, stream=f"t{i % 3}"))

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(job, range(64)))


@pytest.mark.parametrize("scheme, plain, bad, err", [
    ("kaiming_uniform", dict(a=1), dict(a=True), TypeError),
    ("kaiming_normal", dict(a=1), dict(a=True), TypeError),
    ("xavier_uniform", dict(gain=1), dict(gain=True), TypeError),
    ("xavier_normal", dict(gain=1), dict(gain=True), TypeError),
    ("variance_scaling", dict(scale=1), dict(scale=True), TypeError),
    ("kaiming_uniform", dict(transposed=False), dict(transposed=0), TypeError),
    ("glorot_uniform", dict(in_axis=-2), dict(in_axis=-2.0), TypeError),
])
def test_memoized_schemes_still_refuse_what_the_full_checks_refuse(scheme, plain, bad, err):
    """A derivation is memoized by the scheme's arguments; arguments equal to a memoized call's
    but of a refused type (True == 1, 0 == False, -2.0 == -2, (4.0, 6) == (4, 6)) still fail."""
    fn = getattr(wf, scheme)
    out = np.empty((4, 6), np.float32)
    for _ in range(2):  # the second call is a memo hit
        assert fn((4, 6), seed=0, stream="w", out=out, **plain) is out
    with pytest.raises(err):
        fn((4, 6), seed=0, stream="w", out=out, **bad)
    with pytest.raises(TypeError, match="shape"):
        fn((4.0, 6), seed=0, stream="w", out=out, **plain)


@pytest.mark.parametrize("scheme", ["xavier_uniform", "xavier_normal", "kaiming_uniform",
                                    "kaiming_normal", "he_normal", "glorot_uniform",
                                    "lecun_normal", "variance_scaling"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_memoized_scheme_calls_equal_their_first_call(scheme, dtype):
    from weightfill.schemes import _common

    fn = getattr(wf, scheme)
    first = fn((5, 7), seed=3, stream="m.w", dtype=dtype)  # a new array: derives and memoizes
    assert any(k[0] in (scheme, "variance_scaling") and k[1] == (5, 7) for k in _common._MEMO)
    for _ in range(2):
        out = np.full((5, 7), np.nan, dtype)
        assert fn((5, 7), seed=3, stream="m.w", out=out) is out
        np.testing.assert_array_equal(bits(out), bits(first))
    # a different shape with the same fans is a different key, not a stale hit
    other = fn((7, 5), seed=3, stream="m.w", dtype=dtype)
    np.testing.assert_array_equal(bits(other), bits(fn((7, 5), seed=3, stream="m.w",
                                                      out=np.empty((7, 5), dtype))))


SCHEMES = ["xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
           "variance_scaling", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
           "lecun_uniform", "lecun_normal"]


@pytest.mark.parametrize("name", SCHEMES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_scheme_entries_fill_memo_hits_in_c(name, dtype):
    """A scheme's first call derives in Python and memoizes; the same call into a whole array
    then runs no Python code at all (its FastEntry builds the key and fills in C), with the
    first call's bits."""
    fn = getattr(wf, name)
    first = fn((5, 7), seed=3, stream="hit.w", dtype=dtype)
    out = np.full((5, 7), np.nan, dtype)
    fn((5, 7), seed=3, stream="hit.w", out=out)  # a 16-bit truncated normal records constants
    out[...] = np.nan
    got, ran = python_calls(fn, (5, 7), seed=3, stream="hit.w", out=out)
    assert got is out
    if dtype.itemsize == 2 and name.endswith("uniform"):
        assert ran  # 16-bit uniforms need their ceiling from Python (as fill_whole's do)
    else:
        assert ran == []
    np.testing.assert_array_equal(bits(out), bits(first))


def test_presets_share_variance_scalings_memo():
    out = np.empty((6, 3), np.float32)
    expect = wf.variance_scaling((6, 3), 2.0, "fan_in", "uniform", seed=1)
    got, ran = python_calls(wf.he_uniform, (6, 3), seed=1, out=out)
    assert ran == [] and np.array_equal(got, expect)
    wf.lecun_normal((3, 6), seed=1)
    got, ran = python_calls(wf.variance_scaling, (3, 6), 1.0, "fan_in", "truncated_normal",
                             seed=1, out=out.reshape(3, 6))
    assert ran == [] and np.array_equal(got, wf.lecun_normal((3, 6), seed=1))


@pytest.mark.parametrize("call", [
    dict(in_axis=(0,)), dict(batch_axis=[]), dict(in_axis=np.int64(0)), dict(shape=None),
    dict(shape=[4, 6]), dict(region=(slice(0, 4),)), dict(dtype="float32"), dict(seed=None),
])
def test_scheme_entries_leave_calls_with_other_arguments_to_python(call):
    """Only atoms go into a memo key; any other argument, a shape that is not a tuple, and the
    calls fill_whole refuses run the scheme's Python function (and it gives their values)."""
    wf.glorot_uniform((4, 6), seed=0)  # memoized
    kw = dict(shape=(4, 6), seed=0, out=np.empty((4, 6), np.float32))
    kw.update(call)
    got, ran = python_calls(wf.glorot_uniform, kw.pop("shape"), **kw)
    assert ran
    if call.get("seed", 0) is not None and "in_axis" not in call:
        np.testing.assert_array_equal(got, wf.glorot_uniform((4, 6), seed=0))


def test_memo_lookups_survive_a_shape_that_empties_the_memo():
    """Hashing and comparing the key runs the shape's elements' __hash__/__eq__; one that
    clears the memo must not leave the lookup holding a freed entry."""
    from weightfill.schemes import _common

    class Evil(int):
        def __hash__(self):
            return hash(6)

        def __eq__(self, other):
            _common._MEMO.clear()
            return int(self) == other

    expect = wf.xavier_uniform((6, 9), seed=1, stream="mf.e")  # memoized
    got = wf.xavier_uniform((Evil(6), 9), seed=1, stream="mf.e", out=np.empty((6, 9), np.float32))
    np.testing.assert_array_equal(got, expect)


def test_memo_keys_hold_atoms_and_their_types():
    assert _engine.memo_key("s", (2, 3), 1, 1.0, True, None, "a", ()) == (
        "s", (2, 3), 1, int, 1.0, float, True, bool, None, type(None), "a", str, (), tuple)
    for bad in [(0,), [], np.float64(1.0), np.int64(1), type("S", (str,), {})("a")]:
        assert _engine.memo_key("s", (2, 3), bad) is None
    assert _engine.memo_key("s", [2, 3]) is None and _engine.memo_key("s", None) is None


# ----------------------------------------------------------------------------------------------
# sparse's fast path in C (_core.sparse_whole): small whole arrays, the same bits as Python's.

def _sparse_python(shape, dtype, **kw):
    whole = np.empty(shape, dtype)
    return wf.sparse(shape, dtype=dtype, out=whole, region=(slice(None),), **kw)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(1, 1), (4, 4), (16, 16), (3, 70), (70, 3), (128, 127),
                                   (1, (1 << 14) - 1), (128, 128)])
@pytest.mark.parametrize("kw", [dict(sparsity=0.5), dict(sparsity=0.1), dict(sparsity=0.95),
                                dict(sparsity=0), dict(sparsity=1), dict(nonzeros=1),
                                dict(sparsity=0.3, axis=1), dict(sparsity=0.3, axis=-1),
                                dict(sparsity=0.7, axis=-2, method="keys"),
                                dict(nonzeros=0, axis=1, method="keys"),
                                dict(sparsity=0.5, std=0.0)])
def test_sparse_whole_writes_the_python_paths_bits(kw, shape, dtype):
    kw = dict(kw, seed=2**64 - 1, stream="sparse.fast")
    if kw.get("nonzeros") == 1 and shape[kw.get("axis", 0)] < 1:
        pytest.skip("no line to hold a non-zero")
    expect = _sparse_python(shape, dtype, **kw)
    out = np.full(shape, np.nan, dtype)
    assert wf.sparse(None, out=out, **kw) is out
    np.testing.assert_array_equal(bits(out), bits(expect))
    # that call's arguments are ones sparse_whole takes below 2**14 elements (and only there)
    again = np.full(shape, np.nan, dtype)
    got = _engine.sparse_whole(shape, kw.get("sparsity"), kw.get("nonzeros"),
                               kw.get("std", 0.01), kw.get("axis", 0), kw["seed"], kw["stream"],
                               None, again, None, kw.get("method", "floyd"))
    if again.size < 1 << 14:
        assert got is again
        np.testing.assert_array_equal(bits(again), bits(expect))
    else:
        assert got is None and np.isnan(again.astype(np.float32)).all()


@pytest.mark.parametrize("change, where", [
    (dict(sparsity=None), "exactly one"), (dict(nonzeros=3), "exactly one"),
    (dict(sparsity=None, nonzeros=7), "nonzeros"), (dict(sparsity=None, nonzeros=-1), "nonzeros"),
    (dict(sparsity=None, nonzeros=True), "nonzeros"),
    (dict(sparsity=None, nonzeros=np.int64(2)), None),
    (dict(sparsity=1.5), "sparsity"), (dict(sparsity=-0.1), "sparsity"),
    (dict(sparsity=float("nan")), "sparsity"), (dict(sparsity=True), "sparsity"),
    (dict(sparsity=np.float32(0.25)), None), (dict(sparsity="0.5"), "sparsity"),
    (dict(std=-1.0), "std"), (dict(std=float("inf")), "std"), (dict(std=1e38), "overflow"),
    (dict(std=np.float64(0.5)), None),
    (dict(axis=2), "axis"), (dict(axis=-3), "axis"), (dict(axis=1.0), "axis"),
    (dict(axis=np.int64(1)), None), (dict(axis=True), "axis"),
    (dict(method="Floyd"), "method"), (dict(method=0), "method"),
    (dict(seed=-1), "seed"), (dict(seed=None), None), (dict(stream=1.5), "stream"),
    (dict(stream="sparse, no UTF-8 form \ud800"), "UTF-8"),
    (dict(shape=(6, 5)), "shape"), (dict(shape=(5.0, 6)), "shape"), (dict(shape=[5, 6]), None),
    (dict(dtype=np.float64), "dtype"), (dict(dtype="float32"), None),
    (dict(shape=(5, 6), region=(slice(0, 5), slice(0, 6))), None),
    (dict(out="3d"), "2-D"), (dict(out="strided"), "C-contiguous"), (dict(out="int32"), "dtype"),
])
def test_sparse_whole_leaves_every_other_call_to_the_python_checks(change, where):
    base = np.zeros((5, 6), np.float32)
    outs = {"3d": np.zeros((5, 6, 1), np.float32), "strided": np.zeros((5, 12), np.float32)[:, ::2],
            "int32": np.zeros((5, 6), np.int32)}
    call = dict(shape=None, sparsity=0.5, nonzeros=None, std=0.01, axis=0, seed=0, stream=0,
                dtype=None, out=base, region=None, method="floyd")
    call.update(change)
    if isinstance(call["out"], str):
        call["out"] = outs[call["out"]]
    before = np.array(call["out"], copy=True)
    assert _engine.sparse_whole(*call.values()) is None
    np.testing.assert_array_equal(call["out"], before)
    shape = call.pop("shape")
    if where is None:
        got = wf.sparse(shape, **call)
        if call["seed"] is not None:
            sparsity, nonzeros = call["sparsity"], call["nonzeros"]
            plain = dict(call, sparsity=None if sparsity is None else float(sparsity),
                         nonzeros=None if nonzeros is None else int(nonzeros),
                         std=float(call["std"]), axis=int(call["axis"]), dtype=None, out=None,
                         region=None)
            np.testing.assert_array_equal(got, wf.sparse((5, 6), **plain)[call["region"] or ...])
    else:
        with pytest.raises((TypeError, ValueError), match=where):
            wf.sparse(shape, **call)


def test_sparse_whole_steps_aside_inside_deferred_blocks():
    out = np.zeros((8, 8), np.float32)
    with _engine.deferred():
        assert _engine.sparse_whole(None, 0.5, None, 0.01, 0, 0, 0, None, out, None,
                                    "floyd") is None
    assert _engine.sparse_whole(None, 0.5, None, 0.01, 0, 0, 0, None, out, None,
                                "floyd") is out
    np.testing.assert_array_equal(out, wf.sparse((8, 8), 0.5, seed=0))


# ----------------------------------------------------------------------------------------------
# FastEntry (_engine.fast_entry): uniform, normal, constant, zeros and ones bind their arguments
# in C; every call the whole-array path does not take reaches the Python function unchanged.

ENTRIES = [wf.uniform, wf.normal, wf.truncated_normal, wf.constant, wf.zeros, wf.ones, wf.eye,
           wf.identity, wf.dirac] + [getattr(wf, n) for n in SCHEMES]


def _recording(kind, **roles):
    """A fast entry around a Python function that records that it ran."""
    calls = []

    @_engine.fast_entry(kind, **roles)
    def fill(shape=None, mean=0.0, std=1.0, *, seed, stream=0, dtype=None, out=None,
             region=None):
        """A test fill."""
        calls.append((shape, mean, std, seed, stream, dtype, out, region))
        return "python"

    return fill, calls


@pytest.mark.parametrize("fn", ENTRIES, ids=lambda f: f.__name__)
def test_fast_entries_look_like_their_functions(fn):
    import inspect
    import pickle

    assert isinstance(fn, _engine._core.FastEntry)
    py = fn.__wrapped__
    assert inspect.isfunction(py) and fn.__name__ == py.__name__ == fn.__qualname__
    assert fn.__module__ == py.__module__ and fn.__doc__ == py.__doc__
    assert inspect.signature(fn) == inspect.signature(py)
    assert inspect.isroutine(fn) and repr(fn) == repr(py)
    assert pickle.loads(pickle.dumps(fn)) is fn  # by reference, as a function

    class Holder:  # a class attribute stays unbound, like a builtin
        f = fn

    assert Holder().f is fn


def test_fast_entry_takes_plain_calls_in_c_and_passes_the_rest_on_unchanged():
    fill, calls = _recording(_engine.NORMAL, a="mean", b="std")
    out = np.full((3, 4), np.nan, np.float32)
    expect = wf.normal((3, 4), 0.5, 2.0, seed=9, stream="e.w")
    for args, kw in [((None, 0.5, 2.0), {}), ((None, 0.5), dict(std=2.0)),
                     ((), dict(std=2.0, mean=0.5)), (((3, 4), 0.5, 2.0), dict(dtype=np.float32))]:
        out[...] = np.nan
        assert fill(*args, seed=9, stream="e.w", out=out, **kw) is out
        np.testing.assert_array_equal(out, expect)
    assert calls == []
    stay = np.zeros((3, 4), np.float32)
    for args, kw in [((None,), dict(seed=None)), ((None, 0.5, -1.0), dict(seed=0)),
                     (((3, 4),), dict(seed=0, region=(slice(0, 3),))),
                     ((None,), dict(seed=0, dtype="float32")), ((None, True), dict(seed=0))]:
        assert fill(*args, out=stay, **kw) == "python"
        assert calls[-1][6] is stay and calls[-1][:2] == ((args + (0.0,))[:2])
    assert not stay.any()  # nothing was written by the C side
    # argument errors are the Python function's own
    for args, kw in [((), {}), ((None, 0.0, 1.0, 5), dict(seed=0)),
                     ((None, 0.0), dict(mean=1.0, seed=0)), ((), dict(seed=0, bogus=1))]:
        with pytest.raises(TypeError) as ours:
            fill(*args, out=out, **kw)
        with pytest.raises(TypeError) as theirs:
            fill.__wrapped__(*args, out=out, **kw)
        assert str(ours.value) == str(theirs.value)


def test_fast_entry_keyword_names_need_not_be_interned():
    out = np.empty(6, np.float32)
    kw = {"".join(["s", "eed"]): 4, "".join(["o", "ut"]): out}  # built at run time
    assert wf.uniform(None, **kw) is out
    np.testing.assert_array_equal(out, wf.uniform(6, seed=4))


def test_fast_entry_refuses_inconsistent_descriptions():
    def fill(shape=None, *, seed, other=0, out=None):
        return None

    with pytest.raises(TypeError, match="other has no role"):
        _engine.fast_entry(_engine.NORMAL, a=0.0, b=1.0)(fill)
    FastEntry, empty = _engine._core.FastEntry, object()
    role = _engine._core.FAST_ENTRY_ROLES.index  # shape 0, a, b, seed, ..., upper, key
    fixed = (empty,) + (0.0,) * 7 + (None,) * 3  # layout, lower, upper unused
    with pytest.raises(ValueError, match="inconsistent"):
        FastEntry(fill, 1, ("shape",), 2, (0,), (None,), fixed, empty)
    with pytest.raises(ValueError, match="role"):
        FastEntry(fill, 1, ("shape",), 1, (role("key") + 1,), (None,), fixed, empty)
    with pytest.raises(ValueError, match="every role"):  # shape given twice
        FastEntry(fill, 1, ("shape",), 1, (0,), (None,), (None,) + fixed[1:], empty)
    with pytest.raises(TypeError):
        FastEntry(fill, 1, ["shape"], 1, (0,), (None,), fixed, empty)

    def scheme(shape=None, gain=1.0, *, seed, out=None):
        return None

    memo = dict(tag="s", key=(1,))
    fixed = (empty, None, None, empty, 0, None, empty, None, None, None, None)
    names = ("shape", "gain", "seed", "out")
    roles = (role("shape"), role("key"), role("seed"), role("out"))
    entry = FastEntry(scheme, _engine.MEMO, names, 2, roles, (None, 1.0, empty, None), fixed,
                      empty, **memo)
    assert entry((2, 2), seed=0) is None  # unknown key: the Python function's result
    for bad_memo, match in [(dict(tag="s", key=()), "once"), (dict(tag="s", key=(1, 1)), "once"),
                            (dict(tag="s", key=(0,)), "key parameter"), ({}, "inconsistent")]:
        with pytest.raises(ValueError, match=match):
            FastEntry(scheme, _engine.MEMO, names, 2, roles, (None, 1.0, empty, None), fixed,
                      empty, **bad_memo)
    with pytest.raises(ValueError, match="role"):  # a key parameter in a plain fill's entry
        FastEntry(scheme, 1, names, 2, roles, (None, 1.0, empty, None), fixed, empty)
    with pytest.raises(TypeError, match="no use for"):
        _engine.fast_entry(_engine.MEMO, memo=("s", ("gain",)), scale=2.0)(scheme)
    with pytest.raises(TypeError, match="no value for key items"):
        _engine.fast_entry(_engine.MEMO, memo=("s", ("gain", "mode")))(scheme)


def test_fast_entries_are_garbage_collected():
    import gc
    import weakref

    class Box:
        pass

    box = Box()
    fill, _ = _recording(_engine.NORMAL, a="mean", b="std")
    fill.box = box  # a cycle: box -> fill -> its __dict__ -> box
    box.fill = fill
    ref = weakref.ref(box)
    del box, fill
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4), (1, 1), (0, 3), (130, 129)])
@pytest.mark.parametrize("fn, kw", [(wf.eye, {}), (wf.identity, dict(gain=-2.5)),
                                    (wf.identity, dict(gain=-0.0)), (wf.eye, dict(layout="jax"))])
def test_diagonal_entries_write_the_python_paths_bits(fn, kw, shape, dtype):
    """eye and identity into a whole float32/float64 array run in C, with no Python code."""
    expect = fn(shape, dtype=dtype, out=np.empty(shape, dtype), region=(slice(None),), **kw)
    out = np.full(shape, np.nan, dtype)
    got, ran = python_calls(fn, shape, out=out, **kw)
    assert got is out
    assert (ran == []) == (dtype.itemsize > 2)  # 16-bit roundings are Python's
    np.testing.assert_array_equal(bits(out), bits(expect))


@pytest.mark.parametrize("call, err", [
    (dict(layout=None), TypeError), (dict(layout="Torch"), ValueError),
    (dict(layout=type("S", (str,), {})("torch")), None), (dict(gain=float("inf")), ValueError),
    (dict(gain=True), TypeError), (dict(gain=1e39), ValueError), (dict(out="3d"), ValueError),
])
def test_diagonal_entries_leave_other_calls_to_python(call, err):
    out = np.zeros((4, 4), np.float32) if call.get("out") != "3d" else np.zeros((2, 2, 2),
                                                                              np.float32)
    call = {k: v for k, v in call.items() if k != "out"}
    fn = wf.identity if "gain" in call else wf.eye
    if err is None:
        got, ran = python_calls(fn, None, out=out, **call)
        assert ran and got is out
    else:
        with pytest.raises(err):
            fn(None, out=out, **call)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["torch", "keras", "jax"])
@pytest.mark.parametrize("shape, groups", [  # groups divide shape[0] and shape[-1]
    ((4, 4, 3, 3), 1), ((4, 4, 3, 4), 2), ((6, 2, 3), 3), ((8, 4, 3, 3, 2), 2),
    ((2, 6, 1, 1), 1), ((3, 5, 5), 1), ((0, 2, 3), 1), ((6, 6, 6), 6), ((4, 4, 0, 4), 2),
    ((2, 0, 2), 1)])
def test_dirac_entry_writes_the_python_paths_bits(shape, groups, layout, dtype):
    expect = wf.dirac(shape, groups, layout=layout, dtype=dtype, out=np.empty(shape, dtype),
                      region=(slice(None),))
    out = np.full(shape, np.nan, dtype)
    got, ran = python_calls(wf.dirac, shape, groups, layout=layout, out=out)
    assert got is out and (ran == []) == (dtype.itemsize > 2)
    np.testing.assert_array_equal(bits(out), bits(expect))


@pytest.mark.parametrize("call, err", [
    (dict(groups=0), ValueError), (dict(groups=3), ValueError), (dict(groups=2.0), TypeError),
    (dict(groups=True), TypeError), (dict(groups=np.int64(2)), None),
    (dict(layout="TORCH"), ValueError), (dict(layout=1), TypeError),
    (dict(shape=(4, 4)), ValueError),
])
def test_dirac_entry_leaves_other_calls_to_python(call, err):
    shape = call.pop("shape", (4, 4, 3, 3))
    out = np.zeros(shape, np.float32)
    if err is None:
        got, ran = python_calls(wf.dirac, None, out=out, **call)
        assert ran and got is out
        np.testing.assert_array_equal(out, wf.dirac(shape, int(call["groups"])))
    else:
        with pytest.raises(err):
            wf.dirac(None, out=out, **call)


# ----------------------------------------------------------------------------------------------
# random_raw's fast path in C (_core.raw_whole): fewer than 2**14 words, plain arguments.

@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 17, 1000, (1 << 14) - 1])
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 5, 2**40 + 3, 2**64 - 1])
@pytest.mark.parametrize("stream", [0, 7, "raw.fast"])
def test_raw_whole_gives_the_reference_words(n, offset, stream):
    from reference import raw_words  # the independent Python Philox (tests/reference.py)

    wf.random_raw(1, seed=0, stream=stream)  # a stream name is hashed on its first use
    got = _engine.raw_whole(n, 2**63 + 5, stream, offset)
    assert got is not None and got.dtype == np.uint32 and got.shape == (n,)
    assert got.ctypes.data % 64 == 0  # as _engine.empty makes the Python path's array
    np.testing.assert_array_equal(got, raw_words(2**63 + 5, stream, offset, n))
    np.testing.assert_array_equal(wf.random_raw(n, seed=2**63 + 5, stream=stream,
                                                offset=offset), got)


@pytest.mark.parametrize("call, err", [
    (dict(n=1 << 14), None), (dict(n=-1), "n must be"), (dict(n=True), "n must be"),
    (dict(n=2.0), "n must be"), (dict(n=np.int64(5)), None), (dict(offset=2**64), None),
    (dict(offset=-1), "offset"), (dict(offset=2**66), "offset"), (dict(seed=None), None),
    (dict(seed=-1), "seed"), (dict(stream="raw, no UTF-8 form \ud800"), "UTF-8"),
    (dict(stream=1.5), "stream"),
])
def test_raw_whole_leaves_other_calls_to_python(call, err):
    kw = dict(n=5, seed=1, stream=0, offset=3)
    kw.update(call)
    assert _engine.raw_whole(kw["n"], kw["seed"], kw["stream"], kw["offset"]) is None
    if err is None:
        got = wf.random_raw(kw.pop("n"), **kw)
        assert got.dtype == np.uint32
    else:
        with pytest.raises((TypeError, ValueError), match=err):
            wf.random_raw(kw.pop("n"), **kw)


def test_raw_whole_steps_aside_inside_deferred_blocks():
    with _engine.deferred():
        assert _engine.raw_whole(8, 0, 0, 0) is None
        inside = wf.random_raw(8, seed=0)  # a new array: filled at once, also in a block
    np.testing.assert_array_equal(inside, _engine.raw_whole(8, 0, 0, 0))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_truncated_normal_entry_runs_no_python_once_its_constants_are_known(dtype):
    out = np.full((4, 6), np.nan, dtype)
    expect = wf.truncated_normal((4, 6), 0.0, 1.0, -2.0, 3.0, seed=4, dtype=dtype)  # records
    got, ran = python_calls(wf.truncated_normal, None, 0, 1, -2.0, 3.0, seed=4, out=out)
    assert got is out and ran == []  # int mean and std find the float key (equal values)
    np.testing.assert_array_equal(bits(out), bits(expect))
    for other in [dict(lower=-2), dict(upper=np.float64(3.0)), dict(mean=np.float32(0))]:
        kw = dict(dict(mean=0.0, std=1.0, lower=-2.0, upper=3.0), **other)
        got, ran = python_calls(wf.truncated_normal, None, seed=4, out=out, **kw)
        assert ran  # bounds must be floats, mean and std exact ints or floats
        np.testing.assert_array_equal(bits(out), bits(expect))


# ----------------------------------------------------------------------------------------------
# New arrays (out=None): a small plain call makes its array in C (_core.empty_aligned, as
# _engine.empty makes the Python path's) and fills it there, running no Python code.

NEW_ARRAY_CALLS = [  # (function, positional arguments after shape, keywords)
    ("uniform", (-1.5, 3.0), {}), ("normal", (0.5, 2.0), {}),
    ("truncated_normal", (0.0, 1.0, -2.0, 2.0), {}), ("constant", (0.1,), {}),
    ("zeros", (), {}), ("ones", (), {}), ("eye", (), {}), ("identity", (-2.5,), {}),
    ("sparse", (0.5,), {}), ("sparse", (), dict(nonzeros=1, axis=1, method="keys")),
] + [(name, (), {}) for name in SCHEMES]
SEEDED = {"uniform", "normal", "truncated_normal", "sparse", *SCHEMES}


def _new_array_call(name, args, kw, shape, dtype):
    fn = getattr(wf, name)
    if name in SEEDED:
        kw = dict(kw, seed=5, stream="new.array.w")
    expect = fn(shape, *args, dtype=dtype, out=np.empty(shape, dtype),  # the Python path
                region=tuple(slice(None) for _ in shape), **kw)
    fn(shape, *args, dtype=dtype, **kw)  # a scheme's first call memoizes, a truncated normal's
    got, ran = python_calls(fn, shape, *args, dtype=dtype, **kw)  # records constants
    return got, ran, expect


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(4, 6), (1, 1), (0, 3), (16, 16), (3, 4000)])
@pytest.mark.parametrize("name, args, kw", NEW_ARRAY_CALLS, ids=lambda v: str(v)[:20])
def test_new_arrays_are_made_and_filled_in_c_with_the_python_paths_bits(name, args, kw, shape,
                                                                          dtype):
    got, ran, expect = _new_array_call(name, args, kw, shape, dtype)
    assert type(got) is np.ndarray and got.dtype == dtype and got.shape == shape
    assert got.flags.c_contiguous and got.flags.writeable and got.ctypes.data % 64 == 0
    np.testing.assert_array_equal(bits(got), bits(expect))
    # 16-bit uniforms (their ceiling), 16-bit constants and diagonals (their rounding) and the
    # array of 2**14 elements or more are the Python path's; sparse is a Python function
    # whose first step is _core.sparse_whole
    python = got.size >= 1 << 14 or (dtype.itemsize == 2 and (
        name in ("constant", "zeros", "ones", "eye", "identity") or name.endswith("uniform")))
    in_c = ["sparse"] if name == "sparse" else []
    assert (ran != in_c) == python, ran


@pytest.mark.parametrize("name, shape", [("dirac", (4, 4, 3, 3)), ("dirac", (6, 2, 3)),
                                         ("normal", ()), ("normal", 7), ("zeros", 0)])
def test_new_arrays_of_other_ranks_and_int_shapes(name, shape):
    fn = getattr(wf, name)
    kw = dict(seed=1) if name == "normal" else {}
    full = shape if isinstance(shape, tuple) else (shape,)
    expect = fn(full, **kw, out=np.empty(full, np.float32), region=(slice(None),) * len(full))
    got, ran = python_calls(fn, shape, **kw)
    assert ran == [] and got.shape == full and got.dtype == np.float32
    np.testing.assert_array_equal(bits(got), bits(expect))


def test_new_arrays_are_each_their_own():
    a, b = wf.normal((4, 4), seed=0), wf.normal((4, 4), seed=0)
    assert a is not b and not np.shares_memory(a, b)
    a[...] = 0
    np.testing.assert_array_equal(b, wf.normal((4, 4), seed=0))


@pytest.mark.parametrize("shape, dtype, err", [
    ([4, 6], None, None), ((np.int64(4), 6), None, None), ((4, 6), "float32", None),
    ((4, 6), np.dtype(">f4"), "dtype"), ((4, 6), np.int32, "dtype"), ((4, 6), "nonsense", "dtype"),
    ((4.0, 6), None, "shape"), ((True, 6), None, "shape"), ((4, -6), None, "shape"),
    (-3, None, "shape"), (None, None, "shape"), ((1,) * 33, None, None),
    ((2**31, 2**31, 2), None, "shape"), ((128, 128), None, None),
])
def test_new_array_calls_off_the_c_path_keep_their_values_and_errors(shape, dtype, err):
    if err is not None:
        with pytest.raises((TypeError, ValueError), match=err):
            wf.normal(shape, seed=3, dtype=dtype)
        return
    got, ran = python_calls(wf.normal, shape, seed=3, dtype=dtype)
    assert ran
    full = tuple(int(d) for d in shape)
    np.testing.assert_array_equal(got, wf.normal(full, seed=3, out=np.empty(full, np.float32),
                                                 region=(slice(None),) * len(full)))


def test_new_arrays_inside_deferred_blocks_take_the_python_path():
    with _engine.deferred():
        got, ran = python_calls(wf.normal, (4, 6), seed=2)
        assert ran and got.shape == (4, 6)
    np.testing.assert_array_equal(got, wf.normal((4, 6), seed=2))


@pytest.mark.parametrize("shape, align", [((), 64), ((0, 3), 64), ((5, 3), 64), ((1 << 10,), 64),
                                          ((1 << 20,), 1 << 21), ((3, 1 << 19), 1 << 21)])
@pytest.mark.parametrize("dtype", DTYPES + [np.dtype(np.uint32)], ids=str)
def test_empty_aligned_makes_aligned_arrays_that_own_their_memory(shape, align, dtype):
    """The allocation behind _engine.empty and the fast paths' new arrays: C-contiguous,
    writable, 64-byte aligned (2 MiB from 4 MiB of data), kept alive by the array."""
    import gc

    a = _engine._core.empty_aligned(list(shape), dtype)
    assert type(a) is np.ndarray and a.shape == shape and a.dtype == dtype
    assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
    assert a.ctypes.data % (align if a.nbytes >= 4 << 20 else 64) == 0
    view = a.reshape(-1)[: min(a.size, 8)]
    del a
    gc.collect()
    view[...] = 1  # the memory lives as long as a view of it (ASan would see a use after free)
    assert (view == 1).all()


def test_empty_aligned_refuses_what_cannot_be_made():
    with pytest.raises(ValueError, match="negative dimension"):
        _engine._core.empty_aligned([3, -1], np.dtype(np.float32))
    with pytest.raises(MemoryError):
        _engine._core.empty_aligned([1 << 40, 1 << 20], np.dtype(np.float32))
    for shape in ([1 << 62, 1 << 62], [1 << 61, 4], [0, 1 << 62, 1 << 62]):
        with pytest.raises(ValueError, match=r"shape \(.*\) of float32 needs more bytes than "
                           r"an array can address \(2\*\*63 - 1\)"):
            _engine._core.empty_aligned(shape, np.dtype(np.float32))
