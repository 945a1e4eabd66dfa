"""Judging: ask a judge about pairs of answers, in both orders, and store one verdict per order.

A *pair* is one battle. Each pair is judged twice: order ``ab`` shows the battle's side A first,
order ``ba`` shows side B first. The prompt comes from :func:`arena.judge.judge_prompt` (the
judge's own template or the default, its verdict format) and the verdict from
:func:`arena.judge.parse_verdict`; :func:`arena.judge.judge_verdicts` combines the two orders.

What the judge sees
    Eval-set battles: the prompt item's text and the two stored answers. Live and imported
    battles: the non-superseded turns. One round: its prompt and each side's answer. Several
    rounds: the prompt lists the user's messages as ``[Round 1] ...``, ``[Round 2] ...`` and each
    answer lists that side's replies the same way, so the judge gives one verdict on the whole
    conversation. Battles without both texts are not judgeable (counted as failed in a run).

Idempotency
    One Judgement per (judge, battle, order), enforced by the unique constraint. An order that
    already has a row is skipped, parsed or not, so running again stores nothing twice and calls
    nobody. The one exception: a row that records an upstream error from *another* run (or none)
    is attempted again and replaced when the new call answers. The row is written after the
    call with ``get_or_create``, so two workers racing on one pair may both call the judge but
    only one verdict is kept. No transaction is open during a network call.

Failures
    A transient upstream error (``ProviderError.retryable``, after the provider module's own
    quick retries) leaves that order unstored and the pair pending; the Celery task retries with
    exponential backoff, full jitter and a cap (:func:`retry_delay`), and the command does the
    same in-process. On the last attempt, or at once for an error that retrying cannot fix
    (401, 404, misconfiguration), the order is stored with an empty verdict and
    ``parse_error = "upstream error: <reason>"``, so failures are counted and shown. An output
    without a verdict line is stored with its ``parse_error``; nothing is ever guessed.

Concurrency
    At most ``ARENA_JUDGE_CONCURRENCY`` (default 4) calls are in flight per endpoint (base URL
    and model id) within one run. With ``REDIS_URL`` set, every call also holds a lease in a
    Redis semaphore per endpoint, so the limit holds across runs, tasks and worker processes;
    a lease expires after the total timeout plus a margin if its holder dies.

Runs
    A ``Run(kind="judge")`` has ``total`` pairs; ``done`` counts pairs whose orders are all
    stored (parse failures included), ``failed`` pairs that ended with an upstream error or were
    not judgeable. Counters move with conditional ``F()`` updates while the run is running.
"""

import asyncio
import logging
import random
from dataclasses import dataclass

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from arena.core.errors import ArenaError
from arena.core.retry import backoff
from arena.judging.prompts import judge_prompt
from arena.judging.verdicts import VerdictParseError, parse_verdict
from arena.models import Answer, Battle, BattleCategory, Judge, Judgement, PromptSet, Run
from arena.providers import Endpoint, ProviderError, Timeouts, aclose_client, complete_chat
from arena.providers.slots import EndpointSlots

logger = logging.getLogger(__name__)


UPSTREAM_ERROR = "upstream error: "


ORDERS = (Judgement.Order.AB, Judgement.Order.BA)


DEFAULT_CONCURRENCY = 4


MAX_RETRIES = 4  # attempts after the first, for pairs left pending by a transient error


RETRY_BACKOFF = 2.0  # seconds, doubled per retry, full jitter (settings.ARENA_JUDGE_RETRY_BACKOFF)


RETRY_BACKOFF_MAX = 120.0  # cap on one retry delay, seconds


CHUNK = 5000  # battle ids per IN (...) query; SQLite allows 32766 bound variables


class JudgingError(ArenaError):
    """A judging request that cannot be served; the message is fit for the user."""


class NotJudgeable(JudgingError):
    pass


def _chunks(ids: list[int]):
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


@dataclass(frozen=True)
class PairTexts:
    prompt: str
    a: str
    b: str


def battle_texts(battle: Battle) -> PairTexts:
    """The prompt and both sides' answers of a battle, as the judge is shown them."""
    if battle.answer_a_id and battle.answer_b_id:
        prompt = battle.prompt_item.text if battle.prompt_item_id else ""
        return PairTexts(prompt, battle.answer_a.text, battle.answer_b.text)
    complete = []
    for _, _, a, b in battle.rounds():
        if a is None or b is None or a.error or b.error or not a.text or not b.text:
            break  # judge the rounds both sides finished, up to the first that is not
        complete.append((a, b))
    if not complete:
        raise NotJudgeable(f"Battle {battle.pk} has no pair of finished answers to judge.")
    if len(complete) == 1:
        a, b = complete[0]
        return PairTexts(a.prompt, a.text, b.text)

    def numbered(texts):
        return "\n\n".join(f"[Round {i}] {text}" for i, text in enumerate(texts, 1))

    return PairTexts(
        numbered(a.prompt for a, _ in complete),
        numbered(a.text for a, _ in complete),
        numbered(b.text for _, b in complete),
    )


def judge_pairs_for_set(*, prompt_set: PromptSet, rng=None) -> list[int]:
    """Battle ids covering every prompt and unordered pair of stored answers in the set.

    A pair that already has an eval-set battle reuses it (a voted one first, then the oldest),
    so judgements land on the battles people voted on. Other pairs get a new battle with no
    user (status ready, sides drawn at random): nobody can vote on it, matchmaking ignores it.
    For a pair voted by several people only one battle is judged: match judgements to votes by
    (prompt item, unordered pair of contestants).
    """
    rng = rng or random.SystemRandom()
    answers: dict[int, dict[int, int]] = {}
    rows = Answer.objects.filter(item__prompt_set=prompt_set).order_by("item_id", "contestant_id")
    for answer_id, item_id, contestant_id in rows.values_list("id", "item_id", "contestant_id"):
        answers.setdefault(item_id, {})[contestant_id] = answer_id
    existing: dict[tuple[int, int, int], int] = {}
    battles = (
        Battle.objects.filter(
            mode=Battle.Mode.EVALSET,
            prompt_item__prompt_set=prompt_set,
            answer_a__isnull=False,
            answer_b__isnull=False,
        )
        .annotate(voted=Count("vote"))
        .order_by("-voted", "id")
    )
    for battle_id, item_id, x, y in battles.values_list(
        "id", "prompt_item_id", "contestant_a_id", "contestant_b_id"
    ):
        existing.setdefault((item_id, min(x, y), max(x, y)), battle_id)
    items = dict(prompt_set.items.values_list("id", "category_id"))
    keys, new = [], []
    for item_id, by_contestant in answers.items():
        ids = sorted(by_contestant)
        for i, x in enumerate(ids):
            for y in ids[i + 1 :]:
                key = (item_id, x, y)
                keys.append(key)
                if key in existing:
                    continue
                a, b = (x, y) if rng.random() < 0.5 else (y, x)
                new.append(Battle.evalset_pair(item_id=item_id, answers=by_contestant, a=a, b=b))
    with transaction.atomic():
        created = Battle.objects.bulk_create(new)
        BattleCategory.objects.bulk_create(
            BattleCategory(
                battle=battle,
                category_id=items[battle.prompt_item_id],
                assigner=BattleCategory.Assigner.RULE,
            )
            for battle in created
            if items.get(battle.prompt_item_id)
        )
    for battle in created:
        x, y = sorted((battle.contestant_a_id, battle.contestant_b_id))
        existing[(battle.prompt_item_id, x, y)] = battle.pk
    return sorted(existing[key] for key in keys)


def _voted_pairs(prompt_set_ids) -> dict[tuple[int, int, int, int], int]:
    """(set id, item id, contestant, contestant) -> the first battle of that pair with a counted
    vote, for the eval-set battles of the given sets."""
    rows = (
        Battle.objects.filter(
            mode=Battle.Mode.EVALSET,
            prompt_item__prompt_set_id__in=list(prompt_set_ids),
            answer_a__isnull=False,
            answer_b__isnull=False,
            vote__isnull=False,
            vote__void_reason="",
        )
        .order_by("id")
        .values_list(
            "id", "prompt_item__prompt_set_id", "prompt_item_id", "contestant_a_id",
            "contestant_b_id",
        )
    )  # fmt: skip
    pairs: dict[tuple[int, int, int, int], int] = {}
    for battle_id, set_id, item_id, x, y in rows:
        pairs.setdefault((set_id, item_id, min(x, y), max(x, y)), battle_id)
    return pairs


def judge_pairs_voted_in_set(*, prompt_set: PromptSet) -> list[int]:
    """One battle per pair of the set that people voted on: its first voted battle (where the
    demo keeps LLMFAO's verdicts, so judgements of both land on the same battles). Creates
    nothing; matches judgements to every vote of the pair by (prompt item, contestants)."""
    return sorted(_voted_pairs([prompt_set.pk]).values())


def voted_pair_counts() -> dict[int, int]:
    """Per prompt set id, how many of its pairs people voted on."""
    counts: dict[int, int] = {}
    for set_id, *_ in _voted_pairs(PromptSet.objects.values_list("id", flat=True)):
        counts[set_id] = counts.get(set_id, 0) + 1
    return counts


def judge_pairs_voted() -> list[int]:
    """Ids of battles with a counted human vote and answers to show."""
    has_texts = Q(answer_a__isnull=False, answer_b__isnull=False) | Q(turns__isnull=False)
    rows = Battle.objects.filter(has_texts, vote__isnull=False, vote__void_reason="")
    return sorted(set(rows.values_list("id", flat=True)))


def judge_pairs_from_ids(battle_ids) -> list[int]:
    """The given battle ids, checked to exist."""
    wanted = sorted(set(int(i) for i in battle_ids))
    found = set(Battle.objects.filter(pk__in=wanted).values_list("id", flat=True))
    missing = [i for i in wanted if i not in found]
    if missing:
        raise JudgingError(f"No battle with id {', '.join(map(str, missing[:10]))}.")
    return wanted


def _pending_first(judge: Judge, battle_ids: list[int], limit: int | None) -> list[int]:
    """The first ``limit`` pairs that still need this judge (all pairs without a limit)."""
    if limit is None:
        return battle_ids
    judged = set()
    for chunk in _chunks(battle_ids):
        rows = (
            Judgement.objects.filter(judge=judge, battle_id__in=chunk)
            .exclude(parse_error__startswith=UPSTREAM_ERROR)
            .values("battle_id")
            .annotate(n=Count("id"))
            .values_list("battle_id", "n")
        )
        judged.update(battle_id for battle_id, n in rows if n >= len(ORDERS))
    return [i for i in battle_ids if i not in judged][:limit]


def judge_run_create(
    *, judge: Judge, battle_ids: list[int], source: str, user=None, limit: int | None = None
) -> Run:
    """A queued run of ``judge`` over the pairs (at most ``limit`` that still need judging)."""
    if judge.contestant_id is None:
        raise JudgingError(f"Judge {judge.name!r} has no contestant to call; it cannot judge.")
    if limit is not None and limit < 1:
        raise JudgingError("The limit must be a positive number of pairs.")
    battle_ids = _pending_first(judge, list(battle_ids), limit)
    if not battle_ids:
        raise JudgingError("There is nothing to judge: no pair was selected.")
    return Run.objects.create(
        kind=Run.Kind.JUDGE,
        total=len(battle_ids),
        started_by=user if getattr(user, "pk", None) else None,
        params={
            "judge_id": judge.pk,
            "judge": judge.name,
            "source": source,
            "limit": limit,
            "battle_ids": battle_ids,
        },
    )


@dataclass(frozen=True)
class RunAttempt:
    """What one attempt at a run left: pairs pending on a transient error, and that error."""

    pending: int
    error: ProviderError | None = None


@dataclass(frozen=True)
class _Spec:
    """A judge as plain data, for the event loop (no ORM there)."""

    judge_id: int
    endpoint: Endpoint
    template: str
    verdict_format: str


def _spec(judge: Judge) -> _Spec:
    if judge.contestant is None:
        raise JudgingError(f"Judge {judge.name!r} has no contestant to call; it cannot judge.")
    return _Spec(
        judge.pk,
        Endpoint.from_contestant(judge.contestant),
        judge.template,
        str(judge.verdict_format),
    )


def _orders_to_do(judge_id: int, battle_ids: list[int], run_id: int | None):
    """Per battle: the orders to attempt, and whether a pair is already done or failed here."""
    stored: dict[int, dict[str, tuple[str, int | None]]] = {}
    for chunk in _chunks(battle_ids):
        rows = Judgement.objects.filter(judge_id=judge_id, battle_id__in=chunk)
        for battle_id, order, parse_error, row_run in rows.values_list(
            "battle_id", "order", "parse_error", "run_id"
        ):
            stored.setdefault(battle_id, {})[order] = (parse_error, row_run)
    todo: dict[int, list[str]] = {}
    done = failed = 0
    for battle_id in battle_ids:
        have = stored.get(battle_id, {})
        orders = []
        for order in ORDERS:
            row = have.get(order)
            if row is None:
                orders.append(order)
            elif row[0].startswith(UPSTREAM_ERROR) and (run_id is None or row[1] != run_id):
                orders.append(order)  # an old failure: try again
        if orders:
            todo[battle_id] = orders
        elif any(have[o][0].startswith(UPSTREAM_ERROR) for o in ORDERS):
            failed += 1
        else:
            done += 1
    return todo, done, failed


def judge_battle(
    *, judge: Judge, battle: Battle, run: Run | None = None, final_attempt: bool = True
) -> list[Judgement]:
    """Judge one pair in both orders; returns its judgements (AB first).

    Orders already stored are skipped. Raises ``ProviderError`` (retryable) when an order hit a
    transient upstream error and ``final_attempt`` is False (the other order is kept); with
    ``final_attempt`` the failure is stored instead. Raises ``NotJudgeable`` without texts.
    """
    spec = _spec(judge)
    run_id = run.pk if run is not None else None
    todo, _, _ = _orders_to_do(spec.judge_id, [battle.pk], run_id)
    if todo:
        texts = battle_texts(battle)
        outcomes = _run_async(
            _judge_pairs, spec, todo, run_id, final_attempt, lambda _: texts, None
        )
        if outcomes[0].state == "pending":
            raise outcomes[0].error
    return list(Judgement.objects.filter(judge=judge, battle=battle).order_by("order"))


def judge_run_execute(*, run: Run, final_attempt: bool = True, on_pair=None) -> RunAttempt:
    """One attempt at a run: judge every pair that still needs it; mark the run finished unless
    pairs are left pending by a transient error and this is not the final attempt.

    ``on_pair(run)`` is called after each pair (the command draws its progress bar with it).
    """
    started = Run.objects.filter(
        pk=run.pk, status__in=[Run.Status.QUEUED, Run.Status.RUNNING]
    ).update(status=Run.Status.RUNNING)
    if not started:
        logger.info("Judge run %s is already finished; nothing to do.", run.pk)
        return RunAttempt(0)
    try:
        judge = Judge.objects.select_related("contestant").get(pk=run.params["judge_id"])
        spec = _spec(judge)
    except (Judge.DoesNotExist, KeyError, JudgingError) as exc:
        message = str(exc) if isinstance(exc, JudgingError) else "Its judge no longer exists."
        _run_finish(run, Run.Status.FAILED, message)
        return RunAttempt(0)
    battle_ids = [int(i) for i in run.params.get("battle_ids", [])]
    todo, done, failed = _orders_to_do(spec.judge_id, battle_ids, run.pk)
    Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
        done=done, failed=failed, message=""
    )

    def on_outcome(outcome: "_PairOutcome") -> None:
        field = {"done": "done", "failed": "failed"}.get(outcome.state)
        if field:
            Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(**{field: F(field) + 1})
        if on_pair is not None:
            run.refresh_from_db(fields=["done", "failed", "status"])
            on_pair(run)

    try:
        outcomes = _run_async(
            _judge_pairs, spec, todo, run.pk, final_attempt, _texts_by_id, on_outcome
        )
    except BaseException as exc:
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        _run_finish(run, Run.Status.FAILED, f"Stopped by an unexpected error: {exc!r}"[:500])
        raise
    pending = [o for o in outcomes if o.state == "pending"]
    if pending and not final_attempt:
        message = (
            f"{len(pending)} pairs hit a transient upstream error ({pending[-1].error}); "
            "they will be tried again."
        )
        Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(message=message)
        return RunAttempt(len(pending), pending[-1].error)
    run.refresh_from_db(fields=["done", "failed", "total"])
    status = Run.Status.FAILED if run.total and run.failed == run.total else Run.Status.DONE
    message = f"{run.done} pairs judged, {run.failed} failed."
    _run_finish(run, status, message)
    return RunAttempt(0)


def _run_finish(run: Run, status: str, message: str) -> None:
    Run.objects.filter(pk=run.pk, status__in=[Run.Status.QUEUED, Run.Status.RUNNING]).update(
        status=status, message=message, finished_at=timezone.now()
    )
    run.refresh_from_db()


def retry_delay(retries: int) -> float:
    """Seconds before retry number ``retries + 1`` of a judge task."""
    factor = float(getattr(settings, "ARENA_JUDGE_RETRY_BACKOFF", RETRY_BACKOFF))
    return backoff(retries, factor, RETRY_BACKOFF_MAX)


def judge_concurrency() -> int:
    return max(1, int(getattr(settings, "ARENA_JUDGE_CONCURRENCY", DEFAULT_CONCURRENCY)))


def _texts_by_id(battle_id: int) -> PairTexts:
    battle = (
        Battle.objects.select_related("prompt_item", "answer_a", "answer_b")
        .filter(pk=battle_id)
        .first()
    )
    if battle is None:
        raise NotJudgeable(f"Battle {battle_id} no longer exists.")
    return battle_texts(battle)


@dataclass(frozen=True)
class _PairOutcome:
    battle_id: int
    state: str  # "done", "failed" (an order stored as an upstream error; or no texts), "pending"
    error: ProviderError | None = None


def _run_async(fn, *args):
    """Run a coroutine function on a fresh event loop; ORM calls inside it (through
    ``sync_to_async``) run back in this thread, on this thread's connection."""
    return async_to_sync(fn, force_new_loop=True)(*args)


async def _judge_pairs(spec: _Spec, todo, run_id, final_attempt, load_texts, on_outcome):
    battle_ids = iter(list(todo))
    outcomes: list[_PairOutcome] = []
    limit = judge_concurrency()
    slots = EndpointSlots(spec.endpoint, limit)

    async def worker():
        for battle_id in battle_ids:  # one shared iterator: each pair goes to one worker
            outcome = await _judge_pair(
                spec, battle_id, todo[battle_id], run_id, final_attempt, load_texts, slots
            )
            outcomes.append(outcome)
            if on_outcome is not None:
                await sync_to_async(on_outcome)(outcome)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(limit, len(todo))):
                group.create_task(worker())
    finally:
        await slots.aclose()
        await aclose_client()
    return outcomes


async def _judge_pair(spec, battle_id, orders, run_id, final_attempt, load_texts, slots):
    try:
        texts = await sync_to_async(load_texts)(battle_id)
    except NotJudgeable as exc:
        logger.warning("Not judging battle %s: %s", battle_id, exc)
        return _PairOutcome(battle_id, "failed")
    results = await asyncio.gather(
        *(_judge_order(spec, texts, order, slots) for order in orders), return_exceptions=True
    )
    pending: ProviderError | None = None
    failed = False
    for order, result in zip(orders, results, strict=True):
        if isinstance(result, ProviderError):
            if result.retryable and not final_attempt:
                pending = result
                continue
            failed = True
            result = {"parse_error": (UPSTREAM_ERROR + str(result))[:300]}
        elif isinstance(result, BaseException):
            raise result
        await sync_to_async(_store)(spec.judge_id, battle_id, order, run_id, result)
    if pending is not None:
        return _PairOutcome(battle_id, "pending", pending)
    stored = await sync_to_async(_all_orders_stored)(spec.judge_id, battle_id)
    return _PairOutcome(battle_id, "failed" if failed or stored == "failed" else "done")


async def _judge_order(spec: _Spec, texts: PairTexts, order: str, slots) -> dict:
    first, second = (texts.a, texts.b) if order == Judgement.Order.AB else (texts.b, texts.a)
    prompt = judge_prompt(
        prompt=texts.prompt,
        first=first,
        second=second,
        verdict_format=spec.verdict_format,
        template=spec.template,
    )
    messages = [{"role": "user", "content": prompt.text}]
    async with slots.hold():
        finished = await complete_chat(spec.endpoint, messages, timeouts=Timeouts.from_settings())
    fields = {
        "raw_output": finished.text,
        "latency_ms": finished.total_ms,
        "tokens_in": finished.tokens_in,
        "tokens_out": finished.tokens_out,
        "cost": finished.cost,
        "verdict": "",
        "parse_error": "",
    }
    try:
        fields["verdict"] = parse_verdict(finished.text, spec.verdict_format)
    except VerdictParseError as exc:
        fields["parse_error"] = str(exc)[:300]
    return fields


def _store(judge_id: int, battle_id: int, order: str, run_id: int | None, fields: dict) -> None:
    """Store one order's judgement; an existing row is kept unless it records an upstream
    error and this one does not."""
    fields = {"raw_output": "", "verdict": "", "latency_ms": None, **fields, "run_id": run_id}
    row, created = Judgement.objects.get_or_create(
        judge_id=judge_id, battle_id=battle_id, order=order, defaults=fields
    )
    if not created and not fields["parse_error"].startswith(UPSTREAM_ERROR):
        Judgement.objects.filter(pk=row.pk, parse_error__startswith=UPSTREAM_ERROR).update(**fields)


def _all_orders_stored(judge_id: int, battle_id: int) -> str:
    errors = list(
        Judgement.objects.filter(judge_id=judge_id, battle_id=battle_id).values_list(
            "parse_error", flat=True
        )
    )
    return "failed" if any(e.startswith(UPSTREAM_ERROR) for e in errors) else "done"
