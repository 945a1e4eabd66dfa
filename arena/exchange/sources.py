"""Streaming readers: JSON arrays, JSON Lines and CSV, one record at a time, with line numbers.

Memory stays bounded by the largest single record, never by the file. A JSON array is parsed
with the standard library's scanner (``json.JSONDecoder.raw_decode``) over a sliding buffer,
which also gives the line each record starts on, so errors can name it.

Hostile or mistaken input becomes a problem of one record, never a traceback: bytes that are
not UTF-8 (decoded with ``surrogateescape``, so the record that holds them is named), text the
database cannot store (NUL characters, lone surrogates), JSON nested deeper than
``MAX_DEPTH``, CSV fields longer than ``CSV_FIELD_LIMIT`` and other CSV syntax errors. A file
in UTF-16 or UTF-32 is refused as a whole at line 1.
"""

import codecs
import csv
import io
import itertools
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

CHUNK_CHARS = 1 << 20


MAX_PROBLEMS_KEPT = 1000  # problems listed in an import's report; the count stays exact

# Records nested deeper than this are refused (no format of the arena nests past 6 levels;
# Python's JSON reader and writer stop near 1000 with a RecursionError).
MAX_DEPTH = 100

# The longest CSV field read (the csv module's default is 128 KiB, too short for a long
# prompt). The limit is the csv module's one, process-wide: it is only ever raised to this.
CSV_FIELD_LIMIT = 16 * 1024 * 1024


# A problem quotes the file's values; a 16 MiB one is cut to this many characters.
MAX_FIELD_SHOWN = 100
MAX_PROBLEM_SHOWN = 300


def _shortened(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[: limit - 30]}... ({len(text):,} characters)"


class InvalidRecord(Exception):
    """One record is wrong; the rest of the file can still be read."""

    def __init__(self, field: str, problem: str):
        field = _shortened(field, MAX_FIELD_SHOWN)
        problem = _shortened(problem, MAX_PROBLEM_SHOWN)
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class UnreadableFile(Exception):
    """The file cannot be read any further (syntax error in a JSON array, bad header...)."""

    def __init__(self, line: int, field: str, problem: str):
        field = _shortened(field, MAX_FIELD_SHOWN)
        problem = _shortened(problem, MAX_PROBLEM_SHOWN)
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
        # Bytes that are not UTF-8 decode to lone surrogates (U+DC80..U+DCFF), found and named
        # per record by _record_problem, instead of failing the whole read somewhere ahead.
        self._text = io.TextIOWrapper(
            io.BufferedReader(raw, CHUNK_CHARS),
            encoding="utf-8-sig",
            errors="arena-surrogateescape",
            newline=self.newline,
        )
        return self._text

    def __exit__(self, *exc) -> None:
        self._text.close()
        self._bar.close()


# A value that ends this close to the end of the buffer may go on in the next chunk.
_MARGIN = 16

# What may hide text the database cannot store: a \\u0000 or lone surrogate escape (a pair,
# as json.dumps writes every emoji by default, is fine), or a raw surrogate (a byte that is
# not UTF-8, decoded with surrogateescape).
_HEX = frozenset("0123456789abcdefABCDEF")


def _suspect_escape(text: str, start: int, end: int) -> bool:
    """Does ``text[start:end]`` (JSON) hold a ``\\u0000`` or a lone surrogate escape?"""
    if text.find("\\u", start, end) < 0:
        return False
    if text.find("\\u0000", start, end) >= 0:
        return True
    for prefix in ("\\ud", "\\uD"):
        i = text.find(prefix, start, end)
        while i >= 0:
            digit = text[i + 3 : i + 4]
            if digit in "89abAB" and digit:  # a high surrogate: a low one must follow
                low = text[i + 6 : i + 10]
                if low[:2] != "\\u" or low[2:3] not in ("d", "D") or low[3:4] not in "cdefCDEF":
                    return True
                i = text.find(prefix, i + 12, end)
            elif digit and digit in "cdefCDEF":  # a low surrogate no high one came before
                return True
            else:
                i = text.find(prefix, i + 3, end)
    return False


_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_UTF8 = "not UTF-8"


class _BadBytes:
    """Whether any file read by open_text had a byte that is not UTF-8 (then raw surrogates
    are looked for in every record; until then no record can hold one). Process-wide and only
    ever set, so an import running beside another never skips the check it needs."""

    seen = False


_surrogateescape = codecs.lookup_error("surrogateescape")


def _escape_bad_bytes(error: UnicodeError) -> tuple[str | bytes, int]:
    _BadBytes.seen = True
    return _surrogateescape(error)


codecs.register_error("arena-surrogateescape", _escape_bad_bytes)


def encoding_problem(head: str) -> str | None:
    """Why a file whose decoded start is ``head`` is not UTF-8 at all (UTF-16 or UTF-32)."""
    if head.startswith(("\udcff\udcfe", "\udcfe\udcff")) or head.startswith("\x00\x00"):
        return (
            f"{_NOT_UTF8}: the file starts with a UTF-16 or UTF-32 byte order mark; convert it "
            "to UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)"
        )
    sample = head[:4096]
    if len(sample) >= 4 and sample.count("\x00") * 4 >= len(sample):
        return (
            f"{_NOT_UTF8}: every other byte is NUL, so it looks like UTF-16; convert it to "
            "UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)"
        )
    return None


def _printable(text: str) -> str:
    """``text`` safe to print: NULs and surrogates as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _string_problem(text: str, *, raw_bytes: bool) -> str | None:
    """What the database cannot store in ``text``; ``raw_bytes``: surrogates came from bytes."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which the database cannot store"
    if text.isascii():
        return None
    match = _SURROGATE.search(text)
    if match is None:
        return None
    code = ord(match.group())
    if raw_bytes and 0xDC80 <= code <= 0xDCFF:
        return (
            f"{_NOT_UTF8}: byte 0x{code - 0xDC00:02x} (is the file in Latin-1 or another "
            "encoding? save it as UTF-8)"
        )
    return f"contains a lone surrogate (\\u{code:04x}), which is not text"


def _record_problem(value: object, *, raw_bytes: bool) -> InvalidRecord | None:
    """The first string of ``value`` (keys too) that cannot be stored, or too deep a nesting,
    named by its path (``conversation_a[1].content``); None when the record is fine."""
    stack: list[tuple[str, object, int]] = [("", value, 1)]
    while stack:
        path, item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return InvalidRecord(path or "record", f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, str):
            problem = _string_problem(item, raw_bytes=raw_bytes)
            if problem:
                return InvalidRecord(path or "record", problem)
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                problem = _string_problem(key, raw_bytes=raw_bytes)
                if problem:
                    return InvalidRecord(f"{path or 'record'} key {_printable(key)!r}", problem)
                children.append((f"{path}.{key}" if path else key, child, depth + 1))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(
                (f"{path}[{i}]", child, depth + 1) for i, child in reversed(list(enumerate(item)))
            )
    return None


def _checked(value: object, text: str, start: int = 0, end: int | None = None) -> object:
    """``value`` decoded from ``text[start:end]``, or the InvalidRecord that refuses it.

    Cheap for the common record: the walk runs only when the text holds a suspicious escape or
    character, or enough brackets to be nested deeply."""
    end = len(text) if end is None else end
    escapes = _suspect_escape(text, start, end)
    raw_bytes = (
        _BadBytes.seen and not text.isascii() and _SURROGATE.search(text, start, end) is not None
    )
    nested = text.count("[", start, end) + text.count("{", start, end) > MAX_DEPTH
    if not (escapes or raw_bytes or nested):
        return value
    return _record_problem(value, raw_bytes=raw_bytes) or value


def _syntax_problem(text: str, message: str) -> str:
    """Invalid JSON in ``text`` (one record), said plainly when the cause is a byte."""
    bad = _SURROGATE.search(text)
    if bad is not None and 0xDC80 <= ord(bad.group()) <= 0xDCFF:
        byte = ord(bad.group()) - 0xDC00
        return f"{_NOT_UTF8}: byte 0x{byte:02x} at column {bad.start() + 1}; save it as UTF-8"
    if "\x00" in text:
        return f"a NUL byte at column {text.index(chr(0)) + 1}"
    return f"invalid JSON ({message})"


_TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"


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
    problem = encoding_problem(first)
    if problem:
        raise UnreadableFile(1, "file", problem)
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
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        yield (
            line_no,
            InvalidRecord("json", _syntax_problem(text, f"{exc.msg}, column {exc.pos + 1}")),
        )
    except RecursionError:
        yield line_no, InvalidRecord("json", _TOO_DEEP)
    else:
        yield line_no, _checked(value, text)


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
                problem = _syntax_problem(buf[pos : exc.pos + 1], exc.msg)
                raise UnreadableFile(where, "json", problem) from None
            except RecursionError:
                # Too deep for the scanner: step over the value by its brackets alone.
                end = _value_end(buf, pos)
                if end is None and more():
                    continue
                if end is None:
                    raise UnreadableFile(
                        line_at(pos), "json", "the JSON array is not closed"
                    ) from None
                value = InvalidRecord("json", _TOO_DEEP)
                break
            if end > len(buf) - _MARGIN and more():
                continue  # a number may go on in the next chunk ("12" of "12.5e3")
            value = _checked(value, buf, pos, end)
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
            except (StopIteration, ValueError, RecursionError):
                break
            if end > len(buf) - _MARGIN:
                break
            line += buf.count("\n", counted, start)
            counted = start
            yield line, _checked(value, buf, start, end)
            pos = end


def _csv_problem(row: dict) -> InvalidRecord | None:
    """The first cell of a CSV row that the database could not store, named by its column."""
    for column, value in row.items():
        if not isinstance(value, str):
            continue  # the cells past the header (a list under None), refused by the formats
        problem = _string_problem(value, raw_bytes=True)
        if problem:
            return InvalidRecord(str(column), problem)
    return None


def iter_csv_rows(
    stream: io.TextIOBase, check_columns: Callable[[list[str]], None] | None = None
) -> Iterator[tuple[int, dict[str, str] | InvalidRecord]]:
    """Yield ``(line, row)`` per CSV record (line where the record starts; header is line 1),
    or ``(line, InvalidRecord)`` for a record that cannot be read or stored. The header goes to
    ``check_columns(columns)`` before the first row, to refuse a file that lacks one."""
    head = stream.readline()
    problem = encoding_problem(head)
    if problem:
        raise UnreadableFile(1, "file", problem)
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.DictReader(itertools.chain([head], stream))
    try:
        columns = reader.fieldnames
    except csv.Error as exc:
        raise UnreadableFile(1, "header", f"unreadable CSV ({exc})") from None
    if columns is None:
        raise UnreadableFile(1, "header", "the file is empty")
    for column in columns:
        problem = _string_problem(column, raw_bytes=True)
        if problem:
            raise UnreadableFile(1, "header", problem)
    if check_columns is not None:
        check_columns(list(columns))
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The csv module drops the rest of the physical line and goes on at the next one.
            yield line, InvalidRecord("row", f"unreadable CSV ({exc})")
        else:
            yield line, _csv_problem(row) or row
        line = reader.line_num + 1


def iter_records(
    stream: io.TextIOBase,
    *,
    csv: bool,
    check_columns: Callable[[list[str]], None] | None = None,
) -> Iterator[tuple[int, object]]:
    """Numbered records of a JSON (lines or array) or, with ``csv``, a CSV file. A CSV header
    goes to ``check_columns(columns)`` before the first row, to refuse a file that lacks one.
    A record that cannot be read or stored is yielded as an ``InvalidRecord``."""
    if csv:
        yield from iter_csv_rows(stream, check_columns)
    else:
        yield from iter_json_records(stream)


def _value_end(text: str, pos: int) -> int | None:
    """The end of the JSON value starting at ``text[pos]`` (a ``[`` or ``{``), found by its
    brackets without parsing it; None when it runs past the end of ``text``."""
    depth = 0
    for match in _TOKEN.finditer(text, pos):
        token = match.group()
        if token[0] == '"':
            if match.group("open") is not None:
                return None  # a string that goes on past the buffer
            continue
        depth += 1 if token in "[{" else -1
        if depth == 0:
            return match.end()
    return None


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|(?P<open>"(?:[^"\\]|\\.)*\\?\Z)|[\[\]{}]')
