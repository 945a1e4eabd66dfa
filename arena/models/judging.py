"""Runs (judging and generation), judges and their verdicts."""

from django.conf import settings
from django.db import models

from arena.models.battles import Battle
from arena.models.contestants import Contestant


class Run(models.Model):
    """A background job a page can show progress for: judging, answer generation, refresh."""

    class Kind(models.TextChoices):
        JUDGE = "judge", "Judge run"
        GENERATE = "generate", "Answer generation"
        LEADERBOARD = "leaderboard", "Leaderboard refresh"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    params = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.pk}"


class Judge(models.Model):
    class VerdictFormat(models.TextChoices):
        FIVE = "five", "Five levels (A>>B ... B>>A)"
        THREE = "three", "Three levels (A / B / tie)"

    class InconsistentRule(models.TextChoices):
        TIE = "tie", "Inconsistent orders become a tie"
        AVERAGE = "average", "Average the two orders' scores"

    name = models.CharField(max_length=200, unique=True)
    contestant = models.ForeignKey(Contestant, null=True, blank=True, on_delete=models.PROTECT)
    template = models.TextField(blank=True)
    template_version = models.CharField(max_length=40, default="1")
    verdict_format = models.CharField(
        max_length=10, choices=VerdictFormat.choices, default=VerdictFormat.FIVE
    )
    inconsistent_rule = models.CharField(
        max_length=10, choices=InconsistentRule.choices, default=InconsistentRule.TIE
    )
    auto_judge = models.BooleanField(
        default=False, help_text="Judge every new human-voted battle automatically."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Judgement(models.Model):
    class Order(models.TextChoices):
        AB = "ab", "A shown first"
        BA = "ba", "B shown first"

    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="judgements")
    battle = models.ForeignKey(Battle, on_delete=models.CASCADE, related_name="judgements")
    order = models.CharField(max_length=2, choices=Order.choices, default=Order.AB)
    raw_output = models.TextField(blank=True)
    verdict = models.CharField(max_length=10, blank=True, help_text="Empty when unparsed.")
    parse_error = models.CharField(max_length=300, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    tokens_in = models.PositiveIntegerField(null=True, blank=True)
    tokens_out = models.PositiveIntegerField(null=True, blank=True)
    cost = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["judge", "battle", "order"], name="judgement_unique_per_order"
            )
        ]

    def __str__(self) -> str:
        return f"{self.judge} on {self.battle} ({self.order})"
