"""Letting people in: invite links, sign-up for configured email domains, public leaderboards."""

import datetime as dt
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import close_old_connections
from django.test import Client
from django.utils import timezone

from arena.accounts.services import invite_create, invite_redeem
from arena.leaderboards.refresh import leaderboard_refresh
from arena.models import Invite, LeaderboardSnapshot, Vote
from tests.arena.leaderboards import test_leaderboards

pytestmark = pytest.mark.django_db

arena_votes = test_leaderboards.arena_votes
User = get_user_model()
PASSWORD = "correct-horse-battery-9"


def _account(client, path, username, **extra):
    return client.post(
        path, {"username": username, "password1": PASSWORD, "password2": PASSWORD, **extra}
    )


def test_an_invite_link_creates_a_signed_in_account_and_counts_one_use(bob):
    invite = invite_create(created_by=bob, max_uses=2)
    client = Client()
    assert client.get(f"/accounts/invite/{invite.token}/").status_code == 200
    response = _account(client, f"/accounts/invite/{invite.token}/", "dora")
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/battle/").status_code == 200  # signed in as dora
    assert User.objects.get(username="dora").check_password(PASSWORD)
    assert not User.objects.get(username="dora").is_staff
    invite.refresh_from_db()
    assert invite.uses == 1


def test_a_used_up_expired_or_revoked_invite_creates_no_account(bob):
    used = invite_create(created_by=bob, max_uses=1)
    assert _account(Client(), f"/accounts/invite/{used.token}/", "erin").status_code == 302
    expired = invite_create(created_by=bob)
    Invite.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    revoked = invite_create(created_by=bob)
    Invite.objects.filter(pk=revoked.pk).update(revoked=True)
    for token, why in [
        (used.token, "used up"),
        (expired.token, "expired"),
        (revoked.token, "revoked"),
        ("no-such-token", "not valid"),
    ]:
        response = _account(Client(), f"/accounts/invite/{token}/", f"x{why[:3]}")
        assert response.status_code == 410
        assert why in response.content.decode()
    assert set(User.objects.values_list("username", flat=True)) == {"bob", "erin"}


def test_an_invite_form_names_the_bad_field_and_keeps_the_use(bob):
    invite = invite_create(created_by=bob)
    response = Client().post(
        f"/accounts/invite/{invite.token}/",
        {"username": "bob", "password1": "abc", "password2": "abd"},
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "username" in errors and "password2" in errors
    invite.refresh_from_db()
    assert invite.uses == 0


@pytest.mark.django_db(transaction=True)
def test_two_people_racing_for_the_last_use_get_one_account(bob, settings):
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        pytest.skip("row locks need PostgreSQL (ARENA_TEST_POSTGRES=1)")
    invite = invite_create(created_by=bob, max_uses=1)
    barrier, results = threading.Barrier(2), []

    def redeem(name):
        barrier.wait()
        try:
            invite_redeem(token=invite.token, username=name, password=PASSWORD)
            results.append("ok")
        except ValidationError as exc:
            results.append(exc.message_dict["token"][0])
        finally:
            close_old_connections()

    threads = [threading.Thread(target=redeem, args=(n,)) for n in ("fay", "gus")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["This invite link has been used up.", "ok"]
    assert User.objects.filter(username__in=["fay", "gus"]).count() == 1


def test_invite_create_names_the_bad_field():
    with pytest.raises(ValidationError) as exc:
        invite_create(created_by=None, max_uses=0)
    assert "max_uses" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        invite_create(created_by=None, days=0)
    assert "days" in exc.value.message_dict


def test_staff_create_invites_on_their_page_and_others_cannot(bob, carol):
    staff = Client()
    staff.force_login(bob)
    response = staff.post("/accounts/invites/", {"note": "Team B", "max_uses": 5, "days": 3})
    assert response.status_code == 302
    invite = Invite.objects.get()
    assert (invite.note, invite.max_uses, invite.created_by) == ("Team B", 5, bob)
    assert dt.timedelta(days=3) - (invite.expires_at - timezone.now()) < dt.timedelta(minutes=1)
    page = staff.get("/accounts/invites/").content.decode()
    assert f"/accounts/invite/{invite.token}/" in page and "Team B" in page
    other = Client()
    other.force_login(carol)
    assert other.get("/accounts/invites/").status_code == 403
    assert other.post("/accounts/invites/", {"max_uses": 1, "days": 1}).status_code == 403
    assert Invite.objects.count() == 1


def test_manage_invite_prints_a_link_that_works(capsys):
    call_command("invite", "--uses", "3", "--days", "2", "--base-url", "https://arena.example")
    link = capsys.readouterr().out.strip()
    invite = Invite.objects.get()
    assert link == f"https://arena.example/accounts/invite/{invite.token}/"
    assert invite.max_uses == 3
    assert _account(Client(), link.removeprefix("https://arena.example"), "hal").status_code == 302


def test_sign_up_is_closed_unless_domains_are_configured(settings):
    settings.ARENA_SIGNUP_DOMAINS = []
    assert Client().get("/accounts/signup/").status_code == 404
    assert b"Sign up" not in Client().get("/accounts/login/").content


def test_sign_up_accepts_only_the_configured_domains(settings):
    settings.ARENA_SIGNUP_DOMAINS = ["example.com"]
    assert b"/accounts/signup/" in Client().get("/accounts/login/").content
    for email in ("ivy@other.org", "ivy@evil-example.com", "ivy@sub.example.com", "ivy@example.co"):
        response = _account(Client(), "/accounts/signup/", "ivy", email=email)
        assert response.status_code == 200, email
        assert "email" in response.context["form"].errors, email
    assert not User.objects.filter(username="ivy").exists()
    client = Client()
    response = _account(client, "/accounts/signup/", "ivy", email="Ivy@Example.COM")
    assert response.status_code == 302
    assert User.objects.get(username="ivy").email == "Ivy@example.com"  # domain normalised
    again = _account(Client(), "/accounts/signup/", "ivy2", email="ivy@example.com")
    assert "email" in again.context["form"].errors


@pytest.fixture
def board(arena_votes):
    cache.clear()
    leaderboard_refresh()
    yield LeaderboardSnapshot.objects.filter(status="complete").first()
    cache.clear()


READS = ["/leaderboard/", "/leaderboard/compare/"]
JSON_READS = ["/api/leaderboards/", "/api/leaderboards/snapshots/", "/leaderboard/status.json"]


def test_public_leaderboards_are_off_by_default(board, settings):
    assert settings.ARENA_PUBLIC_LEADERBOARDS is False
    client = Client()
    for path in READS:
        assert client.get(path)["Location"].startswith("/accounts/login/"), path
    for path in JSON_READS:
        assert client.get(path).status_code == 401, path  # JSON: sign in or send a token


def test_anonymous_visitors_read_public_boards_and_nothing_else(board, settings, alice):
    settings.ARENA_PUBLIC_LEADERBOARDS = True
    client = Client()
    page = client.get("/leaderboard/")
    assert page.status_code == 200 and "Alpha" in page.content.decode()
    for path in [*READS, *JSON_READS, f"/leaderboard/snapshots/{board.pk}.csv"]:
        assert client.get(path).status_code == 200, path
    assert "Alpha" in str(client.get("/api/leaderboards/").json())
    # Nothing else: battles, eval sets, calibration, staff pages, votes.
    for path in ["/battle/", "/evalsets/", "/calibration/", "/judge/", "/accounts/invites/"]:
        assert client.get(path)["Location"].startswith("/accounts/login/"), path
    assert client.get("/api/calibration/").status_code == 401
    assert client.get("/admin/")["Location"].startswith("/admin/login/")
    votes = Vote.objects.count()
    battle_id = Vote.objects.first().battle_id
    assert client.post("/evalsets/1/vote/", {"battle": battle_id, "outcome": "a"}).status_code in (
        302,
        403,
    )
    assert client.post("/api/leaderboards/").status_code in (401, 403, 405)
    assert Vote.objects.count() == votes
