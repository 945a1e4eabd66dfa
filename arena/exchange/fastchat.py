"""FastChat ``clean_battle`` export, for Chatbot Arena's notebooks, arena-rank and other tools.

One record per battle with a counted vote, in battle order, written as a JSON array with one
record per line::

    {"question_id": ..., "model_a": ..., "model_b": ..., "winner": "model_a", "judge": ...,
     "turn": 1, "anony": true, "language": "unknown", "tstamp": 1700000000.0,
     "conversation_a": [{"role": "user", "content": ...}, {"role": "assistant", ...}],
     "conversation_b": [...], "category_tag": {"math_v0.1": {"math": true}}}

``question_id`` is the battle's external id, else ``arena-<id>``. ``judge`` is the vote's voter
label, else ``arena_user_<user id>``. ``tstamp`` is the vote's time. The conversations come
from the battle's current (not superseded) turns, or, for an eval-set pair, from the prompt and
the two stored answers; battles with neither have no conversation keys. Void votes are left out.
Categories are written so that ``import_battles --format fastchat`` reads them back.
"""

from collections.abc import Iterator

from arena.exchange.arena_jsonl import battle_chunks
from arena.models import Answer, Category, Contestant, PromptItem, Vote

WINNERS = {
    Vote.Outcome.A: "model_a",
    Vote.Outcome.B: "model_b",
    Vote.Outcome.TIE: "tie",
    Vote.Outcome.BOTH_BAD: "tie (bothbad)",
}


def _conversation(turns: list[dict], side: str) -> list[dict]:
    messages = []
    for turn in sorted((t for t in turns if t["side"] == side), key=lambda t: t["index"]):
        messages.append({"role": "user", "content": turn["prompt"]})
        messages.append({"role": "assistant", "content": turn["text"]})
    return messages


def export_records(*, on_battle=None) -> Iterator[dict]:
    contestants = dict(Contestant.objects.values_list("pk", "name"))
    categories = dict(Category.objects.values_list("pk", "slug"))
    for battles in battle_chunks():
        answer_ids = {b[k] for b in battles for k in ("answer_a_id", "answer_b_id") if b[k]}
        answers = dict(Answer.objects.filter(pk__in=answer_ids).values_list("pk", "text"))
        item_ids = {b["prompt_item_id"] for b in battles if b["prompt_item_id"]}
        prompts = dict(PromptItem.objects.filter(pk__in=item_ids).values_list("pk", "text"))
        for b in battles:
            vote = b["vote"]
            if vote is None or vote["void_reason"]:
                continue
            turns = [t for t in b["turns"] if not t["superseded"]]
            if turns:
                conv_a, conv_b = _conversation(turns, "a"), _conversation(turns, "b")
            elif b["answer_a_id"] and b["answer_b_id"] and b["prompt_item_id"]:
                prompt = {"role": "user", "content": prompts[b["prompt_item_id"]]}
                conv_a = [prompt, {"role": "assistant", "content": answers[b["answer_a_id"]]}]
                conv_b = [prompt, {"role": "assistant", "content": answers[b["answer_b_id"]]}]
            else:
                conv_a = conv_b = None
            if vote["voter_label"]:
                judge = vote["voter_label"]
            elif vote["voter_id"]:
                judge = f"arena_user_{vote['voter_id']}"
            else:
                judge = ""
            record = {
                "question_id": b["external_id"] or f"arena-{b['id']}",
                "model_a": contestants[b["contestant_a_id"]],
                "model_b": contestants[b["contestant_b_id"]],
                "winner": WINNERS[vote["outcome"]],
                "judge": judge,
                "turn": max(len(conv_a or []), len(conv_b or []), 2) // 2,
                "anony": True,
                "language": "unknown",
                "tstamp": vote["created_at"].timestamp(),
            }
            if conv_a is not None:
                record["conversation_a"] = conv_a
                record["conversation_b"] = conv_b
            if b["categories"]:
                tags = {}
                for c in b["categories"]:
                    name = categories[c["category_id"]].replace("-", "_")
                    tags[f"{name}_v0.1"] = {name: True}
                record["category_tag"] = tags
            yield record
        if on_battle:
            on_battle(len(battles))
