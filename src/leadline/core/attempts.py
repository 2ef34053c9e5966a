"""How many attempts silence needs before it is believed, from the loss a scan has measured.

Pure and clock-free.  A session reports the outcome of each resolved
first and second attempt (an answer is counted when its attempt's
deadline passes, as a timeout is, so both are counted over the same span
of time); ``needed`` then gives the fewest attempts that keep the
expected number of answering ports wrongly left unanswered under
``MISS_BUDGET`` for the whole scan, never more than the user's limit.

With per-attempt loss p, a share ``u`` of first attempts unanswered and a
share ``r`` of second attempts answered, ``p = r * u / (1 - u)`` whatever
share of the ports never answers (filtered).  ``r`` starts from a small
prior so that thin evidence asks for more attempts.  The model holds for
random loss, not for a target that caps its answers: a measured cap gets
the user's full number of attempts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["MISS_BUDGET", "AttemptBudget", "attempts_for"]

MISS_BUDGET = 0.01  # expected answering ports wrongly left unanswered, per scan
_SECOND_PRIOR = 0.02  # pseudo-answers to second attempts before any resolve
_MAX_LOSS = 0.95
_MIN_SECOND_OUTCOMES = 10  # resolved second attempts before two attempts may be enough


def attempts_for(loss: float, answering: float) -> int:
    """The fewest attempts that leave under MISS_BUDGET of ``answering`` ports unanswered at per-attempt ``loss``."""
    if loss <= 0.0:
        return 1
    return math.ceil(math.log(MISS_BUDGET / max(answering, 1.0)) / math.log(loss))


@dataclass(slots=True)
class AttemptBudget:
    """Outcomes of resolved first and second attempts, and what they imply."""

    ceiling: int  # --max-retries + 1
    planned: int  # ports the whole scan will decide (the miss budget is spread over them)
    first_answered: int = 0
    first_silent: int = 0
    second_answered: int = 0
    second_silent: int = 0

    def resolved(self, attempt: int, answered: bool) -> None:
        """Attempt number ``attempt`` (1 or 2; later ones are not counted) came back or timed out."""
        if attempt == 1:
            if answered:
                self.first_answered += 1
            else:
                self.first_silent += 1
        elif attempt == 2:
            if answered:
                self.second_answered += 1
            else:
                self.second_silent += 1

    def needed(self, *, any_answered: bool, started: int, capped: bool) -> int:
        """Attempts before silence is believed.  ``capped``: the target caps its answers (or may)."""
        ceiling = self.ceiling
        if not any_answered:
            return min(2, ceiling)
        if self.first_answered == 0 or capped:
            # Answers capped (or going missing for a reason not yet known) are not
            # independent loss: the estimate below would read starved retries as
            # proof of silence.
            return ceiling
        first = self.first_answered + self.first_silent
        scale = max(started, self.planned) / max(first, 1)
        # If every unanswered first attempt were loss, p would be u / (1 - u):
        # a bound that needs no evidence from retries.
        bound = self.first_silent / self.first_answered
        if bound < 1.0 and attempts_for(bound, self.first_answered * scale / (1 - bound)) <= 2:
            return min(ceiling, 2)
        second = self.second_answered + self.second_silent
        answered_again = (self.second_answered + _SECOND_PRIOR) / (second + 1)
        loss = min(_MAX_LOSS, answered_again * bound)
        floor = 3 if second < _MIN_SECOND_OUTCOMES else 2
        if loss <= 0.0:
            return min(ceiling, floor)
        needed = attempts_for(loss, self.first_answered * scale / (1 - loss))
        return min(ceiling, max(floor, needed))
