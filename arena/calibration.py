"""Calibration: does a judge agree with the people it stands in for?

:func:`calibration_report` reads the database and measures one judge (or every judge) against
the human votes, on the pairs that have both. Every statistic comes from
:mod:`ratings.agreement` and every board from :func:`ratings.leaderboard`; this module only
decides which votes and verdicts are compared, and in which orientation.

Pairs
-----
A *pair* is one question put to people and judge alike: the same prompt (the eval-set prompt
item, or for a live battle the text of its first prompt) and the same two contestants, in either
position. Several battles can share a pair: several people voted it (the LLMFAO demo has up to
five votes per comparison, one battle each), or the judge was asked about another battle of it.
A pair enters the calibration when it has at least one counted human vote and at least one
parsed verdict of the judge. Pairs are the items of :mod:`ratings.agreement`: every bootstrap
resamples pairs, so the votes of one pair move together.

Each pair is read in one *frame*: the orientation (which contestant is A) of its first battle
(lowest id). Votes and verdicts on battles shown the other way round are flipped into it.
Agreement with and without ties does not depend on the frame; Cohen's kappa and the confusion
matrix do, since chance agreement comes from each rater's A/B/tie shares. When every battle of
a pair was shown the same way round, as in the demo, the frame is what people saw, and a
position preference shared by judge and people counts as chance agreement.

People: every counted (not void) vote of the pair, ``both_bad`` read as a tie. The human
majority is the plurality of the pair's votes; a shared top count reads as a tie
(:func:`ratings.agreement.majority_vote`). The baseline compares each vote with the majority of
the *other* votes of its pair (leave-one-out, pairs with at least two votes).

Judge: :func:`arena.judge.judge_verdicts` gives one score of side A per judged battle, both
orders combined with the judge's rule. A pair's scores are turned into its frame and averaged
(one score in the demo), then read as A, B or tie.

Position: the share of non-tie verdicts that pick the answer *shown first*, from each
judgement as the judge saw it and from each vote as the voter saw it. Position consistency
needs battles judged in both orders; otherwise it is listed as not measured.

Length: estimated tokens (:func:`ratings.estimate_tokens`) of the answers: the stored answers
of an eval-set battle, or the current (not superseded, not errored) turns of each side of a live
battle, joined. Battles without text on a side are left out of the length statistics.

Leaderboards: Bradley-Terry boards (:func:`ratings.leaderboard`, bootstrap intervals, seeded)
on the calibration pairs only, so that both boards see the same questions: the human board from
every vote; the *raw* judge board from every single-order judgement as the judge saw it; the
*debiased* judge board from the combined verdict of each judged battle (both orders when
judged so) with length control (the ``tokens`` style feature). The human board is the
reference for Spearman, Kendall, agreement with confidence intervals and the Brier score
(arena-hard-auto); separability is the judge board's.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Max, Q

import ratings
from arena.judge import judge_verdicts
from arena.leaderboards import battle_style
from arena.models import (
    Answer,
    Battle,
    BattleCategory,
    Category,
    Contestant,
    Judge,
    Judgement,
    Turn,
    Vote,
)
from ratings import agreement as ag

__all__ = [
    "calibration_report",
    "cached_calibration_report",
    "clear_calibration_cache",
]

CONFIDENCE = 0.95
BOARD_ROUNDS = 200
LABELS = ("A", "B", "tie")  # ratings.agreement's A_WINS, B_WINS, TIE
_VOTE_CODES = {"a": ag.A_WINS, "b": ag.B_WINS, "tie": ag.TIE, "both_bad": ag.TIE}
_CACHE_SECONDS = 300
_CACHE_SIZE = 16


# --------------------------------------------------------------------------------------------
# Reading the database


@dataclass(frozen=True, eq=False)
class _Pairs:
    """A judge's calibration pairs ``0..n_pairs-1``, with the votes and verdicts on them.

    Per vote (shape (n_votes,)): ``vote_pair``, ``vote_shown`` (outcome as the voter saw it, A
    = side A), ``vote_framed`` (in the pair's frame), ``vote_a``/``vote_b`` (contestant ids of
    sides A and B), ``vote_len_a``/``vote_len_b`` (tokens, nan when unknown), ``vote_battle``.
    Per judged battle (shape (n_judged,)): ``judged_pair``, ``judged_a``/``judged_b``,
    ``judged_ab``/``judged_ba``/``judged_score`` (as in :class:`arena.judge.JudgeVerdicts`),
    ``judged_len_a``/``judged_len_b``. Per pair: ``judge_outcome`` (in the frame) and
    ``categories`` (category ids of the pair's battles).
    """

    vote_pair: np.ndarray
    vote_shown: np.ndarray
    vote_framed: np.ndarray
    vote_a: np.ndarray
    vote_b: np.ndarray
    vote_len_a: np.ndarray
    vote_len_b: np.ndarray
    vote_battle: np.ndarray
    judged_pair: np.ndarray
    judged_a: np.ndarray
    judged_b: np.ndarray
    judged_ab: np.ndarray
    judged_ba: np.ndarray
    judged_score: np.ndarray
    judged_len_a: np.ndarray
    judged_len_b: np.ndarray
    judge_outcome: np.ndarray
    categories: list[set[int]]
    parse_failures: int
    judgements_outside: int

    @property
    def n_pairs(self) -> int:
        return int(self.judge_outcome.size)


def _pair_key(item_id, prompt, battle_id, a, b):
    lo, hi = min(a, b), max(a, b)
    if item_id is not None:
        return ("item", item_id, lo, hi)
    if prompt is not None:
        return ("text", prompt, lo, hi)
    return ("battle", battle_id, lo, hi)  # a live battle without turns pairs with itself


def _first_prompts(battles) -> dict[int, str]:
    """The first prompt of each live battle in the queryset ``battles``."""
    rows = Turn.objects.filter(battle__in=battles, index=0, side=Turn.Side.A).order_by(
        "battle_id", "-attempt"
    )
    return dict(rows.values_list("battle_id", "prompt"))


def _answer_lengths(battle_ids) -> dict[int, tuple[float, float]]:
    """Estimated tokens of sides A and B per battle (nan when the battle has no texts)."""
    ids = np.array(sorted(battle_ids), dtype=np.int64)
    mask, style_a, style_b = battle_style(ids)
    tokens = ratings.FEATURES.index("tokens")
    out = {int(i): (np.nan, np.nan) for i in ids}
    for battle_id, a, b in zip(ids[mask], style_a[:, tokens], style_b[:, tokens], strict=True):
        out[int(battle_id)] = (float(a), float(b))
    return out


def _collect(judge: Judge) -> _Pairs:
    verdicts = judge_verdicts(judge)
    judged = Battle.objects.filter(judgements__judge=judge).distinct()
    meta = {
        row[0]: row[1:]
        for row in judged.values_list(
            "id",
            "contestant_a_id",
            "contestant_b_id",
            "prompt_item_id",
            "answer_a_id",
            "answer_b_id",
        )
    }
    prompts = _first_prompts(judged.filter(prompt_item__isnull=True))

    judged_key = {}
    for battle_id in verdicts.battle_ids.tolist():
        a, b, item_id, _, _ = meta[battle_id]
        judged_key[battle_id] = _pair_key(item_id, prompts.get(battle_id), battle_id, a, b)
    keys = set(judged_key.values())

    # Counted votes on the battles of those pairs, found by prompt item or by prompt text.
    votes = Vote.objects.counted()
    fields = (
        "battle_id",
        "outcome",
        "battle__contestant_a_id",
        "battle__contestant_b_id",
        "battle__prompt_item_id",
        "battle__answer_a_id",
        "battle__answer_b_id",
    )
    item_ids = {k[1] for k in keys if k[0] == "item"}
    texts = {k[1] for k in keys if k[0] == "text"}
    lone = {k[1] for k in keys if k[0] == "battle"}
    rows = list(votes.filter(battle__prompt_item_id__in=item_ids).values_list(*fields))
    vote_prompts = {}
    if texts:
        live = Battle.objects.filter(
            prompt_item__isnull=True,
            vote__void_reason="",
            turns__index=0,
            turns__side=Turn.Side.A,
            turns__prompt__in=texts,
        ).distinct()
        vote_prompts = _first_prompts(live)
        rows += votes.filter(battle__in=live).values_list(*fields)
    if lone:
        rows += votes.filter(battle_id__in=lone).values_list(*fields)

    vote_rows = []
    for battle_id, outcome, a, b, item_id, answer_a, answer_b in rows:
        key = _pair_key(item_id, vote_prompts.get(battle_id), battle_id, a, b)
        if key in keys:
            vote_rows.append((key, battle_id, outcome, a, b, answer_a, answer_b))
    voted_keys = {row[0] for row in vote_rows}

    # Pairs with both, in order of their first battle; each pair's frame is that battle's.
    first: dict[tuple, tuple[int, int]] = {}
    for key, battle_id, _, a, _, _, _ in vote_rows:
        if key not in first or battle_id < first[key][0]:
            first[key] = (battle_id, a)
    for battle_id, key in judged_key.items():
        if key in voted_keys and (key not in first or battle_id < first[key][0]):
            first[key] = (battle_id, meta[battle_id][0])
    order = sorted(first, key=lambda k: first[k][0])
    index = {key: n for n, key in enumerate(order)}
    frame_a = [first[key][1] for key in order]

    vote_rows.sort(key=lambda row: row[1])
    judged_rows = [
        (k, battle_id)
        for k, battle_id in enumerate(verdicts.battle_ids.tolist())
        if judged_key[battle_id] in index
    ]
    sides = {row[1]: (row[5], row[6]) for row in vote_rows}
    sides.update({battle_id: tuple(meta[battle_id][3:]) for _, battle_id in judged_rows})
    lengths = _answer_lengths(sides.keys())

    vote_pair = np.array([index[row[0]] for row in vote_rows], dtype=np.intp)
    vote_a = np.array([row[3] for row in vote_rows], dtype=np.int64)
    vote_shown = np.array([_VOTE_CODES[row[2]] for row in vote_rows], dtype=np.intp)
    frame = np.array(frame_a, dtype=np.int64)
    vote_flip = vote_a != frame[vote_pair]
    take = [k for k, _ in judged_rows]
    judged_ids = [battle_id for _, battle_id in judged_rows]
    judged_pair = np.array([index[judged_key[i]] for i in judged_ids], dtype=np.intp)
    judged_a = np.array([meta[i][0] for i in judged_ids], dtype=np.int64)
    judged_flip = judged_a != frame[judged_pair]
    score = verdicts.score[take]
    framed = np.where(judged_flip, 1.0 - score, score)
    n_pairs = len(order)
    mean = np.bincount(judged_pair, framed, n_pairs) / np.bincount(judged_pair, None, n_pairs)

    categories: list[set[int]] = [set() for _ in range(n_pairs)]
    battle_pair = {row[1]: index[row[0]] for row in vote_rows}
    battle_pair.update(zip(judged_ids, judged_pair.tolist(), strict=True))
    battle_ids = list(battle_pair)
    for start in range(0, len(battle_ids), 5000):
        chunk = battle_ids[start : start + 5000]
        for battle_id, category_id in BattleCategory.objects.filter(
            battle_id__in=chunk
        ).values_list("battle_id", "category_id"):
            categories[battle_pair[battle_id]].add(category_id)

    n_all = Judgement.objects.filter(judge=judge).exclude(verdict="").count()
    n_used = int((~np.isnan(verdicts.ab[take])).sum() + (~np.isnan(verdicts.ba[take])).sum())
    return _Pairs(
        vote_pair=vote_pair,
        vote_shown=vote_shown,
        vote_framed=_flip(vote_shown, vote_flip),
        vote_a=vote_a,
        vote_b=np.array([row[4] for row in vote_rows], dtype=np.int64),
        vote_len_a=np.array([lengths[row[1]][0] for row in vote_rows], dtype=float),
        vote_len_b=np.array([lengths[row[1]][1] for row in vote_rows], dtype=float),
        vote_battle=np.array([row[1] for row in vote_rows], dtype=np.int64),
        judged_pair=judged_pair,
        judged_a=judged_a,
        judged_b=np.array([meta[i][1] for i in judged_ids], dtype=np.int64),
        judged_ab=verdicts.ab[take],
        judged_ba=verdicts.ba[take],
        judged_score=score,
        judged_len_a=np.array([lengths[i][0] for i in judged_ids], dtype=float),
        judged_len_b=np.array([lengths[i][1] for i in judged_ids], dtype=float),
        judge_outcome=np.asarray(ag.score_outcomes(mean), dtype=np.intp),
        categories=categories,
        parse_failures=verdicts.parse_failures,
        judgements_outside=n_all - n_used,
    )


def _flip(outcomes: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """Swap A_WINS and B_WINS where ``flip``; ties stay."""
    swapped = np.select(
        [outcomes == ag.A_WINS, outcomes == ag.B_WINS], [ag.B_WINS, ag.A_WINS], ag.TIE
    )
    return np.where(flip, swapped, outcomes).astype(np.intp)


# --------------------------------------------------------------------------------------------
# JSON-ready pieces


def _num(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _est(e: ag.Estimate) -> dict:
    return {"value": _num(e.value), "low": _num(e.low), "high": _num(e.high)}


def _agreement(a: ag.Agreement) -> dict:
    return {
        "with_ties": _est(a.agreement),
        "without_ties": _est(a.agreement_no_ties),
        "kappa": _est(a.kappa),
        "n_pairs": a.n_items,
        "n_comparisons": a.n_comparisons,
    }


def _confusion(a: ag.Agreement, rows: str, columns: str) -> dict:
    return {
        "labels": list(LABELS),
        "rows": rows,
        "columns": columns,
        "counts": a.confusion.tolist(),
    }


def _first(p: ag.PositionPreference) -> dict:
    return {
        "first_share": _est(p.first_share),
        "n_first": p.n_first,
        "n_second": p.n_second,
        "n_ties": p.n_ties,
    }


def _length(b: ag.LengthBias) -> dict:
    return {"longer_share": _est(b.longer_share), "slope": _est(b.slope), "n_used": b.n_used}


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _interval(e: dict) -> str:
    if e["low"] is None:
        return "no interval"
    return f"{100 * e['low']:.1f}–{100 * e['high']:.1f}%"


# --------------------------------------------------------------------------------------------
# Statistics


def _per_category(pairs: _Pairs, rng, n_resamples) -> list[dict]:
    present = {c for cats in pairs.categories for c in cats}
    rows = Category.objects.filter(id__in=present).order_by("name", "id")
    out = []
    for category_id, slug, name in rows.values_list("id", "slug", "name"):
        in_category = np.array([category_id in cats for cats in pairs.categories])
        keep = in_category[pairs.vote_pair]
        new_index = np.cumsum(in_category) - 1
        items = new_index[pairs.vote_pair[keep]]
        votes = pairs.vote_framed[keep]
        row = {
            "slug": slug,
            "name": name,
            "n_pairs": int(in_category.sum()),
            "n_votes": int(keep.sum()),
        }
        judged = ag.judge_agreement(
            pairs.judge_outcome[in_category], items, votes, n_resamples=n_resamples, rng=rng
        )
        row["judge"] = _agreement(judged)
        try:
            human = ag.human_agreement(items, votes, n_resamples=n_resamples, rng=rng)
        except ValueError:
            row["humans"] = None
        else:
            row["humans"] = _agreement(human)
        out.append(row)
    return out


def _judge_shown(pairs: _Pairs):
    """Each parsed judgement as the judge saw it: (outcome, len_first, len_second, pair)."""
    ab = ~np.isnan(pairs.judged_ab)
    ba = ~np.isnan(pairs.judged_ba)
    outcome = np.concatenate(
        [
            ag.score_outcomes(pairs.judged_ab[ab]).astype(np.intp),
            ag.score_outcomes(pairs.judged_ba[ba]).astype(np.intp),
        ]
    )
    len_first = np.concatenate([pairs.judged_len_a[ab], pairs.judged_len_b[ba]])
    len_second = np.concatenate([pairs.judged_len_b[ab], pairs.judged_len_a[ba]])
    pair = np.concatenate([pairs.judged_pair[ab], pairs.judged_pair[ba]])
    first = np.concatenate([pairs.judged_a[ab], pairs.judged_b[ba]])
    second = np.concatenate([pairs.judged_b[ab], pairs.judged_a[ba]])
    return outcome, len_first, len_second, pair, first, second


def _length_bias(verdicts, len_a, len_b, items, rng, n_resamples) -> tuple[dict | None, str]:
    """Length bias of the verdicts on battles with known lengths, or None and why not."""
    known = np.isfinite(len_a) & np.isfinite(len_b)
    if not known.any():
        return None, "no answer texts are stored for these pairs"
    try:
        bias = ag.length_bias(
            verdicts[known],
            len_a[known],
            len_b[known],
            items=items[known],
            n_resamples=n_resamples,
            rng=rng,
        )
    except (ValueError, RuntimeError) as exc:
        return None, str(exc)
    return {**_length(bias), "n_unknown_length": int((~known).sum())}, ""


def _human_side(pairs: _Pairs, rngs, n_resamples) -> dict:
    """The statistics of the votes alone: the same for every judge with the same pairs."""
    out = {"missing": []}
    try:
        humans = ag.human_agreement(
            pairs.vote_pair, pairs.vote_framed, n_resamples=n_resamples, rng=rngs[0]
        )
    except ValueError:
        out["baseline"] = None
        out["missing"].append(
            {"what": "Agreement between people", "why": "no pair was voted by two people or more"}
        )
    else:
        out["baseline"] = _agreement(humans)
    out["first"] = _first(
        ag.first_position_preference(
            pairs.vote_shown, items=pairs.vote_pair, n_resamples=n_resamples, rng=rngs[1]
        )
    )
    out["length"], why = _length_bias(
        pairs.vote_shown, pairs.vote_len_a, pairs.vote_len_b, pairs.vote_pair, rngs[2], n_resamples
    )
    if why:
        out["missing"].append({"what": "Length bias of people", "why": why})
    return out


def _board_arrays(board: ratings.Leaderboard, models: np.ndarray):
    """Rating, bounds and bootstrap mean/variance of ``models`` (ids in the board)."""
    position = {int(m): k for k, m in enumerate(board.model)}
    rows = np.array([position[int(m)] for m in models])
    samples = board.intervals.rating_samples(board.fit)  # columns in sorted(board.model) order
    sorted_ids = np.sort(board.model)
    columns = np.searchsorted(sorted_ids, models)
    return (
        board.rating[rows],
        board.lower[rows],
        board.upper[rows],
        samples[:, columns].mean(axis=0),
        samples[:, columns].var(axis=0),
    )


def _compare_boards(board, human, models) -> dict:
    score, lower, upper, mean, var = _board_arrays(board, models)
    ref, ref_lower, ref_upper, _, _ = _board_arrays(human, models)
    corr = ag.rank_correlation(score, ref)
    ci = ag.agreement_with_ci(score, lower, upper, ref, ref_lower, ref_upper)
    return {
        "spearman": _num(corr.spearman),
        "kendall": _num(corr.kendall),
        "separability": _num(ag.separability(lower, upper)),
        "agreement_with_ci": _num(ci.agreement),
        "ci_pairs": {
            "separated_by_humans": ci.n_separated,
            "same_order": ci.n_same,
            "overlap": ci.n_overlap,
            "opposite": ci.n_opposite,
        },
        "brier": _num(ag.brier_score(mean, var, ref)),
    }


def _fit_board(n, a, b, outcome, *, rounds, rng, what, missing, notes, style=None):
    """``ratings.leaderboard`` with bootstrap intervals, or None (and why) if it cannot fit.

    A bootstrap round of a style fit whose resample has no finite estimate (a group of models
    that never lost to the others) can fail to converge; the board is then refitted with the
    engine's small prior (``ratings.DEFAULT_PRIOR`` virtual ties per model), and a note says so.
    """
    kwargs = {"style": style, "rounds": rounds, "workers": 1}  # one thread: the web process
    try:
        return ratings.leaderboard(n, a, b, outcome, rng=copy.deepcopy(rng), **kwargs)
    except RuntimeError:
        pass
    try:
        board = ratings.leaderboard(
            n, a, b, outcome, rng=rng, prior=ratings.DEFAULT_PRIOR, **kwargs
        )
    except (ValueError, RuntimeError) as exc:
        missing.append({"what": what, "why": f"the fit failed: {exc}"})
        return None
    notes.append(
        f"{what}: fitted with a small prior ({ratings.DEFAULT_PRIOR:g} virtual tie per model), "
        "because a bootstrap round had no finite estimate without it"
    )
    return board


def _leaderboards(pairs: _Pairs, judge: Judge, rngs, rounds, missing, memo) -> dict | None:
    shown, _, _, _, first, second = _judge_shown(pairs)
    contestants = np.unique(np.concatenate([pairs.vote_a, pairs.vote_b, first, second]))
    if contestants.size < 2:
        missing.append({"what": "Leaderboard level", "why": "fewer than two models"})
        return None
    n = int(contestants.size)
    notes: list[str] = []

    def ids(x):
        return np.searchsorted(contestants, x)

    # The human board depends only on the votes (and the seed): judges with the same pairs
    # share it within one call.
    key = ("human board", contestants.tobytes(), pairs.vote_battle.tobytes(), rounds)
    if memo is not None and key in memo:
        human, human_notes = memo[key]
        notes.extend(human_notes)
    else:
        human = _fit_board(
            n,
            ids(pairs.vote_a),
            ids(pairs.vote_b),
            pairs.vote_shown,
            rounds=rounds,
            rng=rngs[0],
            what="Human leaderboard",
            missing=missing,
            notes=notes,
        )
        if memo is not None and human is not None:
            memo[key] = (human, list(notes))
    raw = _fit_board(
        n,
        ids(first),
        ids(second),
        shown,
        rounds=rounds,
        rng=rngs[1],
        what="Raw judge leaderboard",
        missing=missing,
        notes=notes,
    )

    steps = []
    both_orders = int((~np.isnan(pairs.judged_ab) & ~np.isnan(pairs.judged_ba)).sum())
    if both_orders:
        steps.append(
            f"both orders combined ({both_orders} battles judged in both orders; inconsistent "
            f"verdicts: {judge.get_inconsistent_rule_display().lower()})"
        )
    known = np.isfinite(pairs.judged_len_a) & np.isfinite(pairs.judged_len_b)
    style = None
    if known.any():
        style = ratings.battle_features(
            pairs.judged_len_a[known, None], pairs.judged_len_b[known, None], names=("tokens",)
        )
        steps.append("length-controlled (answer tokens as a style covariate)")
        if not known.all():
            steps.append(f"{int((~known).sum())} judged battles without answer text left out")
    else:
        known[:] = True
        missing.append(
            {"what": "Length control of the judge board", "why": "no answer texts are stored"}
        )
    debiased = _fit_board(
        n,
        ids(pairs.judged_a[known]),
        ids(pairs.judged_b[known]),
        np.asarray(ag.score_outcomes(pairs.judged_score[known]), dtype=np.intp),
        style=style,
        rounds=rounds,
        rng=rngs[2],
        what="Debiased judge leaderboard",
        missing=missing,
        notes=notes,
    )
    if human is None or raw is None or debiased is None:
        return None

    models = np.intersect1d(np.intersect1d(human.model, raw.model), debiased.model)
    if models.size < 2:
        missing.append({"what": "Leaderboard level", "why": "fewer than two models on all boards"})
        return None
    boards = {"human": human, "raw": raw, "debiased": debiased}
    arrays = {name: _board_arrays(board, models) for name, board in boards.items()}
    names = dict(
        Contestant.objects.filter(id__in=contestants[models].tolist()).values_list("id", "name")
    )
    rows = []
    for k, m in enumerate(models):
        row = {"contestant": names[int(contestants[m])]}
        for name, (score, lower, upper, _, _) in arrays.items():
            row[name] = {"rating": _num(score[k]), "lower": _num(lower[k]), "upper": _num(upper[k])}
        rows.append(row)
    rows.sort(key=lambda r: -r["human"]["rating"])

    length_coef = None
    if debiased.style_coef is not None:
        length_coef = {
            "value": _num(debiased.style_coef[0]),
            "low": _num(debiased.style_lower[0]),
            "high": _num(debiased.style_upper[0]),
        }
    return {
        "n_models": int(models.size),
        "rounds": rounds,
        "reference": "human board",
        "human_separability": _num(ag.separability(arrays["human"][1], arrays["human"][2])),
        "raw": {
            "description": "every single-order judgement as a battle, first-shown answer as A",
            **_compare_boards(raw, human, models),
        },
        "debiased": {
            "description": "; ".join(steps) if steps else "no debiasing available",
            "length_coefficient": length_coef,
            **_compare_boards(debiased, human, models),
        },
        "notes": notes,
        "models": rows,
    }


def _verdict(name: str, agreement: dict | None, humans: dict | None) -> str:
    if agreement is None:
        return f"{name} has no parsed verdict on a pair that people voted on; nothing was measured."
    est = agreement["with_ties"]
    sentence = (
        f"{name} agrees with the human majority on {_pct(est['value'])} of pairs "
        f"(95% CI {_interval(est)})"
    )
    if humans is None:
        return sentence + "; agreement between people was not measured (no pair has two votes)."
    return sentence + f"; people agree with each other on {_pct(humans['with_ties']['value'])}."


def _judge_report(judge: Judge, rng, n_resamples: int, board_rounds: int, memo) -> dict:
    pairs = _collect(judge)
    rngs = np.random.default_rng(rng).spawn(11)
    missing: list[dict] = []
    report = {
        "judge": {
            "id": judge.pk,
            "name": judge.name,
            "template_version": judge.template_version,
            "verdict_format": judge.verdict_format,
            "inconsistent_rule": judge.inconsistent_rule,
        },
        "settings": {
            "rng": rng if isinstance(rng, int) else None,
            "n_resamples": n_resamples,
            "board_rounds": board_rounds,
            "confidence_level": CONFIDENCE,
        },
    }
    n_orders = {
        "ab_only": int((~np.isnan(pairs.judged_ab) & np.isnan(pairs.judged_ba)).sum()),
        "ba_only": int((np.isnan(pairs.judged_ab) & ~np.isnan(pairs.judged_ba)).sum()),
        "both": int((~np.isnan(pairs.judged_ab) & ~np.isnan(pairs.judged_ba)).sum()),
    }
    report["data"] = {
        "pairs": pairs.n_pairs,
        "human_votes": int(pairs.vote_pair.size),
        "pairs_with_several_votes": int((np.bincount(pairs.vote_pair) >= 2).sum())
        if pairs.n_pairs
        else 0,
        "battles_judged": int(pairs.judged_pair.size),
        "judged_orders": n_orders,
        "parse_failures": pairs.parse_failures,
        "judgements_outside_pairs": pairs.judgements_outside,
    }
    empty = {
        "agreement": None,
        "confusion": None,
        "human_baseline": None,
        "categories": [],
        "position": None,
        "length": None,
        "leaderboard": None,
    }
    if pairs.n_pairs == 0:
        missing.append(
            {
                "what": "Everything",
                "why": "the judge has no parsed verdict on a battle of a pair with a human vote",
            }
        )
        report.update(empty)
        report["verdict"] = _verdict(judge.name, None, None)
        report["not_measured"] = missing
        return report

    agreement = ag.judge_agreement(
        pairs.judge_outcome,
        pairs.vote_pair,
        pairs.vote_framed,
        n_resamples=n_resamples,
        rng=rngs[0],
    )
    report["agreement"] = _agreement(agreement)
    report["confusion"] = _confusion(agreement, "human majority", "judge")
    vote_key = tuple(
        x.tobytes()
        for x in (
            pairs.vote_battle,
            pairs.vote_pair,
            pairs.vote_framed,
            pairs.vote_len_a,
            pairs.vote_len_b,
        )
    )
    key = ("human side", vote_key, n_resamples)
    if memo is None or key not in memo:
        human_side = _human_side(pairs, [rngs[1], rngs[4], rngs[7]], n_resamples)
        if memo is not None:
            memo[key] = human_side
    else:
        human_side = memo[key]
    report["human_baseline"] = human_side["baseline"]
    missing.extend(human_side["missing"])
    report["categories"] = _per_category(pairs, rngs[2], n_resamples)
    if not report["categories"]:
        missing.append({"what": "Agreement per category", "why": "no battle has a category"})

    shown, len_first, len_second, shown_pair, _, _ = _judge_shown(pairs)
    both = ~np.isnan(pairs.judged_ab) & ~np.isnan(pairs.judged_ba)
    position = {
        "judge_first": _first(
            ag.first_position_preference(
                shown, items=shown_pair, n_resamples=n_resamples, rng=rngs[3]
            )
        ),
        "human_first": human_side["first"],
        "consistency": None,
        "consistency_n": int(both.sum()),
    }
    if both.any():
        position["consistency"] = _est(
            ag.position_consistency(
                pairs.judged_ab[both], pairs.judged_ba[both], n_resamples=n_resamples, rng=rngs[5]
            )
        )
    else:
        missing.append(
            {
                "what": "Position consistency",
                "why": (
                    f"not measured: single order. {judge.name} judged each of its "
                    f"{pairs.judged_pair.size} battles in one order only, so whether its verdict "
                    "survives swapping the answers is unknown; position is measured as "
                    "first-position preference instead"
                ),
            }
        )
    report["position"] = position

    judge_length, why = _length_bias(shown, len_first, len_second, shown_pair, rngs[6], n_resamples)
    if why:
        missing.append({"what": "Length bias of the judge", "why": why})
    report["length"] = {
        "unit": "estimated tokens",
        "judge": judge_length,
        "humans": human_side["length"],
    }
    report["leaderboard"] = _leaderboards(pairs, judge, rngs[8:], board_rounds, missing, memo)
    report["verdict"] = _verdict(judge.name, report["agreement"], report["human_baseline"])
    report["not_measured"] = missing
    return report


def calibration_report(
    *, judge=None, rng=0, n_resamples: int = 1000, board_rounds: int = BOARD_ROUNDS
) -> dict:
    """Calibration of a judge against the human votes, JSON-ready.

    Parameters
    ----------
    judge : Judge, str or None
        A judge or its name; None for every judge.
    rng : None, int or numpy.random.Generator
        Seed of every bootstrap. Each judge's report is seeded with it on its own, so a report
        does not depend on which other judges exist.
    n_resamples : int
        Bootstrap resamples of pairs for the pair-level statistics.
    board_rounds : int
        Bootstrap rounds of each leaderboard (arena-hard-auto uses 100). The length-controlled
        board refits every round battle by battle, so rounds cost most of the report's time.

    Returns
    -------
    dict
        For one judge its report (keys ``judge``, ``verdict``, ``not_measured``, ``data``,
        ``agreement``, ``confusion``, ``human_baseline``, ``categories``, ``position``,
        ``length``, ``leaderboard``, ``settings``); for every judge ``{"judges": [reports]}``,
        by name. Estimates are ``{"value", "low", "high"}``; undefined numbers are None.

    Raises
    ------
    Judge.DoesNotExist
        If ``judge`` names no judge.
    """
    memo = {} if isinstance(rng, int) else None
    if judge is None:
        return {
            "judges": [
                _judge_report(j, rng, n_resamples, board_rounds, memo)
                for j in Judge.objects.order_by("name")
            ]
        }
    if isinstance(judge, str):
        judge = Judge.objects.get(name=judge)
    return _judge_report(judge, rng, n_resamples, board_rounds, memo)


# --------------------------------------------------------------------------------------------
# Per-process cache

_cache: dict[tuple, tuple[tuple, float, dict]] = {}
_cache_lock = threading.Lock()


def _fingerprint(judge: Judge) -> tuple:
    """What a report depends on, cheaply: changes whenever a vote, verdict, answer or category
    is added, voided, parsed or deleted. Timestamps tell apart rows that reuse an id after a
    rollback. An in-place edit of an existing row is caught only by the time limit."""

    def summary(queryset, *filters):
        extra = {f"n{k}": Count("id", filter=q) for k, q in enumerate(filters)}
        row = queryset.aggregate(
            last_id=Max("id"), last_at=Max("created_at"), n=Count("id"), **extra
        )
        return tuple(row[k] for k in sorted(row))

    votes = summary(Vote.objects.all(), Q(void_reason=""))
    verdicts = summary(Judgement.objects.filter(judge=judge), ~Q(verdict=""))
    others = (
        summary(Answer.objects.all()),
        summary(Turn.objects.filter(superseded=False)),
        tuple(BattleCategory.objects.aggregate(last_id=Max("id"), n=Count("id")).values()),
    )
    return (
        judge.pk,
        judge.name,
        judge.created_at,
        judge.inconsistent_rule,
        votes,
        verdicts,
        *others,
    )


def cached_calibration_report(
    *, judge=None, rng=0, n_resamples: int = 1000, board_rounds: int = BOARD_ROUNDS
) -> dict:
    """:func:`calibration_report`, kept per process for a few minutes while the data stays
    the same (see ``_fingerprint``). Returns a copy the caller may change."""
    if not isinstance(rng, int):
        return calibration_report(
            judge=judge, rng=rng, n_resamples=n_resamples, board_rounds=board_rounds
        )
    if isinstance(judge, str):
        judge = Judge.objects.get(name=judge)
    judges = list(Judge.objects.order_by("name")) if judge is None else [judge]
    memo: dict = {}
    reports = []
    now = time.monotonic()
    for j in judges:
        key = (j.pk, rng, n_resamples, board_rounds)
        fingerprint = _fingerprint(j)
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None and hit[0] == fingerprint and now - hit[1] < _CACHE_SECONDS:
            report = hit[2]
        else:
            report = _judge_report(j, rng, n_resamples, board_rounds, memo)
            with _cache_lock:
                _cache[key] = (fingerprint, time.monotonic(), report)
                while len(_cache) > _CACHE_SIZE:
                    del _cache[min(_cache, key=lambda k: _cache[k][1])]
        reports.append(copy.deepcopy(report))
    return {"judges": reports} if judge is None else reports[0]


def clear_calibration_cache() -> None:
    with _cache_lock:
        _cache.clear()
