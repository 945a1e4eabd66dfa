"""Counts of the counted human votes, kept in each vote change's own transaction, so that a
leaderboard refresh reads O(pairs) rows instead of every vote (arena/battles/counts.py)."""

from django.db import models


class PairCount(models.Model):
    """Counted votes per (category, contestant in A, contestant in B, outcome).

    ``category_key`` is the category's pk, or 0 for the overall board (a plain integer, not a
    foreign key: the overall row needs a key that a unique constraint can match).
    """

    category_key = models.BigIntegerField()
    contestant_a_id = models.BigIntegerField()
    contestant_b_id = models.BigIntegerField()
    outcome = models.CharField(max_length=10)
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["category_key", "contestant_a_id", "contestant_b_id", "outcome"],
                name="pair_count_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.category_key}: {self.contestant_a_id}-{self.contestant_b_id} {self.outcome}"


class DayCount(models.Model):
    """Counted votes per (category, day of the vote in the current time zone); 0: overall."""

    category_key = models.BigIntegerField()
    day = models.DateField()
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["category_key", "day"], name="day_count_unique")
        ]

    def __str__(self) -> str:
        return f"{self.category_key}: {self.day} {self.n}"
