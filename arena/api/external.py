"""Battles the arena did not generate, sent by other tools with their vote.

A record names two existing contestants, gives the prompt and both answers (or several
``turns``), the outcome, optionally the voter's label, a category and the times, and an
idempotency ``key``. A batch is all or nothing: every record is checked first and the answer
names each bad field (``records[3].outcome: ...``). Valid batches are written by the importer's
bulk path (``arena.exchange.bulk.BattleWriter``: COPY on PostgreSQL) in one transaction that
first inserts the keys with ``ON CONFLICT DO NOTHING``: a key already stored (a retry, or a
concurrent identical request, which waits on the unique index until the first commits) stores
nothing again. Each answer goes through the identity-leak check, and each counted vote is
announced to ``core.hooks`` (leaderboard refresh, auto-judges) after the commit.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from arena.battles.protocol import storable_text
from arena.battles.services import identity_pattern, texts_identity_leak
from arena.core import hooks
from arena.exchange.bulk import BattleWriter, PendingBattle
from arena.models import Battle, BattleCategory, Category, Contestant, ExternalBattleKey, Vote

FIELDS = {
    "key",
    "model_a",
    "model_b",
    "prompt",
    "answer_a",
    "answer_b",
    "turns",
    "outcome",
    "voter",
    "category",
    "created_at",
    "voted_at",
}
MAX_KEY = 200
MAX_TEXT = 200_000
FUTURE_SLACK = timedelta(minutes=5)
# Hoisted: the choices property builds its list on every access (0.1 s per 5,000 records).
OUTCOMES = frozenset(Vote.Outcome.values)


@dataclass(frozen=True)
class Problem:
    field: str
    problem: str

    def as_dict(self) -> dict:
        return {"field": self.field, "problem": self.problem}


class BatchRejected(Exception):
    """Nothing was stored; ``problems`` names every bad field."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(f"{len(problems)} problems; nothing was stored.")


@dataclass
class _Valid:
    key: str
    a: int
    b: int
    turns: list[tuple[str, str, str]]
    outcome: str
    voter: str
    category: int | None
    created_at: datetime
    voted_at: datetime
    timed: bool  # both times given: the time to vote is known (the too-fast check needs it)
    void: str = ""


class _Names:
    """The contestants and categories a batch names, read in two queries."""

    def __init__(self, records: list):
        names, slugs = set(), set()
        for record in records:
            if isinstance(record, dict):
                # A name with NUL matches nothing (and PostgreSQL refuses it in a query): it is
                # then reported as an unknown contestant or category, by its field.
                names.update(
                    v for v in (record.get("model_a"), record.get("model_b")) if _lookup(v)
                )
                if _lookup(record.get("category")):
                    slugs.add(record["category"])
        contestants = Contestant.objects.filter(name__in=names)
        self.contestants = {c.name: c for c in contestants}
        self.categories = dict(Category.objects.filter(slug__in=slugs).values_list("slug", "id"))
        self.patterns = {c.pk: identity_pattern(c) for c in contestants}


def _s(value) -> bool:
    return isinstance(value, str) and bool(value)


def _lookup(value) -> bool:
    return _s(value) and "\x00" not in value


def _text(record: dict, name: str, where: str, problems: list, *, required=True) -> str:
    value = record.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        problems.append(Problem(f"{where}.{name}", "expected a non-empty string"))
        return ""
    if len(value) > MAX_TEXT:
        problems.append(Problem(f"{where}.{name}", f"longer than {MAX_TEXT} characters"))
        return ""
    text = storable_text(value)
    return text


def _time(record: dict, name: str, where: str, problems: list, now: datetime):
    value = record.get(name)
    if value is None:
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None or parsed.tzinfo is None:
        problems.append(
            Problem(
                f"{where}.{name}",
                "expected an ISO 8601 time with its offset, e.g. 2026-01-31T12:00:00Z",
            )
        )
        return None
    if parsed > now + FUTURE_SLACK:
        problems.append(Problem(f"{where}.{name}", "is in the future"))
        return None
    return parsed


def _turns(record: dict, where: str, problems: list) -> list[tuple[str, str, str]]:
    if "turns" in record:
        if any(k in record for k in ("prompt", "answer_a", "answer_b")):
            problems.append(
                Problem(f"{where}.turns", "give either turns or prompt/answer_a/answer_b")
            )
            return []
        turns = record["turns"]
        if not isinstance(turns, list) or not 1 <= len(turns) <= settings.ARENA_MAX_TURNS:
            problems.append(
                Problem(
                    f"{where}.turns", f"expected a list of 1 to {settings.ARENA_MAX_TURNS} turns"
                )
            )
            return []
        out = []
        for i, turn in enumerate(turns):
            at = f"{where}.turns[{i}]"
            if not isinstance(turn, dict):
                problems.append(Problem(at, "expected an object with prompt, answer_a, answer_b"))
                continue
            extra = sorted(set(turn) - {"prompt", "answer_a", "answer_b"})
            if extra:
                problems.append(Problem(f"{at}.{extra[0]}", "unknown field"))
            out.append(
                tuple(_text(turn, f, at, problems) for f in ("prompt", "answer_a", "answer_b"))
            )
        return out
    return [tuple(_text(record, f, where, problems) for f in ("prompt", "answer_a", "answer_b"))]


def _validate(record, where: str, names: _Names, now: datetime, problems: list):
    if not isinstance(record, dict):
        problems.append(Problem(where, "expected an object"))
        return None
    before = len(problems)
    for name in sorted(set(record) - FIELDS):
        problems.append(Problem(f"{where}.{name}", "unknown field"))
    key = record.get("key")
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY:
        problems.append(
            Problem(f"{where}.key", f"expected an idempotency key of 1 to {MAX_KEY} characters")
        )
    sides = []
    for side in ("model_a", "model_b"):
        name = record.get(side)
        contestant = names.contestants.get(name) if isinstance(name, str) else None
        if contestant is None:
            problems.append(Problem(f"{where}.{side}", f"no contestant is named {name!r}"))
        sides.append(contestant)
    if sides[0] is not None and sides[0] == sides[1]:
        problems.append(Problem(f"{where}.model_b", "the same contestant as model_a"))
    turns = _turns(record, where, problems)
    outcome = record.get("outcome")
    if not isinstance(outcome, str) or outcome not in OUTCOMES:
        problems.append(
            Problem(
                f"{where}.outcome",
                f"expected one of {', '.join(Vote.Outcome.values)}; got {outcome!r}",
            )
        )
    voter = record.get("voter", "")
    if not isinstance(voter, str) or len(voter) > 200:
        problems.append(Problem(f"{where}.voter", "expected a label of at most 200 characters"))
    category = None
    if record.get("category") is not None:
        category = names.categories.get(record["category"]) if _s(record["category"]) else None
        if category is None:
            problems.append(Problem(f"{where}.category", f"no category {record['category']!r}"))
    created = _time(record, "created_at", where, problems, now)
    voted = _time(record, "voted_at", where, problems, now)
    if created and voted and voted < created:
        problems.append(Problem(f"{where}.voted_at", "is before created_at"))
    if len(problems) > before:
        return None
    timed = created is not None and voted is not None
    created = created or voted or now
    return _Valid(
        key,
        sides[0].pk,
        sides[1].pk,
        turns,
        outcome,
        voter,
        category,
        created,
        voted or created,
        timed,
    )


def records_validate(records, *, now: datetime) -> list[_Valid]:
    """The valid records, or BatchRejected naming every problem of every record."""
    if not isinstance(records, list) or not records:
        raise BatchRejected([Problem("records", "expected a non-empty list of battles")])
    if len(records) > settings.ARENA_API_MAX_BATCH:
        raise BatchRejected(
            [
                Problem(
                    "records",
                    f"more than ARENA_API_MAX_BATCH ({settings.ARENA_API_MAX_BATCH}) battles",
                )
            ]
        )
    names = _Names(records)
    problems: list[Problem] = []
    valid = [_validate(r, f"records[{i}]", names, now, problems) for i, r in enumerate(records)]
    seen: dict[str, int] = {}
    for i, record in enumerate(valid):
        if record is not None:
            if record.key in seen:
                problems.append(
                    Problem(f"records[{i}].key", f"repeats records[{seen[record.key]}].key")
                )
            seen.setdefault(record.key, i)
    if problems:
        raise BatchRejected(problems)
    for record in valid:
        record.void = texts_identity_leak(
            texts=[text for _, *answers in record.turns for text in answers],
            patterns=(names.patterns[record.a], names.patterns[record.b]),
        )
    return valid


def _claim_keys(user_id: int, keys: list[str], now: datetime) -> set[str]:
    """Insert the keys not yet stored; the set of those this transaction inserted."""
    table = connection.ops.quote_name(ExternalBattleKey._meta.db_table)
    claimed: set[str] = set()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # one statement, arrays instead of 3n params
            cursor.execute(
                f"INSERT INTO {table} (user_id, key, created_at) "
                "SELECT %s, k, %s FROM unnest(%s::text[]) AS k "
                "ON CONFLICT (user_id, key) DO NOTHING RETURNING key",
                [user_id, now, keys],
            )
            return {row[0] for row in cursor.fetchall()}
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            rows = ", ".join(["(%s, %s, %s)"] * len(chunk))
            params = [v for key in chunk for v in (user_id, key, now)]
            cursor.execute(
                f"INSERT INTO {table} (user_id, key, created_at) VALUES {rows} "
                "ON CONFLICT (user_id, key) DO NOTHING RETURNING key",
                params,
            )
            claimed.update(row[0] for row in cursor.fetchall())
    return claimed


def _pending(record: _Valid, user_id: int) -> PendingBattle:
    battle = {
        "contestant_a_id": record.a,
        "contestant_b_id": record.b,
        "mode": Battle.Mode.IMPORTED,
        "status": Battle.Status.VOTED,
        "user_id": user_id,
        "external_id": record.key,
        "created_at": record.created_at,
        "ready_at": record.created_at,
    }
    vote = {
        "voter_id": user_id,
        "voter_label": record.voter,
        "outcome": record.outcome,
        "seconds_to_vote": (
            (record.voted_at - record.created_at).total_seconds() if record.timed else None
        ),
        "void_reason": record.void,
        "created_at": record.voted_at,
    }
    turns = [
        {"index": i, "side": side, "prompt": prompt, "text": text, "created_at": record.created_at}
        for i, (prompt, a, b) in enumerate(record.turns)
        for side, text in (("a", a), ("b", b))
    ]
    categories = []
    if record.category is not None:
        categories.append(
            {"category_id": record.category, "assigner": BattleCategory.Assigner.VOTER}
        )
    return PendingBattle(battle=battle, vote=vote, turns=turns, categories=categories)


def battles_submit(*, user, records) -> list[dict]:
    """Store ``records`` (all or nothing); per record ``{key, battle, created, counted}``:
    ``created`` false for a key stored before (nothing stored again). Raises BatchRejected."""
    now = timezone.now()
    valid = records_validate(records, now=now)
    with transaction.atomic():
        claimed = _claim_keys(user.pk, [r.key for r in valid], now)
        new = [r for r in valid if r.key in claimed]
        # No ANALYZE: a request's rows hardly move the tables' statistics, refreshing them costs
        # more than the counts' queries, and those filter by an array the planner sizes right.
        with BattleWriter(batch_size=5000, now=now, analyze=False) as writer:
            writer.extend([_pending(r, user.pk) for r in new])
        ids = dict(zip([r.key for r in new], writer.battle_ids, strict=True))
        stored = [r.key for r in valid if r.key not in claimed]  # by an earlier request
        if stored:
            ids.update(
                Battle.objects.filter(user_id=user.pk, external_id__in=stored)
                .order_by("id")
                .values_list("external_id", "id")
            )
        hooks.counted_votes([ids[r.key] for r in new if not r.void])
    return [
        {
            "key": r.key,
            "battle": ids.get(r.key),
            "created": r.key in claimed,
            "counted": not r.void,
        }
        for r in valid
    ]
