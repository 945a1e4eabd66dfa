"""Fill the missing answers of an eval set: one upstream call per (prompt, model) pair that has
no stored ``Answer`` yet, all pairs on one event loop.

- ``answers_missing`` lists the pairs still to fill, so re-running fills only what is missing.
- ``answers_generate`` calls ``complete_chat`` for each pair (the prompt's text as the one user
  message; system prompt and sampling parameters from the contestant) with at most
  ``ARENA_GENERATE_CONCURRENCY`` calls at a time per endpoint (same kind, base URL and model
  id), and stores each answer once: the unique constraint ``answer_unique_per_item`` makes a
  concurrent or retried fill keep the first answer and never double it.
- Transient failures (``ProviderError.retryable``: connection errors, HTTP 5xx/408/429, a cut
  stream; and timeouts) are retried with exponential backoff, jitter and a cap. The provider
  already retries before the first token; this retries the whole call. After ``GIVE_UP_AFTER``
  pairs of one endpoint in a row failed all their retries, its remaining pairs are not tried.
- A failure is counted and listed in the run's message (``model/item: reason``), never stored.
- ``generation_run_create`` records a ``Run(kind="generate")`` and ``generation_run_enqueue``
  queues ``generate_answers_task`` after commit; the task claims the queued run with a
  conditional UPDATE, so a redelivered message never runs it twice. A run that died with its
  worker stays "running"; running the generation again fills what it left.

Call these from synchronous code only (a view, a command, a Celery task): the event loop runs
in its own thread while every database query runs in the calling thread.
"""

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection
from django.db.models import F, Q
from django.utils import timezone

from arena.core.errors import ArenaError
from arena.core.retry import backoff
from arena.models import Answer, Contestant, PromptItem, PromptSet, Run
from arena.providers import (
    Endpoint,
    Finished,
    ProviderError,
    Timeouts,
    aclose_client,
    complete_chat,
)
from arena.providers.slots import EndpointSlots

__all__ = [
    "DEFAULT_CONCURRENCY",
    "GenerationError",
    "GenerationResult",
    "answers_generate",
    "answers_missing",
    "generation_run_create",
    "generation_run_execute",
    "generation_runs_recent",
]


logger = logging.getLogger(__name__)


DEFAULT_CONCURRENCY = 4  # settings.ARENA_GENERATE_CONCURRENCY when unset


RETRIES = 3  # whole-call retries after the first attempt, for transient failures only


RETRY_BASE = 2.0  # seconds before the first retry, doubled for each next one


RETRY_CAP = 60.0  # seconds; no retry waits longer (before jitter)


GIVE_UP_AFTER = 3  # pairs of one endpoint in a row that failed every retry


MAX_FAILURES_LISTED = 10  # in the run's message


RECENT = timedelta(hours=1)  # finished runs stay on the page this long


STALE = timedelta(days=1)  # a run still "running" after this long is presumed dead


OnProgress = Callable[[int, int], None]  # (done, failed) so far


class GenerationError(ArenaError):
    pass


@dataclass(frozen=True)
class GenerationResult:
    total: int  # pairs missing when the generation started
    stored: int  # answers this generation stored
    present: int  # pairs someone else filled meanwhile (a concurrent run)
    failures: tuple[str, ...]  # "model/item: reason", in the order they happened

    @property
    def done(self) -> int:
        return self.stored + self.present

    @property
    def failed(self) -> int:
        return len(self.failures)

    def summary(self) -> str:
        if not self.total:
            return "Nothing was missing."
        text = f"Stored {self.stored} answer{'s' * (self.stored != 1)}"
        if self.present:
            text += f" ({self.present} filled meanwhile by another run)"
        return text + f", {self.failed} failed."

    def report(self) -> str:
        """The summary, then up to MAX_FAILURES_LISTED failures, one a line."""
        lines = [self.summary(), *self.failures[:MAX_FAILURES_LISTED]]
        if self.failed > MAX_FAILURES_LISTED:
            lines.append(f"... and {self.failed - MAX_FAILURES_LISTED} more")
        return "\n".join(lines)


def _generating(contestants: Iterable[Contestant]) -> list[Contestant]:
    """The contestants, once each, checked to be able to generate."""
    unique = list({c.pk: c for c in contestants}.values())
    if not unique:
        raise GenerationError("Choose at least one model to generate answers with.")
    recorded = [c.name for c in unique if c.kind == Contestant.Kind.RECORDED]
    if recorded:
        raise GenerationError(
            f"{', '.join(recorded)} only replay{'s' * (len(recorded) == 1)} recorded answers "
            "and cannot generate new ones."
        )
    return unique


def answers_missing(
    *, prompt_set: PromptSet, contestants: Iterable[Contestant]
) -> list[tuple[int, int]]:
    """``(item_id, contestant_id)`` of every pair without a stored answer, by item."""
    contestant_ids = [c.pk for c in contestants]
    item_ids = prompt_set.items.order_by("id").values_list("id", flat=True)
    have = set(
        Answer.objects.filter(
            item__prompt_set=prompt_set, contestant_id__in=contestant_ids
        ).values_list("item_id", "contestant_id")
    )
    return [(i, c) for i in item_ids for c in contestant_ids if (i, c) not in have]


def generation_runs_recent() -> list[Run]:
    """Generation runs for a page: those under way, and those finished within the hour."""
    now = timezone.now()
    under_way = Q(status__in=[Run.Status.QUEUED, Run.Status.RUNNING], created_at__gte=now - STALE)
    return list(
        Run.objects.filter(kind=Run.Kind.GENERATE)
        .filter(under_way | Q(finished_at__gte=now - RECENT))
        .order_by("-created_at")[:10]
    )


def generation_run_create(
    *, prompt_set: PromptSet, contestants: Iterable[Contestant], started_by=None
) -> Run | None:
    """A queued run for the set's missing answers, or None when nothing is missing."""
    contestants = _generating(contestants)
    missing = answers_missing(prompt_set=prompt_set, contestants=contestants)
    if not missing:
        return None
    names = [c.name for c in contestants]
    return Run.objects.create(
        kind=Run.Kind.GENERATE,
        total=len(missing),
        started_by=started_by,
        params={
            "prompt_set": prompt_set.pk,
            "prompt_set_name": prompt_set.name,
            "contestants": [c.pk for c in contestants],
            "models": names,
        },
        message=f"{len(missing)} missing answers of {prompt_set.name} from {', '.join(names)}.",
    )


def generation_run_execute(
    *, run_id: int, on_progress: OnProgress | None = None
) -> GenerationResult | None:
    """Claim a queued generation run and fill it; None when it is gone or already claimed."""
    run = Run.objects.filter(pk=run_id, kind=Run.Kind.GENERATE).first()
    if run is None:
        logger.warning("Generation run %s does not exist; nothing to do.", run_id)
        return None
    claimed = Run.objects.filter(pk=run_id, status=Run.Status.QUEUED).update(
        status=Run.Status.RUNNING
    )
    if not claimed:
        logger.info("Generation run %s is %s, not queued: not run again.", run_id, run.status)
        return None
    run.status = Run.Status.RUNNING
    prompt_set = PromptSet.objects.filter(pk=run.params.get("prompt_set")).first()
    contestants = Contestant.objects.filter(pk__in=run.params.get("contestants", []))
    if prompt_set is None:
        run_finish(run_id, Run.Status.FAILED, "The prompt set no longer exists.")
        return None
    try:
        return answers_generate(
            prompt_set=prompt_set,
            contestants=list(contestants.order_by("name")),
            run=run,
            on_progress=on_progress,
        )
    except GenerationError as exc:
        run_finish(run_id, Run.Status.FAILED, str(exc))
        return None


def run_finish(run_id: int, status: str, message: str, *, only_if: str = Run.Status.RUNNING):
    return Run.objects.filter(pk=run_id, status=only_if).update(
        status=status, message=message, finished_at=timezone.now()
    )


def answers_generate(
    *,
    prompt_set: PromptSet,
    contestants: Iterable[Contestant],
    run: Run | None = None,
    on_progress: OnProgress | None = None,
) -> GenerationResult:
    """Fill every missing answer of ``prompt_set`` for ``contestants``.

    With a ``run``, it is marked running with ``total`` the pairs missing now, its ``done`` and
    ``failed`` move as pairs finish, and it ends done with a report in ``message`` (or failed,
    when the generation stops on an error or an interrupt). ``on_progress(done, failed)`` is
    called in the calling thread after each pair.

    Raises GenerationError when a contestant cannot generate (recorded) or there is none.
    """
    contestants = _generating(contestants)
    missing = answers_missing(prompt_set=prompt_set, contestants=contestants)
    if run is not None:
        Run.objects.filter(pk=run.pk, status__in=[Run.Status.QUEUED, Run.Status.RUNNING]).update(
            status=Run.Status.RUNNING, total=len(missing), done=0, failed=0
        )
    filler = _Filler(
        run_id=None if run is None else run.pk,
        on_progress=on_progress,
        timeouts=Timeouts.from_settings(),
        limit=max(1, int(getattr(settings, "ARENA_GENERATE_CONCURRENCY", DEFAULT_CONCURRENCY))),
    )
    try:
        if missing:
            # A new loop in its own thread; database calls come back to this thread.
            async_to_sync(filler.fill, force_new_loop=True)(_pairs(missing, contestants))
    except BaseException as exc:
        filler.cancel()  # on Ctrl-C the loop is still running: stop its calls
        if run is not None:
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc) or repr(exc)
            message = f"Stopped ({reason}). {filler.result(total=len(missing)).summary()}"
            run_finish(run.pk, Run.Status.FAILED, message)
        raise
    result = filler.result(total=len(missing))
    if run is not None:
        run_finish(run.pk, Run.Status.DONE, result.report())
    return result


@dataclass(frozen=True)
class _Pair:
    item_id: int
    contestant_id: int
    label: str  # "model/item" for failure lines
    endpoint: Endpoint
    messages: list[dict]


def _pairs(missing: list[tuple[int, int]], contestants: list[Contestant]) -> list[_Pair]:
    items = PromptItem.objects.filter(pk__in={i for i, _ in missing}).only("external_id", "text")
    items = {item.pk: item for item in items}
    by_id = {c.pk: c for c in contestants}
    endpoints = {c.pk: Endpoint.from_contestant(c) for c in contestants}
    return [
        _Pair(
            item_id=i,
            contestant_id=c,
            label=f"{by_id[c].name}/{items[i].external_id or f'#{i}'}",
            endpoint=endpoints[c],
            messages=[{"role": "user", "content": items[i].text}],
        )
        for i, c in missing
        if i in items  # an item deleted since the list was made
    ]


def _endpoint_key(endpoint: Endpoint) -> tuple[str, str, str]:
    return (endpoint.kind, endpoint.base_url.rstrip("/"), endpoint.model_id)


def _fresh_connection() -> None:
    """After a long await the connection may have gone stale; replace it before writing."""
    if not connection.in_atomic_block:
        close_old_connections()


class _Gate:
    """One endpoint: its concurrency slots and a count of pairs failed in a row."""

    def __init__(self, endpoint: Endpoint, limit: int):
        self.slots = EndpointSlots(endpoint, limit)
        self.failing = 0


class _Filler:
    """One generation's calls and counts. Counts change only in the calling thread."""

    def __init__(self, *, run_id, on_progress, timeouts: Timeouts, limit: int):
        self.run_id = run_id
        self.on_progress = on_progress
        self.timeouts = timeouts
        self.limit = limit
        self.stored = 0
        self.present = 0
        self.failures: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None

    def result(self, *, total: int) -> GenerationResult:
        return GenerationResult(
            total=total,
            stored=self.stored,
            present=self.present,
            failures=tuple(self.failures),
        )

    def cancel(self) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)

    async def fill(self, pairs: list[_Pair]) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        gates: dict[tuple[str, str, str], _Gate] = {}
        try:
            async with asyncio.TaskGroup() as group:
                for pair in pairs:
                    key = _endpoint_key(pair.endpoint)
                    if key not in gates:
                        gates[key] = _Gate(pair.endpoint, self.limit)
                    gate = gates[key]
                    group.create_task(self._fill_one(pair, gate))
        except ExceptionGroup as errors:
            raise errors.exceptions[0] from None
        finally:
            for gate in gates.values():
                await gate.slots.aclose()
            await aclose_client()

    async def _fill_one(self, pair: _Pair, gate: _Gate) -> None:
        # The slot is held through the backoff: a struggling endpoint gets no new calls
        # meanwhile, and a pair's retries go before pairs not yet tried.
        async with gate.slots.hold():
            if gate.failing >= GIVE_UP_AFTER:
                reason = f"not tried: its endpoint failed {gate.failing} times in a row"
                return await self._failed(pair, reason)
            if await self._present(pair):
                return
            outcome = await self._call(pair, gate)
            if isinstance(outcome, str):
                return await self._failed(pair, outcome)
            if not outcome.text.strip():
                return await self._failed(pair, "answered with no text")
            await self._store(pair, outcome)

    async def _call(self, pair: _Pair, gate: _Gate) -> Finished | str:
        """The answer, or why there is none, after retrying transient failures."""
        attempt = 0
        while True:
            try:
                finished = await complete_chat(pair.endpoint, pair.messages, timeouts=self.timeouts)
            except ProviderError as exc:
                error = exc
            else:
                gate.failing = 0
                return finished
            tries = f" (after {attempt + 1} attempts)" if attempt else ""
            if not error.retryable:
                return f"{error}{tries}"
            if attempt == RETRIES:
                gate.failing += 1
                return f"{error}{tries}"
            delay = backoff(attempt, RETRY_BASE, RETRY_CAP)
            attempt += 1
            logger.info("Retrying %s in %.1fs (retry %d): %s", pair.label, delay, attempt, error)
            await asyncio.sleep(delay)

    # Database work, run in the calling thread (thread-sensitive).

    @sync_to_async
    def _present(self, pair: _Pair) -> bool:
        _fresh_connection()
        answers = Answer.objects.filter(item_id=pair.item_id, contestant_id=pair.contestant_id)
        if not answers.exists():
            return False
        self.present += 1
        self._progress(done=1)
        return True

    @sync_to_async
    def _store(self, pair: _Pair, finished: Finished) -> None:
        _fresh_connection()
        try:
            _, created = Answer.objects.get_or_create(
                item_id=pair.item_id,
                contestant_id=pair.contestant_id,
                defaults={
                    "text": finished.text,
                    "tokens_out": finished.tokens_out,
                    "total_ms": finished.total_ms,
                },
            )
        except IntegrityError:  # not a duplicate (get_or_create handles those): a row is gone
            self._fail(pair, "not stored: its prompt or model was deleted meanwhile")
            return
        if created:
            self.stored += 1
        else:
            self.present += 1
        self._progress(done=1)

    @sync_to_async
    def _failed(self, pair: _Pair, reason: str) -> None:
        self._fail(pair, reason)

    def _fail(self, pair: _Pair, reason: str) -> None:
        logger.warning("No answer for %s: %s", pair.label, reason)
        self.failures.append(f"{pair.label}: {reason}")
        _fresh_connection()
        self._progress(failed=1)

    def _progress(self, *, done: int = 0, failed: int = 0) -> None:
        if self.run_id is not None:
            Run.objects.filter(pk=self.run_id, status=Run.Status.RUNNING).update(
                done=F("done") + done, failed=F("failed") + failed
            )
        if self.on_progress is not None:
            self.on_progress(self.stored + self.present, len(self.failures))
