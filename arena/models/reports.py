"""What is computed from votes and stored: leaderboard snapshots, calibration reports."""

from django.db import models
from django.db.models import Q

from arena.models.contestants import Category
from arena.models.judging import Judge


class LeaderboardSnapshot(models.Model):
    class Scope(models.TextChoices):
        HUMAN = "human", "Human votes"
        JUDGE = "judge", "Judge verdicts"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed"

    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.HUMAN)
    judge = models.ForeignKey(Judge, null=True, blank=True, on_delete=models.CASCADE)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.CASCADE)
    style_control = models.BooleanField(default=False)
    method = models.CharField(max_length=40)
    settings = models.JSONField(default=dict)
    seed = models.BigIntegerField(null=True, blank=True)
    cutoff_vote_id = models.BigIntegerField(null=True, blank=True)
    cutoff_time = models.DateTimeField(null=True, blank=True)
    code_version = models.CharField(max_length=80, blank=True)
    results = models.JSONField(default=dict)
    # The pairwise matrices behind the pictures and the A-vs-B view: large, read apart.
    pictures = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["scope", "category", "style_control", "status"])]

    def __str__(self) -> str:
        return f"{self.scope} snapshot {self.pk}"


class CalibrationReport(models.Model):
    """A judge's calibration report, computed on a worker and shared by every process: the
    pages serve the latest complete one, marked stale when its fingerprint (what it was
    computed from) is no longer the data's. At most one computation per judge is pending."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Computing"
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed"

    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="calibration_reports")
    fingerprint = models.CharField(max_length=64, help_text="Hash of what it was computed from.")
    settings = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    steps_done = models.PositiveSmallIntegerField(default=0)
    steps_total = models.PositiveSmallIntegerField(default=0)
    report = models.JSONField(default=dict)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["judge"],
                condition=Q(status__in=["queued", "running"]),
                name="calibration_one_pending_per_judge",
            )
        ]
        indexes = [models.Index(fields=["judge", "status", "computed_at"])]

    def __str__(self) -> str:
        return f"calibration of {self.judge} ({self.status})"
