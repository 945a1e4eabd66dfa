"""Workflows across models: keyword-only functions named <entity>_<action>.

No network call happens inside a transaction here; callers stream first, then record.
"""

import logging
import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from arena.battles.matchmaking import NotEnoughContestants, Pairing, Roster
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
    taken. The unique constraint on Vote.battle is the last line behind the row lock.
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
        battle.save(update_fields=["status"])
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
        pairing = roster.pair(replayers, rng)
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
    """Store a drawn battle: the Battle row and its category link, together or not at all."""
    with transaction.atomic():
        battle = _live_battle(user, draw)
        battle.save()
        if draw.category_id is not None:
            _voter_category(battle, draw).save()
    return battle


def battle_open_many(*, openings: list[tuple]) -> list:
    """Store several drawn battles, ``[(user, draw), ...]``, in one transaction: their ids in
    order. When that fails (one bad row fails them all), each is stored on its own, and the
    failed ones get their exception in place of an id; no battle is ever half stored."""
    try:
        with transaction.atomic():
            battles = Battle.objects.bulk_create(
                [_live_battle(user, draw) for user, draw in openings]
            )
            BattleCategory.objects.bulk_create(
                [
                    _voter_category(battle, draw)
                    for battle, (_, draw) in zip(battles, openings, strict=True)
                    if draw.category_id is not None
                ]
            )
        return [battle.pk for battle in battles]
    except Exception:
        if len(openings) == 1:
            raise
        log.warning("storing %d battles at once failed; storing them one by one", len(openings))
    results = []
    for user, draw in openings:
        try:
            results.append(battle_open(user=user, draw=draw).pk)
        except Exception as exc:  # handed to the one waiting for this battle
            results.append(exc)
    return results


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
        prompt=prompt,
        text=text,
        error=error,
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


def battle_regenerate(*, battle_id: int, user) -> tuple[int, int, str]:
    """Replace the last round's answers; returns (round index, new attempt, prompt).

    The replaced answers stay stored, marked superseded, and are never voted on.
    """
    with transaction.atomic():
        battle = Battle.objects.select_for_update().get(pk=battle_id)
        if battle.user_id != getattr(user, "pk", None):
            raise ArenaError("Only the person who started this battle can regenerate it.")
        if battle.status not in (Battle.Status.READY, Battle.Status.ERRORED):
            raise ArenaError("Answers can be regenerated only before the vote, once both finished.")
        last = battle.turns.current().order_by("-index", "-attempt").first()
        if last is None:
            raise ArenaError("There is nothing to regenerate yet.")
        battle.turns.current().filter(index=last.index).update(superseded=True)
        battle.status = Battle.Status.STREAMING
        battle.ready_at = None
        battle.save(update_fields=["status", "ready_at"])
    return last.index, last.attempt + 1, last.prompt


def battle_abandon(*, battle_id: int) -> None:
    """A battle left while streaming can never be voted on: mark it void."""
    Battle.objects.filter(pk=battle_id, status=Battle.Status.STREAMING).update(
        status=Battle.Status.VOID
    )


def identity_terms(contestant: Contestant) -> list[str]:
    """Words that reveal a contestant when an answer contains them."""
    terms = [contestant.name, contestant.organisation, contestant.model_id]
    terms += contestant.identity_patterns.splitlines()
    return sorted({t.strip() for t in terms if len(t.strip()) >= 3}, key=str.lower)


def battle_identity_leak(*, battle: Battle) -> str:
    """The reason this battle cannot count because an answer named a model or maker, or ''."""
    texts = [t.text for t in battle.turns.current()]
    texts += [answer.text for answer in (battle.answer_a, battle.answer_b) if answer is not None]
    for contestant in (battle.contestant_a, battle.contestant_b):
        for term in identity_terms(contestant):
            pattern = re.compile(rf"(?<![\w-]){re.escape(term)}(?![\w-])", re.IGNORECASE)
            if any(pattern.search(text) for text in texts):
                return "identity leaked: an answer names a model or its maker"
    return ""


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
