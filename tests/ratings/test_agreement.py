"""Tests for ratings.agreement.

Real data (copied under tests/data with their licences):
- arena-hard-v0.1-stats/ and chatbot-arena-20240329/: lmarena/arena-hard-auto notebook data,
  Apache-2.0 (LICENSE beside the files).
- LLMFAO comparisons by Dmitry Ustalov and llmonitor.com, CC BY 4.0: the demo's copy in
  arena/demo/data (LICENSE.CC-BY there).
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import optimize, special

from ratings import A_WINS, B_WINS, TIE
from ratings.agreement import (
    NO_MAJORITY,
    VERDICT_LABELS,
    agreement_with_ci,
    brier_score,
    combine_orders,
    first_position_preference,
    human_agreement,
    intervals_overlap,
    judge_agreement,
    length_bias,
    majority_vote,
    outcome_scores,
    position_consistency,
    rank_correlation,
    score_outcomes,
    separability,
    verdict_scores,
    win_probabilities,
)
from tests.ratings.helpers import LLMFAO_DIR

ATOL = 1e-12
RTOL = 1e-12
DATA = Path(__file__).resolve().parents[1] / "data"
A, B, T = A_WINS, B_WINS, TIE

# --------------------------------------------------------------------------------------------
# A tiny hand-made panel: five items, human votes and one judge verdict each.
#   item 0: A A B    -> majority A; judge A (agree)
#   item 1: B B      -> majority B; judge A (disagree)
#   item 2: T T A    -> majority T; judge T (agree)
#   item 3: A B      -> no majority: tie (or excluded); judge B
#   item 4: B T B A  -> majority B; judge B (agree)
ITEMS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 4])
VOTES = np.array([A, A, B, B, B, T, T, A, A, B, B, T, B, A])
JUDGE = np.array([A, A, T, B, B])

# Each case: desc, no_majority, agreement, agreement without ties, kappa, confusion (rows:
# human majority, columns: judge), items used. Worked by hand in the comments.
JUDGE_CASES = [
    {
        "desc": "split item read as a tie",
        "no_majority": "tie",
        # p_o = 3/5; marginals majority (1, 2, 2)/5, judge (2, 2, 1)/5, p_e = 8/25.
        "agreement": 3 / 5,
        "no_ties": 2 / 3,
        "kappa": (3 / 5 - 8 / 25) / (1 - 8 / 25),  # = 7/17
        "confusion": [[1, 0, 0], [1, 1, 0], [0, 1, 1]],
        "n_items": 5,
    },
    {
        "desc": "split item excluded",
        "no_majority": "exclude",
        # p_o = 3/4; marginals majority (1, 2, 1)/4, judge (2, 1, 1)/4, p_e = 5/16.
        "agreement": 3 / 4,
        "no_ties": 2 / 3,
        "kappa": (3 / 4 - 5 / 16) / (1 - 5 / 16),  # = 7/11
        "confusion": [[1, 0, 0], [1, 1, 0], [0, 0, 1]],
        "n_items": 4,
    },
]

# Leave-one-out on the same votes, each vote against the majority of the others:
#   item 0: A->{A,B} split, A->{A,B} split, B->{A,A}=A      (tie rule: 0 of 3)
#   item 1: B->{B}=B twice                                  (2 of 2)
#   item 2: T->{T,A} split twice, A->{T,T}=T                (tie rule: 2 of 3)
#   item 3: A->{B}=B, B->{A}=A                              (0 of 2)
#   item 4: B->{T,B,A} split twice, T->{B,B,A}=B, A->{B,T,B}=B  (0 of 4)
HUMAN_CASES = [
    {
        "desc": "split others read as a tie",
        "no_majority": "tie",
        "agreement": 4 / 14,
        # Non-tie comparisons: (A,B) x2, (B,A) x2, (B,B) x2 -> 2 of 6.
        "no_ties": 2 / 6,
        "confusion": [[0, 2, 0], [2, 2, 1], [3, 2, 2]],
        "n_comparisons": 14,
    },
    {
        "desc": "split others excluded",
        "no_majority": "exclude",
        # item 0: (A,B); item 1: (B,B) x2; item 2: (T,A); item 3: (B,A), (A,B);
        # item 4: (B,T), (B,A).
        "agreement": 2 / 8,
        "no_ties": 2 / 6,
        "confusion": [[0, 2, 0], [2, 2, 1], [1, 0, 0]],
        "n_comparisons": 8,
    },
]


def brute_force_kappa(rater, reference):
    """Cohen's kappa as 1 - observed / chance disagreement, chance over all n^2 pairings."""
    n = len(rater)
    observed = sum(rater[i] != reference[i] for i in range(n)) / n
    chance = sum(rater[i] != reference[k] for i in range(n) for k in range(n)) / n**2
    return 1 - observed / chance


def flip(outcomes):
    """Swap A and B in outcome codes."""
    return np.choose(outcomes, [B, A, T])


# --------------------------------------------------------------------------------------------
# Scales


def test_it_maps_the_five_level_scale_to_evenly_spaced_scores():
    assert_array_equal(verdict_scores(list(VERDICT_LABELS)), [1.0, 0.75, 0.5, 0.25, 0.0])
    assert_array_equal(score_outcomes(verdict_scores(list(VERDICT_LABELS))), [A, A, T, B, B])
    with pytest.raises(ValueError, match="`labels`"):
        verdict_scores(["A>B", "A>>>B"])


def test_it_round_trips_outcome_codes_through_scores():
    codes = np.array([A, B, T, T, A])
    assert_array_equal(outcome_scores(codes), [1.0, 0.0, 0.5, 0.5, 1.0])
    assert_array_equal(score_outcomes(outcome_scores(codes)), codes)


# --------------------------------------------------------------------------------------------
# Agreement with the human majority


@pytest.mark.parametrize("no_majority", ["tie", "exclude"])
def test_it_takes_the_plurality_as_the_majority(no_majority):
    majority = majority_vote(6, ITEMS, VOTES, no_majority=no_majority)
    split = T if no_majority == "tie" else NO_MAJORITY
    # Item 5 has no votes.
    assert_array_equal(majority, [A, B, T, split, B, NO_MAJORITY])


@pytest.mark.parametrize("case", JUDGE_CASES, ids=lambda c: c["desc"])
def test_it_measures_judge_agreement_on_a_known_answer(case):
    result = judge_agreement(JUDGE, ITEMS, VOTES, no_majority=case["no_majority"], rng=0)
    assert_allclose(result.agreement.value, case["agreement"], rtol=RTOL, atol=ATOL)
    assert_allclose(result.agreement_no_ties.value, case["no_ties"], rtol=RTOL, atol=ATOL)
    assert_allclose(result.kappa.value, case["kappa"], rtol=RTOL, atol=ATOL)
    assert_array_equal(result.confusion, case["confusion"])
    assert result.n_items == result.n_comparisons == case["n_items"]


@pytest.mark.parametrize("case", JUDGE_CASES, ids=lambda c: c["desc"])
def test_its_kappa_matches_a_brute_force_formula(case):
    majority = majority_vote(5, ITEMS, VOTES, no_majority=case["no_majority"])
    used = majority != NO_MAJORITY
    expected = brute_force_kappa(list(JUDGE[used]), list(majority[used]))
    result = judge_agreement(JUDGE, ITEMS, VOTES, no_majority=case["no_majority"], rng=0)
    assert_allclose(result.kappa.value, expected, rtol=RTOL, atol=ATOL)


def test_its_kappa_matches_brute_force_on_random_verdicts():
    rng = np.random.default_rng(7)
    judge = rng.integers(0, 3, size=40)
    items = np.repeat(np.arange(40), 3)
    votes = np.where(rng.random(120) < 0.6, np.repeat(judge, 3), rng.integers(0, 3, 120))
    majority = majority_vote(40, items, votes)
    result = judge_agreement(judge, items, votes, n_resamples=10, rng=0)
    assert_allclose(
        result.kappa.value, brute_force_kappa(list(judge), list(majority)), rtol=RTOL, atol=ATOL
    )


def test_it_leaves_out_items_with_too_few_votes():
    result = judge_agreement(JUDGE, ITEMS, VOTES, min_votes=3, rng=0)
    # Items 0, 2 and 4 have three votes or more: judge agrees on all three.
    assert result.n_items == 3
    assert result.agreement.value == 1.0


@pytest.mark.parametrize("case", HUMAN_CASES, ids=lambda c: c["desc"])
def test_it_measures_leave_one_out_human_agreement_on_a_known_answer(case):
    # An extra item with a single vote has no other votes and must not count.
    items = np.append(ITEMS, 7)
    votes = np.append(VOTES, A)
    result = human_agreement(items, votes, no_majority=case["no_majority"], rng=0)
    assert_allclose(result.agreement.value, case["agreement"], rtol=RTOL, atol=ATOL)
    assert_allclose(result.agreement_no_ties.value, case["no_ties"], rtol=RTOL, atol=ATOL)
    assert_array_equal(result.confusion, case["confusion"])
    assert result.n_comparisons == case["n_comparisons"]
    assert result.n_items == 5


def test_relabelling_a_and_b_leaves_agreement_unchanged():
    swap = [1, 0, 2]
    for no_majority in ("tie", "exclude"):
        base = judge_agreement(JUDGE, ITEMS, VOTES, no_majority=no_majority, rng=3)
        flipped = judge_agreement(flip(JUDGE), ITEMS, flip(VOTES), no_majority=no_majority, rng=3)
        for field in ("agreement", "agreement_no_ties", "kappa"):
            assert_allclose(
                getattr(flipped, field).value, getattr(base, field).value, rtol=RTOL, atol=ATOL
            )
        assert_array_equal(flipped.confusion, base.confusion[np.ix_(swap, swap)])
        human = human_agreement(ITEMS, VOTES, no_majority=no_majority, rng=3)
        human_flipped = human_agreement(ITEMS, flip(VOTES), no_majority=no_majority, rng=3)
        assert human_flipped.agreement.value == human.agreement.value
        assert_array_equal(human_flipped.confusion, human.confusion[np.ix_(swap, swap)])


def test_permuting_item_ids_leaves_agreement_unchanged():
    perm = np.array([3, 0, 4, 1, 2])  # item i becomes perm[i]
    judge = np.empty_like(JUDGE)
    judge[perm] = JUDGE
    base = judge_agreement(JUDGE, ITEMS, VOTES, rng=0)
    permuted = judge_agreement(judge, perm[ITEMS], VOTES, rng=0)
    assert permuted.agreement.value == base.agreement.value
    assert permuted.kappa.value == base.kappa.value
    assert_array_equal(permuted.confusion, base.confusion)


def random_panel(seed, n_items=300):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, size=n_items)
    n_votes = rng.integers(1, 6, size=n_items)
    items = np.repeat(np.arange(n_items), n_votes)
    noisy = rng.random(items.size) < 0.4
    votes = np.where(noisy, rng.integers(0, 3, items.size), truth[items])
    judge = np.where(rng.random(n_items) < 0.3, rng.integers(0, 3, n_items), truth)
    return judge, items, votes


def test_its_intervals_contain_the_estimate_and_are_reproducible():
    judge, items, votes = random_panel(11)
    first = judge_agreement(judge, items, votes, rng=123)
    again = judge_agreement(judge, items, votes, rng=123)
    other = judge_agreement(judge, items, votes, rng=124)
    human = human_agreement(items, votes, rng=123)
    for result in (first, human):
        for estimate in (result.agreement, result.agreement_no_ties, result.kappa):
            assert estimate.lower <= estimate.value <= estimate.upper
            assert estimate.upper - estimate.lower < 0.3
    assert first.agreement == again.agreement
    assert first.kappa == again.kappa
    assert first.kappa != other.kappa  # (agreement quantiles sit on a grid of k / 300)
    assert first.agreement.value == other.agreement.value
    narrow = judge_agreement(judge, items, votes, confidence_level=0.5, rng=123)
    assert first.agreement.lower <= narrow.agreement.lower <= narrow.agreement.upper
    assert narrow.agreement.upper <= first.agreement.upper


def test_it_rejects_malformed_input_naming_the_argument():
    with pytest.raises(ValueError, match="`votes`"):
        judge_agreement(JUDGE, ITEMS, np.full(ITEMS.size, 3))
    with pytest.raises(ValueError, match="`items`"):
        judge_agreement(JUDGE, ITEMS[:-1], VOTES)
    with pytest.raises(ValueError, match="`items`"):
        judge_agreement(JUDGE[:3], ITEMS, VOTES)
    with pytest.raises(ValueError, match="`judge`"):
        judge_agreement(JUDGE.astype(float), ITEMS, VOTES)
    with pytest.raises(ValueError, match="`no_majority`"):
        human_agreement(ITEMS, VOTES, no_majority="drop")
    with pytest.raises(ValueError, match="`confidence_level`"):
        human_agreement(ITEMS, VOTES, confidence_level=95)
    with pytest.raises(ValueError, match="`n_resamples`"):
        human_agreement(ITEMS, VOTES, n_resamples=0)
    with pytest.raises(ValueError, match="two votes"):
        human_agreement(np.arange(4), np.array([A, B, T, A]))


# --------------------------------------------------------------------------------------------
# Position and length


def test_it_counts_first_position_picks():
    verdicts = np.array([A, A, A, B, T, T])
    result = first_position_preference(verdicts, rng=0)
    assert (result.n_first, result.n_second, result.n_ties) == (3, 1, 2)
    assert result.first_share.value == 0.75
    assert result.first_share.lower <= 0.75 <= result.first_share.upper


def test_it_resamples_whole_items_for_first_position():
    # Two items with four identical votes each: any resample is all-A, all-B or half-half.
    verdicts = np.array([A, A, A, A, B, B, B, B])
    items = np.array([0, 0, 0, 0, 9, 9, 9, 9])
    result = first_position_preference(verdicts, items=items, n_resamples=200, rng=1)
    assert result.first_share.value == 0.5
    assert (result.first_share.lower, result.first_share.upper) == (0.0, 1.0)


def test_it_measures_position_consistency():
    # x shown first, then y shown first; scores are for the first-shown answer.
    ab = outcome_scores(np.array([A, A, B, T, A]))
    ba = outcome_scores(np.array([B, A, A, T, T]))
    # consistent: x/x, inconsistent: x/y, consistent: y/y, consistent: tie/tie, x/tie.
    result = position_consistency(ab, ba, rng=0)
    assert result.value == 3 / 5
    assert result.lower <= result.value <= result.upper


@pytest.mark.parametrize(
    ("rule", "expected"),
    [("tie", [1.0, 0.5, 0.0, 0.5, 0.5, 0.875]), ("average", [1.0, 0.5, 0.0, 0.5, 0.75, 0.875])],
)
def test_it_combines_both_orders(rule, expected):
    ab = np.array([1.0, 1.0, 0.0, 0.5, 1.0, 1.0])
    ba = np.array([0.0, 1.0, 1.0, 0.5, 0.5, 0.25])  # last: x>>y, then "y worse" = A<B (0.25)
    assert_allclose(combine_orders(ab, ba, rule=rule), expected, rtol=RTOL, atol=ATOL)


def test_combining_the_five_level_scale_goes_through_verdict_scores():
    ab = verdict_scores(["A>>B", "A>B", "B>A"])
    ba = verdict_scores(["B>A", "A>B", "B>>A"])
    assert_array_equal(score_outcomes(combine_orders(ab, ba)), [A, T, T])


def test_it_measures_the_share_picking_the_longer_answer():
    verdicts = np.array([A, A, B, B, T, A])
    len_a = np.array([100, 10, 10, 50, 100, 40])
    len_b = np.array([10, 100, 100, 10, 10, 40])
    # Non-tie with unequal lengths: picks longer, shorter, longer, shorter -> 2 of 4.
    result = length_bias(verdicts, len_a, len_b, rng=0)
    assert result.longer_share.value == 0.5
    assert result.n_used == 5


def test_its_length_slope_is_the_maximum_likelihood_fit():
    rng = np.random.default_rng(5)
    len_a, len_b = rng.integers(10, 1000, size=(2, 80))
    d = (len_a - len_b) / (len_a + len_b + 1)
    verdicts = np.where(rng.random(80) < special.expit(0.2 + 1.5 * d), A, B)
    verdicts[:10] = T

    y, x = (verdicts[10:] == A).astype(float), d[10:]

    def nll(beta):
        eta = beta[0] + beta[1] * x
        return np.sum(np.logaddexp(0, eta) - y * eta)

    expected = optimize.minimize(nll, [0.0, 0.0], method="BFGS", options={"gtol": 1e-10}).x
    result = length_bias(verdicts, len_a, len_b, rng=0)
    assert_allclose(result.slope.value, expected[1], rtol=1e-6)
    assert result.slope.lower <= result.slope.value <= result.slope.upper


def test_its_length_slope_finds_a_simulated_bias():
    rng = np.random.default_rng(8)
    len_a, len_b = rng.integers(10, 2000, size=(2, 3000))
    d = (len_a - len_b) / (len_a + len_b + 1)
    biased = np.where(rng.random(3000) < special.expit(2.0 * d), A, B)
    fair = np.where(rng.random(3000) < 0.5, A, B)
    slope = length_bias(biased, len_a, len_b, rng=0).slope
    assert slope.lower < 2.0 < slope.upper
    none = length_bias(fair, len_a, len_b, rng=0).slope
    assert none.lower < 0 < none.upper


def test_its_length_slope_refuses_a_separated_fit():
    with pytest.raises(RuntimeError, match="converge"):
        length_bias(np.array([A, A, B, B]), np.array([9, 8, 1, 2]), np.array([1, 2, 9, 8]))


# --------------------------------------------------------------------------------------------
# Leaderboard level: known answers


def test_it_tells_closed_from_open_overlap():
    lower = np.array([0.0, 1.0, 0.5, 3.0])
    upper = np.array([1.0, 2.0, 0.5, 4.0])  # model 2 is a point inside model 0's interval
    closed = intervals_overlap(lower, upper)
    opened = intervals_overlap(lower, upper, closed=False)
    assert closed[0, 1] and not opened[0, 1]  # touching
    assert closed[0, 2] and not opened[0, 2]  # point inside
    assert not closed[0, 3] and not opened[0, 3]
    assert_array_equal(closed, closed.T)
    assert separability(lower, upper) == 4 / 6  # pairs 0-3, 1-2, 1-3, 2-3
    assert separability(lower, upper, closed=False) == 1.0


def test_it_scores_agreement_with_confidence_intervals():
    reference = np.array([1.0, 2.0, 3.0, 4.0])
    ref_lower, ref_upper = reference - 0.1, reference + 0.1  # separates all six pairs
    scores = np.array([1.0, 2.0, 4.0, 3.0])  # models 2 and 3 swapped
    lower = np.array([0.9, 1.5, 3.9, 2.9])
    upper = np.array([1.1, 2.5, 4.1, 3.1])
    result = agreement_with_ci(scores, lower, upper, reference, ref_lower, ref_upper)
    # 0-1, 0-2, 0-3, 1-2, 1-3 in the same order; 2-3 in the opposite order.
    counts = (result.n_separated, result.n_same, result.n_overlap, result.n_opposite)
    assert counts == (6, 5, 0, 1)
    assert result.agreement == 5 / 6
    upper[0] = 1.6  # now 0 and 1 overlap on the benchmark: half a point
    result = agreement_with_ci(scores, lower, upper, reference, ref_lower, ref_upper)
    assert result.agreement == (4 + 0.5) / 6


def test_it_predicts_win_probabilities_and_their_brier_score():
    mean = np.array([0.0, 1.0, 3.0])
    var = np.array([0.5, 0.5, 0.0])
    p = win_probabilities(mean, var)
    assert_allclose(p + p.T, 1.0, rtol=RTOL, atol=ATOL)
    assert_allclose(p[1, 0], special.ndtr(1.0), rtol=RTOL, atol=ATOL)
    assert_allclose(p[2, 0], special.ndtr(3.0 / np.sqrt(0.5)), rtol=RTOL, atol=ATOL)
    assert_array_equal(win_probabilities([1.0, 2.0], [0.0, 0.0]), [[0.5, 0.0], [1.0, 0.5]])
    # Reference order 0 < 2 < 1: pair (0, 1) and (0, 2) predicted right, (1, 2) wrong.
    # Target of pair (i, j): 1 if the reference ranks i higher. Reference order 0 < 2 < 1.
    reference = np.array([0.0, 5.0, 2.0])
    expected = (p[0, 1] ** 2 + p[0, 2] ** 2 + (p[1, 2] - 1) ** 2) / 3
    assert_allclose(brier_score(mean, var, reference), expected, rtol=RTOL, atol=ATOL)
    assert brier_score(mean, var, mean, reference_var=var) == 0.0


def test_rank_correlation_is_one_for_a_monotone_transform():
    scores = np.array([3.0, 1.0, 2.0, 5.0])
    result = rank_correlation(np.exp(scores), scores)
    assert (result.spearman, result.kendall, result.n_models) == (1.0, 1.0, 4)
    with pytest.raises(ValueError, match="`reference_scores`"):
        rank_correlation(scores, scores[:3])


def test_it_rejects_malformed_intervals_naming_the_argument():
    with pytest.raises(ValueError, match="`lower` must not exceed `upper`"):
        separability([1.0, 2.0], [0.0, 3.0])
    with pytest.raises(ValueError, match="`reference_lower`"):
        agreement_with_ci([1, 2], [0, 1], [1, 2], [1, 2], [2, 1], [1, 2])
    with pytest.raises(ValueError, match="`var`"):
        brier_score([1, 2], [1, -1], [1, 2])


# --------------------------------------------------------------------------------------------
# Leaderboard level: arena-hard-auto's published figures

# Chatbot Arena name -> name in each benchmark's bootstrap file. Arena-Hard's map is the one
# published with the data; the MT-Bench and AlpacaEval maps (arena_to_mt_bench.json and
# alpaca_to_arena.json in the notebook) are not in the data, so they are written out here.
ARENA_HARD_NAMES = json.loads((DATA / "arena-hard-v0.1-stats/arena_to_arena_hard.json").read_text())
BENCHMARK_NAMES = {
    "arena_hard": {k: v.lower() for k, v in ARENA_HARD_NAMES.items()},
    "mt_bench": {k: k for k in ARENA_HARD_NAMES} | {"gemini-pro": "gemini-1.0-pro"},
    "alpaca_LC": {k: k for k in ARENA_HARD_NAMES}
    | {
        "command-r": "cohere",
        "gpt-4-0314": "gpt4_0314",
        "gpt-4-0613": "gpt4_0613",
        "llama-2-70b-chat": "llama-2-70b-chat-hf",
        "llama-2-7b-chat": "llama-2-7b-chat-hf",
    },
}
# Published: Spearman, agreement with CI, separability (%), Brier (arena-hard-auto notebook).
PUBLISHED = {
    "arena_hard": (0.932, 0.904, 84.2, 0.0705),
    "mt_bench": (0.893, 0.695, 36.3, 0.1008),
    "alpaca_LC": (0.878, 0.873, 87.9, 0.1347),
}


def load_arena():
    with open(DATA / "chatbot-arena-20240329/leaderboard.csv", newline="") as f:
        return {row[""]: row for row in csv.DictReader(f)}


def load_benchmark(name):
    path = DATA / f"arena-hard-v0.1-stats/bootstrap_stats_{name}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by_name = {row["model"].lower(): row for row in rows}
    return {arena: by_name[bench.lower()] for arena, bench in BENCHMARK_NAMES[name].items()}


def leaderboards(name):
    """Benchmark and Chatbot Arena statistics of the 20 shared models, in one order."""
    models = sorted(ARENA_HARD_NAMES)
    arena, bench = load_arena(), load_benchmark(name)
    ref = {
        c: np.array([float(arena[m][c]) for m in models])
        for c in ("rating", "rating_q025", "rating_q975")
    }
    results = [np.asarray(bench[m]["results"], dtype=float) for m in models]
    return {
        "score": np.array([bench[m]["score"] for m in models]),
        "lower": np.array([bench[m]["lower"] for m in models]),
        "upper": np.array([bench[m]["upper"] for m in models]),
        "mean": np.array([r.mean() for r in results]),
        "var": np.array([r.var() for r in results]),  # ddof=0, as in the notebook
        "rating": ref["rating"],
        "rating_lower": ref["rating_q025"],
        "rating_upper": ref["rating_q975"],
    }


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_it_reproduces_arena_hard_autos_published_figures(name):
    b = leaderboards(name)
    spearman, agreement, separable, brier = PUBLISHED[name]
    assert round(rank_correlation(b["score"], b["rating"]).spearman, 3) == spearman
    # The notebook's agreement-with-CI counts intervals as overlapping only when they share a
    # segment of positive length (closed=False), unlike its separability (closed intervals).
    ci = agreement_with_ci(
        b["score"],
        b["lower"],
        b["upper"],
        b["rating"],
        b["rating_lower"],
        b["rating_upper"],
        closed=False,
    )
    assert ci.n_separated == 177
    assert round(ci.agreement, 3) == agreement
    assert round(100 * separability(b["lower"], b["upper"]), 1) == separable
    assert round(brier_score(b["mean"], b["var"], b["rating"]), 4) == brier


def test_the_published_figures_mix_two_overlap_rules():
    """Only zero-width intervals tell the rules apart, and both boards have one.

    Chatbot Arena anchors mixtral-8x7b-instruct-v0.1 at 1114 (interval [1114, 1114]) and
    Arena-Hard scores against gpt-4-0314 fixed at 50 ([50, 50]). With open overlap, as in the
    notebook's agreement-with-CI, the anchor counts as separated from the three models whose
    arena intervals contain 1114, and the baseline as separated from claude-3-sonnet, whose
    interval contains 50 (and which it then "orders" the wrong way).
    """
    b = leaderboards("arena_hard")
    args = (b["score"], b["lower"], b["upper"], b["rating"], b["rating_lower"], b["rating_upper"])
    closed = agreement_with_ci(*args)
    assert closed.n_separated == 174
    assert round(closed.agreement, 3) == 0.914
    assert round(100 * separability(b["lower"], b["upper"], closed=False), 1) == 84.7
    assert round(100 * separability(b["rating_lower"], b["rating_upper"]), 2) == 91.58


# --------------------------------------------------------------------------------------------
# LLMFAO: real human votes and LLM-judge verdicts

LLMFAO_CODES = {"left": A_WINS, "right": B_WINS, "tie": TIE}  # left = model_x = shown first


def read_llmfao(name):
    with open(LLMFAO_DIR / name, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def llmfao():
    crowd = read_llmfao("crowd-comparisons.csv")
    pair_ids, items = np.unique([int(r["id"]) for r in crowd], return_inverse=True)
    votes = np.array([LLMFAO_CODES[r["winner"]] for r in crowd])
    texts = {}
    for line in (LLMFAO_DIR / "results.jsonl").read_text().splitlines():
        row = json.loads(line)
        texts[row["model"], row["prompt"]] = row["result"] or ""

    def lengths(rows):
        return [
            np.array([len(texts[int(r[model]), int(r["prompt"])]) for r in rows])
            for model in ("model_x", "model_y")
        ]

    judges = {}
    for judge in ("gpt4", "gpt3"):
        rows = sorted(read_llmfao(f"{judge}-crowd-comparisons.csv"), key=lambda r: int(r["id"]))
        assert_array_equal([int(r["id"]) for r in rows], pair_ids)
        judges[judge] = (np.array([LLMFAO_CODES[r["winner"]] for r in rows]), *lengths(rows))
    return {"items": items, "votes": votes, "lengths": lengths(crowd), "judges": judges}


def fmt(estimate):
    return f"{estimate.value:.3f} [{estimate.lower:.3f}, {estimate.upper:.3f}]"


def test_llmfao_human_votes_lean_left(llmfao):
    votes, items = llmfao["votes"], llmfao["items"]
    shares = np.bincount(votes, minlength=3) / votes.size
    # README: ties 38.9%, left 32.6%, right 28.5% among human votes.
    assert_array_equal(np.round(100 * shares, 1), [32.6, 28.5, 38.9])
    result = first_position_preference(votes, items=items, rng=0)
    assert_allclose(result.first_share.value, 0.326 / (0.326 + 0.285), atol=1e-3)
    assert result.first_share.lower > 0.5  # a measurable left-position preference
    print(f"\nLLMFAO humans: first-shown share of non-tie votes {fmt(result.first_share)}")


def test_llmfao_judges_against_the_human_majority(llmfao):
    items, votes = llmfao["items"], llmfao["votes"]
    human = human_agreement(items, votes, rng=0)
    print(
        f"\nLLMFAO humans (leave-one-out, {human.n_comparisons} votes on {human.n_items} pairs):"
        f" agreement {fmt(human.agreement)}, without ties {fmt(human.agreement_no_ties)},"
        f" kappa {fmt(human.kappa)}"
    )
    print(f"  humans: length bias {length_bias_line(votes, *llmfao['lengths'], items=items)}")
    results = {}
    for name, (judge, len_a, len_b) in llmfao["judges"].items():
        result = judge_agreement(judge, items, votes, rng=0)
        position = first_position_preference(judge, rng=0)
        results[name] = result
        print(
            f"  {name} vs majority ({result.n_items} pairs): agreement {fmt(result.agreement)},"
            f" without ties {fmt(result.agreement_no_ties)}, kappa {fmt(result.kappa)};"
            f" first-shown share {fmt(position.first_share)};"
            f" length bias {length_bias_line(judge, len_a, len_b)}"
        )
        for estimate in (result.agreement, result.agreement_no_ties, result.kappa):
            assert estimate.lower <= estimate.value <= estimate.upper
    assert results["gpt4"].n_items == 2139
    # GPT-4 agrees with the crowd on who won about as well as a held-out crowd worker does;
    # GPT-3 clearly less.
    assert results["gpt4"].agreement_no_ties.value > results["gpt3"].agreement_no_ties.upper
    assert results["gpt4"].agreement_no_ties.upper > human.agreement_no_ties.lower


def length_bias_line(verdicts, len_a, len_b, items=None):
    result = length_bias(verdicts, len_a, len_b, items=items, rng=0)
    return f"longer share {fmt(result.longer_share)}, slope {fmt(result.slope)}"
