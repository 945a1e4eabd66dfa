"""Reads for a refresh: counted votes (or a judge's verdicts) as packed integer columns,
contestants mapped to ``0..n-1`` at the boundary, per-contestant statistics."""

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.db.models import Case, IntegerField, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

import ratings
from arena.battles.counts import OVERALL, counted_votes
from arena.core.columns import DATE, INT, read_columns
from arena.judging.verdicts import judge_verdicts
from arena.models import (
    Answer,
    Battle,
    BattleCategory,
    Category,
    DayCount,
    Judge,
    Judgement,
    PairCount,
    Turn,
    Vote,
)


@dataclass(frozen=True, eq=False)
class BattleData:
    """Battles ready for the ratings engine: contestants mapped to ``0..n-1`` at the boundary."""

    contestant_ids: np.ndarray  # index -> Contestant.pk
    battle_ids: np.ndarray
    a: np.ndarray
    b: np.ndarray
    outcome: np.ndarray
    over_time: dict  # category pk (None: overall) -> [(date, count), ...] in date order
    categories: list  # Category rows, columns of membership
    membership: np.ndarray  # (n_battles, n_categories) bool
    cutoff_id: int | None
    cutoff_time: dt.datetime | None

    @property
    def n_models(self) -> int:
        return int(self.contestant_ids.size)


def _fetch(queryset) -> list[tuple]:
    """Rows of a values_list queryset straight from the driver (no per-row model work)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _mapped(rows: np.ndarray, over_time, cutoff_id, cutoff_time) -> BattleData:
    """``rows``: (n, 4) of battle id, contestant A, contestant B, outcome code."""
    battle_ids, ca, cb, outcome = (rows[:, k] for k in range(4))
    # Contestant pks -> 0..n-1 in pk order, through a lookup table (pks are small integers).
    present = np.zeros(int(max(ca.max(), cb.max())) + 1 if ca.size else 0, dtype=bool)
    present[ca] = present[cb] = True
    contestant_ids = np.flatnonzero(present)
    index = np.cumsum(present) - 1
    a, b = index[ca], index[cb]
    categories = list(Category.objects.order_by("slug"))
    membership = np.zeros((battle_ids.size, len(categories)), dtype=bool)
    if battle_ids.size and categories:
        column = np.full(max(c.pk for c in categories) + 1, -1, dtype=np.int64)
        column[[c.pk for c in categories]] = np.arange(len(categories))
        ordered = not np.any(np.diff(battle_ids) < 0)
        order = np.arange(battle_ids.size) if ordered else np.argsort(battle_ids)
        sorted_ids = battle_ids if ordered else battle_ids[order]
        link_battle, link_category = read_columns(
            BattleCategory.objects.filter(battle_id__lte=int(sorted_ids[-1])).values_list(
                "battle_id", "category_id"
            ),
            (INT, INT),
        )
        pos = np.minimum(np.searchsorted(sorted_ids, link_battle), sorted_ids.size - 1)
        hit = sorted_ids[pos] == link_battle
        membership[order[pos[hit]], column[link_category[hit]]] = True
    if callable(over_time):
        over_time = over_time(membership, categories)
    return BattleData(
        contestant_ids=contestant_ids,
        battle_ids=battle_ids,
        a=a.astype(np.int64),
        b=b.astype(np.int64),
        outcome=outcome,
        over_time=over_time,
        categories=categories,
        membership=membership,
        cutoff_id=cutoff_id,
        cutoff_time=cutoff_time,
    )


_EMPTY = np.zeros((0, 4), dtype=np.int64)


rated_votes = counted_votes  # the human votes a leaderboard counts (one definition)


def human_battles(*, cutoff_vote_id: int | None = None) -> BattleData:
    """Every counted human vote up to the cutoff (the latest vote when None).

    Votes and battles are read as two plain scans and joined here: at a million votes that is
    several times faster than letting the database join them.
    """
    votes = rated_votes()
    if cutoff_vote_id is None:
        cutoff_vote_id = votes.order_by("-id").values_list("id", flat=True).first()
    if cutoff_vote_id is None:
        return _mapped(_EMPTY, {}, None, None)
    code = Case(
        *(When(outcome=o.value, then=Value(o.code)) for o in Vote.Outcome),
        output_field=IntegerField(),
    )
    battle_id, outcome, day = read_columns(
        Vote.objects.rated()
        .filter(id__lte=cutoff_vote_id)
        .annotate(code=code, day=TruncDate("created_at"))
        .values_list("battle_id", "code", "day"),
        (INT, INT, DATE),
    )
    if battle_id.size and np.any(np.diff(battle_id) < 0):
        order = np.argsort(battle_id, kind="stable")
        battle_id, outcome, day = battle_id[order], outcome[order], day[order]
    ids, ca, cb = read_columns(
        Battle.objects.exclude(status__in=[Battle.Status.ERRORED, Battle.Status.VOID])
        .filter(id__lte=int(battle_id[-1]) if battle_id.size else 0)
        .values_list("id", "contestant_a_id", "contestant_b_id"),
        (INT, INT, INT),
    )
    if ids.size and np.any(np.diff(ids) < 0):
        order = np.argsort(ids)
        ids, ca, cb = ids[order], ca[order], cb[order]
    pos = np.minimum(np.searchsorted(ids, battle_id), max(ids.size - 1, 0))
    hit = ids[pos] == battle_id if ids.size else np.zeros(battle_id.size, dtype=bool)
    pos = pos[hit]
    rows = np.column_stack([battle_id[hit], ca[pos], cb[pos], outcome[hit]])
    cutoff_time = Vote.objects.filter(id=cutoff_vote_id).values_list("created_at", flat=True)
    return _mapped(rows, _votes_by_day(day[hit]), cutoff_vote_id, cutoff_time.first())


def _votes_by_day(day: np.ndarray):
    """Counts per day, overall and per category, once membership is known: a callable for
    ``_mapped``. ``day``: each battle's day (datetime64[D], in the current time zone)."""
    days, index = np.unique(day, return_inverse=True)
    labels = days.astype(object).tolist()  # datetime.date

    def counts(selected: np.ndarray) -> list[tuple]:
        per_day = np.bincount(selected, minlength=len(labels))
        return [(labels[k], int(n)) for k, n in enumerate(per_day) if n]

    def over_time(membership, categories) -> dict:
        out = {None: counts(index)}
        for k, category in enumerate(categories):
            if membership[:, k].any():
                out[category.pk] = counts(index[membership[:, k]])
        return out

    return over_time


@dataclass(frozen=True, eq=False)
class CountData:
    """The stored vote counts (arena.battles.counts), contestants mapped to ``0..n-1``."""

    contestant_ids: np.ndarray  # index -> Contestant.pk
    counts: dict  # category pk (None: overall) -> ratings.PairCounts
    over_time: dict  # category pk (None: overall) -> [(date, count), ...] in date order
    categories: list  # every Category row, in slug order
    cutoff_id: int | None
    cutoff_time: dt.datetime | None

    @property
    def n_models(self) -> int:
        return int(self.contestant_ids.size)


def human_counts() -> CountData:
    """The counted human votes as kept per (category, pair, outcome) and per day: O(pairs).

    Read in one snapshot (REPEATABLE READ on PostgreSQL, when not inside a transaction
    already), so that counts, days and the cutoff agree while votes keep arriving."""
    outer = connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and not outer:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return _human_counts()


def _human_counts() -> CountData:
    code = Case(
        *(When(outcome=o.value, then=Value(o.code)) for o in Vote.Outcome),
        output_field=IntegerField(),
    )
    key, ca, cb, outcome, n = read_columns(
        PairCount.objects.filter(n__gt=0)
        .annotate(code=code)
        .values_list("category_key", "contestant_a_id", "contestant_b_id", "code", "n"),
        (INT,) * 5,
    )
    overall = key == OVERALL
    contestant_ids = np.union1d(ca[overall], cb[overall])
    a, b = np.searchsorted(contestant_ids, ca), np.searchsorted(contestant_ids, cb)
    categories = list(Category.objects.order_by("slug"))
    counts = {}
    for category in [None, *categories]:
        pick = key == (OVERALL if category is None else category.pk)
        if pick.any():
            counts[category.pk if category else None] = ratings.aggregate(
                contestant_ids.size, a[pick], b[pick], outcome[pick], counts=n[pick]
            )
    over_time: dict = {}
    for k, day, count in (
        DayCount.objects.filter(n__gt=0)
        .order_by("category_key", "day")
        .values_list("category_key", "day", "n")
    ):
        over_time.setdefault(None if k == OVERALL else k, []).append((day, int(count)))
    cutoff = counted_votes().order_by("-id").values_list("id", "created_at").first()
    return CountData(
        contestant_ids=contestant_ids,
        counts=counts,
        over_time=over_time,
        categories=categories,
        cutoff_id=cutoff[0] if cutoff else None,
        cutoff_time=cutoff[1] if cutoff else None,
    )


def judge_battles(*, judge: Judge, cutoff_judgement_id: int | None = None) -> BattleData:
    """A judge's combined verdicts (both orders, the judge's inconsistency rule)."""
    judgements = Judgement.objects.filter(judge=judge)
    if cutoff_judgement_id is None:
        cutoff_judgement_id = judgements.order_by("-id").values_list("id", flat=True).first()
    if cutoff_judgement_id is None:
        return _mapped(_EMPTY, {}, None, None)
    ids = judgements.filter(id__lte=cutoff_judgement_id).values_list("battle_id", flat=True)
    verdicts = judge_verdicts(judge, battle_ids=set(ids))
    meta = {
        row[0]: row[1:]
        for row in Battle.objects.filter(id__in=verdicts.battle_ids.tolist()).values_list(
            "id", "contestant_a_id", "contestant_b_id", "created_at"
        )
    }
    rows = np.array(
        [
            (i, meta[i][0], meta[i][1], o)
            for i, o in zip(verdicts.battle_ids, verdicts.outcome, strict=True)
        ],
        dtype=np.int64,
    ).reshape(-1, 4)
    day = np.array(
        [timezone.localtime(meta[i][2]).date() for i in verdicts.battle_ids],
        dtype="datetime64[D]",
    )
    cutoff_time = Judgement.objects.filter(id=cutoff_judgement_id).values_list(
        "created_at", flat=True
    )
    return _mapped(rows, _votes_by_day(day), cutoff_judgement_id, cutoff_time.first())


def contestant_stats() -> dict[int, dict]:
    """Median time to first token, median answer length (tokens) and cost per 1,000 answers."""
    per: dict[int, dict[str, list]] = {}

    def add(cid, key, value):
        if value is not None:
            per.setdefault(cid, {"ttft": [], "tokens": [], "cost": []})[key].append(value)

    def tokens(rows, known_fields, text_fields):
        """Token counts where stored; the text is read only where they are not."""
        yield from _fetch(rows.filter(tokens_out__isnull=False).values_list(*known_fields))
        for *row, text in _fetch(rows.filter(tokens_out__isnull=True).values_list(*text_fields)):
            yield (*row, ratings.estimate_tokens(text))

    turn_fields = ["side", "battle__contestant_a_id", "battle__contestant_b_id", "ttft_ms", "cost"]
    turns = Turn.objects.current().filter(error="")
    for side, ca, cb, ttft, cost, n_tokens in tokens(
        turns, [*turn_fields, "tokens_out"], [*turn_fields, "text"]
    ):
        cid = ca if side == "a" else cb
        add(cid, "ttft", ttft)
        add(cid, "tokens", n_tokens)
        add(cid, "cost", None if cost is None else float(cost))
    answers = Answer.objects.all()
    for cid, n_tokens in tokens(
        answers, ["contestant_id", "tokens_out"], ["contestant_id", "text"]
    ):
        add(cid, "tokens", n_tokens)
    out = {}
    for cid, values in per.items():
        out[cid] = {
            "median_ttft_ms": float(np.median(values["ttft"])) if values["ttft"] else None,
            "median_tokens": float(np.median(values["tokens"])) if values["tokens"] else None,
            "cost_per_1000": (
                round(float(np.mean(values["cost"])) * 1000, 4) if values["cost"] else None
            ),
        }
    return out
