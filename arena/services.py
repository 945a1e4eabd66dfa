"""Workflows across models: keyword-only functions named <entity>_<action>.

No network call happens inside a transaction here; callers stream first, then record.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from arena.models import Battle, Vote


class ArenaError(Exception):
    """A failure with a message fit to show the user as it is."""


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
                )
        except IntegrityError:
            raise AlreadyVoted() from None
        battle.status = Battle.Status.VOTED
        battle.save(update_fields=["status"])
    return vote
