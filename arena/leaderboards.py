"""Leaderboard snapshots: stored votes -> the ratings engine -> one stored, complete snapshot.

A refresh reads every counted vote (or a judge's combined verdicts) up to a cutoff, fits the
overall board and one board per category in one call to ``ratings``, with and without style
control, and writes all the snapshots of that refresh in one transaction. Pages and the API
only ever read the latest *complete* snapshot, so a reader never sees a half-written one, and
every snapshot is computed from one cutoff: two refreshes at once cannot mix their data.
Recomputing with the same cutoff, settings and seed gives identical numbers.
"""

import datetime as dt
import logging
import math
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, IntegerField, Q, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

import ratings
from arena.columns import DATE, INT, read_columns
from arena.judge import judge_verdicts
from arena.models import (
    Answer,
    Battle,
    BattleCategory,
    Category,
    Contestant,
    Judge,
    Judgement,
    LeaderboardSnapshot,
    Turn,
    Vote,
)

log = logging.getLogger(__name__)

OUTCOME_CODES = {
    "a": ratings.A_WINS,
    "b": ratings.B_WINS,
    "tie": ratings.TIE,
    "both_bad": ratings.BOTH_BAD,
}


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


@cache
def code_version() -> str:
    try:
        pkg = version("arena")
    except PackageNotFoundError:  # running from a tree that was never installed
        pkg = "0"
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{pkg}+{sha}" if sha else pkg


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


def rated_votes():
    """The human votes a leaderboard counts: not void, on battles that did not fail."""
    return Vote.objects.counted().exclude(
        battle__status__in=[Battle.Status.ERRORED, Battle.Status.VOID]
    )


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
        *(When(outcome=k, then=Value(v)) for k, v in OUTCOME_CODES.items()),
        output_field=IntegerField(),
    )
    battle_id, outcome, day = read_columns(
        Vote.objects.counted()
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
    turns = _stored_style(Turn.objects.filter(superseded=False, error=""), "battle_id", "side")
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
    turns = Turn.objects.filter(superseded=False, error="")
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
        for key in ("rating", "lower", "upper"):
            entry[key] = round(entry[key], 2)
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
        "rounds": settings.ARENA_LEADERBOARD_ROUNDS,
        "alpha": 0.05,
        "min_votes": settings.ARENA_MIN_VOTES,
        "both_bad": "tie",
    }


def leaderboard_refresh(
    *,
    judge: Judge | None = None,
    cutoff_id: int | None = None,
    seed: int | None = None,
    rounds: int | None = None,
    progress=None,
) -> list[LeaderboardSnapshot]:
    """Fit and store the overall and per-category boards, plain and style-controlled.

    ``judge=None`` means human votes. Returns the stored snapshots (all complete), or an
    empty list when there is nothing to rate.
    """
    seed = settings.ARENA_LEADERBOARD_SEED if seed is None else seed
    fit_settings = _settings()
    if rounds is not None:
        fit_settings["rounds"] = rounds
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
    plain = ratings.leaderboards_by_category(
        data.n_models,
        data.a,
        data.b,
        data.outcome,
        data.membership,
        category_names=category_names,
        rng=seed,
        **fit_settings,
    )
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
        style_settings = {**fit_settings, "rounds": min(fit_settings["rounds"], 100)}
        sc = ratings.leaderboards_by_category(
            data.n_models,
            data.a[idx],
            data.b[idx],
            data.outcome[idx],
            data.membership[idx],
            category_names=category_names,
            style=features,
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
                "rounds": min(fit_settings["rounds"], 100),
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


def latest_snapshot(
    *,
    judge: Judge | None = None,
    category: Category | None = None,
    style_control: bool = False,
    with_pictures: bool = False,
) -> LeaderboardSnapshot | None:
    """The newest complete snapshot of a scope; the large pictures only when asked for."""
    scope = LeaderboardSnapshot.Scope.HUMAN if judge is None else LeaderboardSnapshot.Scope.JUDGE
    found = LeaderboardSnapshot.objects.filter(
        scope=scope,
        judge=judge,
        category=category,
        style_control=style_control,
        status=LeaderboardSnapshot.Status.COMPLETE,
    ).select_related("judge", "category")
    if not with_pictures:
        found = found.defer("pictures")
    return found.order_by("-completed_at", "-id").first()


REFRESH_QUEUED = "arena:leaderboard-refresh-queued"
REFRESH_RUNNING = "arena:leaderboard-refresh-running"


def refresh_due() -> bool:
    """A human-vote refresh is due after N new counted votes, or T minutes after the last."""
    latest = latest_snapshot()
    since = latest.cutoff_vote_id or 0 if latest else 0
    new = rated_votes().filter(id__gt=since).count()
    if new == 0:
        return False
    if latest is None or new >= settings.ARENA_REFRESH_EVERY_VOTES:
        return True
    age = timezone.now() - (latest.completed_at or latest.created_at)
    return age >= dt.timedelta(minutes=settings.ARENA_REFRESH_MINUTES)


def leaderboard_after_vote() -> bool:
    """Called after a vote commits: enqueue one debounced refresh when due."""
    from django.core.cache import cache

    from arena.tasks import enqueue_beside_request, leaderboard_refresh_task

    if not settings.ARENA_REFRESH_AFTER_VOTES or not refresh_due():
        return False
    if not cache.add(REFRESH_QUEUED, 1, timeout=15 * 60):
        return False
    enqueue_beside_request(leaderboard_refresh_task)
    return True
