"""Small dense linear algebra that stays out of OpenBLAS's thread pool.

The fits solve systems of size ``n_models`` (about 100). OpenBLAS runs LAPACK/BLAS-3 calls
on several threads above small thresholds (LU for ``n >= 100``, triangular solves with 16 or
more right-hand sides, matrix products above about a million multiply-adds). On a busy
machine every such call then waits for a sleeping BLAS thread to be scheduled, which costs
tens of milliseconds per call instead of a fraction of one. The systems here are symmetric
positive definite, so they use Cholesky (single-threaded below ``n = 128``), wide right-hand
sides and products are split into narrow column blocks, and long inner products (``ddot`` is
threaded too) use ``np.einsum``. Larger systems (and inverses) go by blocks below that size,
whose products are tiled (:func:`matmul`). Results are identical up to rounding.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sl

from ._typing import FloatArray

__all__: list[str] = []

_RHS_BLOCK = 8  # columns per triangular solve
_GEMM_LIMIT = 250_000  # multiply-adds per matrix product
_TILE_COLUMNS = 16  # columns of the right-hand factor per tile
_INV_BLOCK = 120  # below 128: LAPACK's Cholesky stays on one thread


def cho_factor(a: FloatArray) -> tuple[FloatArray, bool] | None:
    """Cholesky factor of a symmetric positive definite matrix (None if not definite)."""
    try:
        return sl.cho_factor(a, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return None


def solve_spd(
    a: FloatArray, b: FloatArray, factor: tuple[FloatArray, bool] | None = None
) -> FloatArray:
    """Solve ``a @ x = b`` for symmetric positive definite ``a``; ``b`` 1-D or 2-D.

    Above ``_INV_BLOCK`` rows (and without ``factor``), through the blocked inverse: about
    three times the work of LAPACK's threaded Cholesky, but on one thread it does not wait
    for the others to be scheduled (on a busy machine, 110 ms against 205 ms at n = 500).
    """
    if factor is None and a.shape[0] > _INV_BLOCK:
        inv = _inv_blocks(a)
        if inv is None:  # not numerically definite: least squares
            return np.linalg.lstsq(a, b, rcond=None)[0]
        return matmul(inv, b[:, None])[:, 0] if b.ndim == 1 else matmul(inv, b)
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
    """Inverse of a symmetric positive definite matrix (symmetrised).

    Above ``_INV_BLOCK`` rows, by blocks (Schur complements) whose products go through
    :func:`matmul`: LAPACK's inverse or triangular solves of that size run threaded.
    """
    out = _inv_blocks(a)
    if out is None:  # not numerically definite: least squares
        out = np.linalg.lstsq(a, np.eye(a.shape[0]), rcond=None)[0]
    return 0.5 * (out + out.T)


def _inv_blocks(a: FloatArray) -> FloatArray | None:
    """Inverse by halves (None if a block is not numerically definite)."""
    n = a.shape[0]
    if n <= _INV_BLOCK:
        cf = cho_factor(a)
        return None if cf is None else solve_spd(a, np.eye(n), cf)
    h = n // 2
    a11_inv = _inv_blocks(a[:h, :h])
    if a11_inv is None:
        return None
    x = matmul(a11_inv, a[:h, h:])  # A11^-1 A12
    s_inv = _inv_blocks(a[h:, h:] - matmul(a[h:, :h], x))
    if s_inv is None:
        return None
    xs = matmul(x, s_inv)
    out = np.empty((n, n))
    out[:h, :h] = a11_inv + matmul(xs, x.T)
    out[:h, h:] = -xs
    out[h:, :h] = -xs.T
    out[h:, h:] = s_inv
    return out


def dot(a: FloatArray, b: FloatArray) -> float:
    """Inner product of two long vectors without BLAS (``ddot`` is threaded)."""
    return float(np.einsum("i,i->", a, b, optimize=False))


def xt_dot(x: FloatArray, v: FloatArray) -> FloatArray:
    """``x.T @ v`` for a tall (m, k) ``x`` without BLAS."""
    return np.einsum("ij,i->j", x, v, optimize=False)


def matmul(a: FloatArray, b: FloatArray) -> FloatArray:
    """``a @ b`` for 2-D arrays, in tiles small enough for one BLAS thread.

    Tiles are narrow column blocks of ``b`` (kept in cache) times row blocks of ``a``: a
    column block alone would stream all of ``a`` from memory once per block, which made a
    (500, 500) by (500, 50) product 50 times slower than one call.
    """
    m, k = a.shape
    n = b.shape[1]
    if m * k * n <= _GEMM_LIMIT:
        return a @ b
    width = min(n, _TILE_COLUMNS)
    height = max(1, _GEMM_LIMIT // max(1, k * width))
    out = np.empty((m, n), dtype=np.result_type(a, b))
    for c in range(0, n, width):
        block = np.ascontiguousarray(b[:, c : c + width])
        for r in range(0, m, height):
            np.matmul(a[r : r + height], block, out=out[r : r + height, c : c + width])
    return out
