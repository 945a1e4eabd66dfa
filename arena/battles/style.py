"""Style features of answers (length, Markdown headers, lists, bold), stored with each turn
and answer when recorded, so that leaderboard refreshes read four numbers, never the text."""

import numpy as np
from django.db.models import Q

import ratings
from arena.models import (
    Answer,
    Battle,
    Turn,
)


def text_style(text: str) -> list[float]:
    """The style features (``ratings.FEATURES``) of one answer's text, as stored."""
    return ratings.answer_features([text])[0].tolist()


_STYLE_BATCH = 2000


def _stored_style(rows, *fields: str) -> dict[int, tuple]:
    """Style features of Turn or Answer ``rows`` by pk, as ``(*fields, features)``. Features
    are computed from a row's text once and stored with it, so a refresh reads four numbers per
    answer, not its text."""
    out = {
        pk: (*values, style)
        for pk, *values, style in rows.filter(style__isnull=False).values_list(
            "pk", *fields, "style"
        )
    }
    missing = rows.filter(style__isnull=True).values_list("pk", *fields, "text")
    model = rows.model
    batch: list = []
    for pk, *values, text in missing.iterator(chunk_size=_STYLE_BATCH):
        style = text_style(text)
        out[pk] = (*values, style)
        batch.append(model(pk=pk, style=style))
        if len(batch) >= _STYLE_BATCH:
            model.objects.bulk_update(batch, ["style"])
            batch = []
    if batch:
        model.objects.bulk_update(batch, ["style"])
    return {pk: (*v[:-1], np.asarray(v[-1], dtype=np.float64)) for pk, v in out.items()}


def battle_style(battle_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Style features per side for the battles that have answer texts: (mask, a, b), with
    ``a`` and ``b`` of shape (mask.sum(), len(ratings.FEATURES)).

    A side's rounds are added up (each round's text counted on its own, so a code fence left
    open in one round does not hide the next); stored answers count as one round.
    """
    battle_ids = np.asarray(battle_ids, dtype=np.int64)
    width = len(ratings.FEATURES)
    sides: dict[int, dict[str, np.ndarray | None]] = {}
    with_answers = Battle.objects.filter(answer_a__isnull=False, answer_b__isnull=False)
    pairs = list(with_answers.values_list("id", "answer_a_id", "answer_b_id"))
    if pairs:
        answers = _stored_style(
            Answer.objects.filter(
                Q(pk__in=with_answers.values("answer_a_id"))
                | Q(pk__in=with_answers.values("answer_b_id"))
            )
        )
        for battle_id, a, b in pairs:
            sides[battle_id] = {"a": answers[a][0], "b": answers[b][0]}
    turns = _stored_style(Turn.objects.current().filter(error=""), "battle_id", "side")
    for battle_id, side, style in turns.values():
        own = sides.setdefault(battle_id, {"a": None, "b": None})
        own[side] = style if own[side] is None else own[side] + style
    complete = np.array(
        [i for i, s in sides.items() if s["a"] is not None and s["b"] is not None], dtype=np.int64
    )
    mask = np.isin(battle_ids, complete)
    chosen = battle_ids[mask].tolist()
    a = np.array([sides[i]["a"] for i in chosen]).reshape(-1, width)
    b = np.array([sides[i]["b"] for i in chosen]).reshape(-1, width)
    return mask, a, b
