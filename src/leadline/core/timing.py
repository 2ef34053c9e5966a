"""RTT estimation, rate limits and congestion control for scan engines.

Everything here is pure arithmetic over times handed in by the caller:
no clock is read and nothing sleeps, so an engine can drive these objects
from a real clock and a test can drive them from a list of numbers.

Invariants kept:
  * ``RttEstimator.timeout()`` always lies in [min_rtt_timeout, max_rtt_timeout].
  * ``TokenBucket`` never holds more than ``burst`` tokens nor fewer than 0,
    and time running backwards never creates tokens.
  * ``CongestionWindow.size`` always lies in [minimum, maximum].
"""

from __future__ import annotations

import math

from leadline.config import Timing

__all__ = ["CongestionWindow", "RateGovernor", "RttEstimator", "TokenBucket"]

# RFC 6298 section 2: gains for the smoothed RTT and its mean deviation.
_SRTT_GAIN = 1 / 8
_RTTVAR_GAIN = 1 / 4
_RTTVAR_MULTIPLIER = 4
# Refills are sums of small floats; without slack, 10 refills of 0.1 token
# fall short of 1.0 and the bucket drifts below its rate.
_TOKEN_EPSILON = 1e-9


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


class TokenBucket:
    """Caps the average send rate (--max-rate) while allowing a small burst.

    ``rate`` is tokens (probes) per second; ``None`` means unlimited.  The
    bucket starts full so a scan does not begin with an artificial pause.
    """

    def __init__(self, rate: float | None, burst: float = 1.0) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.burst = max(1.0, burst)
        self.tokens = self.burst
        self.last: float | None = None

    def _refill(self, now: float) -> None:
        if self.rate is None:
            return
        if self.last is not None and now > self.last:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        if self.last is None or now > self.last:
            self.last = now

    def available(self, now: float) -> float:
        """Whole probes that may be sent at ``now`` (infinite when unlimited)."""
        if self.rate is None:
            return math.inf
        self._refill(now)
        return math.floor(self.tokens + _TOKEN_EPSILON)

    def take(self, now: float) -> bool:
        """Spend one token if there is one; True means the probe may go now."""
        if self.rate is None:
            return True
        self._refill(now)
        if self.tokens + _TOKEN_EPSILON >= 1.0:
            self.tokens = max(0.0, self.tokens - 1.0)
            return True
        return False

    def wait_time(self, now: float) -> float:
        """Seconds until the next token is available (0 if one is available now)."""
        if self.rate is None:
            return 0.0
        self._refill(now)
        if self.tokens + _TOKEN_EPSILON >= 1.0:
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateGovernor:
    """Combines --min-rate and --max-rate into "how many may I send, how many must I".

    ``--max-rate`` is a token bucket.  ``--min-rate`` is a debt: from the first
    probe on, ``min_rate * elapsed`` probes are owed, and whatever is owed must
    go out now even if the congestion window says wait, as nmap does.
    """

    def __init__(self, min_rate: float | None, max_rate: float | None) -> None:
        if min_rate is not None and min_rate <= 0:
            raise ValueError(f"min_rate must be positive, got {min_rate}")
        if max_rate is not None and max_rate <= 0:
            raise ValueError(f"max_rate must be positive, got {max_rate}")
        if min_rate is not None and max_rate is not None and min_rate > max_rate:
            min_rate = max_rate
        self.min_rate = min_rate
        # A burst of 1% of a second's worth keeps the rate smooth at the scale
        # an observer (IDS, rate-limiting firewall) would measure it.
        self.bucket = TokenBucket(max_rate, burst=max(1.0, (max_rate or 0.0) / 100))
        self.start: float | None = None
        self.sent = 0

    def may_send(self, now: float) -> float:
        """Upper bound set by --max-rate on probes sent at ``now`` (inf: no bound)."""
        return self.bucket.available(now)

    def must_send(self, now: float) -> int:
        """Probes owed to --min-rate at ``now`` beyond what has been sent."""
        if self.min_rate is None or self.start is None:
            return 0 if self.min_rate is None else 1
        owed = math.floor(self.min_rate * (now - self.start)) + 1
        return max(0, owed - self.sent)

    def record_sent(self, now: float, count: int = 1) -> None:
        """Account for probes that went out at ``now``."""
        if self.start is None:
            self.start = now
        for _ in range(count):
            self.bucket.take(now)
        self.sent += count

    def next_event(self, now: float) -> float | None:
        """Seconds until the rate limits change what may or must be sent, or None."""
        waits: list[float] = []
        if self.bucket.rate is not None:
            waits.append(self.bucket.wait_time(now))
        if self.min_rate is not None and self.start is not None:
            due_at = self.start + self.sent / self.min_rate
            waits.append(max(0.0, due_at - now))
        return min(waits) if waits else None


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
