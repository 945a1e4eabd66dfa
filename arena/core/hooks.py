"""Reactions across domains to what a service did, registered in ``ArenaConfig.ready()``.

The vote service announces a counted vote here and never imports the domains that react to it
(leaderboards refresh, auto-judges judge); each reaction runs after the vote's transaction
commits, and one that fails is logged without failing the vote or the other reactions.
"""

from collections.abc import Callable
from functools import partial

from django.db import transaction

_after_counted_vote: list[Callable[[int], None]] = []


def on_counted_vote(hook: Callable[[int], None]) -> None:
    """Call ``hook(battle_id)`` after every counted vote commits (registered once)."""
    if hook not in _after_counted_vote:
        _after_counted_vote.append(hook)


def counted_vote(battle_id: int) -> None:
    """Announce a counted vote from inside its transaction: hooks run only if it commits."""
    for hook in _after_counted_vote:
        transaction.on_commit(partial(hook, battle_id), robust=True)
