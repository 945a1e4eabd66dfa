"""The active sampling policy's pair distribution: computed after a leaderboard refresh, kept in
the cache, read with the roster; a draw is then one ``searchsorted`` (never a fit per prompt).

Exact propensities: the roster draws from the distribution conditioned on the candidates of
that prompt (both models answerable), and stores that conditional probability on the battle.
When a candidate is missing from the stored distribution (a model activated since it was
computed), or there is none yet, the draw falls back to the weighted draw and stores that
draw's probability instead.
"""

import numpy as np
from django.core.cache import cache

import ratings

CACHE_KEY = "arena:active-pairs"
CACHE_SECONDS = 7 * 24 * 3600


class ActivePairs:
    """A pair distribution over contestant pks."""

    def __init__(self, contestant_ids, dist: ratings.PairDistribution):
        self.contestant_ids = np.asarray(contestant_ids, dtype=np.int64)
        self.dist = dist
        self.position = {int(c): k for k, c in enumerate(self.contestant_ids)}

    def draw(self, ids: list[int], u: float) -> tuple[int, int, float] | None:
        """(pk, pk, probability) among ``ids``; None when some id is not covered."""
        if any(i not in self.position for i in ids):
            return None
        dist = self.dist
        if len(ids) != len(self.position):
            allowed = np.zeros(dist.n_models, dtype=bool)
            allowed[[self.position[i] for i in ids]] = True
            try:
                dist = dist.restricted(allowed)
            except ValueError:
                return None
        i, j, p = ratings.draw_pair(dist, u)
        return int(self.contestant_ids[i]), int(self.contestant_ids[j]), p


def compute(contestant_ids, ratings_by_id: dict, pair_counts: np.ndarray) -> ActivePairs:
    """The distribution over ``contestant_ids``; ``pair_counts`` in that order, unrated models
    (missing from ``ratings_by_id``) at the mean rating."""
    known = [ratings_by_id[c] for c in contestant_ids if c in ratings_by_id]
    mean = float(np.mean(known)) if known else 1000.0
    r = np.array([ratings_by_id.get(c, mean) for c in contestant_ids], dtype=float)
    return ActivePairs(contestant_ids, ratings.active_pairs(r, pair_counts))


def store(active: ActivePairs) -> None:
    cache.set(
        CACHE_KEY,
        {"ids": active.contestant_ids.tolist(), "dist": active.dist.to_dict()},
        CACHE_SECONDS,
    )


def load() -> ActivePairs | None:
    raw = cache.get(CACHE_KEY)
    if not raw:
        return None
    return ActivePairs(raw["ids"], ratings.PairDistribution.from_dict(raw["dist"]))
