"""Initialization schemes, each with the exact meaning of its namesake.

PyTorch's names (``xavier_*``, ``kaiming_*``, ``orthogonal``, ``eye``, ``dirac``) behave like
``torch.nn.init``'s and read shapes as ``(out, in, *kernel)``; Keras and JAX's names
(``variance_scaling``, ``glorot_*``, ``he_*``, ``lecun_*``, ``identity``, ``delta_orthogonal``)
behave like ``keras.initializers``/``jax.nn.initializers`` and read shapes channels-last,
``(*kernel, in, out)``. The same name can mean different things in different frameworks: torch's
``kaiming_normal`` is an untruncated normal, Keras/JAX's ``he_normal`` a normal truncated at two
standard deviations and rescaled. docs/schemes.md has the table.

Every random scheme is one call of an engine fill (``uniform``, ``normal``,
``truncated_normal``) with ``seed``, ``stream``, ``dtype``, ``out`` and ``region`` passed
through, so it inherits the counter contract: element ``i`` depends only on (seed, stream, i,
distribution, parameters, dtype), and ``region`` gives exactly that sub-block of the full
tensor. Fans always come from the full shape. ``orthogonal`` and ``delta_orthogonal`` are the
exceptions: they turn a normal draw into an orthogonal matrix with BLAS matrix products (see
their notes).

The schemes live in one module per family: ``_constant`` (``zeros``, ``ones``, ``constant``),
``_torch`` (PyTorch's) and ``_keras`` (Keras's and JAX's, with ``identity`` and
``delta_orthogonal``); ``_common`` holds the argument checks, fans and the matrix and index
builders both families use.
"""

from __future__ import annotations

from ._constant import constant, ones, zeros
from ._keras import (
    TRUNCATED_NORMAL_STD,
    delta_orthogonal,
    glorot_normal,
    glorot_uniform,
    he_normal,
    he_uniform,
    identity,
    lecun_normal,
    lecun_uniform,
    variance_scaling,
)
from ._torch import (
    dirac,
    eye,
    kaiming_normal,
    kaiming_uniform,
    orthogonal,
    xavier_normal,
    xavier_uniform,
)

__all__ = [
    "zeros",
    "ones",
    "constant",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "orthogonal",
    "eye",
    "dirac",
    "variance_scaling",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "identity",
    "delta_orthogonal",
    "TRUNCATED_NORMAL_STD",
]
