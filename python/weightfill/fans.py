"""Fans: how many inputs feed one output unit of a weight tensor, and how many outputs one input
unit feeds, under each framework's convention for where the axes are.

Pure Python; no dependence on the compiled engine.
"""

from __future__ import annotations

import math
import operator
from typing import Optional, Sequence, Union

from ._args import normalize_shape

__all__ = ["compute_fans", "LAYOUTS"]

AxisLike = Union[int, Sequence[int]]

#: Layout names accepted by every scheme's ``layout=`` argument.
LAYOUTS = ("torch", "keras", "jax")

# The in/out axes a layout implies when only one of in_axis/out_axis is given explicitly.
_DEFAULT_AXES = {"torch": (1, 0), "keras": (-2, -1), "jax": (-2, -1)}


def check_layout(layout: object, allowed: Sequence[str] = LAYOUTS) -> str:
    """``layout`` after checking it is one of ``allowed``."""
    if not isinstance(layout, str):
        raise TypeError(f"layout must be a str, not {type(layout).__name__}")
    if layout not in allowed:
        raise ValueError(f"layout must be one of {', '.join(map(repr, allowed))}; got {layout!r}")
    return layout


def _axes(value: object, ndim: int, name: str) -> tuple[int, ...]:
    """An axis or a sequence of axes as a tuple of non-negative ints, in the order given;
    checks the range and duplicates."""
    items = [value] if not isinstance(value, (tuple, list)) else list(value)
    out = []
    for item in items:
        if isinstance(item, bool):
            raise TypeError(f"{name} must be an int or a sequence of ints, not bool")
        try:
            a = operator.index(item)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(
                f"{name} must be an int or a sequence of ints, not {type(item).__name__}"
            ) from None
        if not -ndim <= a < ndim:
            raise ValueError(f"{name}: axis {a} is out of range for a {ndim}-D shape")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} names an axis twice: {value!r}")
    return tuple(out)


def compute_fans(
    shape: Union[int, Sequence[int]],
    *,
    layout: str = "torch",
    in_axis: Optional[AxisLike] = None,
    out_axis: Optional[AxisLike] = None,
    batch_axis: AxisLike = (),
    transposed: bool = False,
) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight tensor of ``shape``.

    Rules, with ``receptive = `` the product of the kernel (spatial) sizes:

    ``layout="torch"`` (PyTorch's ``_calculate_fan_in_and_fan_out``), shape ``(out, in, *kernel)``:
        ``fan_in = in * receptive``, ``fan_out = out * receptive``. Fewer than 2 dimensions is
        a ``ValueError``, as in torch.
    ``layout="keras"`` (Keras's ``compute_fans`` and ``VarianceScaling``), shape
    ``(*kernel, in, out)``:
        0-D gives ``(1, 1)``, 1-D ``(n, n)``, otherwise ``fan_in = in * receptive``,
        ``fan_out = out * receptive``; each fan is clamped to at least 1 (Keras clamps the
        denominator in ``VarianceScaling``; only empty tensors are affected).
    ``layout="jax"`` or an explicit ``in_axis``/``out_axis`` (JAX's ``_compute_fans``):
        ``fan_in = prod(shape[in_axis]) * receptive``, ``fan_out = prod(shape[out_axis]) *
        receptive``, where ``receptive`` is the product of every axis that is neither an in,
        out nor batch axis. Axes refer to the full shape and may be ints or sequences of ints;
        they must be disjoint. An axis left as ``None`` takes the layout's default (torch:
        in 1, out 0; keras and jax: in -2, out -1), so a 0-D or 1-D shape is an error here,
        as in JAX.

    ``batch_axis`` names axes that are stacked copies of one layer (experts, scanned layers)
    and count neither as inputs, outputs nor receptive field. With the JAX rule they are
    excluded as JAX does; with ``layout="torch"`` or ``"keras"`` (and no explicit in/out
    axes) they are removed first and the layout's rule is applied to the remaining shape, so
    an expert-batched PyTorch weight ``(experts, out, in)`` takes ``batch_axis=0``.

    ``transposed=True`` swaps the two fans. Both PyTorch and Keras store transposed-convolution
    kernels with the in/out roles swapped (torch ``ConvTranspose`` weights are
    ``(in, out // groups, *kernel)``, Keras ``ConvTranspose`` kernels ``(*kernel, out, in)``)
    and compute fans as if they were ordinary convolutions, so their fan_in is the layer's
    true fan_out. The default, ``False``, keeps their behaviour; ``True`` gives the true fans
    (for ``groups == 1``; with groups it is exact in the sense torch's own grouped-conv fans are).

    Parameters
    ----------
    shape : int or sequence of int
        Shape of the full weight tensor.
    layout : {"torch", "keras", "jax"}
    in_axis, out_axis : int or sequence of int, optional
        Select the JAX rule with these axes.
    batch_axis : int or sequence of int
        Axes excluded from both fans.
    transposed : bool
        Swap the fans (true fans of a transposed convolution's weight).

    Returns
    -------
    (int, int)
        ``(fan_in, fan_out)``.

    Examples
    --------
    >>> compute_fans((64, 3, 7, 7))                        # torch Conv2d(3, 64, 7)
    (147, 3136)
    >>> compute_fans((7, 7, 3, 64), layout="keras")        # Keras Conv2D(64, 7) on 3 channels
    (147, 3136)
    >>> compute_fans((8, 512, 256), layout="jax", batch_axis=0)   # 8 stacked experts
    (512, 256)
    """
    dims = normalize_shape(shape)
    check_layout(layout)
    if not isinstance(transposed, bool):
        raise TypeError(f"transposed must be a bool, not {type(transposed).__name__}")
    ndim = len(dims)
    batch = _axes(batch_axis, ndim, "batch_axis")
    if layout == "jax" or in_axis is not None or out_axis is not None:
        d_in, d_out = _DEFAULT_AXES[layout]
        ins = _axes(d_in if in_axis is None else in_axis, ndim, "in_axis")
        outs = _axes(d_out if out_axis is None else out_axis, ndim, "out_axis")
        named = ins + outs + batch
        if len(set(named)) != len(named):
            raise ValueError(
                f"in_axis {ins}, out_axis {outs} and batch_axis {batch} must not share an axis"
            )
        receptive = math.prod(d for i, d in enumerate(dims) if i not in named)
        fan_in = math.prod(dims[i] for i in ins) * receptive
        fan_out = math.prod(dims[i] for i in outs) * receptive
    else:
        rest = tuple(d for i, d in enumerate(dims) if i not in batch)
        if layout == "torch":
            if len(rest) < 2:
                raise ValueError(
                    "Fan in and fan out can not be computed for tensor with fewer than 2 "
                    f"dimensions (shape {dims}{', batch axes removed' if batch else ''})"
                )
            receptive = math.prod(rest[2:])
            fan_in, fan_out = rest[1] * receptive, rest[0] * receptive
        else:  # keras
            if len(rest) == 0:
                fan_in = fan_out = 1
            elif len(rest) == 1:
                fan_in = fan_out = rest[0]
            else:
                receptive = math.prod(rest[:-2])
                fan_in, fan_out = rest[-2] * receptive, rest[-1] * receptive
            fan_in, fan_out = max(1, fan_in), max(1, fan_out)
    if transposed:
        fan_in, fan_out = fan_out, fan_in
    return int(fan_in), int(fan_out)
