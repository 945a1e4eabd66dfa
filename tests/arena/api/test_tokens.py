"""API tokens: scopes on every JSON endpoint, revocation, 401 without a token, CSRF, rate."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import get_resolver, reverse
from django.utils import timezone

from arena.api import schema
from arena.api.tokens import token_create, token_revoke
from arena.models import ApiToken, Battle
from tests.factories import make_contestant


def _json_patterns():
    """Every URL pattern whose view is an api_view: (url name, view scope, staff)."""
    found = []

    def walk(patterns):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                walk(p.url_patterns)
            elif hasattr(p.callback, "api_scope"):
                found.append((p.name, p.callback.api_scope, p.callback.api_staff))

    walk(get_resolver().url_patterns)
    return sorted(found)


JSON_PATTERNS = _json_patterns()
METHOD = {op[0]: op[2] for op in schema.OPERATIONS}
ARGS = {"run_progress": [999], "judge_run_json": [999], "api_token_revoke": [999999]}


def _call(client, name, **headers):
    url = reverse(name, args=ARGS.get(name, []))
    if METHOD[name] == "post":
        return client.post(url, data="{}", content_type="application/json", **headers)
    return client.get(url, **headers)


def _bearer(secret):
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_there_are_json_endpoints_and_each_is_in_the_schema():
    names = [name for name, _, _ in JSON_PATTERNS]
    assert len(names) >= 11
    assert sorted(names) == sorted(op[0] for op in schema.OPERATIONS)
    for name, scope, staff in JSON_PATTERNS:
        op = next(op for op in schema.OPERATIONS if op[0] == name)
        assert (op[3], op[4]) == (scope, staff), name


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "scope", "staff"), JSON_PATTERNS)
def test_every_json_endpoint_enforces_token_scopes(name, scope, staff, bob):
    client = Client(enforce_csrf_checks=True)
    # No token, no session: 401 with a Bearer challenge.
    response = _call(client, name)
    assert response.status_code == 401, name
    assert response["WWW-Authenticate"].startswith("Bearer")
    # A token without the scope: 403 naming the scope; with it: past authentication.
    others = [s for s in ("read", "vote") if s != scope] or ["read"]
    lacking = token_create(user=bob, name="lacking", scopes=others).secret
    if scope != "read" or others != ["read"]:
        response = _call(client, name, **_bearer(lacking))
        assert response.status_code == 403, name
        assert scope in response.json()["error"]
    good = token_create(user=bob, name="good", scopes=[scope]).secret
    response = _call(client, name, **_bearer(good))
    assert response.status_code not in (401, 403), (name, response.content)
    # A revoked token and a made-up one are refused.
    token_revoke(user=bob, token_id=ApiToken.objects.get(name="good").pk)
    assert _call(client, name, **_bearer(good)).status_code == 401
    assert _call(client, name, **_bearer("arena_not-a-token")).status_code == 401


@pytest.mark.django_db
def test_a_read_token_cannot_vote_and_a_vote_token_cannot_read(alice):
    make_contestant("A")
    make_contestant("B")
    client = Client()
    read = token_create(user=alice, name="r", scopes=["read"]).secret
    vote = token_create(user=alice, name="v", scopes=["vote"]).secret
    battle = {
        "key": "k1",
        "model_a": "A",
        "model_b": "B",
        "prompt": "p",
        "answer_a": "x",
        "answer_b": "y",
        "outcome": "a",
    }
    url = reverse("api_battle")
    refused = client.post(url, battle, content_type="application/json", **_bearer(read))
    assert refused.status_code == 403
    assert Battle.objects.count() == 0
    assert client.get(reverse("api_snapshots"), **_bearer(vote)).status_code == 403
    stored = client.post(url, battle, content_type="application/json", **_bearer(vote))
    assert stored.status_code == 201, stored.content
    assert Battle.objects.get().vote.outcome == "a"


@pytest.mark.django_db
def test_admin_scope_needs_a_staff_account(alice, bob):
    with pytest.raises(Exception, match="only staff"):
        token_create(user=alice, name="x", scopes=["admin"])
    secret = token_create(user=bob, name="x", scopes=["admin"]).secret
    response = Client().get(reverse("judge_run_json", args=[1]), **_bearer(secret))
    assert response.status_code == 404  # past the checks; no such run
    bob.is_staff = False
    bob.save()
    assert Client().get(reverse("api_snapshots"), **_bearer(secret)).status_code == 403


@pytest.mark.django_db
def test_only_the_prefix_and_a_hash_are_stored(alice):
    created = token_create(user=alice, name="ci", scopes=["read"])
    row = ApiToken.objects.get()
    assert created.secret.startswith(row.prefix)
    assert created.secret not in json.dumps(list(ApiToken.objects.values()), default=str)
    listed = Client().get(reverse("api_tokens"), **_bearer(created.secret)).json()
    assert listed["tokens"][0]["prefix"] == row.prefix
    assert "secret" not in listed["tokens"][0]


@pytest.mark.django_db
def test_last_use_is_written_at_most_once_a_minute(alice, django_assert_num_queries):
    secret = token_create(user=alice, name="ci", scopes=["read"]).secret
    client = Client()
    client.get(reverse("api_snapshots"), **_bearer(secret))
    first = ApiToken.objects.get().last_used_at
    assert first is not None
    client.get(reverse("api_snapshots"), **_bearer(secret))
    assert ApiToken.objects.get().last_used_at == first
    ApiToken.objects.update(last_used_at=first - timedelta(minutes=2))
    client.get(reverse("api_snapshots"), **_bearer(secret))
    assert ApiToken.objects.get().last_used_at > first


@pytest.mark.django_db
def test_requests_past_the_per_token_rate_get_429(alice, settings):
    settings.ARENA_API_REQUESTS_PER_MINUTE = 3
    from django.core.cache import cache

    cache.clear()
    one = token_create(user=alice, name="one", scopes=["read"]).secret
    two = token_create(user=alice, name="two", scopes=["read"]).secret
    client = Client()
    codes = [client.get(reverse("api_snapshots"), **_bearer(one)).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert (
        "ARENA_API_REQUESTS_PER_MINUTE"
        in client.get(reverse("api_snapshots"), **_bearer(one)).json()["error"]
    )
    assert client.get(reverse("api_snapshots"), **_bearer(two)).status_code == 200


@pytest.mark.django_db
def test_sessions_still_work_and_need_csrf_while_tokens_do_not(alice, bob):
    make_contestant("A")
    make_contestant("B")
    battle = {
        "key": "k",
        "model_a": "A",
        "model_b": "B",
        "prompt": "p",
        "answer_a": "x",
        "answer_b": "y",
        "outcome": "tie",
    }
    session = Client(enforce_csrf_checks=True)
    session.force_login(alice)
    assert session.get(reverse("api_snapshots")).status_code == 200
    assert session.get(reverse("leaderboard")).status_code == 200
    refused = session.post(reverse("api_battle"), battle, content_type="application/json")
    assert refused.status_code == 403  # CSRF
    secret = token_create(user=alice, name="v", scopes=["vote"]).secret
    stored = Client(enforce_csrf_checks=True).post(
        reverse("api_battle"), battle, content_type="application/json", **_bearer(secret)
    )
    assert stored.status_code == 201
    # A token does not sign anyone in on the pages.
    page = Client().get(reverse("leaderboard"), **_bearer(secret))
    assert page.status_code == 302


@pytest.mark.django_db
def test_the_token_page_creates_shows_once_and_revokes(alice):
    client = Client()
    client.force_login(alice)
    page = client.post(reverse("api_tokens_page"), {"name": "ci", "scopes": ["read", "vote"]})
    token = ApiToken.objects.get()
    assert token.scopes == ["read", "vote"]
    assert b"arena_" in page.content and token.prefix.encode() in page.content
    again = client.get(reverse("api_tokens_page"))
    assert token.prefix.encode() in again.content
    assert page.context["created"].secret.encode() not in again.content
    client.post(reverse("api_tokens_page"), {"revoke": token.pk})
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_at <= timezone.now()


@pytest.mark.django_db
def test_the_management_command_creates_lists_and_revokes(alice, capsys):
    call_command("tokens", "create", "--user", "alice", "--name", "ci", "--scopes", "read,vote")
    out = capsys.readouterr().out
    token = ApiToken.objects.get()
    secret = out.split()[-1]
    assert secret.startswith(token.prefix)
    assert Client().get(reverse("api_snapshots"), **_bearer(secret)).status_code == 200
    call_command("tokens", "list", "--user", "alice")
    assert token.prefix in capsys.readouterr().out
    call_command("tokens", "revoke", str(token.pk))
    assert Client().get(reverse("api_snapshots"), **_bearer(secret)).status_code == 401
