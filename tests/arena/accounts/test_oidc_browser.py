"""Company sign-in in Chromium against a real OpenID Connect provider on loopback.

The provider is django-oauth-toolkit in a throwaway Django project written into tmp_path (its
own RSA key, users, groups and a confidential client), run with runserver; the arena runs under
daphne with ARENA_OIDC_* pointing at it. Nothing is mocked: the browser follows the redirects,
signs in on the provider's form, authorises, and the arena checks the ID token against the
provider's JWKS and reads its userinfo.
"""

import subprocess
import sys
import time
from contextlib import contextmanager

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support import daphne_server, free_port, manage, server_env

pytestmark = pytest.mark.browser

OP_SETTINGS = """
SECRET_KEY = "provider-only-for-this-test"
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
ROOT_URLCONF = "op_urls"
INSTALLED_APPS = [
    "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "oauth2_provider",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": ["{root}/templates"], "APP_DIRS": True,
    "OPTIONS": {{"context_processors": ["django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth"]}},
}}]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": "{root}/op.sqlite3"}}}}
# Its own cookie names: browsers share cookies between ports of one host.
SESSION_COOKIE_NAME = "op_session"
CSRF_COOKIE_NAME = "op_csrftoken"
LOGIN_URL = "/login/"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
OAUTH2_PROVIDER = {{
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": {key!r},
    "PKCE_REQUIRED": True,
    "OAUTH2_VALIDATOR_CLASS": "op_validator.Validator",
    "SCOPES": {{"openid": "Sign you in", "email": "Your email", "profile": "Your name"}},
}}
"""
OP_URLS = """
from django.contrib.auth import views
from django.urls import include, path

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
]
"""
OP_VALIDATOR = """
from oauth2_provider.oauth2_validators import OAuth2Validator


class Validator(OAuth2Validator):
    oidc_claim_scope = None  # every claim, whatever the scope

    def get_additional_claims(self, request):
        user = request.user
        return {
            "email": user.email,
            "email_verified": True,
            "name": user.get_full_name(),
            "groups": list(user.groups.values_list("name", flat=True)),
        }
"""
OP_LOGIN = """<!doctype html><title>Corp ID</title><h1>Corp ID sign-in</h1>
<form method="post">{% csrf_token %}{{ form.as_p }}
<input type="hidden" name="next" value="{{ next }}">
<button type="submit">Log in to Corp ID</button></form>
"""
OP_PEOPLE = """
from django.contrib.auth.models import Group, User
from oauth2_provider.models import Application

staff = Group.objects.create(name="arena-staff")
User.objects.create_user("olga", "olga@corp.example", "olga-pass-123").groups.add(staff)
User.objects.create_user("pete", "pete@corp.example", "pete-pass-123")
User.objects.create_user("mallory", "mallory@elsewhere.example", "mallory-pass-123")
Application.objects.create(
    name="Arena", client_id="arena-client", client_secret="arena-secret",
    client_type="confidential", authorization_grant_type="authorization-code",
    redirect_uris="{redirect}", algorithm="RS256", skip_authorization=False,
)
"""


def _write_provider(root):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    (root / "templates" / "registration").mkdir(parents=True)
    (root / "templates" / "registration" / "login.html").write_text(OP_LOGIN)
    (root / "op_settings.py").write_text(OP_SETTINGS.format(root=root, key=pem))
    (root / "op_urls.py").write_text(OP_URLS)
    (root / "op_validator.py").write_text(OP_VALIDATOR)


def _op(root, *args, **kwargs):
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(root),
        "DJANGO_SETTINGS_MODULE": "op_settings",
    }
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        **kwargs,
    )


@contextmanager
def _provider(root):
    _write_provider(root)
    _op(root, "migrate", "-v", "0")
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(root),
        "DJANGO_SETTINGS_MODULE": "op_settings",
        "OAUTHLIB_INSECURE_TRANSPORT": "1",  # plain HTTP on loopback
    }
    with open(root / "op.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "django", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/o/.well-known/jwks.json", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((root / "op.log").read_text()) from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _sign_in(browser, base, username, password):
    """Arena sign-in page -> provider's form -> consent -> back: the tab where it ended."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.goto(base + "/accounts/login/")
    tab.get_by_role("link", name="Sign in with Corp ID").click()
    tab.wait_for_selector("text=Corp ID sign-in")
    tab.get_by_label("Username").fill(username)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Log in to Corp ID").click()
    tab.get_by_role("button", name="Authorize").click()
    tab.wait_for_url(base + "/**")
    return context, tab


def test_company_sign_in_round_trip_with_staff_groups_and_the_email_domain(
    tmp_path, chromium_browser, artifacts_dir
):
    op_root = tmp_path / "op"
    op_root.mkdir()
    with _provider(op_root) as op:
        env = server_env(
            tmp_path,
            ARENA_OIDC_CLIENT_ID="arena-client",
            ARENA_OIDC_CLIENT_SECRET="arena-secret",
            ARENA_OIDC_NAME="Corp ID",
            ARENA_OIDC_AUTHORIZATION_URL=op + "/o/authorize/",
            ARENA_OIDC_TOKEN_URL=op + "/o/token/",
            ARENA_OIDC_USERINFO_URL=op + "/o/userinfo/",
            ARENA_OIDC_JWKS_URL=op + "/o/.well-known/jwks.json",
            ARENA_OIDC_EMAIL_DOMAINS="corp.example",
            ARENA_OIDC_STAFF_GROUPS="arena-staff",
        )
        manage(env, "migrate", "-v", "0")
        with daphne_server(env, tmp_path / "daphne.log") as base:
            _op(op_root, "shell", "-c", OP_PEOPLE.format(redirect=base + "/oidc/callback/"))

            context, tab = _sign_in(chromium_browser, base, "olga", "olga-pass-123")
            assert tab.url == base + "/"
            assert tab.locator(".who").inner_text() == "olga@corp.example"
            assert tab.get_by_role("link", name="Judges").count() == 1  # staff via the group
            tab.screenshot(path=str(artifacts_dir / "oidc-signed-in-staff.png"), full_page=True)
            tab.goto(base + "/judge/")
            assert tab.url == base + "/judge/"
            context.close()

            context, tab = _sign_in(chromium_browser, base, "pete", "pete-pass-123")
            assert tab.locator(".who").inner_text() == "pete@corp.example"
            assert tab.get_by_role("link", name="Judges").count() == 0  # not in the group
            context.close()

            context, tab = _sign_in(chromium_browser, base, "mallory", "mallory-pass-123")
            assert tab.url.startswith(base + "/accounts/login/")
            assert "refused" in tab.locator("#oidc-refused").inner_text()
            assert tab.get_by_role("link", name="Sign in", exact=True).count() == 1
            tab.screenshot(path=str(artifacts_dir / "oidc-refused.png"), full_page=True)
            context.close()

        users = (
            manage(
                env,
                "shell",
                "-c",
                "from django.contrib.auth.models import User;"
                "print(sorted((u.username, u.is_staff) for u in User.objects.all()))",
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        assert users == "[('olga@corp.example', True), ('pete@corp.example', False)]"
