"""RTT estimation and congestion control for scan engines.

Everything here is pure arithmetic over times handed in by the caller:
no clock is read and nothing sleeps, so an engine can drive these objects
from a real clock and a test can drive them from a list of numbers.

Invariants kept:
  * ``RttEstimator.timeout()`` always lies in [min_rtt_timeout, max_rtt_timeout].
  * ``CongestionWindow.size`` always lies in [minimum, maximum].
"""

from __future__ import annotations

import math

from leadline.config import Timing

# Pacing (--min-rate, --max-rate) is ``core.ratecontrol.RateController``'s,
# for every scan type: there is one pacer.

__all__ = ["CongestionWindow", "RttEstimator"]

# RFC 6298 section 2: gains for the smoothed RTT and its mean deviation.
_SRTT_GAIN = 1 / 8
_RTTVAR_GAIN = 1 / 4
_RTTVAR_MULTIPLIER = 4


class RttEstimator:
    """Smoothed round-trip time of one host, turned into a probe timeout.

    A probe that got no answer within ``timeout()`` is presumed lost; the
    timeout tracks the host's real RTT (so a nearby host is scanned quickly)
    within the user's --min/--max-rtt-timeout bounds.
    """

    def __init__(self, timing: Timing) -> None:
        self.initial = timing.initial_rtt_timeout
        self.minimum = timing.min_rtt_timeout
        self.maximum = max(timing.max_rtt_timeout, timing.min_rtt_timeout)
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self.samples = 0

    def update(self, sample: float) -> None:
        """Fold in one measured RTT (seconds); negative samples count as 0."""
        sample = max(0.0, sample)
        if self.srtt is None or self.rttvar is None:
            self.srtt = sample
            self.rttvar = sample / 2
        else:
            self.rttvar = (1 - _RTTVAR_GAIN) * self.rttvar + _RTTVAR_GAIN * abs(self.srtt - sample)
            self.srtt = (1 - _SRTT_GAIN) * self.srtt + _SRTT_GAIN * sample
        self.samples += 1

    def timeout(self) -> float:
        """How long to wait for an answer before presuming the probe lost."""
        if self.srtt is None or self.rttvar is None:
            raw = self.initial
        else:
            raw = self.srtt + _RTTVAR_MULTIPLIER * self.rttvar
        return min(self.maximum, max(self.minimum, raw))


class CongestionWindow:
    """How many probes may be in flight at once: additive increase, multiplicative decrease.

    The window opens exponentially (slow start) until the first sign of
    loss, then linearly; a loss halves it.  At most one halving per flight
    of probes: a loss only counts if its probe was sent after the previous
    reduction, because a burst of losses from one overload is one signal.
    """

    def __init__(self, minimum: int, maximum: int, initial: int = 10) -> None:
        self.minimum = max(1, minimum)
        self.maximum = max(self.minimum, maximum)
        self.cwnd = float(min(self.maximum, max(self.minimum, initial)))
        self.ssthresh = float(self.maximum)
        self.last_reduction = -math.inf

    @property
    def size(self) -> int:
        return int(self.cwnd)

    def room(self, in_flight: int) -> int:
        """How many more probes may be launched with ``in_flight`` outstanding."""
        return max(0, self.size - in_flight)

    def set_maximum(self, maximum: int) -> None:
        """Shrink or grow the ceiling (e.g. when the file-descriptor budget changes)."""
        self.maximum = max(self.minimum, maximum)
        self.cwnd = min(self.cwnd, float(self.maximum))
        self.ssthresh = min(self.ssthresh, float(self.maximum))

    def on_answer(self) -> None:
        """One probe was answered: the path carried it, so open the window."""
        if self.cwnd < self.ssthresh:
            self.cwnd += 1.0
        else:
            self.cwnd += 1.0 / self.cwnd
        self.cwnd = min(self.cwnd, float(self.maximum))

    def on_drop(self, probe_sent_at: float, now: float) -> bool:
        """A probe sent at ``probe_sent_at`` was lost to congestion; True if the window shrank."""
        if probe_sent_at <= self.last_reduction:
            return False
        self.ssthresh = max(float(self.minimum), self.cwnd / 2)
        self.cwnd = self.ssthresh
        self.last_reduction = now
        return True
