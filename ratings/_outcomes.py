"""Battle outcome codes: the one definition used by every part of ratings.

An outcome is seen from the side of model A, the answer shown first (left); B is the answer
shown second (right). :mod:`ratings.agreement` uses the first three codes as the verdicts on
one comparison (``BOTH_BAD`` is not a verdict there).
"""

from __future__ import annotations

from typing import Final

__all__ = ["A_WINS", "B_WINS", "TIE", "BOTH_BAD", "OUTCOMES"]

A_WINS: Final = 0
"""A (shown first, left) wins."""
B_WINS: Final = 1
"""B (shown second, right) wins."""
TIE: Final = 2
"""Neither answer is better."""
BOTH_BAD: Final = 3
"""Both answers are bad (a tie unless ``both_bad="drop"``; not an agreement verdict)."""

#: Outcome names by code: ``OUTCOMES[code]``.
OUTCOMES: Final = ("a", "b", "tie", "both_bad")

#: Number of outcome codes (``0 .. N_OUTCOMES - 1``).
N_OUTCOMES: Final = len(OUTCOMES)
#: Verdicts on one comparison (agreement statistics): ``A_WINS``, ``B_WINS``, ``TIE``.
N_VERDICTS: Final = 3
#: Score of A by outcome code: 1 (A wins), 0 (B wins), 1/2 (tie, both bad).
SCORE_OF_A: Final = (1.0, 0.0, 0.5, 0.5)
