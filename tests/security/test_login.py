"""Sign-in throttling (django-axes): wrong passwords lock one account from one address for
the cool-off; the right password is then refused with a page saying why and until when;
other accounts, other addresses and the test client's force_login/login are unaffected."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import make_user

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def _sign_in(client: Client, username: str, password: str, ip: str = "10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_wrong_passwords_lock_the_account_for_the_cool_off(settings):
    alice = make_user("alice")
    make_user("dave")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = _sign_in(client, "alice", "wrong")
        assert response.status_code == 200
        assert "did not match" in response.content.decode()
    locked = _sign_in(client, "alice", "wrong")
    assert locked.status_code == 429
    assert "Sign-in locked" in locked.content.decode()

    right = _sign_in(client, "alice", "pw-alice-123")
    html = right.content.decode()
    assert right.status_code == 429
    assert not _signed_in(client)
    assert f"after {settings.AXES_FAILURE_LIMIT}" in html and "failed sign-ins" in html
    assert "Try again in 15 minutes" in html
    assert "even with the right password" in html

    # Another account from the same address, and the same account from another address.
    other_user = Client()
    assert _sign_in(other_user, "dave", "pw-dave-123").status_code == 302
    assert _signed_in(other_user)
    other_ip = Client()
    assert _sign_in(other_ip, "alice", "pw-alice-123", ip="10.0.0.2").status_code == 302
    assert _signed_in(other_ip)

    # After the cool-off the right password works again from the first address.
    from axes.models import AccessAttempt

    earlier = timezone.now() - timedelta(minutes=16)
    AccessAttempt.objects.filter(username="alice").update(attempt_time=earlier)
    assert _sign_in(client, "alice", "pw-alice-123").status_code == 302
    assert _signed_in(client)
    assert client.get("/evalsets/").status_code == 200
    assert alice.pk == int(client.session["_auth_user_id"])


def test_attempts_during_the_lock_do_not_extend_it(settings):
    make_user("alice")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, "alice", "wrong")
    from axes.models import AccessAttempt

    locked_at = AccessAttempt.objects.get(username="alice").attempt_time
    _sign_in(client, "alice", "wrong again")
    assert AccessAttempt.objects.get(username="alice").attempt_time == locked_at


def test_a_success_before_the_limit_resets_the_count(settings):
    make_user("alice")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, "alice", "wrong")
    assert _sign_in(client, "alice", "pw-alice-123").status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _sign_in(client, "alice", "wrong").status_code == 200
    assert _sign_in(client, "alice", "pw-alice-123").status_code == 302


def test_the_admin_sign_in_is_throttled_too(settings):
    make_user("bob", is_staff=True, is_superuser=True)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "bob", "password": "x"}, REMOTE_ADDR="10.0.0.9")
    response = client.post(
        "/admin/login/", {"username": "bob", "password": "pw-bob-123"}, REMOTE_ADDR="10.0.0.9"
    )
    assert response.status_code == 429
    assert "Sign-in locked" in response.content.decode()


def test_the_test_clients_login_and_force_login_keep_working(alice):
    client = Client()
    assert client.login(username="alice", password="pw-alice-123")
    assert client.get("/evalsets/").status_code == 200
    other = Client()
    other.force_login(alice)
    assert other.get("/evalsets/").status_code == 200


def test_behind_the_tls_proxy_the_address_is_the_one_the_proxy_appended(settings):
    from django.test import RequestFactory

    from arena.core.throttle import client_ip

    request = RequestFactory().get(
        "/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7"
    )
    settings.ARENA_BEHIND_TLS_PROXY = False
    assert client_ip(request) == "127.0.0.1"
    settings.ARENA_BEHIND_TLS_PROXY = True
    assert client_ip(request) == "203.0.113.7"
