import random

import pytest
from django.contrib.auth import get_user_model

from arena.battles.services import vote_record
from arena.evalsets.voting import NoPairLeft, evalset_next_battle
from arena.models import Answer, Battle, Category, PromptItem, PromptSet, Vote
from tests.factories import make_contestant

pytestmark = pytest.mark.django_db

NAMES = ["Heron Seven", "Marten Pro", "Lynx Lite"]


@pytest.fixture
def users():
    make = get_user_model().objects.create_user
    return {name: make(name, password=f"pw-{name}-123") for name in ("alice", "bob", "carol")}


@pytest.fixture
def prompt_set():
    contestants = [make_contestant(name=n, kind="recorded") for n in NAMES]
    writing = Category.objects.create(slug="writing", name="Writing")
    prompt_set = PromptSet.objects.create(name="Support replies")
    for i in range(2):
        item = PromptItem.objects.create(
            prompt_set=prompt_set, external_id=f"p{i}", text=f"Prompt {i}", category=writing
        )
        for c in contestants:
            Answer.objects.create(item=item, contestant=c, text=f"**{c.pk}** says hi to {i}")
    return prompt_set


def _pair(battle):
    return (battle.prompt_item_id, frozenset((battle.contestant_a_id, battle.contestant_b_id)))


def test_a_voter_gets_every_pair_once_then_is_told_so(users, prompt_set):
    rng = random.Random(3)
    seen = set()
    for _ in range(6):  # 2 prompts x 3 pairs
        battle = evalset_next_battle(voter=users["alice"], prompt_set=prompt_set, rng=rng)
        assert battle.status == Battle.Status.READY
        assert battle.answer_a.contestant_id == battle.contestant_a_id
        assert battle.answer_b.item_id == battle.prompt_item_id
        assert _pair(battle) not in seen
        seen.add(_pair(battle))
        vote_record(battle_id=battle.pk, user=users["alice"], outcome="a")
    with pytest.raises(NoPairLeft, match="every pair"):
        evalset_next_battle(voter=users["alice"], prompt_set=prompt_set, rng=rng)


def test_an_unvoted_pair_is_served_again_instead_of_a_new_one(users, prompt_set):
    first = evalset_next_battle(voter=users["alice"], prompt_set=prompt_set)
    again = evalset_next_battle(voter=users["alice"], prompt_set=prompt_set)
    assert first.pk == again.pk
    assert Battle.objects.count() == 1


def test_pairs_with_the_fewest_votes_come_first(users, prompt_set):
    rng = random.Random(5)
    bob_pairs = set()
    for _ in range(5):
        battle = evalset_next_battle(voter=users["bob"], prompt_set=prompt_set, rng=rng)
        vote_record(battle_id=battle.pk, user=users["bob"], outcome="tie")
        bob_pairs.add(_pair(battle))
    # One pair has no vote yet: alice must get exactly that one.
    battle = evalset_next_battle(voter=users["alice"], prompt_set=prompt_set, rng=rng)
    assert _pair(battle) not in bob_pairs
    # Several voters may vote the same pair.
    vote_record(battle_id=battle.pk, user=users["alice"], outcome="b")
    nxt = evalset_next_battle(voter=users["alice"], prompt_set=prompt_set, rng=rng)
    assert _pair(nxt) in bob_pairs


def test_the_vote_page_hides_names_until_the_vote(client, users, prompt_set):
    client.force_login(users["alice"])
    page = client.get(f"/evalsets/{prompt_set.pk}/vote/")
    assert page.status_code == 200
    html = page.content.decode()
    for name in NAMES:
        assert name not in html
    battle = Battle.objects.get()
    assert client.get(f"/battles/{battle.pk}/").status_code == 403
    response = client.post(
        f"/evalsets/{prompt_set.pk}/vote/", {"battle": battle.pk, "outcome": "a"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/battles/{battle.pk}/"
    result = client.get(response["Location"]).content.decode()
    assert battle.contestant_a.name in result and battle.contestant_b.name in result
    assert battle.answer_a.text in result and battle.prompt_item.text in result  # the transcript
    again = client.post(
        f"/evalsets/{prompt_set.pk}/vote/", {"battle": battle.pk, "outcome": "b"}, follow=True
    )
    assert "already voted" in again.content.decode()
    assert Vote.objects.get().outcome == "a"


def test_someone_elses_pair_cannot_be_voted_or_revealed(client, users, prompt_set):
    battle = evalset_next_battle(voter=users["alice"], prompt_set=prompt_set)
    client.force_login(users["carol"])
    response = client.post(
        f"/evalsets/{prompt_set.pk}/vote/", {"battle": battle.pk, "outcome": "a"}
    )
    assert response.status_code == 403
    assert client.get(f"/battles/{battle.pk}/").status_code == 403
    assert not Vote.objects.exists()


def test_signed_out_people_are_sent_to_sign_in(client, prompt_set):
    response = client.get(f"/evalsets/{prompt_set.pk}/vote/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_refused_result_page_says_why_in_the_sites_layout(client, users, prompt_set):
    battle = evalset_next_battle(voter=users["alice"], prompt_set=prompt_set)
    client.force_login(users["carol"])
    response = client.get(f"/battles/{battle.pk}/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "This battle belongs to someone else." in html
    assert 'class="brand"' in html  # the site's own page, not a bare error


@pytest.mark.parametrize("raw", ["abc", "1e9", "99999999999999999999", "-1", "0", "", "１２"])
def test_a_malformed_battle_id_is_a_400_and_stores_nothing(client, users, prompt_set, raw):
    evalset_next_battle(voter=users["alice"], prompt_set=prompt_set)
    client.force_login(users["alice"])
    response = client.post(f"/evalsets/{prompt_set.pk}/vote/", {"battle": raw, "outcome": "a"})
    assert response.status_code == 400
    assert "named no valid battle" in response.content.decode()
    assert not Vote.objects.exists()


def test_a_battle_of_another_set_or_a_live_battle_cannot_be_voted_through_a_sets_url(
    client, users, prompt_set
):
    mine = evalset_next_battle(voter=users["alice"], prompt_set=prompt_set)
    other_set = PromptSet.objects.create(name="Another set")
    live = Battle.objects.create(
        user=users["alice"],
        contestant_a=mine.contestant_a,
        contestant_b=mine.contestant_b,
        mode=Battle.Mode.LIVE,
        status=Battle.Status.READY,
    )
    client.force_login(users["alice"])
    wrong_set = client.post(f"/evalsets/{other_set.pk}/vote/", {"battle": mine.pk, "outcome": "a"})
    through_set = client.post(
        f"/evalsets/{prompt_set.pk}/vote/", {"battle": live.pk, "outcome": "a"}
    )
    assert wrong_set.status_code == 404
    assert through_set.status_code == 404
    assert not Vote.objects.exists()
    right = client.post(f"/evalsets/{prompt_set.pk}/vote/", {"battle": mine.pk, "outcome": "a"})
    assert right.status_code == 302
    assert Vote.objects.get().battle_id == mine.pk
