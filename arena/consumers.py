"""WebSocket consumers. They stay thin: validate, call a service, forward results."""

import asyncio
import contextlib
import json
import logging
import uuid
import weakref
from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from arena import matchmaking, services
from arena.models import Battle, Contestant
from arena.protocol import ProtocolError, parse_client_message
from arena.providers import Endpoint, Finished, ProviderError, Timeouts, stream_chat
from arena.services import ArenaError

log = logging.getLogger(__name__)


class PingConsumer(AsyncWebsocketConsumer):
    """Echo a token back through the channel layer: a wiring check for the layer in use.

    The reply travels consumer -> channel layer group -> consumer -> client, so it only
    arrives when the configured layer (in-memory or Redis) really works.
    """

    async def connect(self):
        self.group = f"ping-{uuid.uuid4().hex}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = json.loads(text_data or "")
        except json.JSONDecodeError:
            await self._error("Message is not valid JSON.")
            return
        if not isinstance(message, dict) or message.get("type") != "ping":
            await self._error('Expected {"type": "ping", "token": "..."}.')
            return
        token = message.get("token")
        if not isinstance(token, str) or len(token) > 200:
            await self._error("token must be a string of at most 200 characters.")
            return
        await self.channel_layer.group_send(self.group, {"type": "pong.relay", "token": token})

    async def pong_relay(self, event):
        await self.send(json.dumps({"type": "pong", "token": event["token"]}))

    async def _error(self, message: str):
        await self.send(json.dumps({"type": "error", "message": message}))


class BattleConsumer(AsyncWebsocketConsumer):
    """One blind battle at a time per socket; see arena/protocol.py for the messages."""

    async def connect(self):
        self.battle_id: int | None = None
        self.round_task: asyncio.Task | None = None
        self.user = self.scope.get("user")
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=4401)
            return
        await self.accept()

    async def disconnect(self, code):
        await self._stop_round()

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = parse_client_message(text_data)
        except ProtocolError as exc:
            await self._send(type="error", side=None, message=str(exc))
            return
        handler = getattr(self, f"on_{message['type']}")
        try:
            await handler(message)
        except ArenaError as exc:
            await self._send(type="error", side=None, message=str(exc))

    # --- client messages ---------------------------------------------------------------

    async def on_prompt(self, message):
        if self._streaming():
            raise ArenaError("Wait until both answers have finished.")
        if self.battle_id is None:
            opening = await _draw(message.get("category"), message["text"])
            context = RoundContext(None, 0, opening.endpoints, {"a": [], "b": []})
            self._launch(context, attempt=0, prompt=message["text"], opening=opening.draw)
        else:
            context = await _db(_follow_up)(self.battle_id)
            self._launch(context, attempt=0, prompt=message["text"])

    async def on_regenerate(self, message):
        if self.battle_id is None:
            raise ArenaError("There is no battle to regenerate.")
        if self._streaming():
            raise ArenaError("Wait until both answers have finished.")
        context, attempt, prompt = await _db(_regenerate)(self.battle_id, self.user)
        self._launch(context, attempt=attempt, prompt=prompt)

    async def on_vote(self, message):
        if self.battle_id is None:
            raise ArenaError("There is no battle to vote on.")
        if self._streaming():
            raise ArenaError("Wait until both answers have finished.")
        vote = await _db(services.vote_record)(
            battle_id=self.battle_id, user=self.user, outcome=message["outcome"]
        )
        sides = await _db(_reveal)(self.battle_id)
        await self._send(
            type="revealed",
            battle=self.battle_id,
            outcome=vote.outcome,
            counted=vote.counted,
            void_reason=vote.void_reason,
            **sides,
        )

    async def on_new_round(self, message):
        await self._stop_round()
        self.battle_id = None
        await self._send(type="new_round")

    # --- streaming ---------------------------------------------------------------------

    def _streaming(self) -> bool:
        return self.round_task is not None and not self.round_task.done()

    def _launch(self, context: "RoundContext", *, attempt: int, prompt: str, opening=None):
        self.round_task = asyncio.create_task(
            self._run_round(context, attempt=attempt, prompt=prompt, opening=opening)
        )

    async def _stop_round(self):
        """Cancel a round in flight (closing both upstream streams) and void its battle."""
        task, self.round_task = self.round_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if self.battle_id is not None:
                await _db(services.battle_abandon)(battle_id=self.battle_id)

    async def _run_round(self, context: "RoundContext", *, attempt: int, prompt: str, opening):
        """Both sides stream at once; for a new battle (``opening``, a drawn pair) the
        Battle row is stored meanwhile, and chunks wait for the ``start`` message naming it."""
        gate = _Gate(self.send, settings.ARENA_STREAM_FLUSH_MS / 1000)
        sides = [
            asyncio.create_task(
                self._run_side(
                    gate,
                    side,
                    context.endpoints[side],
                    context.history[side],
                    context.index,
                    attempt,
                    prompt,
                )
            )
            for side in ("a", "b")
        ]
        battle_id = context.battle_id
        try:
            if opening is not None:
                battle_id = await self._open_battle(opening)
                if battle_id is None:
                    return
            await gate.open(
                battle_id,
                _dumps(type="start", battle=battle_id, round=context.index, attempt=attempt),
            )
            await asyncio.gather(*sides)
            await self._finish(battle_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # never a traceback on the page; the battle can no longer count
            log.exception("battle %s: round failed", battle_id)
            if battle_id is not None:
                await _db(services.battle_abandon)(battle_id=battle_id)
            await self._send(
                type="error", side=None, message="The server failed this round. Start a new round."
            )
        finally:  # no upstream stream outlives its round
            for task in sides:
                task.cancel()
            await asyncio.gather(*sides, return_exceptions=True)
            gate.close()

    async def _open_battle(self, draw: services.BattleDraw) -> int | None:
        """Store the drawn battle while its streams run; None (user told) when that failed."""
        insert = _battle_store().add(self.user, draw)
        try:
            self.battle_id = await asyncio.shield(insert)
        except asyncio.CancelledError:
            # The insert goes on in its thread: a battle it stores can never be voted on.
            with contextlib.suppress(Exception):
                await _db(services.battle_abandon)(battle_id=await insert)
            raise
        except Exception:
            log.exception("could not store a new battle")
            await self._send(
                type="error",
                side=None,
                message="The battle could not be started because the server could not store "
                "it; nothing was kept. Send your prompt again.",
            )
            return None
        return self.battle_id

    async def _finish(self, battle_id: int):
        battle, leak = await _db(_finish_round)(battle_id)
        await self._send(
            type="ready",
            battle=battle_id,
            can_vote=battle.status == Battle.Status.READY,
            notice=(
                "An answer names a model or its maker, so this battle will not count "
                "on the leaderboard. You can still vote to see who it was."
                if leak
                else (
                    None
                    if battle.status == Battle.Status.READY
                    else "A side failed, so this battle cannot be voted on. Start a new round."
                )
            ),
        )

    async def _run_side(self, gate, side, endpoint, history, index, attempt, prompt):
        parts: list[str] = []
        finished, error = None, ""
        messages = [*history, {"role": "user", "content": prompt}]
        try:
            stream = stream_chat(endpoint, messages, timeouts=Timeouts.from_settings())
            async with contextlib.aclosing(stream):
                async for event in stream:
                    if isinstance(event, Finished):
                        finished = event
                    elif event.text:
                        parts.append(event.text)
                        await gate.chunk(side, event.text)
        except ProviderError as exc:
            error = exc.for_side(side.upper())
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not take the socket down or leak a traceback
            log.exception("side %s failed", side)
            error = f"Model {side.upper()} failed unexpectedly."
        if finished is None and not error:
            error = f"Model {side.upper()}'s endpoint ended without finishing."
        battle_id = await gate.done(side)
        await _db(services.turn_record)(
            battle_id=battle_id,
            index=index,
            side=side,
            attempt=attempt,
            prompt=prompt,
            text="".join(parts),
            finished=finished,
            error=error,
        )
        if error:
            await self._send(type="error", side=side, message=error)
        else:
            await self._send(
                type="side_done",
                side=side,
                stats={
                    "ttft_ms": finished.ttft_ms,
                    "total_ms": finished.total_ms,
                    "tokens_out": finished.tokens_out,
                    "finish_reason": finished.finish_reason,
                },
            )

    async def _send(self, **message):
        await self.send(_dumps(**message))


def _dumps(**message) -> str:
    return json.dumps(message)


class _Gate:
    """A round's chunks on their way to the socket: held until ``start`` is out, then
    coalesced.

    Upstream requests go out before a new battle's row is stored; a side's chunks are held
    (in order, per side) until ``open`` has sent ``start``, then go out ahead of any newer
    chunk. With a real upstream the first token comes later than the insert, so nothing waits.

    After that a side's text goes out at once when nothing of that side went out in the last
    ``window`` seconds (so the first token is never delayed), else it joins the side's next
    message, sent when the window is over: at most one message per side and window, which
    keeps a busy server's per-message cost (and the browser's re-renders) bounded.
    ``window`` 0 sends every chunk as it comes. One lock keeps the messages in order.
    """

    def __init__(self, send, window: float):
        self._send = send
        self._window = window
        self._pending = {"a": [], "b": []}
        self._last = {"a": float("-inf"), "b": float("-inf")}
        self._timer = {"a": None, "b": None}
        self._lock = asyncio.Lock()
        self._open = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self.battle_id: int | None = None

    async def chunk(self, side: str, text: str) -> None:
        self._pending[side].append(text)
        if not self._open.is_set() or self._timer[side] is not None:
            return  # goes out with ``open`` or with the scheduled flush
        wait = self._last[side] + self._window - self._loop.time()
        if wait <= 0:
            await self._flush(side)
        else:
            self._timer[side] = self._loop.call_later(wait, self._flush_later, side)

    def _flush_later(self, side: str) -> None:
        task = self._loop.create_task(self._flush(side))
        task.add_done_callback(_log_failure)

    async def _flush(self, side: str) -> None:
        timer, self._timer[side] = self._timer[side], None
        if timer is not None:
            timer.cancel()
        if not self._pending[side]:
            return
        text = "".join(self._pending[side])
        self._pending[side].clear()
        self._last[side] = self._loop.time()
        async with self._lock:
            await self._send(_chunk_message(side, text))

    async def open(self, battle_id: int, start: str) -> None:
        self.battle_id = battle_id
        async with self._lock:
            await self._send(start)
        self._open.set()
        for side in ("a", "b"):  # what came meanwhile, one message per side
            await self._flush(side)

    async def done(self, side: str) -> int:
        """The battle id, once ``start`` and everything of ``side`` so far are out."""
        await self._open.wait()
        await self._flush(side)
        async with self._lock:  # a flush already under way (FIFO lock) has sent its text
            pass
        return self.battle_id

    def close(self) -> None:
        for timer in self._timer.values():
            if timer is not None:
                timer.cancel()


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("sending a chunk failed", exc_info=task.exception())


def _chunk_message(side: str, text: str) -> str:
    return _dumps(type="chunk", side=side, text=text)


async def _draw(category_slug: str | None, prompt: str) -> "Opening":
    """A new battle's pair from the process's roster: no database access unless recorded
    (demo) models are active (which prompts they can replay is read then)."""
    roster = await matchmaking.roster_cache.get()
    if category_slug and category_slug not in roster.categories:
        roster = await matchmaking.roster_cache.get(max_age=1.0)  # just added elsewhere?
    replayers = ()
    if roster.recorded_ids:
        replayers = await _db(services.recorded_answer_for)(
            contestant_ids=roster.recorded_ids, prompt=prompt
        )
    draw = services.battle_draw(roster=roster, category_slug=category_slug, replayers=replayers)
    endpoints = {"a": draw.pairing.a.endpoint, "b": draw.pairing.b.endpoint}
    return Opening(draw, endpoints)


@dataclass(frozen=True)
class Opening:
    draw: services.BattleDraw
    endpoints: dict


class _BattleStore:
    """Stores new battles for this event loop, all those drawn meanwhile in one transaction.

    While one batch is in the database thread the next collects, so a burst of battles costs a
    few transactions instead of one each (the thread holds the GIL the event loop needs).
    """

    def __init__(self):
        self._waiting: list[tuple] = []
        self._task: asyncio.Task | None = None

    def add(self, user, draw: services.BattleDraw) -> asyncio.Future:
        """A future of the battle's id (or of the exception that kept it from being stored)."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((user, draw, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._store())
        return future

    async def _store(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                results = await _db(services.battle_open_many)(
                    openings=[(user, draw) for user, draw, _ in batch]
                )
            except Exception as exc:
                results = [exc] * len(batch)
            for (_, _, future), result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)


_stores: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _BattleStore]" = (
    weakref.WeakKeyDictionary()
)


def _battle_store() -> _BattleStore:
    loop = asyncio.get_running_loop()
    store = _stores.get(loop)
    if store is None:
        store = _stores[loop] = _BattleStore()
    return store


def _db(func):
    return database_sync_to_async(func)


def _reopen(battle_id: int) -> None:
    Battle.objects.filter(pk=battle_id, status=Battle.Status.READY).update(
        status=Battle.Status.STREAMING, ready_at=None
    )


@dataclass(frozen=True)
class RoundContext:
    """What a round needs before it streams: for a follow-up or regenerate, read in one
    database call; for a new battle, from the in-memory roster (``_draw``)."""

    battle_id: int | None  # None: a new battle, stored while it streams
    index: int
    endpoints: dict
    history: dict


def _context(battle: Battle, index: int) -> RoundContext:
    endpoints = {
        "a": Endpoint.from_contestant(battle.contestant_a),
        "b": Endpoint.from_contestant(battle.contestant_b),
    }
    history = services.battle_history(battle=battle) if index else {"a": [], "b": []}
    return RoundContext(battle.pk, index, endpoints, history)


def _follow_up(battle_id: int) -> RoundContext:
    battle = Battle.objects.select_related("contestant_a", "contestant_b").get(pk=battle_id)
    if battle.status != Battle.Status.READY:
        raise ArenaError("This battle is over: start a new round to ask again.")
    if Contestant.Kind.RECORDED in (battle.contestant_a.kind, battle.contestant_b.kind):
        # Refused before anything changes, so the first round can still be voted on.
        raise ArenaError(
            "Recorded (demo) models answer only the first prompt of a battle: vote on these "
            "answers, then start a new round."
        )
    index = services.battle_rounds(battle=battle)
    if index >= settings.ARENA_MAX_TURNS:
        raise ArenaError(
            f"This battle has reached {settings.ARENA_MAX_TURNS} rounds; vote, "
            "then start a new round."
        )
    _reopen(battle_id)
    return _context(battle, index)


def _regenerate(battle_id: int, user) -> tuple[RoundContext, int, str]:
    index, attempt, prompt = services.battle_regenerate(battle_id=battle_id, user=user)
    battle = Battle.objects.select_related("contestant_a", "contestant_b").get(pk=battle_id)
    context = _context(battle, index)
    return context, attempt, prompt


def _finish_round(battle_id: int) -> tuple[Battle, str]:
    battle = services.battle_round_finish(battle_id=battle_id)
    leak = ""
    if battle.status == Battle.Status.READY:
        leak = services.battle_identity_leak(battle=battle)
    return battle, leak


def _reveal(battle_id: int) -> dict:
    battle = Battle.objects.select_related("contestant_a", "contestant_b").get(pk=battle_id)
    return services.battle_reveal(battle=battle)
