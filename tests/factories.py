"""Small factories for test rows: each fills what a test does not care about."""

import itertools

from django.contrib.auth import get_user_model

from arena.models import Battle, Contestant

_numbers = itertools.count(1)


def make_user(username: str, **fields):
    """An account with the password ``pw-<username>-123``."""
    return get_user_model().objects.create_user(username, password=f"pw-{username}-123", **fields)


def make_contestant(name: str | None = None, **fields) -> Contestant:
    """A contestant; named "Model N" when the name does not matter."""
    return Contestant.objects.create(name=name or f"Model {next(_numbers)}", **fields)


def make_battle(a: Contestant | None = None, b: Contestant | None = None, **fields) -> Battle:
    """A battle between two contestants (made when not given), ready for a vote by default."""
    fields.setdefault("status", Battle.Status.READY)
    return Battle.objects.create(
        contestant_a=a or make_contestant(), contestant_b=b or make_contestant(), **fields
    )
