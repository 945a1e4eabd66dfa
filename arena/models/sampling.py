"""The operator's pair-sampling choice: one row, edited in the admin (arena.battles.sampling)."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class SamplingSettings(models.Model):
    """A singleton (pk 1). A non-blank ``policy`` beats ``ARENA_SAMPLING_POLICY``."""

    class Policy(models.TextChoices):
        ENVIRONMENT = "", "As ARENA_SAMPLING_POLICY says"
        WEIGHTED = "weighted", "Weighted (each model's sampling weight)"
        UNIFORM = "uniform", "Uniform (every pair alike)"
        ACTIVE = "active", "Active (votes where they shrink the intervals that matter)"

    class CapPer(models.TextChoices):
        MODEL = "model", "Model"
        PROVIDER = "provider", "Provider (the contestant's organisation)"

    policy = models.CharField(max_length=10, choices=Policy.choices, blank=True, default="")
    exposure_cap = models.FloatField(
        default=0.3,
        validators=[MinValueValidator(0.01), MaxValueValidator(1.0)],
        help_text="Active policy: most share of battles one model (or provider) takes part in.",
    )
    cap_per = models.CharField(max_length=10, choices=CapPer.choices, default=CapPer.MODEL)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "sampling settings"

    def __str__(self) -> str:
        return "Sampling settings"

    def save(self, *args, **kwargs) -> None:
        self.pk = 1
        super().save(*args, **kwargs)

    @classmethod
    def current(cls) -> "SamplingSettings":
        """The stored row, or the defaults when none was saved."""
        return cls.objects.filter(pk=1).first() or cls()
