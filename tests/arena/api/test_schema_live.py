"""Schemathesis against the live schema on a live server, with a bearer token: no 5xx, and
every answer (status, body) as the schema says."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from arena.api.tokens import token_create
from tests.factories import make_contestant, make_user


@pytest.fixture
def live_schema(live_server, transactional_db, settings):
    settings.ARENA_API_REQUESTS_PER_MINUTE = 0
    make_contestant("Alpha")
    make_contestant("Beta")
    return schemathesis.openapi.from_url(f"{live_server.url}/api/openapi.json")


@pytest.fixture
def bearer(transactional_db):
    staff = make_user("schema-staff", is_staff=True)
    for i in range(20):  # ids a revoke example is likely to pick belong to other tokens
        token_create(user=staff, name=f"spare {i}", scopes=["read"])
    secret = token_create(user=staff, name="schema", scopes=["admin"]).secret
    return {"Authorization": f"Bearer {secret}"}


def test_every_operation_answers_as_the_schema_says(live_schema, bearer):
    # Each operation is run by hypothesis here (schemathesis' pytest plugin does not load
    # with this pytest); a failing example is re-raised with the operation's name.
    operations = [result.ok() for result in live_schema.get_all_operations()]
    assert len(operations) >= 11
    for operation in operations:

        @given(case=operation.as_strategy())
        @hsettings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case):
            case.call_and_validate(
                headers=bearer,
                checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
            )

        try:
            run()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc


def test_the_schema_is_served_and_lists_the_json_endpoints(client):
    body = client.get("/api/openapi.json").json()
    assert body["openapi"].startswith("3.")
    assert "/api/battles/batch/" in body["paths"] and "/api/leaderboards/" in body["paths"]
    assert b"/api/battles/batch/" in client.get("/api/docs/").content


def test_the_readme_example_runs_against_a_live_server(live_server, transactional_db):
    import subprocess
    import sys
    from pathlib import Path

    from arena.models import Vote

    make_contestant("Gamma")
    make_contestant("Delta")
    user = make_user("example")
    secret = token_create(user=user, name="example", scopes=["read", "vote"]).secret
    root = Path(__file__).resolve().parents[3]
    script = root / "examples" / "push_battles.py"
    assert script.name in (root / "README.md").read_text()
    done = subprocess.run(
        [sys.executable, str(script), "Gamma", "Delta"],
        env={"ARENA_URL": live_server.url, "ARENA_TOKEN": secret, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "stored 10 battles" in done.stdout
    assert Vote.objects.filter(battle__user=user).count() == 10
    # The README's own block, as written there.
    readme = (root / "README.md").read_text()
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert "/api/battles/batch/" in block
    make_contestant("Model A")
    make_contestant("Model B")
    done = subprocess.run(
        [sys.executable, "-c", block],
        env={"ARENA_URL": live_server.url, "ARENA_TOKEN": secret, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "stored 1" in done.stdout
    assert Vote.objects.filter(battle__user=user).count() == 11
