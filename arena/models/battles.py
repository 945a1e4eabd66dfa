"""Battles, their turns and votes, and the prompt sets battles can come from."""

from typing import NamedTuple

from django.conf import settings
from django.db import models, router, transaction
from django.db.models import Q
from django.utils import timezone

import ratings
from arena.models.contestants import Category, Contestant


class PromptSet(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class PromptItem(models.Model):
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=200, blank=True)
    text = models.TextField()
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL)
    reference = models.TextField(blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["prompt_set", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["prompt_set", "external_id"],
                condition=~Q(external_id=""),
                name="prompt_item_external_id_unique",
            )
        ]

    def __str__(self) -> str:
        return self.external_id or self.text[:60]


class Answer(models.Model):
    """A stored answer of one contestant to one eval-set prompt."""

    item = models.ForeignKey(PromptItem, on_delete=models.CASCADE, related_name="answers")
    contestant = models.ForeignKey(Contestant, on_delete=models.CASCADE, related_name="answers")
    text = models.TextField()
    tokens_out = models.PositiveIntegerField(null=True, blank=True)
    total_ms = models.PositiveIntegerField(null=True, blank=True)
    style = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="Style features of the text (ratings.FEATURES); filled when first needed.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "contestant"], name="answer_unique_per_item")
        ]

    def __str__(self) -> str:
        return f"{self.contestant} on {self.item}"


class BattleQuerySet(models.QuerySet):
    def ready(self):
        return self.filter(status=Battle.Status.READY)


class AtomicSave(models.Model):
    """A row saved in one transaction with what its save signals write (the vote counts of
    ``arena.battles.counts``), even when the caller is in autocommit."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using):
            super().save(*args, **kwargs)


class Battle(AtomicSave):
    class Mode(models.TextChoices):
        LIVE = "live", "Live chat"
        EVALSET = "evalset", "Eval-set pair"
        IMPORTED = "imported", "Imported"

    class Status(models.TextChoices):
        STREAMING = "streaming", "Streaming"
        READY = "ready", "Ready for a vote"
        VOTED = "voted", "Voted"
        ERRORED = "errored", "Errored"
        VOID = "void", "Void"

    contestant_a = models.ForeignKey(Contestant, on_delete=models.PROTECT, related_name="+")
    contestant_b = models.ForeignKey(Contestant, on_delete=models.PROTECT, related_name="+")
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.LIVE)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.STREAMING)
    pair_probability = models.FloatField(
        null=True, blank=True, help_text="Probability with which this pair was drawn."
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    prompt_item = models.ForeignKey(PromptItem, null=True, blank=True, on_delete=models.SET_NULL)
    answer_a = models.ForeignKey(
        Answer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    answer_b = models.ForeignKey(
        Answer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    categories = models.ManyToManyField(Category, through="BattleCategory", blank=True)
    external_id = models.CharField(max_length=200, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    ready_at = models.DateTimeField(null=True, blank=True)

    objects = BattleQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(contestant_a=models.F("contestant_b")), name="battle_distinct_sides"
            )
        ]

    def __str__(self) -> str:
        return f"Battle {self.pk}"

    @classmethod
    def evalset_pair(cls, *, item_id: int, answers: dict, a: int, b: int, **fields) -> "Battle":
        """An unsaved eval-set battle between contestants ``a`` (left) and ``b`` on one prompt;
        ``answers`` maps contestant id -> that contestant's answer id for the prompt."""
        return cls(
            contestant_a_id=a,
            contestant_b_id=b,
            mode=cls.Mode.EVALSET,
            status=cls.Status.READY,
            ready_at=timezone.now(),
            prompt_item_id=item_id,
            answer_a_id=answers[a],
            answer_b_id=answers[b],
            **fields,
        )

    def rounds(self) -> "list[Round]":
        """The rounds of a live battle in order, each with its sides' current answers."""
        by_index: dict[int, dict[str, Turn]] = {}
        for turn in self.turns.current().order_by("index", "side", "attempt"):
            by_index.setdefault(turn.index, {})[turn.side] = turn
        rounds = []
        for index in sorted(by_index):
            sides = by_index[index]
            prompt = next(iter(sides.values())).prompt
            rounds.append(Round(index, prompt, sides.get("a"), sides.get("b")))
        return rounds


class BattleCategory(AtomicSave):
    class Assigner(models.TextChoices):
        VOTER = "voter", "Voter"
        RULE = "rule", "Rule"
        CLASSIFIER = "classifier", "LLM classifier"
        IMPORT = "import", "Import"

    battle = models.ForeignKey(Battle, on_delete=models.CASCADE)
    category = models.ForeignKey(Category, on_delete=models.CASCADE)
    assigner = models.CharField(max_length=20, choices=Assigner.choices, default=Assigner.VOTER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["battle", "category"], name="battle_category_unique")
        ]

    def __str__(self) -> str:
        return f"{self.battle} in {self.category}"


class TurnQuerySet(models.QuerySet):
    def current(self):
        """The answers as they stand: those replaced by a regenerate left out."""
        return self.filter(superseded=False)


class Round(NamedTuple):
    """One round of a battle: its prompt and each side's current answer (None if missing)."""

    index: int
    prompt: str
    a: "Turn | None"
    b: "Turn | None"


class Turn(models.Model):
    """One answer of one side in one round; regenerated answers keep their old rows."""

    class Side(models.TextChoices):
        A = "a", "A"
        B = "b", "B"

    battle = models.ForeignKey(Battle, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField(help_text="Round number, from 0.")
    side = models.CharField(max_length=1, choices=Side.choices)
    attempt = models.PositiveIntegerField(default=0, help_text="0, then 1, 2... on regenerate.")
    superseded = models.BooleanField(default=False)
    prompt = models.TextField()
    text = models.TextField(blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    total_ms = models.PositiveIntegerField(null=True, blank=True)
    tokens_in = models.PositiveIntegerField(null=True, blank=True)
    tokens_out = models.PositiveIntegerField(null=True, blank=True)
    usage_estimated = models.BooleanField(default=False)
    finish_reason = models.CharField(max_length=40, blank=True)
    cost = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    error = models.TextField(blank=True)
    style = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="Style features of the text (ratings.FEATURES); filled when first needed.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TurnQuerySet.as_manager()

    class Meta:
        ordering = ["battle", "index", "side", "attempt"]
        constraints = [
            models.UniqueConstraint(
                fields=["battle", "index", "side", "attempt"], name="turn_unique_attempt"
            )
        ]

    def __str__(self) -> str:
        return f"{self.battle} round {self.index} side {self.side}"


class VoteQuerySet(models.QuerySet):
    def counted(self):
        return self.filter(void_reason="")

    def rated(self):
        """The votes leaderboards count: counted and not excluded by the vote-quality checks
        (arena.quality); the one place that exclusion is applied."""
        return self.counted().exclude(review__status="excluded")


class Vote(AtomicSave):
    class Outcome(models.TextChoices):
        """The one outcome vocabulary: the same names, in the same order, as ratings.OUTCOMES."""

        A = "a", "A is better"
        B = "b", "B is better"
        TIE = "tie", "Tie"
        BOTH_BAD = "both_bad", "Both are bad"

        @property
        def code(self) -> int:
            """The ratings engine's integer code (ratings.A_WINS ... ratings.BOTH_BAD)."""
            return ratings.OUTCOMES.index(self.value)

    battle = models.OneToOneField(Battle, on_delete=models.CASCADE, related_name="vote")
    voter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    voter_label = models.CharField(
        max_length=200, blank=True, help_text="External voter id for imported votes."
    )
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    seconds_to_vote = models.FloatField(null=True, blank=True)
    reason_tags = models.JSONField(default=list, blank=True)
    void_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = VoteQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.battle}: {self.outcome}"

    @property
    def counted(self) -> bool:
        return not self.void_reason
