"""A simulated arena with injected bad voters, for the vote-quality test and benchmark.

True strengths: the 2024-03-29 Chatbot Arena ratings (tests/data/chatbot-arena-20240329, see
its LICENSE). Honest voters vote by Bradley-Terry on the true ratings with 20% ties; random
voters pick A or B with probability 1/2; one-model voters vote only on battles showing their
target (they recognise it) and always pick it. Each vote is checked online, in order, with
ratings.observe_vote against "current ratings": a Bradley-Terry fit of the votes counted so
far, refitted every ``refit_every`` votes (no ratings before the first refit, so no evidence).
"""

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import ratings

DATA = Path(__file__).resolve().parent.parent / "data" / "chatbot-arena-20240329"
HONEST, RANDOM, ONE_MODEL = 0, 1, 2


def true_ratings() -> tuple[list[str], np.ndarray]:
    with open(DATA / "leaderboard.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r[""] for r in rows], np.array([float(r["rating"]) for r in rows])


@dataclass
class Arena:
    kind: np.ndarray  # per voter
    voter: np.ndarray  # per vote
    a: np.ndarray
    b: np.ndarray
    outcome: np.ndarray
    flagged_at: np.ndarray  # per voter: index of the vote that flagged them, or -1
    rated: np.ndarray  # per vote: kept by the checks
    target: int
    n_models: int


def simulate(
    *,
    n_voters: int = 500,
    n_votes: int = 60_000,
    random_share: float = 0.05,
    one_model_share: float = 0.02,
    target_rank: int = 10,
    refit_every: int = 5_000,
    checks: bool = True,
    seed: int = 0,
    truth: np.ndarray | None = None,
) -> Arena:
    rng = np.random.default_rng(seed)
    if truth is None:
        truth = true_ratings()[1]
    n = truth.size
    target = int(np.argsort(-truth)[target_rank - 1])
    kind = np.zeros(n_voters, dtype=np.int64)
    n_random, n_one = round(random_share * n_voters), round(one_model_share * n_voters)
    chosen = rng.permutation(n_voters)
    kind[chosen[:n_random]] = RANDOM
    kind[chosen[n_random : n_random + n_one]] = ONE_MODEL
    voter = rng.integers(n_voters, size=n_votes)
    a = rng.integers(n, size=n_votes)
    b = (a + rng.integers(1, n, size=n_votes)) % n
    # A one-model voter's votes are all on battles showing the target, on a random side.
    one = kind[voter] == ONE_MODEL
    other = (target + rng.integers(1, n, size=n_votes)) % n
    left = rng.random(n_votes) < 0.5
    a = np.where(one, np.where(left, target, other), a)
    b = np.where(one, np.where(left, other, target), b)
    p = 1.0 / (1.0 + np.exp((truth[b] - truth[a]) / ratings.SCALE))
    u = rng.random(n_votes)
    honest = np.where(u < 0.2, ratings.TIE, np.where(rng.random(n_votes) < p, 0, 1))
    coin = rng.integers(2, size=n_votes)
    picks_target = np.where(a == target, ratings.A_WINS, ratings.B_WINS)
    outcome = np.select([kind[voter] == RANDOM, one], [coin, picks_target], honest)
    flagged_at = np.full(n_voters, -1)
    rated = np.ones(n_votes, dtype=bool)
    if checks:
        evidence = [ratings.VoterEvidence() for _ in range(n_voters)]
        current: np.ndarray | None = None
        for t in range(n_votes):
            if t and t % refit_every == 0:
                kept = rated[:t]
                counts = ratings.aggregate(n, a[:t][kept], b[:t][kept], outcome[:t][kept])
                current = ratings.fit_bt(counts).ratings
            v = voter[t]
            if flagged_at[v] >= 0:
                rated[t] = False
                continue
            ev = ratings.observe_vote(
                evidence[v],
                model_a=str(a[t]),
                model_b=str(b[t]),
                rating_a=None if current is None else float(current[a[t]]),
                rating_b=None if current is None else float(current[b[t]]),
                outcome=int(outcome[t]),
            )
            if ev.flagged:
                flagged_at[v] = t
                rated[: t + 1][voter[: t + 1] == v] = False  # earlier votes go too
    return Arena(kind, voter, a, b, outcome, flagged_at, rated, target, n)


def detection(arena: Arena) -> dict[str, float]:
    """Per-voter precision and recall, and the flag rate of each kind of voter."""
    flagged = arena.flagged_at >= 0
    bad = arena.kind != HONEST
    tp = int(np.sum(flagged & bad))
    out = {
        "precision": tp / max(int(flagged.sum()), 1),
        "recall": tp / max(int(bad.sum()), 1),
    }
    for name, k in (("honest", HONEST), ("random", RANDOM), ("one_model", ONE_MODEL)):
        out[f"flag_rate_{name}"] = float(flagged[arena.kind == k].mean())
    return out


def fitted(arena: Arena, keep: np.ndarray) -> np.ndarray:
    counts = ratings.aggregate(arena.n_models, arena.a[keep], arena.b[keep], arena.outcome[keep])
    return ratings.fit_bt(counts).ratings
