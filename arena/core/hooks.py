"""Reactions across domains to what a service did, registered in ``ArenaConfig.ready()``.

The vote service announces a counted vote here and never imports the domains that react to it
(leaderboards refresh, auto-judges judge); each reaction runs after the vote's transaction
commits, and one that fails is logged without failing the vote or the other reactions.
"""

from collections.abc import Callable
from functools import partial

from django.db import transaction

_after_counted_vote: list[Callable[[int], None]] = []
_many: dict[Callable[[int], None], Callable[[list[int]], None]] = {}


def on_counted_vote(
    hook: Callable[[int], None], many: Callable[[list[int]], None] | None = None
) -> None:
    """Call ``hook(battle_id)`` after every counted vote commits (registered once); ``many``,
    if given, does the same for a list of battles at once (``counted_votes``)."""
    if hook not in _after_counted_vote:
        _after_counted_vote.append(hook)
    if many is not None:
        _many[hook] = many


def counted_vote(battle_id: int) -> None:
    """Announce a counted vote from inside its transaction: hooks run only if it commits."""
    for hook in _after_counted_vote:
        transaction.on_commit(partial(hook, battle_id), robust=True)


def counted_votes(battle_ids: list[int]) -> None:
    """``counted_vote`` for many battles stored together: one reaction per hook (its ``many``
    form, else the hook per battle), after the commit."""
    if not battle_ids:
        return
    ids = list(battle_ids)
    for hook in _after_counted_vote:
        many = _many.get(hook)
        if many is not None:
            transaction.on_commit(partial(many, ids), robust=True)
        else:
            transaction.on_commit(partial(_each, hook, ids), robust=True)


def _each(hook: Callable[[int], None], ids: list[int]) -> None:
    for battle_id in ids:
        hook(battle_id)
