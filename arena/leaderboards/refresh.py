"""Leaderboard snapshots: stored votes -> the ratings engine -> one stored, complete snapshot.

A refresh of the human boards reads the vote counts kept with every vote (arena.battles.counts,
O(pairs)); a judge's verdicts, a past cutoff and style control read the battles one by one.
It fits the overall board and one board per category, with and without style control, and
writes all the snapshots of that refresh in one transaction. Pages and the API
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
from arena.leaderboards.data import (
    BattleData,
    CountData,
    contestant_stats,
    human_battles,
    human_counts,
    judge_battles,
)
from arena.leaderboards.snapshots import code_version
from arena.models import (
    Battle,
    Contestant,
    Judge,
    LeaderboardSnapshot,
    Turn,
)

log = logging.getLogger(__name__)


def _matrix(counts: ratings.PairCounts, order: np.ndarray) -> dict:
    """Battle counts and observed scores between the board's models, in board order."""
    n = counts.n_models
    c = counts.counts.astype(float)
    i, j, half = counts.pair_i, counts.pair_j, 0.5 * (c[:, 2] + c[:, 3])
    count, score = np.zeros((n, n)), np.zeros((n, n))
    count[i, j] = count[j, i] = c.sum(axis=1)
    score[i, j], score[j, i] = c[:, 0] + half, c[:, 1] + half
    count, score = count[np.ix_(order, order)], score[np.ix_(order, order)]
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


def _named_notes(notes, data: CountData, names: dict) -> list[str]:
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


def _board_results(board, data, counts, names, stats, plain_ratings=None, category=None):
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
    pictures = _matrix(counts, order)
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
        "n_battles": counts.n_battles,
    }
    return results, pictures


def _pair_counts(votes: BattleData, rows: np.ndarray) -> ratings.PairCounts:
    return ratings.aggregate(votes.n_models, votes.a[rows], votes.b[rows], votes.outcome[rows])


def _counted(votes: BattleData) -> CountData:
    """Counts of the battles read one by one (a judge's verdicts, a past cutoff)."""
    counts = {}
    if votes.battle_ids.size:
        counts[None] = _pair_counts(votes, np.arange(votes.battle_ids.size))
        for k, category in enumerate(votes.categories):
            rows = np.flatnonzero(votes.membership[:, k])
            if rows.size:
                counts[category.pk] = _pair_counts(votes, rows)
    return CountData(
        contestant_ids=votes.contestant_ids,
        counts=counts,
        over_time=votes.over_time,
        categories=votes.categories,
        cutoff_id=votes.cutoff_id,
        cutoff_time=votes.cutoff_time,
    )


def _plain_boards(data: CountData, seed, fit_settings: dict) -> dict:
    """Category (None: overall) -> (board, its counts), as ``ratings.leaderboards_by_category``
    would fit them from the battles: the same generator spawned per board, in slug order."""
    child = np.random.default_rng(seed).spawn(1 + len(data.categories))
    boards = {}
    for k, category in enumerate([None, *data.categories]):
        counts = data.counts.get(category.pk if category else None)
        if counts is not None:
            board = ratings.leaderboard_from_counts(counts, rng=child[k], **fit_settings)
            boards[category] = (board, counts)
    return boards


def _has_texts() -> bool:
    """Whether any battle has answer texts (style control needs them)."""
    return (
        Battle.objects.filter(answer_a__isnull=False, answer_b__isnull=False).exists()
        or Turn.objects.current().filter(error="").exists()
    )


def _settings() -> dict:
    return {
        "method": "bt",
        "ci": "bootstrap",
        "n_resamples": settings.ARENA_LEADERBOARD_ROUNDS,
        "confidence_level": 0.95,
        "min_votes": settings.ARENA_MIN_VOTES,
        "both_bad": "tie",
        "sampling_policy": sampling.current_policy(),
        "weighting": settings.ARENA_LEADERBOARD_WEIGHTING,
    }


def _ipw(votes: BattleData) -> np.ndarray:
    """Inverse-propensity weights 1 / P(pair), scaled to mean 1 (the fit and its sandwich
    intervals do not depend on the scale)."""
    rows = Battle.objects.filter(id__lte=int(votes.battle_ids.max())).values_list(
        "id", "pair_probability"
    )
    prob = dict(rows.iterator(chunk_size=20_000))
    p = np.array([prob.get(int(i)) or 1.0 for i in votes.battle_ids])  # none stored: weight 1
    w = 1.0 / np.clip(p, 1e-12, None)
    return w / w.mean()


def _weighted_boards(data: CountData, votes: BattleData, weights, seed, engine: dict) -> dict:
    """Like ``_plain_boards``, fitted from the battles with inverse-propensity weights."""
    fitted = ratings.leaderboards_by_category(
        votes.n_models,
        votes.a,
        votes.b,
        votes.outcome,
        votes.membership,
        category_names=[c.slug for c in votes.categories],
        weights=weights,
        rng=seed,
        **engine,
    )
    boards = {None: (fitted.overall, data.counts[None])}
    for category in votes.categories:
        if category.slug in fitted.categories and category.pk in data.counts:
            boards[category] = (fitted.categories[category.slug], data.counts[category.pk])
    return boards


#: A stored board's fragility before its refits are done (the page says "computing").
FRAGILITY_PENDING = "pending"


def _fragility_wanted(counts: ratings.PairCounts) -> bool:
    return counts.n_battles <= settings.ARENA_FRAGILITY_MAX_VOTES  # else the refits cost too much


def _fragility(counts: ratings.PairCounts, data: CountData, names: dict) -> dict | None:
    """Fewest votes whose removal changes the top model and the top-3 order (see ratings).
    Votes of one (pair, outcome) cell are alike, so the counts are all it needs."""
    if not _fragility_wanted(counts):
        return None  # the page then says nothing
    c = counts.counts
    a = np.concatenate([np.repeat(counts.pair_i, c[:, k]) for k in range(4)])
    b = np.concatenate([np.repeat(counts.pair_j, c[:, k]) for k in range(4)])
    o = np.concatenate([np.full(int(c[:, k].sum()), k) for k in range(4)])
    out = {}
    for key, k in (("top", 1), ("top3", 3)):
        f = ratings.fragility(counts.n_models, a, b, o, k=k)
        pair = [names[int(data.contestant_ids[m])] for m in f.pair] if f.pair else None
        out[key] = {"votes": f.votes, "approx": f.approx, "pair": pair}
    return out


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
    votes = None  # the votes themselves, read only where counts do not do
    # Inverse-propensity weights are per battle: that board reads the battles.
    if judge is None and cutoff_id is None and settings.ARENA_LEADERBOARD_WEIGHTING != "ipw":
        data = human_counts()
        scope = LeaderboardSnapshot.Scope.HUMAN
    else:
        if judge is None:
            votes = human_battles(cutoff_vote_id=cutoff_id)
            scope = LeaderboardSnapshot.Scope.HUMAN
        else:
            votes = judge_battles(judge=judge, cutoff_judgement_id=cutoff_id)
            scope = LeaderboardSnapshot.Scope.JUDGE
        data = _counted(votes)
    if None not in data.counts:
        return []
    names = dict(Contestant.objects.values_list("id", "name"))
    stats = contestant_stats()

    step("fitting boards")
    engine = {k: v for k, v in fit_settings.items() if k not in ("sampling_policy", "weighting")}
    weights = None
    if votes is not None and fit_settings["weighting"] == "ipw":
        weights = _ipw(votes)
        engine["ci"] = fit_settings["ci"] = "sandwich"  # accounts for the weights
        # An uneven design leaves some models few votes, and the MLE's O(1/votes) outward bias
        # then shifts the top of the board (README, "Sampling policies"); Firth's fit removes it.
        engine["bias_reduction"] = fit_settings["bias_reduction"] = True
        plain = _weighted_boards(data, votes, weights, seed, engine)
    else:
        plain = _plain_boards(data, seed, engine)
    if judge is None and fit_settings["sampling_policy"] == "active":
        sampling.refresh(data.contestant_ids, plain)

    step("style control")
    styled = {}
    style_note = "style control needs answer texts; these battles have none"
    if votes is None and _has_texts():
        votes = human_battles(cutoff_vote_id=data.cutoff_id)  # style needs each battle
    mask, style_a, style_b = (
        battle_style(votes.battle_ids) if votes is not None else (np.zeros(0), 0, 0)
    )
    if mask.sum() >= 2:
        style_note = ""
        features = ratings.battle_features(style_a, style_b)
        idx = np.flatnonzero(mask)
        style_settings = {
            **{k: v for k, v in engine.items() if k != "bias_reduction"},  # not with style
            "n_resamples": min(fit_settings["n_resamples"], 100),
        }
        sc = ratings.leaderboards_by_category(
            votes.n_models,
            votes.a[idx],
            votes.b[idx],
            votes.outcome[idx],
            votes.membership[idx],
            category_names=[c.slug for c in votes.categories],
            style=features,
            weights=None if weights is None else weights[idx],
            rng=seed,
            **style_settings,
        )
        styled[None] = (sc.overall, _pair_counts(votes, idx))
        for k, cat in enumerate(votes.categories):
            if cat.slug in sc.categories:
                rows = idx[votes.membership[idx, k]]
                styled[cat] = (sc.categories[cat.slug], _pair_counts(votes, rows))
        if mask.sum() < mask.size:
            style_note = (
                f"style control uses the {int(mask.sum()):,} of {mask.size:,} battles that "
                "have answer texts"
            )

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
        for category, (board, counts) in plain.items():
            results, pictures = _board_results(board, data, counts, names, stats, category=category)
            # Filled in after the boards are stored (refits are the slowest part of a refresh).
            results["fragility"] = FRAGILITY_PENDING if _fragility_wanted(counts) else None
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
            board_sc, counts_sc = styled[category]
            results_sc, pictures_sc = _board_results(
                board_sc, data, counts_sc, names, stats, plain_ratings, category=category
            )
            if style_note:
                results_sc["notes"] = [*results_sc["notes"], style_note]
            style_settings = {
                **{k: v for k, v in fit_settings.items() if k != "bias_reduction"},
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

    step("fragility")
    for snapshot in made:
        if snapshot.results.get("fragility") == FRAGILITY_PENDING:
            counts = plain[snapshot.category][1]
            snapshot.results["fragility"] = _fragility(counts, data, names)
            LeaderboardSnapshot.objects.filter(pk=snapshot.pk).update(results=snapshot.results)
    return made
