"""A recorded judge: a ``recorded`` contestant whose ``model_id`` is ``verdicts:<judge name>``
answers a judge prompt with the verdict that judge stored on the pair the prompt shows.

The judge prompt holds the eval-set prompt and the two answers, verbatim. When it was made from
the template of a judge that calls this contestant, the template tells them apart exactly (the
nonce fences of the default template make that unambiguous). Otherwise they are searched for:
the prompt items the source judged whose text the prompt contains, the stored answers of such
an item that it contains (blank ones aside; one found only inside a longer answer or inside the
item's text does not count), the pair of them the source judged that takes up most of the
prompt (short answers also occur in the template's words; a tie is no answer), the one found
first shown first. Then the source's judgements on the battles of that item between those two
answers are read.

Answers are told apart by their text: models that answered word for word alike (several
LLMFAO models answered a bare newline) make one text, and the verdict replayed for it is the
one the source gave every pair showing those texts, or none when those verdicts differ. When
both answers are the same text, each judgement is taken as it was shown.

The verdict replayed is the source's judgement of that pair shown in the same order when there
is one (its raw output too, when it kept one); otherwise its judgement of the other order,
mirrored (``A`` <-> ``B``, ``A>>B`` <-> ``B>>A``), so a replay of a single-order judge is
position-consistent by construction. A pair the source never judged is no answer (a
``ProviderError`` that retrying cannot fix): nothing is ever made up. Eval-set battles only:
live battles have no stored answers to recognise.
"""

import functools
import re
from dataclasses import dataclass
from string import Template

from arena.models import Answer, Judge, Judgement, PromptItem

VERDICTS_PREFIX = "verdicts:"


_MIRROR = {
    "A": "B",
    "B": "A",
    "tie": "tie",
    "A>>B": "B>>A",
    "A>B": "B>A",
    "A=B": "A=B",
    "B>A": "A>B",
    "B>>A": "A>>B",
}


class NoRecordedVerdict(LookupError):
    """The prompt shows no pair the source judge has a stored verdict on; says why."""


@dataclass(frozen=True)
class ReplayedVerdict:
    label: str  # the verdict label, for the answer shown first as A
    output: str  # what the recorded judge answers
    battle_id: int  # the battle whose stored judgement is replayed


def replayed_judge(model_id: str) -> str | None:
    """The name of the judge a recorded contestant replays, or None for a plain one."""
    if not model_id.startswith(VERDICTS_PREFIX):
        return None
    return model_id.removeprefix(VERDICTS_PREFIX).strip() or None


def _occurrences(text: str, needle: str) -> list[int]:
    found: list[int] = []
    start = text.find(needle)
    while start != -1:
        found.append(start)
        start = text.find(needle, start + 1)
    return found


def _first_free(
    prompt: str, texts: dict[int, str], covers: list[tuple[int, int]]
) -> dict[int, int]:
    """Per answer id, where its text first occurs in ``prompt`` outside every longer span
    (the item's text, a longer answer); answers that occur nowhere else are left out."""
    spans = {key: [(s, s + len(t)) for s in _occurrences(prompt, t)] for key, t in texts.items()}
    longer = covers + [span for found in spans.values() for span in found]
    first: dict[int, int] = {}
    for key, found in spans.items():
        for start, end in found:
            inside = any(s <= start and end <= e and (e - s) > (end - start) for s, e in longer)
            if not inside:
                first[key] = start
                break
    return first


_FIELDS = {"prompt": "prompt", "answer_a": "first", "answer_b": "second"}


@functools.lru_cache(maxsize=16)
def _template_regex(template: str) -> re.Pattern[str]:
    """A pattern matching what ``string.Template(template).substitute`` makes of the judge
    fields: groups ``prompt``, ``first``, ``second``; the nonce the same every time."""
    parts, end, seen = [], 0, set()
    for match in Template.pattern.finditer(template):
        parts.append(re.escape(template[end : match.start()]))
        end = match.end()
        name = match.group("named") or match.group("braced")
        if match.group("escaped") is not None:
            parts.append(re.escape("$"))
        elif name == "nonce":
            parts.append("(?P=nonce)" if "nonce" in seen else "(?P<nonce>[0-9a-f]+)")
        elif name in _FIELDS and name not in seen:
            parts.append(f"(?P<{_FIELDS[name]}>.*?)")
        elif name is not None:
            parts.append(".*?")
        else:
            parts.append(re.escape(match.group()))
        if name:
            seen.add(name)
    parts.append(re.escape(template[end:]))
    return re.compile("".join(parts), re.DOTALL)


def _parsed(templates: list[str], prompt: str) -> tuple[str, str, str] | None:
    """(eval-set prompt, answer shown first, answer shown second) by one of the templates."""
    for template in templates:
        match = _template_regex(template).fullmatch(prompt)
        if match is not None and {"prompt", "first", "second"} <= set(match.groupdict()):
            return match.group("prompt"), match.group("first"), match.group("second")
    return None


def recorded_verdict_for(
    *, source: str, prompt: str, templates: list[str] | None = None
) -> ReplayedVerdict:
    """The verdict ``source`` stored on the pair ``prompt`` shows (see the module docstring);
    ``templates`` are those the prompt may have been made from. Raises ``NoRecordedVerdict``
    saying why there is none."""
    judge = Judge.objects.filter(name=source).first()
    if judge is None:
        raise NoRecordedVerdict(f"replays the verdicts of judge {source!r}, which does not exist")
    parsed = _parsed(templates or [], prompt)
    items = PromptItem.objects.filter(battle__judgements__judge=judge).distinct()
    if parsed is not None:
        items = items.filter(text=parsed[0])
    candidates = sorted(
        (
            (len(text), item_id, text)
            for item_id, text in items.values_list("id", "text")
            if text and text in prompt
        ),
        reverse=True,
    )
    for _, item_id, item_text in candidates:
        texts = dict(Answer.objects.filter(item_id=item_id).values_list("id", "text"))
        if parsed is not None:
            shown = {i: t for i, t in texts.items() if t in parsed[1:]}
            first = {i: (0 if t == parsed[1] else 1) for i, t in shown.items()}
        else:
            shown = {i: t for i, t in texts.items() if t.strip()}
            covers = [(s, s + len(item_text)) for s in _occurrences(prompt, item_text)]
            first = _first_free(prompt, shown, covers)
        rows = list(
            Judgement.objects.filter(
                judge=judge,
                battle__prompt_item_id=item_id,
                battle__answer_a_id__in=list(first),
                battle__answer_b_id__in=list(first),
            )
            .exclude(verdict="")
            .order_by("battle_id", "order")
            .values_list(
                "battle_id", "order", "verdict", "raw_output", "battle__answer_a_id",
                "battle__answer_b_id",
            )
        )  # fmt: skip
        if parsed is not None:
            pair = {parsed[1], parsed[2]}
            rows = [r for r in rows if {texts[r[4]], texts[r[5]]} == pair]
        found = _replay(source, rows, texts, first)
        if found is not None:
            return found
    raise NoRecordedVerdict(f"has no verdict of {source} recorded for this pair")


def _replay(
    source: str, rows: list[tuple], texts: dict[int, str], first: dict[int, int]
) -> ReplayedVerdict | None:
    """The verdict replayed from ``rows`` (judgements on pairs of answers found in the prompt,
    ``first``: where each is found), or None when none of them is a pair."""
    # Pairs are told apart by their texts (models that answered word for word alike cannot
    # be). Short answers also occur in the template's own words: the pair shown is the one
    # whose two texts take up the most of the prompt.
    sizes: dict[frozenset[str], int] = {}
    for *_, a, b in rows:
        sizes[frozenset((texts[a], texts[b]))] = len(texts[a]) + len(texts[b])
    if not sizes:
        return None
    best = max(sizes.values())
    keys = [key for key, size in sizes.items() if size == best]
    if len(keys) > 1:
        raise NoRecordedVerdict("cannot tell which recorded pair this prompt shows")
    key = keys[0]
    rows = [r for r in rows if frozenset((texts[r[4]], texts[r[5]])) == key]
    # The text found first is shown first; one text twice: each judgement as it was shown.
    lead = min(key, key=lambda t: min(first[i] for i in first if texts[i] == t))
    replays = []
    for battle_id, order, verdict, raw, a, b in rows:
        shown_first = texts[a] if order == Judgement.Order.AB else texts[b]
        if shown_first == lead or len(key) == 1:
            replays.append((0, battle_id, verdict, raw))
        else:
            replays.append((1, battle_id, _MIRROR.get(verdict, verdict), ""))
    labels = {label for _, _, label, _ in replays}
    if len(labels) > 1:
        raise NoRecordedVerdict(
            f"cannot replay one verdict: {source} judged pairs that show these same texts "
            "differently"
        )
    _, battle_id, label, raw = min(replays)
    output = raw or f"Replaying the verdict {source} stored on this pair.\nVerdict: [[{label}]]"
    return ReplayedVerdict(label=label, output=output, battle_id=battle_id)
