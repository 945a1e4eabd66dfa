"""The pair-sampling policy: which one is in force, and the active policy's pair distributions,
computed after a leaderboard refresh (overall and per category), kept in the cache, read with
the roster; a draw is then one ``searchsorted`` (never a fit per prompt).

The policy is the admin's ``SamplingSettings`` row when it names one, else
``ARENA_SAMPLING_POLICY``. Exact propensities: the roster draws from the distribution (of the
voter's category when one was picked and has its own, else the overall one) conditioned on the
candidates of that prompt (both models answerable), and stores that conditional probability on
the battle. When a candidate is missing from the stored distribution (a model activated since it
was computed), or there is none yet, the draw falls back to the weighted draw and stores that
draw's probability instead.
"""

import numpy as np
from django.conf import settings
from django.core.cache import cache

import ratings
from arena.models import Contestant, SamplingSettings

CACHE_KEY = "arena:active-pairs"
CACHE_SECONDS = 7 * 24 * 3600


def current_policy() -> str:
    """``weighted``, ``uniform`` or ``active``: the admin's choice, else the environment's."""
    return SamplingSettings.current().policy or settings.ARENA_SAMPLING_POLICY


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

    def draw_among(self, pairs: list[tuple[int, int]], u: float) -> tuple[int, int, float] | None:
        """(pk, pk, probability) among the unordered ``pairs`` of pks (eval sets: the pairs with
        answers left to vote); None when a pk is not covered or no pair has mass."""
        if any(x not in self.position or y not in self.position for x, y in pairs):
            return None
        n = self.dist.n_models
        allowed = np.zeros((n, n), dtype=bool)
        for x, y in pairs:
            i, j = sorted((self.position[x], self.position[y]))
            allowed[i, j] = True
        try:
            dist = self.dist.restricted_pairs(allowed[self.dist.i, self.dist.j])
        except ValueError:
            return None
        i, j, p = ratings.draw_pair(dist, u)
        return int(self.contestant_ids[i]), int(self.contestant_ids[j]), p


def provider_groups(contestant_ids) -> np.ndarray:
    """A group per contestant for the exposure cap: one per organisation (blank: its own)."""
    rows = Contestant.objects.filter(pk__in=list(contestant_ids))
    orgs = dict(rows.values_list("pk", "organisation"))
    index: dict[str, int] = {}
    out = []
    for c in contestant_ids:
        key = orgs.get(int(c), "").strip().casefold() or f"\0{c}"
        out.append(index.setdefault(key, len(index)))
    return np.asarray(out, dtype=np.intp)


def compute(
    contestant_ids, ratings_by_id: dict, pair_counts: np.ndarray, *, cap=0.3, groups=None
) -> ActivePairs:
    """The distribution over ``contestant_ids``; ``pair_counts`` in that order, unrated models
    (missing from ``ratings_by_id``) at the mean rating; ``groups`` for the cap (default: each
    model its own)."""
    known = [ratings_by_id[c] for c in contestant_ids if c in ratings_by_id]
    mean = float(np.mean(known)) if known else 1000.0
    r = np.array([ratings_by_id.get(c, mean) for c in contestant_ids], dtype=float)
    dist = ratings.active_pairs(r, pair_counts, cap=cap, groups=groups)
    return ActivePairs(contestant_ids, dist)


def _key(category_id: int | None) -> str:
    return f"{CACHE_KEY}:{category_id or 'all'}"


def store(active: ActivePairs, category_id: int | None = None) -> None:
    cache.set(
        _key(category_id),
        {"ids": active.contestant_ids.tolist(), "dist": active.dist.to_dict()},
        CACHE_SECONDS,
    )


def load(category_id: int | None = None) -> ActivePairs | None:
    raw = cache.get(_key(category_id))
    if not raw:
        return None
    return ActivePairs(raw["ids"], ratings.PairDistribution.from_dict(raw["dist"]))


def load_all() -> dict[int | None, ActivePairs]:
    """The overall distribution (key None) and those of the categories that have one."""
    out: dict[int | None, ActivePairs] = {}
    overall = load()
    if overall is not None:
        out[None] = overall
    for category_id in cache.get(f"{CACHE_KEY}:categories") or []:
        active = load(category_id)
        if active is not None:
            out[category_id] = active
    return out


def _pair_counts(counts: ratings.PairCounts, position: dict, active: list[int]) -> np.ndarray:
    n = counts.n_models
    full = np.zeros((n + 1, n + 1))
    full[counts.pair_i, counts.pair_j] = counts.counts.sum(axis=1)
    idx = np.array([position.get(c, -1) for c in active])
    return (full + full.T)[np.ix_(idx, idx)]  # -1: the empty last row and column


def refresh(contestant_ids, boards: dict) -> None:
    """Recompute and store the active distributions after a leaderboard refresh.

    ``contestant_ids``: the boards' model index -> pk; ``boards``: ``{None or Category:
    (Leaderboard, PairCounts)}`` as the refresh fitted them (overall and per category, each
    scored by its own ratings and votes).
    """
    active = list(
        Contestant.objects.filter(active=True).order_by("pk").values_list("pk", flat=True)
    )
    if len(active) < 2:
        return
    row = SamplingSettings.current()
    groups = provider_groups(active) if row.cap_per == SamplingSettings.CapPer.PROVIDER else None
    position = {int(c): k for k, c in enumerate(contestant_ids)}
    categories = []
    for category, (board, counts) in boards.items():
        by_id = {
            int(contestant_ids[m]): float(r)
            for m, r in zip(board.model, board.rating, strict=True)
            if np.isfinite(r)
        }
        pairs = _pair_counts(counts, position, active)
        dist = compute(active, by_id, pairs, cap=row.exposure_cap, groups=groups)
        category_id = None if category is None else category.pk
        store(dist, category_id)
        if category_id is not None:
            categories.append(category_id)
    cache.set(f"{CACHE_KEY}:categories", categories, CACHE_SECONDS)
