"""Benchmark of the ratings engine on simulated arena-sized data; prints figures only.

    .venv/bin/python tests/benchmarks/bench_ratings.py           # 1M battles, 100 models
    .venv/bin/python tests/benchmarks/bench_ratings.py --quick   # small smoke run
    .venv/bin/python tests/benchmarks/bench_ratings.py --scale 500:2000000 --scale 1000:5000000
                                                   # large boards: fit + 1000 rounds vs choix
    .venv/bin/python tests/benchmarks/bench_ratings.py --style-scale 100:10000000
                                                   # style fit + sandwich on many battles

Data: battles over models with skewed pair frequencies (pair probability proportional to the
product of log-normal popularities), about 30% ties (a fifth of them coded both_bad), and
answer lengths / Markdown counts per side for style control, with a true length effect.
Phases (medians of repeated runs): aggregation, point fit (with and without aggregation),
fit + bootstrap rounds, sandwich intervals, style-controlled fit, style-controlled fit +
bootstrap rounds, and peak traced memory of each. If Evalica and choix are installed they are
timed on the same data (the same Bradley-Terry MLE, ties as half a win), with ratios and the
largest rating difference in Elo points; a competitor that is not installed is skipped with a
note. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import ratings  # noqa: E402
from ratings import SCALE, aggregate, battle_features, bootstrap, fit_bt, fit_style, sandwich  # noqa: E402


def simulate(n_models: int, n_battles: int, seed: int):
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 0.55, n_models)
    popularity = rng.lognormal(0.0, 1.0, n_models)
    iu, ju = np.triu_indices(n_models, 1)
    w = popularity[iu] * popularity[ju]
    pair = rng.choice(iu.size, size=n_battles, p=w / w.sum())
    flip = rng.random(n_battles) < 0.5
    a = np.where(flip, ju[pair], iu[pair])
    b = np.where(flip, iu[pair], ju[pair])
    verbosity = 0.5 * theta + rng.normal(0.0, 0.3, n_models)
    len_a = np.exp(6 + verbosity[a] + rng.normal(0, 0.4, n_battles))
    len_b = np.exp(6 + verbosity[b] + rng.normal(0, 0.4, n_battles))
    fa = np.column_stack(
        [len_a, rng.poisson(2, n_battles), rng.poisson(4, n_battles), rng.poisson(1, n_battles)]
    )
    fb = np.column_stack(
        [len_b, rng.poisson(2, n_battles), rng.poisson(4, n_battles), rng.poisson(1, n_battles)]
    )
    style = battle_features(fa, fb)
    p = expit(theta[a] - theta[b] + 0.3 * style.values[:, 0])
    t = 0.36 * 4 * p * (1 - p)  # tie probability; expected score stays p
    u = rng.random(n_battles)
    o = np.where(u < t, ratings.TIE, np.where(u < t + p - t / 2, ratings.A_WINS, ratings.B_WINS))
    o[(o == ratings.TIE) & (rng.random(n_battles) < 0.2)] = ratings.BOTH_BAD
    return a.astype(np.int64), b.astype(np.int64), o.astype(np.int64), style


_CPU: dict[float, float] = {}  # wall median -> CPU median of the same phase


def median_time(fn, repeats: int):
    """Median wall time of ``repeats`` runs (the CPU time of all threads is kept for
    :func:`line`: on a busy machine it shows what the wall time would be without sharing)."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        c, t = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    wall = statistics.median(walls)
    _CPU[wall] = statistics.median(cpus)
    return wall, out


def peak_mib(fn) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def line(label: str, seconds: float, extra: str = "") -> None:
    cpu = _CPU.get(seconds)
    cpu_text = f"(cpu {cpu * 1e3:9.1f} ms)" if cpu is not None else " " * 19
    print(f"  {label:<50} {seconds * 1e3:9.1f} ms {cpu_text}  {extra}")


def bench_evalica(a, b, o, n_models, fit, rounds_probe: int, rounds: int):
    try:
        import evalica
    except ImportError:
        print("  evalica: not installed, skipped (pip install evalica)")
        return None
    winners = np.array(
        [evalica.Winner.X, evalica.Winner.Y, evalica.Winner.Draw, evalica.Winner.Draw], dtype=object
    )[o].tolist()
    index = __import__("pandas").Index(np.arange(n_models))
    xs, ys = a.tolist(), b.tolist()

    def run():
        return evalica.bradley_terry(xs, ys, winners, index=index, tolerance=1e-10, limit=1000)

    t_fit, res = median_time(run, 3)
    scores = res.scores.reindex(np.arange(n_models)).to_numpy()
    theirs = np.log(scores)
    diff = np.max(np.abs(SCALE * ((theirs - theirs.mean()) - fit.theta)))
    line("evalica point fit", t_fit, f"max |diff| {diff:.2e} Elo")
    rng = np.random.default_rng(0)
    win_arr = np.asarray(winners, dtype=object)
    spent = 0.0
    for _ in range(rounds_probe):
        idx = rng.integers(0, a.size, a.size)
        xs_r, ys_r, w_r = a[idx].tolist(), b[idx].tolist(), win_arr[idx].tolist()
        t = time.perf_counter()
        evalica.bradley_terry(xs_r, ys_r, w_r, index=index, tolerance=1e-10, limit=1000)
        spent += time.perf_counter() - t
    per_round = spent / rounds_probe
    total = t_fit + rounds * per_round
    line(
        f"evalica fit + {rounds} rounds (extrapolated)",
        total,
        f"from {rounds_probe} refits, {per_round * 1e3:.0f} ms each (resampling not timed)",
    )
    return total, diff


def bench_choix(counts, fit, rounds: int, rounds_probe: int):
    try:
        import choix
    except ImportError:
        print("  choix: not installed, skipped (pip install choix)")
        return None
    n = counts.n_models
    cells = np.column_stack(
        [counts.counts[:, 0], counts.counts[:, 1], counts.counts[:, 2] + counts.counts[:, 3]]
    ).astype(float)

    def matrix(c):
        m = np.zeros((n, n))
        # comp_mat[i, j]: times i beat j; a tie is half a win each way.
        m[counts.pair_i, counts.pair_j] = c[:, 0] + 0.5 * c[:, 2]
        m[counts.pair_j, counts.pair_i] = c[:, 1] + 0.5 * c[:, 2]
        return m

    mat = matrix(cells)

    def run():
        return choix.ilsr_pairwise_dense(mat, tol=1e-12, max_iter=10_000)

    t_fit, params = median_time(run, 3)
    params = params - params.mean()
    diff = np.max(np.abs(SCALE * (params - fit.theta)))
    line("choix ilsr_pairwise_dense point fit (matrix given)", t_fit, f"max |diff| {diff:.2e} Elo")
    rng = np.random.default_rng(0)
    flat = cells.ravel()
    total_n = int(flat.sum())

    def refits(k):
        for _ in range(k):
            x = rng.multinomial(total_n, flat / total_n).reshape(cells.shape)
            choix.ilsr_pairwise_dense(matrix(x), tol=1e-8, max_iter=10_000, initial_params=params)

    t = time.perf_counter()
    refits(rounds_probe)
    per_round = (time.perf_counter() - t) / rounds_probe
    total = t_fit + rounds * per_round
    label = f"choix fit + {rounds} rounds" + (" (extrapolated)" if rounds_probe < rounds else "")
    line(label, total, f"{per_round * 1e3:.1f} ms per warm-started refit incl. multinomial draw")
    return total, diff


def bootstrap_phases(fit, rounds: int) -> tuple[float, float, int]:
    """CPU seconds of the bootstrap's two phases over ``rounds`` rounds, on one thread:
    drawing the resamples and solving them (the chunks :func:`ratings.bootstrap` uses)."""
    from ratings import _intervals as iv
    from ratings._fit import fitted_pairs
    from ratings._resample import MultinomialSampler

    _, cells = fitted_pairs(fit)
    n_pairs = cells.shape[0]
    perm = np.concatenate([np.arange(k, n_pairs, iv._GROUPS) for k in range(iv._GROUPS)])
    c = time.thread_time()
    sampler = MultinomialSampler(cells[perm].T.ravel())
    chord = iv._Chord(fit, 1e-6, perm)
    setup = time.thread_time() - c
    chunk = max(8, min(iv._CHUNK, iv._CHUNK_CELLS // (3 * n_pairs)))
    rng = np.random.default_rng(0)
    draw = solve = 0.0
    for start in range(0, rounds, chunk):
        size = min(chunk, rounds - start)
        c = time.thread_time()
        x = sampler.draw(rng, size, np.float32).reshape(3, n_pairs, size)
        draw += time.thread_time() - c
        c = time.thread_time()
        chord.solve(x[0], x[1], x[2])
        solve += time.thread_time() - c
    return setup, draw, solve


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_scale(n_models: int, n_battles: int, rounds: int, probe_choix: int, repeats: int) -> None:
    """Large boards: aggregate + fit + ``rounds`` bootstrap rounds (each phase), sandwich, peak
    memory, against choix's warm-started refits (a few, extrapolated) in the same run."""
    print(f"scale: {n_models} models, {n_battles:,} battles, {rounds} rounds")
    print(
        f"  cpus available {len(os.sched_getaffinity(0))}, load average "
        f"{os.getloadavg()[0]:.2f} at start"
    )
    a, b, o, _ = simulate(n_models, n_battles, seed=1)
    counts = aggregate(n_models, a, b, o)
    print(f"  data: {counts.n_pairs} pairs")
    t_agg, counts = median_time(lambda: aggregate(n_models, a, b, o), repeats)
    line("aggregate", t_agg)
    t_fit, fit = median_time(lambda: fit_bt(counts), repeats)
    line("point fit (on counts)", t_fit, f"{fit.n_iter} Newton iterations")
    t_iv, iv = median_time(lambda: bootstrap(fit, n_resamples=rounds, rng=0), repeats)
    line(f"bootstrap, {rounds} rounds (on a fit)", t_iv, f"{iv.n_degenerate} degenerate")
    setup, draw, solve = bootstrap_phases(fit, rounds)
    print(
        f"    its phases on one thread (cpu): setup {setup * 1e3:.0f} ms, resampling "
        f"{draw * 1e3:.0f} ms, solving {solve * 1e3:.0f} ms"
    )
    t_boot, iv = median_time(
        lambda: bootstrap(fit_bt(aggregate(n_models, a, b, o)), n_resamples=rounds, rng=0),
        repeats,
    )
    line(f"aggregate + fit + {rounds} bootstrap rounds", t_boot, "target <= 5 s / 15 s")
    t_sand, _ = median_time(lambda: sandwich(fit), repeats)
    line("sandwich intervals (on a fit)", t_sand)
    peak = peak_mib(lambda: bootstrap(fit_bt(aggregate(n_models, a, b, o)), n_resamples=rounds))
    print(f"    peak traced memory, aggregate + fit + bootstrap: {peak:8.1f} MiB")
    print(f"    peak resident memory of the process so far: {peak_rss_mib():8.1f} MiB")
    print(f"  load average {os.getloadavg()[0]:.2f} before choix")
    ch = bench_choix(counts, fit, rounds, probe_choix)
    if ch:
        print(f"  ratings speed-up over choix x{ch[0] / t_boot:.1f} (target >= 10)")
    print(f"  load average {os.getloadavg()[0]:.2f} at end")


def bench_style_scale(n_models: int, n_battles: int) -> None:
    """Style-controlled fit with sandwich intervals on many battles."""
    print(f"style scale: {n_models} models, {n_battles:,} battles")
    print(f"  load average {os.getloadavg()[0]:.2f} at start")
    a, b, o, style = simulate(n_models, n_battles, seed=1)
    t_fit, sfit = median_time(lambda: fit_style(n_models, a, b, o, style), 1)
    line("style-controlled fit (4 features)", t_fit, f"{sfit.n_iter} Newton iterations")
    t_sand, _ = median_time(lambda: sandwich(sfit), 1)
    line("style sandwich intervals", t_sand)
    line("style fit + sandwich", t_fit + t_sand, "target <= 30 s")
    print(f"  load average {os.getloadavg()[0]:.2f} at end")


def _size(text: str) -> tuple[int, int]:
    models, _, battles = text.partition(":")
    return int(models), int(battles)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the fast phases")
    parser.add_argument("--no-competitors", action="store_true")
    parser.add_argument(
        "--scale", type=_size, action="append", metavar="MODELS:BATTLES", help="large board"
    )
    parser.add_argument("--style-scale", type=_size, metavar="MODELS:BATTLES")
    parser.add_argument("--probe-choix", type=int, default=3, help="choix refits timed (scale)")
    parser.add_argument("--scale-repeats", type=int, default=3, help="repeats of each scale phase")
    args = parser.parse_args(argv)
    if args.scale or args.style_scale:
        for n_models, n_battles in args.scale or []:
            bench_scale(n_models, n_battles, 1000, args.probe_choix, args.scale_repeats)
        if args.style_scale:
            bench_style_scale(*args.style_scale)
        return 0
    if args.quick:
        n_models, n_battles, rounds, style_rounds, repeats = 30, 50_000, 200, 10, 3
        probe_evalica, probe_choix = 2, 20
    else:
        n_models, n_battles, rounds, style_rounds, repeats = 100, 1_000_000, 1000, 100, args.repeats
        probe_evalica, probe_choix = 3, 100
    print(f"ratings benchmark: {n_battles:,} battles, {n_models} models, {rounds} bootstrap rounds")
    print(
        f"  cpus available {len(os.sched_getaffinity(0))}, load average "
        f"{os.getloadavg()[0]:.2f} at start"
    )
    a, b, o, style = simulate(n_models, n_battles, seed=1)
    ties = np.isin(o, [ratings.TIE, ratings.BOTH_BAD]).mean()
    counts = aggregate(n_models, a, b, o)
    print(f"  data: {counts.n_pairs} pairs, {ties:.1%} ties (incl. both_bad)")

    t_agg, counts = median_time(lambda: aggregate(n_models, a, b, o), repeats)
    t_fit, fit = median_time(lambda: fit_bt(counts), repeats)
    t_both, _ = median_time(lambda: fit_bt(aggregate(n_models, a, b, o)), repeats)
    line("aggregation", t_agg)
    line("point fit (on counts)", t_fit, f"{fit.n_iter} Newton iterations")
    line("point fit including aggregation", t_both, "target <= 30 ms")
    t_boot, iv = median_time(
        lambda: bootstrap(fit_bt(aggregate(n_models, a, b, o)), n_resamples=rounds, rng=0),
        max(1, repeats // 2 + 1),
    )
    line(
        f"fit + {rounds} bootstrap rounds",
        t_boot,
        f"target <= 500 ms; {iv.n_degenerate} degenerate rounds",
    )
    t_sand, _ = median_time(lambda: sandwich(fit), repeats)
    line("sandwich intervals (on a fit)", t_sand, "target <= 50 ms")
    t_style, sfit = median_time(lambda: fit_style(n_models, a, b, o, style), 3)
    line(
        "style-controlled fit (4 features)",
        t_style,
        f"target <= 3 s; length coef {sfit.coef[0]:.3f} (true 0.3)",
    )
    t_sboot, _ = median_time(
        lambda: bootstrap(fit_style(n_models, a, b, o, style), n_resamples=style_rounds, rng=0), 1
    )
    line(f"style-controlled fit + {style_rounds} bootstrap rounds", t_sboot)

    print("  peak traced memory (tracemalloc, separate untimed runs):")
    for label, fn in (
        ("point fit incl. aggregation", lambda: fit_bt(aggregate(n_models, a, b, o))),
        (f"fit + {rounds} bootstrap rounds", lambda: bootstrap(fit, n_resamples=rounds, rng=0)),
        ("style-controlled fit", lambda: fit_style(n_models, a, b, o, style)),
    ):
        print(f"    {label:<44} {peak_mib(fn):8.1f} MiB")

    if not args.no_competitors:
        print("  competitors on the same data (same MLE, ties as half a win):")
        results = {}
        ev = bench_evalica(a, b, o, n_models, fit, probe_evalica, rounds)
        if ev:
            results["evalica"] = ev
        ch = bench_choix(counts, fit, rounds, probe_choix)
        if ch:
            results["choix"] = ch
        if results:
            name, (best, _) = min(results.items(), key=lambda kv: kv[1][0])
            print(
                f"  fastest competitor for fit + {rounds} rounds: {name}, "
                f"{best * 1e3:.0f} ms; ratings speed-up x{best / t_boot:.1f} (target >= 5)"
            )
            for name, (_, diff) in results.items():
                print(f"  rating agreement with {name}: max |diff| {diff:.2e} Elo (target <= 0.01)")
    print(f"  load average {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
