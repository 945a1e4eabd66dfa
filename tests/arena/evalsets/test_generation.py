"""Filling an eval set's missing answers, against the real local upstream server."""

import io
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.template.loader import render_to_string
from django.urls import include, path
from django.utils import timezone

import arena.evalsets.admin  # noqa: F401  (registers RunAdmin before the URLs below)
from arena.evalsets import generation as generation_module
from arena.evalsets.admin import generate_missing_answers
from arena.evalsets.generation import (
    GenerationError,
    answers_generate,
    answers_missing,
    generation_run_create,
    generation_run_execute,
    generation_runs_recent,
)
from arena.evalsets.tasks import generate_answers_task, generation_run_enqueue
from arena.models import Answer, Contestant, PromptItem, PromptSet, Run
from arena.providers import client as providers_module
from arena.providers import complete_chat
from tests.factories import make_contestant
from tests.upstream import NORMAL_TEXT, upstream_fixture  # noqa: F401

# The JSON endpoint and the admin as arena/urls.py includes them (tests here use these URLs
# through @pytest.mark.urls, so they do not depend on the project's URL wiring).
urlpatterns = [
    path("", include("arena.evalsets.urls")),
    path("admin/", admin.site.urls),
    path("", include("arena.urls")),
]
THESE_URLS = pytest.mark.urls(__name__)

pytestmark = pytest.mark.django_db


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _fast(monkeypatch, settings):
    monkeypatch.setattr(generation_module, "RETRY_BASE", 0.01)
    monkeypatch.setattr(providers_module, "RETRY_BACKOFF", 0.01)
    settings.ARENA_TIMEOUT_CONNECT = 1.0
    settings.ARENA_TIMEOUT_FIRST_TOKEN = 5.0  # the hang test shortens it
    settings.ARENA_TIMEOUT_TOTAL = 10.0


@pytest.fixture
def prompt_set():
    prompt_set = PromptSet.objects.create(name="Support replies")
    for i in range(3):
        PromptItem.objects.create(prompt_set=prompt_set, external_id=f"p{i}", text=f"Prompt {i}?")
    return prompt_set


@pytest.fixture
def model(upstream):
    """``model(name, model_id, **fields)``: a contestant served by the local upstream."""

    def make(name: str, model_id: str, **fields) -> Contestant:
        fields.setdefault("kind", Contestant.Kind.OPENAI)
        return make_contestant(name=name, base_url=upstream.url, model_id=model_id, **fields)

    return make


@pytest.fixture
def calls(monkeypatch):
    """Counts complete_chat calls in flight per upstream model id, and their maximum."""
    state = {"now": {}, "max": {}, "max_total": 0}
    real = complete_chat

    async def counting(endpoint, messages, **kwargs):
        key = endpoint.model_id
        state["now"][key] = state["now"].get(key, 0) + 1
        state["max"][key] = max(state["max"].get(key, 0), state["now"][key])
        state["max_total"] = max(state["max_total"], sum(state["now"].values()))
        try:
            return await real(endpoint, messages, **kwargs)
        finally:
            state["now"][key] -= 1

    monkeypatch.setattr(generation_module, "complete_chat", counting)
    return state


def test_it_fills_every_missing_answer_and_a_second_run_calls_nobody(prompt_set, model, upstream):
    plain = model("Heron Seven", "normal")
    echo = model("Echo Pro", "echo", system_prompt="Be brief.", temperature=0.2, kind="anthropic")
    first = prompt_set.items.get(external_id="p0")
    Answer.objects.create(item=first, contestant=plain, text="Stored before.")

    result = answers_generate(prompt_set=prompt_set, contestants=[plain, echo])

    assert (result.total, result.stored, result.failed) == (5, 5, 0)
    assert Answer.objects.get(item=first, contestant=plain).text == "Stored before."
    assert len(upstream.requests_for("normal")) == 2
    stored = Answer.objects.get(item=first, contestant=echo)
    assert stored.text == "Echo: Prompt 0?"  # the item's text, as the one user message
    assert stored.tokens_out == 3 and stored.total_ms is not None
    body = upstream.requests_for("echo")[0].body
    assert body["system"] == "Be brief." and body["temperature"] == 0.2
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert Answer.objects.get(item__external_id="p2", contestant=plain).text == NORMAL_TEXT

    requests = len(upstream.requests)
    again = answers_generate(prompt_set=prompt_set, contestants=[plain, echo])
    assert (again.total, again.stored, again.summary()) == (0, 0, "Nothing was missing.")
    assert len(upstream.requests) == requests
    assert Answer.objects.count() == 6


def test_a_flaky_endpoint_is_retried_after_the_providers_own_retries_then_stored(
    prompt_set, model, upstream
):
    # The provider tries 3 times before giving up; the 5th request succeeds.
    flaky = model("Flaky", "flaky:fails=4")
    item = prompt_set.items.get(external_id="p0")
    for other in prompt_set.items.exclude(pk=item.pk):
        Answer.objects.create(item=other, contestant=flaky, text="already")

    result = answers_generate(prompt_set=prompt_set, contestants=[flaky])

    assert (result.stored, result.failed) == (1, 0)
    assert len(upstream.requests_for("flaky:fails=4")) == 5
    assert Answer.objects.get(item=item, contestant=flaky).text == NORMAL_TEXT


def test_failing_and_hanging_endpoints_are_recorded_as_failed_without_an_answer(
    prompt_set, model, upstream, monkeypatch, settings
):
    monkeypatch.setattr(generation_module, "RETRIES", 1)
    settings.ARENA_TIMEOUT_FIRST_TOKEN = 0.3
    refused = model("Refused", "error:status=400")
    hanging = model("Hanging", "hang")
    good = model("Good", "normal")
    run = generation_run_create(prompt_set=prompt_set, contestants=[refused, hanging, good])
    assert (run.status, run.total) == (Run.Status.QUEUED, 9)

    result = generation_run_execute(run_id=run.pk)

    assert (result.stored, result.failed) == (3, 6)
    assert set(Answer.objects.values_list("contestant__name", flat=True)) == {"Good"}
    assert len(upstream.requests_for("error:status=400")) == 3  # final at once: not retried
    assert len(upstream.requests_for("hang")) == 6  # a timeout is retried (RETRIES=1)
    run.refresh_from_db()
    assert (run.status, run.total, run.done, run.failed) == (Run.Status.DONE, 9, 3, 6)
    assert run.finished_at is not None
    lines = run.message.splitlines()
    assert lines[0] == "Stored 3 answers, 6 failed."
    assert "Refused/p0: answered HTTP 400" in lines
    assert "Hanging/p1: timed out before the first token (after 2 attempts)" in lines


def test_an_endpoint_failing_every_retry_is_given_up_for_the_rest_of_the_run(
    prompt_set, model, upstream, monkeypatch, settings
):
    monkeypatch.setattr(generation_module, "RETRIES", 1)
    monkeypatch.setattr(generation_module, "GIVE_UP_AFTER", 2)
    settings.ARENA_GENERATE_CONCURRENCY = 1
    for i in range(3, 6):
        PromptItem.objects.create(prompt_set=prompt_set, external_id=f"p{i}", text=f"More {i}")
    down = model("Down", "error")  # HTTP 500: transient, retried

    result = answers_generate(prompt_set=prompt_set, contestants=[down])

    assert (result.stored, result.failed) == (0, 6)
    # Two pairs x 2 attempts x the provider's 3 tries; the 4 others are not tried.
    assert len(upstream.requests_for("error")) == 12
    assert result.failures[0] == "Down/p0: answered HTTP 500 (after 2 attempts)"
    assert result.failures[-1] == "Down/p5: not tried: its endpoint failed 2 times in a row"
    assert not Answer.objects.exists()


def test_calls_are_limited_per_endpoint_and_endpoints_run_side_by_side(
    prompt_set, model, settings, calls
):
    settings.ARENA_GENERATE_CONCURRENCY = 2
    for i in range(3, 6):
        PromptItem.objects.create(prompt_set=prompt_set, external_id=f"p{i}", text=f"More {i}")
    slow_a = "slow:delay=0.05,tokens=4"
    slow_b = "slow:delay=0.05,tokens=5"
    # Two contestants on the same upstream model share its limit.
    contestants = [
        model("A one", slow_a),
        model("A two", slow_a, system_prompt="Other prompt, same endpoint."),
        model("B", slow_b),
    ]

    result = answers_generate(prompt_set=prompt_set, contestants=contestants)

    assert (result.stored, result.failed) == (18, 0)
    assert calls["max"] == {slow_a: 2, slow_b: 2}
    assert calls["max_total"] == 4


def test_an_answer_stored_meanwhile_by_another_run_is_kept_and_never_doubled(
    prompt_set, model, monkeypatch
):
    normal = model("Heron Seven", "normal")
    real = complete_chat

    async def racing(endpoint, messages, **kwargs):
        finished = await real(endpoint, messages, **kwargs)
        item = await sync_to_async(prompt_set.items.get)(text=messages[0]["content"])
        await sync_to_async(Answer.objects.create)(item=item, contestant=normal, text="first")
        return finished

    monkeypatch.setattr(generation_module, "complete_chat", racing)
    result = answers_generate(prompt_set=prompt_set, contestants=[normal])

    assert (result.stored, result.present, result.failed) == (0, 3, 0)
    assert list(Answer.objects.values_list("text", flat=True)) == ["first"] * 3
    assert "filled meanwhile by another run" in result.summary()


@pytest.mark.django_db(transaction=True)  # foreign keys are checked at commit
def test_a_prompt_deleted_during_the_run_is_one_failure_not_a_crash(prompt_set, model, monkeypatch):
    normal = model("Heron Seven", "normal")
    real = complete_chat

    async def deleting(endpoint, messages, **kwargs):
        finished = await real(endpoint, messages, **kwargs)
        if messages[0]["content"] == "Prompt 1?":
            await sync_to_async(PromptItem.objects.filter(text="Prompt 1?").delete)()
        return finished

    monkeypatch.setattr(generation_module, "complete_chat", deleting)
    result = answers_generate(prompt_set=prompt_set, contestants=[normal])

    assert (result.stored, result.failed) == (2, 1)
    assert result.failures == (
        "Heron Seven/p1: not stored: its prompt or model was deleted meanwhile",
    )


def test_progress_moves_on_the_run_as_pairs_finish(prompt_set, model):
    contestants = [model("Heron Seven", "normal"), model("Refused", "error:status=401")]
    run = generation_run_create(prompt_set=prompt_set, contestants=contestants)
    seen = []

    def on_progress(done, failed):
        row = Run.objects.get(pk=run.pk)
        seen.append((done, failed, row.status, row.done, row.failed))

    generation_run_execute(run_id=run.pk, on_progress=on_progress)

    assert len(seen) == 6
    assert all(status == Run.Status.RUNNING for _, _, status, _, _ in seen)
    assert all(
        (done, failed) == (row_done, row_failed) for done, failed, _, row_done, row_failed in seen
    )
    assert seen[-1][:2] == (3, 3)
    assert [done + failed for done, failed, *_ in seen] == [1, 2, 3, 4, 5, 6]


def test_a_run_is_claimed_once_so_a_redelivered_task_does_nothing(prompt_set, model, upstream):
    normal = model("Heron Seven", "normal")
    run = generation_run_create(prompt_set=prompt_set, contestants=[normal])

    assert generate_answers_task.delay(run.pk).get() == {"total": 3, "done": 3, "failed": 0}
    assert generate_answers_task.delay(run.pk).get() is None
    assert generate_answers_task.delay(run.pk + 1000).get() is None  # no such run
    assert len(upstream.requests) == 3


def test_the_task_is_queued_after_commit_and_fails_the_run_when_its_set_is_gone(
    prompt_set, model, django_capture_on_commit_callbacks
):
    normal = model("Heron Seven", "normal")
    run = generation_run_create(prompt_set=prompt_set, contestants=[normal])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        generation_run_enqueue(run=run)
    assert len(callbacks) == 1
    assert Run.objects.get(pk=run.pk).status == Run.Status.QUEUED  # nothing before the commit
    prompt_set.delete()
    callbacks[0]()  # eager: the task runs now
    run.refresh_from_db()
    assert (run.status, run.message) == (Run.Status.FAILED, "The prompt set no longer exists.")


def test_recorded_models_cannot_generate(prompt_set):
    recorded = make_contestant(name="Replay", kind=Contestant.Kind.RECORDED)
    with pytest.raises(GenerationError, match="Replay only replays recorded answers"):
        generation_run_create(prompt_set=prompt_set, contestants=[recorded])
    with pytest.raises(GenerationError, match="at least one model"):
        answers_generate(prompt_set=prompt_set, contestants=[])
    assert answers_missing(prompt_set=prompt_set, contestants=[recorded]) == [
        (item.pk, recorded.pk) for item in prompt_set.items.order_by("id")
    ]


# -- the command -----------------------------------------------------------------------------


def generate(*args, stderr=None):
    out, err = io.StringIO(), stderr or io.StringIO()
    call_command("evalset", "generate", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_fills_missing_answers_with_a_progress_bar(prompt_set, model, upstream):
    model("Heron Seven", "normal")
    model("Marten Pro", "echo")
    model("Retired", "normal", active=False)
    make_contestant(name="Replay", kind=Contestant.Kind.RECORDED)  # cannot generate

    out, err = generate("Support replies", "--all-active", stderr=TTY())

    assert "Support replies (run " in out and "Stored 6 answers, 0 failed." in out
    assert "Support replies:" in err and "/6" in err and " answers" in err  # tqdm's bar
    assert Answer.objects.count() == 6
    run = Run.objects.get()
    assert (run.kind, run.status, run.done) == ("generate", "done", 6)

    out, _ = generate("Support replies", "--models", "Heron Seven,Marten Pro")
    assert out.startswith("Nothing to generate: Heron Seven, Marten Pro answered every prompt")
    assert Run.objects.count() == 1 and len(upstream.requests) == 6


def test_the_command_lists_failures_and_exits_with_an_error(prompt_set, model):
    model("Refused", "error:status=401")
    err = io.StringIO()
    with pytest.raises(CommandError, match="Stored 0 answers, 3 failed. Run the command again"):
        generate("Support replies", "--models", "Refused", stderr=err)
    lines = sorted(err.getvalue().splitlines())
    assert lines == [f"Refused/p{i}: answered HTTP 401 (check its API key)" for i in range(3)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["No such set", "--all-active"], "No eval set named 'No such set'"),
        (["Support replies"], "Give either --models NAME,NAME or --all-active"),
        (["Support replies", "--models", "Ghost,Heron Seven"], "Unknown model: Ghost"),
        (["Support replies", "--models", "Replay"], "Replay only replays recorded answers"),
    ],
)
def test_the_command_refuses_bad_arguments(prompt_set, model, args, message):
    model("Heron Seven", "normal")
    make_contestant(name="Replay", kind=Contestant.Kind.RECORDED)
    with pytest.raises(CommandError, match=message):
        generate(*args)
    assert not Run.objects.exists()


@pytest.fixture
def worker_configured(monkeypatch):
    """As with REDIS_URL: tasks are not eager. ``delay`` runs the task locally at once."""
    monkeypatch.setitem(generate_answers_task.app.conf, "task_always_eager", False)
    queued = []

    def delay(run_id):
        queued.append(run_id)
        return generate_answers_task.apply(args=[run_id])

    monkeypatch.setattr(generate_answers_task, "delay", delay)
    return queued


def test_with_a_worker_the_command_can_just_queue_the_run(
    prompt_set, model, worker_configured, django_capture_on_commit_callbacks
):
    model("Heron Seven", "normal")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        out, _ = generate("Support replies", "--all-active", "--no-wait")
    run = Run.objects.get()
    assert out.strip() == f"Queued run {run.pk}: 3 missing answers."
    assert (run.status, len(callbacks), worker_configured) == (Run.Status.QUEUED, 1, [])


@pytest.mark.django_db(transaction=True)
def test_with_a_worker_the_command_follows_the_runs_progress(prompt_set, model, worker_configured):
    model("Heron Seven", "normal")
    out, _ = generate("Support replies", "--all-active")  # on_commit runs at once: no atomic
    run = Run.objects.get()
    assert worker_configured == [run.pk]
    assert f"Support replies (run {run.pk}): Stored 3 answers, 0 failed." in out


# -- admin and pages -------------------------------------------------------------------------


@pytest.fixture
def action_attached(monkeypatch):
    """The PromptSet admin with the action, whether or not arena/admin.py attaches it yet."""
    from arena.models import PromptSet as Model

    model_admin = admin.site._registry[Model]
    if generate_missing_answers not in model_admin.actions:
        monkeypatch.setattr(
            model_admin, "actions", [*model_admin.actions, generate_missing_answers]
        )


@THESE_URLS
def test_the_admin_action_creates_a_run_and_fills_it_after_commit(
    client, alice, bob, prompt_set, model, action_attached, django_capture_on_commit_callbacks
):
    model("Heron Seven", "normal")
    model("Marten Pro", "echo")
    client.force_login(bob)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/arena/promptset/",
            {"action": "generate_missing_answers", "_selected_action": [prompt_set.pk]},
            follow=True,
        )
    assert response.status_code == 200
    run = Run.objects.get()
    assert (run.kind, run.started_by, run.total) == ("generate", bob, 6)
    text = response.content.decode()
    assert f'href="/admin/arena/run/{run.pk}/change/"' in text
    assert "Support replies: 6 missing answers, queued." in text
    run.refresh_from_db()  # the commit queued the (eager) task
    assert (run.status, run.done) == (Run.Status.DONE, 6)
    assert Answer.objects.count() == 6

    page = client.get(f"/admin/arena/run/{run.pk}/change/")
    assert page.status_code == 200
    assert (
        b"arena/progress.js" in page.content and b'<progress data-run-field="bar"' in page.content
    )
    listing = client.get("/admin/arena/run/")
    assert b'<progress max="6" value="6"></progress> 6 / 6' in listing.content


@THESE_URLS
def test_the_admin_action_says_when_there_is_nothing_to_do(
    client, alice, bob, prompt_set, model, action_attached
):
    client.force_login(bob)
    form = {"action": "generate_missing_answers", "_selected_action": [prompt_set.pk]}
    response = client.post("/admin/arena/promptset/", form, follow=True)
    assert b"No active model can generate answers" in response.content
    done = model("Heron Seven", "normal")
    for item in prompt_set.items.all():
        Answer.objects.create(item=item, contestant=done, text="answered")
    response = client.post("/admin/arena/promptset/", form, follow=True)
    assert b"Support replies: no answer is missing." in response.content
    assert not Run.objects.exists()


@THESE_URLS
def test_the_progress_json_needs_a_login_and_shows_the_counts(client, alice, bob):
    run = Run.objects.create(kind="generate", status="running", total=10, done=4, failed=1)
    anonymous = client.get(f"/runs/{run.pk}.json")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"].startswith("Sign in first")
    client.force_login(alice)
    data = json.loads(client.get(f"/runs/{run.pk}.json").content)
    assert data == {
        "id": run.pk,
        "kind": "generate",
        "kind_display": "Answer generation",
        "status": "running",
        "status_display": "Running",
        "total": 10,
        "done": 4,
        "failed": 1,
        "message": "",
        "finished": False,
    }
    assert client.get(f"/runs/{run.pk + 1}.json").status_code == 404


@THESE_URLS
def test_the_progress_snippet_renders_a_run(prompt_set):
    run = Run.objects.create(
        kind="generate",
        status="done",
        total=6,
        done=4,
        failed=2,
        params={"prompt_set_name": prompt_set.name},
        message="Stored 4 answers, 2 failed.\nA/p1: <script>",
    )
    html = render_to_string("arena/_run_progress.html", {"run": run})
    assert f'data-run-url="/runs/{run.pk}.json"' in html
    assert '<progress data-run-field="bar" max="6" value="6">' in html
    assert "4 of 6 done, 2 failed" in html
    assert "Answer generation: Support replies" in html
    assert "A/p1: &lt;script&gt;" in html


def test_the_page_shows_runs_under_way_and_those_finished_within_the_hour():
    now = timezone.now()
    running = Run.objects.create(kind="generate", status="running")
    recent = Run.objects.create(kind="generate", status="done", finished_at=now)
    Run.objects.create(kind="generate", status="done", finished_at=now - timedelta(hours=2))
    Run.objects.create(kind="judge", status="running")
    stale = Run.objects.create(kind="generate", status="running")
    Run.objects.filter(pk=stale.pk).update(created_at=now - timedelta(days=2))
    assert {run.pk for run in generation_runs_recent()} == {running.pk, recent.pk}


def test_a_judge_runs_progress_is_for_staff_only(client, alice, bob):
    run = Run.objects.create(kind="judge", status="running", total=3)
    client.force_login(alice)
    assert client.get(f"/runs/{run.pk}.json").status_code == 404
    client.force_login(bob)
    assert client.get(f"/runs/{run.pk}.json").json()["kind"] == "judge"
