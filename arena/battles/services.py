"""Workflows across models: keyword-only functions named <entity>_<action>.

No network call happens inside a transaction here; callers stream first, then record.
"""

import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from arena.battles import limits
from arena.battles.matchmaking import NotEnoughContestants, Pairing, Roster
from arena.battles.protocol import storable_text
from arena.battles.style import text_style
from arena.core import hooks
from arena.core.errors import ArenaError
from arena.models import Battle, BattleCategory, Contestant, Turn, Vote
from arena.providers.recorded import recorded_answer_for

log = logging.getLogger(__name__)


class VoteRejected(ArenaError):
    pass


class AlreadyVoted(VoteRejected):
    def __init__(self):
        super().__init__("You have already voted on this battle.")


def vote_record(*, battle_id: int, user, outcome: str, reason_tags=None) -> Vote:
    """Record the one vote a battle can take, atomically.

    Raises VoteRejected (or AlreadyVoted) with a message for the user when the vote cannot be
    taken, and LimitExceeded past ARENA_VOTES_PER_DAY. The battle moves READY -> VOTED by a
    conditional UPDATE whose row count is checked, behind the row lock; the unique constraint
    on Vote.battle is the last line.
    """
    if outcome not in Vote.Outcome.values:
        raise VoteRejected(f"Unknown outcome {outcome!r}; expected one of {Vote.Outcome.values}.")
    with transaction.atomic():
        try:
            battle = Battle.objects.select_for_update().get(pk=battle_id)
        except Battle.DoesNotExist:
            raise VoteRejected("This battle does not exist.") from None
        if battle.user_id is None or battle.user_id != getattr(user, "pk", None):
            raise VoteRejected("Only the person who started this battle can vote on it.")
        if battle.status == Battle.Status.VOTED or Vote.objects.filter(battle=battle).exists():
            raise AlreadyVoted()
        if battle.status != Battle.Status.READY:
            raise VoteRejected("Both answers must finish without error before a vote.")
        limits.user_lock(user=user)
        limits.vote_check(user=user)
        claimed = Battle.objects.filter(pk=battle.pk, status=Battle.Status.READY).update(
            status=Battle.Status.VOTED
        )
        if claimed != 1:  # changed under us: a follow-up or regenerate took it
            raise VoteRejected("Both answers must finish without error before a vote.")
        now = timezone.now()
        seconds = (now - battle.ready_at).total_seconds() if battle.ready_at else None
        try:
            with transaction.atomic():
                vote = Vote.objects.create(
                    battle=battle,
                    voter=user,
                    outcome=outcome,
                    seconds_to_vote=seconds,
                    reason_tags=list(reason_tags or []),
                    void_reason=battle_identity_leak(battle=battle),
                )
        except IntegrityError:
            raise AlreadyVoted() from None
        battle.status = Battle.Status.VOTED
        if vote.counted:
            hooks.counted_vote(battle.pk)
    return vote


@dataclass(frozen=True)
class BattleDraw:
    """A new battle's pair and category, chosen from a roster; nothing stored yet."""

    pairing: Pairing
    category_id: int | None


def battle_draw(
    *, roster: Roster, category_slug: str | None = None, replayers=(), rng=None
) -> BattleDraw:
    """Choose a new battle's pair from ``roster`` (no database access).

    ``replayers`` are the recorded contestants that have an answer to the prompt
    (``recorded_answer_for``); other recorded contestants are not drawn. Raises ArenaError for
    an unknown category or when no pair can be drawn.
    """
    category_id = None
    if category_slug:
        category_id = roster.categories.get(category_slug)
        if category_id is None:
            raise ArenaError(f"Unknown category {category_slug!r}.")
    try:
        pairing = roster.pair(replayers, rng, category_id)
    except NotEnoughContestants as exc:
        raise ArenaError(str(exc)) from None
    return BattleDraw(pairing=pairing, category_id=category_id)


def _live_battle(user, draw: BattleDraw) -> Battle:
    return Battle(
        contestant_a_id=draw.pairing.a.id,
        contestant_b_id=draw.pairing.b.id,
        user=user,
        mode=Battle.Mode.LIVE,
        status=Battle.Status.STREAMING,
        pair_probability=draw.pairing.pair_probability,
    )


def _voter_category(battle: Battle, draw: BattleDraw) -> BattleCategory:
    return BattleCategory(
        battle=battle, category_id=draw.category_id, assigner=BattleCategory.Assigner.VOTER
    )


def battle_open(*, user, draw: BattleDraw) -> Battle:
    """Store a drawn battle: the Battle row and its category link, together or not at all.
    (No per-user limits: the socket's battles are stored by ``battle_open_many``.)"""
    with transaction.atomic():
        battle = _live_battle(user, draw)
        battle.save()
        if draw.category_id is not None:
            _voter_category(battle, draw).save()
    return battle


def battle_open_many(*, openings: list[tuple]) -> list:
    """Store several drawn battles, ``[(user, draw), ...]``, in one transaction: their ids in
    order. A battle past its user's limits gets LimitExceeded in place of an id and is not
    stored. When the transaction fails (one bad row fails them all), each is stored on its
    own, and the failed ones get their exception in place of an id; no battle is ever half
    stored."""
    try:
        with transaction.atomic():
            results: list = _over_limits(openings)
            kept = [o for o, result in zip(openings, results, strict=True) if not result]
            battles = Battle.objects.bulk_create([_live_battle(user, draw) for user, draw in kept])
            BattleCategory.objects.bulk_create(
                [
                    _voter_category(battle, draw)
                    for battle, (_, draw) in zip(battles, kept, strict=True)
                    if draw.category_id is not None
                ]
            )
        stored = iter(battles)
        return [result or next(stored).pk for result in results]
    except Exception:
        if len(openings) == 1:
            raise
        log.warning("storing %d battles at once failed; storing them one by one", len(openings))
    results = []
    for user, draw in openings:
        try:
            with transaction.atomic():
                result = _over_limits([(user, draw)])[0] or battle_open(user=user, draw=draw).pk
            results.append(result)
        except Exception as exc:  # handed to the one waiting for this battle
            results.append(exc)
    return results


def _over_limits(openings: list[tuple]) -> list:
    """For each opening, None or the LimitExceeded that refuses it, counting the battles of
    the same batch (users' rows locked, in id order, so concurrent batches cannot overlap)."""
    user_ids = sorted({user.pk for user, _ in openings})
    list(
        get_user_model()
        .objects.select_for_update()
        .filter(pk__in=user_ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return limits.rounds_refused([user.pk for user, _ in openings])


def battle_start(
    *, user, category_slug: str | None = None, prompt: str | None = None, rng=None
) -> Battle:
    """Draw a pair of active contestants (read now, not cached) and open a battle for ``user``.

    With ``prompt``, recorded contestants take part only when they have an answer to it, so a
    demo battle is never drawn that is bound to fail. Live battles do the same in two steps
    (``battle_draw`` from the process's cached roster, then ``battle_open``).
    """
    roster = Roster.load()
    replayers = ()
    if prompt is not None and roster.recorded_ids:
        replayers = recorded_answer_for(contestant_ids=roster.recorded_ids, prompt=prompt)
    draw = battle_draw(roster=roster, category_slug=category_slug, replayers=replayers, rng=rng)
    return battle_open(user=user, draw=draw)


def battle_history(*, battle: Battle) -> dict[str, list[dict]]:
    """Each side's own conversation so far (answers that were regenerated are left out)."""
    history: dict[str, list[dict]] = {"a": [], "b": []}
    for turn in battle.turns.current().order_by("index", "side"):
        history[turn.side] += [
            {"role": "user", "content": turn.prompt},
            {"role": "assistant", "content": turn.text},
        ]
    return history


def battle_rounds(*, battle: Battle) -> int:
    return battle.turns.current().filter(side=Turn.Side.A).count()


def turn_record(
    *,
    battle_id: int,
    index: int,
    side: str,
    attempt: int,
    prompt: str,
    text: str,
    finished=None,
    error: str = "",
) -> Turn:
    """Store one side's answer for one round, finished or failed (with its style features, so
    leaderboard refreshes never read the text)."""
    fields = {"style": text_style(text)}
    if finished is not None:
        fields |= {
            "ttft_ms": finished.ttft_ms,
            "total_ms": finished.total_ms,
            "tokens_in": finished.tokens_in,
            "tokens_out": finished.tokens_out,
            "usage_estimated": finished.usage_estimated,
            "finish_reason": finished.finish_reason,
            "cost": finished.cost,
        }
    return Turn.objects.create(
        battle_id=battle_id,
        index=index,
        side=side,
        attempt=attempt,
        prompt=storable_text(prompt),
        text=storable_text(text),  # an upstream's NUL would void the round on PostgreSQL
        error=storable_text(error),
        **fields,
    )


def battle_round_finish(*, battle_id: int) -> Battle:
    """After both sides answered: ready for a vote, or errored when a side failed."""
    with transaction.atomic():
        battle = Battle.objects.select_for_update().get(pk=battle_id)
        if battle.status != Battle.Status.STREAMING:
            return battle
        failed = battle.turns.current().exclude(error="").exists()
        if failed:
            battle.status = Battle.Status.ERRORED
            battle.save(update_fields=["status"])
        else:
            battle.status = Battle.Status.READY
            battle.ready_at = timezone.now()
            battle.save(update_fields=["status", "ready_at"])
    return battle


def battle_follow_up(*, battle_id: int, user) -> tuple[Battle, int]:
    """Reopen a READY battle for its next round: (battle, the new round's index).

    Only from READY, by a conditional UPDATE whose row count is checked, so a vote racing the
    follow-up takes the battle or the follow-up does, never both. Raises ArenaError (nothing
    changed) when the battle cannot take a follow-up, LimitExceeded past the user's limits.
    """
    with transaction.atomic():
        battle = (
            Battle.objects.select_for_update()
            .select_related("contestant_a", "contestant_b")
            .get(pk=battle_id)
        )
        if battle.user_id != getattr(user, "pk", None):
            raise ArenaError("Only the person who started this battle can continue it.")
        if battle.status != Battle.Status.READY:
            raise ArenaError("This battle is over: start a new round to ask again.")
        if Contestant.Kind.RECORDED in (battle.contestant_a.kind, battle.contestant_b.kind):
            # Refused before anything changes, so the first round can still be voted on.
            raise ArenaError(
                "Recorded (demo) models answer only the first prompt of a battle: vote on "
                "these answers, then start a new round."
            )
        index = battle_rounds(battle=battle)
        if index >= settings.ARENA_MAX_TURNS:
            raise ArenaError(
                f"This battle has reached {settings.ARENA_MAX_TURNS} rounds; vote, "
                "then start a new round."
            )
        limits.user_lock(user=user)
        limits.round_check(user_id=user.pk)
        _claim(battle, Battle.Status.READY, "This battle is over: start a new round to ask again.")
    return battle, index


def _claim(battle: Battle, status: str, refusal: str) -> None:
    """Move ``battle`` from ``status`` to STREAMING, or raise ArenaError(refusal) when its row
    is no longer in ``status``. While a reopened battle streams, ``ready_at`` holds when its
    round began (``battle_sweep_stale`` reads it); it is set again when the round is ready."""
    now = timezone.now()
    claimed = Battle.objects.filter(pk=battle.pk, status=status).update(
        status=Battle.Status.STREAMING, ready_at=now
    )
    if claimed != 1:
        raise ArenaError(refusal)
    battle.status, battle.ready_at = Battle.Status.STREAMING, now


def battle_regenerate(*, battle_id: int, user) -> tuple[int, int, str]:
    """Replace the last round's answers; returns (round index, new attempt, prompt).

    Allowed before the vote once both sides finished, also after a side failed (ERRORED):
    retrying a failed round is allowed, and only the current answers must be complete for a
    vote. The replaced answers stay stored, marked superseded, and are never voted on.
    """
    refusal = "Answers can be regenerated only before the vote, once both finished."
    with transaction.atomic():
        battle = Battle.objects.select_for_update().get(pk=battle_id)
        if battle.user_id != getattr(user, "pk", None):
            raise ArenaError("Only the person who started this battle can regenerate it.")
        if battle.status not in (Battle.Status.READY, Battle.Status.ERRORED):
            raise ArenaError(refusal)
        last = battle.turns.current().order_by("-index", "-attempt").first()
        if last is None:
            raise ArenaError("There is nothing to regenerate yet.")
        limits.user_lock(user=user)
        limits.round_check(user_id=user.pk)
        _claim(battle, battle.status, refusal)
        battle.turns.current().filter(index=last.index).update(superseded=True)
    return last.index, last.attempt + 1, last.prompt


def battle_abandon(*, battle_id: int) -> None:
    """A battle left while streaming can never be voted on: mark it void."""
    Battle.objects.filter(pk=battle_id, status=Battle.Status.STREAMING).update(
        status=Battle.Status.VOID
    )


def battle_sweep_age() -> timedelta:
    """How long a round can stream at most: the total upstream timeout, plus the retries
    before a first token and a margin (ARENA_SWEEP_STREAMING_AFTER overrides it)."""
    seconds = getattr(settings, "ARENA_SWEEP_STREAMING_AFTER", None)
    if seconds is None:
        seconds = (
            settings.ARENA_TIMEOUT_TOTAL
            + 3 * (settings.ARENA_TIMEOUT_CONNECT + settings.ARENA_TIMEOUT_FIRST_TOKEN)
            + 60
        )
    return timedelta(seconds=float(seconds))


def battle_sweep_stale(*, older_than: timedelta) -> int:
    """Void the battles left STREAMING by a crash (no process streams them any more): those
    whose round began more than ``older_than`` ago (a new battle's round at its creation, a
    follow-up's or regenerate's at ``ready_at``, see ``_claim``). One conditional UPDATE;
    returns how many were voided. They can never be voted on."""
    cutoff = timezone.now() - older_than
    began_long_ago = Q(ready_at__isnull=True, created_at__lt=cutoff) | Q(ready_at__lt=cutoff)
    swept = (
        Battle.objects.filter(status=Battle.Status.STREAMING)
        .filter(began_long_ago)
        .update(status=Battle.Status.VOID)
    )
    if swept:
        log.warning("voided %d battles left streaming for over %s", swept, older_than)
    return swept


def identity_terms(contestant: Contestant) -> list[str]:
    """Words that reveal a contestant when an answer contains them."""
    terms = [contestant.name, contestant.organisation, contestant.model_id]
    terms += contestant.identity_patterns.splitlines()
    return sorted({t.strip() for t in terms if len(t.strip()) >= 3}, key=str.lower)


IDENTITY_LEAKED = "identity leaked: an answer names a model or its maker"


def identity_pattern(contestant: Contestant) -> "re.Pattern[str] | None":
    """One pattern matching any of ``identity_terms(contestant)`` as a whole word, or None."""
    terms = identity_terms(contestant)
    if not terms:
        return None
    either = "|".join(re.escape(term) for term in terms)
    return re.compile(rf"(?<![\w-])(?:{either})(?![\w-])", re.IGNORECASE)


def texts_identity_leak(*, texts: list[str], patterns) -> str:
    """IDENTITY_LEAKED when one of ``patterns`` (``identity_pattern`` of each side) is found in
    one of ``texts``, else ''; for battles checked before they are stored."""
    for pattern in patterns:
        if pattern is not None and any(pattern.search(text) for text in texts):
            return IDENTITY_LEAKED
    return ""


def battle_identity_leak(*, battle: Battle) -> str:
    """The reason this battle cannot count because an answer named a model or maker, or ''."""
    texts = [t.text for t in battle.turns.current()]
    texts += [answer.text for answer in (battle.answer_a, battle.answer_b) if answer is not None]
    patterns = [identity_pattern(c) for c in (battle.contestant_a, battle.contestant_b)]
    return texts_identity_leak(texts=texts, patterns=patterns)


def battle_reveal(*, battle: Battle) -> dict:
    """Names and per-side statistics, shown only once the battle has its vote."""
    turns = list(battle.turns.current())
    sides = {}
    for side, contestant in (("a", battle.contestant_a), ("b", battle.contestant_b)):
        own = [t for t in turns if t.side == side]
        costs = [t.cost for t in own if t.cost is not None]
        sides[side] = {
            "name": contestant.name,
            "organisation": contestant.organisation,
            "stats": {
                "rounds": len(own),
                "ttft_ms": own[-1].ttft_ms if own else None,
                "total_ms": sum(t.total_ms or 0 for t in own),
                "tokens_out": sum(t.tokens_out or 0 for t in own),
                "usage_estimated": any(t.usage_estimated for t in own),
                "cost": str(sum(costs)) if costs else None,
            },
        }
    return sides


def battle_transcript(*, battle: Battle) -> list[dict]:
    """The rounds as voted on: prompt and each side's answer (regenerated ones left out)."""
    if battle.answer_a_id and battle.answer_b_id:
        prompt = battle.prompt_item.text if battle.prompt_item_id else ""
        return [{"prompt": prompt, "a": battle.answer_a.text, "b": battle.answer_b.text}]
    return [
        {"prompt": prompt, "a": _shown(a), "b": _shown(b)} for _, prompt, a, b in battle.rounds()
    ]


def _shown(turn: Turn | None) -> str:
    return "" if turn is None else turn.text or turn.error
