"""The pairs a calibration report compares: each judged battle with its human votes,
answer lengths and categories, read once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import ratings
from arena.battles.style import battle_style
from arena.judging.verdicts import judge_verdicts
from arena.models import (
    Battle,
    BattleCategory,
    Judge,
    Judgement,
    Turn,
    Vote,
)
from ratings import agreement as ag


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


# Agreement statistics have three classes: "both are bad" counts as a tie there.
_VOTE_CODES = {o.value: min(o.code, ratings.TIE) for o in Vote.Outcome}


def _flip(outcomes: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """Swap A_WINS and B_WINS where ``flip``; ties stay."""
    swapped = np.select(
        [outcomes == ratings.A_WINS, outcomes == ratings.B_WINS],
        [ratings.B_WINS, ratings.A_WINS],
        ratings.TIE,
    )
    return np.where(flip, swapped, outcomes).astype(np.intp)
