"""External battles go through vote-quality review like live votes: the batch is reviewed in
bulk by the counted-vote hook after its commit, each ``voter`` label on its own, and the counts
stay equal to a rebuild."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from arena.api.tokens import token_create
from arena.battles.services import vote_record
from arena.models import (
    Battle,
    Contestant,
    LeaderboardSnapshot,
    Turn,
    Vote,
    VoteReview,
    VoterStanding,
)
from tests.arena.battles.test_counts import _assert_equal_to_rebuild
from tests.factories import make_contestant, make_user

pytestmark = pytest.mark.django_db

TEXT = "x" * 500  # two answers of 500 characters take 20 s to read at 50 characters/s
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def pair():
    kind = Contestant.Kind.RECORDED
    strong, weak = (
        make_contestant(name="Strong", kind=kind),
        make_contestant(name="Weak", kind=kind),
    )
    rows = [
        {"contestant_id": strong.pk, "rating": 1200.0},
        {"contestant_id": weak.pk, "rating": 900.0},
    ]
    LeaderboardSnapshot.objects.create(  # P(strong wins) ~ 0.85
        method="bt",
        results={"rows": rows},
        status=LeaderboardSnapshot.Status.COMPLETE,
        completed_at=timezone.now(),
    )
    return strong, weak


def _headers(user) -> dict:
    secret = token_create(user=user, name="tool", scopes=["vote"]).secret
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def _record(key, outcome, voter, *, seconds=60, text=TEXT, at=0):
    record = {
        "key": key,
        "model_a": "Strong",
        "model_b": "Weak",
        "prompt": f"Question {key}?",
        "answer_a": text,
        "answer_b": text,
        "outcome": outcome,
        "voter": voter,
    }
    if seconds is not None:
        created = T0 + timedelta(minutes=at)
        record["created_at"] = created.isoformat()
        record["voted_at"] = (created + timedelta(seconds=seconds)).isoformat()
    return record


def _send(records, headers, capture):
    with capture(execute=True):  # the hooks run after the commit, as in production
        response = Client().post(
            reverse("api_battle_batch"),
            {"records": records},
            content_type="application/json",
            **headers,
        )
    assert response.status_code == 201, response.content
    return response.json()["battles"]


def _reviews(**voter) -> list[tuple[str, list[str]]]:
    reviews = VoteReview.objects.filter(**{f"vote__{k}": v for k, v in voter.items()})
    return [(r.status, [c["check"] for c in r.reasons]) for r in reviews.order_by("vote_id")]


def _live_votes(user, strong, weak, outcome, n, capture):
    for k in range(n):
        battle = Battle.objects.create(
            contestant_a=strong,
            contestant_b=weak,
            user=user,
            status=Battle.Status.READY,
            ready_at=timezone.now() - timedelta(seconds=60),
        )
        for side in "ab":
            Turn.objects.create(battle=battle, index=0, side=side, prompt=f"q{k}", text=TEXT)
        with capture(execute=True):
            vote_record(battle_id=battle.pk, user=user, outcome=outcome)


def test_a_batch_from_a_one_model_voter_is_flagged_like_the_same_votes_cast_live(
    pair, alice, django_capture_on_commit_callbacks
):
    strong, weak = pair
    capture = django_capture_on_commit_callbacks
    dora = make_user("dora")
    _live_votes(dora, strong, weak, "b", 6, capture)
    live = VoterStanding.objects.get(voter=dora, label="")
    assert live.status == VoterStanding.Status.FLAGGED

    # The same six votes from one person of a tool, beside an honest one, in one batch.
    records = []
    for k in range(6):
        records.append(_record(f"d{k}", "b", "ext-dora", at=k))
        records.append(_record(f"e{k}", "a", "ext-erin", at=k))
    _send(records, _headers(alice), capture)

    external = VoterStanding.objects.get(voter=alice, label="ext-dora")
    assert (external.status, external.reason, external.figure) == (
        live.status,
        live.reason,
        live.figure,
    )
    assert external.evidence == live.evidence and external.votes_checked == 6
    assert _reviews(voter_label="ext-dora") == _reviews(voter=dora)
    assert {s for s, _ in _reviews(voter_label="ext-dora")} == {VoteReview.Status.EXCLUDED}
    assert _reviews(voter_label="ext-erin") == [("ok", [])] * 6
    assert VoterStanding.objects.get(voter=alice, label="ext-erin").status == "watched"
    assert not VoterStanding.objects.filter(voter=alice, label="").exists()
    # Excluded votes leave the counts: only erin's six "a" and no "b" from dora.
    assert Vote.objects.rated().filter(voter=alice).count() == 6
    kept = _assert_equal_to_rebuild()
    assert sum(n for (k, a, b, o), n in kept["pairs"].items() if k == 0 and o == "b") == 0


def test_the_too_fast_check_uses_the_records_times_and_is_skipped_without_them(
    pair, alice, django_capture_on_commit_callbacks
):
    records = [
        _record("fast", "a", "v1", seconds=2),  # 2 s for 1,000 characters
        _record("slow", "a", "v2", seconds=60),
        _record("untimed", "a", "v3", seconds=None),  # no times: not checked
        _record("short", "a", "v4", seconds=1, text="Yes."),
    ]
    battles = _send(records, _headers(alice), django_capture_on_commit_callbacks)
    review = {b["key"]: VoteReview.objects.get(vote__battle_id=b["battle"]) for b in battles}
    assert review["fast"].status == VoteReview.Status.EXCLUDED
    assert review["fast"].reasons == [{"check": "too_fast", "figure": 2.0, "limit": 20.0}]
    assert [review[k].status for k in ("slow", "untimed", "short")] == ["ok"] * 3
    assert Vote.objects.get(battle__external_id="untimed").seconds_to_vote is None
    _assert_equal_to_rebuild()


def test_a_voter_past_the_daily_limit_is_counted_per_label(
    pair, alice, settings, django_capture_on_commit_callbacks
):
    settings.ARENA_QUALITY_VOTES_PER_DAY = 2
    headers = _headers(alice)
    capture = django_capture_on_commit_callbacks
    _send([_record(f"a{k}", "tie", "ann", at=k) for k in range(2)], headers, capture)
    records = [_record("a2", "tie", "ann", at=2), _record("b0", "tie", "ben", at=2)]
    records.append(_record("a3", "tie", "ann", at=24 * 60 + 1))  # a day after the first
    _send(records, headers, capture)
    assert _reviews(voter_label="ann") == [
        ("ok", []),
        ("ok", []),
        ("excluded", ["votes_per_day"]),
        ("ok", []),
    ]
    assert _reviews(voter_label="ben") == [("ok", [])]
    _assert_equal_to_rebuild()


def test_a_retried_batch_is_not_reviewed_twice(pair, alice, django_capture_on_commit_callbacks):
    headers = _headers(alice)
    records = [_record(f"k{k}", "b", "dora", at=k) for k in range(6)]
    _send(records[:4], headers, django_capture_on_commit_callbacks)
    _send(records, headers, django_capture_on_commit_callbacks)  # 4 duplicates, 2 new
    standing = VoterStanding.objects.get(voter=alice, label="dora")
    assert standing.votes_checked == 6 == VoteReview.objects.count()
    assert standing.status == VoterStanding.Status.FLAGGED
    _assert_equal_to_rebuild()


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_batches_store_and_review_each_vote_once():
    if connection.vendor != "postgresql":
        pytest.skip("the race is a PostgreSQL property (SQLite serialises writers)")
    kind = Contestant.Kind.RECORDED
    make_contestant(name="Strong", kind=kind)
    make_contestant(name="Weak", kind=kind)
    headers = _headers(make_user("tool"))
    records = [_record(f"r{k}", "ab"[k % 2], f"v{k % 7}", at=k) for k in range(300)]
    barrier = threading.Barrier(2)
    answers = []

    def send():
        barrier.wait()
        answers.append(
            Client().post(
                reverse("api_battle_batch"),
                {"records": records},
                content_type="application/json",
                **headers,
            )
        )
        connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(a.status_code for a in answers) == [200, 201]
    assert Vote.objects.count() == 300 == VoteReview.objects.count()
    assert sum(VoterStanding.objects.values_list("votes_checked", flat=True)) == 300
    _assert_equal_to_rebuild()


def test_staff_see_and_decide_on_an_external_voter(
    pair, alice, bob, client, django_capture_on_commit_callbacks
):
    records = [_record(f"d{k}", "b", "ext-dora", at=k) for k in range(6)]
    records += [_record(f"e{k}", "a", "ext-erin", at=k) for k in range(3)]
    _send(records, _headers(alice), django_capture_on_commit_callbacks)
    client.force_login(bob)
    page = client.get(reverse("quality_index")).content.decode()
    assert "alice / ext-dora" in page and "ext-erin" not in page  # only flagged voters listed
    url = reverse("quality_voter", args=[alice.pk])
    response = client.post(url, {"status": "excluded", "label": "ext-erin"})
    assert response.status_code == 302
    assert _reviews(voter_label="ext-erin") == [("excluded", ["voter_excluded_by_staff"])] * 3
    assert _reviews(voter_label="ext-dora")[0][0] == "excluded"
    assert not Vote.objects.rated().exists()
    response = client.post(url, {"status": "trusted", "label": "ext-dora"})
    assert {s for s, _ in _reviews(voter_label="ext-dora")} == {VoteReview.Status.REINSTATED}
    assert Vote.objects.rated().count() == 6
    assert client.post(url, {"status": "trusted", "label": "nobody"}).status_code == 404
    _assert_equal_to_rebuild()
