"""The LLMFAO demo data: real models, prompts, answers, human votes and judge verdicts.

LLMFAO by Dmitry Ustalov and llmonitor.com, CC BY 4.0; the files are in ``arena/demo_data``
(see its README). ``demo_load()`` maps them onto the arena's tables:

- **Contestants**: the 59 models that appear in ``crowd-comparisons.csv``, kind ``recorded``,
  active, sampling weight 1, ``organisation`` and ``model_id`` (the API id) from
  ``models.jsonl``. A contestant that already exists under the same name is reused unchanged.
- **Categories**: one per prompt ``type`` used (knowledge, reflexion, instruct, creativity),
  slug = type. Existing ones are reused.
- **Prompt set** ``LLMFAO`` with the 13 prompts that were voted on, in file order:
  ``external_id`` = the prompt's slug, its category, ``notes`` = the prompt's note.
- **Answers**: each of those models' answer to each of those prompts from ``results.jsonl``
  (750: a few model/prompt pairs were never run), ``total_ms`` = ``duration``.
- **Battles**: one per human vote (row) of ``crowd-comparisons.csv``: mode ``evalset``, status
  ``voted``, the prompt item, side A = ``left`` (= ``model_x``) and its answer, side B =
  ``right`` and its answer, ``external_id`` = ``llmfao:<pair id>:<worker>`` (unique, since a
  worker voted a pair once), the prompt's category with assigner ``import``. Its vote: outcome
  ``a``/``b``/``tie`` for ``winner`` ``left``/``right``/``tie``, no ``voter``, ``voter_label`` =
  the worker id.
- **Judges** ``GPT-4 (LLMFAO)`` and ``GPT-3 (LLMFAO)``: template ``gpt-instruction.txt``,
  version ``llmfao``, verdict format ``three``, no contestant. One judgement per pair and judge,
  order ``ab`` (the study showed ``model_x`` as A, which is the battle's side A), verdict ``A``,
  ``B`` or ``tie`` (the three-level labels) for ``left``/``right``/``tie``; the study kept no raw
  judge output, so ``raw_output`` is empty.

  **Rule: a pair's judgements hang on the pair's first human battle** (its first row in
  ``crowd-comparisons.csv``). So every judgement's battle has a human vote
  (``Judgement.objects.filter(battle__vote__isnull=False)`` is all of them), and all the human
  votes on that pair are the voted battles with the same ``prompt_item`` and the same two
  contestants, on either side (the pair key of ``arena.evalsets``; within the demo also the
  same ``answer_a``/``answer_b`` and the ``external_id`` prefix ``llmfao:<pair id>:``). No
  battle without a vote is created, so nothing extra shows up as "ready" for voting.

- **A judge that can be called offline**, ``GPT-4 replay (LLMFAO)``: its contestant ``GPT-4
  verdicts (LLMFAO, recorded)`` is a recorded judge (kind ``recorded``, ``model_id``
  ``verdicts:GPT-4 (LLMFAO)``, inactive so no battle draws it) that answers a judge prompt with
  the verdict GPT-4 gave the pair it shows (:mod:`arena.providers.recorded_verdicts`); a copy
  of the default template, three-level verdicts. A run of it on ``/judge/`` goes through the real
  machinery (both orders, progress, stored judgements): its ``ab`` verdicts are GPT-4's, its
  ``ba`` verdicts GPT-4's mirrored (the study judged one order), and pairs GPT-4 never judged
  fail as "no verdict recorded".

Idempotent: when the prompt set ``LLMFAO`` exists, nothing is done but adding the replay judge
if it is missing. Everything is written in one transaction, so a failed load leaves nothing
behind.
"""

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from arena.exchange.bulk import BattleWriter, PendingBattle, analyze
from arena.judging.prompts import DEFAULT_TEMPLATE, TEMPLATE_VERSION
from arena.models import (
    Answer,
    Battle,
    BattleCategory,
    Category,
    Contestant,
    Judge,
    Judgement,
    PromptItem,
    PromptSet,
    Vote,
)

DEMO_DIR = Path(__file__).resolve().parent / "data"
PROMPT_SET = "LLMFAO"
ATTRIBUTION = "LLMFAO by Dmitry Ustalov and llmonitor.com, CC BY 4.0"
JUDGES = (
    ("GPT-4 (LLMFAO)", "gpt4-crowd-comparisons.csv"),
    ("GPT-3 (LLMFAO)", "gpt3-crowd-comparisons.csv"),
)
WINNERS = {"left": Vote.Outcome.A, "right": Vote.Outcome.B, "tie": Vote.Outcome.TIE}
VERDICTS = {"left": "A", "right": "B", "tie": "tie"}
BATCH = 2000
REPLAY_SOURCE = "GPT-4 (LLMFAO)"
REPLAY_JUDGE = "GPT-4 replay (LLMFAO)"
REPLAY_CONTESTANT = "GPT-4 verdicts (LLMFAO, recorded)"


@dataclass(frozen=True)
class DemoResult:
    loaded: bool
    contestants_created: int = 0
    contestants_reused: int = 0
    categories_created: int = 0
    prompts: int = 0
    answers: int = 0
    battles: int = 0
    votes: int = 0
    voters: int = 0
    judgements: dict[str, int] = field(default_factory=dict)
    replay_judge: str = ""  # the replay judge's name when this load created it

    def summary(self) -> str:
        replay = (
            f" Added the judge {self.replay_judge}, which replays the verdicts of "
            f"{REPLAY_SOURCE}: judge runs work offline (/judge/)."
            if self.replay_judge
            else ""
        )
        if not self.loaded:
            if replay:
                return f'The demo data is already loaded (prompt set "{PROMPT_SET}").{replay}'
            return f'The demo data is already loaded (prompt set "{PROMPT_SET}"); nothing changed.'
        judged = ", ".join(f"{n} judgements by {name}" for name, n in self.judgements.items())
        reused = f" ({self.contestants_reused} existing reused)" if self.contestants_reused else ""
        return (
            f"Loaded the LLMFAO demo data ({ATTRIBUTION}): "
            f"{self.contestants_created} contestants{reused}, "
            f"{self.categories_created} new categories, {self.prompts} prompts, "
            f"{self.answers} answers, {self.battles} battles with {self.votes} votes "
            f"by {self.voters} voters, {judged}.{replay}"
        )


def _jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def demo_load(*, data_dir: Path = DEMO_DIR) -> DemoResult:
    """Load the LLMFAO demo data once; a second call changes nothing (``loaded=False``)."""
    if PromptSet.objects.filter(name=PROMPT_SET).exists():
        return DemoResult(loaded=False, replay_judge=demo_replay_judge())
    models = {m["id"]: m for m in _jsonl(data_dir / "models.jsonl")}
    prompts = {p["id"]: p for p in _jsonl(data_dir / "prompts.jsonl")}
    crowd = _csv(data_dir / "crowd-comparisons.csv")
    verdicts = {
        name: {row["id"]: row for row in _csv(data_dir / filename)} for name, filename in JUDGES
    }
    template = (data_dir / "gpt-instruction.txt").read_text(encoding="utf-8")

    model_ids = {int(r[k]) for r in crowd for k in ("model_x", "model_y")}
    prompt_ids = {int(r["prompt"]) for r in crowd}
    used_models = [m for m in models.values() if m["id"] in model_ids]
    used_prompts = [p for p in prompts.values() if p["id"] in prompt_ids]

    with transaction.atomic():
        # Created first: its unique name makes a concurrent second load fail, not double.
        prompt_set = PromptSet.objects.create(
            name=PROMPT_SET,
            description=(
                f"13 prompts of the LLMFAO study with 59 models' recorded answers, "
                f"human votes and GPT-4/GPT-3 verdicts. {ATTRIBUTION}."
            ),
        )

        existing = dict(Contestant.objects.values_list("name", "pk"))
        new = [
            Contestant(
                name=m["name"],
                organisation=m.get("org") or "",
                kind=Contestant.Kind.RECORDED,
                model_id=m.get("api_id") or "",
                sampling_weight=1.0,
                active=True,
            )
            for m in used_models
            if m["name"] not in existing
        ]
        Contestant.objects.bulk_create(new, batch_size=BATCH)
        existing.update(
            Contestant.objects.filter(name__in=[c.name for c in new]).values_list("name", "pk")
        )
        contestant = {m["id"]: existing[m["name"]] for m in used_models}

        categories = dict(Category.objects.values_list("slug", "pk"))
        types = list(dict.fromkeys(p["type"] for p in used_prompts))
        new_categories = [
            Category(slug=t, name=t.capitalize()) for t in types if t not in categories
        ]
        Category.objects.bulk_create(new_categories)
        categories = dict(Category.objects.values_list("slug", "pk"))

        items = PromptItem.objects.bulk_create(
            [
                PromptItem(
                    prompt_set=prompt_set,
                    external_id=p["slug"],
                    text=p["text"],
                    category_id=categories[p["type"]],
                    notes=p.get("note") or "",
                )
                for p in used_prompts
            ]
        )
        item = {p["id"]: obj.pk for p, obj in zip(used_prompts, items, strict=True)}
        category_of = {p["id"]: categories[p["type"]] for p in used_prompts}

        results = [
            r
            for r in _jsonl(data_dir / "results.jsonl")
            if r["model"] in model_ids and r["prompt"] in prompt_ids
        ]
        answers = Answer.objects.bulk_create(
            [
                Answer(
                    item_id=item[r["prompt"]],
                    contestant_id=contestant[r["model"]],
                    text=r["result"],
                    total_ms=round(r["duration"]) if r.get("duration") is not None else None,
                )
                for r in results
            ],
            batch_size=BATCH,
        )
        answer = {
            (r["model"], r["prompt"]): obj.pk for r, obj in zip(results, answers, strict=True)
        }

        judges = {
            name: Judge.objects.create(
                name=name,
                template=template,
                template_version="llmfao",
                verdict_format=Judge.VerdictFormat.THREE,
            ).pk
            for name, _ in JUDGES
        }

        with BattleWriter(batch_size=BATCH, now=timezone.now()) as writer:
            judged = Counter()
            for row in crowd:
                x, y, prompt = int(row["model_x"]), int(row["model_y"]), int(row["prompt"])
                pair = row["id"]
                if models[x]["name"] != row["left"] or models[y]["name"] != row["right"]:
                    raise ValueError(f"crowd-comparisons.csv: pair {pair}: left/right != model_x/y")
                pending = PendingBattle(
                    battle={
                        "contestant_a_id": contestant[x],
                        "contestant_b_id": contestant[y],
                        "mode": Battle.Mode.EVALSET,
                        "status": Battle.Status.VOTED,
                        "prompt_item_id": item[prompt],
                        "answer_a_id": answer[(x, prompt)],
                        "answer_b_id": answer[(y, prompt)],
                        "external_id": f"llmfao:{pair}:{row['worker']}",
                    },
                    vote={"outcome": WINNERS[row["winner"]], "voter_label": row["worker"]},
                    categories=[
                        {
                            "category_id": category_of[prompt],
                            "assigner": BattleCategory.Assigner.IMPORT,
                        }
                    ],
                )
                for name, by_pair in verdicts.items():
                    verdict = by_pair.pop(pair, None)  # only the pair's first battle gets it
                    if verdict is None:
                        continue
                    if (verdict["left"], verdict["right"]) != (row["left"], row["right"]):
                        raise ValueError(f"{name}: pair {pair} is not the crowd's pair")
                    pending.judgements.append(
                        {
                            "judge_id": judges[name],
                            "order": Judgement.Order.AB,
                            "verdict": VERDICTS[verdict["winner"]],
                        }
                    )
                    judged[name] += 1
                writer.add(pending)
        analyze(Contestant, PromptItem, Answer, Battle, Vote, BattleCategory, Judgement)
        for name, left in verdicts.items():
            if left:
                raise ValueError(f"{name}: {len(left)} pairs have no human vote")
        replay_judge = demo_replay_judge()

    return DemoResult(
        loaded=True,
        contestants_created=len(new),
        contestants_reused=len(used_models) - len(new),
        categories_created=len(new_categories),
        prompts=len(items),
        answers=len(answers),
        battles=writer.counts["battles"],
        votes=writer.counts["vote"],
        voters=len({row["worker"] for row in crowd}),
        judgements={name: judged[name] for name, _ in JUDGES},
        replay_judge=replay_judge,
    )


def demo_replay_judge() -> str:
    """Create the judge that replays GPT-4's LLMFAO verdicts, unless it exists (or the
    verdicts are not there); returns its name when created, else ""."""
    if not Judge.objects.filter(name=REPLAY_SOURCE).exists():
        return ""
    with transaction.atomic():
        contestant, _ = Contestant.objects.get_or_create(
            name=REPLAY_CONTESTANT,
            defaults={
                "organisation": "OpenAI",
                "kind": Contestant.Kind.RECORDED,
                "model_id": f"verdicts:{REPLAY_SOURCE}",
                "sampling_weight": 0.0,
                "active": False,  # a judge, never drawn into a battle
            },
        )
        _, created = Judge.objects.get_or_create(
            name=REPLAY_JUDGE,
            defaults={
                "contestant": contestant,
                "template": DEFAULT_TEMPLATE,  # kept, so the replay reads its prompts exactly
                "template_version": TEMPLATE_VERSION,
                "verdict_format": Judge.VerdictFormat.THREE,
            },
        )
    return REPLAY_JUDGE if created else ""
