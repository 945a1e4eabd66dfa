"""Bulk insertion of battles with their votes, turns, categories and judgements.

Rows are plain dicts of attribute names (``contestant_a_id``, ``outcome``...) to Python values,
completed with each field's default exactly as ``Model()`` would. On PostgreSQL they go in with
``COPY`` (ids drawn from the table's sequence first, so children can point at their battle); on
other databases with ``bulk_create``. Both give the same rows; ``created_at`` is always set
explicitly (from the file, else the import's start time), so both backends agree on it too.
"""

from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, models
from django.utils import timezone

from arena.models import Battle, BattleCategory, Judgement, Turn, Vote

# Fields whose Python value psycopg adapts as Django would, so COPY can take them as they are.
_AS_IS = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.BigIntegerField,
    models.PositiveIntegerField,
    models.FloatField,
    models.BooleanField,
    models.DateTimeField,
    models.ForeignKey,
    models.OneToOneField,
)


@contextmanager
def explicit_timestamps(*model_classes):
    """Let ``created_at`` values given by an import survive ``save()`` and ``bulk_create()``.

    ``auto_now_add`` overwrites any given value on insert. An import keeps the file's times,
    so the flag is lifted for the duration of the block. The flag is process-wide: use this only
    in a management command or a test, never in a web process serving other requests.
    """
    fields = [
        f
        for model in model_classes
        for f in model._meta.concrete_fields
        if getattr(f, "auto_now_add", False)
    ]
    for f in fields:
        f.auto_now_add = False
    try:
        yield
    finally:
        for f in fields:
            f.auto_now_add = True


def is_stamp(f: models.Field) -> bool:
    """A required time with no default (``auto_now_add``, even while lifted): defaults to now."""
    return isinstance(f, models.DateTimeField) and not f.null and not f.has_default()


class _Table:
    """One model's columns, defaults and COPY statement."""

    def __init__(self, model: type[models.Model], now: datetime):
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        self.attnames = [f.attname for f in self.fields]
        self.defaults = {}
        self.callable_defaults = []
        for f in self.fields:
            if is_stamp(f):
                self.defaults[f.attname] = now
            elif f.has_default() and callable(f.default):
                self.callable_defaults.append(f)
            else:
                self.defaults[f.attname] = f.get_default()
        self.prepared = [(i, f) for i, f in enumerate(self.fields) if not isinstance(f, _AS_IS)]

    def complete(self, values: dict) -> dict:
        row = dict(self.defaults)
        for f in self.callable_defaults:
            row[f.attname] = f.get_default()
        row.update(values)
        return row

    def copy_row(self, values: dict) -> list:
        row = [values[name] for name in self.attnames]
        for i, f in self.prepared:
            row[i] = f.get_db_prep_save(row[i], connection)
        return row

    def copy_sql(self, with_id: bool) -> str:
        quote = connection.ops.quote_name
        columns = ([quote("id")] if with_id else []) + [quote(f.column) for f in self.fields]
        return f"COPY {quote(self.model._meta.db_table)} ({', '.join(columns)}) FROM STDIN"


@dataclass(slots=True)
class PendingBattle:
    """A battle waiting to be written, with what hangs on it (no ids yet)."""

    battle: dict
    vote: dict | None = None
    turns: list[dict] = field(default_factory=list)
    categories: list[dict] = field(default_factory=list)
    judgements: list[dict] = field(default_factory=list)


class BattleWriter:
    """Collects pending battles and writes them in batches. Call ``flush()`` at the end.

    Must run inside a transaction (the import's); on SQLite, inside ``explicit_timestamps``.
    """

    def __init__(self, *, batch_size: int = 5000, now: datetime | None = None):
        self.batch_size = batch_size
        self.now = now or timezone.now()
        self.use_copy = connection.vendor == "postgresql"
        self.tables = {
            m: _Table(m, self.now) for m in (Battle, Vote, Turn, BattleCategory, Judgement)
        }
        self.counts: Counter[str] = Counter()
        self._pending: list[PendingBattle] = []
        self._sequence: str | None = None

    def add(self, pending: PendingBattle) -> None:
        self._pending.append(pending)
        if len(self._pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        battles = [self.tables[Battle].complete(p.battle) for p in batch]
        if self.use_copy:
            ids = self._next_ids(len(battles))
            self._copy(Battle, battles, ids)
        else:
            objs = Battle.objects.bulk_create([Battle(**b) for b in battles])
            ids = [obj.pk for obj in objs]
        children = {Vote: [], Turn: [], BattleCategory: [], Judgement: []}
        for battle_id, p in zip(ids, batch, strict=True):
            if p.vote is not None:
                children[Vote].append({**p.vote, "battle_id": battle_id})
            for name, model in (
                ("turns", Turn),
                ("categories", BattleCategory),
                ("judgements", Judgement),
            ):
                for values in getattr(p, name):
                    children[model].append({**values, "battle_id": battle_id})
        self.counts["battles"] += len(battles)
        for model, rows in children.items():
            if not rows:
                continue
            table = self.tables[model]
            rows = [table.complete(r) for r in rows]
            if self.use_copy:
                self._copy(model, rows)
            else:
                model.objects.bulk_create([model(**r) for r in rows])
            self.counts[model._meta.model_name] += len(rows)

    def _next_ids(self, n: int) -> list[int]:
        with connection.cursor() as cursor:
            if self._sequence is None:
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Battle._meta.db_table])
                self._sequence = cursor.fetchone()[0]
            cursor.execute("SELECT nextval(%s) FROM generate_series(1, %s)", [self._sequence, n])
            return [row[0] for row in cursor.fetchall()]

    def _copy(self, model, rows: list[dict], ids: list[int] | None = None) -> None:
        table = self.tables[model]
        with connection.cursor() as cursor, cursor.copy(table.copy_sql(ids is not None)) as copy:
            if ids is None:
                for values in rows:
                    copy.write_row(table.copy_row(values))
            else:
                for pk, values in zip(ids, rows, strict=True):
                    copy.write_row([pk, *table.copy_row(values)])
