"""Authentication, authorisation and CSRF over every URL of arena.urls.

The URL patterns are enumerated by walking the resolver (the admin's 89 included) and filled
with ids of rows that exist; the site's own routes must be exactly ``ROUTES`` below, so a new
URL fails here until someone decides who may see it:

    /                                  public (counts only)
    healthz                            public (status of the database and Redis)
    accounts/login/                    public (the form)
    accounts/logout/                   POST only
    accounts/invite/<token>/           public (an invite's account form)
    accounts/signup/                   public when ARENA_SIGNUP_DOMAINS is set, else 404
    accounts/invites/                  staff only
    battle/                            signed in
    battles/<battle_id>/               signed in, the battle's own voter, after the vote
    evalsets/  evalsets/<set_id>/vote/ signed in
    runs/<run_id>.json                 signed in; a judge run's: staff only
    leaderboard/  leaderboard/compare/ signed in (anyone with ARENA_PUBLIC_LEADERBOARDS)
    leaderboard/snapshots/<snapshot_id>.<fmt>   the same
    api/leaderboards/  api/leaderboards/snapshots/  leaderboard/status.json   the same (JSON 401)
    api/calibration/                   signed in (JSON 401)
    api/battles/ api/battles/batch/ api/tokens/...  signed in or a token (JSON 401/403)
    api/openapi.json  api/docs/        public (the API's description)
    account/tokens/                    signed in
    judge/  judge/runs/<run_id>/  judge/runs/<run_id>.json              staff only
    calibration/                       signed in
    staff/quality/  staff/quality/votes/<review_id>  staff/quality/voters/<voter_id>   staff only
    admin/...                          staff only (the admin's own sign-in page is public)

Attack classes (each test prints its attempts and failures; run with -s to see them):
anonymous access, a signed-in non-staff user on staff pages, another user's battle result,
POSTs without a CSRF token (staff, the strongest session, and anonymous on the sign-in page).
"""

import datetime as dt
import re
from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RoutePattern
from django.utils import timezone

from arena.battles.services import vote_record
from arena.evalsets.voting import evalset_next_battle
from arena.models import (
    Answer,
    Battle,
    Category,
    Invite,
    Judge,
    LeaderboardSnapshot,
    PromptItem,
    PromptSet,
    Run,
    Vote,
)
from arena.quality.flags import vote_review
from tests.factories import make_contestant

pytestmark = pytest.mark.django_db

ROUTES = {
    "",
    "healthz",
    "accounts/login/",
    "accounts/logout/",
    "accounts/invite/<str:token>/",
    "accounts/signup/",
    "accounts/invites/",
    "battle/",
    "battles/<int:battle_id>/",
    "evalsets/",
    "evalsets/<int:set_id>/vote/",
    "runs/<int:run_id>.json",
    "leaderboard/",
    "leaderboard/compare/",
    "leaderboard/status.json",
    "leaderboard/snapshots/<int:snapshot_id>.<str:fmt>",
    "api/leaderboards/",
    "api/leaderboards/snapshots/",
    "judge/",
    "judge/runs/<int:run_id>/",
    "judge/runs/<int:run_id>.json",
    "calibration/",
    "api/calibration/",
    "api/calibration/progress/",
    "api/battles/",
    "api/battles/batch/",
    "api/tokens/",
    "api/tokens/new/",
    "api/tokens/<int:token_id>/revoke/",
    "api/openapi.json",
    "api/docs/",
    "account/tokens/",
    "staff/quality/",
    "staff/quality/votes/<int:review_id>",
    "staff/quality/voters/<int:voter_id>",
}
INVITE_TOKEN = "access-test-invite"
PUBLIC = {
    "/",
    "/healthz",
    "/accounts/login/",
    "/admin/login/",
    f"/accounts/invite/{INVITE_TOKEN}/",
    "/api/openapi.json",
    "/api/docs/",
}
STAFF_ROUTES = {
    "accounts/invites/",
    "judge/",
    "judge/runs/<int:run_id>/",
    "judge/runs/<int:run_id>.json",
    "staff/quality/",
    "staff/quality/votes/<int:review_id>",
    "staff/quality/voters/<int:voter_id>",
}


@dataclass(frozen=True)
class Url:
    route: str  # the pattern, as written in urls.py
    path: str  # filled in: what is requested
    admin: bool


@dataclass
class Tally:
    name: str
    attempts: int = 0
    failures: list[str] | None = None

    def check(self, ok: bool, what: str) -> None:
        self.attempts += 1
        if not ok:
            self.failures = [*(self.failures or []), what]

    def done(self) -> None:
        failures = self.failures or []
        print(f"\n{self.name}: {self.attempts} attempts, {len(failures)} failures")
        assert not failures, "\n".join(failures)


@pytest.fixture
def rows(alice, bob, carol):
    """One row of everything a URL can name: alice's voted eval-set battle, a generation run
    and a judge run, a complete judge snapshot."""
    a, b = make_contestant(kind="recorded"), make_contestant(kind="recorded")
    category = Category.objects.create(slug="writing", name="Writing")
    prompt_set = PromptSet.objects.create(name="Access")
    item = PromptItem.objects.create(prompt_set=prompt_set, text="Hi", category=category)
    for contestant in (a, b):
        Answer.objects.create(item=item, contestant=contestant, text="secret answer")
    battle = evalset_next_battle(voter=alice, prompt_set=prompt_set)
    vote_record(battle_id=battle.pk, user=alice, outcome="a")
    review = vote_review(battle_id=battle.pk)
    judge = Judge.objects.create(name="Strict judge")
    judge_run = Run.objects.create(kind=Run.Kind.JUDGE, total=3, params={"judge": judge.name})
    generate_run = Run.objects.create(kind=Run.Kind.GENERATE, total=2)
    snapshot = LeaderboardSnapshot.objects.create(
        scope=LeaderboardSnapshot.Scope.JUDGE,
        judge=judge,
        method="bt",
        status=LeaderboardSnapshot.Status.COMPLETE,
        results={"rows": []},
    )
    Invite.objects.create(token=INVITE_TOKEN, expires_at=timezone.now() + dt.timedelta(days=1))
    return {
        "token": INVITE_TOKEN,
        "battle_id": battle.pk,
        "set_id": prompt_set.pk,
        "run_id": judge_run.pk,
        "generate_run_id": generate_run.pk,
        "snapshot_id": snapshot.pk,
        "fmt": "json",
        "token_id": 1,
        "battle": battle,
        "review_id": review.pk,
        "voter_id": alice.pk,
    }


def _walk(resolver: URLResolver, prefix: str = "", namespace: str = ""):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            ns = pattern.namespace or namespace
            yield from _walk(pattern, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            yield prefix, pattern, namespace


def _admin_object_id(name: str) -> str:
    """The pk of an existing row of the model an admin URL name is about ("1" if none)."""
    for model in admin.site._registry:
        label = f"{model._meta.app_label}_{model._meta.model_name}_"
        if name.startswith(label):
            row = model._default_manager.order_by("pk").first()
            return str(row.pk) if row is not None else "1"
    return "1"


def _admin_argument(arg: str, name: str) -> str:
    if arg == "app_label":
        return "arena"
    if arg == "content_type_id":
        return str(ContentType.objects.get_for_model(Battle).pk)
    if arg == "object_id":
        return _admin_object_id(name)
    if arg == "url":
        return "no-such-page/"
    return "1"


def _fill_route(route: str, ids: dict) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), route)


def every_url(ids: dict) -> list[Url]:
    """Every URL pattern of arena.urls, filled with ids that exist."""
    urls = []
    for prefix, pattern, namespace in _walk(get_resolver()):
        is_admin = prefix.startswith("admin/")
        if isinstance(pattern.pattern, RoutePattern) and not is_admin:
            route = prefix + str(pattern.pattern)
            urls.append(Url(route, "/" + _fill_route(route, ids), False))
            continue
        # The admin's: its arguments filled in, reversed by name when it has one.
        names = list(pattern.pattern.regex.groupindex)
        name = pattern.name or ""
        kwargs = {arg: _admin_argument(arg, name) for arg in names}
        if isinstance(pattern.pattern, RoutePattern):
            path = "/" + _fill_route(prefix + str(pattern.pattern), kwargs)
        elif pattern.name is None:
            path = "/" + prefix + "no-such-page/"
        else:
            path = reverse(f"{namespace}:{name}" if namespace else name, kwargs=kwargs)
        urls.append(Url(prefix + str(pattern.pattern), path, is_admin))
    return urls


def _is_login_redirect(response, admin_url: bool) -> bool:
    """A redirect to the sign-in page (the admin's: its sign-in page, or from its logout URL,
    which is POST only, its index, which then asks to sign in)."""
    if response.status_code != 302:
        return False
    if admin_url:
        return response["Location"].startswith("/admin/login/") or (
            response.wsgi_request.path == "/admin/logout/" and response["Location"] == "/admin/"
        )
    return response["Location"].startswith("/accounts/login/")


def _json_403(response) -> bool:
    """A JSON refusal: 401 without credentials, 403 without the right."""
    return response.status_code in (401, 403) and response["Content-Type"].startswith(
        "application/json"
    )


def test_the_sites_routes_are_the_ones_listed_here(rows):
    routes = {url.route for url in every_url(rows) if not url.admin}
    assert routes == ROUTES
    assert sum(url.admin for url in every_url(rows)) >= 80


def test_anonymous_visitors_get_the_sign_in_page_or_a_json_403(rows):
    tally = Tally("anonymous GET of every URL")
    client = Client()
    for url in every_url(rows):
        response = client.get(url.path)
        if url.path in PUBLIC:
            tally.check(response.status_code == 200, f"{url.path}: {response.status_code}")
            continue
        refused = (
            _is_login_redirect(response, url.admin)
            or _json_403(response)
            or response.status_code in (404, 405)
        )
        tally.check(refused, f"{url.path}: {response.status_code} for an anonymous visitor")
        tally.check(b"secret answer" not in response.content, f"{url.path}: shows an answer")
    tally.done()


def test_the_public_pages_show_no_data(rows):
    client = Client()
    for path in ("/", "/healthz", "/accounts/login/"):
        body = client.get(path).content
        assert b"secret answer" not in body and b"Strict judge" not in body


def test_a_signed_in_user_without_staff_rights_is_refused_staff_pages(rows, carol):
    tally = Tally("non-staff user on staff pages")
    client = Client()
    client.force_login(carol)
    for url in every_url(rows):
        if not (url.admin or url.route in STAFF_ROUTES):
            continue
        response = client.get(url.path)
        if url.path == "/admin/login/":
            # The admin's sign-in page says "You are authenticated as carol, but are not
            # authorized to access this page" and offers to sign in as someone else.
            tally.check(response.status_code == 200, f"{url.path}: {response.status_code}")
            tally.check(b"not authorized" in response.content, f"{url.path}: no refusal")
            continue
        # The admin sends people without staff rights to its own sign-in page; the site's
        # staff pages answer 403 (JSON for the JSON ones).
        refused = response.status_code in (403, 404, 405) or _is_login_redirect(response, url.admin)
        tally.check(refused, f"{url.path}: {response.status_code} for a non-staff user")
        tally.check(b"Strict judge" not in response.content, f"{url.path}: shows the judge")
    judge_run = client.get(f"/runs/{rows['run_id']}.json")
    tally.check(judge_run.status_code == 404, f"/runs/<judge run>.json: {judge_run.status_code}")
    generate_run = client.get(f"/runs/{rows['generate_run_id']}.json")
    tally.check(generate_run.status_code == 200, "a generation run's progress is for everyone")
    tally.done()


def test_nobody_sees_another_users_battle_result(rows, carol, bob):
    tally = Tally("another user's battle result")
    battle = rows["battle"]
    for user in (carol, bob):  # staff too: a battle's result is its voter's
        client = Client()
        client.force_login(user)
        for path in (f"/battles/{battle.pk}/",):
            response = client.get(path)
            tally.check(response.status_code == 403, f"{user}: {path}: {response.status_code}")
            names = (battle.contestant_a.name, battle.contestant_b.name)
            tally.check(
                not any(name.encode() in response.content for name in names),
                f"{user}: {path} names the models",
            )
        vote = client.post(
            f"/evalsets/{rows['set_id']}/vote/", {"battle": battle.pk, "outcome": "b"}
        )
        tally.check(vote.status_code == 403, f"{user}: vote on alice's pair: {vote.status_code}")
    tally.check(Vote.objects.get().outcome == "a", "alice's vote changed")
    tally.done()


def _counts() -> dict[str, int]:
    from django.apps import apps

    return {
        m._meta.label: m._default_manager.count() for m in apps.get_app_config("arena").get_models()
    }


def test_posts_without_a_csrf_token_are_refused_everywhere(rows, bob, alice):
    tally = Tally("POST without a CSRF token")
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(bob)
    before = _counts()
    for url in every_url(rows):
        response = staff.post(url.path, {"outcome": "a", "battle": rows["battle_id"]})
        tally.check(response.status_code == 403, f"{url.path}: {response.status_code}")
    voter = Client(enforce_csrf_checks=True)
    voter.force_login(alice)
    vote = voter.post(f"/evalsets/{rows['set_id']}/vote/", {"battle": rows["battle_id"]})
    tally.check(vote.status_code == 403, f"alice's vote without a token: {vote.status_code}")
    anonymous = Client(enforce_csrf_checks=True)
    login = anonymous.post("/accounts/login/", {"username": "bob", "password": "pw-bob-123"})
    tally.check(login.status_code == 403, f"sign-in without a token: {login.status_code}")
    tally.check("_auth_user_id" not in anonymous.session, "signed in without a token")
    tally.check(_counts() == before, "rows changed")
    tally.done()
