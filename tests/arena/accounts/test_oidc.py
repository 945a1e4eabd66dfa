"""Company sign-in's rules without a browser: settings, the email domain, staff from groups."""

import subprocess
import sys

import pytest

from arena.accounts.oidc import CompanyBackend
from tests.support import ROOT, server_env

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    "ARENA_OIDC_AUTHORIZATION_URL": "https://id.example/auth",
    "ARENA_OIDC_TOKEN_URL": "https://id.example/token",
    "ARENA_OIDC_USERINFO_URL": "https://id.example/userinfo",
    "ARENA_OIDC_JWKS_URL": "https://id.example/jwks",
}


def _start(env) -> subprocess.CompletedProcess:
    code = (
        "import django; django.setup(); from django.conf import settings as s; print(s.ARENA_OIDC)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_oidc_settings_name_the_missing_variable(tmp_path):
    env = server_env(tmp_path, ARENA_OIDC_CLIENT_ID="arena", ARENA_OIDC_CLIENT_SECRET="s")
    assert "ARENA_OIDC_AUTHORIZATION_URL must be set" in _start(env).stderr
    no_secret = {**server_env(tmp_path, ARENA_OIDC_CLIENT_ID="arena"), **ENDPOINTS}
    assert "ARENA_OIDC_CLIENT_SECRET must be set" in _start(no_secret).stderr
    bad = {**env, **ENDPOINTS, "ARENA_OIDC_JWKS_URL": "ftp://id.example/jwks"}
    assert "ARENA_OIDC_JWKS_URL must start with" in _start(bad).stderr
    good = _start({**env, **ENDPOINTS})
    assert good.returncode == 0 and good.stdout.strip() == "True", good.stderr
    assert _start(server_env(tmp_path)).stdout.strip() == "False"


@pytest.fixture
def oidc(settings):
    settings.ARENA_OIDC_EMAIL_DOMAINS = ["corp.example"]
    settings.ARENA_OIDC_STAFF_GROUPS = ["arena-staff"]
    settings.ARENA_OIDC_GROUPS_CLAIM = "groups"
    settings.OIDC_USERNAME_ALGO = "arena.accounts.oidc.username_for"
    settings.OIDC_OP_TOKEN_ENDPOINT = "https://id.example/token"
    settings.OIDC_OP_USER_ENDPOINT = "https://id.example/userinfo"
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = "arena", "secret"
    return CompanyBackend()


@pytest.mark.parametrize(
    ("claims", "allowed"),
    [
        ({"email": "olga@corp.example"}, True),
        ({"email": "Olga@CORP.example", "email_verified": True}, True),
        ({"email": "olga@corp.example", "email_verified": False}, False),
        ({"email": "olga@corp.example.evil"}, False),
        ({"email": "olga@sub.corp.example"}, False),
        ({"email": ""}, False),
        ({}, False),
    ],
)
def test_only_verified_addresses_at_the_configured_domains_sign_in(oidc, claims, allowed):
    assert oidc.verify_claims(claims) is allowed


def test_the_group_claim_makes_staff_and_leaving_it_takes_staff_away(oidc):
    user = oidc.create_user({"email": "Olga@corp.example", "groups": ["arena-staff", "x"]})
    assert (user.username, user.is_staff) == ("olga@corp.example", True)
    user = oidc.update_user(user, {"email": "olga@corp.example", "groups": ["x"]})
    user.refresh_from_db()
    assert user.is_staff is False
    single = oidc.create_user({"email": "pat@corp.example", "groups": "arena-staff"})
    assert single.is_staff is True


def test_staff_is_left_alone_without_staff_groups(oidc, settings, bob):
    settings.ARENA_OIDC_STAFF_GROUPS = []
    assert oidc.update_user(bob, {"email": "bob@corp.example", "groups": []}).is_staff is True
