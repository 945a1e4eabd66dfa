"""Benchmark of pair sampling policies on simulated arenas with known truth; prints figures.

    .venv/bin/python tests/benchmarks/bench_sampling.py            # 20 runs per policy
    .venv/bin/python tests/benchmarks/bench_sampling.py --runs 3 --ipw-runs 3   # quick

Truth: the 76 Chatbot Arena ratings of 2024-03-29 (tests/data/chatbot-arena-20240329, Apache-2.0,
lmarena/arena-hard-auto). Votes follow Bradley-Terry on those ratings (no ties). Policies:
``uniform`` (every pair alike), ``weighted`` (today's draw, with each model's sampling weight set
to its real Chatbot Arena battle count) and ``active`` (ratings.active_pairs with its defaults,
recomputed after every refit, as after a leaderboard refresh). Every ``--step`` votes the board
is refitted (Bradley-Terry, sandwich intervals, rank ranges from 1,000 joint normal draws). Two
criteria, each the first refit that meets it, the run going on until both are met or
``--max-votes``:

* width: the mean 95% interval width of the estimated top 10 is below 40 Elo;
* top-5 set settled: the 95% rank ranges of the five best all lie within 1-5 and every other
  model's starts at 6 or below (whether that set is the true one is counted too).

The top-5 *order* (every top-5 rank range a single rank) is out of reach: the true top 5 has
gaps of 2.7 Elo, and an information bound (``order_bound``) puts it beyond 100,000 votes for any
policy; that bound is printed instead. A fixed-design figure at the true ratings (what no
sequential policy beats) is printed beside.

Then IPW: ``--ipw-runs`` active runs (the first ``--runs`` are those above) stopped at the width
criterion, fitted with weights 1 / P(pair) and without, each bias-reduced (Firth) and by maximum
likelihood, on the same votes (a paired design):
the top-10 mean error against the truth with its standard error over runs (the mean over all
models is 0 by construction of the common centre), per-model bias over its standard error, and
the coverage of the 95% intervals. Fragility of an active board and the draw time of the active
policy at 100 models (the roster's code path) close the run. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import ratings  # noqa: E402

DATA = ROOT / "tests/data/chatbot-arena-20240329/leaderboard.csv"


def truth() -> tuple[np.ndarray, np.ndarray]:
    with DATA.open() as f:
        rows = list(csv.DictReader(f))
    r = np.array([float(x["rating"]) for x in rows])
    battles = np.array([float(x["num_battles"]) for x in rows])
    return r - r.mean() + 1000, battles


def weighted_pairs(w: np.ndarray) -> ratings.PairDistribution:
    """Today's draw: first by weight, second by weight among the rest (exact pair probability)."""
    n = w.size
    i, j = np.triu_indices(n, 1)
    t = w.sum()
    p = w[i] / t * w[j] / (t - w[i]) + w[j] / t * w[i] / (t - w[j])
    return ratings.PairDistribution(n, i, j, p)


def run(policy, true, sim_weights, rng, step, max_votes, width_only=False):
    """One simulated arena; stops once both criteria are met (``width_only``: the width) or at
    ``max_votes``."""
    n = true.size
    fixed = {
        "uniform": ratings.uniform_pairs(n),
        "weighted": weighted_pairs(sim_weights),
    }.get(policy)
    counts = np.zeros((n, n))
    a_all, b_all, o_all, p_all = [], [], [], []
    dist = fixed or ratings.uniform_pairs(n)
    width_at = set_at = None
    set_right = False
    votes = 0
    true_top5 = set(np.argsort(-true)[:5].tolist())
    while votes < max_votes and (width_at is None or (set_at is None and not width_only)):
        k = np.minimum(np.searchsorted(dist.cumulative, rng.random(step)), dist.prob.size - 1)
        a, b, p = dist.i[k], dist.j[k], dist.prob[k]
        win = rng.random(step) < 1 / (1 + 10 ** ((true[b] - true[a]) / 400))
        o = np.where(win, ratings.A_WINS, ratings.B_WINS)
        np.add.at(counts, (a, b), 1)
        a_all.append(a)
        b_all.append(b)
        o_all.append(o)
        p_all.append(p)
        votes += step
        pc = ratings.aggregate(
            n, np.concatenate(a_all), np.concatenate(b_all), np.concatenate(o_all)
        )
        board = ratings.leaderboard_from_counts(pc, ci="sandwich", rng=rng)
        est = np.full(n, np.nan)
        est[board.model] = board.rating
        width = np.full(n, np.inf)
        width[board.model] = board.upper - board.lower
        top = np.argsort(-np.nan_to_num(est, nan=-np.inf))[:10]
        if width_at is None and np.mean(width[top]) < 40:
            width_at = votes
        if set_at is None and board.model.size == n and top5_settled(board):
            set_at = votes
            set_right = set(board.model[:5].tolist()) == true_top5
        if policy == "active":
            sym = counts + counts.T
            dist = ratings.active_pairs(np.nan_to_num(est, nan=np.nanmean(est)), sym)
    data = tuple(np.concatenate(x) for x in (a_all, b_all, o_all, p_all))
    return width_at, set_at, set_right, data


def top5_settled(board) -> bool:
    """The top-5 set is settled: the 95% rank ranges of the five best lie within 1-5, and
    those of all the others start at 6 or below (the board's rank ranges come from joint
    normal draws of the sandwich distribution of the ratings)."""
    return bool(board.rank_upper[:5].max() <= 5 and board.rank_lower[5:].min() >= 6)


def order_bound(true) -> tuple[float, float]:
    """A lower bound on the votes that settle the top-5 *order* under any policy: separating a
    gap ``g`` (log units) at 95% needs its standard error below ``g / 1.96`` (even then only
    half the time). Returns the smallest adjacent gap of the true top 5 (Elo) and the bound."""
    top = np.sort(true)[::-1][:5]
    g = -np.diff(top) / ratings.SCALE
    # Information of the difference c = e_a - e_b: var >= (c'c)^2 / c'Hc = 4 / c'Hc, and one
    # vote adds p(1-p) (c'd)^2 <= 1 to c'Hc, and at most 1.5 summed over the four gaps.
    need = 4 * 1.959964**2 / g**2
    return float((-np.diff(top)).min()), float(max(need.max(), need.sum() / 1.5))


def ipw_check(true, data):
    """Errors (estimate - truth, same centre) and coverage of the 95% intervals of four boards
    on the same votes (a paired comparison): IPW-weighted and unweighted, each bias-reduced
    (Firth, what the arena fits) and maximum-likelihood."""
    a, b, o, p = data
    n = true.size
    out = []
    ipw = ratings.ipw_weights(p, 1 / (n * (n - 1) / 2))
    for weights, reduced in ((ipw, True), (None, True), (ipw, False), (None, False)):
        board = ratings.leaderboard(
            n, a, b, o, weights=weights, ci="sandwich", bias_reduction=reduced
        )
        est, lo, hi = (np.full(n, np.nan) for _ in range(3))
        est[board.model], lo[board.model], hi[board.model] = board.rating, board.lower, board.upper
        shift = np.nanmean(est) - true.mean()  # same centre (all models are present)
        out.append((est - shift - true, (lo - shift <= true) & (true <= hi - shift)))
    return out


def draw_time(n_models=100, calls=20_000):
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    import django

    django.setup()
    from arena.battles import sampling
    from arena.battles.matchmaking import Candidate, Roster
    from arena.providers import Endpoint

    rng = np.random.default_rng(0)
    r = rng.normal(1000, 100, n_models)
    c = rng.poisson(20, (n_models, n_models)).astype(float)
    c = np.triu(c, 1) + np.triu(c, 1).T
    t0 = time.perf_counter()
    active = sampling.compute(list(range(1, n_models + 1)), dict(enumerate(r, 1)), c)
    compute_s = time.perf_counter() - t0
    endpoint = Endpoint(name="x", kind="openai")
    cands = tuple(Candidate(k, "live", 1.0, endpoint) for k in range(1, n_models + 1))
    roster = Roster(cands, {}, 0.0, "active", active)
    weighted = Roster(cands, {}, 0.0, "weighted", None)
    py = random.Random(1)
    out = {}
    for name, ros in (("active", roster), ("weighted", weighted)):
        times = []
        for _ in range(calls):
            t = time.perf_counter()
            ros.pair(rng=py)
            times.append(time.perf_counter() - t)
        out[name] = statistics.median(times) * 1e3
    return compute_s, out


def _median(xs):
    return float(np.median([x if x is not None else np.inf for x in xs]))


def _spread(xs):
    v = [x if x is not None else np.inf for x in xs]
    q = np.quantile(v, [0.25, 0.75], method="nearest")  # no interpolation between infinities
    return f"IQR {q[0]:,.0f}-{q[1]:,.0f}"


def oracle_width(true, battles) -> dict[str, float]:
    """Votes until the top-10 mean width < 40 for a fixed design at the true ratings, from the
    Fisher information (widths shrink as 1 / sqrt(votes)): what no sequential policy beats."""
    n = true.size
    top = np.argsort(-true)[:10]
    c = np.eye(n)[top] - 1.0 / n
    designs = {
        "uniform": ratings.uniform_pairs(n).prob,
        "weighted": weighted_pairs(battles).prob,
        "optimal": ratings.active_pairs(
            true, np.zeros((n, n)), floor=0, warmup=0, cap=None, boundary_weight=0
        ).prob,
    }
    out = {}
    i, j = np.triu_indices(n, 1)
    t = (true - true.mean()) / ratings.SCALE
    info = 1 / (1 + np.exp(t[j] - t[i]))
    info = info * (1 - info)
    for name, q in designs.items():
        h = np.zeros((n, n))
        h[i, j] = -1000 * q * info
        h += h.T
        h -= np.diag(h.sum(axis=1))
        sd = np.sqrt(np.einsum("ki,ij,kj->k", c, np.linalg.pinv(h), c))
        width = 2 * 1.959964 * ratings.SCALE * sd.mean()
        out[name] = 1000 * (width / 40) ** 2
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--ipw-runs", type=int, default=40, help="active runs for the IPW check")
    ap.add_argument("--step", type=int, default=1000)
    ap.add_argument("--max-votes", type=int, default=80_000)
    args = ap.parse_args()
    true, battles = truth()
    print(f"load average: {os.getloadavg()[0]:.2f}; {true.size} models; {args.runs} runs")
    width_at, set_at = {}, {}
    active_data = []
    for policy in ("uniform", "weighted", "active"):
        t0 = time.perf_counter()
        width_at[policy], set_at[policy], wrong = [], [], 0
        for seed in range(args.runs):
            rng = np.random.default_rng(seed)
            w, s, right, data = run(policy, true, battles, rng, args.step, args.max_votes)
            width_at[policy].append(w)
            set_at[policy].append(s)
            wrong += s is not None and not right
            if policy == "active":
                active_data.append(tuple(x[: w or x.size] for x in data))
        print(
            f"{policy:9s} votes until top-10 width < 40: median {_median(width_at[policy]):,.0f} "
            f"({_spread(width_at[policy])}); until top-5 set settled: median "
            f"{_median(set_at[policy]):,.0f} ({_spread(set_at[policy])}; "
            f"{sum(s is None for s in set_at[policy])} runs not within {args.max_votes:,}, "
            f"{wrong} settled on a wrong set)  [{time.perf_counter() - t0:.0f} s, "
            f"load {os.getloadavg()[0]:.1f}]"
        )
    for name, res in (("width", width_at), ("top-5 set", set_at)):
        act = _median(res["active"])
        for base in ("uniform", "weighted"):
            ref = _median(res[base])
            if not np.isfinite(act):
                print(f"{name}: active did not reach it within --max-votes: NOT MET")
                continue
            saving = 1 - act / ref  # ref infinite: at least (1 - act / max_votes)
            if not np.isfinite(ref):
                saving = 1 - act / args.max_votes
                print(f"{name}: active vs {base}: > {saving:.0%} fewer ({base} not reached)")
                continue
            verdict = "MET" if saving >= 0.30 else "NOT MET"
            print(f"{name}: active vs {base}: {saving:.0%} fewer votes (target >= 30%): {verdict}")
    oracle = oracle_width(true, battles)
    print(
        "width, fixed designs at the true ratings (no estimation, no floor): "
        + ", ".join(f"{k} {v:,.0f}" for k, v in oracle.items())
    )
    gap, need = order_bound(true)
    print(
        f"top-5 order (every top-5 rank range a single rank): the true top 5 has a {gap:.1f} Elo "
        f"gap; any policy needs >= {need:,.0f} votes (information bound), beyond --max-votes"
    )
    t0 = time.perf_counter()
    for seed in range(args.runs, args.ipw_runs):  # more active runs, stopped at the width
        rng = np.random.default_rng(seed)
        w, _, _, data = run(
            "active", true, battles, rng, args.step, args.max_votes, width_only=True
        )
        active_data.append(tuple(x[: w or x.size] for x in data))
    checks = [ipw_check(true, d) for d in active_data]
    top10 = np.argsort(-true)[:10]
    runs = len(checks)
    print(f"IPW check: {runs} active runs at the width stop [{time.perf_counter() - t0:.0f} s]")
    names = ("IPW, Firth", "unweighted, Firth", "IPW, MLE", "unweighted, MLE")
    for k, name in enumerate(names):
        errs = np.array([c[k][0] for c in checks])
        covers = np.array([c[k][1] for c in checks])
        # Errors are against the centre of all models, so their mean over all models is 0 by
        # construction; the top 10's mean error is what a non-uniform policy could bias.
        per_run = errs[:, top10].mean(axis=1)
        mean, se = per_run.mean(), per_run.std(ddof=1) / np.sqrt(runs)
        bias = errs.mean(axis=0)
        z = bias / (errs.std(axis=0, ddof=1) / np.sqrt(runs))
        verdict = "MET" if abs(mean) <= 2 and 2 * se < 2 else "NOT MET"
        coverage = covers.mean()
        cover_ok = "MET" if 0.93 <= coverage <= 0.97 else "NOT MET"
        print(
            f"  {name:17s}: top-10 mean error {mean:+.2f} Elo (SE {se:.2f}; within 2 Elo with "
            f"2 SE < 2: {verdict}); per-model bias / SE, RMS over {true.size} models "
            f"{np.sqrt(np.mean(z**2)):.2f} (1 when unbiased); top-10 RMS error "
            f"{np.sqrt(np.mean(errs[:, top10] ** 2)):.1f} Elo; 95% coverage {coverage:.3f} "
            f"(SE {np.sqrt(coverage * (1 - coverage) / covers.size):.3f}; top 10 "
            f"{covers[:, top10].mean():.3f}; target 0.93-0.97: {cover_ok})"
        )
    a, b, o, _ = active_data[0]
    t0 = time.perf_counter()
    f1 = ratings.fragility(true.size, a, b, o, k=1)
    f5 = ratings.fragility(true.size, a, b, o, k=5)
    print(
        f"fragility of an active run's board at the width stop ({a.size:,} votes): top model "
        f"{f1.votes} votes (first-order {f1.approx}), top-5 order {f5.votes} (first-order "
        f"{f5.approx}); {time.perf_counter() - t0:.1f} s; brute-force equality: "
        f"tests/ratings/test_fragility.py"
    )
    compute_s, times = draw_time()
    verdict = "MET" if times["active"] < 1 else "NOT MET"
    print(
        f"draw at 100 models: active median {times['active']:.4f} ms, weighted "
        f"{times['weighted']:.4f} ms per prompt (target < 1 ms: {verdict}); "
        f"distribution computed in {compute_s * 1e3:.0f} ms (after a refresh)"
    )


if __name__ == "__main__":
    main()
