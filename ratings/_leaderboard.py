"""One call from battles (or pair counts) to a leaderboard: fit, intervals, ranks, counts.

:func:`leaderboard` takes raw battle arrays; :func:`leaderboard_from_counts` takes
:class:`ratings.PairCounts` (for counts kept incrementally, e.g. by a ``GROUP BY`` query).
Both return a :class:`Leaderboard` whose rows are the models that have at least one battle,
ordered by rating (highest first). Models with no battles are left out (they have no rating);
models with fewer than ``min_votes`` battles are listed with their rating and interval but are
not ranked (rank fields 0 in the arrays, ``None`` in :meth:`Leaderboard.rows`).

Ranks: ``rank`` by rating among ranked models; ``rank_ub`` = 1 + number of ranked models whose
lower bound is above this model's upper bound; ``rank_lower``/``rank_upper`` = the
``confidence_level`` range of the rank over the bootstrap resamples (for sandwich intervals: over
draws from the estimated normal distribution of the ratings, seeded by ``rng``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from ._aggregate import PairCounts, aggregate
from ._board import Leaderboard
from ._bradley_terry import fit_bt
from ._davidson import fit_davidson
from ._elo import online_elo
from ._fit import SCALE, RatingFit
from ._intervals import Intervals, bootstrap
from ._linalg import cho_factor, matmul
from ._outcomes import BOTH_BAD
from ._ranks import rank_stats
from ._sandwich import sandwich
from ._style import StyleFeatures, StyleFit, fit_style
from ._typing import Anchor, ArrayLike, FloatArray, IntArray, Prior, Seed
from ._validation import alpha_of, battles_iv, choice_iv, confidence_level_iv, positive_int_iv

__all__ = ["leaderboard", "leaderboard_from_counts"]

METHODS = ("bt", "davidson", "elo")
_MIN_WIDTH = 1e-3  # Elo points: narrower intervals mean the data cannot bound the rating
CIS = ("bootstrap", "sandwich", "none")


def _common_iv(
    method: str, ci: str, n_resamples: int, confidence_level: float, min_votes: int, both_bad: str
) -> tuple[str, str, int, float, int, str]:
    method = choice_iv(method, "method", METHODS)
    ci = choice_iv(ci, "ci", CIS)
    n_resamples = positive_int_iv(n_resamples, "n_resamples")
    confidence_level = confidence_level_iv(confidence_level)
    min_votes = positive_int_iv(min_votes, "min_votes", minimum=0)
    both_bad = choice_iv(both_bad, "both_bad", ("tie", "drop"))
    return method, ci, n_resamples, confidence_level, min_votes, both_bad


def present_models(
    votes: IntArray, anchor: Anchor
) -> tuple[IntArray, IntArray, dict[int, float] | None]:
    """Ids of the models with battles, the map of all ids to them (-1: none), and ``anchor``
    in the new ids."""
    ids = np.flatnonzero(votes > 0)
    new_id = np.full(votes.size, -1, dtype=np.intp)
    new_id[ids] = np.arange(ids.size)
    sub_anchor = None
    if anchor is not None:
        items = list(dict(anchor).items()) if not isinstance(anchor, tuple) else [anchor]
        if len(items) != 1:
            raise ValueError(f"`anchor` must name exactly one model, got {len(items)}")
        model, rating = items[0]
        if not (0 <= int(model) < votes.size) or new_id[int(model)] < 0:
            raise ValueError(f"`anchor` model {model} has no battles")
        sub_anchor = {int(new_id[int(model)]): float(rating)}
    return ids, new_id, sub_anchor


def rename_notes(notes: Iterable[str], labels: Sequence[object]) -> tuple[str, ...]:
    """Rewrite the model-id lists ``[i, j, ...]`` in notes to ``labels[i]``, ``labels[j]``.

    Used to turn re-indexed ids back into the caller's ids (and, in the CLI, into names).
    """

    def repl(m: re.Match[str]) -> str:
        inner = m.group(1)
        if not inner.strip():
            return m.group(0)
        parts = [p.strip() for p in inner.split(",")]
        if not all(p.isdigit() for p in parts):
            return m.group(0)
        return "[" + ", ".join(str(labels[int(p)]) for p in parts) + "]"

    return tuple(re.sub(r"\[([0-9, ]*)\]", repl, note) for note in notes)


def assemble_board(
    *,
    ids: IntArray,
    fit: RatingFit | None,
    ratings: FloatArray,
    iv: Intervals | None,
    samples: FloatArray | None,
    counts: PairCounts,
    both_bad: str,
    method: str,
    ci: str,
    n_resamples: int,
    confidence_level: float,
    min_votes: int,
    anchor: Anchor,
) -> Leaderboard:
    """The :class:`Leaderboard` of a fit (or Elo ratings) on the models ``ids``."""
    include_bb = both_bad == "tie"
    wins = counts.wins()
    losses = counts.losses()
    ties = counts.ties(both_bad=include_bb)
    votes = wins + losses + ties
    lower = ratings if iv is None else iv.lower
    upper = ratings if iv is None else iv.upper
    ranked = votes >= max(min_votes, 1)
    estimable = np.ones(ratings.size, dtype=bool)
    if iv is not None:
        # A zero-width interval is not a certain rating but one the data cannot bound (one
        # battle, only ties, a model every resample treats alike): NaN, a note, and the
        # widest rank range, so that interval and rank range say the same thing.
        estimable = np.asarray(upper) - np.asarray(lower) > _MIN_WIDTH
        if anchor is not None:
            estimable[_anchor_row(anchor, ids)] = True  # fixed by definition
        if not estimable.all():
            lower = np.where(estimable, lower, np.nan)
            upper = np.where(estimable, upper, np.nan)
    rk = rank_stats(
        ratings, lower, upper, samples=samples, confidence_level=confidence_level, ranked=ranked
    )
    unknown = ~estimable & ranked
    if unknown.any():
        rk = replace(
            rk,
            rank_lower=np.where(unknown, 1, rk.rank_lower),
            rank_upper=np.where(unknown, int(ranked.sum()), rk.rank_upper),
        )
    order = np.lexsort((ids, -ratings))
    tie = tie_lo = tie_hi = None
    style_names: tuple[str, ...] = ()
    coef = coef_lo = coef_hi = None
    notes: tuple[str, ...] = ()
    if fit is not None:
        notes = rename_notes(fit.notes, [int(i) for i in ids])
        if fit.tie is not None:
            tie = fit.tie
            if iv is not None:
                tie_lo, tie_hi = iv.tie_lower, iv.tie_upper
        if isinstance(fit, StyleFit):
            style_names = fit.feature_names
            coef = SCALE * np.asarray(fit.coef)
            if iv is not None and iv.coef_lower is not None and iv.coef_upper is not None:
                coef_lo, coef_hi = SCALE * iv.coef_lower, SCALE * iv.coef_upper
            else:
                coef_lo, coef_hi = coef.copy(), coef.copy()
    if not estimable.all():
        missing = [int(i) for i in np.asarray(ids)[~estimable]]
        notes = notes + (
            f"the data cannot bound the ratings of models {missing} ({ci} intervals of zero "
            "width); their intervals are NaN and their rank ranges span every rank",
        )
    if iv is not None and iv.n_degenerate:
        notes = notes + (
            f"{iv.n_degenerate} bootstrap resamples had no finite MLE and used the small prior",
        )
    board_anchor = None
    if anchor is not None:
        ((a_model, a_rating),) = dict(anchor).items() if not isinstance(anchor, tuple) else [anchor]
        board_anchor = (int(a_model), float(a_rating))
    return Leaderboard(
        model=np.asarray(ids)[order],
        rating=np.asarray(ratings)[order],
        lower=np.asarray(lower)[order],
        upper=np.asarray(upper)[order],
        rank=rk.rank[order],
        rank_lower=rk.rank_lower[order],
        rank_upper=rk.rank_upper[order],
        rank_ub=rk.rank_ub[order],
        rank_median=rk.rank_median[order],
        ranked=ranked[order],
        votes=votes[order],
        wins=wins[order],
        losses=losses[order],
        ties=ties[order],
        method=method,
        ci=ci,
        n_resamples=0 if ci == "none" else n_resamples,
        confidence_level=confidence_level,
        min_votes=min_votes,
        anchor=board_anchor,
        tie=tie,
        tie_lower=tie_lo,
        tie_upper=tie_hi,
        style_names=style_names,
        style_coef=coef,
        style_lower=coef_lo,
        style_upper=coef_hi,
        notes=notes,
        fit=fit,
        intervals=iv,
        estimable=estimable[order],
    )


def _anchor_row(anchor: Anchor, ids: IntArray) -> IntArray:
    """Position in ``ids`` of the anchor model (empty when it is not among them)."""
    if anchor is None:
        return np.zeros(0, dtype=np.intp)
    ((model, _),) = dict(anchor).items() if not isinstance(anchor, tuple) else [anchor]
    return np.flatnonzero(np.asarray(ids) == int(model))


def board_intervals(
    fit: RatingFit,
    ci: str,
    n_resamples: int,
    rng: Seed,
    confidence_level: float,
    workers: int | None,
) -> tuple[Intervals | None, FloatArray | None]:
    """Intervals of ``fit`` by ``ci``, and rating samples for the rank ranges."""
    if ci == "none":
        return None, None
    if ci == "bootstrap":
        iv = bootstrap(
            fit,
            n_resamples=n_resamples,
            rng=rng,
            confidence_level=confidence_level,
            workers=workers,
        )
        return iv, iv.rating_samples(fit)
    iv = sandwich(fit, confidence_level=confidence_level)
    # Rank ranges from draws of the asymptotic normal distribution of the ratings. The
    # covariance is singular (centred or anchored); a tiny ridge makes it factorable.
    cov = SCALE**2 * iv.cov
    n = cov.shape[0]
    ridge = 1e-10 * max(float(np.trace(cov)) / n, 1e-12)
    factor = cho_factor(cov + ridge * np.eye(n))
    if factor is None:
        vals, vecs = np.linalg.eigh(cov)
        root = vecs * np.sqrt(np.clip(vals, 0, None))
    else:
        root = np.tril(factor[0])
    z = np.random.default_rng(rng).standard_normal((n_resamples, n))
    draws = np.asarray(fit.ratings) + matmul(z, root.T)
    return iv, draws


def _empty_board(
    method: str, ci: str, n_resamples: int, confidence_level: float, min_votes: int
) -> Leaderboard:
    """A board with no battles to rate (no rows)."""
    z = np.zeros(0)
    zi = np.zeros(0, dtype=np.int64)
    return Leaderboard(
        model=zi,
        rating=z,
        lower=z,
        upper=z,
        rank=zi,
        rank_lower=zi,
        rank_upper=zi,
        rank_ub=zi,
        rank_median=zi,
        ranked=np.zeros(0, dtype=bool),
        votes=zi,
        wins=zi,
        losses=zi,
        ties=zi,
        method=method,
        ci=ci,
        n_resamples=0 if ci == "none" else n_resamples,
        confidence_level=confidence_level,
        min_votes=min_votes,
        anchor=None,
        notes=("no battles to rate",),
    )


def leaderboard_from_counts(
    counts: PairCounts,
    *,
    method: str = "bt",
    ci: str = "bootstrap",
    n_resamples: int = 1000,
    rng: Seed = None,
    confidence_level: float = 0.95,
    anchor: Anchor = None,
    min_votes: int = 0,
    both_bad: str = "tie",
    prior: Prior = "auto",
    workers: int | None = None,
    bias_reduction: bool = False,
) -> Leaderboard:
    """Leaderboard from aggregated counts (Bradley-Terry or Davidson).

    Parameters
    ----------
    counts : PairCounts
    method : {"bt", "davidson"}, default "bt"
    ci : {"bootstrap", "sandwich", "none"}, default "bootstrap"
    n_resamples : int, default 1000
        Bootstrap resamples (or normal draws for sandwich rank ranges).
    rng : None, int or numpy.random.Generator
    confidence_level : float, default 0.95
        Level of the rating intervals and of the rank ranges.
    anchor : mapping {model: rating}, optional
    min_votes : int, default 0
        Models with fewer battles are listed but not ranked.
    both_bad : {"tie", "drop"}, default "tie"
    prior : "auto" or float
        See :func:`ratings.fit_bt`.
    workers : int, optional
        Bootstrap threads (see :func:`ratings.bootstrap`).
    bias_reduction : bool, default False
        Firth's bias-reduced Bradley-Terry ratings (see :func:`ratings.fit_bt`), with
        ``ci="sandwich"`` or ``"none"`` (bootstrap resamples are maximum-likelihood fits).

    Returns
    -------
    Leaderboard
    """
    if not isinstance(counts, PairCounts):
        raise TypeError("`counts` must be a PairCounts (see ratings.aggregate)")
    method, ci, n_resamples, confidence_level, min_votes, both_bad = _common_iv(
        method, ci, n_resamples, confidence_level, min_votes, both_bad
    )
    if method == "elo":
        raise ValueError("`method='elo'` needs the battles in order; use ratings.leaderboard")
    rng = np.random.default_rng(rng)
    tmp = counts
    if both_bad == "drop":
        c = counts.counts.copy()
        c[:, 3] = 0
        tmp = PairCounts(
            counts.n_models, counts.pair_i, counts.pair_j, c, counts.weights, counts.weights_sq
        )
    ids, _, sub_anchor = present_models(tmp.votes(), anchor)
    if ids.size < 2:
        return _empty_board(method, ci, n_resamples, confidence_level, min_votes)
    sub = counts.subset(ids)
    if bias_reduction:
        if method != "bt" or ci == "bootstrap":
            raise ValueError(
                "bias_reduction needs method='bt' and ci='sandwich' or 'none' (bootstrap "
                "resamples are maximum-likelihood fits)"
            )
        fit = fit_bt(sub, both_bad=both_bad, prior=prior, anchor=sub_anchor, bias_reduction=True)
    else:
        fitter = fit_bt if method == "bt" else fit_davidson
        fit = fitter(sub, both_bad=both_bad, prior=prior, anchor=sub_anchor)
    iv, samples = board_intervals(fit, ci, n_resamples, rng, confidence_level, workers)
    return assemble_board(
        ids=ids,
        fit=fit,
        ratings=np.asarray(fit.ratings),
        iv=iv,
        samples=samples,
        counts=sub,
        both_bad=both_bad,
        method=method,
        ci=ci,
        n_resamples=n_resamples,
        confidence_level=confidence_level,
        min_votes=min_votes,
        anchor=anchor,
    )


def leaderboard(
    n_models: int,
    model_a: ArrayLike,
    model_b: ArrayLike,
    outcome: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    method: str = "bt",
    ci: str = "bootstrap",
    n_resamples: int = 1000,
    rng: Seed = None,
    confidence_level: float = 0.95,
    anchor: Anchor = None,
    min_votes: int = 0,
    both_bad: str = "tie",
    prior: Prior = "auto",
    style: StyleFeatures | ArrayLike | None = None,
    l2: float = 1.0,
    elo_k: float = 4.0,
    workers: int | None = None,
    bias_reduction: bool = False,
) -> Leaderboard:
    """Leaderboard from raw battles.

    Parameters
    ----------
    n_models : int
    model_a, model_b : array-like of int, shape (n_battles,)
    outcome : array-like of int, shape (n_battles,)
        ``A_WINS``, ``B_WINS``, ``TIE`` or ``BOTH_BAD``.
    weights : array-like of float, shape (n_battles,), optional
    method : {"bt", "davidson", "elo"}, default "bt"
        ``"elo"`` is online Elo (order-dependent; each bootstrap resample draws and reorders the
        battles, at a cost of O(n_resamples * n_battles) in Python).
    ci : {"bootstrap", "sandwich", "none"}, default "bootstrap"
    n_resamples, rng, confidence_level, anchor, min_votes, both_bad, prior, workers,
    bias_reduction
        See :func:`leaderboard_from_counts` (``bias_reduction``: not with ``style``).
    style : StyleFeatures or array-like of shape (n_battles, n_features), optional
        Style covariates: fit style-controlled Bradley-Terry (:func:`ratings.fit_style`).
    l2 : float, default 1.0
        L2 penalty on the style coefficients.
    elo_k : float, default 4.0
        K-factor for ``method="elo"``.

    Returns
    -------
    Leaderboard
    """
    n, a, b, o, w, _ = battles_iv(n_models, model_a, model_b, outcome, weights)
    method, ci, n_resamples, confidence_level, min_votes, both_bad = _common_iv(
        method, ci, n_resamples, confidence_level, min_votes, both_bad
    )
    rng = np.random.default_rng(rng)
    if style is None:
        if method != "elo":
            return leaderboard_from_counts(
                aggregate(n, a, b, o, w),
                method=method,
                ci=ci,
                n_resamples=n_resamples,
                rng=rng,
                confidence_level=confidence_level,
                anchor=anchor,
                min_votes=min_votes,
                both_bad=both_bad,
                prior=prior,
                workers=workers,
                bias_reduction=bias_reduction,
            )
        if bias_reduction:
            raise ValueError("bias_reduction is available for method='bt' only")
        return elo_board(
            n,
            a,
            b,
            o,
            w,
            ci,
            n_resamples,
            rng,
            confidence_level,
            anchor,
            min_votes,
            both_bad,
            elo_k,
        )
    if method != "bt":
        raise ValueError("style control is available for method='bt' only")
    if bias_reduction:
        raise ValueError("bias_reduction is not available with style control")
    keep = np.ones(a.size, dtype=bool) if both_bad == "tie" else o != BOTH_BAD
    counts = aggregate(n, a[keep], b[keep], o[keep], None if w is None else w[keep])
    ids, new_id, sub_anchor = present_models(counts.votes(), anchor)
    if ids.size < 2:
        return _empty_board(method, ci, n_resamples, confidence_level, min_votes)
    if isinstance(style, StyleFeatures):
        x, names = style.values, style.names
    else:
        x = np.asarray(style, dtype=np.float64)
        x = x[:, None] if x.ndim == 1 else x
        names = tuple(f"x{c}" for c in range(x.shape[1]))
    if x.shape[0] != a.size:
        raise ValueError(f"`style` must have one row per battle ({a.size}), got {x.shape[0]}")
    fit = fit_style(
        ids.size,
        new_id[a[keep]],
        new_id[b[keep]],
        o[keep],
        x[keep],
        None if w is None else w[keep],
        feature_names=names,
        l2=l2,
        both_bad=both_bad,
        prior=prior,
        anchor=sub_anchor,
    )
    iv, samples = board_intervals(fit, ci, n_resamples, rng, confidence_level, workers)
    return assemble_board(
        ids=ids,
        fit=fit,
        ratings=np.asarray(fit.ratings),
        iv=iv,
        samples=samples,
        counts=counts.subset(ids),
        both_bad=both_bad,
        method=method,
        ci=ci,
        n_resamples=n_resamples,
        confidence_level=confidence_level,
        min_votes=min_votes,
        anchor=anchor,
    )


def elo_board(
    n: int,
    a: IntArray,
    b: IntArray,
    o: IntArray,
    w: FloatArray | None,
    ci: str,
    n_resamples: int,
    rng: np.random.Generator,
    confidence_level: float,
    anchor: Anchor,
    min_votes: int,
    both_bad: str,
    k: float,
) -> Leaderboard:
    """The online-Elo board (bootstrap: battles resampled and reordered)."""
    if ci == "sandwich":
        raise ValueError("online Elo has no sandwich intervals; use ci='bootstrap' or 'none'")
    keep = np.ones(a.size, dtype=bool) if both_bad == "tie" else o != BOTH_BAD
    counts = aggregate(n, a[keep], b[keep], o[keep])
    ids, new_id, sub_anchor = present_models(counts.votes(), anchor)
    if ids.size < 2:
        return _empty_board("elo", ci, n_resamples, confidence_level, min_votes)
    a2, b2, o2 = new_id[a[keep]], new_id[b[keep]], o[keep]
    w2 = None if w is None else w[keep]
    m = ids.size

    def elo(idx: IntArray | None = None) -> FloatArray:
        if idx is None:
            r = online_elo(m, a2, b2, o2, w2, k=k)
        else:
            r = online_elo(m, a2[idx], b2[idx], o2[idx], None if w2 is None else w2[idx], k=k)
        if sub_anchor is not None:
            ((model, rating),) = sub_anchor.items()
            r = r - r[model] + rating
        return r

    ratings = elo()
    iv = samples = None
    if ci == "bootstrap":
        samples = np.array([elo(rng.integers(0, a2.size, a2.size)) for _ in range(n_resamples)])
        alpha = alpha_of(confidence_level)
        lower, upper = np.quantile(samples, [alpha / 2, 1 - alpha / 2], axis=0)
        iv = Intervals(
            method="bootstrap",
            confidence_level=confidence_level,
            lower=lower,
            upper=upper,
            se=samples.std(axis=0, ddof=1) if n_resamples > 1 else np.zeros(m),
            cov=np.atleast_2d(np.cov(samples / SCALE, rowvar=False)),
            n_resamples=n_resamples,
        )
    return assemble_board(
        ids=ids,
        fit=None,
        ratings=ratings,
        iv=iv,
        samples=samples,
        counts=counts.subset(ids),
        both_bad=both_bad,
        method="elo",
        ci=ci,
        n_resamples=n_resamples,
        confidence_level=confidence_level,
        min_votes=min_votes,
        anchor=anchor,
    )
