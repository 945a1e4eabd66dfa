"""Command line: ``python -m ratings [options] [FILE]`` (needs only numpy and scipy).

See ``python -m ratings --help``. One module on purpose: the options, the reader (CSV or JSON
Lines, errors with their line and column) and the table/JSON/CSV writers are the pieces of one
command, and nothing else uses them.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ._aggregate import aggregate
from ._board import Leaderboard
from ._bradley_terry import fit_bt
from ._davidson import fit_davidson
from ._fit import RatingFit
from ._leaderboard import (
    assemble_board,
    board_intervals,
    elo_board,
    present_models,
    rename_notes,
)
from ._outcomes import A_WINS, B_WINS, BOTH_BAD, TIE
from ._solver import DegenerateDataError
from ._style import FEATURES, answer_features, battle_features, fit_style
from ._typing import FloatArray, IntArray

__all__ = ["main"]

WINNERS = {
    "model_a": A_WINS,
    "model_b": B_WINS,
    "tie": TIE,
    "tie (bothbad)": BOTH_BAD,
    "both_bad": BOTH_BAD,
    "left": A_WINS,
    "right": B_WINS,
}

DESCRIPTION = """\
Fit a leaderboard from pairwise battles.

Input (FILE, or - for standard input) is CSV with a header row, or JSON Lines (one object per
line; detected from a .jsonl/.ndjson name or a first character '{'). Columns:
  model_a, model_b, winner   winner: model_a | model_b | tie | tie (bothbad) | both_bad
or, LLMFAO style,
  left, right, winner        winner: left | right | tie
Optional columns: a category (--by), a battle weight (--weight), the two answers' texts and
token counts for style control (--text-a/--text-b, --tokens-a/--tokens-b).

Output, one row per model with battles (ordered by rating): model, rating, lower, upper,
rank, rank_lower, rank_upper, rank_ub, votes, wins, losses, ties. rating is on the Elo scale
(400/ln 10 points per natural-log unit of strength, mean 1000 unless --anchor); lower/upper is
the interval at --confidence-level; rank counts models with a higher rating; rank_ub = 1 + the
number of models whose lower bound exceeds this model's upper bound; rank_lower/rank_upper is
the range of the rank over the bootstrap resamples, at the same level; ties include both_bad
unless dropped. Models with fewer than --min-votes battles are listed but not ranked (empty
rank fields). With --style, the style coefficients (Elo points per standard deviation of each
feature, with intervals) follow the table; in CSV they are rows whose model is
"style:<feature>". With --by, every board (overall, then each category) is printed, with a
category column in CSV. JSON output has the board's settings (method, ci, n_resamples,
confidence_level, ...) beside the rows.

--timings prints "timing <phase> <seconds>" to standard error for the phases read,
aggregate, fit and intervals. A malformed file is reported with its line and column, and the
exit status is 2.
"""


class InputError(Exception):
    """A problem with the input file, reported with its line and column."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ratings",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", nargs="?", default="-", help="input CSV or JSONL file (- for stdin)")
    p.add_argument(
        "--input-format",
        choices=("auto", "csv", "jsonl"),
        default="auto",
        help="input format (default: from the file name or its first character)",
    )
    p.add_argument(
        "--method",
        choices=("bt", "davidson", "elo"),
        default="bt",
        help="bt: Bradley-Terry, ties half a win (default); davidson: explicit tie "
        "parameter; elo: online Elo (order-dependent, for comparison)",
    )
    p.add_argument(
        "--ci",
        choices=("bootstrap", "sandwich", "none"),
        default="bootstrap",
        help="interval method (default bootstrap)",
    )
    p.add_argument(
        "--n-resamples", type=int, default=1000, help="bootstrap resamples (default 1000)"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed for the bootstrap (default: fresh randomness)",
    )
    p.add_argument(
        "--confidence-level",
        type=float,
        default=0.95,
        help="coverage of the intervals and rank ranges (default 0.95)",
    )
    p.add_argument(
        "--anchor",
        metavar="MODEL=RATING",
        help="pin MODEL's rating instead of centring the mean at 1000",
    )
    p.add_argument(
        "--min-votes",
        type=int,
        default=0,
        help="models with fewer battles are listed but not ranked (default 0)",
    )
    p.add_argument(
        "--both-bad",
        choices=("tie", "drop"),
        default="tie",
        help="count both_bad votes as ties (default) or drop them",
    )
    p.add_argument(
        "--by",
        metavar="COLUMN",
        help="category column: fit the overall board and one per category; "
        "several categories per battle are separated by --by-sep",
    )
    p.add_argument("--by-sep", default="|", help="separator of several categories (default |)")
    p.add_argument("--weight", metavar="COLUMN", help="battle weight column")
    p.add_argument(
        "--style",
        choices=("length", "markdown"),
        help="style control: length only, or length plus Markdown headers, list "
        "items and bold spans",
    )
    p.add_argument(
        "--text-a",
        metavar="COLUMN",
        default="answer_a",
        help="text of A's answer for --style (default answer_a)",
    )
    p.add_argument(
        "--text-b",
        metavar="COLUMN",
        default="answer_b",
        help="text of B's answer for --style (default answer_b)",
    )
    p.add_argument(
        "--tokens-a",
        metavar="COLUMN",
        help="token count of A's answer (default: estimated from the text)",
    )
    p.add_argument("--tokens-b", metavar="COLUMN", help="token count of B's answer")
    p.add_argument(
        "--l2", type=float, default=1.0, help="L2 penalty on style coefficients (default 1.0)"
    )
    p.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="output format (default table)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="bootstrap threads (default: available CPUs, at most 4)",
    )
    p.add_argument(
        "--timings", action="store_true", help="print 'timing <phase> <seconds>' lines to stderr"
    )
    return p


# --------------------------------------------------------------------------- reading


def _records(text: str, fmt: str, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line_number, dict) from CSV or JSONL text."""
    if fmt == "auto":
        lower = name.lower()
        if lower.endswith((".jsonl", ".ndjson", ".json")):
            fmt = "jsonl"
        elif lower.endswith(".csv"):
            fmt = "csv"
        else:
            fmt = "jsonl" if text.lstrip().startswith("{") else "csv"
    if fmt == "jsonl":
        for k, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"line {k}, column {exc.colno}: invalid JSON: {exc.msg}") from None
            if not isinstance(obj, dict):
                raise InputError(f"line {k}, column 1: expected a JSON object")
            yield k, obj
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None:
        return
    start = 1
    try:
        for row in reader:
            if None in row:
                raise InputError(
                    f"line {reader.line_num}, column {len(reader.fieldnames) + 1}: "
                    "more fields than the header"
                )
            yield start + (reader.line_num - 1), row
    except csv.Error as exc:
        raise InputError(f"line {reader.line_num}, column ?: malformed CSV: {exc}") from None


def _field(rec: dict[str, Any], line: int, column: str, required: bool = True) -> Any:
    if column not in rec or rec[column] is None or (required and rec[column] == ""):
        if required:
            raise InputError(f"line {line}, column '{column}': missing value")
        return None
    return rec[column]


#: Values that mean "no name" in exported spreadsheets and JSON (compared case-insensitively).
EMPTY_NAMES = ("", "nan", "none", "null")


def _name(rec: dict[str, Any], line: int, column: str, data: _Data) -> str:
    """A model name: stripped, never empty-like; records spelling variants for a warning."""
    raw = str(_field(rec, line, column))
    name = raw.strip()
    if name.lower() in EMPTY_NAMES:
        raise InputError(
            f"line {line}, column '{column}': {raw!r} is not a model name (empty-like names "
            f"{', '.join(repr(e) for e in EMPTY_NAMES)} are refused, in any case)"
        )
    data.spellings.setdefault(name.casefold(), set()).add(raw)
    return name


def name_warnings(spellings: dict[str, set[str]]) -> list[str]:
    """Warnings about names that differ only in case or surrounding space."""
    out = []
    for variants in spellings.values():
        names = sorted({v.strip() for v in variants})
        if len(names) > 1:
            out.append(
                "names that differ only in case are kept as separate models: "
                + ", ".join(repr(n) for n in names)
            )
        for n in names:
            spaced = sorted(v for v in variants if v.strip() == n and v != n)
            if spaced:
                out.append(
                    f"names that differ only in surrounding space are merged into {n!r}: "
                    + ", ".join(repr(v) for v in spaced)
                )
    return out


class _Data:
    def __init__(self) -> None:
        self.names: dict[str, int] = {}
        self.spellings: dict[str, set[str]] = {}  # casefolded name -> raw spellings
        self.a: list[int] = []
        self.b: list[int] = []
        self.o: list[int] = []
        self.w: list[float] = []
        self.cats: list[list[str]] = []
        self.text_a: list[str] = []
        self.text_b: list[str] = []
        self.tok_a: list[float] = []
        self.tok_b: list[float] = []

    def model(self, name: str) -> int:
        if name not in self.names:
            self.names[name] = len(self.names)
        return self.names[name]


def _read(args: argparse.Namespace) -> _Data:
    if args.file == "-":
        text = sys.stdin.read().removeprefix("\ufeff")
    else:
        try:
            # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark, which would
            # otherwise become part of the first column's name.
            with open(args.file, encoding="utf-8-sig", newline="") as fh:
                text = fh.read()
        except OSError as exc:
            raise InputError(f"cannot read {args.file}: {exc.strerror}") from None
    data = _Data()
    cols = None
    for line, rec in _records(text, args.input_format, args.file):
        if cols is None:
            if "model_a" in rec or "model_b" in rec:
                cols = ("model_a", "model_b")
            elif "left" in rec or "right" in rec:
                cols = ("left", "right")
            else:
                raise InputError(
                    f"line {line}, column ?: need columns model_a, model_b, winner or "
                    "left, right, winner"
                )
        ma = _name(rec, line, cols[0], data)
        mb = _name(rec, line, cols[1], data)
        winner = str(_field(rec, line, "winner")).strip()
        code = WINNERS.get(winner)
        allowed = (
            ("model_a", "model_b", "tie", "tie (bothbad)", "both_bad")
            if cols[0] == "model_a"
            else ("left", "right", "tie")
        )
        if code is None or winner not in allowed:
            raise InputError(
                f"line {line}, column 'winner': unknown value {winner!r} "
                f"(expected {' | '.join(allowed)})"
            )
        if ma == mb:
            raise InputError(f"line {line}, column '{cols[1]}': a model cannot battle itself")
        data.a.append(data.model(ma))
        data.b.append(data.model(mb))
        data.o.append(code)
        if args.weight:
            raw = _field(rec, line, args.weight)
            try:
                wv = float(raw)
            except (TypeError, ValueError):
                wv = math.nan
            if not (math.isfinite(wv) and wv >= 0):
                raise InputError(
                    f"line {line}, column '{args.weight}': weight must be a non-negative "
                    f"number, got {raw!r}"
                )
            data.w.append(wv)
        if args.by:
            raw = _field(rec, line, args.by, required=False)
            if isinstance(raw, list):
                cats = [str(c).strip() for c in raw]
            elif raw is None:
                cats = []
            else:
                cats = [c.strip() for c in str(raw).split(args.by_sep)]
            data.cats.append([c for c in cats if c])
        if args.style:
            # Length control with token counts needs no text; Markdown counts do.
            need_text = args.style == "markdown" or not (args.tokens_a and args.tokens_b)
            for col, out in ((args.text_a, data.text_a), (args.text_b, data.text_b)):
                val = _field(rec, line, col, required=False)
                if val is None and need_text:
                    raise InputError(f"line {line}, column '{col}': missing answer text")
                out.append("" if val is None else str(val))
            for col, tokens in ((args.tokens_a, data.tok_a), (args.tokens_b, data.tok_b)):
                if col:
                    raw = _field(rec, line, col)
                    try:
                        tv = float(raw)
                    except (TypeError, ValueError):
                        tv = math.nan
                    if not (math.isfinite(tv) and tv >= 0):
                        raise InputError(
                            f"line {line}, column '{col}': token count must be a "
                            f"non-negative number, got {raw!r}"
                        )
                    tokens.append(tv)
    if not data.a:
        raise InputError("line 1, column ?: no battles in the input")
    return data


# --------------------------------------------------------------------------- fitting


class _Timer:
    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def add(self, phase: str, start: float) -> float:
        now = time.perf_counter()
        self.totals[phase] = self.totals.get(phase, 0.0) + now - start
        return now


def _board(
    args: argparse.Namespace,
    timer: _Timer,
    n: int,
    a: IntArray,
    b: IntArray,
    o: IntArray,
    w: FloatArray | None,
    style: tuple[FloatArray, FloatArray, list[str]] | None,
    rng: np.random.Generator,
    anchor: dict[int, float] | None,
) -> Leaderboard:
    t = time.perf_counter()
    if args.method == "elo":
        t = timer.add("aggregate", t)
        board = elo_board(
            n,
            a,
            b,
            o,
            w,
            args.ci,
            args.n_resamples,
            rng,
            args.confidence_level,
            anchor,
            args.min_votes,
            args.both_bad,
            4.0,
        )
        timer.add("fit", t)
        return board
    keep = np.ones(a.size, dtype=bool) if args.both_bad == "tie" else o != BOTH_BAD
    counts = aggregate(n, a[keep], b[keep], o[keep], None if w is None else w[keep])
    ids, new_id, sub_anchor = present_models(counts.votes(), anchor)
    sub = counts.subset(ids)
    x = None
    if style is not None:
        fa, fb, names = style
        feats = battle_features(fa[keep], fb[keep], names=FEATURES, columns=names)
        x = feats
    t = timer.add("aggregate", t)
    fit: RatingFit
    if x is not None:
        fit = fit_style(
            ids.size,
            new_id[a[keep]],
            new_id[b[keep]],
            o[keep],
            x,
            None if w is None else w[keep],
            l2=args.l2,
            both_bad=args.both_bad,
            anchor=sub_anchor,
        )
    elif args.method == "davidson":
        fit = fit_davidson(sub, both_bad=args.both_bad, anchor=sub_anchor)
    else:
        fit = fit_bt(sub, both_bad=args.both_bad, anchor=sub_anchor)
    t = timer.add("fit", t)
    iv, samples = board_intervals(
        fit, args.ci, args.n_resamples, rng, args.confidence_level, args.workers
    )
    t = timer.add("intervals", t)
    return assemble_board(
        ids=ids,
        fit=fit,
        ratings=np.asarray(fit.ratings),
        iv=iv,
        samples=samples,
        counts=sub,
        both_bad=args.both_bad,
        method=args.method,
        ci=args.ci,
        n_resamples=args.n_resamples,
        confidence_level=args.confidence_level,
        min_votes=args.min_votes,
        anchor=anchor,
    )


# --------------------------------------------------------------------------- output


def _rows(board: Leaderboard, names: list[str]) -> list[dict[str, Any]]:
    rows = board.rows()
    for r in rows:
        r["model"] = names[r["model"]]
    return rows


def _fmt(v: object, digits: int = 1) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _table(board: Leaderboard, names: list[str], title: str | None) -> str:
    cols = list(Leaderboard.COLUMNS)
    rows = [[_fmt(r[c]) for c in cols] for r in _rows(board, names)]
    widths = [max([len(c)] + [len(r[k]) for r in rows]) for k, c in enumerate(cols)]
    out = []
    if title:
        out.append(f"== {title} ==")
    out.append(
        "  ".join(
            c.ljust(w) if k == 0 else c.rjust(w)
            for k, (c, w) in enumerate(zip(cols, widths, strict=True))
        )
    )
    for r in rows:
        out.append(
            "  ".join(
                v.ljust(w) if k == 0 else v.rjust(w)
                for k, (v, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    if board.tie is not None:
        out.append(
            f"tie parameter nu = {board.tie:.4f}"
            + (f" [{board.tie_lower:.4f}, {board.tie_upper:.4f}]" if board.tie_lower else "")
        )
    if (
        board.style_coef is not None
        and board.style_lower is not None
        and board.style_upper is not None
    ):
        out.append("style coefficients (Elo points per standard deviation):")
        for nm, c, lo, hi in zip(
            board.style_names, board.style_coef, board.style_lower, board.style_upper, strict=True
        ):
            out.append(f"  {nm:<12} {c:8.2f}  [{lo:.2f}, {hi:.2f}]")
    for note in rename_notes(board.notes, names):
        out.append(f"note: {note}")
    return "\n".join(out)


def _json_board(board: Leaderboard, names: list[str]) -> dict[str, Any]:
    d = board.to_dict()
    d["rows"] = _rows(board, names)
    d["notes"] = list(rename_notes(board.notes, names))
    if d["anchor"] is not None:
        d["anchor"] = [names[d["anchor"][0]], d["anchor"][1]]
    return d


def _csv(boards: list[tuple[str | None, Leaderboard]], names: list[str]) -> str:
    buf = io.StringIO()
    with_cat = boards[0][0] is not None
    cols = (["category"] if with_cat else []) + list(Leaderboard.COLUMNS)
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(cols)
    for cat, board in boards:
        for r in _rows(board, names):
            wr.writerow(([cat] if with_cat else []) + [_fmt(r[c], 4) for c in Leaderboard.COLUMNS])
        if (
            board.style_coef is not None
            and board.style_lower is not None
            and board.style_upper is not None
        ):
            for nm, c, lo, hi in zip(
                board.style_names,
                board.style_coef,
                board.style_lower,
                board.style_upper,
                strict=True,
            ):
                row = {"model": f"style:{nm}", "rating": c, "lower": lo, "upper": hi}
                wr.writerow(
                    ([cat] if with_cat else []) + [_fmt(row.get(k), 4) for k in Leaderboard.COLUMNS]
                )
    return buf.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.n_resamples < 1:
        parser.error("--n-resamples must be at least 1")
    if not 0 < args.confidence_level < 1:
        parser.error("--confidence-level must lie strictly between 0 and 1")
    if args.min_votes < 0:
        parser.error("--min-votes must be non-negative")
    if args.style and args.method != "bt":
        parser.error("--style needs --method bt")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    timer = _Timer()
    t = time.perf_counter()
    try:
        data = _read(args)
    except InputError as exc:
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return 2
    names = list(data.names)
    for warning in name_warnings(data.spellings):
        print(f"warning: {warning}", file=sys.stderr)
    anchor = None
    if args.anchor:
        model, sep, rating = args.anchor.rpartition("=")
        try:
            value = float(rating)
        except ValueError:
            value = math.nan
        if not sep or model not in data.names or not math.isfinite(value):
            parser.error(
                f"--anchor must be MODEL=RATING with a model from the input, got {args.anchor!r}"
            )
        anchor = {data.names[model]: value}
    n = len(names)
    a = np.array(data.a, dtype=np.intp)
    b = np.array(data.b, dtype=np.intp)
    o = np.array(data.o, dtype=np.intp)
    w = np.array(data.w) if args.weight else None
    style = None
    if args.style:
        fa = answer_features(data.text_a, token_counts=data.tok_a or None)
        fb = answer_features(data.text_b, token_counts=data.tok_b or None)
        style = (fa, fb, ["tokens"] if args.style == "length" else list(FEATURES))
    t = timer.add("read", t)
    rng = np.random.default_rng(args.seed)
    boards: list[tuple[str | None, Leaderboard]] = []
    try:
        groups: list[tuple[str | None, IntArray | None]] = [(None, None)]
        if args.by:
            cats = sorted({c for cs in data.cats for c in cs})
            groups = [("overall", None)] + [
                (c, np.array([k for k, cs in enumerate(data.cats) if c in cs])) for c in cats
            ]
        child = rng.spawn(len(groups))
        for (name, rows), g in zip(groups, child, strict=True):
            if rows is None:
                sub = (a, b, o, w, style)
            else:
                sub = (
                    a[rows],
                    b[rows],
                    o[rows],
                    None if w is None else w[rows],
                    None if style is None else (style[0][rows], style[1][rows], style[2]),
                )
            use_anchor = anchor
            if anchor is not None and not np.any(
                (sub[0] == next(iter(anchor))) | (sub[1] == next(iter(anchor)))
            ):
                use_anchor = None
            board = _board(args, timer, n, *sub[:4], sub[4], g, use_anchor)
            if use_anchor is None and anchor is not None:
                board = replace(
                    board,
                    notes=board.notes
                    + ("the anchor model has no battles here; ratings centred at 1000",),
                )
            boards.append((name, board))
    except (DegenerateDataError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        if args.by:
            out = {
                "overall": _json_board(boards[0][1], names),
                "categories": {k: _json_board(v, names) for k, v in boards[1:]},
            }
        else:
            out = _json_board(boards[0][1], names)
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    elif args.format == "csv":
        sys.stdout.write(_csv(boards, names))
    else:
        sys.stdout.write("\n\n".join(_table(bd, names, nm) for nm, bd in boards) + "\n")
    if args.timings:
        for phase in ("read", "aggregate", "fit", "intervals"):
            print(f"timing {phase} {timer.totals.get(phase, 0.0):.6f}", file=sys.stderr)
    return 0
