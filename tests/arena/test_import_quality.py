"""Imported votes go through the vote-quality checks in bulk (arena.quality.bulk_import): by the
file's voter id (FastChat ``judge``) and by account (votes with a ``voter``)."""

import json

import numpy as np
import pytest

from arena.exchange.service import battles_import
from arena.models import Battle, Contestant, Vote, VoteReview, VoterStanding
from arena.quality.bulk_import import review_imported
from tests.arena.battles.test_counts import _assert_equal_to_rebuild
from tests.factories import make_contestant, make_user

pytestmark = pytest.mark.django_db

STRENGTH = {"Alpha": 300.0, "Beta": 150.0, "Gamma": 0.0, "Delta": -150.0, "Eps": -300.0}


def _choice(rng, kind, a, b):
    """'model_a' or 'model_b' as an honest, a random, or an always-Eps voter picks."""
    if kind == "random":
        return "model_a" if rng.random() < 0.5 else "model_b"
    if kind == "fan" and "Eps" in (a, b):
        return "model_a" if a == "Eps" else "model_b"
    p = 1 / (1 + 10 ** ((STRENGTH[b] - STRENGTH[a]) / 400))
    return "model_a" if rng.random() < p else "model_b"


def _records(rng):
    voters = [(f"honest-{k}", "honest", 60) for k in range(12)]
    voters += [("rando", "random", 120), ("fan", "fan", 150)]
    names = list(STRENGTH)
    out, t = [], 1.7e9
    for label, kind, n in voters:
        for _ in range(n):
            a, b = rng.choice(names, 2, replace=False)
            if kind == "fan" and "Eps" not in (a, b):
                b = "Eps" if a != "Eps" else b
            t += 600.0  # ten minutes apart: no votes-per-day flag
            out.append(
                {
                    "model_a": a,
                    "model_b": b,
                    "winner": _choice(rng, kind, a, b),
                    "judge": label,
                    "tstamp": t,
                    "anony": True,
                }
            )
    return out


def test_fastchat_import_excludes_the_bad_voter_labels(tmp_path):
    path = tmp_path / "battles.json"
    path.write_text(json.dumps(_records(np.random.default_rng(1))))
    result = battles_import(path=path, fmt="fastchat")
    assert result.votes == 12 * 60 + 120 + 150
    excluded = VoteReview.objects.filter(status=VoteReview.Status.EXCLUDED)
    labels = set(excluded.values_list("vote__voter_label", flat=True))
    assert labels == {"rando", "fan"}
    assert excluded.filter(vote__voter_label="rando").count() == 120  # all, once flagged
    review = excluded.filter(vote__voter_label="fan").first()
    assert review.reasons[-1]["check"] == "voter_favourite:" + str(
        Contestant.objects.get(name="Eps").pk
    )
    assert review.reasons[-1]["figure"] >= review.reasons[-1]["limit"]
    assert result.votes_excluded == 270 and result.voters_flagged == 2
    assert "excluded 270 votes" in result.summary()
    assert Vote.objects.rated().count() == 12 * 60  # the honest voters' votes count
    # The excluded votes left the counts the import had added (the boards read the counts).
    _assert_equal_to_rebuild()
    # A second pass finds nothing new to review.
    assert review_imported(after_vote_id=0)["checked"] == 12 * 60


def test_account_votes_get_a_review_each_and_a_standing_and_votes_per_day(settings):
    settings.ARENA_QUALITY_VOTES_PER_DAY = 50
    rng = np.random.default_rng(2)
    models = {name: make_contestant(name=name) for name in STRENGTH}
    honest, rando = make_user("honest"), make_user("rando")
    for user, kind, n in ((honest, "honest", 80), (rando, "random", 150)):
        for _ in range(n):
            a, b = rng.choice(list(STRENGTH), 2, replace=False)
            side = _choice(rng, kind, a, b)
            battle = Battle.objects.create(
                contestant_a=models[a],
                contestant_b=models[b],
                mode=Battle.Mode.IMPORTED,
                status=Battle.Status.VOTED,
            )
            Vote.objects.create(battle=battle, voter=user, outcome=side[-1])
    out = review_imported(after_vote_id=0)
    assert out["checked"] == 230 and out["voters_flagged"] == 1
    assert VoteReview.objects.count() == 230  # one per vote, as the online review
    standing = VoterStanding.objects.get(voter=rando)
    assert standing.status == VoterStanding.Status.FLAGGED and standing.votes_checked == 150
    assert standing.reason == "random" and standing.figure >= 6.9
    assert not VoteReview.objects.filter(vote__voter=rando, status="ok").exists()
    mine = VoteReview.objects.filter(vote__voter=honest).order_by("vote_id")
    checks = [[r["check"] for r in review.reasons] for review in mine]
    assert checks[:50] == [[]] * 50  # within the day's limit
    assert all(c == ["votes_per_day"] for c in checks[50:])  # all within one day here
    assert VoterStanding.objects.get(voter=honest).status == VoterStanding.Status.WATCHED
    _assert_equal_to_rebuild()
