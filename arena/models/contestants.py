"""Models, categories and the check on key-variable names."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from arena.core.keys import key_var_refusal

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def validate_env_var_name(value: str) -> None:
    """Only the *name* of the variable holding a key is stored, never a key, and only a name
    the operator allows (``core.keys``)."""
    if not value:
        return
    if not _ENV_NAME.match(value):
        raise ValidationError(
            "Enter the name of an environment variable (e.g. OPENAI_API_KEY), not a key.",
            code="not_a_name",  # never echo the value: it may be a key pasted by mistake
        )
    refusal = key_var_refusal(value)
    if refusal:
        raise ValidationError(f"{refusal}.", code="not_allowed")


class Contestant(models.Model):
    class Kind(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible chat completions"
        ANTHROPIC = "anthropic", "Anthropic Messages"
        RECORDED = "recorded", "Recorded answers"

    name = models.CharField(
        max_length=200, unique=True, help_text="Display name, shown after the vote."
    )
    organisation = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.OPENAI)
    base_url = models.URLField(blank=True)
    model_id = models.CharField(max_length=200, blank=True, help_text="Upstream model id.")
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_env_var_name],
        help_text="Name of the environment variable that holds the API key.",
    )
    system_prompt = models.TextField(blank=True)
    temperature = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0)])
    top_p = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0)])
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    price_input_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True
    )
    price_output_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True
    )
    sampling_weight = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)])
    identity_patterns = models.TextField(
        blank=True,
        help_text="Extra words, one per line, that reveal this model when an answer names them.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(sampling_weight__gte=0), name="contestant_weight_gte_0"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Category(models.Model):
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name
