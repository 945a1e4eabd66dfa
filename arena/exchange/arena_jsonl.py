"""The arena's own JSON Lines format: a complete, lossless copy of the battle data.

One JSON object per line, each with a ``type``:

``header``       ``{"type": "header", "format": "arena-battles", "version": 1}``, always first.
``contestant``   every field of Contestant (referenced by ``name`` elsewhere).
``category``     every field of Category (referenced by ``slug``).
``judge``        every field of Judge, ``contestant`` by name (referenced by ``name``).
``prompt_set``   every field of PromptSet (referenced by ``name``).
``prompt_item``  ``key`` (1, 2... in export order) and every field, ``prompt_set`` by name,
                 ``category`` by slug (referenced by ``key``).
``answer``       ``key`` and every field, ``item`` by key, ``contestant`` by name.
``battle``       every field of Battle, contestants by name, ``user`` by username, ``prompt_item``
                 and ``answer_a``/``answer_b`` by key; nested ``categories`` (category slug and
                 assigner), ``turns``, ``vote`` (``voter`` by username, or null) and
                 ``judgements`` (``judge`` by name), each with every field of its model except
                 a judgement's ``run`` (the background job that made it: not carried over).

Field values: times in ISO 8601 with their UTC offset, decimals as strings (exact), the rest as
JSON. Records come in the order of their primary keys, so an export imported into an empty
database and exported again gives the same file, byte for byte.

Import into a database that already has data: contestants, categories, judges and prompt sets
with the same name (slug) are reused as they are; a prompt item is reused when its set already
has one with the same non-empty ``external_id``; an answer when one exists for the same item and
contestant. Battles are always added. Users named in the file are matched by username; a missing
user is created with an unusable password (an administrator sets one to let them sign in).
"""

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models

from arena.exchange.bulk import PendingBattle, is_stamp
from arena.exchange.sources import InvalidRecord, UnreadableFile
from arena.models import (
    Answer,
    Battle,
    BattleCategory,
    Category,
    Contestant,
    Judge,
    Judgement,
    PromptItem,
    PromptSet,
    Turn,
    Vote,
)

FORMAT = "arena-battles"
VERSION = 1
HEADER = {"type": "header", "format": FORMAT, "version": VERSION}
CHUNK = 2000

# How each foreign key is written: the kind of reference it is. None: implied by nesting.
REFERENCES = {
    "contestant": "contestant",
    "contestant_a": "contestant",
    "contestant_b": "contestant",
    "category": "category",
    "judge": "judge",
    "prompt_set": "prompt_set",
    "item": "item",
    "prompt_item": "item",
    "answer_a": "answer",
    "answer_b": "answer",
    "user": "user",
    "voter": "user",
    "battle": None,
    "run": None,  # the background job that produced a judgement: operational, not carried over
}


def _reference_kind(f: models.Field) -> str | None:
    try:
        return REFERENCES[f.name]
    except KeyError:
        raise LookupError(
            f"{f.model.__name__}.{f.name}: a foreign key the arena export does not know; "
            "add it to arena.exchange.arena_jsonl.REFERENCES"
        ) from None


def _fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _dump(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------- export


class _Refs:
    """Primary keys to the names that the export uses instead of them."""

    def __init__(self):
        self.by_kind = {
            "contestant": dict(Contestant.objects.values_list("pk", "name")),
            "category": dict(Category.objects.values_list("pk", "slug")),
            "judge": dict(Judge.objects.values_list("pk", "name")),
            "prompt_set": dict(PromptSet.objects.values_list("pk", "name")),
            "item": {},
            "answer": {},
            "user": {},
        }

    def users(self, ids) -> None:
        missing = {i for i in ids if i is not None and i not in self.by_kind["user"]}
        if missing:
            user_model = get_user_model()
            self.by_kind["user"].update(
                user_model.objects.filter(pk__in=missing).values_list(
                    "pk", user_model.USERNAME_FIELD
                )
            )

    def record(self, model, values: dict) -> dict:
        out = {}
        for f in _fields(model):
            if f.is_relation:
                kind = _reference_kind(f)
                if kind is None:
                    continue
                pk = values[f.attname]
                out[f.name] = None if pk is None else self.by_kind[kind][pk]
            else:
                out[f.name] = _dump(values[f.attname])
        return out


def battle_chunks(chunk: int = CHUNK) -> Iterator[list[dict]]:
    """Battles in primary-key order, ``chunk`` at a time, each with its related rows nested.

    Each battle is the dict of its column values plus ``vote`` (dict or None), ``turns``,
    ``categories`` and ``judgements`` (lists of dicts, in primary-key order).
    """
    names = ["id", *(f.attname for f in _fields(Battle))]
    last = 0
    while True:
        battles = list(Battle.objects.filter(pk__gt=last).order_by("pk").values(*names)[:chunk])
        if not battles:
            return
        lo, hi = battles[0]["id"], battles[-1]["id"]
        last = hi
        span = {"battle_id__gte": lo, "battle_id__lte": hi}
        by_id = {}
        for b in battles:
            b.update(vote=None, turns=[], categories=[], judgements=[])
            by_id[b["id"]] = b
        for values in Vote.objects.filter(**span).values(*(f.attname for f in _fields(Vote))):
            by_id[values["battle_id"]]["vote"] = values
        for model, key in (
            (Turn, "turns"),
            (BattleCategory, "categories"),
            (Judgement, "judgements"),
        ):
            rows = (
                model.objects.filter(**span)
                .order_by("pk")
                .values(*(f.attname for f in _fields(model)))
            )
            for values in rows:
                by_id[values["battle_id"]][key].append(values)
        yield battles


def export_records(*, on_battle=None) -> Iterator[dict]:
    """Every record of an export, in order. ``on_battle(n)`` is called after each chunk."""
    refs = _Refs()
    yield HEADER
    for model, kind in (
        (Contestant, "contestant"),
        (Category, "category"),
        (Judge, "judge"),
        (PromptSet, "prompt_set"),
    ):
        names = [f.attname for f in _fields(model)]
        for values in model.objects.order_by("pk").values(*names).iterator(CHUNK):
            yield {"type": kind, **refs.record(model, values)}
    for model, kind in ((PromptItem, "item"), (Answer, "answer")):
        names = ["id", *(f.attname for f in _fields(model))]
        for key, values in enumerate(
            model.objects.order_by("pk").values(*names).iterator(CHUNK), start=1
        ):
            refs.by_kind[kind][values["id"]] = key
            label = "prompt_item" if kind == "item" else kind
            yield {"type": label, "key": key, **refs.record(model, values)}
    for battles in battle_chunks():
        refs.users(
            [b["user_id"] for b in battles] + [b["vote"]["voter_id"] for b in battles if b["vote"]]
        )
        for b in battles:
            record = {"type": "battle", **refs.record(Battle, b)}
            record["categories"] = [refs.record(BattleCategory, c) for c in b["categories"]]
            record["turns"] = [refs.record(Turn, t) for t in b["turns"]]
            record["vote"] = refs.record(Vote, b["vote"]) if b["vote"] else None
            record["judgements"] = [refs.record(Judgement, j) for j in b["judgements"]]
            yield record
        if on_battle:
            on_battle(len(battles))


# ---------------------------------------------------------------- import


def _clean(model, record: dict, where: str, now: datetime, skip=()) -> dict:
    """Validate a record's plain fields with the model fields' own checks; attname -> value."""
    prefix = f"{where}." if where else ""
    known = {f.name for f in _fields(model)} | set(skip)
    for key in record:
        if key not in known:
            raise InvalidRecord(f"{prefix}{key}", "unknown field")
    values = {}
    for f in _fields(model):
        if f.is_relation or f.name in skip:
            continue
        if f.name not in record:
            if is_stamp(f):
                values[f.attname] = now
            continue
        try:
            values[f.attname] = _clean_value(f, record[f.name])
        except ValidationError as exc:
            raise InvalidRecord(f"{prefix}{f.name}", " ".join(exc.messages)) from None
    return values


def _clean_value(f: models.Field, value):
    """The field's own conversion, choices, null and validators (max length, minimum...).

    Not ``blank``: that is a rule for forms, and the database may hold empty text (a model's
    empty answer) that a lossless copy must carry over.
    """
    value = f.to_python(value)
    if value is None:
        if not f.null:
            raise ValidationError("This field cannot be null.")
        return None
    if f.choices and value not in {k for k, _ in f.flatchoices}:
        raise ValidationError(f"{value!r} is not a valid choice.")
    f.run_validators(value)
    return value


class ArenaReader:
    """Turns the records of an arena export into database rows and pending battles."""

    def __init__(self, now: datetime):
        self.now = now
        self.started = False
        self.maps = {
            "contestant": dict(Contestant.objects.values_list("name", "pk")),
            "category": dict(Category.objects.values_list("slug", "pk")),
            "judge": dict(Judge.objects.values_list("name", "pk")),
            "prompt_set": dict(PromptSet.objects.values_list("name", "pk")),
            "item": {},
            "answer": {},
            "user": {},
        }
        self.created: defaultdict[str, int] = defaultdict(int)

    # -- references

    def _ref(self, record: dict, name: str, where: str = "", *, required: bool = False):
        key = f"{where}.{name}" if where else name
        value = record.get(name)
        if value is None:
            if required:
                raise InvalidRecord(key, "missing")
            return None
        kind = REFERENCES[name]
        if kind == "user":
            return self._user(value, key)
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise InvalidRecord(key, f"expected a {kind} reference")
        pk = self.maps[kind].get(value)
        if pk is None:
            raise InvalidRecord(key, f"unknown {kind.replace('_', ' ')} {value!r}")
        return pk

    def _user(self, username, key: str) -> int:
        if not isinstance(username, str) or not username:
            raise InvalidRecord(key, "expected a username")
        pk = self.maps["user"].get(username)
        if pk is None:
            user_model = get_user_model()
            user = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
            if user is None:
                user = user_model(**{user_model.USERNAME_FIELD: username})
                user.set_unusable_password()
                user.save()
                self.created["users"] += 1
            pk = self.maps["user"][username] = user.pk
        return pk

    def _refs(self, model, record: dict, where: str = "") -> dict:
        values = {}
        for f in _fields(model):
            if f.is_relation and _reference_kind(f) is not None:
                values[f.attname] = self._ref(record, f.name, where, required=not f.null)
        return values

    # -- records

    def rows(self, record) -> list[PendingBattle]:
        if not isinstance(record, dict):
            raise InvalidRecord("record", "expected a JSON object")
        kind = record.get("type")
        if not self.started:
            if kind != "header" or record.get("format") != FORMAT:
                raise UnreadableFile(
                    1, "type", f"not an arena export: the first line must be {dumps(HEADER)}"
                )
            if record.get("version") != VERSION:
                raise UnreadableFile(
                    1, "version", f"unsupported version {record.get('version')!r}; expected 1"
                )
            self.started = True
            return []
        body = {k: v for k, v in record.items() if k != "type"}
        if kind == "battle":
            return [self._battle(body)]
        handler = {
            "contestant": self._contestant,
            "category": self._category,
            "judge": self._judge,
            "prompt_set": self._prompt_set,
            "prompt_item": self._prompt_item,
            "answer": self._answer,
        }.get(kind)
        if handler is None:
            raise InvalidRecord("type", f"unknown record type {kind!r}")
        handler(body)
        return []

    def _named(self, model, kind: str, key: str, body: dict) -> None:
        values = _clean(model, body, "", self.now)
        name = values.get(key)
        if not name:
            raise InvalidRecord(key, "missing")
        if name in self.maps[kind]:
            return
        refs = self._refs(model, body)
        obj = model(**values, **refs)
        obj.save()
        self.maps[kind][name] = obj.pk
        self.created[kind] += 1

    def _contestant(self, body: dict) -> None:
        self._named(Contestant, "contestant", "name", body)

    def _category(self, body: dict) -> None:
        self._named(Category, "category", "slug", body)

    def _judge(self, body: dict) -> None:
        self._named(Judge, "judge", "name", body)

    def _prompt_set(self, body: dict) -> None:
        self._named(PromptSet, "prompt_set", "name", body)

    def _key(self, body: dict, kind: str):
        key = body.get("key")
        if not isinstance(key, int) or isinstance(key, bool):
            raise InvalidRecord("key", "expected an integer key")
        if key in self.maps[kind]:
            raise InvalidRecord("key", f"duplicate key {key}")
        return key

    def _prompt_item(self, body: dict) -> None:
        key = self._key(body, "item")
        values = _clean(PromptItem, body, "", self.now, skip=("key",))
        refs = self._refs(PromptItem, body)
        existing = None
        if values.get("external_id"):
            existing = (
                PromptItem.objects.filter(
                    prompt_set_id=refs["prompt_set_id"], external_id=values["external_id"]
                )
                .values_list("pk", flat=True)
                .first()
            )
        if existing is None:
            existing = PromptItem.objects.create(**values, **refs).pk
            self.created["prompt_item"] += 1
        self.maps["item"][key] = existing

    def _answer(self, body: dict) -> None:
        key = self._key(body, "answer")
        values = _clean(Answer, body, "", self.now, skip=("key",))
        refs = self._refs(Answer, body)
        existing = (
            Answer.objects.filter(item_id=refs["item_id"], contestant_id=refs["contestant_id"])
            .values_list("pk", flat=True)
            .first()
        )
        if existing is None:
            existing = Answer.objects.create(**values, **refs).pk
            self.created["answer"] += 1
        self.maps["answer"][key] = existing

    def _battle(self, body: dict) -> PendingBattle:
        nested = ("categories", "turns", "vote", "judgements")
        battle = _clean(Battle, body, "", self.now, skip=nested)
        battle.update(self._refs(Battle, body))
        if battle["contestant_a_id"] == battle["contestant_b_id"]:
            raise InvalidRecord("contestant_b", "same model on both sides")
        pending = PendingBattle(battle=battle)

        seen = set()
        for i, item in enumerate(self._list(body, "categories")):
            where = f"categories[{i}]"
            values = _clean(BattleCategory, item, where, self.now)
            values.update(self._refs(BattleCategory, item, where))
            if values["category_id"] in seen:
                raise InvalidRecord(f"{where}.category", "listed twice")
            seen.add(values["category_id"])
            pending.categories.append(values)

        seen = set()
        for i, item in enumerate(self._list(body, "turns")):
            where = f"turns[{i}]"
            values = _clean(Turn, item, where, self.now)
            slot = (values.get("index"), values.get("side"), values.get("attempt", 0))
            if slot in seen:
                raise InvalidRecord(where, f"two turns for round {slot[0]}, side {slot[1]}")
            seen.add(slot)
            pending.turns.append(values)

        vote = body.get("vote")
        if vote is not None:
            if not isinstance(vote, dict):
                raise InvalidRecord("vote", "expected an object or null")
            values = _clean(Vote, vote, "vote", self.now)
            values.update(self._refs(Vote, vote, "vote"))
            pending.vote = values

        seen = set()
        for i, item in enumerate(self._list(body, "judgements")):
            where = f"judgements[{i}]"
            values = _clean(Judgement, item, where, self.now)
            values.update(self._refs(Judgement, item, where))
            slot = (values["judge_id"], values.get("order", Judgement.Order.AB))
            if slot in seen:
                raise InvalidRecord(where, f"two judgements by one judge in order {slot[1]}")
            seen.add(slot)
            pending.judgements.append(values)
        return pending

    @staticmethod
    def _list(body: dict, key: str) -> list:
        value = body.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise InvalidRecord(key, "expected a list of objects")
        return value
