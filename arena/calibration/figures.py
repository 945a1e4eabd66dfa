"""A calibration report's figures as plain dicts: every estimate is {value, lower, upper}, an
undefined number is None (JSON null)."""

import numpy as np

from ratings import agreement as ag

LABELS = ("A", "B", "tie")  # ratings.A_WINS, B_WINS, TIE


def number(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def estimate(e: ag.Estimate) -> dict:
    return {"value": number(e.value), "lower": number(e.lower), "upper": number(e.upper)}


def agreement_figures(a: ag.Agreement) -> dict:
    return {
        "with_ties": estimate(a.agreement),
        "without_ties": estimate(a.agreement_no_ties),
        "kappa": estimate(a.kappa),
        "n_pairs": a.n_items,
        "n_comparisons": a.n_comparisons,
    }


def confusion(a: ag.Agreement, rows: str, columns: str) -> dict:
    return {
        "labels": list(LABELS),
        "rows": rows,
        "columns": columns,
        "counts": a.confusion.tolist(),
    }


def first_position(p: ag.PositionPreference) -> dict:
    return {
        "first_share": estimate(p.first_share),
        "n_first": p.n_first,
        "n_second": p.n_second,
        "n_ties": p.n_ties,
    }


def length_bias(b: ag.LengthBias) -> dict:
    return {
        "longer_share": estimate(b.longer_share),
        "slope": estimate(b.slope),
        "n_used": b.n_used,
    }


def percent(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def interval_text(e: dict) -> str:
    if e["lower"] is None:
        return "no interval"
    return f"{100 * e['lower']:.1f}–{100 * e['upper']:.1f}%"
