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
from collections.abc import Callable

import numpy as np

import ratings
from arena.calibration.collect import _collect, _Pairs
from arena.calibration.figures import (
    agreement_figures,
    confusion,
    estimate,
    first_position,
    interval_text,
    length_bias,
    number,
    percent,
)
from arena.models import (
    Category,
    Contestant,
    Judge,
)
from ratings import agreement as ag

CONFIDENCE = 0.95


BOARD_RESAMPLES = 200


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
        row["judge"] = agreement_figures(judged)
        try:
            human = ag.human_agreement(items, votes, n_resamples=n_resamples, rng=rng)
        except ValueError:
            row["humans"] = None
        else:
            row["humans"] = agreement_figures(human)
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
    return {**length_bias(bias), "n_unknown_length": int((~known).sum())}, ""


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
        out["baseline"] = agreement_figures(humans)
    out["first"] = first_position(
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
        "spearman": number(corr.spearman),
        "kendall": number(corr.kendall),
        "separability": number(ag.separability(lower, upper)),
        "agreement_with_ci": number(ci.agreement),
        "ci_pairs": {
            "separated_by_humans": ci.n_separated,
            "same_order": ci.n_same,
            "overlap": ci.n_overlap,
            "opposite": ci.n_opposite,
        },
        "brier": number(ag.brier_score(mean, var, ref)),
    }


def _fit_board(n, a, b, outcome, *, board_resamples, rng, what, missing, notes, style=None):
    """``ratings.leaderboard`` with bootstrap intervals, or None (and why) if it cannot fit.

    A bootstrap round of a style fit whose resample has no finite estimate (a group of models
    that never lost to the others) can fail to converge; the board is then refitted with the
    engine's small prior (``ratings.DEFAULT_PRIOR`` virtual ties per model), and a note says so.
    """
    kwargs = {
        "style": style,
        "n_resamples": board_resamples,
        "workers": 1,
    }  # one thread: the web process
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


def _leaderboards(pairs: _Pairs, judge: Judge, rngs, board_resamples, missing, memo) -> dict | None:
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
    key = ("human board", contestants.tobytes(), pairs.vote_battle.tobytes(), board_resamples)
    if memo is not None and key in memo:
        human, human_notes = memo[key]
        notes.extend(human_notes)
    else:
        human = _fit_board(
            n,
            ids(pairs.vote_a),
            ids(pairs.vote_b),
            pairs.vote_shown,
            board_resamples=board_resamples,
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
        board_resamples=board_resamples,
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
        board_resamples=board_resamples,
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
    # Boards are compared on the models whose interval can be estimated on all three.
    estimable = np.all([np.isfinite(a[1]) & np.isfinite(a[2]) for a in arrays.values()], axis=0)
    if not estimable.all():
        notes.append(
            f"{int((~estimable).sum())} model(s) left out: an interval could not be estimated"
        )
        models = models[estimable]
        if models.size < 2:
            missing.append({"what": "Leaderboard level", "why": "fewer than two rated models"})
            return None
        arrays = {name: _board_arrays(board, models) for name, board in boards.items()}
    names = dict(
        Contestant.objects.filter(id__in=contestants[models].tolist()).values_list("id", "name")
    )
    rows = []
    for k, m in enumerate(models):
        row = {"contestant": names[int(contestants[m])]}
        for name, (score, lower, upper, _, _) in arrays.items():
            row[name] = {
                "rating": number(score[k]),
                "lower": number(lower[k]),
                "upper": number(upper[k]),
            }
        rows.append(row)
    rows.sort(key=lambda r: -r["human"]["rating"])

    length_coef = None
    if debiased.style_coef is not None:
        length_coef = {
            "value": number(debiased.style_coef[0]),
            "lower": number(debiased.style_lower[0]),
            "upper": number(debiased.style_upper[0]),
        }
    return {
        "n_models": int(models.size),
        "n_resamples": board_resamples,
        "reference": "human board",
        "human_separability": number(ag.separability(arrays["human"][1], arrays["human"][2])),
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
        f"{name} agrees with the human majority on {percent(est['value'])} of pairs "
        f"(95% CI {interval_text(est)})"
    )
    if humans is None:
        return sentence + "; agreement between people was not measured (no pair has two votes)."
    return sentence + f"; people agree with each other on {percent(humans['with_ties']['value'])}."


STEPS = (
    "reading votes and verdicts",
    "agreement",
    "human baseline",
    "per category",
    "position",
    "length",
    "leaderboards",
)


def _judge_report(
    judge: Judge,
    rng,
    n_resamples: int,
    board_resamples: int,
    memo,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """One judge's report; ``progress(n)`` is called after each of the ``STEPS`` done."""
    step = progress or (lambda n: None)
    pairs = _collect(judge)
    step(1)
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
            "board_resamples": board_resamples,
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
    report["agreement"] = agreement_figures(agreement)
    report["confusion"] = confusion(agreement, "human majority", "judge")
    step(2)
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
    step(3)
    report["categories"] = _per_category(pairs, rngs[2], n_resamples)
    if not report["categories"]:
        missing.append({"what": "Agreement per category", "why": "no battle has a category"})
    step(4)

    shown, len_first, len_second, shown_pair, _, _ = _judge_shown(pairs)
    both = ~np.isnan(pairs.judged_ab) & ~np.isnan(pairs.judged_ba)
    position = {
        "judge_first": first_position(
            ag.first_position_preference(
                shown, items=shown_pair, n_resamples=n_resamples, rng=rngs[3]
            )
        ),
        "human_first": human_side["first"],
        "consistency": None,
        "consistency_n": int(both.sum()),
    }
    if both.any():
        position["consistency"] = estimate(
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
    step(5)

    judge_length, why = _length_bias(shown, len_first, len_second, shown_pair, rngs[6], n_resamples)
    if why:
        missing.append({"what": "Length bias of the judge", "why": why})
    report["length"] = {
        "unit": "estimated tokens",
        "judge": judge_length,
        "humans": human_side["length"],
    }
    step(6)
    report["leaderboard"] = _leaderboards(pairs, judge, rngs[8:], board_resamples, missing, memo)
    report["verdict"] = _verdict(judge.name, report["agreement"], report["human_baseline"])
    report["not_measured"] = missing
    step(7)
    return report


def calibration_report(
    *, judge=None, rng=0, n_resamples: int = 1000, board_resamples: int = BOARD_RESAMPLES
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
    board_resamples : int
        Bootstrap resamples of each leaderboard (arena-hard-auto uses 100). The length-controlled
        board refits every resample battle by battle, so resamples cost most of the report's time.

    Returns
    -------
    dict
        For one judge its report (keys ``judge``, ``verdict``, ``not_measured``, ``data``,
        ``agreement``, ``confusion``, ``human_baseline``, ``categories``, ``position``,
        ``length``, ``leaderboard``, ``settings``); for every judge ``{"judges": [reports]}``,
        by name. Estimates are ``{"value", "lower", "upper"}``; undefined numbers are None.

    Raises
    ------
    Judge.DoesNotExist
        If ``judge`` names no judge.
    """
    memo = {} if isinstance(rng, int) else None
    if judge is None:
        return {
            "judges": [
                _judge_report(j, rng, n_resamples, board_resamples, memo)
                for j in Judge.objects.order_by("name")
            ]
        }
    if isinstance(judge, str):
        judge = Judge.objects.get(name=judge)
    return _judge_report(judge, rng, n_resamples, board_resamples, memo)
