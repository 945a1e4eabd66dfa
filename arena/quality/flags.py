"""Reviewing a counted vote just after it commits, and staff decisions on votes and voters.

A vote that fails a check is kept with a VoteReview saying why (and the test's figure) and is
left out of every board by ``Vote.objects.rated()``; it is excluded, not down-weighted, because
a random or one-model voter's votes carry no information about the models, only bias.
Everything about one voter runs behind a row lock on their VoterStanding, so two reviews of the
same voter's votes (or a review and a staff decision) never interleave.
"""

import json
import logging
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

import ratings
from arena.battles import counts
from arena.leaderboards.snapshots import latest_snapshot
from arena.models import Vote, VoteReview, VoterStanding
from arena.quality.checks import CHECKS, Ballot, ballots

log = logging.getLogger(__name__)
_ratings_cache: dict[tuple, dict[int, float]] = {}


def current_ratings() -> dict[int, float]:
    """Contestant pk -> rating on the latest overall human board (empty before the first)."""
    snapshot = latest_snapshot()
    if snapshot is None:
        return {}
    # Keyed by id and time: an id can come back (a rolled-back transaction, a restored backup).
    key = (snapshot.pk, snapshot.completed_at)
    if key not in _ratings_cache:
        rows = (snapshot.results or {}).get("rows", [])
        _ratings_cache.clear()
        _ratings_cache[key] = {
            int(r["contestant_id"]): float(r["rating"]) for r in rows if r.get("rating") is not None
        }
    return _ratings_cache[key]


def _locked_standings(voters: set[tuple[int, str]]) -> dict[tuple[int, str], VoterStanding]:
    """The standings of ``(voter_id, label)`` pairs, created if new, locked in one order (so
    two reviews of overlapping voters cannot deadlock)."""
    VoterStanding.objects.bulk_create(
        [VoterStanding(voter_id=v, label=label) for v, label in sorted(voters)],
        ignore_conflicts=True,  # created by a concurrent review: it exists now
    )
    rows = VoterStanding.objects.select_for_update().filter(
        voter_id__in={v for v, _ in voters}, label__in={label for _, label in voters}
    )  # a batch has one account: few rows beyond those asked for, if any
    locked = {(s.voter_id, s.label): s for s in rows.order_by("voter_id", "label")}
    return {key: locked[key] for key in voters}


def vote_review(*, battle_id: int) -> VoteReview | None:
    """Run every check on the battle's vote once (a second call returns the stored review)."""
    votes_review(battle_ids=[battle_id])
    return VoteReview.objects.filter(vote__battle_id=battle_id).first()


def votes_review(*, battle_ids: list[int]) -> int:
    """Review the counted votes of ``battle_ids`` not reviewed yet, in id order, in one
    transaction: the same checks and sequential test as one at a time, each check reading
    what it needs once for all. Excluded votes leave the counts. Returns how many it reviewed.
    """
    with transaction.atomic():
        votes = Vote.objects.counted().filter(voter_id__isnull=False, review__isnull=True)
        votes = ballots(counts.of_ids(votes, "battle_id", battle_ids))
        if not votes:
            return 0
        standings = _locked_standings({(v.voter_id, v.voter_label) for v in votes})
        done = counts.of_ids(VoteReview.objects.all(), "vote_id", [v.pk for v in votes])
        if done.exists():  # reviewed by a concurrent call while this one waited for the locks
            taken = set(done.values_list("vote_id", flat=True))
            votes = [v for v in votes if v.pk not in taken]
            if not votes:
                return 0
        reviews = _judged(votes, standings, [check(votes) for check in CHECKS])
        for standing in standings.values():  # a batch's voters: few, one statement each
            standing.save(update_fields=[*_STANDING_FIELDS, "updated_at"])
        excluded = [r.vote.battle_id for r in reviews if r.status == VoteReview.Status.EXCLUDED]
        # The insert sends no signals: the excluded votes' counts are taken away before it
        # (adding them back after it, as counts.reviews_updated does, would add nothing).
        counts.counts_add(battle_ids=excluded, sign=-1)
        _insert(reviews)
        return len(reviews)


_STANDING_FIELDS = ["status", "evidence", "reason", "figure", "votes_checked"]


@dataclass(slots=True)
class _Review:
    vote: Ballot
    status: str
    reasons: list[dict]
    surprise: float


def _judged(votes: list[Ballot], standings: dict, failed: list[dict]) -> list[_Review]:
    """Each vote's review, in order: its failed checks and the voter's sequential test, which
    may flag the voter (excluding their earlier votes, stored or in this list)."""
    known = current_ratings()
    codes = {outcome: Vote.Outcome(outcome).code for outcome in Vote.Outcome.values}
    evidences = {k: ratings.VoterEvidence.from_dict(s.evidence) for k, s in standings.items()}
    reviews: list[_Review] = []
    for vote in votes:
        key = (vote.voter_id, vote.voter_label)
        standing, evidence = standings[key], evidences[key]
        reasons = [f[vote.pk] for f in failed if vote.pk in f]
        ratings.observe_vote(
            evidence,
            model_a=str(vote.contestant_a_id),
            model_b=str(vote.contestant_b_id),
            rating_a=known.get(vote.contestant_a_id),
            rating_b=known.get(vote.contestant_b_id),
            outcome=codes[vote.outcome],
        )
        reason, figure = evidence.strongest
        standing.votes_checked += 1
        if standing.status == VoterStanding.Status.WATCHED and evidence.flagged:
            standing.status = VoterStanding.Status.FLAGGED
            standing.reason, standing.figure = reason, round(figure, 3)
            _exclude_earlier(standing)
            _exclude_pending(reviews, standing)
            log.info("voter %s flagged: %s %.2f", standing, reason, figure)
        if standing.votes_excluded:
            reasons.append(_voter_reason(standing))
        status = VoteReview.Status.EXCLUDED if reasons else VoteReview.Status.OK
        reviews.append(_Review(vote, status, reasons, round(figure, 3)))
    for key, standing in standings.items():
        standing.evidence = evidences[key].as_dict()
    return reviews


def _insert(reviews: list[_Review]) -> None:
    """Store new reviews: on PostgreSQL one INSERT of arrays (``bulk_create`` spends longer
    preparing 5,000 rows' values than the server spends storing them)."""
    if connection.vendor != "postgresql":
        VoteReview.objects.bulk_create(
            VoteReview(vote_id=r.vote.pk, status=r.status, reasons=r.reasons, surprise=r.surprise)
            for r in reviews
        )
        return
    now = timezone.now()  # what auto_now_add and auto_now would set
    table = connection.ops.quote_name(VoteReview._meta.db_table)
    columns = "vote_id, status, reasons, surprise, created_at, updated_at"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT v, s, r::jsonb, f, %s, %s "
            "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::float8[]) AS t(v, s, r, f)",
            [
                now,
                now,
                [r.vote.pk for r in reviews],
                [r.status for r in reviews],
                [json.dumps(r.reasons) if r.reasons else "[]" for r in reviews],
                [r.surprise for r in reviews],
            ],
        )


def _voter_reason(standing: VoterStanding) -> dict:
    if standing.status == VoterStanding.Status.EXCLUDED:
        return {"check": "voter_excluded_by_staff", "figure": None, "limit": None}
    return {
        "check": f"voter_{standing.reason}",
        "figure": standing.figure,
        "limit": round(ratings.VOTER_THRESHOLD, 3),
    }


def _exclude_pending(reviews: list[_Review], standing: VoterStanding) -> None:
    """The same for the voter's passed votes reviewed earlier in this call, not stored yet."""
    reason = _voter_reason(standing)
    voter = (standing.voter_id, standing.label)
    for review in reviews:
        own = (review.vote.voter_id, review.vote.voter_label) == voter
        if own and review.status == VoteReview.Status.OK:
            review.status = VoteReview.Status.EXCLUDED
            review.reasons = [*review.reasons, reason]


def _exclude_earlier(standing: VoterStanding) -> int:
    """Exclude the voter's earlier passed votes (reinstated ones stay as staff left them)."""
    n = 0
    reason = _voter_reason(standing)
    for review in VoteReview.objects.filter(
        vote__voter_id=standing.voter_id,
        vote__voter_label=standing.label,
        status=VoteReview.Status.OK,
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
            label = VoteReview.objects.filter(pk=review_id).values_list("vote__voter_label")
            _locked_standings({(voter, label.get()[0])})
        review = VoteReview.objects.select_for_update().get(pk=review_id)
        review.status, review.decided_by = status, by
        if status == VoteReview.Status.EXCLUDED:
            review.reasons = [*review.reasons, {"check": "staff", "figure": None, "limit": None}]
        review.save()
        return review


def standing_set(*, voter_id: int, label: str = "", status: str, by) -> VoterStanding:
    """Staff: exclude every vote of a voter, or trust them (reinstate their excluded votes; the
    sequential test no longer flags them, the per-vote checks still apply to new votes)."""
    if status not in (VoterStanding.Status.EXCLUDED, VoterStanding.Status.TRUSTED):
        raise ValueError(f"status: expected 'excluded' or 'trusted', got {status!r}")
    with transaction.atomic():
        standing = _locked_standings({(voter_id, label)})[voter_id, label]
        standing.status, standing.decided_by = status, by
        standing.save()
        own = {"voter_id": voter_id, "voter_label": label}
        reviews = VoteReview.objects.filter(
            vote__voter_id=voter_id, vote__voter_label=label
        ).select_for_update()
        if status == VoterStanding.Status.EXCLUDED:
            staff = _voter_reason(standing)
            for vote in Vote.objects.counted().filter(**own, review__isnull=True):
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
