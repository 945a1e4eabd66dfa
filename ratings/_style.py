"""Style control: answer features from text, and Bradley-Terry with style covariates.

Features per answer (:func:`answer_features`, columns :data:`FEATURES`):

* ``tokens``: the answer's length in tokens. Pass ``token_counts`` when the provider reported
  them; otherwise a tokenizer-free estimate, :func:`estimate_tokens`, counts words and
  punctuation marks (``\\w+|[^\\w\\s]``), which tracks subword token counts of English prose
  to within a roughly constant factor (the factor cancels in the ratio below).
* ``headers``, ``list_items``, ``bold``: Markdown headers (``#`` .. ``######``), list items
  (``-``, ``*``, ``+`` or ``1.``/``1)``) and bold spans (``**x**`` or ``__x__``), counted after
  removing fenced code blocks (as in FastChat's style control).

Per battle, each feature becomes ``(a - b) / (a + b + 1)`` and is standardised to mean 0 and
standard deviation 1 over the battles (:func:`battle_features`).

Contextual Bradley-Terry (:func:`fit_style`): ``P(A beats B) = expit(theta_a - theta_b +
x @ beta)`` with ties counted as half a win, ratings unpenalised (identified by mean zero) and a
small L2 penalty ``l2 / 2 * |beta|**2`` on the style coefficients. The style-controlled ratings
are what the models would score if their answers had the same style. Intervals:
:func:`ratings.sandwich` or :func:`ratings.bootstrap` (battles resampled with replacement)
accept a :class:`StyleFit` and also give intervals for ``beta``.

References
----------
T. Li, A. Angelopoulos, W.-L. Chiang, "Does style matter? Disentangling style and substance in
Chatbot Arena", LMSYS blog, 2024.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit

from ._aggregate import aggregate
from ._fit import RatingFit, elo_scale, pair_data, prior_value
from ._linalg import dot, solve_spd, xt_dot
from ._outcomes import BOTH_BAD, SCORE_OF_A
from ._solver import degeneracy_notes, prior_terms
from ._typing import Anchor, ArrayLike, BoolArray, FloatArray, IntArray, Prior
from ._validation import anchor_iv, battles_iv, choice_iv

__all__ = [
    "FEATURES",
    "StyleFeatures",
    "StyleFit",
    "answer_features",
    "battle_features",
    "estimate_tokens",
    "fit_style",
]

#: Columns of :func:`answer_features`.
FEATURES = ("tokens", "headers", "list_items", "bold")

_CODE = re.compile(r"(```|~~~).*?(?:\1|\Z)", re.DOTALL)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_HEADER = re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.MULTILINE)
_LIST = re.compile(r"^[ \t]*(?:[-*+]|\d+[.)])[ \t]+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*(?=\S)[^\n]*?\S\*\*|__(?=\S)[^\n]*?\S__")


def estimate_tokens(text: str) -> int:
    """Tokenizer-free token estimate: the number of words and punctuation marks."""
    return len(_TOKEN.findall(text))


def answer_features(texts: Iterable[str], *, token_counts: ArrayLike | None = None) -> FloatArray:
    """Style features of answers.

    Parameters
    ----------
    texts : sequence of str, length n_answers
    token_counts : array-like of shape (n_answers,), optional
        Real token counts; replaces :func:`estimate_tokens`.

    Returns
    -------
    ndarray of shape (n_answers, 4)
        Columns :data:`FEATURES`: tokens, headers, list items, bold spans.
    """
    items: list[Any] = list(texts)
    out = np.zeros((len(items), len(FEATURES)))
    for k, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"`texts` must hold strings; element {k} is {type(text).__name__}")
        prose = _CODE.sub("", text)
        out[k] = (
            estimate_tokens(text),
            len(_HEADER.findall(prose)),
            len(_LIST.findall(prose)),
            len(_BOLD.findall(prose)),
        )
    if token_counts is not None:
        tc = np.asarray(token_counts, dtype=np.float64)
        if tc.shape != (len(items),) or np.any(~np.isfinite(tc)) or np.any(tc < 0):
            raise ValueError(f"`token_counts` must be {len(items)} finite non-negative numbers")
        out[:, 0] = tc
    return out


@dataclass(frozen=True, eq=False)
class StyleFeatures:
    """Standardised per-battle style features.

    Attributes
    ----------
    values : ndarray of shape (n_battles, n_features)
        ``((a - b) / (a + b + 1) - mean) / std`` per column.
    names : tuple of str
    mean, std : ndarray of shape (n_features,)
        Of the raw ratios (``std`` is 1 where a column is constant).
    """

    values: FloatArray
    names: tuple[str, ...]
    mean: FloatArray
    std: FloatArray


def battle_features(
    features_a: ArrayLike,
    features_b: ArrayLike,
    *,
    names: Sequence[str] = FEATURES,
    columns: Sequence[str] | None = None,
) -> StyleFeatures:
    """Per-battle style features ``(a - b) / (a + b + 1)``, standardised.

    Parameters
    ----------
    features_a, features_b : array-like of shape (n_battles, n_features)
        Answer features of the A and B answers (for example from :func:`answer_features`).
    names : sequence of str
        Column names of the inputs.
    columns : sequence of str, optional
        Keep only these columns (for example ``["tokens"]`` for length-only control).

    Returns
    -------
    StyleFeatures
    """
    fa = np.asarray(features_a, dtype=np.float64)
    fb = np.asarray(features_b, dtype=np.float64)
    if fa.ndim != 2 or fa.shape != fb.shape:
        raise ValueError(
            f"`features_a` and `features_b` must be 2-D of equal shape, got {fa.shape}, {fb.shape}"
        )
    cols = tuple(names)
    if len(cols) != fa.shape[1]:
        raise ValueError(f"`names` must have {fa.shape[1]} entries, got {len(cols)}")
    if np.any(~np.isfinite(fa)) or np.any(~np.isfinite(fb)) or np.any(fa < 0) or np.any(fb < 0):
        raise ValueError("style features must be finite and non-negative")
    if columns is not None:
        unknown = [c for c in columns if c not in cols]
        if unknown:
            raise ValueError(f"unknown style columns {unknown}; known: {list(cols)}")
        idx = [cols.index(c) for c in columns]
        fa, fb, cols = fa[:, idx], fb[:, idx], tuple(columns)
    ratio = (fa - fb) / (fa + fb + 1.0)
    mean = ratio.mean(axis=0) if len(ratio) else np.zeros(ratio.shape[1])
    std = ratio.std(axis=0) if len(ratio) else np.ones(ratio.shape[1])
    std = np.where(std > 0, std, 1.0)
    return StyleFeatures((ratio - mean) / std, cols, mean, std)


@dataclass(frozen=True, eq=False)
class StyleFit(RatingFit):
    """A style-controlled Bradley-Terry fit (a :class:`RatingFit` with style coefficients).

    Attributes
    ----------
    coef : ndarray of shape (n_features,)
        Style coefficients ``beta`` in natural-log odds per standard deviation of the
        feature; multiply by :data:`ratings.SCALE` for Elo points.
    feature_names : tuple of str
    l2 : float
        L2 penalty on ``beta``.
    problem : StyleProblem
        The battles and the penalised likelihood that was maximised (what
        :func:`ratings.bootstrap` and :func:`ratings.sandwich` resample and differentiate).
    """

    coef: FloatArray
    feature_names: tuple[str, ...]
    l2: float
    problem: StyleProblem = field(repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.coef.flags.writeable = False


class StyleProblem:
    """Battle-level arrays and the penalised log-likelihood's derivatives.

    Model-level sums use one ``np.bincount`` on the ordered-pair key ``a * n + b``: with
    ``M`` the (n, n) sums per ordered pair, ``sum_k v_k (e_a - e_b) = M.sum(1) - M.sum(0)``.
    """

    def __init__(
        self,
        n: int,
        a: IntArray,
        b: IntArray,
        y: FloatArray,
        w: FloatArray,
        x: FloatArray,
        l2: float,
        prior: float,
    ) -> None:
        self.n, self.a, self.b, self.y, self.w = n, a, b, y, w
        self.x = np.asfortranarray(x, dtype=np.float64)  # contiguous columns
        self.k = x.shape[1]
        self.l2, self.prior = l2, prior
        self.key = a * n + b

    def _model_sums(self, v: FloatArray) -> FloatArray:
        m = np.bincount(self.key, v, self.n * self.n).reshape(self.n, self.n)
        return m.sum(axis=1) - m.sum(axis=0)

    def with_prior(self, prior: float) -> StyleProblem:
        """The same problem with another prior (the arrays are shared, not copied)."""
        out = copy.copy(self)
        out.prior = prior
        return out

    def eta(self, theta: FloatArray, beta: FloatArray) -> FloatArray:
        e = theta[self.a] - theta[self.b]
        for c in range(self.k):
            e += beta[c] * self.x[:, c]
        return e

    def loglik(
        self,
        theta: FloatArray,
        beta: FloatArray,
        w: FloatArray | None = None,
        eta: FloatArray | None = None,
    ) -> float:
        """Log-likelihood; ``y log expit(e) + (1 - y) log expit(-e) = -log1p(exp(-e)) -
        (1 - y) e``."""
        w = self.w if w is None else w
        e = self.eta(theta, beta) if eta is None else eta
        return float(dot(w, -np.logaddexp(0.0, -e) - (1.0 - self.y) * e))

    def objective(
        self,
        theta: FloatArray,
        beta: FloatArray,
        w: FloatArray | None = None,
        eta: FloatArray | None = None,
    ) -> float:
        val = self.loglik(theta, beta, w, eta) - 0.5 * self.l2 * float(beta @ beta)
        if self.prior > 0:
            val += float(prior_terms(theta, self.prior)[0])
        return val

    def gradient(
        self,
        theta: FloatArray,
        beta: FloatArray,
        w: FloatArray | None = None,
        p: FloatArray | None = None,
        *,
        single: bool = False,
    ) -> FloatArray:
        """Gradient of the penalised log-likelihood; ``single`` evaluates the logistic
        function in float32 (accurate to a few 1e-7, used by the bootstrap's first steps)."""
        w = self.w if w is None else w
        if p is None and single:
            e = (-self.eta(theta, beta)).astype(np.float32)
            np.exp(e, out=e)
            e += 1.0
            p = np.reciprocal(e, out=e)
        elif p is None:
            p = expit(self.eta(theta, beta))
        r = w * (self.y - p)
        g_theta = self._model_sums(r)
        if self.prior > 0:
            g_theta += prior_terms(theta, self.prior)[1]
        g_beta = xt_dot(self.x, r) - self.l2 * beta
        return np.concatenate([g_theta, g_beta])

    def information(
        self,
        theta: FloatArray,
        beta: FloatArray,
        w: FloatArray | None = None,
        p: FloatArray | None = None,
    ) -> FloatArray:
        """Negative Hessian of the penalised log-likelihood, shape (n + k, n + k)."""
        w = self.w if w is None else w
        if p is None:
            p = expit(self.eta(theta, beta))
        return self.assemble(w * p * (1 - p), with_penalty=True, theta=theta)

    def assemble(self, h: FloatArray, *, with_penalty: bool, theta: FloatArray) -> FloatArray:
        """``sum_battles h [u; x][u; x]'`` (plus the penalty's Hessian when asked)."""
        n, k = self.n, self.k
        m = np.bincount(self.key, h, n * n).reshape(n, n)
        m = m + m.T
        out = np.empty((n + k, n + k))
        out[:n, :n] = -m
        out[np.diag_indices(n)] = m.sum(axis=1)
        for c in range(k):
            hx = h * self.x[:, c]
            out[:n, n + c] = out[n + c, :n] = self._model_sums(hx)
            out[n:, n + c] = xt_dot(self.x, hx)
        if with_penalty:
            out[n:, n:] += self.l2 * np.eye(k)
            if self.prior > 0:
                out[np.diag_indices(n)] += prior_terms(theta, self.prior)[2]
        return out

    def shifted(self, info: FloatArray) -> FloatArray:
        """Information plus ``11'/n`` on the strengths when they are only identified up to
        a shift (no prior)."""
        if self.prior > 0:
            return info
        out = info.copy()
        out[: self.n, : self.n] += 1.0 / self.n
        return out

    def newton(
        self,
        theta: FloatArray,
        beta: FloatArray,
        *,
        w: FloatArray | None = None,
        tol: float = 1e-10,
        max_iter: int = 100,
    ) -> tuple[FloatArray, FloatArray, int]:
        n = self.n
        e = self.eta(theta, beta)
        val = self.objective(theta, beta, w, e)
        it = 0
        for _ in range(max_iter):
            it += 1
            p = expit(e)
            g = self.gradient(theta, beta, w, p)
            step = solve_spd(self.shifted(self.information(theta, beta, w, p)), g)
            t = 1.0
            for _ in range(40):
                th, be = theta + t * step[:n], beta + t * step[n:]
                e_new = self.eta(th, be)
                new = self.objective(th, be, w, e_new)
                if new >= val - 1e-12 * max(1.0, abs(val)):
                    break
                t *= 0.5
            else:
                raise RuntimeError("Newton line search failed to increase the likelihood")
            theta, beta, val, e = th, be, new, e_new
            if np.max(np.abs(t * step)) < tol:
                break
        else:
            raise RuntimeError(f"Newton's method did not converge in {max_iter} iterations")
        return theta - theta.mean(), beta, it


def _scores(outcome: IntArray, both_bad: str) -> tuple[FloatArray, BoolArray]:
    """Score of A per battle (1, 0, 1/2) and which battles are used."""
    y = np.array(SCORE_OF_A)[outcome]
    keep = np.ones(outcome.size, dtype=bool) if both_bad == "tie" else outcome != BOTH_BAD
    return y, keep


def fit_style(
    n_models: int,
    model_a: ArrayLike,
    model_b: ArrayLike,
    outcome: ArrayLike,
    features: StyleFeatures | ArrayLike,
    weights: ArrayLike | None = None,
    *,
    feature_names: Sequence[str] | None = None,
    l2: float = 1.0,
    both_bad: str = "tie",
    prior: Prior = "auto",
    anchor: Anchor = None,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> StyleFit:
    """Fit style-controlled Bradley-Terry ratings (contextual BT).

    Parameters
    ----------
    n_models : int
    model_a, model_b : array-like of int, shape (n_battles,)
    outcome : array-like of int, shape (n_battles,)
    features : StyleFeatures or array-like of shape (n_battles, n_features)
        Per-battle style covariates, from A's side (for example :func:`battle_features`).
    weights : array-like of shape (n_battles,), optional
    feature_names : sequence of str, optional
        Names when ``features`` is a plain array.
    l2 : float, default 1.0
        L2 penalty on the style coefficients (a N(0, 1/l2) prior on each standardised
        coefficient); must be positive.
    both_bad, prior, anchor, tol, max_iter
        As in :func:`ratings.fit_bt`.

    Returns
    -------
    StyleFit
        ``ratings`` are the style-controlled ratings, ``coef`` the style coefficients.

    Raises
    ------
    DegenerateDataError
        With ``prior=0`` when the ratings' MLE does not exist.
    RuntimeError
        If Newton's method does not converge.
    """
    n, a, b, o, w, _ = battles_iv(n_models, model_a, model_b, outcome, weights)
    both_bad = choice_iv(both_bad, "both_bad", ("tie", "drop"))
    anchor = anchor_iv(anchor, n)
    if isinstance(features, StyleFeatures):
        names = features.names
        x = features.values
    else:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        names = (
            tuple(feature_names)
            if feature_names is not None
            else tuple(f"x{c}" for c in range(x.shape[1]))
        )
    if x.ndim != 2 or x.shape[0] != a.size:
        raise ValueError(f"`features` must have shape ({a.size}, n_features), got {x.shape}")
    if len(names) != x.shape[1]:
        raise ValueError(f"`feature_names` must have {x.shape[1]} entries")
    if not np.all(np.isfinite(x)):
        raise ValueError("`features` must be finite")
    l2 = float(l2)
    if not (np.isfinite(l2) and l2 > 0):
        raise ValueError(f"`l2` must be positive, got {l2}")
    y, keep = _scores(o, both_bad)
    wt = np.ones(a.size) if w is None else w
    a, b, y, wt, x = a[keep], b[keep], y[keep], wt[keep], np.ascontiguousarray(x[keep])

    counts = aggregate(n, a, b, o[keep], None if w is None else wt)
    data, _ = pair_data(counts, both_bad)
    notes = degeneracy_notes(data)
    value = prior_value(prior, notes)
    prob = StyleProblem(n, a, b, y, wt, x, l2, value)
    theta, beta, n_iter = prob.newton(np.zeros(n), np.zeros(x.shape[1]), tol=tol, max_iter=max_iter)
    return StyleFit(
        method="bt",
        n_models=n,
        theta=theta,
        ratings=elo_scale(theta, anchor),
        tie=None,
        log_tie=None,
        loglik=prob.loglik(theta, beta),
        n_iter=n_iter,
        prior=value,
        notes=tuple(notes) if value > 0 else (),
        anchor=anchor,
        both_bad=both_bad,
        counts=counts,
        bias_reduced=False,
        coef=beta,
        feature_names=tuple(names),
        l2=l2,
        problem=prob,
    )
