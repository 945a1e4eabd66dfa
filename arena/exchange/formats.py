"""Battle files of other tools: FastChat clean_battle, arena-rank CSV, LLMFAO CSV, Open WebUI.

Each reader turns one record of its file into ``Row`` objects (a battle and its vote, by model
name) or raises ``InvalidRecord(field, problem)``. ``Names`` then maps names to rows of the
database, creating what is missing.

Mapping rules shared by all of them:

- Contestants missing from the database are created by name with kind ``recorded`` and
  ``active=False``: imported models are never drawn for live battles until someone configures
  and activates them.
- Battles get mode ``imported`` and status ``voted``; their one vote has no ``voter`` and keeps
  the file's voter id (FastChat ``judge``, LLMFAO ``worker``, Open WebUI ``user_id``) in
  ``voter_label``. Times come from the file when it has them (both battle and vote).
- FastChat ``winner`` ``tie (bothbad)`` (or ``both_bad``) is the outcome ``both_bad``.
- FastChat ``anony: false`` battles (names shown before the vote) are stored with the vote void,
  reason ``not anonymous``, as FastChat's own leaderboard leaves them out.
- FastChat ``category_tag``: a group ``<name>_v<version>`` whose flag ``<name>`` is true gives
  the category ``<name>`` (``math_v0.1: {math: true}`` gives ``math``); the ``criteria`` group
  gives ``hard-prompts`` when at least 6 criteria hold (Chatbot Arena's definition).
- FastChat ``conversation_a``/``conversation_b`` become turns (one per round and side; text
  parts of list contents are joined). ``language``, ``turn`` and ``conv_metadata`` have no
  place in the arena's tables and are not kept.
- Open WebUI: a feedback whose ``data.sibling_model_ids`` is set compares ``data.model_id``
  (side A) with each sibling (side B); rating 1 means A won, -1 B won, 0 a tie. A feedback
  without siblings rates one answer alone and is not a battle: it is counted and passed over.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils.text import slugify

from arena.exchange.bulk import PendingBattle
from arena.exchange.sources import InvalidRecord, UnreadableFile
from arena.models import Battle, BattleCategory, Category, Contestant, Turn, Vote

MAX_NAME = Contestant._meta.get_field("name").max_length
MAX_LABEL = Vote._meta.get_field("voter_label").max_length
MAX_EXTERNAL_ID = Battle._meta.get_field("external_id").max_length

FASTCHAT_WINNERS = {
    "model_a": Vote.Outcome.A,
    "model_b": Vote.Outcome.B,
    "tie": Vote.Outcome.TIE,
    "tie (bothbad)": Vote.Outcome.BOTH_BAD,
    "both_bad": Vote.Outcome.BOTH_BAD,
}
LLMFAO_WINNERS = {"left": Vote.Outcome.A, "right": Vote.Outcome.B, "tie": Vote.Outcome.TIE}
OPENWEBUI_RATINGS = {1: Vote.Outcome.A, -1: Vote.Outcome.B, 0: Vote.Outcome.TIE}
HARD_PROMPT_CRITERIA = 6
_VERSIONED = re.compile(r"^(?P<name>.+?)_v\d+(\.\d+)*$")


@dataclass(slots=True)
class Row:
    """One battle with one vote, by model name, as read from a file."""

    model_a: str
    model_b: str
    outcome: str
    voter_label: str = ""
    external_id: str = ""
    created_at: datetime | None = None
    void_reason: str = ""
    reason_tags: list = field(default_factory=list)
    categories: tuple[str, ...] = ()
    turns: list[tuple[int, str, str, str]] = field(default_factory=list)  # index, side, ...


# ---------------------------------------------------------------- field helpers


def model_name(record: dict, key: str) -> str:
    value = record.get(key)
    if value is None:
        raise InvalidRecord(key, "missing")
    if not isinstance(value, str):
        raise InvalidRecord(key, f"expected a model name, got {type(value).__name__}")
    value = value.strip()
    if not value:
        raise InvalidRecord(key, "empty model name")
    if len(value) > MAX_NAME:
        raise InvalidRecord(key, f"model name longer than {MAX_NAME} characters")
    return value


def distinct_sides(a: str, b: str, key: str = "model_b") -> None:
    if a == b:
        raise InvalidRecord(key, f"same model on both sides ({a!r})")


def label(record: dict, key: str, max_length: int) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidRecord(key, f"expected text, got {type(value).__name__}")
    value = str(value).strip()
    if len(value) > max_length:
        raise InvalidRecord(key, f"longer than {max_length} characters")
    return value


def timestamp(record: dict, key: str) -> datetime | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise InvalidRecord(key, f"expected a Unix time in seconds, got {value!r}") from None


def fastchat_categories(tags) -> tuple[str, ...]:
    if tags is None:
        return ()
    if not isinstance(tags, dict):
        raise InvalidRecord("category_tag", "expected an object")
    slugs = []
    for group_name, group in tags.items():
        match = _VERSIONED.match(group_name)
        if not match or not isinstance(group, dict):
            continue
        name = match["name"]
        if name == "criteria":
            if sum(1 for v in group.values() if v is True) >= HARD_PROMPT_CRITERIA:
                slugs.append("hard-prompts")
        elif group.get(name) is True:
            slugs.append(slugify(name.replace("_", "-")))
    return tuple(slugs)


def _content(message: dict, key: str) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return "".join(
            part.get("text") or "" if isinstance(part, dict) else str(part) for part in content
        )
    raise InvalidRecord(key, f"expected text content, got {type(content).__name__}")


def conversation_turns(record: dict) -> list[tuple[int, str, str, str]]:
    """Turns (round, side, prompt, answer) from FastChat ``conversation_a`` / ``conversation_b``."""
    conv_a, conv_b = record.get("conversation_a"), record.get("conversation_b")
    if conv_a is None and conv_b is None:
        return []
    turns = []
    for side, key, conv in (
        (Turn.Side.A, "conversation_a", conv_a),
        (Turn.Side.B, "conversation_b", conv_b),
    ):
        if not isinstance(conv, list):
            raise InvalidRecord(key, "expected a list of messages")
        prompt = None
        index = 0
        for message in conv:
            if not isinstance(message, dict):
                raise InvalidRecord(key, "expected messages with role and content")
            role = message.get("role")
            if role == "user":
                if prompt is not None:
                    turns.append((index, side, prompt, ""))
                    index += 1
                prompt = _content(message, key)
            elif role == "assistant":
                if prompt is None:
                    raise InvalidRecord(
                        key, f"assistant message without a user message (round {index})"
                    )
                turns.append((index, side, prompt, _content(message, key)))
                index += 1
                prompt = None
            elif role != "system":
                raise InvalidRecord(key, f"unknown role {role!r}")
        if prompt is not None:
            turns.append((index, side, prompt, ""))
    return turns


# ---------------------------------------------------------------- readers


def fastchat_rows(record) -> list[Row]:
    if not isinstance(record, dict):
        raise InvalidRecord("record", "expected a JSON object")
    a, b = model_name(record, "model_a"), model_name(record, "model_b")
    distinct_sides(a, b)
    winner = record.get("winner")
    if winner is None:
        raise InvalidRecord("winner", "missing")
    outcome = FASTCHAT_WINNERS.get(winner) if isinstance(winner, str) else None
    if outcome is None:
        raise InvalidRecord(
            "winner", f"unknown winner {winner!r}; expected model_a, model_b, tie or tie (bothbad)"
        )
    anony = record.get("anony", True)
    if not isinstance(anony, bool):
        raise InvalidRecord("anony", "expected true or false")
    return [
        Row(
            model_a=a,
            model_b=b,
            outcome=outcome,
            voter_label=label(record, "judge", MAX_LABEL),
            external_id=label(record, "question_id", MAX_EXTERNAL_ID),
            created_at=timestamp(record, "tstamp"),
            void_reason="" if anony else "not anonymous",
            categories=fastchat_categories(record.get("category_tag")),
            turns=conversation_turns(record),
        )
    ]


def check_columns(fieldnames: list[str] | None, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in (fieldnames or [])]
    if missing:
        raise UnreadableFile(
            1, "header", f"missing column{'s' * (len(missing) > 1)} {', '.join(missing)}"
        )


ARENA_RANK_COLUMNS = ("model_a", "model_b", "winner")


def arena_rank_rows(record: dict) -> list[Row]:
    a, b = model_name(record, "model_a"), model_name(record, "model_b")
    distinct_sides(a, b)
    winner = (record.get("winner") or "").strip()
    outcome = FASTCHAT_WINNERS.get(winner)
    if outcome is None:
        raise InvalidRecord(
            "winner", f"unknown winner {winner!r}; expected model_a, model_b, tie or tie (bothbad)"
        )
    return [
        Row(
            model_a=a,
            model_b=b,
            outcome=outcome,
            voter_label=label(record, "judge", MAX_LABEL),
            external_id=label(record, "question_id", MAX_EXTERNAL_ID)
            or label(record, "id", MAX_EXTERNAL_ID),
            created_at=timestamp(record, "tstamp"),
        )
    ]


LLMFAO_COLUMNS = ("left", "right", "winner")


def llmfao_rows(record: dict) -> list[Row]:
    a, b = model_name(record, "left"), model_name(record, "right")
    distinct_sides(a, b, "right")
    winner = (record.get("winner") or "").strip()
    outcome = LLMFAO_WINNERS.get(winner)
    if outcome is None:
        raise InvalidRecord("winner", f"unknown winner {winner!r}; expected left, right or tie")
    worker = label(record, "worker", MAX_LABEL)
    pair = label(record, "id", MAX_EXTERNAL_ID)
    external_id = f"{pair}:{worker}" if pair and worker else pair
    if len(external_id) > MAX_EXTERNAL_ID:
        raise InvalidRecord("id", f"id and worker longer than {MAX_EXTERNAL_ID} characters")
    return [Row(model_a=a, model_b=b, outcome=outcome, voter_label=worker, external_id=external_id)]


class NotPairwise(Exception):
    """A record that is valid but is not a comparison of two models (passed over, counted)."""


def openwebui_rows(record) -> list[Row]:
    if not isinstance(record, dict):
        raise InvalidRecord("record", "expected a JSON object")
    data = record.get("data")
    if not isinstance(data, dict):
        raise InvalidRecord("data", "missing" if data is None else "expected an object")
    siblings = data.get("sibling_model_ids")
    if not siblings:
        raise NotPairwise()
    if not isinstance(siblings, list):
        raise InvalidRecord("data.sibling_model_ids", "expected a list of model ids")
    try:
        a = model_name(data, "model_id")
    except InvalidRecord as exc:
        raise InvalidRecord(f"data.{exc.field}", exc.problem) from None
    rating = data.get("rating")
    try:
        outcome = OPENWEBUI_RATINGS.get(int(rating)) if not isinstance(rating, bool) else None
    except (TypeError, ValueError):
        outcome = None
    if outcome is None:
        raise InvalidRecord("data.rating", f"unknown rating {rating!r}; expected 1, -1 or 0")
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidRecord("data.tags", "expected a list of strings")
    feedback_id = label(record, "id", MAX_EXTERNAL_ID - 4)
    rows = []
    for k, sibling in enumerate(siblings):
        if not isinstance(sibling, str) or not sibling.strip():
            raise InvalidRecord("data.sibling_model_ids", "empty model name")
        b = sibling.strip()
        distinct_sides(a, b, "data.sibling_model_ids")
        rows.append(
            Row(
                model_a=a,
                model_b=b,
                outcome=outcome,
                voter_label=label(record, "user_id", MAX_LABEL),
                external_id=f"{feedback_id}:{k}" if len(siblings) > 1 else feedback_id,
                created_at=timestamp(record, "created_at"),
                reason_tags=list(tags),
            )
        )
    return rows


# ---------------------------------------------------------------- to rows of the database


class Names:
    """Model names and category slugs to primary keys, creating what is missing."""

    def __init__(self, now: datetime):
        self.now = now
        self.contestants = dict(Contestant.objects.values_list("name", "pk"))
        self.categories = dict(Category.objects.values_list("slug", "pk"))
        self.contestants_created = 0
        self.categories_created = 0
        # Model names as a file spells them (before stripping), already found valid, to pks.
        self.seen: dict[str, int] = {}

    def contestant(self, name: str) -> int:
        pk = self.contestants.get(name)
        if pk is None:
            pk = Contestant.objects.create(
                name=name, kind=Contestant.Kind.RECORDED, active=False, created_at=self.now
            ).pk
            self.contestants[name] = pk
            self.contestants_created += 1
        return pk

    def category(self, slug: str) -> int:
        pk = self.categories.get(slug)
        if pk is None:
            name = slug.replace("-", " ").capitalize()
            pk = Category.objects.create(slug=slug, name=name).pk
            self.categories[slug] = pk
            self.categories_created += 1
        return pk


_IMPORTED = Battle.Mode.IMPORTED.value
_VOTED = Battle.Status.VOTED.value


def pending_battle(row: Row, names: Names, now: datetime) -> PendingBattle:
    created = row.created_at or now
    battle = {
        "contestant_a_id": names.contestant(row.model_a),
        "contestant_b_id": names.contestant(row.model_b),
        "mode": _IMPORTED,
        "status": _VOTED,
        "external_id": row.external_id,
        "created_at": created,
    }
    vote = {
        "outcome": row.outcome,
        "voter_label": row.voter_label,
        "void_reason": row.void_reason,
        "reason_tags": row.reason_tags,
        "created_at": created,
    }
    return PendingBattle(
        battle=battle,
        vote=vote,
        turns=_turn_rows(row.turns, created) if row.turns else [],
        categories=_category_rows(row.categories, names) if row.categories else [],
    )


def _turn_rows(turns: list[tuple[int, str, str, str]], created: datetime) -> list[dict]:
    return [
        {"index": index, "side": side, "prompt": prompt, "text": text, "created_at": created}
        for index, side, prompt, text in turns
    ]


def _category_rows(slugs: tuple[str, ...], names: Names) -> list[dict]:
    return [
        {"category_id": names.category(slug), "assigner": BattleCategory.Assigner.IMPORT}
        for slug in dict.fromkeys(slugs)
    ]


def fastchat_battles(record, names: Names, now: datetime) -> list[PendingBattle]:
    """``pending_battle`` of each of ``fastchat_rows(record)``, the same, at a fraction of the
    cost for the common record: both models already seen in this file, plain types.

    The checks run in ``fastchat_rows``' order; the first value off the common case hands
    the whole record to ``fastchat_rows``, so problems are found and worded in one place.
    """
    if type(record) is not dict:
        return _fastchat_battles(record, names, now)
    get = record.get
    try:
        # Keys of str only: anything else (None, a number, a list) is not found.
        a_pk = names.seen[get("model_a")]
        b_pk = names.seen[get("model_b")]
        outcome = FASTCHAT_WINNERS[get("winner")]
    except (KeyError, TypeError):
        return _fastchat_battles(record, names, now)
    anony = get("anony", True)
    judge = get("judge", "")
    question_id = get("question_id", "")
    tstamp = get("tstamp")
    if (
        a_pk == b_pk
        or (anony is not True and anony is not False)
        or type(judge) is not str
        or type(question_id) is not str
        or (tstamp is not None and type(tstamp) is not float and type(tstamp) is not int)
    ):
        return _fastchat_battles(record, names, now)
    voter_label, external_id = judge.strip(), question_id.strip()
    if len(voter_label) > MAX_LABEL or len(external_id) > MAX_EXTERNAL_ID:
        return _fastchat_battles(record, names, now)
    if tstamp is None:
        created = now
    else:
        try:
            created = datetime.fromtimestamp(tstamp, UTC)
        except (ValueError, OverflowError, OSError):
            return _fastchat_battles(record, names, now)
    tags = get("category_tag")
    slugs = () if tags is None else fastchat_categories(tags)
    if get("conversation_a") is None and get("conversation_b") is None:
        turns = []
    else:
        turns = _turn_rows(conversation_turns(record), created)
    battle = {
        "contestant_a_id": a_pk,
        "contestant_b_id": b_pk,
        "mode": _IMPORTED,
        "status": _VOTED,
        "external_id": external_id,
        "created_at": created,
    }
    vote = {
        "outcome": outcome,
        "voter_label": voter_label,
        "void_reason": "" if anony else "not anonymous",
        "reason_tags": [],
        "created_at": created,
    }
    categories = _category_rows(slugs, names) if slugs else []
    # battle, vote, turns, categories, judgements (positional: a third cheaper)
    return [PendingBattle(battle, vote, turns, categories, [])]


def _fastchat_battles(record, names: Names, now: datetime) -> list[PendingBattle]:
    pending = [pending_battle(row, names, now) for row in fastchat_rows(record)]
    # Valid: remember the file's spelling of both names for the next records.
    names.seen[record["model_a"]] = pending[0].battle["contestant_a_id"]
    names.seen[record["model_b"]] = pending[0].battle["contestant_b_id"]
    return pending
