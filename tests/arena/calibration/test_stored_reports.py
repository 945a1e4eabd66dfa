"""Calibration reports computed by the task arena.calibration_refresh and stored: the page and
the API serve them, say "computing" or "updating" meanwhile, and never compute on the request."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from arena.calibration import store
from arena.calibration.report import STEPS, calibration_report
from arena.calibration.tasks import calibration_refresh_task
from arena.models import CalibrationReport, Judge
from tests.arena.calibration.test_calibration import Arena

pytestmark = pytest.mark.django_db

N = 200
B = 20


@pytest.fixture(autouse=True)
def _small_reports(settings):
    settings.ARENA_CALIBRATION_RESAMPLES = N
    settings.ARENA_CALIBRATION_BOARD_RESAMPLES = B


@pytest.fixture
def arena():
    data = Arena()
    i0, i1 = data.items
    data.judged(data.battle(i0, data.x, data.y, "a"), "A")
    data.judged(data.battle(i0, data.x, data.z, "b"), "A")
    data.judged(data.battle(i1, data.y, data.z, "tie"), "tie")
    data.battle(i0, data.x, data.y, "a")
    return data


def _synchronous(judge):
    """The report computed on the spot, as it reads once stored as JSON."""
    report = calibration_report(judge=judge, n_resamples=N, board_resamples=B)
    return json.loads(json.dumps(report))


def _run_queued(capture, client, url, params=None):
    """A request whose queued computations run once it is answered (as a worker would)."""
    with capture(execute=True) as callbacks:
        response = client.get(url, params or {})
    return response, callbacks


def test_the_first_request_queues_one_computation_and_shows_computing(
    client, alice, arena, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    with django_capture_on_commit_callbacks() as callbacks:
        page = client.get("/calibration/", {"judge": "Tiny judge"})
        again = client.get("/calibration/", {"judge": "Tiny judge"})
        api = client.get("/api/calibration/", {"judge": "Tiny judge"})
    assert len(callbacks) == 1  # one computation queued, whoever asks meanwhile
    assert CalibrationReport.objects.get().status == "queued"

    html = page.content.decode()
    assert page.status_code == 200 and page["Refresh"] == "3"
    assert "Computing the calibration report of Tiny judge" in html
    assert 'class="run-progress cal-progress"' in html
    assert 'data-run-url="/api/calibration/progress/?judge=Tiny+judge"' in html
    assert 'data-status="queued"' in html
    assert '<p class="verdict">' not in html
    assert again.status_code == 200

    assert api.status_code == 202
    body = api.json()
    assert body["status"] == "computing" and body["judges"] == []
    assert body["reports"] == [
        {"judge": "Tiny judge", "state": "computing", "computed_at": None, "error": ""}
    ]
    assert body["progress_url"] == "/api/calibration/progress/?judge=Tiny+judge"

    progress = client.get(body["progress_url"]).json()
    assert progress == {
        "status": "queued",
        "status_display": "queued",
        "finished": False,
        "total": len(STEPS),
        "done": 0,
        "failed": 0,
        "message": "",
    }


def test_after_the_task_the_page_and_api_serve_the_numbers_of_the_synchronous_report(
    client, alice, arena, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    first, _ = _run_queued(django_capture_on_commit_callbacks, client, "/api/calibration/")
    assert first.status_code == 202

    row = CalibrationReport.objects.get()
    assert (row.status, row.steps_done, row.steps_total) == ("complete", len(STEPS), len(STEPS))
    assert row.fingerprint == store.report_fingerprint(arena.judge, store.report_settings())
    assert row.settings == {"rng": 0, "n_resamples": N, "board_resamples": B}

    api = client.get("/api/calibration/")
    assert api.status_code == 200
    body = api.json()
    assert body["status"] == "current"
    assert body["judges"] == [_synchronous(arena.judge)]
    assert body["reports"][0]["state"] == "current"

    page = client.get("/calibration/")
    html = page.content.decode()
    assert "Refresh" not in page
    assert f'<p class="verdict">{body["judges"][0]["verdict"]}</p>' in html
    assert "cal-progress" not in html and "Updating" not in html
    assert client.get("/api/calibration/progress/").json()["finished"] is True
    assert CalibrationReport.objects.count() == 1  # nothing queued again


def test_a_new_vote_marks_the_report_updating_and_it_is_recomputed(
    client, alice, arena, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    _run_queued(django_capture_on_commit_callbacks, client, "/calibration/")
    before = client.get("/api/calibration/").json()["judges"][0]
    arena.battle(arena.items[1], arena.z, arena.y, "b")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        api = client.get("/api/calibration/")
        page = client.get("/calibration/")
    assert len(callbacks) == 1
    assert api.status_code == 200
    body = api.json()
    assert body["status"] == "updating"
    assert body["reports"][0]["state"] == "updating"
    assert body["judges"] == [before]  # the stale one, while the new one computes
    html = page.content.decode()
    assert "<strong>Updating.</strong>" in html and "Refresh" not in page
    assert f'<p class="verdict">{before["verdict"]}</p>' in html
    assert "data-reload-when-done" in html

    after = client.get("/api/calibration/").json()
    assert after["status"] == "current"
    assert after["judges"][0]["data"]["human_votes"] == before["data"]["human_votes"] + 1
    assert after["judges"] == [_synchronous(arena.judge)]
    # The old report is gone once the new one is stored.
    assert list(CalibrationReport.objects.values_list("status", flat=True)) == ["complete"]


def test_every_judge_is_stored_apart_and_matches_its_own_report(
    client, alice, arena, django_capture_on_commit_callbacks
):
    Judge.objects.create(name="Silent judge")
    client.force_login(alice)
    _run_queued(django_capture_on_commit_callbacks, client, "/api/calibration/")
    body = client.get("/api/calibration/").json()
    assert [r["judge"]["name"] for r in body["judges"]] == ["Silent judge", "Tiny judge"]
    assert body["judges"] == _synchronous(None)["judges"]
    one = client.get("/api/calibration/", {"judge": "Tiny judge"}).json()
    assert one["judges"] == [body["judges"][1]]


def test_a_failed_computation_is_shown_and_not_retried_at_once(
    client, alice, arena, django_capture_on_commit_callbacks, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("no luck")

    monkeypatch.setattr(store, "_judge_report", broken)
    client.force_login(alice)
    _run_queued(django_capture_on_commit_callbacks, client, "/calibration/")
    row = CalibrationReport.objects.get()
    assert row.status == "failed" and "no luck" in row.message

    with django_capture_on_commit_callbacks() as callbacks:
        page = client.get("/calibration/")
        api = client.get("/api/calibration/")
    assert callbacks == []
    assert "could not be computed" in page.content.decode() and "Refresh" not in page
    assert api.status_code == 200 and api.json()["status"] == "failed"
    assert "no luck" in api.json()["reports"][0]["error"]

    CalibrationReport.objects.update(created_at=timezone.now() - dt.timedelta(hours=1))
    monkeypatch.undo()
    _run_queued(django_capture_on_commit_callbacks, client, "/calibration/")
    assert client.get("/api/calibration/").json()["status"] == "current"


def test_an_abandoned_computation_is_queued_again(
    client, alice, arena, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    with django_capture_on_commit_callbacks():
        client.get("/calibration/")  # queued, and its worker never runs it
    CalibrationReport.objects.update(
        status="running", started_at=timezone.now() - dt.timedelta(hours=1)
    )
    _run_queued(django_capture_on_commit_callbacks, client, "/calibration/")
    statuses = sorted(CalibrationReport.objects.values_list("status", flat=True))
    assert statuses == ["complete"]  # the abandoned one is cleared when the new one lands


def test_the_task_does_nothing_for_a_missing_or_claimed_report(arena):
    assert calibration_refresh_task.apply(args=(12345,)).get() is None
    row = CalibrationReport.objects.create(judge=arena.judge, fingerprint="x", status="running")
    assert calibration_refresh_task.apply(args=(row.pk,)).get() is None
    row.refresh_from_db()
    assert row.status == "running"


def test_the_progress_api_needs_a_session(client, arena):
    response = client.get("/api/calibration/progress/")
    assert response.status_code == 401
    assert client.get("/api/calibration/progress/", {"judge": "Nobody"}).status_code == 401
