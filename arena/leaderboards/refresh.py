"""Leaderboard snapshots: stored votes -> the ratings engine -> one stored, complete snapshot.

A refresh reads every counted vote (or a judge's combined verdicts) up to a cutoff, fits the
overall board and one board per category in one call to ``ratings``, with and without style
control, and writes all the snapshots of that refresh in one transaction. Pages and the API
only ever read the latest *complete* snapshot, so a reader never sees a half-written one, and
every snapshot is computed from one cutoff: two refreshes at once cannot mix their data.
Recomputing with the same cutoff, settings and seed gives identical numbers.
"""

import logging
import math
import re

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

import ratings
from arena.battles import sampling
from arena.battles.style import battle_style
from arena.leaderboards.data import BattleData, contestant_stats, human_battles, judge_battles
from arena.leaderboards.snapshots import code_version
from arena.models import (
    Battle,
    Contestant,
    Judge,
    LeaderboardSnapshot,
)

log = logging.getLogger(__name__)


def _matrix(data: BattleData, rows: np.ndarray, order: np.ndarray) -> dict:
    """Battle counts and observed scores between the board's models, in board order."""
    n = data.n_models
    a, b, o = data.a[rows], data.b[rows], data.outcome[rows]
    win_a = np.where(o == ratings.A_WINS, 1.0, np.where(o == ratings.B_WINS, 0.0, 0.5))
    ab, ba = a * n + b, b * n + a
    count = (np.bincount(ab, minlength=n * n) + np.bincount(ba, minlength=n * n)).reshape(n, n)
    score = (
        np.bincount(ab, weights=win_a, minlength=n * n)
        + np.bincount(ba, weights=1 - win_a, minlength=n * n)
    ).reshape(n, n)
    count, score = count[np.ix_(order, order)].astype(float), score[np.ix_(order, order)]
    observed = np.divide(score, count, out=np.full_like(score, np.nan), where=count > 0)
    return {"battles": count.astype(int).tolist(), "observed": _round(observed)}


def _round(x, digits=4):
    """Rounded nested lists for JSON, None where not finite (JSON has no NaN)."""
    x = np.round(np.asarray(x, dtype=float), digits)
    if np.isfinite(x).all():
        return x.tolist()
    return [[v if math.isfinite(v) else None for v in row] for row in x.tolist()]


def _whole(x: np.ndarray) -> list:
    """Nested lists of whole numbers rounded up, None where not finite."""
    simple = np.isfinite(x) & (np.abs(x) < 2.0**62)  # the rest does not fit an int64
    out = np.ceil(np.where(simple, x, 0)).astype(np.int64).tolist()
    for i, j in zip(*np.nonzero(~simple), strict=True):
        out[i][j] = math.ceil(x[i, j]) if math.isfinite(x[i, j]) else None
    return out


def _named_notes(notes, data: BattleData, names: dict) -> list[str]:
    """The engine names models by index in its notes ("models [1, 3]"); show their names."""

    def named(match):
        ids = [int(x) for x in match.group(1).split(",") if x.strip()]
        return ", ".join(names[int(data.contestant_ids[i])] for i in ids)

    return [re.sub(r"\[(\d+(?:,\s*\d+)*)\]", named, note) for note in notes]


def _votes_over_time(day_counts: list[tuple]) -> list[dict]:
    out, total = [], 0
    for day, n in day_counts:
        total += n
        out.append({"day": str(day), "votes": int(n), "cumulative": int(total)})
    return out


def _board_results(board, data, rows, names, stats, plain_ratings=None, category=None):
    """JSON results of one board: table rows, pictures' data and the A-vs-B matrices."""
    board_dict = board.to_dict()
    table = []
    for row in board_dict["rows"]:
        cid = int(data.contestant_ids[row["model"]])
        extra = stats.get(cid, {})
        played = row["wins"] + row["losses"] + row["ties"]
        entry = {
            **row,
            "model": names[cid],
            "contestant_id": cid,
            "win_rate": round((row["wins"] + 0.5 * row["ties"]) / played, 4) if played else None,
            "median_ttft_ms": extra.get("median_ttft_ms"),
            "median_tokens": extra.get("median_tokens"),
            "cost_per_1000": extra.get("cost_per_1000"),
        }
        for key in ("rating", "lower", "upper"):  # None: an interval that cannot be estimated
            entry[key] = None if entry[key] is None else round(entry[key], 2)
        if plain_ratings is not None and cid in plain_ratings:
            entry["plain_rating"] = plain_ratings[cid]
            entry["style_delta"] = round(entry["rating"] - plain_ratings[cid], 2)
        table.append(entry)
    order = board.model.astype(np.int64)
    pictures = _matrix(data, rows, order)
    if board.fit is not None:
        # The fit indexes models by sorted(board.model); put them in board (rating) order.
        pos = np.searchsorted(np.sort(order), order)
        pw = ratings.pairwise(board.fit, board.intervals)
        pick = np.ix_(pos, pos)
        votes_needed = pw.votes_needed[pick]
        pictures["pairwise"] = {
            "prob": _round(pw.prob[pick]),
            "lower": _round(pw.lower[pick]),
            "upper": _round(pw.upper[pick]),
            "significant": pw.significant[pick].tolist(),
            "votes_needed": _whole(votes_needed),
        }
    board_dict.pop("rows")
    board_dict["notes"] = _named_notes(board_dict["notes"], data, names)
    results = {
        **board_dict,
        "rows": table,
        "models": [names[int(data.contestant_ids[m])] for m in order],
        "votes_over_time": _votes_over_time(
            data.over_time.get(category.pk if category else None, [])
        ),
        "n_battles": int(rows.size),
    }
    return results, pictures


def _settings() -> dict:
    return {
        "method": "bt",
        "ci": "bootstrap",
        "n_resamples": settings.ARENA_LEADERBOARD_ROUNDS,
        "confidence_level": 0.95,
        "min_votes": settings.ARENA_MIN_VOTES,
        "both_bad": "tie",
        "sampling_policy": settings.ARENA_SAMPLING_POLICY,
        "weighting": settings.ARENA_LEADERBOARD_WEIGHTING,
    }


def _ipw(data: BattleData) -> np.ndarray:
    """Inverse-propensity weights 1 / P(pair), scaled to mean 1 (the fit and its sandwich
    intervals do not depend on the scale)."""
    rows = Battle.objects.filter(id__in=data.battle_ids.tolist()).values_list(
        "id", "pair_probability"
    )
    prob_by_id = dict(rows)
    p = np.array([prob_by_id[int(i)] for i in data.battle_ids], dtype=float)
    w = 1.0 / np.clip(p, 1e-12, None)
    return w / w.mean()


def _fragility(data: BattleData, rows: np.ndarray, names: dict) -> dict:
    """Fewest votes whose removal changes the top model and the top-3 order (see ratings)."""
    out = {}
    for key, k in (("top", 1), ("top3", 3)):
        f = ratings.fragility(data.n_models, data.a[rows], data.b[rows], data.outcome[rows], k=k)
        pair = [names[int(data.contestant_ids[m])] for m in f.pair] if f.pair else None
        out[key] = {"votes": f.votes, "approx": f.approx, "pair": pair}
    return out


def _store_active_pairs(data: BattleData, board) -> None:
    """Recompute the active policy's pair distribution from this refresh's overall board."""
    active = list(
        Contestant.objects.filter(active=True).order_by("pk").values_list("pk", flat=True)
    )
    if len(active) < 2:
        return
    position = {int(c): k for k, c in enumerate(data.contestant_ids)}
    idx = np.array([position.get(c, -1) for c in active])
    n = data.n_models
    counts = np.zeros((n + 1, n + 1))
    np.add.at(counts, (data.a, data.b), 1)
    counts = (counts + counts.T)[np.ix_(idx, idx)]  # -1: the empty last row and column
    by_id = {
        int(data.contestant_ids[m]): float(r)
        for m, r in zip(board.model, board.rating, strict=True)
        if np.isfinite(r)
    }
    sampling.store(sampling.compute(active, by_id, counts))


def leaderboard_refresh(
    *,
    judge: Judge | None = None,
    cutoff_id: int | None = None,
    seed: int | None = None,
    n_resamples: int | None = None,
    progress=None,
) -> list[LeaderboardSnapshot]:
    """Fit and store the overall and per-category boards, plain and style-controlled.

    ``judge=None`` means human votes. Returns the stored snapshots (all complete), or an
    empty list when there is nothing to rate.
    """
    seed = settings.ARENA_LEADERBOARD_SEED if seed is None else seed
    fit_settings = _settings()
    if n_resamples is not None:
        fit_settings["n_resamples"] = n_resamples
    step = progress or (lambda message: None)
    step("reading votes")
    if judge is None:
        data = human_battles(cutoff_vote_id=cutoff_id)
        scope = LeaderboardSnapshot.Scope.HUMAN
    else:
        data = judge_battles(judge=judge, cutoff_judgement_id=cutoff_id)
        scope = LeaderboardSnapshot.Scope.JUDGE
    if data.battle_ids.size == 0:
        return []
    names = dict(Contestant.objects.values_list("id", "name"))
    stats = contestant_stats()
    category_names = [c.slug for c in data.categories]

    step("fitting boards")
    engine = {k: v for k, v in fit_settings.items() if k not in ("sampling_policy", "weighting")}
    weights = None
    if fit_settings["weighting"] == "ipw":
        weights = _ipw(data)
        engine["ci"] = fit_settings["ci"] = "sandwich"  # accounts for the weights
    plain = ratings.leaderboards_by_category(
        data.n_models,
        data.a,
        data.b,
        data.outcome,
        data.membership,
        category_names=category_names,
        weights=weights,
        rng=seed,
        **engine,
    )
    if judge is None and settings.ARENA_SAMPLING_POLICY == "active":
        _store_active_pairs(data, plain.overall)
    all_rows = np.arange(data.battle_ids.size)
    boards = {None: (plain.overall, all_rows)}
    for k, cat in enumerate(data.categories):
        if cat.slug in plain.categories:
            boards[cat] = (plain.categories[cat.slug], np.flatnonzero(data.membership[:, k]))

    step("style control")
    mask, style_a, style_b = battle_style(data.battle_ids)
    styled = {}
    style_note = ""
    if mask.sum() >= 2:
        features = ratings.battle_features(style_a, style_b)
        idx = np.flatnonzero(mask)
        style_settings = {**engine, "n_resamples": min(fit_settings["n_resamples"], 100)}
        sc = ratings.leaderboards_by_category(
            data.n_models,
            data.a[idx],
            data.b[idx],
            data.outcome[idx],
            data.membership[idx],
            category_names=category_names,
            style=features,
            weights=None if weights is None else weights[idx],
            rng=seed,
            **style_settings,
        )
        styled[None] = (sc.overall, idx)
        for k, cat in enumerate(data.categories):
            if cat.slug in sc.categories:
                styled[cat] = (sc.categories[cat.slug], idx[data.membership[idx, k]])
        if mask.sum() < mask.size:
            style_note = (
                f"style control uses the {int(mask.sum()):,} of {mask.size:,} battles that "
                "have answer texts"
            )
    else:
        style_note = "style control needs answer texts; these battles have none"

    step("storing snapshots")
    common = {
        "scope": scope,
        "judge": judge,
        "method": fit_settings["method"],
        "seed": seed,
        "cutoff_vote_id": data.cutoff_id,
        "cutoff_time": data.cutoff_time,
        "code_version": code_version(),
        "status": LeaderboardSnapshot.Status.COMPLETE,
        "completed_at": timezone.now(),
    }
    made = []
    with transaction.atomic():
        for category, (board, rows) in boards.items():
            results, pictures = _board_results(board, data, rows, names, stats, category=category)
            results["fragility"] = _fragility(data, rows, names)
            plain_ratings = {r["contestant_id"]: r["rating"] for r in results["rows"]}
            made.append(
                LeaderboardSnapshot(
                    category=category,
                    style_control=False,
                    settings=fit_settings,
                    results=results,
                    pictures=pictures,
                    **common,
                )
            )
            if category not in styled:
                continue
            board_sc, rows_sc = styled[category]
            results_sc, pictures_sc = _board_results(
                board_sc, data, rows_sc, names, stats, plain_ratings, category=category
            )
            if style_note:
                results_sc["notes"] = [*results_sc["notes"], style_note]
            style_settings = {
                **fit_settings,
                "n_resamples": min(fit_settings["n_resamples"], 100),
                "style": list(ratings.FEATURES),
            }
            made.append(
                LeaderboardSnapshot(
                    category=category,
                    style_control=True,
                    settings=style_settings,
                    results=results_sc,
                    pictures=pictures_sc,
                    **common,
                )
            )
        LeaderboardSnapshot.objects.bulk_create(made)
    return made
