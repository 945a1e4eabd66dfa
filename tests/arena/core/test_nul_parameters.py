"""A NUL in a query parameter is a 400 on every URL (PostgreSQL cannot compare such text)."""

import pytest
from django.test import Client


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "json"),
    [
        ("/api/leaderboards/?category=a%00b", True),
        ("/api/leaderboards/?scope=judge&judge=%00", True),
        ("/leaderboard/status.json?a%00=1", True),
        ("/leaderboard/?category=%00", False),
        ("/evalsets/?q=%00", False),
    ],
)
def test_a_nul_in_a_query_parameter_is_refused_with_a_400(admin_user, path, json):
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    response = client.get(path)
    assert response.status_code == 400
    if json:
        assert response.json() == {"error": "Query parameters cannot contain NUL characters."}
    else:
        assert b"cannot contain NUL" in response.content


@pytest.mark.django_db
def test_the_same_parameters_without_a_nul_are_answered(admin_user):
    client = Client()
    client.force_login(admin_user)
    assert client.get("/api/leaderboards/?category=ab").status_code in (400, 404)  # unknown
    assert client.get("/leaderboard/").status_code == 200
