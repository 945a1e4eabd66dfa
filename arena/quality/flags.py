"""Reviewing a counted vote just after it commits, and staff decisions on votes and voters.

A vote that fails a check is kept with a VoteReview saying why (and the test's figure) and is
left out of every board by ``Vote.objects.rated()``; it is excluded, not down-weighted, because
a random or one-model voter's votes carry no information about the models, only bias.
Everything about one voter runs behind a row lock on their VoterStanding, so two reviews of the
same voter's votes (or a review and a staff decision) never interleave.
"""

import logging

from django.db import IntegrityError, transaction

import ratings
from arena.battles import counts
from arena.leaderboards.snapshots import latest_snapshot
from arena.models import Battle, Vote, VoteReview, VoterStanding
from arena.quality.checks import PER_VOTE_CHECKS

log = logging.getLogger(__name__)
_ratings_cache: dict[int, dict[int, float]] = {}


def current_ratings() -> dict[int, float]:
    """Contestant pk -> rating on the latest overall human board (empty before the first)."""
    snapshot = latest_snapshot()
    if snapshot is None:
        return {}
    if snapshot.pk not in _ratings_cache:
        rows = (snapshot.results or {}).get("rows", [])
        _ratings_cache.clear()
        _ratings_cache[snapshot.pk] = {
            int(r["contestant_id"]): float(r["rating"]) for r in rows if r.get("rating") is not None
        }
    return _ratings_cache[snapshot.pk]


def _locked_standing(voter_id: int) -> VoterStanding:
    try:
        with transaction.atomic():
            VoterStanding.objects.get_or_create(voter_id=voter_id)
    except IntegrityError:  # created by a concurrent review: it exists now
        pass
    return VoterStanding.objects.select_for_update().get(voter_id=voter_id)


def vote_review(*, battle_id: int) -> VoteReview | None:
    """Run every check on the battle's vote once (a second call returns the stored review)."""
    with transaction.atomic():
        vote = (
            Vote.objects.select_related("battle", "battle__answer_a", "battle__answer_b")
            .filter(battle_id=battle_id)
            .first()
        )
        if vote is None or not vote.counted or vote.voter_id is None:
            return None
        standing = _locked_standing(vote.voter_id)
        existing = VoteReview.objects.filter(vote=vote).first()
        if existing is not None:
            return existing
        reasons = [r for check in PER_VOTE_CHECKS if (r := check(vote)) is not None]
        evidence = ratings.VoterEvidence.from_dict(standing.evidence)
        known = current_ratings()
        battle: Battle = vote.battle
        ratings.observe_vote(
            evidence,
            model_a=str(battle.contestant_a_id),
            model_b=str(battle.contestant_b_id),
            rating_a=known.get(battle.contestant_a_id),
            rating_b=known.get(battle.contestant_b_id),
            outcome=Vote.Outcome(vote.outcome).code,
        )
        reason, figure = evidence.strongest
        standing.evidence = evidence.as_dict()
        standing.votes_checked += 1
        if standing.status == VoterStanding.Status.WATCHED and evidence.flagged:
            standing.status = VoterStanding.Status.FLAGGED
            standing.reason, standing.figure = reason, round(figure, 3)
            _exclude_earlier(vote.voter_id, standing)
            log.info("voter %s flagged: %s %.2f", vote.voter_id, reason, figure)
        if standing.votes_excluded:
            reasons.append(_voter_reason(standing))
        standing.save()
        return VoteReview.objects.create(
            vote=vote,
            status=VoteReview.Status.EXCLUDED if reasons else VoteReview.Status.OK,
            reasons=reasons,
            surprise=round(figure, 3),
        )


def _voter_reason(standing: VoterStanding) -> dict:
    if standing.status == VoterStanding.Status.EXCLUDED:
        return {"check": "voter_excluded_by_staff", "figure": None, "limit": None}
    return {
        "check": f"voter_{standing.reason}",
        "figure": standing.figure,
        "limit": round(ratings.VOTER_THRESHOLD, 3),
    }


def _exclude_earlier(voter_id: int, standing: VoterStanding) -> int:
    """Exclude the voter's earlier passed votes (reinstated ones stay as staff left them)."""
    n = 0
    reason = _voter_reason(standing)
    for review in VoteReview.objects.filter(
        vote__voter_id=voter_id, status=VoteReview.Status.OK
    ).select_for_update():
        review.status = VoteReview.Status.EXCLUDED
        review.reasons = [*review.reasons, reason]
        review.save(update_fields=["status", "reasons", "updated_at"])
        n += 1
    return n


def review_set(*, review_id: int, status: str, by) -> VoteReview:
    """Staff: exclude or reinstate one vote; it counts (or not) from the next refresh."""
    if status not in (VoteReview.Status.EXCLUDED, VoteReview.Status.REINSTATED):
        raise ValueError(f"status: expected 'excluded' or 'reinstated', got {status!r}")
    with transaction.atomic():
        voter_id = VoteReview.objects.filter(pk=review_id).values_list("vote__voter_id", flat=True)
        voter = voter_id.first()
        if voter is not None:
            _locked_standing(voter)
        review = VoteReview.objects.select_for_update().get(pk=review_id)
        review.status, review.decided_by = status, by
        if status == VoteReview.Status.EXCLUDED:
            review.reasons = [*review.reasons, {"check": "staff", "figure": None, "limit": None}]
        review.save()
        return review


def standing_set(*, voter_id: int, status: str, by) -> VoterStanding:
    """Staff: exclude every vote of a voter, or trust them (reinstate their excluded votes; the
    sequential test no longer flags them, the per-vote checks still apply to new votes)."""
    if status not in (VoterStanding.Status.EXCLUDED, VoterStanding.Status.TRUSTED):
        raise ValueError(f"status: expected 'excluded' or 'trusted', got {status!r}")
    with transaction.atomic():
        standing = _locked_standing(voter_id)
        standing.status, standing.decided_by = status, by
        standing.save()
        reviews = VoteReview.objects.filter(vote__voter_id=voter_id).select_for_update()
        if status == VoterStanding.Status.EXCLUDED:
            staff = _voter_reason(standing)
            for vote in Vote.objects.counted().filter(voter_id=voter_id, review__isnull=True):
                VoteReview.objects.create(vote=vote, status=VoteReview.Status.EXCLUDED)
            for review in reviews:
                review.status, review.decided_by = VoteReview.Status.EXCLUDED, by
                review.reasons = [*review.reasons, staff]
                review.save()
        else:
            excluded = reviews.filter(status=VoteReview.Status.EXCLUDED)
            battle_ids = list(excluded.values_list("vote__battle_id", flat=True))
            counts.reviews_updated(
                battle_ids,
                lambda: excluded.update(status=VoteReview.Status.REINSTATED, decided_by=by),
            )
        return standing
