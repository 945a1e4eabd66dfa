"""Vote quality: each checked vote's review and each voter's standing (arena.quality)."""

from django.conf import settings
from django.db import models

from arena.models.battles import AtomicSave, Vote


class VoterStanding(models.Model):
    """One voter's running sequential-test statistics and what staff or the test decided.

    A voter is an account and a label: ``""`` for the account's own votes, the record's
    ``voter`` for external battles sent by that account's tool (its people, told apart)."""

    class Status(models.TextChoices):
        WATCHED = "watched", "Watched"
        FLAGGED = "flagged", "Flagged by the sequential test"
        EXCLUDED = "excluded", "Excluded by staff"
        TRUSTED = "trusted", "Reinstated by staff"

    voter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vote_standings"
    )
    label = models.CharField(max_length=200, blank=True, help_text="Vote.voter_label.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WATCHED)
    evidence = models.JSONField(default=dict, help_text="ratings.VoterEvidence.as_dict()")
    reason = models.CharField(max_length=80, blank=True, help_text="The alternative that won.")
    figure = models.FloatField(null=True, blank=True, help_text="The statistic when flagged.")
    votes_checked = models.PositiveIntegerField(default=0)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["voter", "label"], name="voter_standing_unique")
        ]

    def __str__(self) -> str:
        who = f"{self.voter} / {self.label}" if self.label else str(self.voter)
        return f"{who}: {self.status}"

    @property
    def votes_excluded(self) -> bool:
        return self.status in (self.Status.FLAGGED, self.Status.EXCLUDED)


class VoteReview(AtomicSave):
    """The checks' verdict on one counted vote; an excluded vote is kept but not rated
    (``Vote.objects.rated()``)."""

    class Status(models.TextChoices):
        OK = "ok", "Passed"
        EXCLUDED = "excluded", "Excluded"
        REINSTATED = "reinstated", "Reinstated by staff"

    vote = models.OneToOneField(Vote, on_delete=models.CASCADE, related_name="review")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OK)
    reasons = models.JSONField(
        default=list, blank=True, help_text='[{"check": ..., "figure": ..., "limit": ...}]'
    )
    surprise = models.FloatField(
        null=True, blank=True, help_text="The voter's largest sequential statistic after it."
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"review of {self.vote_id}: {self.status}"

    @property
    def checks(self) -> str:
        return ", ".join(r.get("check", "?") for r in self.reasons)
