"""Staff cannot make the server send its own secrets upstream through ``api_key_env``.

Attempts: the variable names below as a contestant's ``api_key_env``, through the model's
validation (the admin's path), ``models sync``, and a row written around both (call time).
"""

import asyncio
import contextlib

import pytest
from django.core.exceptions import ValidationError

from arena.providers import Endpoint, ProviderError, stream_chat
from arena.providers.contestants import ModelsFileError, parse_models_toml
from tests.factories import make_contestant
from tests.upstream import upstream_fixture  # noqa: F401

SERVER_SECRETS = [
    "ARENA_SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "DJANGO_SECRET_KEY",
    "CELERY_BROKER_URL",
    "PGPASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "MY_DB_PASSWORD",
    "HOME",  # not a secret, but not a key variable the operator allowed either
]


@pytest.mark.django_db
@pytest.mark.parametrize("name", SERVER_SECRETS)
def test_the_model_refuses_a_server_variable_as_api_key_env(name):
    contestant = make_contestant(kind="openai", base_url="http://127.0.0.1:9/v1", model_id="m")
    contestant.api_key_env = name
    with pytest.raises(ValidationError) as refused:
        contestant.full_clean()
    assert "api_key_env" in refused.value.message_dict


@pytest.mark.django_db
def test_the_model_takes_an_allowed_key_variable_and_the_operator_can_allow_more(settings):
    contestant = make_contestant(kind="openai", base_url="http://127.0.0.1:9/v1", model_id="m")
    contestant.api_key_env = "OPENAI_API_KEY"
    contestant.full_clean()
    contestant.api_key_env = "TEAM_LLM_TOKEN"
    with pytest.raises(ValidationError):
        contestant.full_clean()
    settings.ARENA_PROVIDER_KEY_VARS = ["*_API_KEY", "TEAM_*_TOKEN"]
    contestant.full_clean()
    settings.ARENA_PROVIDER_KEY_VARS = ["*"]  # an allowlist never opens the server's own
    contestant.api_key_env = "ARENA_SECRET_KEY"
    with pytest.raises(ValidationError):
        contestant.full_clean()


@pytest.mark.parametrize("name", SERVER_SECRETS)
def test_models_sync_refuses_a_server_variable_naming_it(name):
    text = f'[[model]]\nname = "X"\nbase_url = "http://127.0.0.1:9/v1"\napi_key_env = "{name}"\n'
    with pytest.raises(ModelsFileError) as refused:
        parse_models_toml(text)
    assert f"api_key_env: {name}" in str(refused.value)


@pytest.mark.django_db(transaction=True)
def test_a_row_written_around_the_validation_sends_nothing_upstream(upstream, monkeypatch):
    monkeypatch.setenv("ARENA_SECRET_KEY", "the-server-secret")
    row = make_contestant(
        kind="openai", base_url=upstream.url, model_id="thief", api_key_env="ARENA_SECRET_KEY"
    )

    async def call():
        messages = [{"role": "user", "content": "hi"}]
        async with contextlib.aclosing(stream_chat(Endpoint.from_contestant(row), messages)) as s:
            async for _ in s:
                pass

    with pytest.raises(ProviderError, match="misconfigured"):
        asyncio.run(call())
    assert upstream.requests_for("thief") == []
    assert all("the-server-secret" not in str(r.headers) for r in upstream.requests)
