"""Leaderboard pages, the A-vs-B view, snapshot downloads and the JSON API.

Every number shown comes from a stored snapshot (arena/leaderboards.py); nothing is
computed in a template.
"""

import csv
import datetime as dt
import io

from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from arena.core.access import api_view, board_page, json_error
from arena.leaderboards.data import rated_votes
from arena.leaderboards.schedule import refresh_state
from arena.leaderboards.snapshots import latest_snapshot
from arena.models import Category, Judge, Judgement, LeaderboardSnapshot

# serve computes the first boards beside the server (human votes, then each judge): for this
# long after the first snapshot, a judge with verdicts but no board yet is still to come.
FIRST_REFRESH_WINDOW = dt.timedelta(minutes=15)

# Columns shown only when some row has a value: (template name, row key).
OPTIONAL_COLUMNS = (
    ("win_rate", "win_rate"),
    ("ttft", "median_ttft_ms"),
    ("tokens", "median_tokens"),
    ("cost", "cost_per_1000"),
)

CSV_COLUMNS = (
    "rank",
    "rank_ub",
    "rank_lower",
    "rank_upper",
    "model",
    "rating",
    "lower",
    "upper",
    "votes",
    "wins",
    "losses",
    "ties",
    "win_rate",
    "median_ttft_ms",
    "median_tokens",
    "cost_per_1000",
)


class BadQuery(ValueError):
    pass


def _scope(params) -> tuple[Judge | None, Category | None, bool]:
    """Read scope, judge, category and style from query parameters."""
    scope = params.get("scope", "human")
    judge = None
    if scope == "judge":
        name = params.get("judge")
        judge = Judge.objects.filter(name=name).first() if name else Judge.objects.first()
        if judge is None:
            raise BadQuery(f"Unknown judge {name!r}." if name else "There is no judge yet.")
    elif scope != "human":
        raise BadQuery("scope must be human or judge.")
    category = None
    if params.get("category"):
        category = Category.objects.filter(slug=params["category"]).first()
        if category is None:
            raise BadQuery(f"Unknown category {params['category']!r}.")
    style = params.get("style", "0")
    if style not in ("0", "1"):
        raise BadQuery("style must be 0 or 1.")
    return judge, category, style == "1"


def snapshot_meta(snapshot: LeaderboardSnapshot) -> dict:
    return {
        "id": snapshot.pk,
        "scope": snapshot.scope,
        "judge": snapshot.judge.name if snapshot.judge_id else None,
        "category": snapshot.category.slug if snapshot.category_id else None,
        "style_control": snapshot.style_control,
        "method": snapshot.method,
        "settings": snapshot.settings,
        "seed": snapshot.seed,
        "cutoff_id": snapshot.cutoff_vote_id,
        "cutoff_time": snapshot.cutoff_time.isoformat() if snapshot.cutoff_time else None,
        "code_version": snapshot.code_version,
        "completed_at": snapshot.completed_at.isoformat() if snapshot.completed_at else None,
        "csv": reverse("snapshot_download", args=[snapshot.pk, "csv"]),
        "json": reverse("snapshot_download", args=[snapshot.pk, "json"]),
    }


@api_view(board=True)
@require_GET
def api_leaderboard(request):
    try:
        judge, category, style = _scope(request.GET)
    except BadQuery as exc:
        return json_error(str(exc), 400)
    snapshot = latest_snapshot(
        judge=judge, category=category, style_control=style, with_pictures=True
    )
    if snapshot is None:
        return json_error("No complete snapshot for this scope yet.", 404)
    return JsonResponse(_snapshot_json(snapshot))


def _snapshot_json(snapshot) -> dict:
    return {
        "snapshot": snapshot_meta(snapshot),
        "results": snapshot.results,
        "pictures": snapshot.pictures,
    }


@api_view(board=True)
@require_GET
def api_snapshots(request):
    snapshots = LeaderboardSnapshot.objects.filter(
        status=LeaderboardSnapshot.Status.COMPLETE
    ).select_related("judge", "category")[:500]
    return JsonResponse({"snapshots": [snapshot_meta(s) for s in snapshots]})


@board_page
@require_GET
def snapshot_download(request, snapshot_id: int, fmt: str):
    snapshot = get_object_or_404(
        LeaderboardSnapshot, pk=snapshot_id, status=LeaderboardSnapshot.Status.COMPLETE
    )
    name = f"leaderboard-{snapshot.pk}"
    if fmt == "json":
        response = JsonResponse(_snapshot_json(snapshot))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(snapshot.results["rows"])
        response = HttpResponse(out.getvalue(), content_type="text/csv")
    else:
        raise Http404("Unknown format.")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


def _refresh_pending(judge: Judge | None) -> str:
    """Why a board may be on its way: "running" or "queued" (the cache), "first" (the first
    boards serve computes beside the server), or "" when nothing says one is coming."""
    state = refresh_state()
    if state:
        return state
    complete = LeaderboardSnapshot.objects.filter(status=LeaderboardSnapshot.Status.COMPLETE)
    if judge is None:
        human = complete.filter(scope=LeaderboardSnapshot.Scope.HUMAN)
        return "first" if not human.exists() and rated_votes().exists() else ""
    first = complete.order_by("completed_at").values_list("completed_at", flat=True).first()
    if (
        first is not None
        and timezone.now() - first < FIRST_REFRESH_WINDOW
        and not complete.filter(judge=judge).exists()
        and Judgement.objects.filter(judge=judge).exists()
    ):
        return "first"
    return ""


def _ranked_order(row: dict) -> tuple:
    """The order of the table: by the rank shown, the higher rating first within a rank."""
    return (row["rank_ub"], -row["rating"], row["model"])


def _page_context(request, with_pictures=False):
    judge, category, style = _scope(request.GET)
    snapshot = latest_snapshot(
        judge=judge, category=category, style_control=style, with_pictures=with_pictures
    )
    other = latest_snapshot(judge=judge, category=category, style_control=not style)
    context = {
        "judge": judge,
        "category": category,
        "style": style,
        "snapshot": snapshot,
        "judges": Judge.objects.order_by("name"),
        "categories": Category.objects.order_by("name"),
        "style_available": other is not None or style,
        "refresh": _refresh_pending(judge),
        "status_url": reverse("leaderboard_status") + "?" + request.GET.urlencode(),
    }
    if snapshot is None:
        return context
    results = snapshot.results
    rows = results["rows"]
    styled = results if style else (other.results if other else None)
    if styled and not style:
        by_id = {r["contestant_id"]: r for r in styled["rows"]}
        rows = [
            {
                **r,
                "sc_rating": by_id.get(r["contestant_id"], {}).get("rating"),
                "sc_delta": by_id.get(r["contestant_id"], {}).get("style_delta"),
            }
            for r in rows
        ]
    ranked = sorted((r for r in rows if r["rank"] is not None), key=_ranked_order)
    unranked = [r for r in rows if r["rank"] is None]
    min_votes = results.get("min_votes", snapshot.settings.get("min_votes"))
    for r in unranked:
        r["votes_short"] = max(0, (min_votes or 0) - r["votes"])
    context.update(
        results=results,
        ranked=ranked,
        unranked=unranked,
        min_votes=min_votes,
        shown={
            **{name: any(r.get(key) is not None for r in ranked) for name, key in OPTIONAL_COLUMNS},
            "style": any(
                r.get("plain_rating" if style else "sc_rating") is not None for r in ranked
            ),
        },
        meta=snapshot_meta(snapshot),
        n_votes=results["n_battles"],
    )
    return context


@api_view(board=True)
@never_cache
@require_GET
def leaderboard_status(request):
    """Is the board of this choice there, and is a newer one on its way? Polled by the page
    (static/arena/leaderboard.js) while it says "computing"."""
    try:
        judge, category, style = _scope(request.GET)
    except BadQuery as exc:
        return json_error(str(exc), 400)
    snapshot = latest_snapshot(judge=judge, category=category, style_control=style)
    return JsonResponse(
        {
            "snapshot": snapshot.pk if snapshot else None,
            "completed_at": snapshot.completed_at.isoformat()
            if snapshot and snapshot.completed_at
            else None,
            "n_votes": snapshot.results["n_battles"] if snapshot else None,
            "refresh": _refresh_pending(judge),
        }
    )


def _bad_query(request, template: str, exc: BadQuery):
    """The page with the reason, and the choices to pick a valid one: 400, never a 404."""
    context = {
        "query_error": str(exc),
        "judges": Judge.objects.order_by("name"),
        "categories": Category.objects.order_by("name"),
    }
    return render(request, template, context, status=400)


@board_page
@require_GET
def leaderboard_page(request):
    try:
        context = _page_context(request)
    except BadQuery as exc:
        return _bad_query(request, "arena/leaderboard.html", exc)
    return render(request, "arena/leaderboard.html", context)


@board_page
@require_GET
def compare_page(request):
    try:
        context = _page_context(request, with_pictures=True)
    except BadQuery as exc:
        return _bad_query(request, "arena/compare.html", exc)
    results = context.get("results")
    models = results["models"] if results else []
    asked_a, asked_b = request.GET.get("a"), request.GET.get("b")
    # Nothing asked (the page opened from the leaderboard): the two best models, compared.
    a = asked_a or (models[0] if models else None)
    b = asked_b or next((m for m in models if m != a), None)
    if results and a in models and b in models and a != b:
        i, j = models.index(a), models.index(b)
        pictures = context["snapshot"].pictures
        pw = pictures.get("pairwise")

        def pct(value):
            return None if value is None else f"{100 * value:.1f}%"

        context["pair"] = {
            "a": a,
            "b": b,
            "battles": pictures["battles"][i][j],
            "observed": pct(pictures["observed"][i][j]),
            "predicted": pct(pw and pw["prob"][i][j]),
            "lower": pct(pw and pw["lower"][i][j]),
            "upper": pct(pw and pw["upper"][i][j]),
            "significant": bool(pw and pw["significant"][i][j]),
            "votes_needed": pw and pw["votes_needed"][i][j],
        }
    elif asked_a or asked_b:
        unknown = [m for m in (asked_a, asked_b) if m and m not in models]
        context["pair_error"] = (
            f"{unknown[0]!r} is not on this leaderboard."
            if unknown
            else "Model A and model B are the same."
        )
    context["models"] = models
    context["a"], context["b"] = a, b
    return render(request, "arena/compare.html", context)
