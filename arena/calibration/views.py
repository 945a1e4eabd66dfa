"""Calibration page and JSON API: how far each judge agrees with the people it stands in for.

``GET /calibration/[?judge=NAME]`` (page) and ``GET /api/calibration/[?judge=NAME]`` (JSON);
without ``judge``, every judge. Both need a signed-in user: the page redirects to the sign-in
page, the API answers 403 in JSON. An unknown judge name is a 404 (JSON for the API).

Reports are computed by a worker and stored (:mod:`arena.calibration.store`); these views only
read them. A judge whose stored report is not computed from the current data gets a
computation queued: meanwhile its stale report is shown marked "updating", or, before its
first report, "computing" with a progress block that ``static/arena/progress.js`` follows
through ``GET /api/calibration/progress/[?judge=NAME]``; a page with nothing to show yet
reloads itself (``Refresh`` header) until the report is there.

The API answers ``{"status", "judges": [report, ...], "reports": [state, ...],
"progress_url"}``: ``status`` is ``current`` (every report computed from the current data),
``updating`` (some are stale and being recomputed), ``computing`` (some judge has no report
yet: the answer is 202 and lists only the reports there are) or ``failed``; each state is
``{"judge", "state", "computed_at", "error"}``. ``judges`` holds the reports themselves (see
:func:`arena.calibration.report.calibration_report`).
"""

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from arena.calibration.store import PENDING, CalibrationState
from arena.calibration.tasks import calibration_reports
from arena.core.access import api_view
from arena.models import CalibrationReport, Judge

RELOAD_SECONDS = 3  # the page without a report to show reloads this often


def _get_judges(request) -> list[Judge] | None:
    """The judge named by ``?judge=`` (404 if none has that name), or None for every judge."""
    name = request.GET.get("judge", "").strip()
    if not name:
        return None
    judge = Judge.objects.filter(name=name).first()
    if judge is None:
        raise Http404(f"No judge is named {name!r}.")
    return [judge]


def _targets(judges: list[Judge] | None) -> list[Judge]:
    return list(Judge.objects.order_by("name")) if judges is None else judges


def _overall(states: list[CalibrationState]) -> str:
    kinds = {s.state for s in states}
    for kind in ("computing", "failed", "updating", "stale"):
        if kind in kinds:
            return "updating" if kind == "stale" else kind
    return "current"


def _progress_url(judges: list[Judge] | None) -> str:
    url = reverse("calibration_progress")
    return f"{url}?{urlencode({'judge': judges[0].name})}" if judges else url


@api_view
@never_cache
@require_GET
def calibration_api(request):
    judges = _get_judges(request)
    states = calibration_reports(_targets(judges))
    status = _overall(states)
    body = {
        "status": status,
        "judges": [s.report for s in states if s.report is not None],
        "reports": [
            {
                "judge": s.judge.name,
                "state": s.state,
                "computed_at": s.computed_at.isoformat() if s.computed_at else None,
                "error": s.error,
            }
            for s in states
        ],
        "progress_url": _progress_url(judges),
    }
    return JsonResponse(
        body,
        status=202 if status == "computing" else 200,
        json_dumps_params={"ensure_ascii": False},
    )


def progress_data(judges: list[Judge]) -> dict:
    """The computations under way for ``judges``, in the vocabulary of progress.js."""
    rows = list(CalibrationReport.objects.filter(judge__in=judges, status__in=PENDING))
    running = any(r.status == CalibrationReport.Status.RUNNING for r in rows)
    status = "running" if running else "queued" if rows else "done"
    total = sum(r.steps_total for r in rows)
    done = sum(r.steps_done for r in rows)
    return {
        "status": status,
        "status_display": {"running": "computing", "queued": "queued", "done": "ready"}[status],
        "finished": not rows,
        "total": total,
        "done": done,
        "failed": 0,
        "message": "",
    }


@api_view
@never_cache
@require_GET
def calibration_progress(request):
    return JsonResponse(progress_data(_targets(_get_judges(request))))


@login_required
@never_cache
@require_GET
def calibration_page(request):
    judges = _get_judges(request)
    targets = _targets(judges)
    states = calibration_reports(targets)
    entries = [
        {
            "name": s.judge.name,
            "state": s.state,
            "computed_at": s.computed_at,
            "error": s.error,
            "report": None if s.report is None else _present(s.report),
        }
        for s in states
    ]
    waiting = [s for s in states if s.state == "computing"]
    context = {
        "entries": entries,
        "judges": [j.name for j in Judge.objects.order_by("name")],
        "selected": judges[0].name if judges else "",
        "progress": progress_data(targets) if any(s.pending for s in states) else None,
        "progress_url": _progress_url(judges),
        "reload_seconds": RELOAD_SECONDS if waiting else None,
    }
    response = render(request, "arena/calibration.html", context)
    if waiting:
        response["Refresh"] = str(RELOAD_SECONDS)  # honoured by browsers; no script needed
    return response


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _dec(x, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}".replace("-", "−")


def _cell(estimate: dict | None, kind: str = "pct", digits: int = 3) -> dict:
    """Value and interval of an estimate, formatted as a percentage or a decimal."""
    if estimate is None:
        return {"value": "—", "ci": ""}
    if kind == "pct":
        value, low, high = (estimate[k] for k in ("value", "lower", "upper"))
        ci = "" if low is None else f"{100 * low:.1f}–{100 * high:.1f}%"
        return {"value": _pct(value), "ci": ci}
    ci = (
        ""
        if estimate["lower"] is None
        else (f"{_dec(estimate['lower'], digits)} to {_dec(estimate['upper'], digits)}")
    )
    return {"value": _dec(estimate["value"], digits), "ci": ci}


def _agreement_rows(judge: dict | None, humans: dict | None) -> list[dict]:
    rows = []
    for key, label, kind in (
        ("with_ties", "Agreement with the majority, ties included", "pct"),
        ("without_ties", "Agreement on pairs where neither side says tie", "pct"),
        ("kappa", "Cohen's kappa (agreement beyond chance)", "dec"),
    ):
        rows.append(
            {
                "label": label,
                "judge": _cell(judge and judge[key], kind),
                "humans": _cell(humans and humans[key], kind),
            }
        )
    return rows


def _confusion(confusion: dict | None) -> dict | None:
    if confusion is None:
        return None
    counts = confusion["counts"]
    labels = confusion["labels"]
    rows = [
        {
            "label": label,
            "cells": [{"count": n, "diagonal": r == c} for c, n in enumerate(counts[r])],
            "total": sum(counts[r]),
        }
        for r, label in enumerate(labels)
    ]
    totals = [sum(row[c] for row in counts) for c in range(len(labels))]
    return {
        "labels": labels,
        "rows": rows,
        "totals": totals,
        "total": sum(totals),
        "row_title": confusion["rows"],
        "column_title": confusion["columns"],
    }


def _first_share(position: dict | None) -> dict:
    if position is None:
        return {"value": "—", "ci": "", "counts": ""}
    counts = (
        f"{position['n_first']} first, {position['n_second']} second, {position['n_ties']} ties"
    )
    return {**_cell(position["first_share"]), "counts": counts}


def _length_rows(length: dict | None) -> list[dict]:
    if length is None:
        return []
    judge, humans = length["judge"], length["humans"]
    return [
        {
            "label": "Share of decided verdicts that pick the longer answer",
            "judge": _cell(judge and judge["longer_share"]),
            "humans": _cell(humans and humans["longer_share"]),
        },
        {
            "label": "Logistic slope on the relative length difference (0 = no length bias)",
            "judge": _cell(judge and judge["slope"], "dec", 2),
            "humans": _cell(humans and humans["slope"], "dec", 2),
        },
    ]


def _board_rows(board: dict | None) -> list[dict]:
    if board is None:
        return []
    raw, debiased = board["raw"], board["debiased"]
    rows = [
        ("Spearman correlation with the human board", "spearman", _dec),
        ("Kendall correlation with the human board", "kendall", _dec),
        ("Separability (model pairs whose intervals do not overlap)", "separability", _pct),
        ("Agreement with confidence intervals", "agreement_with_ci", _pct),
        ("Brier score (lower is better)", "brier", lambda x: _dec(x, 4)),
    ]
    return [
        {"label": label, "raw": fmt(raw[key]), "debiased": fmt(debiased[key])}
        for label, key, fmt in rows
    ]


def _models(board: dict | None) -> list[dict]:
    if board is None:
        return []

    def fmt(entry):
        return {
            "rating": f"{entry['rating']:.0f}",
            "ci": f"{entry['lower']:.0f}–{entry['upper']:.0f}",
        }

    return [
        {
            "contestant": row["contestant"],
            "human": fmt(row["human"]),
            "raw": fmt(row["raw"]),
            "debiased": fmt(row["debiased"]),
        }
        for row in board["models"]
    ]


def _present(report: dict) -> dict:
    """The report as the template shows it."""
    position = report["position"] or {}
    board = report["leaderboard"]
    coefficient = board and board["debiased"]["length_coefficient"]
    return {
        "name": report["judge"]["name"],
        "verdict": report["verdict"],
        "not_measured": report["not_measured"],
        "data": report["data"],
        "settings": report["settings"],
        "agreement": _agreement_rows(report["agreement"], report["human_baseline"]),
        "confusion": _confusion(report["confusion"]),
        "categories": [
            {
                "name": row["name"],
                "n_pairs": row["n_pairs"],
                "with_ties": _cell(row["judge"]["with_ties"]),
                "without_ties": _cell(row["judge"]["without_ties"]),
                "kappa": _cell(row["judge"]["kappa"], "dec"),
                "humans": _cell(row["humans"] and row["humans"]["with_ties"]),
            }
            for row in report["categories"]
        ],
        "position": {
            "judge_first": _first_share(position.get("judge_first")),
            "human_first": _first_share(position.get("human_first")),
            "consistency": _cell(position.get("consistency")),
            "consistency_n": position.get("consistency_n", 0),
        },
        "length": _length_rows(report["length"]),
        "board": board
        and {
            "n_models": board["n_models"],
            "n_resamples": board["n_resamples"],
            "human_separability": _pct(board["human_separability"]),
            "rows": _board_rows(board),
            "raw_description": board["raw"]["description"],
            "debiased_description": board["debiased"]["description"],
            "length_coefficient": coefficient and _cell(coefficient, "dec", 0),
            "notes": board["notes"],
            "models": _models(board),
        },
    }
