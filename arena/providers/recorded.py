"""Recorded contestants replay a stored ``Answer`` to the eval-set prompt that is the first
user message, in word-sized chunks so the page fills visibly. A recorded judge (``model_id``
``verdicts:<judge name>``) replays that judge's stored verdict on the pair a judge prompt shows
instead (:mod:`arena.providers.recorded_verdicts`)."""

import asyncio
import re
from collections.abc import AsyncGenerator, Iterable

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings

from arena.models import Answer, Judge
from arena.providers.call import Call
from arena.providers.errors import ProviderError
from arena.providers.recorded_verdicts import (
    NoRecordedVerdict,
    recorded_verdict_for,
    replayed_judge,
)

RECORDED_CHUNK_DELAY_MS = 10  # default for settings.ARENA_RECORDED_CHUNK_DELAY_MS


_CHUNK = re.compile(r"\s*\S+\s*|\s+")


def recorded_answer_for(*, contestant_ids: Iterable[int], prompt: str) -> dict[int, Answer]:
    """Stored answers whose prompt is exactly ``prompt`` (surrounding spaces aside), by
    contestant: what a recorded contestant can replay."""
    prompt = prompt.strip()
    found: dict[int, Answer] = {}
    if not prompt:
        return found
    # contains() narrows in the database; the exact match is checked here.
    candidates = Answer.objects.filter(
        contestant_id__in=list(contestant_ids), item__text__contains=prompt
    ).select_related("item")
    for answer in candidates.order_by("id"):
        if answer.item.text.strip() == prompt:
            found.setdefault(answer.contestant_id, answer)
    return found


@database_sync_to_async
def _recorded_answer(contestant_id: int | None, prompt: str) -> Answer | None:
    if contestant_id is None:
        return None
    return recorded_answer_for(contestant_ids=[contestant_id], prompt=prompt).get(contestant_id)


# Plain sync_to_async: judge runs call it from their own event loop with the ORM on the
# calling thread (as arena.judging.runs does), whose connection their task manages.
@sync_to_async
def _recorded_verdict(contestant_id: int | None, source: str, prompt: str) -> str:
    judges = Judge.objects.filter(contestant_id=contestant_id).exclude(template="")
    templates = list(judges.values_list("template", flat=True))
    try:
        return recorded_verdict_for(source=source, prompt=prompt, templates=templates).output
    except NoRecordedVerdict as exc:
        raise ProviderError(str(exc)) from None


async def recorded_stream(call: Call) -> AsyncGenerator[str, None]:
    users = [m for m in call.messages if m.get("role") == "user"]
    if len(call.messages) != 1 or len(users) != 1:
        raise ProviderError("has no recorded answer for follow-up messages")
    source = replayed_judge(call.endpoint.model_id)
    if source is not None:
        contestant_id = call.endpoint.contestant_id
        text = await _recorded_verdict(contestant_id, source, str(users[0]["content"]))
        tokens_out = None
    else:
        prompt = str(users[0]["content"]).strip()
        answer = await _recorded_answer(call.endpoint.contestant_id, prompt)
        if answer is None:
            raise ProviderError("has no recorded answer for this prompt")
        text, tokens_out = answer.text, answer.tokens_out
    delay = getattr(settings, "ARENA_RECORDED_CHUNK_DELAY_MS", RECORDED_CHUNK_DELAY_MS) / 1000
    for i, chunk in enumerate(_CHUNK.findall(text)):
        if i and delay:
            await asyncio.sleep(delay)
        yield chunk
    call.finish_reason = "stop"
    call.tokens_out = tokens_out  # stored count when there is one, else estimated
