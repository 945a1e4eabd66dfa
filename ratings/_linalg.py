"""Small dense linear algebra that stays out of OpenBLAS's thread pool.

The fits solve systems of size ``n_models`` (about 100). OpenBLAS runs LAPACK/BLAS-3 calls
on several threads above small thresholds (LU for ``n >= 100``, triangular solves with 16 or
more right-hand sides, matrix products above about a million multiply-adds). On a busy
machine every such call then waits for a sleeping BLAS thread to be scheduled, which costs
tens of milliseconds per call instead of a fraction of one. The systems here are symmetric
positive definite, so they use Cholesky (single-threaded below ``n = 128``), wide right-hand
sides and products are split into narrow column blocks, and long inner products (``ddot`` is
threaded too) use ``np.einsum``. Results are identical up to rounding; larger problems simply
use the threaded kernels.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sl

from ._typing import FloatArray

__all__: list[str] = []

_RHS_BLOCK = 8  # columns per triangular solve
_GEMM_LIMIT = 250_000  # multiply-adds per matrix product


def cho_factor(a: FloatArray) -> tuple[FloatArray, bool] | None:
    """Cholesky factor of a symmetric positive definite matrix (None if not definite)."""
    try:
        return sl.cho_factor(a, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return None


def solve_spd(
    a: FloatArray, b: FloatArray, factor: tuple[FloatArray, bool] | None = None
) -> FloatArray:
    """Solve ``a @ x = b`` for symmetric positive definite ``a``; ``b`` 1-D or 2-D."""
    cf = cho_factor(a) if factor is None else factor
    if cf is None:  # not numerically definite: least squares
        return np.linalg.lstsq(a, b, rcond=None)[0]
    if b.ndim == 1 or b.shape[1] <= _RHS_BLOCK:
        return sl.cho_solve(cf, b, check_finite=False)
    out = np.empty(b.shape)
    for c in range(0, b.shape[1], _RHS_BLOCK):
        out[:, c : c + _RHS_BLOCK] = sl.cho_solve(cf, b[:, c : c + _RHS_BLOCK], check_finite=False)
    return out


def inv_spd(a: FloatArray) -> FloatArray:
    """Inverse of a symmetric positive definite matrix (symmetrised)."""
    out = solve_spd(a, np.eye(a.shape[0]))
    return 0.5 * (out + out.T)


def dot(a: FloatArray, b: FloatArray) -> float:
    """Inner product of two long vectors without BLAS (``ddot`` is threaded)."""
    return float(np.einsum("i,i->", a, b, optimize=False))


def xt_dot(x: FloatArray, v: FloatArray) -> FloatArray:
    """``x.T @ v`` for a tall (m, k) ``x`` without BLAS."""
    return np.einsum("ij,i->j", x, v, optimize=False)


def matmul(a: FloatArray, b: FloatArray) -> FloatArray:
    """``a @ b`` for 2-D arrays, in column blocks small enough for one BLAS thread."""
    m, k = a.shape
    n = b.shape[1]
    if m * k * n <= _GEMM_LIMIT:
        return a @ b
    # At least a few columns per call: one column at a time is a matrix-vector product that
    # reads all of ``a`` from memory per column (8 MB per column at n = 1000).
    width = max(_RHS_BLOCK, _GEMM_LIMIT // max(1, m * k))
    out = np.empty((m, n))
    for c in range(0, n, width):
        out[:, c : c + width] = a @ b[:, c : c + width]
    return out
