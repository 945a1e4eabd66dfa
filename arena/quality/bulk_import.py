"""The vote-quality checks for imported votes, in bulk (``arena.exchange`` calls this after an
import, in the import's transaction).

The same checks as the online review (``arena.quality.flags.vote_review``), run per voter in
vote-id order, with the same outcome: a voter whose sequential test crosses the threshold has
all their votes excluded, each with the reason and the test's figure.

* Votes of an account (the arena format's ``voter``): every per-vote check, and the voter's
  standing updated once (one row lock per voter, not per vote); a review per vote, as online.
* Votes that carry only the file's voter id (``voter_label``: FastChat ``judge``, LLMFAO
  ``worker``, Open WebUI ``user_id``): the sequential test and the votes-per-day count per
  label (too fast and repeated prompts need timings and prompts these formats do not carry).
  There is no account, so no standing: only the excluded votes get a review (the staff page
  lists them; reinstating one works as for any vote); passing votes get none, or an import of
  millions of votes would write millions of rows that say nothing.

Ratings: the latest overall board's; when it does not rate every imported model (an arena
filled by this import), a Bradley-Terry fit of the imported votes instead.
"""

import bisect
from collections import defaultdict
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db.models import Q

import ratings
from arena.battles import counts
from arena.leaderboards.snapshots import latest_snapshot
from arena.models import Vote, VoteReview, VoterStanding
from arena.quality.checks import CHECKS, ballots
from arena.quality.flags import _exclude_earlier, _locked_standings, _voter_reason

BATCH = 5000


def _board_ratings() -> dict[int, float]:
    """Contestant pk -> rating on the latest overall human board (read afresh: an import is
    rare, and ``flags.current_ratings``' per-process cache is the online path's)."""
    snapshot = latest_snapshot()
    rows = (snapshot.results or {}).get("rows", []) if snapshot is not None else []
    return {
        int(r["contestant_id"]): float(r["rating"]) for r in rows if r.get("rating") is not None
    }


def _models(rows: list[dict]) -> set[int]:
    return {r["battle__contestant_a_id"] for r in rows} | {
        r["battle__contestant_b_id"] for r in rows
    }


def _fit(rows: list[dict]) -> dict[int, float]:
    """Bradley-Terry ratings (Elo scale) of the votes in ``rows``."""
    ids = sorted(_models(rows))
    index = {c: k for k, c in enumerate(ids)}
    a = np.array([index[r["battle__contestant_a_id"]] for r in rows])
    b = np.array([index[r["battle__contestant_b_id"]] for r in rows])
    o = np.array([Vote.Outcome(r["outcome"]).code for r in rows])
    board = ratings.leaderboard(len(ids), a, b, o, ci="none")
    return {ids[m]: float(x) for m, x in zip(board.model, board.rating, strict=True)}


def _imported_ratings(by_voter: dict[tuple, list[dict]]) -> dict[int, float]:
    """The latest board's ratings when it rates every imported model; else a fit of the
    imported votes, refitted without the voters the test flags under it until that set stops
    changing (bad voters' votes would otherwise flatten the very ratings they are judged by)."""
    rows = [r for voter_rows in by_voter.values() for r in voter_rows]
    known = _board_ratings()
    models = _models(rows)
    if known and models <= known.keys():
        return known
    flagged: set[tuple] = set()
    fitted = _fit(rows)
    for _ in range(3):
        now = {
            key
            for key, voter_rows in by_voter.items()
            if list(_sequential(voter_rows, fitted, ratings.VoterEvidence()))[-1][2] is not None
        }
        if now == flagged:
            break
        flagged = now
        kept = [r for key, voter_rows in by_voter.items() if key not in flagged for r in voter_rows]
        fitted = _fit(kept) if kept else fitted
    return {m: fitted.get(m, 1000.0) for m in models}  # a model only flagged voters rated


def _sequential(rows: list[dict], known: dict, evidence: ratings.VoterEvidence):
    """Feed one voter's votes (in order) to ``evidence``; yields (row, strongest figure, the
    (reason, figure) at the first crossing or None)."""
    crossed = None
    for row in rows:
        a, b = row["battle__contestant_a_id"], row["battle__contestant_b_id"]
        ratings.observe_vote(
            evidence,
            model_a=str(a),
            model_b=str(b),
            rating_a=known.get(a),
            rating_b=known.get(b),
            outcome=Vote.Outcome(row["outcome"]).code,
        )
        reason, figure = evidence.strongest
        if crossed is None and evidence.flagged:
            crossed = (reason, round(figure, 3))
        yield row, figure, crossed


def _per_day(rows: list[dict]) -> list[int]:
    """Votes by the voter in the 24 hours up to each vote, counted by id (as ``too_many_today``)."""
    seen: list = []
    out = []
    for row in rows:
        bisect.insort(seen, row["created_at"])
        out.append(len(seen) - bisect.bisect_right(seen, row["created_at"] - timedelta(days=1)))
    return out


def _account(
    voter: tuple[int, str], rows: list[dict], known: dict
) -> tuple[list[VoteReview], bool]:
    standing = _locked_standings({voter})[voter]
    flagged = False
    votes = ballots(counts.of_ids(Vote.objects.all(), "id", [r["id"] for r in rows]))
    failed = [check(votes) for check in CHECKS]  # each: vote id -> reason, for the votes it fails
    evidence = ratings.VoterEvidence.from_dict(standing.evidence)
    reviews = []
    for row, figure, crossed in _sequential(rows, known, evidence):
        reasons = [f[row["id"]] for f in failed if row["id"] in f]
        standing.votes_checked += 1
        if crossed and standing.status == VoterStanding.Status.WATCHED:
            standing.status = VoterStanding.Status.FLAGGED
            standing.reason, standing.figure = crossed
            flagged = True
            _exclude_earlier(standing)  # stored before this import
            for earlier in reviews:  # and this import's, not stored yet
                earlier.status = VoteReview.Status.EXCLUDED
                earlier.reasons.append(_voter_reason(standing))
        if standing.votes_excluded:
            reasons.append(_voter_reason(standing))
        status = VoteReview.Status.EXCLUDED if reasons else VoteReview.Status.OK
        reviews.append(
            VoteReview(vote_id=row["id"], status=status, reasons=reasons, surprise=round(figure, 3))
        )
    standing.evidence = evidence.as_dict()
    standing.save()
    return reviews, flagged


def _label(rows: list[dict], known: dict) -> list[VoteReview]:
    limit = settings.ARENA_QUALITY_VOTES_PER_DAY
    evidence = ratings.VoterEvidence()
    checked = list(_sequential(rows, known, evidence))
    crossed = checked[-1][2]
    reviews = []
    for (row, figure, _), n in zip(checked, _per_day(rows), strict=True):
        reasons = []
        if n > limit:
            reasons.append({"check": "votes_per_day", "figure": n, "limit": limit})
        if crossed:
            reason, value = crossed
            threshold = round(ratings.VOTER_THRESHOLD, 3)
            reasons.append({"check": f"voter_{reason}", "figure": value, "limit": threshold})
        if reasons:
            reviews.append(
                VoteReview(
                    vote_id=row["id"],
                    status=VoteReview.Status.EXCLUDED,
                    reasons=reasons,
                    surprise=round(figure, 3),
                )
            )
    return reviews


def review_imported(*, after_vote_id: int) -> dict[str, int]:
    """Check the counted, not yet reviewed votes with an id above ``after_vote_id`` that carry
    a voter (account or label). Returns how many were checked and excluded, and how many
    voters (accounts and labels) the sequential test flagged."""
    rows = list(
        Vote.objects.counted()
        .filter(id__gt=after_vote_id, review__isnull=True)
        .filter(Q(voter__isnull=False) | ~Q(voter_label=""))
        .order_by("id")
        .values(
            "id",
            "battle_id",
            "voter_id",
            "voter_label",
            "outcome",
            "created_at",
            "battle__contestant_a_id",
            "battle__contestant_b_id",
        )
    )
    out = {"checked": len(rows), "excluded": 0, "voters_flagged": 0}
    if not rows:
        return out
    by_voter: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        key = (
            ("account", (row["voter_id"], row["voter_label"]))
            if row["voter_id"]
            else ("label", row["voter_label"])
        )
        by_voter[key].append(row)
    known = _imported_ratings(by_voter)
    battle_of = {row["id"]: row["battle_id"] for row in rows}
    reviews: list[VoteReview] = []
    for (kind, voter), voter_rows in by_voter.items():
        if kind == "account":
            new, flagged = _account(voter, voter_rows, known)
        else:
            new = _label(voter_rows, known)
            flagged = any(r["check"].startswith("voter_") for x in new for r in x.reasons)
        out["voters_flagged"] += flagged
        reviews.extend(new)
        if len(reviews) >= BATCH:
            out["excluded"] += _write(reviews, battle_of)
            reviews = []
    out["excluded"] += _write(reviews, battle_of)
    return out


def _write(reviews: list[VoteReview], battle_of: dict[int, int]) -> int:
    excluded = [battle_of[r.vote_id] for r in reviews if r.status == VoteReview.Status.EXCLUDED]
    # The insert sends no signals: the excluded votes leave the counts first (the votes were
    # read unreviewed in this import's transaction, so each review is this one).
    counts.counts_add(battle_ids=excluded, sign=-1)
    VoteReview.objects.bulk_create(reviews)
    return len(excluded)
