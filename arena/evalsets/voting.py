"""Blind voting on stored answers of an eval set.

A voter is served one pair at a time as a Battle in mode ``evalset`` (status ready, so the
same vote service and rules apply as for live battles). Pairs with the fewest votes come
first; a voter never gets the same pair of the same prompt twice; several voters may vote the
same pair.

Under the active sampling policy the pair of *contestants* is drawn like a live battle's, from
the active distribution conditioned on the contestant pairs that have a prompt left for this
voter (the stored probability is that conditional one), then a prompt among those of that pair,
fewest votes first. Without a distribution covering them, the fewest-votes rule applies.
"""

import random
from collections import Counter, defaultdict
from itertools import combinations

from django.db import transaction

from arena.battles import sampling
from arena.core.errors import ArenaError
from arena.models import Answer, Battle, BattleCategory, PromptSet, Vote


class NoPairLeft(ArenaError):
    pass


def _pair_key(item_id: int, x: int, y: int) -> tuple[int, int, int]:
    return (item_id, min(x, y), max(x, y))


def evalset_next_battle(*, voter, prompt_set: PromptSet, rng=None) -> Battle:
    """The voter's open pair for this set, or a new one chosen by fewest votes."""
    rng = rng or random.SystemRandom()
    open_battle = (
        Battle.objects.filter(
            user=voter,
            mode=Battle.Mode.EVALSET,
            prompt_item__prompt_set=prompt_set,
            status=Battle.Status.READY,
        )
        .order_by("created_at")
        .first()
    )
    if open_battle is not None:
        return open_battle

    answers = defaultdict(dict)  # item -> contestant -> answer id
    rows = Answer.objects.filter(item__prompt_set=prompt_set, contestant__active=True)
    for answer_id, item_id, contestant_id in rows.values_list("id", "item_id", "contestant_id"):
        answers[item_id][contestant_id] = answer_id

    battles = Battle.objects.filter(mode=Battle.Mode.EVALSET, prompt_item__prompt_set=prompt_set)
    votes = Counter()
    for item_id, a, b in battles.filter(vote__isnull=False).values_list(
        "prompt_item_id", "contestant_a_id", "contestant_b_id"
    ):
        votes[_pair_key(item_id, a, b)] += 1
    seen = {
        _pair_key(item_id, a, b)
        for item_id, a, b in battles.filter(user=voter).values_list(
            "prompt_item_id", "contestant_a_id", "contestant_b_id"
        )
    }
    left = [
        (item_id, x, y)
        for item_id, by_contestant in answers.items()
        for x, y in combinations(sorted(by_contestant), 2)
        if (item_id, x, y) not in seen
    ]
    if not left:
        raise NoPairLeft("You have voted on every pair of this set. Thank you!")
    pair_probability = None
    drawn = _active_draw(left, rng)
    if drawn is not None:
        x, y, pair_probability = drawn
        left = [key for key in left if key[1:] == (min(x, y), max(x, y))]
    # Fewest votes first, ties broken at random.
    fewest = min(votes[key] for key in left)
    best = [key for key in left if votes[key] == fewest]
    if pair_probability is None:
        pair_probability = 1.0 / len(best)
    item_id, x, y = rng.choice(best)
    if rng.random() < 0.5:
        x, y = y, x
    with transaction.atomic():
        battle = Battle.evalset_pair(
            item_id=item_id,
            answers=answers[item_id],
            a=x,
            b=y,
            user=voter,
            pair_probability=pair_probability,
        )
        battle.save()
        category_id = battle.prompt_item.category_id
        if category_id:
            BattleCategory.objects.create(
                battle=battle, category_id=category_id, assigner=BattleCategory.Assigner.RULE
            )
    return battle


def _active_draw(left, rng) -> tuple[int, int, float] | None:
    """The contestant pair under the active policy, or None (another policy, no distribution
    yet, or one that does not cover these contestants)."""
    if sampling.current_policy() != "active":
        return None
    active = sampling.load()
    if active is None:
        return None
    return active.draw_among(sorted({(x, y) for _, x, y in left}), rng.random())


def evalset_progress(*, prompt_set: PromptSet) -> dict:
    """Counts for the set's page: prompts, stored answers, votes."""
    return {
        "items": prompt_set.items.count(),
        "answers": Answer.objects.filter(item__prompt_set=prompt_set).count(),
        "votes": Vote.objects.filter(battle__prompt_item__prompt_set=prompt_set).count(),
    }
