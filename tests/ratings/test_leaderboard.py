"""Leaderboards: fields, ranks, min-votes, counts input, categories."""

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import ratings
from ratings import A_WINS, B_WINS, BOTH_BAD, TIE, aggregate, leaderboard, leaderboards_by_category
from tests.ratings.helpers import LLMFAO, load_pairs, simulate_battles


@pytest.fixture(scope="module")
def llmfao():
    return load_pairs(LLMFAO)


def test_a_board_has_one_row_per_model_ordered_by_rating_with_all_fields(llmfao):
    names, a, b, o = llmfao
    board = leaderboard(len(names), a, b, o, n_resamples=200, rng=0)
    assert len(board) == len(names)
    assert np.all(np.diff(board.rating) <= 0)
    assert np.all(board.lower < board.rating) and np.all(board.rating < board.upper)
    assert_array_equal(board.rank, ratings._ranks.competition_rank(board.rating))
    assert np.all(board.rank_ub <= board.rank)
    assert np.all((board.rank_lower <= board.rank) & (board.rank <= board.rank_upper))
    assert np.all((board.rank_lower <= board.rank_median) & (board.rank_median <= board.rank_upper))
    assert_array_equal(board.votes, board.wins + board.losses + board.ties)
    row = board.rows()[0]
    assert set(row) == set(ratings.Leaderboard.COLUMNS)
    json.dumps(board.to_dict())


def test_the_same_seed_gives_the_same_board(llmfao):
    names, a, b, o = llmfao
    one = leaderboard(len(names), a, b, o, n_resamples=100, rng=7)
    two = leaderboard(len(names), a, b, o, n_resamples=100, rng=7)
    assert one.rows() == two.rows()


def test_models_below_min_votes_are_listed_but_not_ranked(llmfao):
    names, a, b, o = llmfao
    board = leaderboard(len(names), a, b, o, ci="sandwich", min_votes=200, rng=0)
    low = board.votes < 200
    assert low.any() and not low.all()
    assert np.all(board.rank[low] == 0) and np.all(board.rank[~low] > 0)
    assert sorted(board.rank[~low]) == list(range(1, (~low).sum() + 1))
    rows = board.rows()
    assert all(r["rank"] is None for r, flag in zip(rows, low, strict=True) if flag)


def test_models_without_battles_are_left_out():
    a, b = np.array([0, 1, 2, 0]), np.array([1, 2, 0, 2])
    o = np.array([A_WINS, A_WINS, A_WINS, TIE])
    board = leaderboard(5, a, b, o, ci="none")
    assert sorted(board.model) == [0, 1, 2]
    assert board.notes == ()


def test_counts_input_gives_the_same_board_as_raw_battles(llmfao):
    names, a, b, o = llmfao
    raw = leaderboard(len(names), a, b, o, n_resamples=100, rng=3)
    counts = ratings.leaderboard_from_counts(aggregate(len(names), a, b, o), n_resamples=100, rng=3)
    assert raw.rows() == counts.rows()


def test_ci_none_collapses_intervals_and_rank_ranges(llmfao):
    names, a, b, o = llmfao
    board = leaderboard(len(names), a, b, o, ci="none")
    assert_array_equal(board.lower, board.rating)
    assert_array_equal(board.rank_ub, board.rank)
    assert board.n_resamples == 0


def test_davidson_and_elo_boards(llmfao):
    names, a, b, o = llmfao
    dav = leaderboard(len(names), a, b, o, method="davidson", ci="sandwich", rng=0)
    assert dav.tie_lower < dav.tie < dav.tie_upper
    elo = leaderboard(len(names), a, b, o, method="elo", n_resamples=20, rng=0)
    assert_allclose(np.sort(elo.rating), np.sort(ratings.online_elo(len(names), a, b, o)))
    with pytest.raises(ValueError, match="sandwich"):
        leaderboard(len(names), a, b, o, method="elo", ci="sandwich")


def test_an_anchor_with_no_battles_is_rejected():
    with pytest.raises(ValueError, match="no battles"):
        leaderboard(4, [0, 1], [1, 2], [A_WINS, TIE], anchor={3: 1000}, ci="none")


@pytest.fixture(scope="module")
def categories():
    rng = np.random.default_rng(5)
    theta = np.linspace(-1, 1, 8)
    a, b, o = simulate_battles(theta, 6000, rng)
    o[rng.random(o.size) < 0.05] = BOTH_BAD
    member = rng.random((a.size, 3)) < [0.5, 0.3, 0.0]
    return theta, a, b, o, member


def test_every_category_and_the_overall_board_are_fitted_in_one_call(categories):
    theta, a, b, o, member = categories
    boards = leaderboards_by_category(
        8, a, b, o, member, category_names=["code", "math", "empty"], ci="sandwich", rng=0
    )
    assert list(boards.categories) == ["code", "math"]
    overall = leaderboard(8, a, b, o, ci="sandwich")
    assert_allclose(boards.overall.rating, overall.rating)
    rows = member[:, 1]
    math = leaderboard(8, a[rows], b[rows], o[rows], ci="sandwich")
    assert_allclose(boards.categories["math"].rating, math.rating)
    json.dumps(boards.to_dict())


def test_category_boards_apply_min_votes_per_board(categories):
    theta, a, b, o, member = categories
    boards = leaderboards_by_category(8, a, b, o, member, ci="none", min_votes=900, rng=0)
    assert boards.overall.ranked.all()
    assert not boards.categories["1"].ranked.any()


def test_a_battle_may_carry_one_integer_category(categories):
    theta, a, b, o, _ = categories
    cat = np.where(a % 2 == 0, 0, 1)
    boards = leaderboards_by_category(8, a, b, o, cat, ci="none")
    assert set(boards.categories) == {"0", "1"}


def test_an_anchor_missing_from_a_category_is_dropped_there_with_a_note():
    a = np.array([0, 1, 2, 0, 1, 2])
    b = np.array([1, 2, 0, 1, 2, 0])
    o = np.array([A_WINS, A_WINS, B_WINS, TIE, TIE, A_WINS])
    member = np.array(
        [[True, True, True, True, True, True], [False, True, False, False, True, False]]
    ).T
    boards = leaderboards_by_category(3, a, b, o, member, ci="none", anchor={0: 1200})
    assert boards.overall.rating[boards.overall.model == 0][0] == 1200
    assert boards.categories["0"].rating[boards.categories["0"].model == 0][0] == 1200
    assert not any("anchor" in n for n in boards.categories["0"].notes)
    without = boards.categories["1"]
    assert sorted(without.model) == [1, 2]
    assert any("anchor model 0 has no battles" in n for n in without.notes)


@pytest.mark.parametrize("method", ["bt", "davidson", "elo"])
def test_no_battles_give_an_empty_board_with_a_note(method):
    board = leaderboard(4, [], [], [], method=method, n_resamples=10)
    assert len(board) == 0 and board.rows() == []
    assert board.notes == ("no battles to rate",)
    json.dumps(board.to_dict())


def test_one_battle_gives_no_interval_but_a_note_and_the_full_rank_range():
    board = ratings.leaderboard(2, [0], [1], [ratings.A_WINS], rng=0, n_resamples=50)
    assert np.isnan(board.lower).all() and np.isnan(board.upper).all()
    assert not board.estimable.any()
    assert_array_equal(board.rank_lower, [1, 1]) and assert_array_equal(board.rank_upper, [2, 2])
    assert [r["lower"] for r in board.rows()] == [None, None]
    assert any("cannot bound the ratings of models [0, 1]" in n for n in board.notes)
    wide = ratings.leaderboard(2, [0, 1] * 20, [1, 0] * 20, [ratings.A_WINS] * 40, rng=0)
    assert wide.estimable.all() and not any("cannot bound" in n for n in wide.notes)
