"""Query results straight into numpy columns, for reads of a million rows.

On PostgreSQL the query's rows are packed by the server into one ``bytea`` value (each column
as a big-endian int64, ``int8send``), which numpy decodes in one call: no Python object per
row or value, and the same one round trip whatever the row count. Other databases go through
the DB-API rows.
"""

import itertools
from collections.abc import Sequence

import numpy as np
import psycopg
from django.db import connection
from django.db.models import QuerySet

INT, DATE = "int", "date"
_PG_EPOCH = np.datetime64("2000-01-01", "D")


def read_columns(queryset: QuerySet, kinds: tuple[str, ...]) -> list[np.ndarray]:
    """One array per column of a ``values_list`` queryset: int64 for ``INT``, datetime64[D]
    for ``DATE`` (a date column, such as ``TruncDate``). NULLs are not allowed."""
    sql, params = queryset.query.sql_with_params()
    if connection.vendor == "postgresql":
        return _postgres(sql, params, kinds)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if any(value is None for row in rows for value in row):
        raise ValueError("a NULL in a column read as numbers")
    if all(kind == INT for kind in kinds):
        flat = np.fromiter(itertools.chain.from_iterable(rows), np.int64, len(rows) * len(kinds))
        table = flat.reshape(len(rows), len(kinds))
        return [table[:, k].copy() for k in range(len(kinds))]
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(kinds)
    return [
        np.array(column, dtype=np.int64 if kind == INT else "datetime64[D]")
        for column, kind in zip(columns, kinds, strict=True)
    ]


def _postgres(sql: str, params: Sequence[object], kinds: tuple[str, ...]) -> list[np.ndarray]:
    names = ", ".join(f"c{k}" for k in range(len(kinds)))
    packed = " || ".join(
        f"int8send((q.c{k} - DATE '2000-01-01')::int8)"
        if kind == DATE
        else f"int8send(q.c{k}::int8)"
        for k, kind in enumerate(kinds)
    )
    wrapped = f"SELECT string_agg({packed}, ''::bytea), count(*) FROM ({sql}) AS q({names})"
    connection.ensure_connection()
    # A plain psycopg cursor (Django's binds client-side) so the bytes come back in binary.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(wrapped, params, binary=True)
        row = cursor.fetchone()
        assert row is not None  # an aggregate without GROUP BY always answers one row
        data, n_rows = row
    values = np.frombuffer(data or b"", dtype=">i8").astype(np.int64)
    if values.size != n_rows * len(kinds):  # string_agg skips a row with a NULL
        raise ValueError("a NULL in a column read as numbers")
    table = values.reshape(n_rows, len(kinds))
    return [
        table[:, k].copy() if kind == INT else _PG_EPOCH + table[:, k].astype("timedelta64[D]")
        for k, kind in enumerate(kinds)
    ]
