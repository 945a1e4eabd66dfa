"""A live round on its way to the socket: chunks held until ``start`` and coalesced per side
(``ChunkGate``), and the database work of a burst of sockets done in batches (``Batch``):
new battles stored while both sides stream (``battle_store``)."""

import asyncio
import json
import logging
import weakref
from dataclasses import dataclass

from channels.db import database_sync_to_async

from arena.battles.matchmaking import roster_cache
from arena.battles.services import BattleDraw, battle_draw, battle_open_many
from arena.providers.recorded import recorded_answer_for

log = logging.getLogger(__name__)


def dumps(**message) -> str:
    return json.dumps(message)


class ChunkGate:
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
    return dumps(type="chunk", side=side, text=text)


async def draw_battle(category_slug: str | None, prompt: str) -> "Opening":
    """A new battle's pair from the process's roster: no database access unless recorded
    (demo) models are active (which prompts they can replay is read then)."""
    roster = await roster_cache.get()
    if category_slug and category_slug not in roster.categories:
        roster = await roster_cache.get(max_age=1.0)  # just added elsewhere?
    replayers = ()
    if roster.recorded_ids:
        replayers = await db(recorded_answer_for)(contestant_ids=roster.recorded_ids, prompt=prompt)
    draw = battle_draw(roster=roster, category_slug=category_slug, replayers=replayers)
    endpoints = {"a": draw.pairing.a.endpoint, "b": draw.pairing.b.endpoint}
    return Opening(draw, endpoints)


@dataclass(frozen=True)
class Opening:
    draw: BattleDraw
    endpoints: dict


class Batch:
    """Runs ``func(items)`` (sync, in the database thread) for this event loop's items added
    meanwhile: a list of results in order, an exception in place of an item's result.

    While one batch is in the database thread the next collects, so a burst of sockets costs
    a few calls instead of one each: all sync database work shares one thread (and the GIL
    with the event loop), where a burst's calls would otherwise queue one behind the other.
    """

    def __init__(self, func, defer: int = 0):
        self._func = func
        self._defer = defer
        self._waiting: list[tuple] = []
        self._task: asyncio.Task | None = None

    def add(self, item) -> asyncio.Future:
        """A future of the item's result (or of the exception that stands for it)."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return future

    async def _run(self) -> None:
        for _ in range(self._defer):
            await asyncio.sleep(0)
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                results = await db(self._func)([item for item, _ in batch])
            except Exception as exc:
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # its waiter was cancelled
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)


def _store_battles(openings: list[tuple]) -> list:
    return battle_open_many(openings=openings)


# Loop iterations a batch of new battles waits before going to the database thread: time for
# the round's upstream requests to be written first. The thread holds the GIL for up to 5 ms
# (sys.getswitchinterval) whenever the event loop makes a system call, so requests started
# while a batch is stored go out slower.
STORE_DEFER = 4

_batches: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = weakref.WeakKeyDictionary()


def batch(func, defer: int = 0) -> Batch:
    """This event loop's ``Batch`` of ``func`` (``defer``: loop iterations to let go by first)."""
    loop = asyncio.get_running_loop()
    batches = _batches.setdefault(loop, {})
    if func not in batches:
        batches[func] = Batch(func, defer)
    return batches[func]


def battle_store() -> Batch:
    """New battles, ``(user, draw)``, stored in one transaction per batch; each future is the
    battle's id (or the exception that kept it from being stored)."""
    return batch(_store_battles, defer=STORE_DEFER)


def db(func):
    return database_sync_to_async(func)
