"""``python -m ratings``: formats, options, timings and errors, run as a real subprocess."""

import contextlib
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ratings import aggregate, fit_bt
from ratings.cli import main
from tests.ratings.helpers import GOLDEN, LLMFAO, load_pairs

ROOT = Path(__file__).resolve().parents[2]

# Run the CLI with Django and pandas made unimportable: it must need only numpy and scipy.
RUNNER = (
    "import runpy, sys\n"
    "for name in ('django', 'pandas'):\n"
    "    sys.modules[name] = None\n"
    "sys.argv = ['ratings', *sys.argv[1:]]\n"
    "runpy.run_module('ratings', run_name='__main__')\n"
)


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_subprocess(*args, stdin=None):
    """The real command in a fresh interpreter without Django and pandas."""
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, *map(str, args)],
        input=stdin,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    return Result(out.returncode, out.stdout, out.stderr)


def run(*args, stdin=None):
    """``ratings.cli.main`` in this process (fast); same arguments as the command."""
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin or "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:  # argparse: --help, usage errors
                code = exc.code
    finally:
        sys.stdin = old_stdin
    return Result(code, out.getvalue(), err.getvalue())


def test_help_documents_every_option_and_the_output_columns():
    out = run_subprocess("--help")
    assert out.returncode == 0
    for option in (
        "--method",
        "--ci",
        "--n-resamples",
        "--confidence-level",
        "--seed",
        "--anchor",
        "--min-votes",
        "--style",
        "--format",
        "--by",
        "--weight",
        "--text-a",
        "--timings",
        "bt",
        "davidson",
        "elo",
        "bootstrap",
        "sandwich",
        "table",
        "json",
        "csv",
    ):
        assert option in out.stdout, option
    for column in (
        "rank_lower",
        "rank_upper",
        "rank_ub",
        "votes",
        "wins",
        "losses",
        "ties",
        "tie (bothbad)",
        "left | right | tie",
    ):
        assert column in out.stdout, column


def test_llmfao_csv_to_json_gives_the_library_fit():
    out = run(LLMFAO, "--format", "json", "--ci", "none")
    assert out.returncode == 0, out.stderr
    board = json.loads(out.stdout)
    names, a, b, o = load_pairs(LLMFAO)
    fit = fit_bt(aggregate(len(names), a, b, o))
    got = {r["model"]: r["rating"] for r in board["rows"]}
    assert_allclose([got[m] for m in names], fit.ratings, atol=1e-9)
    assert {"rating", "lower", "upper", "rank", "rank_ub", "votes"} <= set(board["rows"][0])


def test_model_a_model_b_csv_with_all_winner_codes_and_csv_output(tmp_path):
    path = tmp_path / "battles.csv"
    path.write_text(
        "model_a,model_b,winner\n"
        "x,y,model_a\ny,z,model_b\nz,x,tie\nx,z,tie (bothbad)\ny,x,both_bad\nz,y,model_a\n"
        "x,y,model_b\n"
    )
    out = run(path, "--format", "csv", "--n-resamples", "50", "--seed", "1")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["model"] for r in rows] and set(rows[0]) == {
        "model",
        "rating",
        "lower",
        "upper",
        "rank",
        "rank_lower",
        "rank_upper",
        "rank_ub",
        "votes",
        "wins",
        "losses",
        "ties",
    }
    assert sum(int(r["votes"]) for r in rows) == 2 * 7
    dropped = run(path, "--format", "csv", "--ci", "none", "--both-bad", "drop")
    assert sum(int(r["votes"]) for r in csv.DictReader(io.StringIO(dropped.stdout))) == 2 * 5


def test_jsonl_from_stdin_with_timings_and_a_table():
    lines = [
        {"model_a": "p", "model_b": "q", "winner": "model_a"},
        {"model_a": "q", "model_b": "r", "winner": "tie"},
        {"model_a": "r", "model_b": "p", "winner": "model_a"},
        {"model_a": "q", "model_b": "p", "winner": "model_a"},
    ]
    stdin = "\n".join(json.dumps(x) for x in lines) + "\n"
    # The real command, in a fresh interpreter that cannot import Django or pandas.
    out = run_subprocess("-", "--timings", "--n-resamples", "30", "--seed", "0", stdin=stdin)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split()[:3] == ["model", "rating", "lower"]
    phases = [line.split() for line in out.stderr.splitlines() if line.startswith("timing ")]
    assert [p[1] for p in phases] == ["read", "aggregate", "fit", "intervals"]
    assert all(float(p[2]) >= 0 for p in phases)


MALFORMED = [
    {
        "desc": "unknown winner",
        "text": "model_a,model_b,winner\nx,y,model_a\nx,y,bogus\n",
        "name": "bad.csv",
        "expect": ["line 3", "'winner'", "bogus"],
    },
    {
        "desc": "missing model column",
        "text": "model_a,winner\nx,model_a\n",
        "name": "bad.csv",
        "expect": ["line 2", "'model_b'"],
    },
    {
        "desc": "llmfao winner must be left/right/tie",
        "text": "left,right,winner\nx,y,model_a\n",
        "name": "bad.csv",
        "expect": ["line 2", "'winner'", "left | right | tie"],
    },
    {
        "desc": "broken JSON line",
        "name": "bad.jsonl",
        "text": '{"model_a": "x", "model_b": "y", "winner": "tie"}\n{"model_a": "x", oops}\n',
        "expect": ["line 2", "column 18", "invalid JSON"],
    },
    {
        "desc": "self battle",
        "text": "model_a,model_b,winner\nx,x,tie\n",
        "name": "bad.csv",
        "expect": ["line 2", "itself"],
    },
    {
        "desc": "negative weight",
        "text": "model_a,model_b,winner,w\nx,y,tie,-1\n",
        "name": "bad.csv",
        "expect": ["line 2", "'w'", "non-negative"],
        "args": ["--weight", "w"],
    },
]


@pytest.mark.parametrize("case", MALFORMED, ids=lambda c: c["desc"])
def test_a_malformed_file_is_reported_with_line_and_column_and_exit_status_2(tmp_path, case):
    path = tmp_path / case["name"]
    path.write_text(case["text"])
    out = run(path, *case.get("args", []))
    assert out.returncode == 2
    for part in case["expect"]:
        assert part in out.stderr, (case["desc"], out.stderr)
    assert "Traceback" not in out.stderr


def test_a_missing_file_exits_with_status_2():
    out = run_subprocess("/nonexistent/battles.csv")
    assert out.returncode == 2 and "cannot read" in out.stderr


def test_categories_anchor_davidson_and_min_votes(tmp_path):
    rng = np.random.default_rng(0)
    models = ["m0", "m1", "m2", "m3"]
    path = tmp_path / "cat.csv"
    with open(path, "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["model_a", "model_b", "winner", "category"])
        for _ in range(400):
            i, j = rng.choice(4, 2, replace=False)
            edge = 0.1 * (i > j)
            winner = rng.choice(["model_a", "model_b", "tie"], p=[0.4 + edge, 0.4 - edge, 0.2])
            wr.writerow([models[i], models[j], winner, rng.choice(["code", "math", "code|math"])])
    out = run(
        path,
        "--by",
        "category",
        "--method",
        "davidson",
        "--ci",
        "sandwich",
        "--anchor",
        "m0=1200",
        "--min-votes",
        "150",
        "--format",
        "json",
        "--seed",
        "1",
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert set(res["categories"]) == {"code", "math"}
    overall = res["overall"]
    assert overall["tie"] > 0 and overall["tie_lower"] < overall["tie"] < overall["tie_upper"]
    assert {r["model"]: r["rating"] for r in overall["rows"]}["m0"] == pytest.approx(1200)
    code_votes = sum(r["votes"] for r in res["categories"]["code"]["rows"])
    assert code_votes < sum(r["votes"] for r in overall["rows"])
    unranked = [r for r in res["categories"]["math"]["rows"] if r["votes"] < 150]
    assert unranked and all(r["rank"] is None for r in unranked)


def test_style_control_from_answer_texts(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "style.csv"
    with open(path, "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["model_a", "model_b", "winner", "answer_a", "answer_b"])
        for _ in range(600):
            i, j = rng.choice(3, 2, replace=False)
            la, lb = rng.integers(5, 60, 2)
            p = 0.5 + 0.3 * np.sign(la - lb)  # longer answers win more often
            winner = "model_a" if rng.random() < p else "model_b"
            wr.writerow(
                [f"m{i}", f"m{j}", winner, "word " * la + "\n- item\n", "**bold** " + "word " * lb]
            )
    out = run(path, "--style", "markdown", "--ci", "sandwich", "--format", "json")
    assert out.returncode == 0, out.stderr
    style = {s["feature"]: s for s in json.loads(out.stdout)["style"]}
    assert set(style) == {"tokens", "headers", "list_items", "bold"}
    assert style["tokens"]["lower"] > 0
    csv_out = run(path, "--style", "length", "--ci", "none", "--format", "csv")
    assert "style:tokens" in csv_out.stdout


def test_food_table_lists_every_dish():
    out = run(GOLDEN / "food.csv", "--ci", "none")
    assert out.returncode == 0, out.stderr
    names, *_ = load_pairs(GOLDEN / "food.csv")
    for name in names:
        assert name in out.stdout


def test_degenerate_data_is_fitted_with_the_prior_and_the_note_names_the_models(tmp_path):
    path = tmp_path / "degenerate.csv"
    path.write_text("model_a,model_b,winner\nalpha,beta,model_a\nbeta,gamma,model_a\n")
    out = run(path, "--ci", "none")
    assert out.returncode == 0, out.stderr
    assert "note: model [alpha] never lost or tied" in out.stdout
    assert "model [gamma] never won or tied" in out.stdout


def _battles_csv(path, rows, header=("model_a", "model_b", "winner"), bom=False):
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as fh:
        wr = csv.writer(fh)
        wr.writerow(header)
        wr.writerows(rows)
    return path


def _cycle(names, n=30):
    """Battles in which every model wins and loses (a finite MLE)."""
    rows = []
    for k in range(n):
        i, j = k % len(names), (k + 1) % len(names)
        rows.append([names[i], names[j], "model_a" if k % 3 else "model_b"])
    return rows


def test_a_csv_with_a_utf8_byte_order_mark_reads_like_one_without(tmp_path):
    rows = _cycle(["x", "y", "z"])
    plain = run(_battles_csv(tmp_path / "plain.csv", rows), "--ci", "none", "--format", "json")
    excel = run(
        _battles_csv(tmp_path / "excel.csv", rows, bom=True), "--ci", "none", "--format", "json"
    )
    assert excel.returncode == 0, excel.stderr
    assert json.loads(excel.stdout) == json.loads(plain.stdout)
    text = (tmp_path / "excel.csv").read_text(encoding="utf-8")
    assert text.startswith("\ufeff")
    assert run("-", "--ci", "none", stdin=text).returncode == 0


def test_length_control_with_token_counts_needs_no_answer_texts(tmp_path):
    rng = np.random.default_rng(3)
    rows = []
    for k, (a, b, w) in enumerate(_cycle(["x", "y", "z"], 300)):
        rows.append([a, b, w, int(rng.integers(10, 500)), int(rng.integers(10, 500))])
        rows[-1][2] = "model_a" if rows[-1][3] > rows[-1][4] or k % 4 == 0 else "model_b"
    path = _battles_csv(
        tmp_path / "tokens.csv", rows, header=("model_a", "model_b", "winner", "ta", "tb")
    )
    args = (path, "--style", "length", "--tokens-a", "ta", "--tokens-b", "tb", "--ci", "none")
    out = run(*args, "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["style"][0]["coef"] > 0
    markdown = run(path, "--style", "markdown", "--tokens-a", "ta", "--tokens-b", "tb")
    assert markdown.returncode == 2 and "missing answer text" in markdown.stderr


@pytest.mark.parametrize("name", ["", "NaN", "nan", "None", "null", "NULL", "  "])
def test_empty_like_model_names_are_refused_with_the_line_and_column(tmp_path, name):
    rows = _cycle(["x", "y", "z"]) + [["x", name, "model_a"]]
    out = run(_battles_csv(tmp_path / "names.csv", rows))
    assert out.returncode == 2
    assert f"line {len(rows) + 1}, column 'model_b'" in out.stderr


def test_names_differing_only_in_case_or_space_are_warned_about(tmp_path):
    rows = _cycle(["GPT-4", "claude", "gpt-4", " claude "])
    out = run(_battles_csv(tmp_path / "case.csv", rows), "--ci", "none", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert "warning: names that differ only in case" in out.stderr
    assert "'GPT-4', 'gpt-4'" in out.stderr
    assert "surrounding space are merged into 'claude'" in out.stderr
    models = {r["model"] for r in json.loads(out.stdout)["rows"]}
    assert models == {"GPT-4", "gpt-4", "claude"}
    clean = run(_battles_csv(tmp_path / "clean.csv", _cycle(["a", "b", "c"])), "--ci", "none")
    assert "warning" not in clean.stderr


@pytest.mark.parametrize("ci", ["bootstrap", "sandwich"])
def test_an_interval_the_data_cannot_bound_is_empty_with_a_note_and_the_full_rank_range(
    tmp_path, ci
):
    ties = _battles_csv(tmp_path / "ties.csv", [["x", "y", "tie"]] * 20)
    out = run(ties, "--ci", ci, "--seed", "0", "--format", "json")
    assert out.returncode == 0, out.stderr
    board = json.loads(out.stdout)
    for row in board["rows"]:
        assert row["lower"] is None and row["upper"] is None
        assert (row["rank_lower"], row["rank_upper"]) == (1, 2)
    assert any("cannot bound the ratings of models [x, y]" in n for n in board["notes"])
