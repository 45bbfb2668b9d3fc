"""Haar-distributed matrices with orthonormal columns, from a normal draw, by blocked Householder
products (the scheme layer's ``orthogonal``; docs/schemes.md, "Orthogonal").

Stewart (1980) showed that ``Q = H_0 H_1 ... H_{k-1} [I_k; 0] D`` is Haar-distributed when
``H_j`` is the Householder reflection that maps an independent standard normal vector
``x_j`` of length ``m - j`` onto a multiple of ``e_0`` (acting on coordinates ``j ..``) and
``D = diag(-sign(x_j[0]))``: it is exactly what a Householder QR of an ``m x k`` normal matrix
produces, with ``R``'s diagonal made positive, because after the first reflections the rest of
a normal matrix is again normal and independent of them. So the draw's column ``j`` below its
diagonal serves as ``x_j``, and the QR factorization itself is skipped: only the product is
formed, as LAPACK's ``orgqr`` does, which halves the work of ``QR`` + sign fix.

The product is accumulated backwards in blocks of ``NB`` reflections in the compact "UT" form
``H_j0 ... H_j1-1 = I - V T V^T`` with ``T^{-1} = striu(V^T V) + diag(V^T V) / 2`` (Joffrain
et al., 2006), so nearly all the work is two matrix products per block (BLAS level 3 through
NumPy). Each reflection is exactly orthogonal for its stored (rounded) vector ``v``: ``v^T v``
is taken in float64 from the rounded ``v``, as LAPACK derives ``tau`` from the stored vector.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from . import _core

NB = 256  # reflections per block: larger blocks make better matrix products, smaller less T work
ROWS_PER_UPDATE = 512  # rows per rank-NB update: bounds the temporary to 512 x k

# np.linalg.inv is this gufunc behind argument checks and an errstate block that cost more than
# inverting a small T (a 4 x 4: 3.2 us through np.linalg.inv, 1.3 us direct); T^-1 is upper
# triangular with a positive diagonal, never singular, so they have nothing to do. The same
# LAPACK call: the same bits (tests/test_schemes.py checks both against each other). NumPy's
# private module, so with a fallback.
_inv: Callable[[np.ndarray], Any]
try:
    from numpy.linalg import _umath_linalg

    _inv = functools.partial(_umath_linalg.inv, signature="d->d")
except (ImportError, AttributeError):  # pragma: no cover - every NumPy from 1.x to 2.4 has it
    _inv = np.linalg.inv


def orthonormal_columns(a: np.ndarray, q: np.ndarray, scale: float = 1.0) -> None:
    """Writes ``scale`` times a Haar-distributed ``(m, k)`` matrix with orthonormal columns
    into ``q``, made from the normal draw ``a`` (``m >= k``, the same shape and float dtype;
    either may be a transposed view). ``a`` is overwritten with the Householder vectors.

    The elementwise steps are compiled (csrc/bindings/haar.cpp; each names the NumPy
    expression whose bits it reproduces); the matrix products, the column sums and the
    inverse are NumPy's, whose rounding the BLAS build decides. tests/reference.py holds the
    same computation in NumPy calls only, and the tests compare the two bit for bit."""
    m, k = a.shape
    if q.shape != (m, k) or m < k:
        raise ValueError(f"orthonormal_columns: need q of shape {a.shape} with m >= k")
    ft = a.dtype
    _core.haar_unit(q)
    sign = np.empty(k)
    for j0 in range(((k - 1) // NB) * NB, -1, -NB):
        j1 = min(j0 + NB, k)
        v = a[j0:, j0:j1]  # column j0 + i holds x_{j0+i} from row i on
        _core.haar_zero_above(v)
        # v = (x + s |x| e_0) / |x| with s the sign of x[0]: no cancellation, entries O(1);
        # H x = -s |x| e_0, so R's diagonal entry has sign -s. |x| = 0 has probability 0 (the
        # draw is continuous) but would give v = 0: no reflection, sign +1. x_{m-1} (j1 == m)
        # has one coordinate: no reflection; D takes its sign.
        norm = np.sqrt(np.einsum("ij,ij->j", v, v, dtype=np.float64))
        _core.haar_reflectors(v, norm, sign[j0:j1], j1 == m)
        vv = np.einsum("ij,ij->j", v, v, dtype=np.float64)
        t_inv = (v.T @ v).astype(np.float64)
        _core.haar_t_inverse(t_inv, vv)  # striu(V^T V) + diag(V^T V) / 2
        t = _inv(t_inv).astype(ft)
        sub = q[j0:, j0:]  # columns < j0 are still e_c, untouched by these reflections
        w = t @ (v.T @ sub)
        for r in range(0, m - j0, ROWS_PER_UPDATE):
            sub[r:r + ROWS_PER_UPDATE] -= v[r:r + ROWS_PER_UPDATE] @ w
    _core.haar_scale(q, sign, scale)
