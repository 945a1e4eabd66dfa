"""The vote-quality staff page in a browser: a flagged voter and their votes, reinstated."""

import pytest
from django.utils import timezone

from arena.models import Battle, Contestant, LeaderboardSnapshot, Vote, VoteReview, VoterStanding
from arena.quality.flags import vote_review
from tests.factories import make_contestant, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_reinstate_a_flagged_voter(live_server, page, artifacts_dir):
    staff = make_user("stella", is_staff=True)
    voter = make_user("victor")
    strong = make_contestant(name="Strong", kind=Contestant.Kind.RECORDED)
    weak = make_contestant(name="Weak", kind=Contestant.Kind.RECORDED)
    LeaderboardSnapshot.objects.create(
        method="bt",
        results={
            "rows": [{"contestant_id": c.pk, "rating": r} for c, r in ((strong, 1200), (weak, 900))]
        },
        status=LeaderboardSnapshot.Status.COMPLETE,
        completed_at=timezone.now(),
    )
    for _ in range(6):
        battle = Battle.objects.create(
            contestant_a=strong,
            contestant_b=weak,
            user=voter,
            status=Battle.Status.VOTED,
            ready_at=timezone.now(),
        )
        Vote.objects.create(battle=battle, voter=voter, outcome="b", seconds_to_vote=30)
        vote_review(battle_id=battle.pk)
    assert VoterStanding.objects.get(voter=voter).status == VoterStanding.Status.FLAGGED

    page.goto(live_server.url + "/accounts/login/?next=/staff/quality/")
    page.get_by_label("Username").fill("stella")
    page.get_by_label("Password").fill("pw-stella-123")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/staff/quality/")
    row = page.locator(f'#quality-voters tr[data-voter="{voter.pk}"]')
    assert "Flagged by the sequential test" in row.inner_text()
    assert "always picks Weak" in row.inner_text()
    assert page.locator("#quality-votes tbody tr").count() == 6
    page.screenshot(path=str(artifacts_dir / "quality-flagged.png"), full_page=True)

    row.get_by_role("button", name="Reinstate voter").click()
    page.wait_for_url(live_server.url + "/staff/quality/")
    assert "boards follow at the next refresh" in page.inner_text("main")
    assert (
        "Reinstated by staff"
        in page.locator(f'#quality-voters tr[data-voter="{voter.pk}"]').inner_text()
    )
    page.screenshot(path=str(artifacts_dir / "quality-reinstated.png"), full_page=True)
    assert set(VoteReview.objects.values_list("status", flat=True)) == {"reinstated"}
    assert Vote.objects.rated().count() == 6
    assert staff.pk
