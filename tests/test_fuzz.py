"""Property-based fuzzing of every public entry point (issue 17).

Each call gets arguments drawn from a mix of valid values and hostile ones (wrong types, NaN,
out-of-range integers, huge shapes, ``out=`` buffers that are read-only, strided, misaligned,
of the wrong dtype or shape, ...). Every drawn argument is tagged ``OK`` (the call must accept
it), ``BAD`` (the call must reject it) or ``MAYBE`` (either: its validity depends on the other
arguments in ways not worth re-deriving here). The property:

- every argument ``OK``: the call returns a correct result: the requested dtype and shape,
  finite, inside the documented interval, and bit-equal to independent reference calls (the
  pure-NumPy Philox of tests/reference.py where it applies; the whole tensor against a region
  and against two regions stitched together; a new array against ``out=``; 1 thread against
  several);
- some argument ``BAD``: a ValueError or TypeError whose message names one of the ``BAD`` or
  ``MAYBE`` arguments, with an ``out=`` buffer left untouched;
- otherwise either of the two.

Hypothesis runs derandomized without an example database: every run in one environment tries
the same cases (hypothesis also draws literal constants from the code under test when it is not
installed in site-packages, so a source checkout and an installed package try different ones).
``--hypothesis-show-statistics`` prints how many each test ran; docs/hardening.md says how to
run randomized rounds.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import time
import warnings

import ml_dtypes
import numpy as np
import pytest
import weightfill as wf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import raw_words, uniform_f32_expected, uniform_f64_expected
from reference import stream_id as reference_stream_id

OK, MAYBE, BAD = 0, 1, 2
BF16 = np.dtype(ml_dtypes.bfloat16)
F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
FLOATS = (F32, F64, np.dtype(np.float16), BF16)
_ABSENT = object()  # the argument is left out of the call


# WEIGHTFILL_FUZZ_SCALE=k runs k times the cases; WEIGHTFILL_FUZZ_RANDOM=1 runs them from
# pytest's --hypothesis-seed (or a fresh seed) instead of the fixed sequence.
_SCALE = int(os.environ.get("WEIGHTFILL_FUZZ_SCALE", "1"))
_RANDOM = os.environ.get("WEIGHTFILL_FUZZ_RANDOM", "") not in ("", "0")


def fuzz(n: int) -> settings:
    """``n`` cases, without a time limit per case."""
    return settings(max_examples=n * _SCALE, deadline=None, derandomize=not _RANDOM,
                    database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


class Call:
    """One call's keyword arguments, each with its tag."""

    def __init__(self) -> None:
        self.kw: dict[str, object] = {}
        self.tags: dict[str, int] = {}

    def put(self, name: str, drawn: tuple[object, int], *also: str) -> None:
        """Adds argument ``name``; a rejection it causes may name it or any of ``also``."""
        value, tag = drawn
        if value is not _ABSENT:
            self.kw[name] = value
        self.mark(tag, name)
        self.mark(MAYBE if tag else OK, *also)

    def mark(self, tag: int, *names: str) -> None:
        for n in names:
            self.tags[n] = max(self.tags.get(n, OK), tag)

    def run(self, fn, guard=None):
        """``fn(**kw)``; None after checking that a rejection was due and named its cause."""
        verdict = max(self.tags.values(), default=OK)
        suspects = [n for n, t in self.tags.items() if t]
        before = None if guard is None else guard.tobytes()
        try:
            result = fn(**self.kw)
        except (ValueError, TypeError) as err:
            assert verdict != OK, f"{fn.__name__}({self.kw}) rejected: {err!r}"
            assert any(n in str(err) for n in suspects), (
                f"{fn.__name__}: {type(err).__name__}({err}) names none of {suspects}")
            if guard is not None:
                assert guard.tobytes() == before, "a rejected call wrote into out"
            return None
        assert verdict != BAD, f"{fn.__name__}({self.kw}) accepted {suspects}"
        return result


def ok(s):
    return s.map(lambda v: (v, OK))


def bad(*values):
    return st.sampled_from(values).map(lambda v: (v, BAD))


def mostly(valid, invalid):
    """About one draw in five from ``invalid``."""
    return st.one_of(valid, valid, valid, valid, invalid)


def reals(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


# ----------------------------------------------------------------------------------------------
# Arguments shared by the engine functions and the schemes

seeds = mostly(ok(st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 2**64 - 1]),
                            st.integers(0, 2**32).map(np.uint64))),
               bad(-1, 2**64, 1.5, True, "7", np.float64(3.0), None.__class__))
streams = mostly(ok(st.one_of(st.integers(0, 2**64 - 1), st.text(max_size=12),
                              st.just(_ABSENT))),
                 bad(-5, 2**64, 1.0, b"name", None, "\ud800x", ["a"]))
# torch.nn.init's drop-ins take stream=None: the next stream of the call counter.
torch_streams = mostly(ok(st.one_of(st.integers(0, 2**64 - 1), st.text(max_size=12),
                                    st.sampled_from([_ABSENT, None]))),
                       bad(-5, 2**64, 1.0, b"name", "\ud800x", ["a"]))
dtypes = st.one_of(ok(st.sampled_from(FLOATS + ("float32", "float16", "bfloat16", np.float64))),
                   ok(st.just(_ABSENT)),
                   bad(np.int32, "complex64", "no-such-type", object, np.uint32, 3, "int64"))
BAD_SHAPES = [(-1,), (2, -3), (2.0,), ("3",), (True, 2), [[2]], (2**40, 2**40), (0, 2**63),
              (0, 2**64), (2**31, 2**31 + 1), 1.5, "4", {3}]


def draw_target(data, call, *, ndims=(0, 4), medium=True, virtual=True):
    """Draws shape, region, dtype and out= together into ``call``; returns (full shape or
    None, region, out array to guard or None). ``virtual``: sometimes a huge full shape with
    a small region (not for schemes that build the whole tensor whatever the region)."""
    lo, hi = ndims
    kind = data.draw(st.sampled_from(["small"] * 6 + ["medium"] * medium
                                     + ["virtual"] * virtual + ["bad"]))
    call.put("dtype", data.draw(dtypes))
    if kind == "bad":
        call.put("shape", (data.draw(st.sampled_from(BAD_SHAPES)), BAD))
        return None, None, None
    if kind == "small":
        dims = tuple(data.draw(st.lists(st.integers(0, 7), min_size=lo, max_size=hi)))
        form = data.draw(st.sampled_from(["tuple", "list", "numpy", "int"]))
        shape = {"tuple": dims, "list": list(dims), "int": dims[0] if len(dims) == 1 else dims,
                 "numpy": tuple(np.int64(d) for d in dims)}[form]
        region = data.draw(regions(dims))
    elif kind == "medium":  # over one 2**16-element chunk, so several threads take part
        dims = shape = data.draw(st.sampled_from(
            [(131, 1031)] if lo == hi == 2 else [(2**16 + 13,), (131, 1031), (3, 5, 4391)]))
        region = data.draw(st.sampled_from([None, (slice(1, dims[0] - 1),)] + (
            [(slice(1, dims[0]), slice(3, dims[1] - 2))] if len(dims) > 1 else []))), OK
    else:  # a huge full tensor of which only a small region is made
        choices = [1, 3, 2**20 + 3, 2**31 - 1, 2**33 + 5, 2**40]
        dims = tuple(data.draw(st.lists(st.sampled_from(choices), min_size=max(lo, 1),
                                        max_size=max(min(hi, 3), 1))))
        if not 2**20 <= math.prod(dims) < 2**62:
            dims = (2**31 - 1, 2**30 + 7) if len(dims) > 1 else (2**61 - 3,)
        shape = dims
        tail = data.draw(st.booleans())
        region = tuple(_small_slice(data, n, tail) for n in dims), OK
    call.put("shape", (shape, OK))
    call.put("region", region)
    out = None
    if not region[1]:
        out = draw_out(data, call, lengths(dims, region[0]))
    if "out" in call.kw and region[0] is None and data.draw(st.booleans()):
        del call.kw["shape"]  # the shape is out's
        call.tags["out"] = OK if out_ok(call.kw["out"], call.kw.get("dtype"), None) else BAD
        if isinstance(call.kw["out"], (np.ndarray, memoryview)):
            dims = np.asarray(call.kw["out"]).shape
    return dims, region[0], out


def _small_slice(data, n, tail):
    k = data.draw(st.integers(0, min(n, 5)))
    start = n - k if tail else data.draw(st.sampled_from([0, (n - k) // 2]))
    return slice(start, start + k)


@st.composite
def regions(draw, full):
    choice = draw(st.sampled_from(["none"] * 3 + ["slices"] * 4 + ["bad"]))
    if choice == "none":
        return None, OK
    slices = []
    for n in full[:draw(st.integers(0, len(full)))]:
        a = draw(st.integers(0, n))
        b = draw(st.integers(a, n))
        form = draw(st.sampled_from(["plain", "negative", "open", "step1", "numpy"]))
        if form == "negative" and a < n:
            slices.append(slice(a - n, b - n if b < n else None))
        elif form == "open":
            slices.append(slice(a or None, None if b == n else b))
        elif form == "step1":
            slices.append(slice(a, b, 1))
        elif form == "numpy":
            slices.append(slice(np.int32(a), np.uint64(b)))
        else:
            slices.append(slice(a, b))
    if choice == "slices":
        if len(slices) == 1 and draw(st.booleans()):
            return slices[0], OK  # a bare slice
        return tuple(slices), OK
    what = draw(st.sampled_from(["step", "past", "item", "extra", "type", "float"]))
    if what == "type" or not full:
        return draw(st.sampled_from([[0, 1], "0:1", 3, (slice(0, 1),) * (len(full) + 1)])), BAD
    if what == "step":
        return (slice(0, full[0], 2),), BAD
    if what == "past":
        return (slice(0, full[0] + 1),), BAD
    if what == "item":
        return (0,), BAD
    if what == "float":
        return (slice(0.0, 1),), BAD
    return (slice(None),) * (len(full) + 1), BAD


def lengths(full, region):
    """The region's shape, by Python's own slice arithmetic."""
    r = () if region is None else region if isinstance(region, tuple) else (region,)
    return tuple(len(range(*r[i].indices(n))) if i < len(r) else n for i, n in enumerate(full))


def starts(full, region):
    r = () if region is None else region if isinstance(region, tuple) else (region,)
    return tuple(r[i].indices(n)[0] if i < len(r) else 0 for i, n in enumerate(full))


def draw_out(data, call, shape):
    """Maybe an ``out=`` of the region's shape, of a sort drawn from good and bad ones; the
    array to guard against writes by a rejected call."""
    dtype = call.kw.get("dtype")
    if call.tags["dtype"] or math.prod(shape) > 2**18:
        return None
    dt = F32 if dtype is None else np.dtype(dtype)
    kind = data.draw(st.sampled_from(["none"] * 5 + ["fresh", "fresh", "memoryview", "dtype",
                                                     "readonly", "strided", "misaligned",
                                                     "shape", "list", "fortran"]))
    arr = np.full(shape, 7, dt)
    if kind == "none" or (kind == "memoryview" and dt == BF16):  # no bfloat16 buffer format
        return None
    if kind == "memoryview":
        arr = memoryview(arr)
    elif kind == "dtype":
        arr = np.full(shape, 7, F64 if dt != F64 else F32)
    elif kind == "readonly":
        arr.setflags(write=False)
    elif kind == "strided" and shape:
        arr = np.full(shape[:-1] + (2 * shape[-1],), 7, dt)[..., ::2]
    elif kind == "misaligned":
        arr = np.full(arr.nbytes + 1, 7, np.uint8)[1:].view(dt).reshape(shape)
    elif kind == "shape":
        arr = np.full(shape + (1,), 7, dt)
    elif kind == "list":
        arr = arr.tolist()
    elif kind == "fortran" and shape:
        arr = np.asfortranarray(arr)
    call.put("out", (arr, OK if out_ok(arr, dtype, shape) else BAD))
    return arr if isinstance(arr, np.ndarray) else None


def out_ok(out, dtype, shape):
    """Whether ``out`` can take the result, as the docstrings state it: a writable C-contiguous
    array of the region's shape (any, when ``shape=None``) and of ``dtype`` (any float dtype
    when ``dtype`` is None); alignment only matters where elements are written."""
    arr = np.asarray(out) if isinstance(out, memoryview) else out
    if not isinstance(arr, np.ndarray):
        return False
    return (arr.flags.writeable and arr.flags.c_contiguous
            and (arr.dtype in FLOATS if dtype is None else arr.dtype == np.dtype(dtype))
            and (arr.flags.aligned or arr.ndim == 0 or arr.size == 0)
            and (shape is None or arr.shape == shape))


# ----------------------------------------------------------------------------------------------
# Result checks


def bits(a) -> bytes:
    return np.ascontiguousarray(np.asarray(a)).tobytes()


def result_dtype(kw) -> np.dtype:
    if kw.get("dtype") is not None:
        return np.dtype(kw["dtype"])
    out = kw.get("out")
    return out.dtype if isinstance(out, np.ndarray) else F32


def check_result(result, call, full, region):
    """The result's type, dtype and shape; returns it as an ndarray."""
    out = call.kw.get("out")
    if out is not None:
        assert result is out, "out= must be returned"
        result = np.asarray(out)
    assert isinstance(result, np.ndarray)
    assert result.dtype == result_dtype(call.kw)
    assert result.shape == lengths(full, region)
    return result


def check_equivalents(fn, call, result, full, region):
    """Bit-equality with the same call made other ways (seeded calls only)."""
    kw = {k: v for k, v in call.kw.items() if k not in ("out", "region")}
    kw["dtype"], kw["shape"] = result.dtype, full
    if kw.get("seed", 0) is None:
        return
    if "out" in call.kw:  # out= against a new array
        assert bits(fn(**kw, region=region)) == bits(result)
    shape, first = lengths(full, region), starts(full, region)
    if math.prod(full) <= 2**18 and region is not None:  # the region against the whole
        whole = fn(**kw)
        assert bits(whole[tuple(slice(s, s + n) for s, n in zip(first, shape))]) == bits(result)
    if shape and shape[0] >= 2:  # two halves of the region stitched along its first axis
        cut = first[0] + shape[0] // 2
        rest = tuple(slice(s, s + n) for s, n in zip(first[1:], shape[1:]))
        halves = [fn(**kw, region=(slice(first[0], cut),) + rest),
                  fn(**kw, region=(slice(cut, first[0] + shape[0]),) + rest)]
        assert bits(np.concatenate(halves)) == bits(result)
    if math.prod(shape) > 2**16:  # several chunks: any number of threads, the same bits
        before = wf.get_num_threads()
        try:
            for n in (1, 3):
                wf.set_num_threads(n)
                assert bits(fn(**kw, region=region)) == bits(result)
        finally:
            wf.set_num_threads(before)


def sample_indices(full, region, count=6):
    """Up to ``count + 2`` (flat position in the region, flat C-order index in the full
    tensor) pairs, first and last element included."""
    shape = lengths(full, region)
    size = math.prod(shape)
    if size == 0:
        return []
    first = starts(full, region)
    pairs = []
    for p in sorted({0, size - 1, *range(0, size, max(1, size // count))}):
        local = np.unravel_index(p, shape) if shape else ()
        g = 0
        for d, n in enumerate(full):
            g = g * n + first[d] + int(local[d])
        pairs.append((p, g))
    return pairs


def rounded(x: float, dt: np.dtype) -> float:
    """``x`` rounded to ``dt`` (16-bit formats: through float32, as stream-spec 3.7 says)."""
    if dt.itemsize == 2:
        return float(np.asarray(np.float32(x)).astype(dt))
    return float(np.asarray(x, dt))


def run_engine(fn, call, full, region, out):
    """The call, its type/shape checks and its equivalents; the result or None."""
    result = call.run(fn, guard=out)
    if result is None:
        return None
    result = check_result(result, call, full, region)
    assert np.isfinite(result.astype(np.float64)).all()
    check_equivalents(fn, call, result, full, region)
    return result


# ----------------------------------------------------------------------------------------------
# Engine functions


def seeded_call(data, **target):
    """A call with a drawn target (see draw_target), seed and stream."""
    call = Call()
    full, region, out = draw_target(data, call, **target)
    call.put("seed", data.draw(seeds))
    call.put("stream", data.draw(streams))
    return call, full, region, out


def draw_pair(data, dt):
    """Two bounds, tagged: mostly ordered reals, sometimes equal, close, huge, reversed or not
    real at all."""
    kind = data.draw(st.sampled_from(["plain"] * 4 + ["equal", "close", "huge", "reversed",
                                                      "nonreal", "numbers"]))
    if kind == "plain":
        low, high = sorted(data.draw(st.lists(reals(-100, 100), min_size=2, max_size=2)))
        return (low, OK), (high, OK)
    if kind == "equal":
        v = data.draw(reals(-100, 100))
        return (v, OK), (v, OK)
    if kind == "close":  # apart by far less than a 16-bit or float32 ulp, or a few
        low = data.draw(reals(-4, 4).filter(lambda v: v != 0))
        high = low + abs(low) * data.draw(st.sampled_from([2**-30, 2**-20, 2**-12, 2**-9]))
        return (low, OK), (high, OK)
    if kind == "huge":  # fits float64; overflows high - low in the other dtypes
        tag = OK if dt == F64 else MAYBE
        return (-1e200, tag), (1e200, tag)
    if kind == "reversed":
        return (1.0, BAD), (-1.0, BAD)
    if kind == "numbers":  # other real types
        return (data.draw(st.sampled_from([np.float32(-1.5), -2, np.int8(-3)])), OK), (
            data.draw(st.sampled_from([np.float16(2.5), 3, np.float64(4.0)])), OK)
    return data.draw(bad(math.nan, math.inf, -math.inf, "1", None, True, 1j)), (2.0, OK)


@fuzz(400)
@given(data=st.data())
def test_uniform(data):
    call, full, region, out = seeded_call(data)
    dt = None if call.tags["dtype"] else result_dtype(call.kw)
    low, high = draw_pair(data, dt)
    call.put("low", low, "high")
    call.put("high", high, "low")
    result = run_engine(wf.uniform, call, full, region, out)
    if result is None:
        return
    dt, low, high = result.dtype, low[0], high[0]
    v = result.astype(np.float64)
    lo, hi = rounded(low, dt), rounded(high, dt)  # stream-spec 3.1, 3.2, 3.7
    if lo < hi:
        assert (v >= lo).all() and (v < hi).all(), (lo, hi, v.min(), v.max())
    else:
        assert (v == lo).all(), (lo, hi, np.unique(v))
    # Independent reference: the pure-NumPy Philox and the spec's exact transform.
    seed, stream = call.kw.get("seed"), call.kw.get("stream", 0)
    if seed is not None and dt in (F32, F64):
        flat = result.reshape(-1)
        for p, g in sample_indices(full, region):
            if dt == F32:
                want = uniform_f32_expected(raw_words(int(seed), stream, g, 1), low, high)
            else:
                w = raw_words(int(seed), stream, 2 * g, 2).astype(np.uint64)
                want = uniform_f64_expected(w[:1] | (w[1:] << np.uint64(32)), low, high)
            assert bits(flat[p]) == bits(np.asarray(want, dt).reshape(-1)[0]), (g, flat[p], want)


def draw_mean_std(data, call, dt):
    mean = data.draw(st.one_of(ok(reals(-100, 100)), ok(st.just(_ABSENT)),
                               bad(math.nan, -math.inf, "0", None)))
    if data.draw(st.integers(0, 9)) == 0:  # fine in float64 only
        mean = (1e300, OK if dt == F64 else MAYBE)
    std = data.draw(st.one_of(ok(st.sampled_from([0.0, 1e-3, 1, 2.5])), ok(reals(0, 10)),
                              ok(st.just(_ABSENT)), bad(-1.0, -1e-300, math.inf, "1", None)))
    call.put("mean", mean, "std")
    call.put("std", std, "mean")


@fuzz(300)
@given(data=st.data())
def test_normal(data):
    call, full, region, out = seeded_call(data)
    draw_mean_std(data, call, None if call.tags["dtype"] else result_dtype(call.kw))
    result = run_engine(wf.normal, call, full, region, out)
    if result is None:
        return
    # The largest |z| is 6.660437 (32-bit draws) or 8.571674 (float64): stream-spec 3.3/3.4.
    m, sd = call.kw.get("mean", 0.0), call.kw.get("std", 1.0)
    zmax = 8.571675 if result.dtype == F64 else 6.660438
    rel = 2.0 ** -(np.finfo(np.float32).nmant if result.dtype.itemsize != 2 else 7)
    dev = np.abs(result.astype(np.float64) - rounded(m, result.dtype))
    assert (dev <= zmax * sd * (1 + rel) + 2 * rel * abs(m)).all(), dev.max()


@fuzz(300)
@given(data=st.data())
def test_truncated_normal(data):
    call, full, region, out = seeded_call(data)
    dt = None if call.tags["dtype"] else result_dtype(call.kw)
    draw_mean_std(data, call, dt)
    kind = data.draw(st.sampled_from(["plain"] * 3 + ["tail", "infinite", "empty", "nonreal"]))
    if kind == "plain":
        a = data.draw(reals(-5, 4))
        b = a + data.draw(reals(0.25, 6))
        lower, upper = (a, OK), (b, OK)
    elif kind == "tail":  # far tails keep full relative precision (erfc branch)
        lower, upper = data.draw(st.sampled_from([((8.0, OK), (9.0, OK)),
                                                  ((-math.inf, OK), (-5.0, OK)),
                                                  ((30.0, OK), (math.inf, OK))]))
    elif kind == "infinite":
        lower, upper = (-math.inf, OK), (math.inf, OK)
    elif kind == "empty":
        lower, upper = data.draw(st.sampled_from([((1.0, BAD), (1.0, BAD)),
                                                  ((2.0, BAD), (-2.0, BAD)),
                                                  ((math.inf, BAD), (math.inf, BAD)),
                                                  ((40.0, BAD), (50.0, BAD))]))
    else:
        lower, upper = data.draw(bad(math.nan, "1", None, True)), (2.0, OK)
    call.put("lower", lower, "upper")
    call.put("upper", upper, "lower")
    if kind == "tail" or may_hold_nothing(call.kw, lower[0], upper[0], dt):
        # The interval may hold no value of the dtype: then a clear rejection is due.
        call.mark(MAYBE, "mean", "std", "lower", "upper")
    result = run_engine(wf.truncated_normal, call, full, region, out)
    if result is None:
        return
    # No value outside [mean + lower*std, mean + upper*std], also after rounding (3.6, 3.7).
    m, sd = call.kw.get("mean", 0.0), call.kw.get("std", 1.0)
    v = result.astype(np.float64)
    with np.errstate(invalid="ignore"):
        a, b = m + lower[0] * sd, m + upper[0] * sd
    slack = 1e-15 * (abs(m) + 60 * sd)  # float64 rounding of a and b
    assert (v >= (a if a == a else -math.inf) - slack).all(), (a, v.min())
    assert (v <= (b if b == b else math.inf) + slack).all(), (b, v.max())


def may_hold_nothing(kw, lower, upper, dt) -> bool:
    """Whether [mean + lower*std, mean + upper*std] may hold no finite value of ``dt``: it is
    narrower than a few of the dtype's spacings where it lies, or it lies beyond the dtype's
    range. Only decides between OK and MAYBE, so the margin can be generous."""
    m, sd = kw.get("mean", 0.0), kw.get("std", 1.0)
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
               for v in (m, sd, lower, upper)):
        return False
    with np.errstate(all="ignore"):
        a, b = float(m) + float(lower) * float(sd), float(m) + float(upper) * float(sd)
    if a != a or b != b:
        return False
    fi = ml_dtypes.finfo(dt if dt is not None else F32)
    a, b = max(a, -float(fi.max)), min(b, float(fi.max))
    if a > b:
        return True
    mag = max(abs(a), abs(b))
    return b - a <= 4 * max(float(fi.eps) * mag, float(fi.smallest_subnormal))


@fuzz(200)
@given(data=st.data())
def test_sparse(data):
    call, full, region, out = seeded_call(data, ndims=(2, 2))
    if full is not None and len(full) != 2:  # the shape of an out= without shape=
        call.mark(BAD, "out")
    if data.draw(st.integers(0, 9)) == 0 and not call.tags["shape"]:
        call.kw["shape"], full, region = (3, 4, 5), None, None  # not 2-D
        call.kw.pop("region", None), call.kw.pop("out", None)
        call.mark(BAD, "shape")
    axis = data.draw(st.one_of(ok(st.sampled_from([0, 1, -1, -2, _ABSENT])), bad(2, -3, 0.0)))
    call.put("axis", axis)
    n = full[axis[0] % 2 if axis[0] is not _ABSENT and not axis[1] else 0] if full else 4
    which = data.draw(st.sampled_from(["sparsity"] * 3 + ["nonzeros"] * 2 + ["both", "neither"]))
    if which in ("sparsity", "both"):
        call.put("sparsity", data.draw(st.one_of(ok(reals(0, 1)), bad(1.5, -0.1, "0.5", None,
                                                                      math.nan))))
    if which in ("nonzeros", "both"):
        call.put("nonzeros", data.draw(st.one_of(ok(st.integers(0, n)),
                                                 bad(n + 1, -1, 1.0, "1"))))
    if which in ("both", "neither"):
        call.mark(BAD, "sparsity", "nonzeros")
    call.put("std", data.draw(st.one_of(ok(st.sampled_from([0.0, 0.01, 1.0, _ABSENT])),
                                        bad(-1.0, math.nan, "x"))))
    call.put("method", data.draw(st.one_of(ok(st.sampled_from(["floyd", "keys", _ABSENT])),
                                           bad("Floyd", "", 1, None))))
    if full and max(full) >= 2**31:
        call.mark(MAYBE, "shape")  # lines of 2**31 positions or more: refused, with the limit
    result = run_engine(wf.sparse, call, full, region, out)
    if result is None:
        return
    # The kept entries are the normal values at the same positions, bit for bit.
    kw = {k: v for k, v in call.kw.items()
          if k in ("seed", "stream", "shape", "region", "dtype")}
    kw.update(shape=full, dtype=result.dtype, region=region)
    dense = wf.normal(**kw, std=call.kw.get("std", 0.01))
    kept = result != 0
    assert bits(result[kept]) == bits(dense[kept])
    if region is None and "sparsity" in call.kw:  # exact counts per line along the axis
        ax = call.kw.get("axis", 0) % 2
        zeros = math.ceil(float(call.kw["sparsity"]) * full[ax])
        assert (np.count_nonzero(result, axis=ax) <= full[ax] - zeros).all()


@fuzz(200)
@given(n=st.one_of(ok(st.integers(0, 40)), bad(-1, 1.5, "3", None, True)),
       offset=st.one_of(ok(st.integers(0, 2**20)), ok(st.integers(2**66 - 2**20, 2**66 - 40)),
                        ok(st.just(_ABSENT)), bad(-1, 2**66 + 1, 0.5, "0")),
       seed=seeds, stream=streams)
def test_random_raw(n, offset, seed, stream):
    call = Call()
    call.put("n", n)
    call.put("offset", offset, "n")
    call.put("seed", seed)
    call.put("stream", stream)
    result = call.run(wf.random_raw)
    if result is None:
        return
    assert result.dtype == np.uint32 and result.shape == (n[0],)
    if seed[0] is not None:
        want = raw_words(int(seed[0]), call.kw.get("stream", 0), call.kw.get("offset", 0), n[0])
        assert bits(result) == bits(want)


@fuzz(120)
@given(name=st.one_of(st.text(max_size=30), st.binary(max_size=4), st.integers(), st.none(),
                      st.sampled_from(["\ud800", "a\udfffb", "é", "\x00"])))
def test_stream_id(name):
    call = Call()
    encodable = isinstance(name, str) and not any(0xD800 <= ord(c) <= 0xDFFF for c in name)
    call.put("name", (name, OK if encodable else BAD), "stream")
    result = call.run(wf.stream_id)
    if result is not None:
        assert result == reference_stream_id(name) and 0 <= result < 2**64


def test_huge_shapes_fail_fast_before_allocating():
    """Shapes past the element limit, past the address space, or past any machine's memory
    raise at once; none is allocated or filled."""
    cases = [((2**40, 2**40), F32, ValueError), ((0, 2**63), F32, ValueError),
             ((0, 2**62), F64, ValueError), ((2**61 + 1,), F64, ValueError),
             ((2**22, 2**23), F32, MemoryError), ((2**31, 2**20), F64, MemoryError)]
    for fn in (wf.uniform, wf.normal, wf.zeros, wf.kaiming_uniform):
        for shape, dt, exc in cases:
            t0 = time.perf_counter()
            kw = {} if fn is wf.zeros else {"seed": 0}
            with pytest.raises(exc) as info:
                fn(shape, dtype=dt, **kw)
            assert time.perf_counter() - t0 < 1.0
            assert "shape" in str(info.value) or exc is MemoryError, info.value
            assert str(info.value)


@pytest.mark.parametrize("dt", [np.float16, BF16])
def test_found_16_bit_uniform_between_neighbours(dt):
    """Fuzzing found [1, 1.0001) in 16 bits giving the value below 1 everywhere: low and high
    round to the same 16-bit value, which every element must then be (as 3.1's L == H)."""
    assert bits(wf.uniform(9, 1.0, 1.0001, seed=0, dtype=dt)) == bits(np.ones(9, dt))


@pytest.mark.parametrize("dt, low, high", [
    (dt, *pair) for dt in (F32, F64, np.dtype(np.float16))
    for pair in [(0.0, -0.0), (-0.0, -0.0)] + ([(-1e-50, -1e-60)] if dt != F64 else [])])
def test_found_zero_width_interval_at_zero_gives_plus_zero(dt, low, high):
    """Fuzzing against tests/reference.py found -0.0 where stream-spec 3.1 gives
    fma(u, H - L, L) = +0.0."""
    assert bits(wf.uniform(9, low, high, seed=1, dtype=dt)) == bits(np.zeros(9, dt))


def test_found_unclear_errors():
    """Rejections that fuzzing found naming no argument (a pybind11 or NumPy message, or a
    bare TypeError from inside the code)."""
    entry = wf.TensorEntry("w", (2, 3), "float32", "normal", {}, 0, "w").to_dict()
    cases = [(lambda: wf.uniform((0, 2**63), seed=0), ValueError, "shape[1]"),
             (lambda: wf.uniform((0, 2**61), seed=0, dtype=F64), ValueError, "shape"),
             (lambda: wf.normal(out=7.0, seed=0), TypeError, "out"),
             (lambda: wf.calculate_gain("leaky_relu", math.nan), ValueError, "negative_slope"),
             (lambda: wf.TensorEntry.from_dict({**entry, "zero_rows": None}), TypeError,
              "zero_rows"),
             (lambda: wf.TensorEntry.from_dict({**entry, "zero_rows": ["a"]}), TypeError,
              "zero_rows"),
             (lambda: wf.TensorEntry.from_dict({**entry, "dtype": []}), ValueError, "dtype"),
             (lambda: wf.TensorEntry.from_dict({**entry, "resolved": "x"}), TypeError,
              "resolved")]
    for call, exc, name in cases:
        with pytest.raises(exc, match=name.replace("[", r"\[")):
            call()


def test_found_trunc_normal_argument_types():
    torch = pytest.importorskip("torch")
    from weightfill.torch import init

    for kw, name in [({"std": "x"}, "std"), ({"b": "x"}, "b"), ({"mean": None}, "mean")]:
        with pytest.raises(TypeError, match=f"^{name} must be a real number"):
            init.trunc_normal_(torch.empty(3), **kw, seed=0)


# ----------------------------------------------------------------------------------------------
# Schemes

GAINS = {"linear": 1.0, "relu": math.sqrt(2.0), "tanh": 5.0 / 3, "selu": 0.75, "sigmoid": 1.0}


def torch_fans(full):
    """torch.nn.init's fans (torch layout): (fan_in, fan_out)."""
    rf = math.prod(full[2:])
    return full[1] * rf, full[0] * rf


def draw_scheme_args(data, call, name):
    """The scheme's own parameters; returns the bound of its uniform values (torch layout)
    when it has one, else None."""
    full = call.kw.get("shape")
    real = st.one_of(ok(reals(0, 10)), bad(math.nan, math.inf, "2", None))
    if name in ("xavier_uniform", "xavier_normal", "orthogonal", "identity"):
        call.put("gain", data.draw(st.one_of(real, ok(st.just(_ABSENT)))))
    if name in ("kaiming_uniform", "kaiming_normal"):
        call.put("a", data.draw(st.one_of(ok(reals(0, 5)), ok(st.just(_ABSENT)),
                                          bad(math.nan, "0"))), "nonlinearity")
        call.put("mode", data.draw(st.one_of(ok(st.sampled_from(["fan_in", "fan_out", "FAN_IN",
                                                                 _ABSENT])),
                                             bad("fan_avg", "", 0))))
        call.put("nonlinearity", data.draw(st.one_of(
            ok(st.sampled_from(["relu", "leaky_relu", "linear", "tanh", "selu", _ABSENT])),
            bad("nope", 3, None))), "a")
    if name == "variance_scaling":
        call.put("scale", data.draw(st.one_of(ok(reals(1e-3, 10)), bad(-1.0, math.nan, "1"))))
        call.put("mode", data.draw(st.one_of(ok(st.sampled_from(
            ["fan_in", "fan_out", "fan_avg", "fan_geo_avg"])), bad("fan", None))))
        call.put("distribution", data.draw(st.one_of(ok(st.sampled_from(
            ["truncated_normal", "normal", "untruncated_normal", "uniform"])),
            bad("gauss", 0))))
    if name == "delta_orthogonal":
        call.put("scale", data.draw(st.one_of(real, ok(st.just(_ABSENT)))))
    if name == "constant":  # NaN and infinities are allowed
        call.put("value", data.draw(st.one_of(ok(reals(-100, 100)), bad("1", None, 1j),
                                              ok(st.sampled_from([math.nan, -math.inf])))))
    if name == "dirac":
        call.put("groups", data.draw(st.one_of(ok(st.sampled_from([1, 2, _ABSENT])),
                                               bad(0, -1, 1.5))))
    if name in LAYOUT_SCHEMES:
        call.put("layout", data.draw(st.one_of(ok(st.just(_ABSENT)),
                                               ok(st.sampled_from(["torch", "keras", "jax"])),
                                               bad("nchw", 1))))
    if name not in ("xavier_uniform", "kaiming_uniform") or "layout" in call.kw \
            or any(call.tags.values()):
        return None
    if not isinstance(full, tuple) or len(full) < 2 or not math.prod(full):
        return None
    fan_in, fan_out = torch_fans(full)
    if name == "xavier_uniform":
        return call.kw.get("gain", 1.0) * math.sqrt(6.0 / (fan_in + fan_out))
    nl = call.kw.get("nonlinearity", "leaky_relu")
    a = call.kw.get("a", 0.0)
    gain = math.sqrt(2.0 / (1 + a * a)) if nl == "leaky_relu" else GAINS[nl]
    fan = fan_in if call.kw.get("mode", "fan_in").lower() == "fan_in" else fan_out
    return gain * math.sqrt(3.0 / fan)


SCHEMES = ["zeros", "ones", "constant", "xavier_uniform", "xavier_normal", "kaiming_uniform",
           "kaiming_normal", "orthogonal", "eye", "identity", "dirac", "variance_scaling",
           "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
           "lecun_normal", "delta_orthogonal"]
DETERMINISTIC = {"zeros", "ones", "constant", "eye", "identity", "dirac"}
LAYOUT_SCHEMES = {"xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
                  "orthogonal", "eye", "identity", "dirac", "delta_orthogonal"}


def test_every_public_function_is_fuzzed():
    fuzzed = set(SCHEMES) | {"uniform", "normal", "truncated_normal", "sparse", "random_raw",
                             "stream_id", "init_params", "Manifest", "TensorEntry",
                             "set_num_threads", "compute_fans", "calculate_gain"}
    # Not fuzzed here: reporting functions without arguments, second_moment_gain (a callable
    # argument, covered in test_fans_gains) and save/verify (files, in test_checkpoint).
    rest = {"get_num_threads", "isa", "available_isas", "second_moment_gain", "save", "verify"}
    assert set(wf.__all__) == fuzzed | rest


@fuzz(600)
@given(data=st.data(), name=st.sampled_from(SCHEMES))
def test_schemes(data, name):
    call = Call()
    fn = getattr(wf, name)
    whole = name in ("orthogonal", "delta_orthogonal")  # build the whole matrix: see below
    full, region, out = draw_target(data, call, ndims=(0, 5), medium=not whole,
                                    virtual=not whole)
    if name not in DETERMINISTIC:
        call.put("seed", data.draw(seeds))
        call.put("stream", data.draw(streams))
    bound = draw_scheme_args(data, call, name)
    # Shapes a scheme cannot take (orthogonal of 1-D, eye of 3-D, fans of zero, ...) and huge
    # matrices the Python-side schemes would build whole: a clear rejection is due, if any.
    call.mark(MAYBE, "shape", "fan", "dimension", "groups", "region", "rows", "columns")
    result = call.run(fn, guard=out)
    if result is None:
        return
    result = check_result(result, call, full, region)
    value = call.kw.get("value", 0.0)
    if math.isfinite(value):
        assert np.isfinite(result.astype(np.float64)).all()
    else:
        assert bits(result) == bits(np.full(result.shape, value, result.dtype))
    check_equivalents(fn, call, result, full, region)
    if bound is not None:  # U(-bound, bound), the bound rounded to the dtype at most
        rel = 2.0 ** -(7 if result.dtype.itemsize == 2 else 20)
        assert (np.abs(result.astype(np.float64)) <= bound * (1 + rel)).all()


@pytest.mark.parametrize("name,shape", [("orthogonal", (2**20, 2**21)),
                                        ("orthogonal", (1, 2**61)),
                                        ("delta_orthogonal", (3, 2**21, 2**22))])
def test_found_whole_matrix_schemes_refuse_what_cannot_fit(name, shape):
    """Found by fuzzing: a small region of a huge orthogonal tensor allocated the whole
    matrix (the scheme needs it) until memory ran out. Now refused up front, naming shape."""
    region = tuple(slice(0, 1) for _ in shape)
    with pytest.raises(ValueError, match="shape: the whole .* more than this machine's"):
        getattr(wf, name)(shape, seed=0, region=region)


@fuzz(60)
@given(n=st.one_of(ok(st.integers(1, 4)), bad(0, -1, 1025, 2.0, True, "2", None)))
def test_set_num_threads(n):
    before = wf.get_num_threads()
    call = Call()
    call.put("n", n)
    try:
        call.run(wf.set_num_threads)
        assert wf.get_num_threads() == (n[0] if not n[1] else before)
    finally:
        wf.set_num_threads(before)


@fuzz(150)
@given(shape=st.one_of(ok(st.lists(st.integers(0, 9), max_size=5).map(tuple)),
                       bad((-1, 2), (2.0, 3), "ab", None)),
       layout=st.one_of(ok(st.sampled_from(["torch", "keras", "jax", _ABSENT])), bad("nhwc", 3)))
def test_compute_fans(shape, layout):
    call = Call()
    call.put("shape", shape)
    call.put("layout", layout)
    call.mark(MAYBE, "shape", "dimension", "axis", "axes")  # 0-D/1-D in the torch layout
    fans = call.run(wf.compute_fans)
    if fans is not None:
        fan_in, fan_out = fans
        assert fan_in >= 0 and fan_out >= 0
        if len(shape[0]) >= 2 and call.kw.get("layout", "torch") == "torch":
            assert (fan_in, fan_out) == torch_fans(shape[0])


@fuzz(100)
@given(nl=st.one_of(ok(st.sampled_from(list(GAINS) + ["leaky_relu", "conv2d"])),
                    bad("nope", 3, None, "", "Tanh")),
       param=st.one_of(ok(st.just(_ABSENT)), ok(reals(0, 3)), bad("x", math.nan)))
def test_calculate_gain(nl, param):
    call = Call()
    call.put("nonlinearity", nl, "param")
    if nl[0] != "leaky_relu":  # torch's rule: only leaky_relu reads param
        param = (param[0], min(param[1], MAYBE))
    call.put("param", param, "nonlinearity", "negative_slope")
    gain = call.run(wf.calculate_gain)
    if gain is not None:
        assert math.isfinite(gain) and gain > 0


# ----------------------------------------------------------------------------------------------
# Many tensors by name, and their manifests


ENTRY_SCHEMES = [("normal", {"std": 0.02}), ("uniform", {"low": -1, "high": 2}),
                 ("kaiming_uniform", {"a": 2.0}), ("zeros", {}), ("constant", {"value": 3}),
                 ("truncated_normal", {"std": 0.5}), ("sparse", {"sparsity": 0.5}),
                 ("xavier_normal", {"gain": 1.5})]
JSON_JUNK = [None, True, -1, 1.5, 2**64, "x", "", [], [1, "a"], {}, {"a": [None]}]


@fuzz(300)
@given(data=st.data())
def test_manifest_from_dict_and_json(data):
    scheme, params = data.draw(st.sampled_from(ENTRY_SCHEMES))
    dims = data.draw(st.lists(st.integers(1, 6), min_size=2, max_size=2 if scheme == "sparse"
                              else 3))
    entry = wf.TensorEntry(name="layer.weight", shape=tuple(dims),
                           dtype=data.draw(st.sampled_from(["float32", "float16", "bfloat16",
                                                            "float64"])),
                           scheme=scheme, params=params, seed=data.draw(st.integers(0, 2**64 - 1)),
                           stream=data.draw(st.sampled_from(["layer.weight", 5])))
    doc = wf.Manifest([entry]).to_dict()
    t = doc["tensors"][0]
    how = data.draw(st.sampled_from(["none", "drop", "junk", "junk", "param", "unknown",
                                     "top", "text"]))
    field = None
    if how == "drop":
        field = data.draw(st.sampled_from(sorted(t)))
        del t[field]
    elif how == "junk":
        field = data.draw(st.sampled_from(sorted(t) + ["zero_rows", "aliases", "resolved",
                                                       "source"]))
        t[field] = data.draw(st.sampled_from(JSON_JUNK))
    elif how == "param":
        field = data.draw(st.sampled_from(sorted(params) or ["std"]))
        t["params"] = {**params, field: data.draw(st.sampled_from(JSON_JUNK))}
    elif how == "unknown":
        field = "colour"
        t[field] = 1
    elif how == "top":
        field = data.draw(st.sampled_from(["format", "version", "tensors", "unrecorded"]))
        doc[field] = data.draw(st.sampled_from(JSON_JUNK))
    text = json.dumps(doc)
    if how == "text":  # broken JSON
        cut = data.draw(st.integers(0, len(text) - 1))
        text = text[:cut] + data.draw(st.sampled_from(["", "}", "\x00", "\ud800", "[", "nan"]))
        field = "JSON"
    call = Call()
    call.put("text", (text, MAYBE if field else OK), field or "text", "manifest", "tensor",
             "JSON", "name", "format", "version", "params", "JSON-serialisable")
    manifest = call.run(wf.Manifest.from_json)
    if manifest is None:
        return
    if how == "none":
        assert manifest == wf.Manifest([entry])
    loaded = manifest.entries[0] if len(manifest) else None
    if loaded is None:
        return
    # Regenerating either works, and equals the scheme called directly, or names the cause.
    regen = Call()
    regen.mark(OK if how == "none" else MAYBE, field or "name", "params", "shape", "region",
               "stream", "seed", "sparse")
    arr = regen.run(lambda: loaded.tensor())
    if arr is None:
        return
    fn = getattr(wf, loaded.scheme)
    kw = dict(loaded.params, dtype=loaded.numpy_dtype)
    if loaded.scheme not in DETERMINISTIC:
        kw.update(seed=loaded.seed, stream=loaded.stream)
    want = fn(loaded.shape, **kw)
    for r in loaded.zero_rows:
        want[r] = 0
    assert bits(arr) == bits(want)
    region = (slice(1, loaded.shape[0]),) if loaded.shape else None
    assert bits(loaded.tensor(region)) == bits(want[region or ()])


@fuzz(150)
@given(data=st.data())
def test_init_params(data):
    spec, names = {}, []
    tag = OK
    for i in range(data.draw(st.integers(0, 3))):
        scheme, params = data.draw(st.sampled_from(ENTRY_SCHEMES))
        shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=2, max_size=2)))
        how = data.draw(st.sampled_from(["plain"] * 4 + ["reserved", "option", "scheme",
                                                         "shape", "tuple"]))
        name = data.draw(st.sampled_from([f"p{i}", f"blocks.{i}.w", f"é{i}"]))
        entry: object = (shape, scheme, params)
        if how == "reserved":
            entry = (shape, scheme, {**params, "seed": 1})
        elif how == "option":
            entry = (shape, scheme, {**params, "dtype": data.draw(st.sampled_from(
                ["float16", "int32", "nope"]))})
        elif how == "scheme":
            entry = (shape, data.draw(st.sampled_from(["nope", 3, None])))
        elif how == "shape":
            entry = (data.draw(st.sampled_from([(-1, 2), "ab", None])), scheme)
        elif how == "tuple":
            entry = data.draw(st.sampled_from([(shape,), shape, "normal", None]))
        if how != "plain":
            tag = MAYBE
        spec[name] = entry
        names.append(name)
    call = Call()
    call.put("spec", (spec, tag), *names, "scheme", "dtype", "seed", "shape")
    call.put("seed", data.draw(seeds))
    result = call.run(wf.init_params)
    if result is None:
        return
    assert list(result) == list(spec)
    for name, arr in result.items():
        shape, scheme, *rest = spec[name]
        options = dict(rest[0]) if rest else {}
        dt = options.pop("dtype", np.float32)
        kw = {} if scheme in DETERMINISTIC else {"seed": call.kw["seed"], "stream": name}
        if call.kw["seed"] is not None:
            assert bits(arr) == bits(getattr(wf, scheme)(shape, **options, **kw, dtype=dt))
        assert bits(result.manifest[name].tensor()) == bits(arr)


# ----------------------------------------------------------------------------------------------
# Adapters: torch tensors, JAX keys, dask arrays


TORCH_CALLS = ["uniform_", "normal_", "trunc_normal_", "constant_", "xavier_uniform_",
               "kaiming_normal_", "orthogonal_", "sparse_", "eye_", "dirac_", "zeros_"]


@fuzz(200)
@given(data=st.data(), name=st.sampled_from(TORCH_CALLS))
def test_torch_init(data, name):
    torch = pytest.importorskip("torch")
    from weightfill.torch import init

    dims = tuple(data.draw(st.lists(st.integers(0, 6), min_size=0, max_size=4)))
    tdt = data.draw(st.sampled_from([torch.float32, torch.float64, torch.float16,
                                     torch.bfloat16, torch.int64]))
    layout = data.draw(st.sampled_from(["contiguous", "contiguous", "transposed", "sliced",
                                        "meta"]))
    base = torch.full(dims, 7, dtype=tdt)
    if layout == "transposed" and len(dims) >= 2:
        base = torch.full(dims[::-1], 7, dtype=tdt).transpose(0, -1)
    elif layout == "sliced" and dims:
        base = torch.full((dims[0] * 2,) + dims[1:], 7, dtype=tdt)[::2]
    elif layout == "meta":
        base = torch.empty(dims, dtype=tdt, device="meta")
    call = Call()
    call.put("tensor", (base, OK), "dtype", "shape", "dimension", "fan", "Tensor", "rows",
             "columns", "groups", "std", "sparsity")
    call.mark(MAYBE, "tensor")  # shapes and dtypes each torch function refuses, as torch does
    meta = layout == "meta"  # documented: left alone, arguments unread
    if name not in ("constant_", "eye_", "dirac_", "zeros_"):
        call.put("seed", data.draw(seeds))
        call.put("stream", data.draw(torch_streams))
    params = {"uniform_": {"a": -1.0, "b": 2.0}, "normal_": {"mean": 1.0, "std": 0.5},
              "trunc_normal_": {"mean": 0.0, "std": 1.0, "a": -1.0, "b": 1.5},
              "constant_": {"val": 2.5}, "xavier_uniform_": {"gain": 2.0},
              "kaiming_normal_": {"a": 0.1, "mode": "fan_out"}, "orthogonal_": {"gain": 1.0},
              "sparse_": {"sparsity": 0.5, "std": 0.1}, "dirac_": {"groups": 1}}.get(name, {})
    for k, v in params.items():  # torch takes NaN, and ignores arguments of empty tensors
        call.put(k, data.draw(st.one_of(ok(st.just(v)), bad("x", None), st.just((math.nan,
                                                                                 MAYBE)))))
        if not base.numel() or meta:
            call.tags[k] = min(call.tags[k], MAYBE)
    with warnings.catch_warnings():  # torch's own warnings (zero-element tensors, ...)
        warnings.simplefilter("ignore")
        result = call.run(getattr(init, name))
    if result is None:
        return
    assert result is base
    if meta or tdt == torch.int64 or "seed" not in call.kw or not base.numel():
        return
    # Equal to the NumPy call of weightfill with the same seed and stream (the adapter's doc).
    if call.kw["seed"] is None or call.kw.get("stream") is None:
        return
    np_dt = {torch.float32: F32, torch.float64: F64, torch.float16: np.float16,
             torch.bfloat16: BF16}[tdt]
    kw = {"seed": call.kw["seed"], "stream": call.kw["stream"], "dtype": np_dt}
    shape = tuple(base.shape)
    if name == "uniform_":
        want = wf.uniform(shape, -1.0, 2.0, **kw)
    elif name == "normal_":
        want = wf.normal(shape, 1.0, 0.5, **kw)
    elif name == "trunc_normal_":
        want = wf.truncated_normal(shape, 0.0, 1.0, -1.0, 1.5, **kw).clip(-1.0, 1.5)
    elif name == "xavier_uniform_":
        want = wf.xavier_uniform(shape, 2.0, **kw)
    elif name == "kaiming_normal_":
        want = wf.kaiming_normal(shape, 0.1, "fan_out", **kw)
    else:
        return
    got = result.to(torch.float32).numpy() if tdt == torch.bfloat16 else result.numpy()
    assert bits(got.astype(np.float32)) == bits(np.asarray(want).astype(np.float32))


@fuzz(40)
@given(data=st.data())
def test_jax_initializer_keys(data):
    jax = pytest.importorskip("jax")
    from weightfill.jax import initializers

    s = data.draw(st.integers(0, 2**32 - 1))
    kind = data.draw(st.sampled_from(["key", "prngkey", "words1", "words4", "words3", "int",
                                      "none", "float", "int32", "keys2", "2d"]))
    keys = {"key": lambda: (jax.random.key(s), OK),
            "prngkey": lambda: (jax.random.PRNGKey(s), OK),
            "words1": lambda: (np.array([s], np.uint32), MAYBE),
            "words4": lambda: (np.array([s, 1, 2, 3], np.uint32), MAYBE),
            "words3": lambda: (np.array([s, 1, 2], np.uint32), MAYBE),
            "int": lambda: (s, BAD), "none": lambda: (None, BAD), "float": lambda: (1.5, BAD),
            "int32": lambda: (np.array([1, 2], np.int32), BAD),
            "keys2": lambda: (jax.random.split(jax.random.key(s)), BAD),
            "2d": lambda: (np.zeros((2, 2), np.uint32), BAD)}
    key = keys[kind]()
    shape = data.draw(st.one_of(ok(st.lists(st.integers(0, 5), max_size=3).map(tuple)),
                                bad((-1, 2), (2.0,), "ab")))
    factory = data.draw(st.sampled_from(["normal", "uniform", "he_uniform", "zeros"]))
    init = {"normal": lambda: initializers.normal(0.5), "uniform": lambda: initializers.uniform(),
            "he_uniform": lambda: initializers.he_uniform(),
            "zeros": lambda: initializers.constant(0.0)}[factory]()
    call = Call()
    call.put("key", key, "PRNG", "uint32", "implementation")
    call.put("shape", shape)
    if factory == "he_uniform":
        call.mark(MAYBE, "shape", "fan", "dimension")
    if factory == "zeros":  # as jax.nn.initializers.constant, it never reads the key
        call.tags["key"] = min(call.tags["key"], MAYBE)
    result = call.run(init)
    if result is None:
        return
    assert result.shape == shape[0] and result.dtype == np.float32
    if kind in ("key", "prngkey"):  # the documented rule: seed = w0 * 2**32 + w1, stream 0
        w = [int(x) for x in np.asarray(jax.random.key_data(key[0]))]
        want = init.numpy(shape[0], seed=(w[0] << 32) | w[1], stream=0, dtype=np.float32)
        assert bits(np.asarray(result)) == bits(want)


@fuzz(60)
@given(data=st.data())
def test_dask_array_arguments(data):
    pytest.importorskip("dask.array")
    from weightfill import dask as wdask

    call = Call()
    call.put("scheme", data.draw(st.one_of(ok(st.sampled_from(["normal", "uniform",
                                                               "kaiming_uniform", "zeros"])),
                                           bad("nope", 3, None))))
    kind = data.draw(st.sampled_from(["small", "small", "virtual", "bad"]))
    shape = {"small": lambda: (tuple(data.draw(st.lists(st.integers(1, 9), min_size=2,
                                                        max_size=2))), OK),
             "virtual": lambda: ((2**20, 2**21), OK),  # a graph of lazy blocks, not computed
             "bad": lambda: data.draw(bad((-1, 2), (2**40, 2**40), (0, 2**63), "ab"))}[kind]()
    call.put("shape", shape)
    call.put("chunks", data.draw(st.one_of(ok(st.sampled_from(["auto", (4, -1), 3, _ABSENT])),
                                           bad("x", (0, 1, 2, 3)))))
    call.put("seed", data.draw(seeds))
    call.put("dtype", data.draw(st.one_of(ok(st.sampled_from(["float32", F64, _ABSENT])),
                                          bad("int32", "nope"))))
    if call.kw.get("scheme") == "normal":
        call.put("std", data.draw(st.one_of(ok(st.just(0.5)), bad(-1.0, "x"))))
    if call.kw.get("scheme") == "zeros":
        call.mark(OK, "seed")  # deterministic schemes ignore the seed
        if call.tags["seed"]:
            call.tags["seed"] = MAYBE
    result = call.run(wdask.array)
    if result is None:
        return
    assert result.shape == shape[0] and sum(result.chunks[0]) == shape[0][0]
    if kind == "small" and call.kw.get("seed") is not None:
        kw = {k: v for k, v in call.kw.items() if k not in ("scheme", "chunks")}
        if call.kw["scheme"] == "zeros":
            kw.pop("seed")
        want = getattr(wf, call.kw["scheme"])(**kw)
        assert bits(result.compute(scheduler="synchronous")) == bits(want)


@fuzz(30)
@given(data=st.data())
def test_jax_make_array_shardings(data):
    """Shardings over this process's devices (one mesh axis); the values equal the NumPy call
    of weightfill, or a rejection names the argument."""
    jax = pytest.importorskip("jax")
    from jax.sharding import Mesh, NamedSharding, PartitionSpec, SingleDeviceSharding
    from weightfill.jax import make_array

    mesh = Mesh(np.array(jax.devices()), ("x",))
    call = Call()
    call.put("scheme", data.draw(st.one_of(ok(st.sampled_from(["normal", "he_uniform",
                                                               "zeros"])), bad("nope", 3))))
    call.put("shape", data.draw(st.one_of(ok(st.lists(st.integers(0, 6), min_size=2,
                                                      max_size=2).map(tuple)),
                                          bad((-1, 2), "ab", (2.0, 3)))))
    spec = data.draw(st.sampled_from([("none", OK), (None, OK), ("x", OK), ("x,", OK),
                                      ("y", BAD), ("x,x", MAYBE), ("3d", BAD)]))
    sharding = {"none": SingleDeviceSharding(jax.devices()[0]),
                None: NamedSharding(mesh, PartitionSpec()),
                "x": NamedSharding(mesh, PartitionSpec("x")),
                "x,": NamedSharding(mesh, PartitionSpec(None, "x"))}.get(spec[0], spec[0])
    if spec[0] == "y":  # an axis the mesh does not have: JAX refuses to build it
        sharding = "not a sharding"
    elif spec[0] == "x,x":
        # Rank 3 on a 2-D shape: JAX itself accepts it when the extra axes are unsharded.
        sharding = NamedSharding(mesh, PartitionSpec("x", None, None))
    call.put("sharding", (sharding, spec[1]))
    call.put("seed", data.draw(seeds))
    if call.kw.get("scheme") == "zeros":
        call.tags["seed"] = min(call.tags["seed"], MAYBE)  # never read
    if call.kw.get("scheme") == "he_uniform":
        call.mark(MAYBE, "shape", "fan")
    result = call.run(make_array)
    if result is None or call.kw.get("seed") is None:
        return
    kw = {} if call.kw["scheme"] == "zeros" else {"seed": call.kw["seed"]}
    want = getattr(wf, call.kw["scheme"])(call.kw["shape"], **kw)
    assert bits(np.asarray(result)) == bits(want)
