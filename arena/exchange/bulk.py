"""Bulk insertion of battles with their votes, turns, categories and judgements.

Rows are plain dicts of attribute names (``contestant_a_id``, ``outcome``...) to Python values,
completed with each field's default exactly as ``Model()`` would, and converted for the driver
as Django's own insert would (``get_db_prep_save``). Battle ids are drawn first so that the
children can point at their battle: on PostgreSQL from the table's sequence, then one ``COPY``
per table and batch; on SQLite after the highest id (the import's transaction holds the write
lock), then one ``executemany`` INSERT per table and batch; elsewhere ``bulk_create``.
``created_at`` is always set explicitly (from the file, else the import's start time), so every
path stores the same rows. ``deferred_indexes`` makes a first load on PostgreSQL build indexes
and check foreign keys once at the end instead of row by row.
"""

import json
import queue
import re
import sys
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from operator import attrgetter, itemgetter

from django.db import (
    DEFAULT_DB_ALIAS,
    OperationalError,
    connection,
    connections,
    models,
    transaction,
)
from django.utils import timezone

from arena.battles.counts import counts_add
from arena.models import Battle, BattleCategory, Judgement, Turn, Vote

GIL_SWITCH_INTERVAL = 0.001  # seconds, while the COPY threads run (see BattleWriter)

# Fields whose Python value the database driver takes as Django would send it, per vendor;
# the others go through the field's own get_db_prep_save().
_PLAIN = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.FloatField,
    models.BooleanField,
    models.ForeignKey,
)
_PLAIN_BY_VENDOR = {"postgresql": (*_PLAIN, models.DateTimeField), "sqlite": _PLAIN}


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


@contextmanager
def deferred_indexes(*model_classes):
    """PostgreSQL, into empty tables: load without secondary indexes and foreign keys.

    Keeping ten indexes and eight foreign-key checks per battle up to date row by row costs the
    server about ten times more than building them once at the end, as ``pg_restore`` does.
    When the tables are empty (a first import), they are locked for the transaction, their
    non-unique indexes and foreign keys are dropped, and at the end of the block re-created
    from the definitions the catalogue gave (same names, same SQL), which also checks every
    foreign key. Everything is in the import's transaction: on error the rollback restores the
    schema too. Yields whether it did so; elsewhere (other databases, tables with rows, which
    would be re-indexed whole) it does nothing.
    """
    tables = [m._meta.db_table for m in model_classes]
    if connection.vendor != "postgresql" or model_classes[0].objects.exists():
        yield False
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {', '.join(map(quote, tables))} IN ACCESS EXCLUSIVE MODE")
        empty = not any(m.objects.exists() for m in model_classes)
        indexes, foreign_keys = [], []
        if empty:
            for table in tables:
                cursor.execute(
                    """
                    SELECT c.relname, pg_get_indexdef(i.indexrelid)
                    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                    WHERE i.indrelid = %s::regclass AND NOT i.indisunique
                      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)
                    ORDER BY c.relname
                    """,
                    [table],
                )
                indexes += cursor.fetchall()
                cursor.execute(
                    """
                    SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
                    WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname
                    """,
                    [table],
                )
                foreign_keys += [(table, name, sql) for name, sql in cursor.fetchall()]
            try:
                with transaction.atomic():
                    for table, name, _ in foreign_keys:
                        cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
                    for name, _ in indexes:
                        cursor.execute(f"DROP INDEX {quote(name)}")
            except OperationalError:
                # "pending trigger events": the enclosing transaction already wrote to these
                # tables (deferred checks queued); load row by row instead.
                empty = False
    yield empty
    if empty:
        with connection.cursor() as cursor:
            # Sort in memory (the default 64 MB spills a million-row index to disk); this
            # transaction only.
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for _, sql in indexes:
                cursor.execute(sql)
            for table, name, sql in foreign_keys:
                cursor.execute(f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {sql}")


def analyze(*model_classes) -> None:
    """PostgreSQL: refresh the planner's statistics of tables a bulk load just filled.

    Until autovacuum gets to them, the planner would keep planning for the old, smaller
    tables (nested loops over thousands of rows). Runs inside the transaction; it counts the
    transaction's own new rows. Other databases: no-op.
    """
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        tables = ", ".join(quote(m._meta.db_table) for m in model_classes)
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {tables}")


@contextmanager
def larger_page_cache(mib: int = 64):
    """SQLite: a bigger page cache for the import's connection, restored afterwards.

    With the default 2 MiB, index updates go to the file once the indexes outgrow the cache,
    which large imports soon do. Other databases: no-op.
    """
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        before = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA cache_size = {-1024 * int(mib)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(before)}")


class _Memo:
    """Converts each object once per batch: a battle and its vote share one time object.

    Keyed by ``key`` (a kind of conversion, by default the function) and the object's
    ``id()``; the converted lists are held until ``clear()`` (after each batch), so no id is
    reused meanwhile.
    """

    def __init__(self):
        self._texts: dict[object, dict[int, object]] = {}
        self._held: list[list] = []

    def map(self, function, values: list, key=None) -> list:
        memo = self._texts.setdefault(function if key is None else key, {})
        keys = list(map(id, values))
        texts = list(map(memo.get, keys))
        if None not in texts:
            return texts
        if texts.count(None) == len(texts):
            texts = list(map(function, values))
        else:
            texts = [function(v) if t is None else t for v, t in zip(values, texts, strict=True)]
        memo.update(zip(keys, texts, strict=True))
        self._held.append(values)
        return texts

    def clear(self) -> None:
        self._texts.clear()
        self._held.clear()


class _Table:
    """One model's columns and defaults, and its rows as the database driver takes them."""

    def __init__(self, model: type[models.Model], now: datetime, conn, memo: _Memo):
        self.model = model
        self.connection = conn
        self.fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        self.defaults = {}
        self.callable_defaults = []
        for f in self.fields:
            if is_stamp(f):
                self.defaults[f.attname] = now
            elif f.has_default() and callable(f.default):
                self.callable_defaults.append(f)
            else:
                self.defaults[f.attname] = f.get_default()
        plain = _PLAIN_BY_VENDOR.get(conn.vendor, ())
        # Per column: attname, default, the field if its default is callable, and what turns a
        # whole column of values into what the driver takes (None: the values as they are).
        self.column_specs = []
        for f in self.fields:
            if isinstance(f, models.JSONField) and f.encoder is None:
                # What Django sends for a JSONField, without building an adapter per row.
                prepare = partial(_map, _json_dumps)
            elif conn.vendor == "sqlite" and isinstance(f, models.DateTimeField):
                # The same for every such field (the slow path differs only in its warnings).
                prepare = partial(memo.map, _sqlite_datetime(f, conn), key=models.DateTimeField)
            elif not isinstance(f, plain):
                prepare = partial(_map, partial(f.get_db_prep_save, connection=conn))
            else:
                prepare = None
            callable_default = f if f in self.callable_defaults else None
            self.column_specs.append(
                (f.attname, self.defaults.get(f.attname), callable_default, prepare)
            )

    def complete(self, values: dict) -> dict:
        """The values a ``Model(**values)`` would have: given ones over the defaults."""
        row = dict(self.defaults)
        for f in self.callable_defaults:
            row[f.attname] = f.get_default()
        row.update(values)
        return row

    def db_columns(self, rows: list[dict]) -> list[list]:
        """The values of ``rows`` (dicts of attnames to values), column by column in field
        order without the pk: given ones over the defaults, as Django would send them to the
        database driver. Built a whole column at a time, which costs far less than row by row.
        """
        given = set().union(*rows)
        columns = []
        for name, default, callable_field, prepare in self.column_specs:
            if name not in given:
                if callable_field is None:
                    values = [default] * len(rows)
                else:
                    values = [callable_field.get_default() for _ in rows]
            else:
                try:
                    values = list(map(itemgetter(name), rows))
                except KeyError:  # given in some rows only
                    if callable_field is None:
                        values = [r.get(name, default) for r in rows]
                    else:
                        get_default = callable_field.get_default
                        values = [r[name] if name in r else get_default() for r in rows]
            columns.append(values if prepare is None else prepare(values))
        return columns

    def column_list(self, with_id: bool) -> str:
        quote = self.connection.ops.quote_name
        columns = ([quote("id")] if with_id else []) + [quote(f.column) for f in self.fields]
        return ", ".join(columns)


def _sqlite_datetime(f: models.DateTimeField, conn):
    """What Django sends SQLite for a datetime, without the field's cost in the common case.

    Django makes an aware value naive in the connection's time zone and sends ``str()`` of
    it; a value already in that zone (``tzinfo is`` the connection's) only loses its
    ``tzinfo``. Anything else goes through the field.
    """
    tz = conn.timezone
    slow = partial(f.get_db_prep_save, connection=conn)

    def prep(value):
        if value is None:
            return None
        if type(value) is datetime and value.tzinfo is tz:
            return str(value.replace(tzinfo=None))
        return slow(value)

    return prep


def _map(function, values: list) -> list:
    return list(map(function, values))


# COPY text format: what must be escaped (and NUL, which text columns cannot hold).
_COPY_SPECIAL = re.compile(r"[\x00\b\t\n\v\f\r\\]")
_COPY_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r"}
)
_NULL = "\\N"


class _CopyText:
    """Rows as PostgreSQL's ``COPY ... FROM STDIN`` text format, one batch at a time.

    Each value is written as psycopg's ``write_row`` would (its text dumper, then COPY
    escapes), but whole columns are converted at once: a column of one type (ids, names,
    times) takes one fast pass; a column that mixes types goes value by value.
    """

    def __init__(self, raw_connection, memo: _Memo):
        from psycopg.adapt import PyFormat, Transformer

        self._transformer = Transformer(raw_connection)
        self._format = PyFormat.TEXT
        self._memo = memo

    def rows(self, columns: list[list]) -> str:
        """The rows (tab-separated, one per line) of ``columns``, lists of equal length."""
        texts = [self._column(values) for values in columns]
        return "\n".join(map("\t".join, zip(*texts, strict=True))) + "\n"

    def _column(self, values: list) -> list[str]:
        kinds = set(map(type, values))
        if len(kinds) == 1:
            kind = kinds.pop()
            if kind is int:
                return list(map(int.__repr__, values))
            if issubclass(kind, str) and not _COPY_SPECIAL.search("".join(values)):
                return values
            if kind is type(None):
                return [_NULL] * len(values)
            if kind is datetime:
                # What psycopg's dumper sends, str(value), with a "T" for the space: a
                # little cheaper, and the same to PostgreSQL.
                return self._memo.map(datetime.isoformat, values, key=datetime)
        return [self._text(value) for value in values]

    def _text(self, value) -> str:
        if value is None:
            return _NULL
        data = self._transformer.get_dumper(value, self._format).dump(value)
        return bytes(data).decode().translate(_COPY_ESCAPES)


def _json_dumps(value) -> str:
    return "[]" if value == [] else json.dumps(value)


@dataclass(slots=True)
class PendingBattle:
    """A battle waiting to be written, with what hangs on it (no ids yet)."""

    battle: dict
    vote: dict | None = None
    turns: list[dict] = field(default_factory=list)
    categories: list[dict] = field(default_factory=list)
    judgements: list[dict] = field(default_factory=list)


class BattleWriter:
    """Collects pending battles and writes them in batches; use it as a context manager.

    Must run inside the import's transaction (on SQLite that transaction holds the write lock,
    which makes drawing ids from the table safe), and, for the ORM path, inside
    ``explicit_timestamps``.

    - PostgreSQL: ids drawn from the battle table's sequence (a few batches ahead), then
      ``COPY`` per table. A worker thread turns batches into COPY text and another one sends
      it, on the same connection (psycopg connections are thread-safe), so the server's work
      overlaps with reading and formatting the next batches. Meanwhile the interpreter hands
      the GIL over every millisecond instead of every five (``sys.setswitchinterval``,
      process-wide, restored at the end): the sender, back from waiting on the server,
      would otherwise wait up to 5 ms behind the busy threads each time, and the server
      would sit idle.
    - SQLite: ids drawn after the table's highest (and its AUTOINCREMENT counter), then one
      ``executemany`` INSERT per table.
    - Other databases: ``bulk_create``.

    Leaving the block normally writes what is left and re-raises a worker's error; leaving it
    by an exception stops the worker and lets the transaction roll everything back.
    ``analyze=False``: no fresh statistics before the counts (a request's few thousand rows).
    """

    def __init__(self, *, batch_size: int = 5000, now: datetime | None = None, analyze=True):
        self.batch_size = batch_size
        self.analyze = analyze
        self.now = now or timezone.now()
        self.connection = connections[DEFAULT_DB_ALIAS]  # this thread's wrapper
        self.path = {"postgresql": "copy", "sqlite": "executemany"}.get(
            self.connection.vendor, "orm"
        )
        self._memo = _Memo()
        self.tables = {
            m: _Table(m, self.now, self.connection, self._memo)
            for m in (Battle, Vote, Turn, BattleCategory, Judgement)
        }
        self.counts: Counter[str] = Counter()
        self._pending: list[PendingBattle] = []
        self._written: list[list[int]] = []  # battle ids per batch, for the vote counts
        self.battle_ids: list[int] = []  # of the battles written, in the order given
        self._first_votes = not Vote.objects.exists()  # then count the whole table at once
        self._next_id: int | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        if self.path == "copy":
            with self.connection.cursor() as cursor:
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Battle._meta.db_table])
                self._sequence = cursor.fetchone()[0]
            self._raw = self.connection.connection  # psycopg's, shared with the worker
            self._copy_text = _CopyText(self._raw, self._memo)
            self._ids: list[int] = []  # drawn ahead
            self._queue: queue.Queue = queue.Queue(maxsize=1)
            self._copies: queue.Queue = queue.Queue(maxsize=4)  # (table, columns, text)
            self._thread = threading.Thread(target=self._work, name="import-rows", daemon=True)
            self._sender = threading.Thread(target=self._send, name="import-copy", daemon=True)
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(GIL_SWITCH_INTERVAL)
            self._thread.start()
            self._sender.start()

    def __enter__(self) -> "BattleWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
                self._thread = None
                self._copies.put(None)
                self._sender.join()
                sys.setswitchinterval(self._switch_interval)
        if exc_type is None and self._error is not None:
            raise self._error
        if exc_type is None:
            # Once every row is in (COPY runs in the sender thread). Into a table without votes
            # one aggregate upsert of all of it; otherwise one per batch, with fresh statistics.
            if self._written and self._first_votes:
                counts_add()
            elif self._written:
                if self.analyze:
                    analyze(Battle, Vote, BattleCategory)  # else nested loops over the new rows
                for ids in self._written:
                    counts_add(battle_ids=ids)
            self._written = []

    def add(self, pending: PendingBattle) -> None:
        self._pending.append(pending)
        if len(self._pending) >= self.batch_size:
            self.flush()

    def extend(self, pending: list[PendingBattle]) -> None:
        self._pending.extend(pending)
        if len(self._pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        if self._thread is None:
            self._write_batch(batch)
            return
        if self._error is not None:
            raise self._error
        self._queue.put(batch)

    def _work(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write_batch(batch)
                except BaseException as exc:  # re-raised in the calling thread
                    self._error = exc

    def _send(self) -> None:
        while (job := self._copies.get()) is not None:
            if self._error is None:
                name, columns, data = job
                try:
                    with (
                        self._raw.cursor() as cursor,
                        cursor.copy(f"COPY {name} ({columns}) FROM STDIN") as copy,
                    ):
                        copy.write(data)
                except BaseException as exc:  # re-raised in the calling thread
                    self._error = exc

    def _write_batch(self, batch: list[PendingBattle]) -> None:
        try:
            self._write_tables(batch)
        finally:
            self._memo.clear()

    def _write_tables(self, batch: list[PendingBattle]) -> None:
        if self.path == "orm":
            objs = Battle.objects.bulk_create(
                [Battle(**self.tables[Battle].complete(p.battle)) for p in batch]
            )
            ids = [obj.pk for obj in objs]
        else:
            ids = self._next_ids(len(batch))
            self._write(Battle, [p.battle for p in batch], ids)
        children = {Vote: [], Turn: [], BattleCategory: [], Judgement: []}
        for model, of in (
            (Turn, attrgetter("turns")),
            (BattleCategory, attrgetter("categories")),
            (Judgement, attrgetter("judgements")),
        ):
            lists = list(map(of, batch))
            if any(lists):
                for battle_id, rows in zip(ids, lists, strict=True):
                    for values in rows:
                        values["battle_id"] = battle_id
                    children[model].extend(rows)
        votes = [p.vote for p in batch]
        for battle_id, vote in zip(ids, votes, strict=True):
            if vote is not None:
                vote["battle_id"] = battle_id
        children[Vote] = [v for v in votes if v is not None] if None in votes else votes
        self.counts["battles"] += len(batch)
        self.battle_ids += ids
        if any(v is not None for v in votes):
            self._written.append(ids)
        for model, rows in children.items():
            if rows:
                if self.path == "orm":
                    table = self.tables[model]
                    model.objects.bulk_create([model(**table.complete(r)) for r in rows])
                else:
                    self._write(model, rows)
                self.counts[model._meta.model_name] += len(rows)

    def _next_ids(self, n: int) -> list[int]:
        if self.path == "copy":
            if len(self._ids) < n:
                self._ids += self._draw_ids(n if self.counts["battles"] == 0 else 4 * n)
            ids, self._ids = self._ids[:n], self._ids[n:]
            return ids
        if self._next_id is None:
            table = self.connection.ops.quote_name(Battle._meta.db_table)
            with self.connection.cursor() as cursor:
                cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
                highest = cursor.fetchone()[0]
                cursor.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = %s", [Battle._meta.db_table]
                )
                row = cursor.fetchone()
            self._next_id = max(highest, row[0] if row else 0) + 1
        first, self._next_id = self._next_id, self._next_id + n
        return list(range(first, first + n))

    def _draw_ids(self, n: int) -> list[int]:
        with self._raw.cursor() as cursor:
            # One text value rather than n rows: far less to decode.
            cursor.execute(
                "SELECT string_agg(nextval(%s)::text, ',') FROM generate_series(1, %s)",
                [self._sequence, n],
            )
            return list(map(int, cursor.fetchone()[0].split(",")))

    def _write(self, model, rows: list[dict], ids: list[int] | None = None) -> None:
        table = self.tables[model]
        name = self.connection.ops.quote_name(model._meta.db_table)
        columns = table.column_list(ids is not None)
        values = table.db_columns(rows)
        if ids is not None:
            values.insert(0, ids)
        if self.path == "copy":
            # One text buffer per table and batch, built a column at a time: a fraction of the
            # cost of psycopg's write_row() per row. Sent by the sender thread.
            self._copies.put((name, columns, self._copy_text.rows(values)))
            return
        marks = ", ".join(["%s"] * len(values))
        with self.connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {name} ({columns}) VALUES ({marks})", list(zip(*values, strict=True))
            )
