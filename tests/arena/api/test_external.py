"""External battles: stored through the bulk vote path, idempotent, all or nothing."""

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from arena.api.tokens import token_create
from arena.core import hooks
from arena.models import Battle, BattleCategory, Category, ExternalBattleKey, Turn, Vote
from tests.factories import make_contestant


@pytest.fixture
def models(db):
    return (
        make_contestant("Alpha", organisation="Acme"),
        make_contestant("Beta", organisation="Bolt"),
    )


@pytest.fixture
def voter(alice):
    return {
        "HTTP_AUTHORIZATION": "Bearer " + token_create(user=alice, name="v", scopes=["vote"]).secret
    }


def _record(key="k0", **fields):
    record = {
        "key": key,
        "model_a": "Alpha",
        "model_b": "Beta",
        "prompt": "Hi?",
        "answer_a": "Hello.",
        "answer_b": "Hey.",
        "outcome": "a",
    }
    return {**record, **fields}


def _batch(records, headers):
    return Client().post(
        reverse("api_battle_batch"),
        {"records": records},
        content_type="application/json",
        **headers,
    )


def test_a_batch_is_stored_with_votes_turns_categories_and_times(models, voter, alice):
    Category.objects.create(slug="code", name="Code")
    records = [_record(f"k{i}", outcome=o) for i, o in enumerate(["a", "b", "tie", "both_bad"])]
    records[1] = _record(
        "k1",
        outcome="b",
        category="code",
        voter="user-7",
        created_at="2026-01-02T03:04:05Z",
        voted_at="2026-01-02T03:04:35Z",
    )
    records[2] = _record(
        "k2",
        outcome="tie",
        turns=[
            {"prompt": "p1", "answer_a": "a1", "answer_b": "b1"},
            {"prompt": "p2", "answer_a": "a2", "answer_b": "b2"},
        ],
    )
    for r in records[2:3]:
        for f in ("prompt", "answer_a", "answer_b"):
            del r[f]
    response = _batch(records, voter)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["stored"], body["duplicates"]) == (4, 0)
    assert [v.outcome for v in Vote.objects.order_by("battle__external_id")] == [
        "a",
        "b",
        "tie",
        "both_bad",
    ]
    one = Battle.objects.get(external_id="k1")
    assert (one.user, one.vote.voter, one.vote.voter_label) == (alice, alice, "user-7")
    assert one.created_at.isoformat() == "2026-01-02T03:04:05+00:00"
    assert one.vote.seconds_to_vote == 30
    assert BattleCategory.objects.get(battle=one).category.slug == "code"
    assert Turn.objects.filter(battle__external_id="k2").count() == 4
    assert sorted(Battle.objects.values_list("status", flat=True).distinct()) == ["voted"]


def test_a_retry_stores_one_vote(models, voter):
    first = Client().post(
        reverse("api_battle"), _record("same"), content_type="application/json", **voter
    )
    again = Client().post(
        reverse("api_battle"), _record("same"), content_type="application/json", **voter
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["battle"] == again.json()["battle"]
    assert again.json()["created"] is False
    assert Vote.objects.count() == 1 and ExternalBattleKey.objects.count() == 1
    mixed = _batch([_record("same"), _record("new")], voter).json()
    assert [b["created"] for b in mixed["battles"]] == [False, True]
    assert Vote.objects.count() == 2


def test_a_malformed_batch_stores_nothing_and_names_each_bad_record(models, voter):
    records = [_record(f"k{i}") for i in range(6)]
    records[1]["outcome"] = "left"
    records[2]["outcome"] = ["a"]  # unhashable: a problem, not a crash
    records[3]["model_b"] = "Nobody"
    records[4] = "not an object"
    records[5]["created_at"] = "yesterday"
    records.append(_record("k0"))
    response = _batch(records, voter)
    assert response.status_code == 400
    fields = [p["field"] for p in response.json()["problems"]]
    assert fields == [
        "records[1].outcome",
        "records[2].outcome",
        "records[3].model_b",
        "records[4]",
        "records[5].created_at",
        "records[6].key",
    ]
    assert "Nobody" in response.json()["problems"][2]["problem"]
    assert Battle.objects.count() == Vote.objects.count() == ExternalBattleKey.objects.count() == 0
    one = Client().post(
        reverse("api_battle"),
        _record(outcome="x", extra=1),
        content_type="application/json",
        **voter,
    )
    assert [p["field"] for p in one.json()["problems"]] == ["extra", "outcome"]
    assert _batch([], voter).json()["problems"][0]["field"] == "records"


def test_an_answer_naming_a_model_is_stored_but_not_counted(
    models, voter, monkeypatch, django_capture_on_commit_callbacks
):
    announced = []
    monkeypatch.setattr(hooks, "_after_counted_vote", [announced.append])
    monkeypatch.setattr(hooks, "_many", {})
    with django_capture_on_commit_callbacks(execute=True):
        response = _batch(
            [_record("leak", answer_a="As an Acme model, hello."), _record("fine")], voter
        )
    by_key = {b["key"]: b for b in response.json()["battles"]}
    assert by_key["leak"]["counted"] is False and by_key["fine"]["counted"] is True
    assert "identity leaked" in Vote.objects.get(battle__external_id="leak").void_reason
    # the counted vote is announced to the hooks (leaderboard refresh, auto-judges) after commit
    assert announced == [by_key["fine"]["battle"]]


def test_the_stored_battles_count_on_the_board(models, voter):
    from arena.leaderboards.data import human_battles  # what a board refresh reads

    _batch([_record(f"k{i}", outcome="a") for i in range(5)], voter)
    data = human_battles()
    assert data.battle_ids.size == 5
    assert sorted(data.contestant_ids.tolist()) == sorted(m.pk for m in models)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_identical_requests_store_one_vote(alice):
    if connection.vendor != "postgresql":
        pytest.skip("the race is a PostgreSQL property (SQLite serialises writers)")
    make_contestant("Alpha")
    make_contestant("Beta")
    headers = {
        "HTTP_AUTHORIZATION": "Bearer " + token_create(user=alice, name="v", scopes=["vote"]).secret
    }
    records = [_record(f"race{i}") for i in range(200)]
    barrier = threading.Barrier(2)
    answers = []

    def send():
        barrier.wait()
        answers.append(_batch(records, headers))
        connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200, 201]
    assert sorted(a.json()["stored"] for a in answers) == [0, 200]
    assert Vote.objects.count() == 200
