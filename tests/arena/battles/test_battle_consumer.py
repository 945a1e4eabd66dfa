"""The battle socket, end to end: real ASGI app, real consumer, real local upstream server."""

import asyncio
import json
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from arena.asgi import application
from arena.battles import streaming as services_module
from arena.battles.services import battle_open_many
from arena.models import Battle, BattleCategory, Category, Turn, Vote
from tests.factories import make_contestant
from tests.upstream import upstream_fixture  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_db_thread_closed")]

NAMES = ("Kestrel Ultra", "Badger Base")


def _session_cookie(username: str) -> str:
    user, _ = get_user_model().objects.get_or_create(username=username)
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@database_sync_to_async
def _contestants(upstream, spec_a: str, spec_b: str, kind: str = "openai"):
    made = []
    for name, spec in zip(NAMES, (spec_a, spec_b), strict=True):
        model_id = name.lower().replace(" ", "-") + "-0612"
        upstream.set_behaviour(model_id, spec)
        made.append(
            make_contestant(
                name=name,
                organisation=f"{name} Labs",
                kind=kind,
                base_url=upstream.url,
                model_id=model_id,
                price_input_per_mtok=1,
                price_output_per_mtok=2,
            )
        )
    return made


async def _socket(username="alice", origin=b"http://localhost"):
    cookie = await database_sync_to_async(_session_cookie)(username)
    communicator = WebsocketCommunicator(
        application,
        "/ws/battle/",
        headers=[
            (b"origin", origin),
            (b"host", b"localhost"),
            (b"cookie", f"sessionid={cookie}".encode()),
        ],
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _until(communicator, kind: str, timeout: float = 10) -> list[dict]:
    """Every message up to and including the first of type ``kind``."""
    seen = []
    while True:
        message = json.loads(await communicator.receive_from(timeout=timeout))
        seen.append(message)
        if message["type"] == kind:
            return seen


def _text(messages, side):
    return "".join(m["text"] for m in messages if m["type"] == "chunk" and m["side"] == side)


def _assert_no_identity(messages):
    raw = json.dumps(messages)
    for name in NAMES:
        assert name not in raw
        assert f"{name} Labs" not in raw
    assert "127.0.0.1" not in raw


async def test_a_whole_battle_streams_votes_and_reveals(upstream):
    await _contestants(upstream, "normal", "echo")
    ws = await _socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "Say hi"})
        messages = await _until(ws, "ready")
        _assert_no_identity(messages)
        assert messages[0]["type"] == "start" and messages[0]["round"] == 0
        assert {m["side"] for m in messages if m["type"] == "side_done"} == {"a", "b"}
        assert messages[-1]["can_vote"] is True and messages[-1]["notice"] is None
        texts = {_text(messages, "a"), _text(messages, "b")}
        assert texts == {"Hello! I am a fake model, streaming one word at a time.", "Echo: Say hi"}

        await ws.send_json_to({"type": "vote", "outcome": "b"})
        revealed = (await _until(ws, "revealed"))[-1]
        assert {revealed["a"]["name"], revealed["b"]["name"]} == set(NAMES)
        assert revealed["counted"] is True
        assert revealed["a"]["stats"]["tokens_out"] > 0
        assert revealed["a"]["stats"]["cost"] is not None

        await ws.send_json_to({"type": "vote", "outcome": "a"})
        error = (await _until(ws, "error"))[-1]
        assert error["message"] == "You have already voted on this battle."
        assert await ws.receive_nothing()
    finally:
        await ws.disconnect()
    battle = await database_sync_to_async(Battle.objects.get)()
    assert battle.status == Battle.Status.VOTED
    vote = await database_sync_to_async(Vote.objects.get)()
    assert vote.outcome == "b" and vote.counted
    turns = await database_sync_to_async(list)(Turn.objects.order_by("side"))
    assert [t.side for t in turns] == ["a", "b"]
    assert all(t.ttft_ms is not None and t.total_ms >= t.ttft_ms for t in turns)


async def test_follow_ups_go_to_the_same_pair_with_each_sides_own_history(upstream):
    await _contestants(upstream, "echo", "echo")
    ws = await _socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "first"})
        await _until(ws, "ready")
        await ws.send_json_to({"type": "prompt", "text": "second"})
        messages = await _until(ws, "ready")
        assert messages[0] == {
            "type": "start",
            "battle": messages[0]["battle"],
            "round": 1,
            "attempt": 0,
        }
    finally:
        await ws.disconnect()
    bodies = [r.body for r in upstream.requests]
    assert len(bodies) == 4
    follow_ups = [b["messages"] for b in bodies if b["messages"][-1]["content"] == "second"]
    assert len(follow_ups) == 2
    for sent in follow_ups:
        assert [m["role"] for m in sent if m["role"] != "system"] == ["user", "assistant", "user"]
        assert [m for m in sent if m["role"] == "assistant"][0]["content"] == "Echo: first"


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("error", "failed (server error)"),
        ("cut:after=2", "closed the stream before finishing its answer"),
        ("malformed", "sent a malformed answer"),
        ("hang", "timed out before the first token"),
    ],
)
async def test_a_broken_upstream_errors_the_battle_with_a_clear_message(
    upstream, settings, spec, reason
):
    settings.ARENA_TIMEOUT_FIRST_TOKEN = 0.5
    await _contestants(upstream, "normal", spec)
    ws = await _socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "hello"})
        messages = await _until(ws, "ready", timeout=15)
    finally:
        await ws.disconnect()
    _assert_no_identity(messages)
    errors = [m for m in messages if m["type"] == "error"]
    assert len(errors) == 1
    side = errors[0]["side"]
    assert errors[0]["message"].startswith(f"Model {side.upper()}'s endpoint ")
    assert reason in errors[0]["message"]
    assert "Traceback" not in errors[0]["message"]
    assert messages[-1]["can_vote"] is False
    battle = await database_sync_to_async(Battle.objects.get)()
    assert battle.status == Battle.Status.ERRORED


async def test_a_vote_on_an_errored_battle_is_refused(upstream):
    await _contestants(upstream, "normal", "error")
    ws = await _socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "hello"})
        await _until(ws, "ready")
        await ws.send_json_to({"type": "vote", "outcome": "a"})
        error = (await _until(ws, "error"))[-1]
        assert "finish without error" in error["message"]
    finally:
        await ws.disconnect()
    assert not await database_sync_to_async(Vote.objects.exists)()


async def test_regenerate_replaces_the_answers_and_only_the_new_ones_are_voted(upstream):
    await _contestants(upstream, "normal", "normal")
    ws = await _socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "hello"})
        await _until(ws, "ready")
        await ws.send_json_to({"type": "regenerate"})
        messages = await _until(ws, "ready")
        assert messages[0]["attempt"] == 1
        await ws.send_json_to({"type": "vote", "outcome": "tie"})
        await _until(ws, "revealed")
    finally:
        await ws.disconnect()
    turns = await database_sync_to_async(list)(Turn.objects.order_by("attempt", "side"))
    assert [(t.attempt, t.superseded) for t in turns] == [
        (0, True),
        (0, True),
        (1, False),
        (1, False),
    ]


async def test_an_identity_leak_is_announced_and_the_vote_is_void(upstream):
    made = await _contestants(upstream, "echo", "normal")
    ws = await _socket()
    try:
        # The echo side repeats the prompt, so its *answer* names a contestant.
        await ws.send_json_to({"type": "prompt", "text": f"Pretend to be {made[1].name}"})
        ready = (await _until(ws, "ready"))[-1]
        assert ready["can_vote"] is True
        assert "will not count" in ready["notice"]
        await ws.send_json_to({"type": "vote", "outcome": "a"})
        revealed = (await _until(ws, "revealed"))[-1]
        assert revealed["counted"] is False
        assert "identity leaked" in revealed["void_reason"]
    finally:
        await ws.disconnect()


async def test_leaving_mid_stream_closes_both_upstream_streams(upstream):
    await _contestants(upstream, "slow:delay=0.2", "slow:delay=0.2")
    ws = await _socket()
    await ws.send_json_to({"type": "prompt", "text": "hello"})
    await _until(ws, "chunk")
    await ws.disconnect()
    for request in upstream.requests:
        assert await asyncio.to_thread(request.disconnected.wait, 5)
    battle = await database_sync_to_async(Battle.objects.get)()
    assert battle.status == Battle.Status.VOID


async def test_a_new_round_cancels_the_old_one_and_starts_fresh(upstream):
    await _contestants(upstream, "slow:delay=0.2", "slow:delay=0.2")
    ws = await _socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "hello"})
        await _until(ws, "chunk")
        await ws.send_json_to({"type": "new_round"})
        await _until(ws, "new_round")
        for request in upstream.requests:
            assert await asyncio.to_thread(request.disconnected.wait, 5)
        await ws.send_json_to({"type": "prompt", "text": "again"})
        start = (await _until(ws, "start"))[-1]
    finally:
        await ws.disconnect()
    statuses = await database_sync_to_async(list)(
        Battle.objects.order_by("pk").values_list("pk", "status")
    )
    assert statuses[0][1] == Battle.Status.VOID
    assert start["battle"] == statuses[1][0]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"type": "dance"}', "Unknown message type 'dance'"),
        ('{"type": "vote", "outcome": "left"}', "outcome must be one of"),
        ('{"type": "prompt", "text": "   "}', "The prompt is empty"),
        ('{"type": "prompt", "text": "hi", "model": "x"}', "Unexpected field"),
        ("[1, 2]", "JSON object"),
    ],
)
async def test_a_malformed_message_gets_an_error_and_the_socket_stays_usable(
    upstream, raw, message
):
    await _contestants(upstream, "normal", "normal")
    ws = await _socket()
    try:
        await ws.send_to(text_data=raw)
        error = (await _until(ws, "error"))[-1]
        assert message in error["message"] and error["side"] is None
        await ws.send_json_to({"type": "prompt", "text": "still here?"})
        assert (await _until(ws, "ready"))[-1]["can_vote"] is True
    finally:
        await ws.disconnect()


async def test_an_oversized_prompt_and_too_many_rounds_are_refused(upstream, settings):
    settings.ARENA_MAX_PROMPT_CHARS = 50
    settings.ARENA_MAX_TURNS = 1
    await _contestants(upstream, "normal", "normal")
    ws = await _socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "x" * 51})
        error = (await _until(ws, "error"))[-1]
        assert error["message"] == "The prompt has 51 characters; the limit is 50."
        await ws.send_json_to({"type": "prompt", "text": "short"})
        await _until(ws, "ready")
        await ws.send_json_to({"type": "prompt", "text": "follow-up"})
        error = (await _until(ws, "error"))[-1]
        assert "reached 1 rounds" in error["message"]
    finally:
        await ws.disconnect()
    assert len(upstream.requests) == 2


async def test_an_unauthenticated_socket_is_refused():
    communicator = WebsocketCommunicator(
        application, "/ws/battle/", headers=[(b"origin", b"http://localhost")]
    )
    connected, code = await communicator.connect()
    assert not connected
    await communicator.disconnect()


async def test_a_socket_from_another_origin_is_refused():
    cookie = await database_sync_to_async(_session_cookie)("alice")
    communicator = WebsocketCommunicator(
        application,
        "/ws/battle/",
        headers=[(b"origin", b"http://evil.example"), (b"cookie", f"sessionid={cookie}".encode())],
    )
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


async def test_only_the_battles_own_user_can_vote(upstream):
    await _contestants(upstream, "normal", "normal")
    ws = await _socket("alice")
    try:
        await ws.send_json_to({"type": "prompt", "text": "hello"})
        ready = await _until(ws, "ready")
        battle_id = ready[0]["battle"]
    finally:
        await ws.disconnect()
    from arena.battles.services import VoteRejected, vote_record

    bob, _ = await database_sync_to_async(get_user_model().objects.get_or_create)(username="bob")
    with pytest.raises(VoteRejected, match="Only the person"):
        await database_sync_to_async(vote_record)(battle_id=battle_id, user=bob, outcome="a")


@database_sync_to_async
def _recorded_pair(settings):
    from arena.models import Answer, PromptItem, PromptSet

    settings.ARENA_RECORDED_CHUNK_DELAY_MS = 0
    item = PromptItem.objects.create(
        prompt_set=PromptSet.objects.create(name="Demo"), text="Name a colour."
    )
    for name in NAMES:
        contestant = make_contestant(name=name, kind="recorded")
        Answer.objects.create(item=item, contestant=contestant, text=f"Blue, says {len(name)}.")


async def test_recorded_models_refuse_unknown_prompts_and_follow_ups_without_losing_the_vote(
    settings,
):
    await _recorded_pair(settings)
    ws = await _socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "Name a metal."})
        error = (await _until(ws, "error"))[-1]
        assert "only replay their answers to the suggested prompts" in error["message"]
        assert not await database_sync_to_async(Battle.objects.exists)()

        await ws.send_json_to({"type": "prompt", "text": "Name a colour."})
        assert (await _until(ws, "ready"))[-1]["can_vote"] is True
        await ws.send_json_to({"type": "prompt", "text": "And another?"})
        error = (await _until(ws, "error"))[-1]
        assert "answer only the first prompt" in error["message"]
        await ws.send_json_to({"type": "vote", "outcome": "tie"})
        assert (await _until(ws, "revealed"))[-1]["counted"] is True
    finally:
        await ws.disconnect()


async def test_chunks_wait_for_start_while_the_new_battle_is_stored(upstream, monkeypatch):
    """Both upstream requests go out before the Battle row exists; the chunks that arrive
    meanwhile are held and sent, in order, only after the ``start`` that names the battle."""

    store = battle_open_many

    def slow_store(**kwargs):
        time.sleep(0.4)  # the upstream answers in full meanwhile
        return store(**kwargs)

    monkeypatch.setattr(services_module, "battle_open_many", slow_store)
    await _contestants(upstream, "normal", "echo")
    ws = await _socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "Say hi"})
        first = json.loads(await ws.receive_from(timeout=10))
        started_at = time.monotonic()
        messages = [first, *await _until(ws, "ready")]
    finally:
        await ws.disconnect()
    assert first["type"] == "start"
    assert first["battle"] == (await database_sync_to_async(Battle.objects.get)()).pk
    assert all(
        r.first_token_at is not None and r.first_token_at < started_at for r in upstream.requests
    )
    assert {_text(messages, "a"), _text(messages, "b")} == {
        "Hello! I am a fake model, streaming one word at a time.",
        "Echo: Say hi",
    }
    for side in ("a", "b"):  # each side's chunks come before its side_done
        kinds = [m["type"] for m in messages if m.get("side") == side]
        assert kinds[-1] == "side_done" and set(kinds[:-1]) == {"chunk"}


async def test_a_battle_that_cannot_be_stored_closes_both_streams_and_says_so(
    upstream, monkeypatch
):
    from django.db import DatabaseError

    def failing_store(**kwargs):
        deadline = time.monotonic() + 5
        while len(upstream.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # fail while both streams are open
        raise DatabaseError("disk I/O error")

    store = battle_open_many
    monkeypatch.setattr(services_module, "battle_open_many", failing_store)
    await _contestants(upstream, "slow:ttft=0.3,delay=0.2", "slow:ttft=0.3,delay=0.2")
    ws = await _socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "hello"})
        messages = await _until(ws, "error")
        assert [m["type"] for m in messages] == ["error"]
        assert messages[0]["side"] is None
        assert "could not be started" in messages[0]["message"]
        assert "disk I/O" not in messages[0]["message"]
        assert len(upstream.requests) == 2
        for request in upstream.requests:
            assert await asyncio.to_thread(request.disconnected.wait, 5)
        assert await ws.receive_nothing(timeout=0.5)
        assert not await database_sync_to_async(Battle.objects.exists)()

        monkeypatch.setattr(services_module, "battle_open_many", store)  # the database is back
        await ws.send_json_to({"type": "prompt", "text": "again"})
        assert (await _until(ws, "ready"))[-1]["can_vote"] is True
    finally:
        await ws.disconnect()
    assert await database_sync_to_async(Battle.objects.count)() == 1


async def test_an_unknown_category_is_refused_before_anything_streams(upstream):
    await _contestants(upstream, "normal", "normal")
    ws = await _socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "hello", "category": "nope"})
        error = (await _until(ws, "error"))[-1]
        assert error == {"type": "error", "side": None, "message": "Unknown category 'nope'."}
        assert upstream.requests == []
        assert not await database_sync_to_async(Battle.objects.exists)()

        # A category added in this process is known at once.
        await database_sync_to_async(Category.objects.create)(slug="coding", name="Coding")
        await ws.send_json_to({"type": "prompt", "text": "hello", "category": "coding"})
        assert (await _until(ws, "ready"))[-1]["can_vote"] is True
    finally:
        await ws.disconnect()
    link = await database_sync_to_async(BattleCategory.objects.select_related("category").get)()
    assert link.category.slug == "coding" and link.assigner == "voter"


async def test_a_contestant_deactivated_here_is_no_longer_drawn(upstream):
    made = await _contestants(upstream, "normal", "normal")
    third = await database_sync_to_async(make_contestant)(
        name="Heron Mid", kind="openai", base_url=upstream.url, model_id="heron-mid"
    )
    ws = await _socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "warm up"})
        await _until(ws, "ready")  # the roster is now cached with all three
        await ws.send_json_to({"type": "new_round"})
        await _until(ws, "new_round")
        third.active = False
        await database_sync_to_async(third.save)()
        before = len(upstream.requests)
        for _ in range(6):
            await ws.send_json_to({"type": "prompt", "text": "hello"})
            await _until(ws, "ready")
            await ws.send_json_to({"type": "new_round"})
            await _until(ws, "new_round")
    finally:
        await ws.disconnect()
    models = {r.model for r in upstream.requests[before:]}
    assert models == {c.model_id for c in made}


@pytest.mark.parametrize("flush_ms", [0, 80])
async def test_a_sides_chunks_are_joined_per_window_and_the_first_goes_at_once(
    upstream, settings, flush_ms
):
    settings.ARENA_STREAM_FLUSH_MS = flush_ms
    spec = "slow:ttft=0.2,delay=0.01,tokens=40"
    await _contestants(upstream, spec, spec)
    ws = await _socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "Count"})
        messages = await _until(ws, "ready")
    finally:
        await ws.disconnect()
    expected = " ".join(f"word{i}" for i in range(40))
    for side in ("a", "b"):
        assert _text(messages, side) == expected  # nothing lost, nothing reordered
        chunks = [m for m in messages if m["type"] == "chunk" and m["side"] == side]
        done = next(
            k for k, m in enumerate(messages) if m["type"] == "side_done" and m["side"] == side
        )
        assert messages.index(chunks[-1]) < done  # all text before its side_done
        assert chunks[0]["text"] == "word0 "  # the first token goes out alone, at once
        if flush_ms:  # 40 tokens 10 ms apart: at most one message per 80 ms, plus the first
            assert len(chunks) <= 8
        else:
            assert len(chunks) == 40


async def test_a_failed_round_regenerated_successfully_can_be_voted_and_counts(upstream):
    """Retrying a failed round is allowed; only the current answers must be complete."""
    await _contestants(upstream, "normal", "flaky:fails=3")  # 3 attempts fail, then it answers
    ws = await _socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "hello"})
        failed = (await _until(ws, "ready"))[-1]
        assert failed["can_vote"] is False and "regenerate" in failed["notice"]
        await ws.send_json_to({"type": "vote", "outcome": "a"})
        assert "finish without error" in (await _until(ws, "error"))[-1]["message"]

        await ws.send_json_to({"type": "regenerate"})
        retried = await _until(ws, "ready")
        assert retried[0]["attempt"] == 1
        assert retried[-1]["can_vote"] is True and retried[-1]["notice"] is None
        await ws.send_json_to({"type": "vote", "outcome": "b"})
        assert (await _until(ws, "revealed"))[-1]["counted"] is True
    finally:
        await ws.disconnect()
    vote = await database_sync_to_async(Vote.objects.counted().get)()
    assert vote.outcome == "b"
    failed_turns = await database_sync_to_async(Turn.objects.exclude(error="").get)()
    assert failed_turns.superseded  # kept, but not among the answers voted on


async def test_a_regenerate_that_fails_again_still_cannot_be_voted(upstream):
    await _contestants(upstream, "normal", "error")
    ws = await _socket()
    try:
        await ws.send_json_to({"type": "prompt", "text": "hello"})
        assert (await _until(ws, "ready"))[-1]["can_vote"] is False
        await ws.send_json_to({"type": "regenerate"})
        assert (await _until(ws, "ready"))[-1]["can_vote"] is False
        await ws.send_json_to({"type": "vote", "outcome": "a"})
        assert "finish without error" in (await _until(ws, "error"))[-1]["message"]
    finally:
        await ws.disconnect()
    assert not await database_sync_to_async(Vote.objects.exists)()
    battle = await database_sync_to_async(Battle.objects.get)()
    assert battle.status == Battle.Status.ERRORED
