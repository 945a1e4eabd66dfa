"""The counted-vote hook: review the vote right after it commits, before the leaderboard hook
(ArenaConfig.ready registers this one first), so a refresh it triggers already leaves out an
excluded vote. The review is a few indexed queries, cheap enough to run beside the request."""

import logging

from arena.quality.flags import vote_review, votes_review

log = logging.getLogger(__name__)


def review_after_vote(battle_id: int) -> None:
    vote_review(battle_id=battle_id)


def review_after_votes(battle_ids: list[int]) -> None:
    """The same for a batch of external battles: one review of all of them."""
    votes_review(battle_ids=battle_ids)
