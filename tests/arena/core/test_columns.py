"""Reading query columns into numpy: the same values as the ORM, on SQLite and PostgreSQL."""

import datetime as dt

import numpy as np
import pytest
from django.db.models import F
from django.db.models.functions import TruncDate
from django.utils import timezone

from arena.core.columns import DATE, INT, read_columns
from arena.leaderboards.data import human_battles
from arena.models import Battle, Vote
from tests.factories import make_contestant

pytestmark = pytest.mark.django_db


@pytest.fixture
def battles():
    a = make_contestant(name="A", kind="recorded")
    b = make_contestant(name="B", kind="recorded")
    made = []
    for k in range(5):
        made.append(
            Battle.objects.create(
                contestant_a=a if k % 2 else b,
                contestant_b=b if k % 2 else a,
                mode=Battle.Mode.IMPORTED,
                status=Battle.Status.VOTED,
            )
        )
    return made


def test_integer_and_date_columns_equal_what_the_orm_reads(battles):
    Battle.objects.filter(pk=battles[2].pk).update(
        created_at=dt.datetime(1999, 12, 31, 23, 0, tzinfo=dt.UTC)  # before PostgreSQL's epoch
    )
    query = (
        Battle.objects.annotate(day=TruncDate("created_at"), minus=-F("contestant_a_id"))
        .order_by("id")
        .values_list("id", "contestant_a_id", "minus", "day")
    )
    ids, ca, minus, day = read_columns(query, (INT, INT, INT, DATE))
    expected = list(query)
    assert ids.dtype == np.int64 and day.dtype == np.dtype("datetime64[D]")
    assert ids.tolist() == [row[0] for row in expected]
    assert ca.tolist() == [row[1] for row in expected]
    assert minus.tolist() == [row[2] for row in expected] and minus.min() < 0
    assert day.astype(object).tolist() == [row[3] for row in expected]
    assert dt.date(1999, 12, 31) in day.astype(object).tolist()


def test_an_empty_result_gives_empty_columns(battles):
    ids, day = read_columns(
        Battle.objects.filter(pk=-1).annotate(day=TruncDate("created_at")).values_list("id", "day"),
        (INT, DATE),
    )
    assert ids.size == 0 and day.size == 0 and day.dtype == np.dtype("datetime64[D]")


def test_a_null_is_refused_rather_than_dropped(battles):
    Battle.objects.filter(pk=battles[0].pk).update(user=None)
    with pytest.raises(ValueError, match="NULL"):
        read_columns(Battle.objects.values_list("id", "user_id"), (INT, INT))


def test_votes_are_counted_on_their_day_in_the_current_time_zone(battles):
    late = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)  # already 2 March in Berlin
    for battle in battles:
        vote = Vote.objects.create(battle=battle, outcome="a")
        Vote.objects.filter(pk=vote.pk).update(created_at=late)
    with timezone.override("UTC"):
        assert human_battles().over_time[None] == [(dt.date(2026, 3, 1), 5)]
    with timezone.override("Europe/Berlin"):
        assert human_battles().over_time[None] == [(dt.date(2026, 3, 2), 5)]
