"""WebSocket consumers. They stay thin: validate, call a service, forward results."""

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from arena.battles import limits
from arena.battles.protocol import (
    ProtocolError,
    neutral_finish_reason,
    parse_client_message,
    side_error,
    storable_text,
)
from arena.battles.services import (
    BattleDraw,
    battle_abandon,
    battle_follow_up,
    battle_history,
    battle_identity_leak,
    battle_regenerate,
    battle_reveal,
    battle_round_finish,
    turn_record,
    vote_record,
)
from arena.battles.streaming import ChunkGate, batch, battle_store, db, draw_battle, dumps
from arena.core.consumers import (
    CLOSE_SIGNED_OUT,
    session_is_current,
    session_key_of,
    sessions_current,
)
from arena.core.errors import ArenaError
from arena.models import Battle, Vote
from arena.providers import (
    Endpoint,
    Finished,
    ProviderError,
    Timeouts,
    stream_chat,
    warm_client,
)

log = logging.getLogger(__name__)


class SignedOut(Exception):
    """The socket's session was signed out (or expired) since it connected."""


class BattleConsumer(AsyncWebsocketConsumer):
    """One blind battle at a time per socket; see arena/battles/protocol.py for the messages.

    Every message that changes something first checks that the session the socket was opened
    with is still signed in to the same user (else the socket closes with 4401), in the same
    database call as the change.
    """

    # Battles need no channel layer (nothing is sent to a socket from elsewhere): without one
    # a battle socket works whatever state Redis is in. get_channel_layer(None) is None.
    channel_layer_alias = None

    async def connect(self):
        self.battle_id: int | None = None
        self.round_task: asyncio.Task | None = None
        self.user = self.scope.get("user")
        self.session_key = session_key_of(self.scope)
        if self.user is None or not self.user.is_authenticated or not self.session_key:
            await self.close(code=CLOSE_SIGNED_OUT)
            return
        warm_client()  # once per process: not in a burst's first prompt
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
        except SignedOut:
            await self._stop_round()
            await self.close(code=CLOSE_SIGNED_OUT)
        except ArenaError as exc:
            await self._send(type="error", side=None, message=str(exc))

    # --- client messages ---------------------------------------------------------------

    async def on_prompt(self, message):
        if self._streaming():
            raise ArenaError("Wait until both answers have finished.")
        if self.battle_id is None:
            # Before the upstream requests: the session and the limits (checked again where
            # the battle is stored, so a race stores nothing past them), for all the sockets
            # of a burst in one database call.
            await batch(_new_rounds_allowed).add((self.session_key, self.user))
            opening = await draw_battle(message.get("category"), message["text"])
            context = RoundContext(None, 0, opening.endpoints, {"a": [], "b": []})
            self._launch(context, attempt=0, prompt=message["text"], opening=opening.draw)
        else:
            context = await db(_follow_up)(self.battle_id, self.user, self.session_key)
            self._launch(context, attempt=0, prompt=message["text"])

    async def on_regenerate(self, message):
        if self.battle_id is None:
            raise ArenaError("There is no battle to regenerate.")
        if self._streaming():
            raise ArenaError("Wait until both answers have finished.")
        context, attempt, prompt = await db(_regenerate)(
            self.battle_id, self.user, self.session_key
        )
        self._launch(context, attempt=attempt, prompt=prompt)

    async def on_vote(self, message):
        if self.battle_id is None:
            raise ArenaError("There is no battle to vote on.")
        if self._streaming():
            raise ArenaError("Wait until both answers have finished.")
        vote, sides = await db(_vote)(
            self.battle_id, self.user, self.session_key, message["outcome"]
        )
        await self._send(
            type="revealed",
            battle=self.battle_id,
            outcome=vote.outcome,
            counted=vote.counted,
            void_reason=vote.void_reason,
            **sides,
        )

    async def on_new_round(self, message):
        await db(_require_session)(self.session_key, self.user)
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
                await db(battle_abandon)(battle_id=self.battle_id)

    async def _run_round(self, context: "RoundContext", *, attempt: int, prompt: str, opening):
        """Both sides stream at once; for a new battle (``opening``, a drawn pair) the
        Battle row is stored meanwhile, and chunks wait for the ``start`` message naming it."""
        gate = ChunkGate(self.send, settings.ARENA_STREAM_FLUSH_MS / 1000)
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
                dumps(type="start", battle=battle_id, round=context.index, attempt=attempt),
            )
            await asyncio.gather(*sides)
            await self._finish(battle_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # never a traceback on the page; the battle can no longer count
            log.exception("battle %s: round failed", battle_id)
            if battle_id is not None:
                await db(battle_abandon)(battle_id=battle_id)
            await self._send(
                type="error", side=None, message="The server failed this round. Start a new round."
            )
        finally:  # no upstream stream outlives its round
            for task in sides:
                task.cancel()
            await asyncio.gather(*sides, return_exceptions=True)
            gate.close()

    async def _open_battle(self, draw: BattleDraw) -> int | None:
        """Store the drawn battle while its streams run; None (user told) when that failed."""
        insert = battle_store().add((self.user, draw))
        try:
            self.battle_id = await asyncio.shield(insert)
        except asyncio.CancelledError:
            # The insert goes on in its thread: a battle it stores can never be voted on.
            with contextlib.suppress(Exception):
                await db(battle_abandon)(battle_id=await insert)
            raise
        except limits.LimitExceeded as exc:  # reached meanwhile, from another socket
            await self._send(type="error", side=None, message=str(exc))
            return None
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
        battle, leak = await db(_finish_round)(battle_id)
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
                    else "A side failed, so these answers cannot be voted on: regenerate to "
                    "try again, or start a new round."
                )
            ),
        )

    async def _run_side(self, gate, side, endpoint, history, index, attempt, prompt):
        """Stream one side. The stored Turn keeps what the upstream said (its error, its
        finish reason); the page gets them mapped to a fixed, neutral set before the vote."""
        parts: list[str] = []
        finished, reason = None, ""
        messages = [*history, {"role": "user", "content": prompt}]
        try:
            stream = stream_chat(endpoint, messages, timeouts=Timeouts.from_settings())
            async with contextlib.aclosing(stream):
                async for event in stream:
                    if isinstance(event, Finished):
                        finished = event
                    elif event.text:
                        text = storable_text(event.text)  # no NUL: PostgreSQL stores it
                        parts.append(text)
                        await gate.chunk(side, text)
        except ProviderError as exc:
            reason = str(exc)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not take the socket down or leak a traceback
            log.exception("side %s failed", side)
            reason = "failed unexpectedly"
        if finished is None and not reason:
            reason = "ended without finishing"
        error = f"Model {side.upper()}'s endpoint {reason}." if reason else ""
        battle_id = await gate.done(side)
        await db(turn_record)(
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
            await self._send(type="error", side=side, message=side_error(side, reason))
        else:
            await self._send(
                type="side_done",
                side=side,
                stats={
                    "ttft_ms": finished.ttft_ms,
                    "total_ms": finished.total_ms,
                    "tokens_out": finished.tokens_out,
                    "finish_reason": neutral_finish_reason(finished.finish_reason),
                },
            )

    async def _send(self, **message):
        await self.send(dumps(**message))


@dataclass(frozen=True)
class RoundContext:
    """What a round needs before it streams: for a follow-up or regenerate, read in one
    database call; for a new battle, from the in-memory roster (``draw_battle``)."""

    battle_id: int | None  # None: a new battle, stored while it streams
    index: int
    endpoints: dict
    history: dict


def _context(battle: Battle, index: int) -> RoundContext:
    endpoints = {
        "a": Endpoint.from_contestant(battle.contestant_a),
        "b": Endpoint.from_contestant(battle.contestant_b),
    }
    history = battle_history(battle=battle) if index else {"a": [], "b": []}
    return RoundContext(battle.pk, index, endpoints, history)


def _require_session(session_key: str | None, user) -> None:
    if not session_is_current(session_key=session_key, user=user):
        raise SignedOut()


def _new_rounds_allowed(sockets: list[tuple]) -> list:
    """For each socket, ``(session_key, user)``, that may start a new battle None, else the
    SignedOut or LimitExceeded that refuses it; a few queries for all of them."""
    current = sessions_current(sockets)
    allowed = [user.pk for (_, user), ok in zip(sockets, current, strict=True) if ok]
    refused = iter(limits.rounds_refused(allowed))
    return [next(refused) if ok else SignedOut() for ok in current]


def _follow_up(battle_id: int, user, session_key: str | None) -> RoundContext:
    _require_session(session_key, user)
    battle, index = battle_follow_up(battle_id=battle_id, user=user)
    return _context(battle, index)


def _regenerate(battle_id: int, user, session_key: str | None) -> tuple[RoundContext, int, str]:
    _require_session(session_key, user)
    index, attempt, prompt = battle_regenerate(battle_id=battle_id, user=user)
    battle = Battle.objects.select_related("contestant_a", "contestant_b").get(pk=battle_id)
    context = _context(battle, index)
    return context, attempt, prompt


def _vote(battle_id: int, user, session_key: str | None, outcome: str) -> tuple[Vote, dict]:
    _require_session(session_key, user)
    vote = vote_record(battle_id=battle_id, user=user, outcome=outcome)
    battle = Battle.objects.select_related("contestant_a", "contestant_b").get(pk=battle_id)
    return vote, battle_reveal(battle=battle)


def _finish_round(battle_id: int) -> tuple[Battle, str]:
    battle = battle_round_finish(battle_id=battle_id)
    leak = ""
    if battle.status == Battle.Status.READY:
        leak = battle_identity_leak(battle=battle)
    return battle, leak
