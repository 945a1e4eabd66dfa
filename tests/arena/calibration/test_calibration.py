"""Calibration of judges against human votes: report, JSON API, page, and the LLMFAO evidence."""

import csv
import io
import json
import re
from collections import Counter, defaultdict

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import include, path
from numpy.testing import assert_allclose
from scipy import stats

from arena.calibration.report import calibration_report
from arena.demo.load import DEMO_DIR
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
from tests.factories import make_contestant

# Until arena/urls.py includes arena.calibration_views, the tests route through this module.
urlpatterns = [path("", include("arena.urls")), path("", include("arena.calibration.urls"))]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

ATOL = 1e-12
N = 200  # bootstrap resamples in the small tests
B = 20  # leaderboard bootstrap rounds in the small tests (tiny boards refit many rounds)


@pytest.fixture(autouse=True)
def _small_reports(settings):
    """Stored reports (the pages' and the API's) with the small tests' resamples."""
    settings.ARENA_CALIBRATION_RESAMPLES = N
    settings.ARENA_CALIBRATION_BOARD_RESAMPLES = B


def _served(client, url, params, capture):
    """GET once (which queues the reports), run the queued tasks, GET again."""
    with capture(execute=True):
        client.get(url, params)
    return client.get(url, params)


class Arena:
    """Small hand-made arena data: three models, prompts with stored answers."""

    def __init__(self):
        self.x, self.y, self.z = (
            make_contestant(name=name, kind=Contestant.Kind.RECORDED)
            for name in ("Xenon", "Yarrow", "Zircon")
        )
        self.prompt_set = PromptSet.objects.create(name="Small set")
        self.coding = Category.objects.create(slug="coding", name="Coding")
        self.writing = Category.objects.create(slug="writing", name="Writing")
        self.items = [
            PromptItem.objects.create(prompt_set=self.prompt_set, text=f"Prompt {k}")
            for k in range(2)
        ]
        self.answers = {}
        for item in self.items:
            for words, contestant in ((5, self.x), (20, self.y), (40, self.z)):
                self.answers[item.pk, contestant.pk] = Answer.objects.create(
                    item=item, contestant=contestant, text=" ".join(["word"] * words)
                )
        self.judge = Judge.objects.create(
            name="Tiny judge", verdict_format=Judge.VerdictFormat.THREE
        )

    def battle(self, item, a, b, outcome=None, *, void="", category=None):
        battle = Battle.objects.create(
            contestant_a=a,
            contestant_b=b,
            mode=Battle.Mode.EVALSET,
            status=Battle.Status.VOTED if outcome else Battle.Status.READY,
            prompt_item=item,
            answer_a=self.answers[item.pk, a.pk],
            answer_b=self.answers[item.pk, b.pk],
        )
        if outcome:
            Vote.objects.create(battle=battle, outcome=outcome, void_reason=void)
        if category:
            BattleCategory.objects.create(battle=battle, category=category)
        return battle

    def judged(self, battle, verdict, order="ab"):
        return Judgement.objects.create(
            judge=self.judge, battle=battle, order=order, verdict=verdict
        )


@pytest.fixture
def arena():
    """Four pairs with a known answer (frames: each pair's first battle).

    P1 (prompt 0, X-Y): votes X>Y, then on a swapped battle X>Y again, then a tie -> majority
        A (X); the judge, shown the swapped battle, picks X -> A. Agree.
    P2 (prompt 0, X-Z): votes B, B (and a void A) -> B; the judge says A. Disagree.
    P3 (prompt 0, Y-Z): both_bad, A -> split, read as a tie; the judge says tie. Agree.
    P4 (prompt 1, Y-X): vote A; the judge says "first shown wins" in both orders, which is
        inconsistent -> tie. Disagree.
    """
    data = Arena()
    i0, i1 = data.items
    x, y, z = data.x, data.y, data.z
    b1 = data.battle(i0, x, y, "a", category=data.coding)
    data.judged(b1, "")  # a verdict that did not parse
    b2 = data.battle(i0, y, x, "b", category=data.coding)
    data.judged(b2, "B")
    data.battle(i0, x, y, "tie", category=data.coding)
    b4 = data.battle(i0, x, z, "b", category=data.writing)
    data.judged(b4, "A")
    data.battle(i0, x, z, "b", category=data.writing)
    data.battle(i0, x, z, "a", void="identity leaked", category=data.writing)
    b6 = data.battle(i0, y, z, "both_bad", category=data.writing)
    data.judged(b6, "tie")
    data.battle(i0, y, z, "a", category=data.writing)
    b8 = data.battle(i1, y, x, "a", category=data.writing)
    data.judged(b8, "A", "ab")
    data.judged(b8, "A", "ba")
    lonely = data.battle(i1, x, z)  # judged, but nobody voted on X-Z for prompt 1
    data.judged(lonely, "B")
    return data


def test_it_computes_agreement_and_kappa_by_hand(arena):
    desc = "4 pairs: confusion rows human majority A/B/tie, columns judge"
    report = calibration_report(judge=arena.judge, n_resamples=N, board_resamples=B)

    assert report["confusion"]["counts"] == [[1, 0, 1], [1, 0, 0], [0, 0, 1]], desc
    agreement = report["agreement"]
    assert agreement["n_pairs"] == 4
    assert_allclose(agreement["with_ties"]["value"], 2 / 4, atol=ATOL)
    assert_allclose(agreement["without_ties"]["value"], 1 / 2, atol=ATOL)
    # p_o = 1/2; p_e = 2/4 * 2/4 + 1/4 * 0 + 1/4 * 2/4 = 3/8; kappa = (1/2 - 3/8) / (5/8).
    assert_allclose(agreement["kappa"]["value"], 0.2, atol=ATOL)
    low, high = agreement["with_ties"]["lower"], agreement["with_ties"]["upper"]
    assert 0 <= low <= 0.5 <= high <= 1

    # Leave-one-out: P1's three votes each disagree with the others (tie, tie, A); P2's two
    # B votes agree; P3's both_bad/A split never agrees. 2 of 7.
    baseline = report["human_baseline"]
    assert (baseline["n_pairs"], baseline["n_comparisons"]) == (3, 7)
    assert_allclose(baseline["with_ties"]["value"], 2 / 7, atol=ATOL)

    assert report["data"] == {
        "pairs": 4,
        "human_votes": 8,
        "pairs_with_several_votes": 3,
        "battles_judged": 4,
        "judged_orders": {"ab_only": 3, "ba_only": 0, "both": 1},
        "parse_failures": 1,
        "judgements_outside_pairs": 1,
    }
    assert report["verdict"] == (
        "Tiny judge agrees with the human majority on 50.0% of pairs "
        f"(95% CI {100 * low:.1f}–{100 * high:.1f}%); people agree with each other on 28.6%."
    )


def test_it_measures_position_as_shown_and_per_category(arena):
    report = calibration_report(judge=arena.judge, n_resamples=N, board_resamples=B)
    position = report["position"]
    # As shown: votes a, b, tie, b, b, both_bad, a, a; verdicts B, A, tie, A (ab), A (ba).
    assert (
        position["human_first"]["n_first"],
        position["human_first"]["n_second"],
        position["human_first"]["n_ties"],
    ) == (3, 3, 2)
    assert_allclose(position["human_first"]["first_share"]["value"], 0.5, atol=ATOL)
    judge_first = position["judge_first"]
    assert (judge_first["n_first"], judge_first["n_second"], judge_first["n_ties"]) == (3, 1, 1)
    assert_allclose(judge_first["first_share"]["value"], 0.75, atol=ATOL)
    # The one battle judged in both orders flipped with the order.
    assert position["consistency_n"] == 1
    assert position["consistency"]["value"] == 0.0
    assert not any(m["what"] == "Position consistency" for m in report["not_measured"])

    by_slug = {row["slug"]: row for row in report["categories"]}
    assert by_slug["coding"]["n_pairs"] == 1 and by_slug["writing"]["n_pairs"] == 3
    assert by_slug["coding"]["judge"]["with_ties"]["value"] == 1.0
    assert_allclose(by_slug["writing"]["judge"]["with_ties"]["value"], 1 / 3, atol=ATOL)

    assert report["length"]["unit"] == "estimated tokens"
    board = report["leaderboard"]
    assert board["n_models"] == 3 and board["reference"] == "human board"
    assert {row["contestant"] for row in board["models"]} == {"Xenon", "Yarrow", "Zircon"}
    for name in ("raw", "debiased"):
        assert set(board[name]) >= {"spearman", "kendall", "separability", "brier"}
    json.dumps(report, allow_nan=False)  # JSON-ready: no NaN, no numpy types


def _swap_sides(battles):
    """Describe each battle the other way round: sides, answers, vote and verdicts swapped."""
    swap = {"a": "b", "b": "a", "A": "B", "B": "A"}
    for battle in battles:
        battle.contestant_a, battle.contestant_b = battle.contestant_b, battle.contestant_a
        battle.answer_a, battle.answer_b = battle.answer_b, battle.answer_a
        battle.save()
        for vote in Vote.objects.filter(battle=battle):
            vote.outcome = swap.get(vote.outcome, vote.outcome)
            vote.save()
        for judgement in battle.judgements.all():
            judgement.verdict = swap.get(judgement.verdict, judgement.verdict)
            judgement.save()


def test_swapping_sides_keeps_agreement_and_a_global_swap_keeps_kappa(arena):
    before = calibration_report(judge=arena.judge, n_resamples=N, board_resamples=B)

    # One pair (P2) the other way round: its frame turns with it, agreement stays; kappa
    # may move, since the judge's and the people's A/B shares change.
    _swap_sides(Battle.objects.filter(prompt_item=arena.items[0], contestant_b=arena.z))
    after = calibration_report(judge=arena.judge, n_resamples=N, board_resamples=B)
    for key in ("with_ties", "without_ties"):
        assert after["agreement"][key] == before["agreement"][key], key
    assert after["human_baseline"]["with_ties"] == before["human_baseline"]["with_ties"]

    # Every battle the other way round: A and B swap names everywhere, nothing else changes.
    _swap_sides(Battle.objects.all())
    again = calibration_report(judge=arena.judge, n_resamples=N, board_resamples=B)
    swapped = np.array(after["confusion"]["counts"])[[1, 0, 2]][:, [1, 0, 2]]
    assert again["confusion"]["counts"] == swapped.tolist()
    assert again["agreement"] == after["agreement"]
    assert again["human_baseline"] == after["human_baseline"]
    assert again["categories"] == after["categories"]
    first, first_after = again["position"]["human_first"], after["position"]["human_first"]
    assert (first["n_first"], first["n_second"]) == (
        first_after["n_second"],
        first_after["n_first"],
    )


def test_a_judge_without_verdicts_on_voted_pairs_is_not_measured(arena):
    silent = Judge.objects.create(name="Silent judge")
    report = calibration_report(judge="Silent judge")
    assert report["judge"]["id"] == silent.pk
    assert report["agreement"] is None and report["leaderboard"] is None
    assert report["verdict"].startswith("Silent judge has no parsed verdict")
    assert report["not_measured"][0]["what"] == "Everything"

    every = calibration_report(judge=None, n_resamples=N, board_resamples=B)
    assert [r["judge"]["name"] for r in every["judges"]] == ["Silent judge", "Tiny judge"]
    with pytest.raises(Judge.DoesNotExist):
        calibration_report(judge="Nobody")


def test_it_pairs_live_battles_by_their_first_prompt():
    x, y = (make_contestant(name=n) for n in ("Xenon", "Yarrow"))
    judge = Judge.objects.create(name="Live judge")

    def live(a, b, prompt, outcome, answers=("short", "a much longer answer here")):
        battle = Battle.objects.create(contestant_a=a, contestant_b=b, status="voted")
        for side, text in zip("ab", answers, strict=True):
            Turn.objects.create(battle=battle, index=0, side=side, prompt=prompt, text=text)
        Vote.objects.create(battle=battle, outcome=outcome)
        return battle

    first = live(x, y, "Tell me a joke", "a")
    live(y, x, "Tell me a joke", "b")  # the same pair, the other way round: X wins again
    live(x, y, "Another prompt", "b")  # another pair, never judged
    Judgement.objects.create(judge=judge, battle=first, order="ab", verdict="A>B")

    report = calibration_report(judge=judge, n_resamples=N, board_resamples=B)
    assert (report["data"]["pairs"], report["data"]["human_votes"]) == (1, 2)
    assert report["confusion"]["counts"] == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert report["human_baseline"]["with_ties"]["value"] == 1.0
    not_measured = {m["what"] for m in report["not_measured"]}
    assert "Position consistency" in not_measured
    assert "Agreement per category" in not_measured


# --------------------------------------------------------------------------------------------
# API and page


def test_the_api_answers_401_in_json_without_a_session(client, arena):
    response = client.get("/api/calibration/")
    assert response.status_code == 401
    assert response.json()["error"].startswith("Sign in first")


def test_the_api_gives_every_judge_or_one_and_404_for_an_unknown_name(
    client, alice, arena, django_capture_on_commit_callbacks
):
    Judge.objects.create(name="Silent judge")
    client.force_login(alice)
    every = _served(client, "/api/calibration/", {}, django_capture_on_commit_callbacks)
    assert every.status_code == 200
    names = [r["judge"]["name"] for r in every.json()["judges"]]
    assert names == ["Silent judge", "Tiny judge"]

    one = client.get("/api/calibration/", {"judge": "Tiny judge"}).json()["judges"]
    assert len(one) == 1
    assert set(one[0]) == {
        "judge",
        "settings",
        "data",
        "verdict",
        "not_measured",
        "agreement",
        "confusion",
        "human_baseline",
        "categories",
        "position",
        "length",
        "leaderboard",
    }
    assert one[0]["agreement"]["with_ties"]["value"] == 0.5
    assert set(one[0]["agreement"]["kappa"]) == {"value", "lower", "upper"}

    missing = client.get("/api/calibration/", {"judge": "Nobody"})
    assert missing.status_code == 404
    assert missing.json() == {"error": "No judge is named 'Nobody'."}


def test_the_page_needs_a_session_and_shows_the_verdict_first(
    client, alice, arena, django_capture_on_commit_callbacks
):
    assert client.get("/calibration/").status_code == 302
    client.force_login(alice)
    params = {"judge": "Tiny judge"}
    response = _served(client, "/calibration/", params, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    html = response.content.decode()
    verdict = calibration_report(judge=arena.judge, n_resamples=N, board_resamples=B)["verdict"]
    assert f'<p class="verdict">{verdict}</p>' in html
    assert html.index(verdict) < html.index("Confusion matrix")
    for text in ("Per category", "Leaderboard level", "Raw judge board", "Debiased judge board"):
        assert text in html
    assert client.get("/calibration/", {"judge": "Nobody"}).status_code == 404


# --------------------------------------------------------------------------------------------
# LLMFAO: the shipped demo against an independent computation straight from the CSV files

CODES = {"left": 0, "right": 1, "tie": 2}


def _rows(name):
    with open(DEMO_DIR / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _plurality(votes):
    counts = Counter(votes).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return 2
    return counts[0][0]


def _kappa(table):
    table = np.asarray(table, dtype=float)
    total = table.sum()
    observed = np.trace(table) / total
    expected = (table.sum(axis=1) * table.sum(axis=0)).sum() / total**2
    return (observed - expected) / (1 - expected)


def _bt_mm(names, first, second, score):
    """Bradley-Terry by Hunter's MM iterations, ties as half a win; log-strengths by name."""
    index = {name: k for k, name in enumerate(sorted(set(first) | set(second)))}
    i = np.array([index[n] for n in first])
    j = np.array([index[n] for n in second])
    wins = np.bincount(i, score, len(index)) + np.bincount(j, 1 - score, len(index))
    games = np.zeros((len(index), len(index)))
    np.add.at(games, (i, j), 1.0)
    games += games.T
    p = np.ones(len(index))
    for _ in range(20000):
        new = wins / (games / (p[:, None] + p[None, :])).sum(axis=1)
        new /= np.exp(np.log(new).mean())
        if np.max(np.abs(new - p)) < 1e-13:
            break
        p = new
    return np.array([np.log(p[index[name]]) for name in names])


def _independent(judge_file):
    """Figures from the CSV files alone, pair = LLMFAO comparison id, model_x shown first."""
    crowd = _rows("crowd-comparisons.csv")
    verdicts = {row["id"]: CODES[row["winner"]] for row in _rows(judge_file)}
    votes = defaultdict(list)
    for row in crowd:
        votes[row["id"]].append(CODES[row["winner"]])
    table = np.zeros((3, 3))
    for pair, pair_votes in votes.items():
        table[_plurality(pair_votes), verdicts[pair]] += 1
    loo = []
    for pair_votes in votes.values():
        for k, vote in enumerate(pair_votes):
            others = pair_votes[:k] + pair_votes[k + 1 :]
            if others:
                loo.append(vote == _plurality(others))
    tokens = {
        (r["model"], r["prompt"]): len(re.findall(r"\w+|[^\w\s]", r["result"]))
        for r in map(json.loads, (DEMO_DIR / "results.jsonl").read_text().splitlines())
    }
    judged = {row["id"]: row for row in _rows(judge_file)}
    longer = [
        (tokens[int(r["model_x"]), int(r["prompt"])] > tokens[int(r["model_y"]), int(r["prompt"])])
        == (r["winner"] == "left")
        for r in judged.values()
        if r["winner"] != "tie"
        and tokens[int(r["model_x"]), int(r["prompt"])]
        != tokens[int(r["model_y"]), int(r["prompt"])]
    ]
    human_winners = Counter(row["winner"] for row in crowd)
    judge_winners = Counter(row["winner"] for row in judged.values())
    scores = {"left": 1.0, "right": 0.0, "tie": 0.5}
    return {
        "agreement": np.trace(table) / table.sum(),
        "without_ties": np.trace(table[:2, :2]) / table[:2, :2].sum(),
        "kappa": _kappa(table),
        "confusion": table.astype(int).tolist(),
        "loo": np.mean(loo),
        "human_first": human_winners["left"] / (human_winners["left"] + human_winners["right"]),
        "judge_first": judge_winners["left"] / (judge_winners["left"] + judge_winners["right"]),
        "judge_longer": np.mean(longer),
        "human_board": lambda names: _bt_mm(
            names,
            [r["left"] for r in crowd],
            [r["right"] for r in crowd],
            np.array([scores[r["winner"]] for r in crowd]),
        ),
        "judge_board": lambda names: _bt_mm(
            names,
            [r["left"] for r in judged.values()],
            [r["right"] for r in judged.values()],
            np.array([scores[r["winner"]] for r in judged.values()]),
        ),
    }


def _line(label, estimate, scale=100, unit="%"):
    value, low, high = (estimate[k] * scale for k in ("value", "lower", "upper"))
    digits = 2 if unit else 3
    return f"  {label:<44} {value:7.{digits}f}{unit} [{low:.{digits}f}, {high:.{digits}f}]"


def test_llmfao_calibration_matches_an_independent_computation_from_the_csv_files():
    call_command("load_demo", stdout=io.StringIO())
    every = calibration_report(judge=None)
    reports = {r["judge"]["name"]: r for r in every["judges"]}
    # The replay judge has judged nothing until it is run: its report measures nothing.
    assert set(reports) == {"GPT-4 (LLMFAO)", "GPT-3 (LLMFAO)", "GPT-4 replay (LLMFAO)"}
    assert reports["GPT-4 replay (LLMFAO)"]["agreement"] is None

    for name, filename in (
        ("GPT-4 (LLMFAO)", "gpt4-crowd-comparisons.csv"),
        ("GPT-3 (LLMFAO)", "gpt3-crowd-comparisons.csv"),
    ):
        report, expected = reports[name], _independent(filename)
        assert report["data"]["pairs"] == 2139 and report["data"]["human_votes"] == 8931
        assert report["confusion"]["counts"] == expected["confusion"]
        agreement = report["agreement"]
        for key, want in (
            ("with_ties", expected["agreement"]),
            ("without_ties", expected["without_ties"]),
            ("kappa", expected["kappa"]),
        ):
            assert_allclose(agreement[key]["value"], want, atol=ATOL)
            assert agreement[key]["lower"] < want < agreement[key]["upper"]
        assert_allclose(report["human_baseline"]["with_ties"]["value"], expected["loo"], atol=ATOL)
        position = report["position"]
        assert_allclose(position["human_first"]["first_share"]["value"], expected["human_first"])
        assert_allclose(position["judge_first"]["first_share"]["value"], expected["judge_first"])
        assert position["consistency"] is None
        assert any(
            m["why"].startswith("not measured: single order") for m in report["not_measured"]
        )
        length = report["length"]
        assert_allclose(length["judge"]["longer_share"]["value"], expected["judge_longer"])
        assert length["judge"]["n_unknown_length"] == 0

        board = report["leaderboard"]
        models = [row["contestant"] for row in board["models"]]
        assert board["n_models"] == len(models) == 59
        human = expected["human_board"](models)
        judge = expected["judge_board"](models)
        spearman = stats.spearmanr(judge, human).statistic
        kendall = stats.kendalltau(judge, human).statistic
        assert_allclose(board["raw"]["spearman"], spearman, atol=1e-9)
        assert_allclose(board["raw"]["kendall"], kendall, atol=1e-9)
        reported = np.array([row["human"]["rating"] for row in board["models"]])
        assert stats.spearmanr(reported, human).statistic > 0.9999

        print(f"\n{name}: {report['verdict']}")
        for label, estimate in (
            ("agreement with majority (ties included)", agreement["with_ties"]),
            ("agreement without ties", agreement["without_ties"]),
            ("people leave-one-out (ties included)", report["human_baseline"]["with_ties"]),
            ("people leave-one-out without ties", report["human_baseline"]["without_ties"]),
            ("first-position share, judge", position["judge_first"]["first_share"]),
            ("first-position share, people", position["human_first"]["first_share"]),
            ("longer-answer share, judge", length["judge"]["longer_share"]),
            ("longer-answer share, people", length["humans"]["longer_share"]),
        ):
            print(_line(label, estimate))
        for label, estimate in (
            ("Cohen's kappa", agreement["kappa"]),
            ("length slope, judge", length["judge"]["slope"]),
            ("length slope, people", length["humans"]["slope"]),
        ):
            print(_line(label, estimate, 1, ""))
        for key in ("raw", "debiased"):
            b = board[key]
            print(
                f"  board {key:<9} Spearman {b['spearman']:.3f} Kendall {b['kendall']:.3f} "
                f"separability {b['separability']:.3f} agreement-with-CI "
                f"{b['agreement_with_ci']:.3f} Brier {b['brier']:.4f}"
            )
        print(f"  human board separability {board['human_separability']:.3f}; {board['notes']}")
