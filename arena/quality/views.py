"""The staff page of vote quality: flagged voters and excluded votes, and the decisions on them."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

import ratings
from arena.core.access import staff_page
from arena.models import Contestant, VoteReview, VoterStanding
from arena.quality.flags import review_set, standing_set

STAFF_ONLY = "Vote quality is for staff."
SHOWN = 200


@staff_page(STAFF_ONLY)
@never_cache
@require_GET
def quality_index(request):
    voters = list(
        VoterStanding.objects.exclude(status=VoterStanding.Status.WATCHED)
        .select_related("voter", "decided_by")
        .order_by("-updated_at")[:SHOWN]
    )
    _label_reasons(voters)
    votes = list(
        VoteReview.objects.exclude(status=VoteReview.Status.OK)
        .select_related("vote__voter", "vote__battle", "decided_by")
        .order_by("-vote_id")[:SHOWN]
    )
    _label_checks(votes)
    context = {
        "voters": voters,
        "votes": votes,
        "threshold": round(ratings.VOTER_THRESHOLD, 2),
        "counts": {
            status: VoteReview.objects.filter(status=status).count()
            for status in VoteReview.Status.values
        },
    }
    return render(request, "arena/quality.html", context)


def _label_reasons(voters: list[VoterStanding]) -> None:
    """Name the alternative that flagged each voter ("always picks <model>"): staff see names."""
    pks = {int(s.reason.split(":", 1)[1]) for s in voters if s.reason.startswith("favourite:")}
    names = dict(Contestant.objects.filter(pk__in=pks).values_list("pk", "name"))
    for s in voters:
        if s.reason.startswith("favourite:"):
            pk = int(s.reason.split(":", 1)[1])
            s.reason_label = f"always picks {names.get(pk, f'model {pk}')}"
        else:
            s.reason_label = {"random": "votes at random"}.get(s.reason, s.reason)


CHECK_LABELS = {
    "too_fast": "voted faster than both answers can be read (s)",
    "votes_per_day": "votes in 24 hours",
    "repeated_prompt": "prompt already voted on",
    "voter_random": "voter votes at random",
    "voter_excluded_by_staff": "voter excluded by staff",
    "staff": "excluded by staff",
}


def _label_checks(reviews: list[VoteReview]) -> None:
    """Each reason's words for staff (the stored code stays as it is: "voter_favourite:4")."""
    prefix = "voter_favourite:"
    pks = {
        int(c["check"][len(prefix) :])
        for r in reviews
        for c in r.reasons
        if c.get("check", "").startswith(prefix)
    }
    names = dict(Contestant.objects.filter(pk__in=pks).values_list("pk", "name"))
    for r in reviews:
        for c in r.reasons:
            code = c.get("check", "")
            if code.startswith(prefix):
                pk = int(code[len(prefix) :])
                c["label"] = f"voter always picks {names.get(pk, f'model {pk}')}"
            else:
                c["label"] = CHECK_LABELS.get(code, code)


@staff_page(STAFF_ONLY)
@require_POST
def quality_vote(request, review_id: int):
    get_object_or_404(VoteReview, pk=review_id)
    status = request.POST.get("status", "")
    try:
        review_set(review_id=review_id, status=status, by=request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, f"Vote {review_id} {status}; boards follow at the next refresh.")
    return redirect("quality_index")


@staff_page(STAFF_ONLY)
@require_POST
def quality_voter(request, voter_id: int):
    label = request.POST.get("label", "")  # external battles' voter behind this account
    get_object_or_404(VoterStanding, voter_id=voter_id, label=label)
    status = request.POST.get("status", "")
    try:
        standing_set(voter_id=voter_id, label=label, status=status, by=request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, f"Voter {voter_id} {status}; boards follow at the next refresh.")
    return redirect("quality_index")
