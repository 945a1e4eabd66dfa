"""Newton solver shared by the Bradley-Terry and Davidson fits (point fit and bootstrap).

Both models are *pair models*: the log-likelihood of a pair depends on the strengths only
through ``d = theta_i - theta_j`` (and, for Davidson, the log tie parameter ``eta``). Per-pair
derivatives are computed for a stack of ``R`` data sets at once (shape ``(R, n_pairs)``) and
assembled into model-level gradients and Hessians with the pair-incidence matrix.

Identifiability: the likelihood is unchanged by adding a constant to all strengths. Without a
prior the Newton system uses ``H + 11'/n`` (``H`` is a weighted graph Laplacian), which keeps
``sum(theta) == 0`` exactly. With a prior (virtual ties against a reference of strength 0,
see :data:`DEFAULT_PRIOR`) the Hessian is definite and the solution is centred afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.special import expit, log_expit

from ._linalg import inv_spd, solve_spd
from ._typing import ArrayLike, BoolArray, FloatArray, IntArray

__all__: list[str] = []

#: Prior strength used when the maximum-likelihood estimate does not exist: every model plays
#: this many virtual ties against a reference model of strength 0 (the mean).
DEFAULT_PRIOR = 1.0

_MAX_HALVINGS = 40
# Log-strength gaps (or |log tie parameter|) beyond this mean a diverging fit: e^30 : 1 odds.
_DIVERGED = 30.0


class DegenerateDataError(ValueError):
    """The maximum-likelihood ratings do not exist (infinite or not identified)."""


class PairData:
    """Pair structure plus fit-ready counts ``w`` of shape (n_pairs, 3): i wins, j wins, ties.

    Stacks of data sets use the layout (n_pairs, R) (pairs first, one column per data set),
    so that gathers and sparse products work on contiguous rows.
    """

    def __init__(self, n_models: int, pair_i: ArrayLike, pair_j: ArrayLike, w: ArrayLike) -> None:
        self.n = int(n_models)
        self.i = np.asarray(pair_i, dtype=np.intp)
        self.j = np.asarray(pair_j, dtype=np.intp)
        self.w = np.asarray(w, dtype=np.float64)
        self.P = self.i.size
        rows = np.arange(self.P)
        data = np.concatenate([np.ones(self.P), -np.ones(self.P)])
        # Incidence matrix (n_pairs, n_models): +1 at i, -1 at j.
        self.inc = sp.csr_matrix(
            (data, (np.concatenate([rows, rows]), np.concatenate([self.i, self.j]))),
            shape=(self.P, self.n),
        )
        self.inc_t = self.inc.T.tocsr()
        self._inc_abs_t: Any = None  # built on first use (batched Newton only)

    def diff(self, theta: FloatArray) -> FloatArray:
        """``theta[i] - theta[j]`` for theta of shape (n,) or (n, R); returns (P,) or (P, R)."""
        return self.inc @ theta

    def scatter(self, x: FloatArray) -> FloatArray:
        """Model-level sums ``sum_p x[p] (e_i - e_j)`` for x of shape (P,) or (P, R)."""
        return self.inc_t @ x

    def scatter_abs(self, x: FloatArray) -> FloatArray:
        """Model-level sums ``sum_p x[p] (e_i + e_j)``: the Laplacian's diagonal."""
        if self._inc_abs_t is None:
            self._inc_abs_t = abs(self.inc_t)
        return self._inc_abs_t @ x

    def laplacian(self, h: FloatArray) -> FloatArray:
        """Weighted graph Laplacian of one weight vector h of shape (n_pairs,)."""
        n = self.n
        lap = np.zeros((n, n))
        lap[self.i, self.j] = -h
        lap[self.j, self.i] = -h
        lap[np.diag_indices(n)] = np.bincount(self.i, h, n) + np.bincount(self.j, h, n)
        return lap


def pair_terms(
    kind: str,
    d: FloatArray,
    eta: float | FloatArray | None,
    w: Sequence[FloatArray],
    *,
    hessian: bool = True,
    loglik: bool = True,
) -> dict[str, Any]:
    """Per-pair log-likelihood and derivatives.

    Parameters
    ----------
    kind : {"bt", "davidson"}
    d : ndarray of shape (n_pairs,) or (n_pairs, R)
        Strength differences ``theta_i - theta_j``.
    eta : float, ndarray of shape (R,), or None
        Log tie parameter (Davidson only).
    w : sequence of three arrays broadcastable to ``d``
        Counts: i wins, j wins, ties.

    Returns
    -------
    dict with ``ll`` (sum over pairs), ``gd`` = d ll / d d (per pair), and when ``hessian``:
    ``hd`` = -d2 ll / d d2; for Davidson also ``ge`` (summed), ``hde`` (per pair), ``he``.
    """
    w0, w1, w2 = w
    out: dict[str, Any] = {}
    if kind == "bt":
        tot = w0 + w1 + w2
        s = w0 + 0.5 * w2
        if loglik:
            out["ll"] = (s * log_expit(d) + (tot - s) * log_expit(-d)).sum(axis=0)
        p = expit(d)
        out["gd"] = s - tot * p
        if hessian:
            out["hd"] = tot * p * (1.0 - p)
        return out
    if eta is None:
        raise ValueError("Davidson's pair terms need the log tie parameter `eta`")
    a = 0.5 * d
    e = eta
    log_z = np.logaddexp(np.logaddexp(a, -a), e)
    pi = np.exp(a - log_z)
    pj = np.exp(-a - log_z)
    pt = np.exp(e - log_z)
    tot = w0 + w1 + w2
    if loglik:
        out["ll"] = (w0 * a - w1 * a + w2 * e - tot * log_z).sum(axis=0)
    diff = pi - pj
    out["gd"] = 0.5 * (w0 - w1 - tot * diff)
    out["ge"] = (w2 - tot * pt).sum(axis=0)
    if hessian:
        out["hd"] = 0.25 * tot * ((pi + pj) - diff * diff)
        out["hde"] = -0.5 * tot * diff * pt
        out["he"] = (tot * pt * (1.0 - pt)).sum(axis=0)
    return out


def prior_terms(theta: FloatArray, prior: float) -> tuple[Any, FloatArray, FloatArray]:
    """Log-prior of ``prior`` virtual ties per model against strength 0, with derivatives."""
    q = expit(theta)
    ll = prior * 0.5 * (log_expit(theta) + log_expit(-theta)).sum(axis=0)
    return ll, prior * (0.5 - q), prior * q * (1.0 - q)


def degeneracy_notes(data: PairData) -> list[str]:
    """Reasons why the maximum-likelihood estimate does not exist (empty when it does).

    The MLE with ties counted half each way exists and is unique up to a shift iff the
    directed graph with an edge i -> j whenever i scored against j (won or tied) is
    strongly connected (Zermelo 1929; Ford 1957).
    """
    n = data.n
    w = data.w
    tot = w.sum(axis=1)
    notes: list[str] = []
    has = np.zeros(n, dtype=bool)
    has[data.i[tot > 0]] = True
    has[data.j[tot > 0]] = True
    if not has.all():
        ids = np.flatnonzero(~has).tolist()
        notes.append(f"models with no battles: {ids}")
    if n == 1:
        return notes
    fwd = (w[:, 0] + w[:, 2]) > 0
    bwd = (w[:, 1] + w[:, 2]) > 0
    rows = np.concatenate([data.i[fwd], data.j[bwd]])
    cols = np.concatenate([data.j[fwd], data.i[bwd]])
    graph = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    n_strong, label = connected_components(graph, directed=True, connection="strong")
    if n_strong == 1:
        return notes
    n_weak, wlabel = connected_components(graph, directed=True, connection="weak")
    if n_weak > 1:
        pieces = [np.flatnonzero(wlabel == k).tolist() for k in range(n_weak)]
        pieces = [p for p in pieces if len(p) > 1 or has[p[0]]]
        if len(pieces) > 1:
            notes.append(
                f"the comparison graph falls into {len(pieces)} disconnected pieces: {pieces}"
            )
    # Condensation: components with no edge leaving / entering them (within their piece).
    src = label[rows]
    dst = label[cols]
    cross = src != dst
    out_deg = np.bincount(src[cross], minlength=n_strong)
    in_deg = np.bincount(dst[cross], minlength=n_strong)
    for k in range(n_strong):
        members = np.flatnonzero(label == k)
        if not has[members].any():
            continue
        ids = members.tolist()
        who = f"model {ids}" if len(ids) == 1 else f"models {ids}"
        others = "" if len(ids) == 1 else " against models outside this group"
        if in_deg[k] == 0 and out_deg[k] > 0:
            notes.append(f"{who} never lost or tied{others}")
        elif out_deg[k] == 0 and in_deg[k] > 0:
            notes.append(f"{who} never won or tied{others}")
    return notes


def newton_fit(
    kind: str,
    data: PairData,
    *,
    prior: float,
    theta0: ArrayLike | None = None,
    eta0: float = 0.0,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> tuple[FloatArray, float | None, float, int]:
    """Maximise the (penalised) log-likelihood of one data set by damped Newton.

    Returns ``(theta, eta, loglik, n_iter)``; ``theta`` has mean zero, ``eta`` is None for BT;
    ``loglik`` excludes the prior.

    Raises
    ------
    DegenerateDataError
        If the parameters diverge (no finite maximum exists), naming the models concerned.
    RuntimeError
        If Newton's method does not converge in ``max_iter`` iterations.
    """
    n = data.n
    dav = kind == "davidson"
    theta = np.zeros(n) if theta0 is None else np.array(theta0, dtype=np.float64)
    eta = float(eta0) if dav else 0.0
    w = (data.w[:, 0], data.w[:, 1], data.w[:, 2])

    def objective(th: FloatArray, et: float) -> tuple[float, dict[str, Any]]:
        terms = pair_terms(kind, data.diff(th), et, w)
        ll = float(terms["ll"])
        if prior > 0:
            ll += float(prior_terms(th, prior)[0])
        return ll, terms

    ll, terms = objective(theta, eta)
    n_iter = 0
    for _ in range(max_iter):
        n_iter += 1
        g = data.scatter(terms["gd"])
        hess = data.laplacian(terms["hd"])
        if prior > 0:
            _, pg, ph = prior_terms(theta, prior)
            g = g + pg
            hess[np.diag_indices(n)] += ph
        else:
            hess += 1.0 / n
        if dav:
            c = data.scatter(terms["hde"])
            full = np.empty((n + 1, n + 1))
            full[:n, :n] = hess
            full[:n, n] = c
            full[n, :n] = c
            full[n, n] = terms["he"]
            step = solve_spd(full, np.append(g, terms["ge"]))
            dtheta, deta = step[:n], float(step[n])
        else:
            dtheta = solve_spd(hess, g)
            deta = 0.0
        t = 1.0
        for _ in range(_MAX_HALVINGS):
            new_theta, new_eta = theta + t * dtheta, eta + t * deta
            new_ll, new_terms = objective(new_theta, new_eta)
            if new_ll >= ll - 1e-12 * max(1.0, abs(ll)):
                break
            t *= 0.5
        else:
            raise RuntimeError("Newton line search failed to increase the likelihood")
        theta, eta, ll, terms = new_theta, new_eta, new_ll, new_terms
        spread = np.abs(theta - np.median(theta))
        if spread.max() > _DIVERGED or abs(eta) > _DIVERGED:
            ids = np.flatnonzero(spread > _DIVERGED / 2).tolist()
            what = "the tie parameter and " if abs(eta) > _DIVERGED else ""
            raise DegenerateDataError(
                f"the maximum-likelihood estimate does not exist: {what}the strengths of models "
                f"{ids} diverge"
            )
        if max(np.max(np.abs(t * dtheta)), abs(t * deta)) < tol:
            break
    else:
        raise RuntimeError(f"Newton's method did not converge in {max_iter} iterations")
    theta = theta - theta.mean()
    loglik = float(pair_terms(kind, data.diff(theta), eta, w)["ll"])
    return theta, (eta if dav else None), loglik, n_iter


def newton_fit_bt_batch(
    data: PairData,
    w: Sequence[FloatArray],
    *,
    prior: float,
    tol: float,
    theta0: ArrayLike | None = None,
    max_iter: int = 100,
) -> tuple[FloatArray, BoolArray]:
    """:func:`newton_fit` for Bradley-Terry on many data sets at once.

    ``w``: the three count arrays, each (n_pairs, R); ``theta0``: (n, R) starting points
    (zero when None). Every data set follows the same damped Newton iteration as
    ``newton_fit`` would on its own, but the R small systems are solved in one batched LAPACK
    call per iteration instead of R Python-level fits (small boards have many bootstrap rounds
    that need one).

    Returns ``(theta (n, R) centred, converged (R,) bool)``. A data set that did not converge,
    whose line search failed or whose strengths diverge (no finite MLE without a prior) is
    marked not converged and left to the caller.
    """
    n, n_sets = data.n, w[0].shape[1]
    theta = np.zeros((n, n_sets)) if theta0 is None else np.array(theta0, dtype=np.float64)
    active = np.ones(n_sets, dtype=bool)
    converged = np.zeros(n_sets, dtype=bool)
    diag = np.arange(n)

    def objective(th: FloatArray, cols: slice | IntArray) -> tuple[FloatArray, dict[str, Any]]:
        terms = pair_terms("bt", data.diff(th), None, tuple(x[:, cols] for x in w))
        if prior > 0:
            terms["ll"] = terms["ll"] + prior_terms(th, prior)[0]
        return terms["ll"], terms

    def better(new: FloatArray, old: FloatArray) -> BoolArray:
        return new >= old - 1e-12 * np.maximum(1.0, np.abs(old))

    ll, terms = objective(theta, slice(None))
    for _ in range(max_iter):
        cols = np.flatnonzero(active)
        if not cols.size:
            break
        th, hd = theta[:, cols], terms["hd"]
        g = data.scatter(terms["gd"])
        degree = data.scatter_abs(hd)
        hess = np.zeros((cols.size, n, n))
        hess[:, data.i, data.j] = -hd.T
        hess[:, data.j, data.i] = -hd.T
        if prior > 0:
            _, pg, ph = prior_terms(th, prior)
            g += pg
            degree += ph
        else:
            hess += 1.0 / n  # pins the mean, as in newton_fit
        hess[:, diag, diag] += degree.T
        try:
            step = np.linalg.solve(hess, g.T[:, :, None])[:, :, 0].T
        except np.linalg.LinAlgError:  # a singular system: leave these to the single fits
            break
        t = np.ones(cols.size)
        new_ll, new_terms = objective(th + step, cols)
        ok = better(new_ll, ll[cols])
        for _ in range(_MAX_HALVINGS):
            if ok.all():
                break
            retry = np.flatnonzero(~ok)
            t[retry] *= 0.5
            trial_ll, trial = objective(th[:, retry] + t[retry] * step[:, retry], cols[retry])
            new_ll[retry] = trial_ll
            for key in ("gd", "hd"):
                new_terms[key][:, retry] = trial[key]
            ok[retry] = better(trial_ll, ll[cols[retry]])
        moved = t * step
        theta[:, cols] = th + moved
        ll[cols] = new_ll
        spread = np.abs(theta[:, cols] - np.median(theta[:, cols], axis=0)).max(axis=0)
        failed = ~ok | ~np.isfinite(new_ll) | (spread > _DIVERGED)
        done = (np.max(np.abs(moved), axis=0) < tol) & ~failed
        converged[cols[done]] = True
        active[cols[done | failed]] = False
        keep = ~(done | failed)
        terms = {key: new_terms[key][:, keep] for key in ("gd", "hd")}
    theta -= theta.mean(axis=0)
    return theta, converged


def information(
    kind: str, data: PairData, theta: FloatArray, eta: float | None, prior: float
) -> FloatArray:
    """Observed information (negative Hessian), (n, n) or (n + 1, n + 1) with Davidson's eta."""
    n = data.n
    dav = kind == "davidson"
    w = (data.w[:, 0], data.w[:, 1], data.w[:, 2])
    terms = pair_terms(kind, data.diff(theta), eta, w)
    hess = data.laplacian(terms["hd"])
    if prior > 0:
        hess[np.diag_indices(n)] += prior_terms(theta, prior)[2]
    if not dav:
        return hess
    c = data.scatter(terms["hde"])
    full = np.empty((n + 1, n + 1))
    full[:n, :n] = hess
    full[:n, n] = c
    full[n, :n] = c
    full[n, n] = terms["he"]
    return full


def constrained_inverse(info: FloatArray, n: int, prior: float) -> FloatArray:
    """Inverse of the information on the sum-zero subspace (the strengths are centred)."""
    m = info.copy()
    if prior <= 0:
        m[:n, :n] += 1.0 / n
    inv = inv_spd(m)
    if prior > 0:
        return center(inv, n)
    inv[:n, :n] -= 1.0 / n
    return inv


def center(v: FloatArray, n: int) -> FloatArray:
    """``C v C'`` with ``C`` centring the first ``n`` coordinates (identity on the rest)."""
    out = v.copy()
    out[:n] -= out[:n].mean(axis=0)
    out[:, :n] -= out[:, :n].mean(axis=1, keepdims=True)
    return out
