"""Bad input gets a ValueError or TypeError that names the argument, never a crash."""

from __future__ import annotations

import numpy as np
import pytest
import weightfill as wf

F = [wf.uniform, wf.normal]


@pytest.mark.parametrize("fn", F)
@pytest.mark.parametrize(
    "shape,exc,match",
    [
        (-1, ValueError, r"shape\[0\]"),
        ((3, -2), ValueError, r"shape\[1\]"),
        ((2**31, 2**31), ValueError, "2\\*\\*62"),
        (2.5, TypeError, "shape"),
        (("a",), TypeError, r"shape\[0\]"),
        ((True, 2), TypeError, r"shape\[0\]"),
    ],
)
def test_bad_shapes(fn, shape, exc, match):
    with pytest.raises(exc, match=match):
        fn(shape, seed=1)


@pytest.mark.parametrize("fn", F)
@pytest.mark.parametrize(
    "kw,exc,match",
    [
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed=2**64), ValueError, "seed"),
        (dict(seed=1.5), TypeError, "seed"),
        (dict(seed="1"), TypeError, "seed"),
        (dict(seed=1, stream=-1), ValueError, "stream"),
        (dict(seed=1, stream=2**64), ValueError, "stream"),
        (dict(seed=1, stream=1.0), TypeError, "stream"),
        (dict(seed=1, dtype=np.int32), TypeError, "dtype"),
        (dict(seed=1, dtype="nonsense"), TypeError, "dtype"),
        (dict(seed=1, region=(slice(0, 11),)), ValueError, r"region\[0\]"),
        (dict(seed=1, region=(slice(0, 4, 2),)), ValueError, "step"),
        (dict(seed=1, region=(slice(5, 2),)), ValueError, r"region\[0\]"),
        (dict(seed=1, region=(slice(0, 2), slice(0, 1))), ValueError, "region"),
        (dict(seed=1, region=(0, 2)), TypeError, "region"),
    ],
)
def test_bad_keywords(fn, kw, exc, match):
    with pytest.raises(exc, match=match):
        fn(10, **kw)


def test_seed_is_required():
    with pytest.raises(TypeError, match="seed"):
        wf.normal(10)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: wf.uniform(5, 2.0, 1.0, seed=1), ValueError, "low"),
        (lambda: wf.uniform(5, float("nan"), 1.0, seed=1), ValueError, "low"),
        (lambda: wf.uniform(5, 0.0, float("inf"), seed=1), ValueError, "high"),
        (lambda: wf.uniform(5, -3e38, 3e38, seed=1), ValueError, "overflows"),
        (lambda: wf.uniform(5, 0.0, 1e39, seed=1), ValueError, "high"),
        (lambda: wf.uniform(5, "0", 1.0, seed=1), TypeError, "low"),
        (lambda: wf.normal(5, 0.0, -1.0, seed=1), ValueError, "std"),
        (lambda: wf.normal(5, float("inf"), 1.0, seed=1), ValueError, "mean"),
        (lambda: wf.normal(5, 0.0, float("nan"), seed=1), ValueError, "std"),
        (lambda: wf.normal(5, 0.0, 1e300, seed=1, dtype=np.float32), ValueError, "std"),
        (lambda: wf.normal(5, 0.0, None, seed=1), TypeError, "std"),
    ],
)
def test_bad_parameters(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize(
    "out,exc,match",
    [
        (np.zeros(10, np.float32)[::2], ValueError, "contiguous"),
        (np.zeros((5, 2), np.float32).T, ValueError, "contiguous"),
        (np.zeros(5, np.float64), TypeError, "dtype"),
        (np.zeros(6, np.float32), ValueError, "shape"),
        (np.zeros(5, np.int32), TypeError, "dtype"),
        ([0.0] * 5, TypeError, "out"),
        (b"\0" * 20, ValueError, "read-only"),
    ],
)
def test_bad_out(out, exc, match):
    with pytest.raises(exc, match=match):
        wf.normal(5, seed=1, dtype=np.float32, out=out)


def test_read_only_array_is_rejected_and_untouched():
    a = np.zeros(8, np.float32)
    a.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        wf.uniform(out=a, seed=1)
    assert not a.any()


def test_shape_or_out_needed():
    with pytest.raises(TypeError, match="shape"):
        wf.normal(seed=1)
    with pytest.raises(TypeError, match="shape"):
        wf.normal(out=np.zeros(4, np.float32), region=(slice(0, 2),), seed=1)


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        (dict(n=-1), ValueError, "n"),
        (dict(n=4, offset=-1), ValueError, "offset"),
        (dict(n=4, offset=2**66), ValueError, "offset"),
        (dict(n=2.0), TypeError, "n"),
    ],
)
def test_bad_random_raw(kw, exc, match):
    with pytest.raises(exc, match=match):
        wf.random_raw(seed=1, **kw)


def test_set_num_threads_validation():
    with pytest.raises(ValueError, match="n"):
        wf.set_num_threads(0)
    with pytest.raises(TypeError, match="n"):
        wf.set_num_threads(2.0)  # type: ignore[arg-type]
    wf.set_num_threads(3)
    assert wf.get_num_threads() == 3


def test_force_isa_rejects_unknown_names():
    from weightfill import _engine

    with pytest.raises(ValueError, match="unknown instruction set"):
        _engine.force_isa("sse9")


@pytest.mark.parametrize("call", [
    lambda: wf.stream_id("\ud800"),
    lambda: wf.normal(4, seed=0, stream="\ud800"),
    lambda: wf.kaiming_uniform((3, 3), seed=0, stream="w\udfff"),
])
def test_stream_name_not_encodable_as_utf8_names_the_stream(call):
    with pytest.raises(ValueError, match=r"stream name .* not encodable as UTF-8"):
        call()


@pytest.mark.parametrize("call, arg", [
    (lambda: wf.orthogonal((1, 5), seed=255, dtype=np.float16, gain=1e30), "gain"),
    (lambda: wf.identity((3, 3), gain=1e30, dtype=np.float16), "gain"),
    (lambda: wf.delta_orthogonal((3, 3, 4, 4), seed=0, dtype=np.float16, scale=1e30), "scale"),
])
def test_schemes_refuse_a_scale_that_overflows_the_dtype(call, arg):
    # the plain distributions refuse such a std; these used to return infinities
    with pytest.raises(ValueError, match=rf"{arg}=1e\+30 overflows float16"):
        call()


def test_a_large_gain_that_fits_the_dtype_is_kept():
    w = wf.orthogonal((2, 4), seed=1, dtype=np.float16, gain=60000.0)
    assert np.all(np.isfinite(w.astype(np.float32)))


HUGE = 10**400  # an int beyond the float range: float() raises OverflowError


@pytest.mark.parametrize("call, arg", [
    (lambda: wf.normal(4, HUGE, seed=0), "mean"),
    (lambda: wf.normal(4, 0.0, -HUGE, seed=0), "std"),
    (lambda: wf.uniform(4, 0, HUGE, seed=0), "high"),
    (lambda: wf.truncated_normal(4, 0, 1, -2, HUGE, seed=0), "upper"),
    (lambda: wf.truncated_normal(4, 0, 1, -HUGE, 2, seed=0), "lower"),
    (lambda: wf.normal(None, HUGE, seed=0, out=np.zeros(4, np.float32)), "mean"),
    (lambda: wf.xavier_uniform((4, 4), HUGE, seed=0), "gain"),
    (lambda: wf.variance_scaling((4, 4), HUGE, seed=0), "scale"),
    (lambda: wf.constant((4, 4), HUGE), "value"),
    (lambda: wf.constant((4, 4), -HUGE, out=np.zeros((4, 4))), "value"),
    (lambda: wf.identity((4, 4), HUGE), "gain"),
    (lambda: wf.sparse((4, 4), 0.5, std=HUGE, seed=0), "std"),
    (lambda: wf.calculate_gain("leaky_relu", HUGE), "param"),
])
def test_ints_beyond_the_float_range_are_value_errors_naming_the_argument(call, arg):
    """Not Python's OverflowError from float(): a ValueError that says which argument."""
    with pytest.raises(ValueError, match=arg):
        call()


def test_a_leaky_relu_slope_whose_square_overflows_keeps_a_gain():
    # torch's formula raises OverflowError from slope**2 beyond 1.3e154; 1 + slope**2 rounds to
    # slope**2 long before, so the gain is sqrt(2) / |slope|, continuous with the formula's.
    assert wf.calculate_gain("leaky_relu", 1e200) == np.sqrt(2.0) / 1e200
    assert wf.calculate_gain("leaky_relu", -1e154) == np.sqrt(2.0 / (1 + 1e154**2))
    assert np.isclose(wf.calculate_gain("leaky_relu", 1e154), np.sqrt(2.0) / 1e154, rtol=1e-15)
