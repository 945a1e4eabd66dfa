"""Streaming readers: JSON arrays, JSON Lines and CSV, one record at a time, with line numbers.

Memory stays bounded by the largest single record, never by the file. A JSON array is parsed
with the standard library's scanner (``json.JSONDecoder.raw_decode``) over a sliding buffer,
which also gives the line each record starts on, so errors can name it.
"""

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

CHUNK_CHARS = 1 << 20


MAX_PROBLEMS_KEPT = 1000  # problems listed in an import's report; the count stays exact


class InvalidRecord(Exception):
    """One record is wrong; the rest of the file can still be read."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class UnreadableFile(Exception):
    """The file cannot be read any further (syntax error in a JSON array, bad header...)."""

    def __init__(self, line: int, field: str, problem: str):
        super().__init__(f"line {line}: {field}: {problem}")
        self.line = line
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Problem:
    """Why one record of a file was not imported: ``file:line: field: problem``."""

    file: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.problem}"


class _CountingReader(io.RawIOBase):
    """A binary file that moves a progress bar by the bytes read."""

    def __init__(self, raw, bar: tqdm):
        self._raw = raw
        self._bar = bar

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._raw.readinto(buffer)
        if n:
            self._bar.update(n)
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


class open_text:
    """Open ``path`` as UTF-8 text (BOM tolerated) with a byte progress bar on stderr."""

    def __init__(self, path: Path, *, progress: bool, newline: str | None = None):
        self.path = Path(path)
        self.progress = progress
        self.newline = newline

    def __enter__(self) -> io.TextIOWrapper:
        size = os.path.getsize(self.path)
        self._bar = tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            desc=self.path.name,
            disable=None if self.progress else True,
            leave=False,
        )
        raw = _CountingReader(open(self.path, "rb"), self._bar)  # noqa: SIM115
        self._text = io.TextIOWrapper(
            io.BufferedReader(raw, CHUNK_CHARS), encoding="utf-8-sig", newline=self.newline
        )
        return self._text

    def __exit__(self, *exc) -> None:
        self._text.close()
        self._bar.close()


# A value that ends this close to the end of the buffer may go on in the next chunk.
_MARGIN = 16


def _is_incomplete(error: json.JSONDecodeError, buffer_len: int) -> bool:
    """Could more input fix this error? (The record runs past the end of the buffer.)"""
    return error.pos >= buffer_len - _MARGIN or error.msg.startswith("Unterminated string")


def iter_json_records(stream: io.TextIOBase) -> Iterator[tuple[int, object]]:
    """Yield ``(line, value)`` for each element of a JSON array, or each line of JSON Lines.

    The first character decides: ``[`` starts an array, anything else is read as JSON Lines.
    In JSON Lines a bad line yields ``(line, InvalidRecord)`` and reading goes on; in an array a
    syntax error raises UnreadableFile, since the next record cannot be found reliably.
    """
    first = stream.read(CHUNK_CHARS)
    start = len(first) - len(first.lstrip())
    if first[start : start + 1] == "[":
        yield from _iter_array(stream, first)
    else:
        yield from _iter_lines(stream, first)


def _iter_lines(stream: io.TextIOBase, first: str) -> Iterator[tuple[int, object]]:
    rest = io.StringIO(first)
    line_no = 0
    pending = ""
    while True:
        for raw in rest:
            if not raw.endswith("\n"):
                pending = raw
                break
            line_no += 1
            text = pending + raw
            pending = ""
            yield from _decode_line(line_no, text)
        chunk = stream.read(CHUNK_CHARS)
        if not chunk:
            break
        rest = io.StringIO(pending + chunk)
        pending = ""
    if pending:
        yield from _decode_line(line_no + 1, pending)


def _decode_line(line_no: int, text: str) -> Iterator[tuple[int, object]]:
    text = text.rstrip("\r\n")
    if not text.strip():
        return
    try:
        yield line_no, json.loads(text)
    except json.JSONDecodeError as exc:
        yield line_no, InvalidRecord("json", f"invalid JSON ({exc.msg}, column {exc.pos + 1})")


# A comma and the start of the next value, with the blanks around it.
_NEXT_VALUE = re.compile(r'[ \t\r\n]*,[ \t\r\n]*(?=[{\["0-9tfn-])')


def _iter_array(stream: io.TextIOBase, buf: str) -> Iterator[tuple[int, object]]:
    decoder = json.JSONDecoder()
    scan = decoder.scan_once  # raw_decode() without the wrapper
    next_value = _NEXT_VALUE.match
    eof = False
    pos = 0  # scanning position in buf
    line = 1  # line number at buf[0]
    counted = 0  # buf[:counted] has been counted into `line`

    def line_at(index: int) -> int:
        nonlocal line, counted
        line += buf.count("\n", counted, index)
        counted = index
        return line

    def more() -> bool:
        nonlocal buf, pos, counted, eof, line
        if eof:
            return False
        chunk = stream.read(CHUNK_CHARS)
        if not chunk:
            eof = True
            return False
        line += buf.count("\n", counted, pos)
        buf = buf[pos:] + chunk
        pos = 0
        counted = 0
        return True

    def skip_space() -> str:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf):
                return buf[pos]
            if not more():
                return ""

    skip_space()
    pos += 1  # the "["
    expect_value = True
    first_element = True
    while True:
        char = skip_space()
        if char == "":
            raise UnreadableFile(line_at(pos), "json", "the JSON array is not closed")
        if char == "]" and (first_element or not expect_value):
            pos += 1
            if skip_space():
                raise UnreadableFile(line_at(pos), "json", "extra data after the JSON array")
            return
        if not expect_value:
            if char != ",":
                raise UnreadableFile(line_at(pos), "json", "expected ',' or ']' between records")
            pos += 1
            expect_value = True
            continue
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if _is_incomplete(exc, len(buf)) and more():
                    continue
                start = line_at(pos)
                where = start + buf.count("\n", pos, exc.pos)
                raise UnreadableFile(where, "json", f"invalid JSON ({exc.msg})") from None
            if end > len(buf) - _MARGIN and more():
                continue  # a number may go on in the next chunk ("12" of "12.5e3")
            break
        yield line_at(pos), value
        pos = end
        expect_value = False
        first_element = False
        # Fast run over "value, value, ..." inside the buffer; anything else (the end of the
        # buffer, of the array, a syntax error) goes back to the careful path above, which
        # takes it again from the last record's end.
        while (match := next_value(buf, pos)) is not None:
            start = match.end()
            try:
                value, end = scan(buf, start)
            except (StopIteration, ValueError):
                break
            if end > len(buf) - _MARGIN:
                break
            line += buf.count("\n", counted, start)
            counted = start
            yield line, value
            pos = end


def iter_csv_rows(stream: io.TextIOBase) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line, row)`` per CSV record (line where the record starts; header is line 1)."""
    reader = csv.DictReader(stream)
    if reader.fieldnames is None:
        raise UnreadableFile(1, "header", "the file is empty")
    line = reader.line_num + 1
    for row in reader:
        yield line, row
        line = reader.line_num + 1


def iter_records(stream: io.TextIOBase, *, csv: bool, check_columns=None):
    """Numbered records of a JSON (lines or array) or, with ``csv``, a CSV file. A CSV header
    goes to ``check_columns(columns)`` before the first row, to refuse a file that lacks one."""
    if not csv:
        yield from iter_json_records(stream)
        return
    rows = iter_csv_rows(stream)
    first = next(rows, None)
    if first is None:
        return
    if check_columns is not None:
        check_columns([column for column in first[1] if column is not None])
    yield first
    yield from rows
