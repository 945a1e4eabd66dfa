"""The leaderboard pages on the shipped LLMFAO demo, checked against the ratings engine."""

import csv
import json
import re

import numpy as np
import pytest

import ratings
from tests.support import ROOT, daphne_server, manage, server_env

pytestmark = pytest.mark.browser

DEMO = ROOT / "arena" / "demo" / "data"
WINNER = {"left": ratings.A_WINS, "right": ratings.B_WINS, "tie": ratings.TIE}


def _expected_board(category: str | None = None) -> list[tuple[str, float]]:
    """Point ratings straight from the CSV, by the ratings engine: (name, rating), best first."""
    prompt_type = {}
    with open(DEMO / "prompts.jsonl") as fh:
        for line in fh:
            prompt = json.loads(line)
            prompt_type[str(prompt["id"])] = prompt["type"]
    with open(DEMO / "crowd-comparisons.csv") as fh:
        rows = [
            r
            for r in csv.DictReader(fh)
            if category is None or prompt_type[r["prompt"]] == category
        ]
    names = sorted({r["left"] for r in rows} | {r["right"] for r in rows})
    index = {n: k for k, n in enumerate(names)}
    a = np.array([index[r["left"]] for r in rows])
    b = np.array([index[r["right"]] for r in rows])
    o = np.array([WINNER[r["winner"]] for r in rows])
    board = ratings.leaderboard(len(names), a, b, o, ci="none")
    return [(names[m], float(r)) for m, r in zip(board.model, board.rating, strict=True)]


def _first_row(page):
    cells = page.locator("#board tbody tr").first.locator("td").all_inner_texts()
    return cells[1], float(cells[2])


def test_the_demo_boards_show_the_engines_numbers(tmp_path, page, artifacts_dir):
    env = server_env(tmp_path, ARENA_LEADERBOARD_ROUNDS="100")
    out = manage(env, "serve", "--prepare-only").stdout
    password = re.search(r"password (\S+) \(also kept in", out).group(1)
    overall, knowledge = _expected_board(), _expected_board("knowledge")
    with daphne_server(env, tmp_path / "daphne.log") as base:
        page.goto(base + "/accounts/login/?next=/leaderboard/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/leaderboard/")

        name, rating = _first_row(page)
        assert (name, rating) == (overall[0][0], round(overall[0][1]))
        assert page.locator("#board tbody tr").count() + page.locator(
            "#unranked tbody tr"
        ).count() == len(overall)
        for chart in ("chart-ratings", "chart-winprob", "chart-battles", "chart-time"):
            page.wait_for_function(f"Chart.getChart('{chart}') !== undefined")
        page.screenshot(path=str(artifacts_dir / "leaderboard-overall.png"), full_page=True)

        page.select_option("select[name=category]", "knowledge")
        page.wait_for_url(re.compile(r".*category=knowledge.*"))
        name, rating = _first_row(page)
        assert (name, rating) == (knowledge[0][0], round(knowledge[0][1]))
        page.screenshot(path=str(artifacts_dir / "leaderboard-knowledge.png"), full_page=True)

        (first, r1), (second, r2) = overall[0], overall[1]
        page.goto(base + "/leaderboard/compare/")
        page.select_option("select[name=a]", first)
        page.select_option("select[name=b]", second)
        page.get_by_role("button", name="Compare").click()
        predicted = 1 / (1 + 10 ** ((r2 - r1) / 400))
        assert page.locator("#pair-predicted").inner_text() == f"{100 * predicted:.1f}%"
        assert first in page.locator("#pair-verdict").inner_text()
        page.screenshot(path=str(artifacts_dir / "leaderboard-a-vs-b.png"), full_page=True)
