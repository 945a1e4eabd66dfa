"""Behaviour that depends on a real Celery worker: the task runs in another process, on the
Redis broker, against the same database, and its results land in it."""

import time
import uuid

import pytest
from celery import Celery

from arena.evalsets.generation import generation_run_create
from arena.models import Answer, PromptItem, PromptSet, Run
from tests.factories import make_contestant
from tests.upstream import upstream_fixture  # noqa: F401

pytestmark = [
    pytest.mark.redis,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]


def _wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_worker_fills_missing_answers_through_the_broker(redis_url, celery_worker_pid, upstream):
    upstream.set_behaviour("wren-small-1", "echo")
    wren = make_contestant(
        name="Wren Small", kind="openai", base_url=upstream.url, model_id="wren-small-1"
    )
    prompt_set = PromptSet.objects.create(name=f"set-{uuid.uuid4().hex[:6]}")
    for k in range(3):
        PromptItem.objects.create(prompt_set=prompt_set, text=f"Question {k}?")
    run = generation_run_create(prompt_set=prompt_set, contestants=[wren])
    client = Celery("test-client", broker=redis_url, backend=redis_url, set_as_current=False)
    try:
        result = client.send_task("arena.generate_answers", args=[run.pk]).get(timeout=60)
    finally:
        client.close()
    assert result == {"total": 3, "done": 3, "failed": 0}
    assert _wait_for(lambda: Run.objects.get(pk=run.pk).status == Run.Status.DONE)
    texts = sorted(Answer.objects.filter(contestant=wren).values_list("text", flat=True))
    assert texts == ["Echo: Question 0?", "Echo: Question 1?", "Echo: Question 2?"]
    assert len(upstream.requests) == 3
