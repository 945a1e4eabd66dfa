"""Online Elo: known answers from Evalica and order dependence."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ratings import A_WINS, B_WINS, BOTH_BAD, TIE, online_elo
from tests.ratings.helpers import GOLDEN, LLMFAO, golden, load_pairs

CASES = [
    {"desc": "Evalica simple", "name": "simple", "path": GOLDEN / "simple.csv"},
    {"desc": "Evalica food", "name": "food", "path": GOLDEN / "food.csv"},
    {"desc": "LLMFAO crowd votes", "name": "llmfao", "path": LLMFAO},
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_it_matches_evalicas_golden_elo(case):
    names, a, b, o = load_pairs(case["path"])
    gold = golden(case["name"], "elo")
    assert_allclose(online_elo(len(names), a, b, o), [gold[m] for m in names], atol=1e-9)


def test_it_depends_on_the_order_of_the_battles():
    a, b = np.array([0, 0, 1]), np.array([1, 1, 0])
    o = np.array([A_WINS, B_WINS, A_WINS])
    assert not np.allclose(online_elo(2, a, b, o), online_elo(2, a[::-1], b[::-1], o[::-1]))


def test_one_win_moves_k_over_two_points_between_equal_models():
    r = online_elo(3, [0], [1], [A_WINS], k=32)
    assert_allclose(r, [1016.0, 984.0, 1000.0])


def test_both_bad_is_a_tie_or_dropped():
    tie = online_elo(2, [0, 0], [1, 1], [A_WINS, TIE])
    assert_allclose(online_elo(2, [0, 0], [1, 1], [A_WINS, BOTH_BAD]), tie)
    dropped = online_elo(2, [0, 0], [1, 1], [A_WINS, BOTH_BAD], both_bad="drop")
    assert_allclose(dropped, online_elo(2, [0], [1], [A_WINS]))
    assert online_elo(2, [0], [1], [B_WINS])[1] > 1000
