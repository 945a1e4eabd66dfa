"""Data loaders and simulators shared by the ratings tests.

Real data (copied under tests/data with their licences):
- evalica-golden/: reference scores from dustalov/evalica, Apache-2.0 (LICENSE).
- LLMFAO crowd comparisons by Dmitry Ustalov and llmonitor.com, CC BY 4.0: the demo's copy,
  arena/demo/data (stored once).
- chatbot-arena-20240329/: the public Chatbot Arena leaderboard of 2024-03-29 from the
  lmarena/arena-hard-auto notebook data, Apache-2.0 (LICENSE).
"""

import csv
from pathlib import Path

import numpy as np
from scipy.special import expit

from ratings import A_WINS, B_WINS, SCALE, TIE, aggregate

DATA = Path(__file__).resolve().parents[1] / "data"
GOLDEN = DATA / "evalica-golden"
LLMFAO_DIR = Path(__file__).resolve().parents[2] / "arena" / "demo" / "data"
LLMFAO = LLMFAO_DIR / "crowd-comparisons.csv"
ARENA = DATA / "chatbot-arena-20240329" / "leaderboard.csv"

LEFT_RIGHT = {"left": A_WINS, "right": B_WINS, "tie": TIE}


def load_pairs(path):
    """``(names, a, b, outcome)`` from a ``left,right,winner`` CSV; names sorted."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    names = sorted({r["left"] for r in rows} | {r["right"] for r in rows})
    idx = {m: i for i, m in enumerate(names)}
    a = np.array([idx[r["left"]] for r in rows])
    b = np.array([idx[r["right"]] for r in rows])
    o = np.array([LEFT_RIGHT[r["winner"]] for r in rows])
    return names, a, b, o


def golden(name: str, algorithm: str) -> dict:
    """Evalica's golden scores ``{item: score}`` for a data set and algorithm."""
    with open(GOLDEN / f"{name}-golden.csv", newline="", encoding="utf-8") as fh:
        return {
            r["item"]: float(r["score"]) for r in csv.DictReader(fh) if r["algorithm"] == algorithm
        }


def arena_truth():
    """Chatbot Arena 2024-03-29: names, ratings (Elo) and battle counts per model."""
    with open(ARENA, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    names = [r[""] for r in rows]
    ratings = np.array([float(r["rating"]) for r in rows])
    battles = np.array([int(r["num_battles"]) for r in rows])
    return names, ratings, battles


def outcome_probs(d, tie_scale=0.35):
    """P(i wins), P(j wins), P(tie) for log-strength gaps ``d`` under a tie model whose
    expected score is exactly ``expit(d)`` (so ties-as-half-a-win BT is consistent): the tie
    probability is ``tie_scale * 4 p (1 - p)`` and each side gets half of it taken away."""
    p = expit(d)
    t = tie_scale * 4 * p * (1 - p)
    return np.stack([p - t / 2, 1 - p - t / 2, t], axis=-1)


def simulate_counts(theta, pair_weight, n_battles, rng, tie_scale=0.35):
    """Aggregated counts of ``n_battles`` simulated battles.

    Pairs are drawn with probability proportional to ``pair_weight[i, j]`` (i < j); outcomes
    from :func:`outcome_probs`. Returns :class:`ratings.PairCounts`.
    """
    n = theta.size
    iu, ju = np.triu_indices(n, 1)
    w = pair_weight[iu, ju]
    per_pair = rng.multinomial(n_battles, w / w.sum())
    probs = outcome_probs(theta[iu] - theta[ju], tie_scale)
    cells = np.array([rng.multinomial(m, p) for m, p in zip(per_pair, probs, strict=True)])
    a = np.repeat(iu, 3)
    b = np.repeat(ju, 3)
    o = np.tile([A_WINS, B_WINS, TIE], iu.size)
    keep = cells.ravel() > 0
    return aggregate(n, a[keep], b[keep], o[keep], counts=cells.ravel()[keep])


def simulate_battles(theta, n_battles, rng, tie_scale=0.35, pair_weight=None):
    """Raw battle arrays ``(a, b, outcome)``; positions A/B random."""
    n = theta.size
    if pair_weight is None:
        a = rng.integers(0, n, n_battles)
        b = (a + rng.integers(1, n, n_battles)) % n
    else:
        iu, ju = np.triu_indices(n, 1)
        w = pair_weight[iu, ju]
        pair = rng.choice(iu.size, n_battles, p=w / w.sum())
        flip = rng.random(n_battles) < 0.5
        a = np.where(flip, ju[pair], iu[pair])
        b = np.where(flip, iu[pair], ju[pair])
    probs = outcome_probs(theta[a] - theta[b], tie_scale)
    u = rng.random(n_battles)[:, None]
    o = (u > np.cumsum(probs, axis=1)).sum(axis=1)
    return a, b, o


def arena_theta():
    """True log-strengths (mean zero) and battle counts from the 2024-03-29 leaderboard."""
    names, ratings, battles = arena_truth()
    theta = (ratings - ratings.mean()) / SCALE
    return names, theta, battles
