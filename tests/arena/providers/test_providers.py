"""arena.providers against a real local server speaking the OpenAI and Anthropic protocols."""

import asyncio
import contextlib
import time
from decimal import Decimal

import httpx
import pytest

import ratings
from arena.models import Answer, Contestant, PromptItem, PromptSet
from arena.providers import (
    ANTHROPIC_VERSION,
    Delta,
    Endpoint,
    Finished,
    ProviderError,
    Timeouts,
    aclose_client,
    complete_chat,
    stream_chat,
)
from arena.providers import client as providers_module
from arena.providers.client import _clients
from arena.providers.sse import sse_events
from tests.factories import make_contestant
from tests.support import free_port
from tests.upstream import NORMAL_TEXT, upstream_fixture  # noqa: F401

FAST = Timeouts(connect=1.0, first_token=2.0, total=5.0)
KEY = "sk-test-0123456789abcdefSECRET"
HELLO = [{"role": "user", "content": "Say hello to the arena"}]


@pytest.fixture(autouse=True)
async def _shared_client_closed():
    yield
    await aclose_client()


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch):
    monkeypatch.setattr(providers_module, "RETRY_BACKOFF", 0.01)


def endpoint(upstream, model_id="normal", kind="openai", **fields) -> Endpoint:
    return Endpoint(
        name="Test model", kind=kind, base_url=upstream.url, model_id=model_id, **fields
    )


async def collect(ep, messages=HELLO, timeouts=FAST):
    deltas, finished = [], []
    async for item in stream_chat(ep, messages, timeouts=timeouts):
        (finished if isinstance(item, Finished) else deltas).append(item)
    assert len(finished) == 1, "exactly one Finished, last"
    return deltas, finished[0]


async def deltas_then_error(ep, messages=HELLO, timeouts=FAST):
    deltas = []
    with pytest.raises(ProviderError) as caught:
        async for item in stream_chat(ep, messages, timeouts=timeouts):
            assert not isinstance(item, Finished)
            deltas.append(item)
    return deltas, caught.value


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_it_streams_deltas_then_one_finished_with_the_providers_usage_and_cost(
    upstream,
    kind,
):
    ep = endpoint(
        upstream,
        kind=kind,
        price_input_per_mtok=Decimal("2.50"),
        price_output_per_mtok=Decimal("10"),
    )
    deltas, finished = await collect(ep)
    assert len(deltas) > 5 and all(isinstance(d, Delta) and d.text for d in deltas)
    assert "".join(d.text for d in deltas) == NORMAL_TEXT == finished.text
    # The fake counts words: 5 in the prompt, 12 in NORMAL_TEXT.
    assert (finished.tokens_in, finished.tokens_out, finished.usage_estimated) == (5, 12, False)
    assert finished.cost == Decimal("0.0001325")  # (5 x 2.50 + 12 x 10) / 1e6
    assert finished.finish_reason == "stop"
    assert 0 <= finished.ttft_ms <= finished.total_ms


async def test_it_sends_the_key_system_prompt_and_sampling_parameters_to_openai(
    upstream,
    monkeypatch,
):
    monkeypatch.setenv("TEST_UPSTREAM_API_KEY", KEY)
    ep = endpoint(
        upstream,
        api_key_env="TEST_UPSTREAM_API_KEY",
        system_prompt="Be brief.",
        temperature=0.3,
        top_p=0.9,
        max_tokens=77,
    )
    await collect(ep)
    (sent,) = upstream.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body == {
        "model": "normal",
        "messages": [{"role": "system", "content": "Be brief."}, *HELLO],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 77,
    }


async def test_it_sends_anthropic_headers_a_top_level_system_and_a_default_max_tokens(
    upstream,
    monkeypatch,
):
    monkeypatch.setenv("TEST_ANTHROPIC_API_KEY", KEY)
    ep = endpoint(
        upstream,
        kind="anthropic",
        api_key_env="TEST_ANTHROPIC_API_KEY",
        system_prompt="Be brief.",
        temperature=0.5,
    )
    await collect(ep)
    (sent,) = upstream.requests
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == ANTHROPIC_VERSION
    assert "authorization" not in sent.headers
    assert sent.body == {
        "model": "normal",
        "messages": HELLO,
        "system": "Be brief.",
        "max_tokens": 1024,
        "temperature": 0.5,
        "stream": True,
    }


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_it_sends_this_sides_whole_history(upstream, kind):
    history = [
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": "And a follow-up?"},
    ]
    _, finished = await collect(endpoint(upstream, "echo", kind=kind), history)
    assert finished.text == "Echo: And a follow-up?"
    assert upstream.requests[0].body["messages"] == history
    assert "authorization" not in upstream.requests[0].headers


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_it_estimates_usage_from_characters_when_the_provider_reports_none(
    upstream,
    kind,
):
    ep = endpoint(
        upstream,
        "no_usage",
        kind=kind,
        system_prompt="1234",
        price_input_per_mtok=Decimal(1),
        price_output_per_mtok=Decimal(1),
    )
    _, finished = await collect(ep)
    assert finished.usage_estimated is True
    # The ratings engine's estimate: words and punctuation marks.
    sent = ["1234", *(m["content"] for m in HELLO)]
    assert finished.tokens_in == sum(ratings.estimate_tokens(t) for t in sent)
    assert finished.tokens_out == ratings.estimate_tokens(NORMAL_TEXT) == 15  # 12 words, 3 marks
    expected_cost = Decimal(finished.tokens_in + finished.tokens_out) / 1_000_000
    assert finished.cost == expected_cost


async def test_it_has_no_cost_without_both_prices(upstream):
    _, finished = await collect(endpoint(upstream, price_input_per_mtok=Decimal(1)))
    assert finished.cost is None


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_it_measures_time_to_first_token_and_total_time_on_slow_tokens(
    upstream,
    kind,
):
    _, finished = await collect(endpoint(upstream, "slow:ttft=0.3,delay=0.02", kind=kind))
    assert 300 <= finished.ttft_ms < 600
    assert finished.total_ms >= finished.ttft_ms + 11 * 20
    assert finished.text == NORMAL_TEXT


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_it_retries_a_500_before_the_first_token_and_succeeds(upstream, kind):
    _, finished = await collect(endpoint(upstream, "flaky:fails=2", kind=kind))
    assert finished.text == NORMAL_TEXT
    assert len(upstream.requests) == 3


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_it_gives_up_after_two_retries_when_the_500_persists(upstream, kind):
    deltas, error = await deltas_then_error(endpoint(upstream, "error", kind=kind))
    assert deltas == []
    assert str(error) == "answered HTTP 500"
    assert error.retryable is True
    assert len(upstream.requests) == 3


async def test_it_retries_a_429_but_not_a_400(upstream):
    _, error = await deltas_then_error(endpoint(upstream, "error:status=429"))
    assert str(error) == "answered HTTP 429 (rate limited)"
    assert len(upstream.requests) == 3
    _, error = await deltas_then_error(endpoint(upstream, "error:status=400"))
    assert str(error) == "answered HTTP 400"
    assert len(upstream.requests) == 4


async def test_it_retries_a_refused_connection_then_says_it_could_not_be_reached():
    ep = Endpoint(name="Gone", kind="openai", base_url=f"http://127.0.0.1:{free_port()}/v1")
    _, error = await deltas_then_error(ep)
    assert str(error) == "could not be reached"
    assert error.retryable is True


async def test_it_retries_a_connect_timeout():
    # A loopback server cannot be made to time out a TCP connect; a MockTransport can.
    attempts = []

    def refuse(request):
        attempts.append(request)
        raise httpx.ConnectTimeout("timed out", request=request)

    _clients[asyncio.get_running_loop()] = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    _, error = await deltas_then_error(Endpoint(name="X", kind="openai", base_url="http://x/v1"))
    assert str(error) == "timed out connecting"
    assert len(attempts) == 3


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_stream_cut_after_the_first_token_is_an_error_and_is_not_retried(
    upstream,
    kind,
):
    deltas, error = await deltas_then_error(endpoint(upstream, "cut:after=3", kind=kind))
    assert "".join(d.text for d in deltas) == "Hello! I am "
    assert str(error) == "closed the stream early"
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_stream_cut_before_the_first_token_is_retried(upstream, kind):
    _, error = await deltas_then_error(endpoint(upstream, "cut:after=0", kind=kind))
    assert str(error) == "closed the stream early"
    assert len(upstream.requests) == 3


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_malformed_event_is_an_error(upstream, kind):
    deltas, error = await deltas_then_error(endpoint(upstream, "malformed", kind=kind))
    assert [d.text for d in deltas] == ["Hello! "]
    assert str(error) == "sent a malformed event"
    assert error.retryable is False
    # aiohttp closes the socket on the event loop: wait for it without blocking the loop.
    closed = await asyncio.to_thread(upstream.requests[0].disconnected.wait, 2)
    assert closed, "the connection was closed"


@pytest.mark.parametrize(
    ("kind", "reason", "attempts"),
    [("openai", "reported an error (server_error)", 1), ("anthropic", "overloaded_error", 3)],
)
async def test_an_error_event_inside_the_stream_is_an_error(
    upstream,
    kind,
    reason,
    attempts,
):
    _, error = await deltas_then_error(endpoint(upstream, "stream_error", kind=kind))
    assert reason in str(error)
    assert len(upstream.requests) == attempts


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_never_answering_upstream_times_out_within_the_first_token_timeout(
    upstream,
    kind,
):
    started = time.monotonic()
    _, error = await deltas_then_error(
        endpoint(upstream, "hang", kind=kind), timeouts=Timeouts(1, first_token=0.5, total=5)
    )
    assert 0.5 <= time.monotonic() - started < 1.0
    assert str(error) == "timed out before the first token"
    assert error.for_side("b") == "Model B's endpoint timed out before the first token."
    assert len(upstream.requests) == 1
    assert await asyncio.to_thread(upstream.requests[0].disconnected.wait, 2)


async def test_an_answer_that_stalls_times_out_at_the_total_timeout(upstream):
    started = time.monotonic()
    deltas, error = await deltas_then_error(
        endpoint(upstream, "stall:after=2"), timeouts=Timeouts(1, first_token=0.4, total=0.6)
    )
    assert 0.6 <= time.monotonic() - started < 1.1
    assert "".join(d.text for d in deltas) == "Hello! I "
    assert str(error) == "timed out before finishing its answer"
    assert await asyncio.to_thread(upstream.requests[0].disconnected.wait, 2)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_cancelling_the_task_closes_the_upstream_connection(upstream, kind):
    first = asyncio.Event()
    received = []

    async def read():
        async for item in stream_chat(endpoint(upstream, "slow:delay=0.2", kind=kind), HELLO):
            received.append(item)
            first.set()

    task = asyncio.create_task(read())
    await asyncio.wait_for(first.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (sent,) = upstream.requests
    started = time.monotonic()
    assert await asyncio.to_thread(sent.disconnected.wait, 2), "the upstream saw the close"
    assert time.monotonic() - started < 0.5
    assert not sent.completed.is_set()
    assert len(received) == 1


async def test_cancelling_a_reader_busy_elsewhere_closes_the_upstream_connection(upstream):
    # The task is cancelled while the generator waits at a yield, not inside an upstream read:
    # the abandoned generator is finalized by the event loop, which closes the connection.
    first = asyncio.Event()

    async def read():
        async for _ in stream_chat(endpoint(upstream, "slow:delay=0.2"), HELLO):
            first.set()
            await asyncio.sleep(10)  # e.g. a slow WebSocket send

    task = asyncio.create_task(read())
    await asyncio.wait_for(first.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(upstream.requests[0].disconnected.wait, 1)


async def test_closing_the_stream_early_closes_the_upstream_connection(upstream):
    stream = stream_chat(endpoint(upstream, "slow:delay=0.2"), HELLO)
    async with contextlib.aclosing(stream):
        async for item in stream:
            assert item == Delta("Hello! ")
            break
    assert await asyncio.to_thread(upstream.requests[0].disconnected.wait, 1)


async def test_finished_answers_leave_the_connection_open_for_the_next_call(
    upstream,
):
    for _ in range(3):
        await collect(endpoint(upstream))
    assert not any(r.disconnected.is_set() for r in upstream.requests)
    assert len({r.client_port for r in upstream.requests}) == 1


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_missing_key_variable_is_named_and_nothing_is_sent(
    upstream,
    monkeypatch,
    kind,
):
    monkeypatch.delenv("TEST_MISSING_API_KEY", raising=False)
    _, error = await deltas_then_error(
        endpoint(upstream, kind=kind, api_key_env="TEST_MISSING_API_KEY")
    )
    assert str(error) == "needs the environment variable TEST_MISSING_API_KEY, which is not set"
    assert error.retryable is False
    assert upstream.requests == []


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_the_key_never_appears_in_an_error(upstream, monkeypatch, kind):
    monkeypatch.setenv("TEST_UPSTREAM_API_KEY", KEY)
    ep = endpoint(upstream, "unauthorized", kind=kind, api_key_env="TEST_UPSTREAM_API_KEY")
    _, error = await deltas_then_error(ep)
    assert str(error) == "answered HTTP 401 (check its API key)"
    assert "Incorrect API key provided" in error.detail  # the upstream's body, for logs
    for text in (str(error), repr(error), error.for_side("a")):
        assert KEY not in text
        assert upstream.url not in text
    assert KEY not in error.detail
    assert KEY not in repr(ep)


async def test_an_unknown_kind_and_a_bad_base_url_are_reported_as_misconfiguration():
    with pytest.raises(ProviderError, match="unknown kind"):
        await collect(Endpoint(name="X", kind="carrier-pigeon"))
    with pytest.raises(ProviderError, match="invalid base URL"):
        await collect(Endpoint(name="X", kind="openai", base_url="ftp://example.invalid"))


async def test_an_upstream_that_ignores_stream_is_reported(upstream):
    _, error = await deltas_then_error(endpoint(upstream, "json"))
    assert str(error) == "answered without streaming"


async def test_complete_chat_returns_the_whole_answer(upstream):
    finished = await complete_chat(endpoint(upstream, "echo"), HELLO, timeouts=FAST)
    assert finished.text == "Echo: Say hello to the arena"


def test_for_side_names_the_side_for_the_user():
    error = ProviderError("answered HTTP 500", retryable=True)
    assert error.for_side("a") == "Model A's endpoint answered HTTP 500."
    assert error.for_side("B") == "Model B's endpoint answered HTTP 500."


def test_timeouts_default_to_the_settings(settings):
    settings.ARENA_TIMEOUT_CONNECT = 2
    settings.ARENA_TIMEOUT_FIRST_TOKEN = 0.5
    settings.ARENA_TIMEOUT_TOTAL = 60
    assert Timeouts.from_settings() == Timeouts(connect=2.0, first_token=0.5, total=60.0)


@pytest.mark.django_db
def test_an_endpoint_is_made_from_a_contestant():
    contestant = make_contestant(
        name="GPT-x",
        kind=Contestant.Kind.OPENAI,
        base_url="https://api.example.com/v1",
        model_id="gpt-x",
        api_key_env="EXAMPLE_API_KEY",
        system_prompt="Be kind.",
        temperature=0.7,
        top_p=0.95,
        max_tokens=512,
        price_input_per_mtok=Decimal("1.5"),
        price_output_per_mtok=Decimal("6"),
    )
    assert Endpoint.from_contestant(contestant) == Endpoint(
        name="GPT-x",
        kind="openai",
        base_url="https://api.example.com/v1",
        model_id="gpt-x",
        api_key_env="EXAMPLE_API_KEY",
        system_prompt="Be kind.",
        temperature=0.7,
        top_p=0.95,
        max_tokens=512,
        price_input_per_mtok=Decimal("1.5"),
        price_output_per_mtok=Decimal("6"),
        contestant_id=contestant.pk,
    )


# -- recorded answers ------------------------------------------------------------------------


@pytest.fixture
def recorded(settings, _db_thread_closed):
    settings.ARENA_RECORDED_CHUNK_DELAY_MS = 0
    contestant = make_contestant(name="Recorded one", kind=Contestant.Kind.RECORDED)
    other = make_contestant(name="Recorded two", kind=Contestant.Kind.RECORDED)
    prompts = PromptSet.objects.create(name="Demo")
    item = PromptItem.objects.create(prompt_set=prompts, text="  What is 2 + 2?\n")
    Answer.objects.create(item=item, contestant=contestant, text="It is 4.\n\nFour, that is.")
    Answer.objects.create(item=item, contestant=other, text="Five.")
    return Endpoint.from_contestant(contestant)


@pytest.mark.django_db(transaction=True)
async def test_a_recorded_contestant_replays_its_stored_answer_in_word_chunks(recorded):
    deltas, finished = await collect(recorded, [{"role": "user", "content": "What is 2 + 2? "}])
    assert [d.text for d in deltas] == ["It ", "is ", "4.\n\n", "Four, ", "that ", "is."]
    assert finished.text == "It is 4.\n\nFour, that is."
    assert finished.usage_estimated is True
    assert (finished.tokens_in, finished.tokens_out) == (
        ratings.estimate_tokens("What is 2 + 2? "),
        ratings.estimate_tokens("It is 4.\n\nFour, that is."),
    )
    assert finished.finish_reason == "stop"
    assert finished.cost is None


@pytest.mark.django_db(transaction=True)
async def test_a_recorded_contestant_streams_with_a_visible_delay(recorded, settings):
    settings.ARENA_RECORDED_CHUNK_DELAY_MS = 20
    _, finished = await collect(recorded, [{"role": "user", "content": "What is 2 + 2?"}])
    assert finished.total_ms >= 5 * 20


@pytest.mark.django_db(transaction=True)
async def test_a_recorded_contestant_has_no_answer_for_another_prompt(recorded):
    _, error = await deltas_then_error(recorded, [{"role": "user", "content": "What is 2 + 3?"}])
    assert str(error) == "has no recorded answer for this prompt"
    _, error = await deltas_then_error(recorded, [{"role": "user", "content": "2 + 2"}])
    assert str(error) == "has no recorded answer for this prompt"


@pytest.mark.django_db(transaction=True)
async def test_a_recorded_contestant_has_no_answer_for_follow_ups(recorded):
    history = [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "It is 4."},
        {"role": "user", "content": "Sure?"},
    ]
    _, error = await deltas_then_error(recorded, history)
    assert str(error) == "has no recorded answer for follow-up messages"
    assert error.for_side("a") == (
        "Model A's endpoint has no recorded answer for follow-up messages."
    )


async def _events(*chunks: bytes) -> list[tuple[str, str, bool]]:
    async def body():
        for chunk in chunks:
            yield chunk

    return [event async for event in sse_events(body())]


async def test_server_sent_events_are_parsed_from_bytes_split_anywhere():
    text = 'event: delta\r\ndata: {"t": "caf\u00e9 \u2028 \u0085 ok"}\r\n\r\n: a comment\n'
    text += "data: one\ndata:two\n\ndata: cr only\r\rdata: last"
    raw = text.encode()
    expected = [
        ("delta", '{"t": "caf\u00e9 \u2028 \u0085 ok"}', True),
        ("message", "one\ntwo", True),
        ("message", "cr only", True),
        ("message", "last", False),  # cut before its blank line
    ]
    assert await _events(raw) == expected
    # Every split point, including inside a CR LF and inside a multi-byte character.
    for cut in range(1, len(raw)):
        assert await _events(raw[:cut], raw[cut:]) == expected, cut
    assert await _events(*(bytes([b]) for b in raw)) == expected
