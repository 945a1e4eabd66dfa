"""The API's own endpoints (external battles, tokens, the schema) and the token page."""

import contextlib
import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from arena.api import schema
from arena.api.external import BatchRejected, Problem, battles_submit
from arena.api.tokens import SCOPES, token_create, token_revoke
from arena.core.access import api_view, json_error
from arena.core.errors import ArenaError
from arena.models import ApiToken

MAX_BODY = 64 * 1024 * 1024  # bytes: a few thousand battles with long answers


def _body(request: HttpRequest):
    """The request's JSON, or a BatchRejected naming what is wrong with it."""
    raw = request.read(MAX_BODY + 1)  # not request.body: its limit is a form's (2.5 MB)
    if len(raw) > MAX_BODY:
        raise BatchRejected([Problem("body", f"larger than {MAX_BODY} bytes")])
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise BatchRejected([Problem("body", "not valid JSON (UTF-8)")]) from None


def _rejected(exc: BatchRejected) -> JsonResponse:
    problems = [p.as_dict() for p in exc.problems]
    return JsonResponse(
        {"error": f"Nothing was stored: {len(problems)} problems.", "problems": problems},
        status=400,
    )


@api_view(scope="vote")
@require_http_methods(["POST"])
def battle_submit(request):
    try:
        record = _body(request)
        results = battles_submit(user=request.user, records=[record])
    except BatchRejected as exc:
        # One battle: "records[0].outcome" reads "outcome".
        fields = [p.field.removeprefix("records[0]").lstrip(".") or "body" for p in exc.problems]
        return _rejected(
            BatchRejected(
                [Problem(f, p.problem) for f, p in zip(fields, exc.problems, strict=True)]
            )
        )
    result = results[0]
    return JsonResponse(result, status=201 if result["created"] else 200)


@api_view(scope="vote")
@require_http_methods(["POST"])
def battle_batch(request):
    try:
        body = _body(request)
        if not isinstance(body, dict) or set(body) != {"records"}:
            raise BatchRejected([Problem("body", 'expected {"records": [...]}')])
        results = battles_submit(user=request.user, records=body["records"])
    except BatchRejected as exc:
        return _rejected(exc)
    created = sum(r["created"] for r in results)
    return JsonResponse(
        {"stored": created, "duplicates": len(results) - created, "battles": results},
        status=201 if created else 200,
    )


def _token_json(token: ApiToken) -> dict:
    return {
        "id": token.pk,
        "name": token.name,
        "prefix": token.prefix,
        "scopes": token.scopes,
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


@api_view(scope="read")
@require_GET
def token_list(request):
    tokens = ApiToken.objects.filter(user=request.user)
    return JsonResponse({"tokens": [_token_json(t) for t in tokens]})


@api_view(scope="admin")
@require_http_methods(["POST"])
def token_new(request):
    try:
        body = _body(request)
    except BatchRejected as exc:
        return _rejected(exc)
    if not isinstance(body, dict):
        return json_error("body: expected an object with name and scopes.", 400)
    try:
        created = token_create(
            user=request.user, name=body.get("name"), scopes=body.get("scopes") or []
        )
    except (ArenaError, TypeError) as exc:
        return json_error(str(exc), 400)
    return JsonResponse({**_token_json(created.token), "secret": created.secret}, status=201)


@api_view(scope="admin")
@require_http_methods(["POST"])
def token_delete(request, token_id: int):
    try:
        token = token_revoke(user=request.user, token_id=token_id)
    except ArenaError as exc:
        return json_error(str(exc), 404)
    return JsonResponse(_token_json(token))


@require_GET
def openapi_json(request):
    return JsonResponse(schema.openapi(request.build_absolute_uri("/").rstrip("/")))


@require_GET
def api_docs(request):
    return render(request, "arena/api_docs.html", {"operations": schema.operations()})


@login_required
@require_http_methods(["GET", "POST"])
def tokens_page(request):
    context = {"scopes": SCOPES, "created": None, "error": None}
    if request.method == "POST":
        if "revoke" in request.POST:
            with contextlib.suppress(ArenaError, ValueError):
                token_revoke(user=request.user, token_id=int(request.POST["revoke"]))
            return redirect("api_tokens_page")
        try:
            context["created"] = token_create(
                user=request.user,
                name=request.POST.get("name", ""),
                scopes=request.POST.getlist("scopes"),
            )
        except ArenaError as exc:
            context["error"] = str(exc)
    context["tokens"] = ApiToken.objects.filter(user=request.user)
    context["rate"] = settings.ARENA_API_REQUESTS_PER_MINUTE
    return render(request, "arena/api_tokens.html", context)
