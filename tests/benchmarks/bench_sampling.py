"""Benchmark of pair sampling policies on simulated arenas with known truth; prints figures.

    .venv/bin/python tests/benchmarks/bench_sampling.py            # 20 runs per policy
    .venv/bin/python tests/benchmarks/bench_sampling.py --runs 3   # quick

Truth: the 76 Chatbot Arena ratings of 2024-03-29 (tests/data/chatbot-arena-20240329, Apache-2.0,
lmarena/arena-hard-auto). Votes follow Bradley-Terry on those ratings (no ties). Policies:
``uniform`` (every pair alike), ``weighted`` (today's draw, with each model's sampling weight set
to its real Chatbot Arena battle count) and ``active`` (ratings.active_pairs, recomputed after
every refit, as after a leaderboard refresh). Every ``--step`` votes the board is refitted
(Bradley-Terry, sandwich intervals); a run stops when the mean 95% interval width of the
estimated top 10 falls below 40 Elo ("width"), and separately records when the estimated top-5
order first equals the true one and stays so for the three following refits ("top-5").

Then, on the active runs at their stopping point: IPW-weighted ratings (weights 1 / P(pair),
sandwich intervals) against the truth: mean signed error, per-model bias over the runs, and the
coverage of the 95% intervals. Fragility of the final board (approximation vs verified refit)
and the draw time of the active policy at 100 models (the roster's code path) close the run.
Nothing here asserts; it prints what is met and what is not.
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


def run(policy, true, sim_weights, rng, step, max_votes):
    n = true.size
    fixed = {
        "uniform": ratings.uniform_pairs(n),
        "weighted": weighted_pairs(sim_weights),
    }.get(policy)
    counts = np.zeros((n, n))
    a_all, b_all, o_all, p_all = [], [], [], []
    dist = fixed or ratings.uniform_pairs(n)
    width_at = top5_at = None
    streak, votes = 0, 0
    true_top5 = np.argsort(-true)[:5]
    board = None
    while votes < max_votes and (width_at is None or top5_at is None):
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
        board = ratings.leaderboard_from_counts(pc, ci="sandwich")
        est = np.full(n, np.nan)
        est[board.model] = board.rating
        width = np.full(n, np.inf)
        width[board.model] = board.upper - board.lower
        top = np.argsort(-np.nan_to_num(est, nan=-np.inf))[:10]
        if width_at is None and np.mean(width[top]) < 40:
            width_at = votes
        if np.array_equal(top[:5], true_top5):
            streak += 1
            if streak == 4 and top5_at is None:
                top5_at = votes - 3 * step
        else:
            streak = 0
        if policy == "active":
            sym = counts + counts.T
            dist = ratings.active_pairs(np.nan_to_num(est, nan=np.nanmean(est)), sym, top=10)
    data = tuple(np.concatenate(x) for x in (a_all, b_all, o_all, p_all))
    return width_at, top5_at, data


def ipw_check(true, data):
    a, b, o, p = data
    n = true.size
    w = ratings.ipw_weights(p, 1 / (n * (n - 1) / 2))
    board = ratings.leaderboard(n, a, b, o, weights=w, ci="sandwich")
    est, lo, hi = (np.full(n, np.nan) for _ in range(3))
    est[board.model], lo[board.model], hi[board.model] = board.rating, board.lower, board.upper
    shift = np.nanmean(est) - true.mean()  # same centre (all models are present)
    err = est - shift - true
    cover = (lo - shift <= true) & (true <= hi - shift)
    return err, cover


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--step", type=int, default=1000)
    ap.add_argument("--max-votes", type=int, default=150_000)
    args = ap.parse_args()
    true, battles = truth()
    print(f"load average: {os.getloadavg()[0]:.2f}; {true.size} models; {args.runs} runs")
    results = {}
    active_data = []
    for policy in ("uniform", "weighted", "active"):
        t0 = time.perf_counter()
        widths, top5s = [], []
        for seed in range(args.runs):
            rng = np.random.default_rng(seed)
            w, t5, data = run(policy, true, battles, rng, args.step, args.max_votes)
            widths.append(w if w is not None else np.inf)
            top5s.append(t5 if t5 is not None else np.inf)
            if policy == "active":
                active_data.append(data)
        results[policy] = (np.median(widths), np.median(top5s))
        print(
            f"{policy:9s} votes until top-10 width < 40: median {np.median(widths):,.0f} "
            f"(IQR {np.percentile(widths, 25):,.0f}-{np.percentile(widths, 75):,.0f}); "
            f"until top-5 order settled: median {np.median(top5s):,.0f}  "
            f"[{time.perf_counter() - t0:.0f} s]"
        )
    for name, col in (("width", 0), ("top-5", 1)):
        act = results["active"][col]
        for base in ("uniform", "weighted"):
            if not np.isfinite(results[base][col]) and not np.isfinite(act):
                print(f"{name}: active vs {base}: neither reached it within --max-votes: NOT MET")
                continue
            saving = 1 - act / results[base][col]
            verdict = "MET" if saving >= 0.30 else "NOT MET"
            print(f"{name}: active vs {base}: {saving:.0%} fewer votes (target >= 30%): {verdict}")
    errs, covers = zip(*(ipw_check(true, d) for d in active_data), strict=True)
    errs, covers = np.array(errs), np.array(covers)
    mean_err = np.nanmean(errs)
    bias = np.abs(np.nanmean(errs, axis=0))
    top10 = np.argsort(-true)[:10]
    coverage = np.nanmean(covers)
    print(
        f"IPW (active runs at stop): mean signed error {mean_err:+.2f} Elo "
        f"({'MET' if abs(mean_err) <= 2 else 'NOT MET'} within 2); per-model |bias| over runs: "
        f"median {np.median(bias):.2f}, top-10 max {bias[top10].max():.2f} Elo "
        f"(run-to-run noise of a bias estimate: ~{np.nanstd(errs) / np.sqrt(len(errs)):.1f})"
    )
    verdict = "MET" if 0.93 <= coverage <= 0.97 else "NOT MET"
    print(f"IPW 95% interval coverage: {coverage:.3f} (target 0.93-0.97): {verdict}")
    a, b, o, _ = active_data[0]
    t0 = time.perf_counter()
    f1 = ratings.fragility(true.size, a, b, o, k=1)
    f5 = ratings.fragility(true.size, a, b, o, k=5)
    print(
        f"fragility of an active run's final board ({a.size:,} votes): top model {f1.votes} "
        f"votes (first-order {f1.approx}), top-5 order {f5.votes} (first-order {f5.approx}); "
        f"{time.perf_counter() - t0:.1f} s; brute-force equality: tests/ratings/test_fragility.py"
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
