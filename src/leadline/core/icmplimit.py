"""Reading a target's ICMP rate limit from when its errors arrive.

Linux answers each source address with at most a burst of about six
ICMP errors, then one per ``net.ipv4.icmp_ratelimit`` (1000 ms; ICMPv6
``net.ipv6.icmp.ratelimit``, scaled down for short prefixes); BSDs and
routers have their own buckets.  Whatever the mechanism, while a scan
keeps asking faster than the bucket refills, the errors come as a
cluster (the burst) and then one per refill.  ``IcmpLimit`` is fed the
arrival time of each error a lane (one source address, one target)
receives and says what the target allows: the burst, the interval, and
so how long to wait between rounds so no refill goes unused.

The session never needs the estimate to be right for its results to be
right (a round's silences count only when a known-closed port answered
after them, see ``core/udpsession.py``); the estimate sets the pace.
Pure: times are parameters.
"""

from __future__ import annotations

from collections import deque

__all__ = ["IcmpLimit", "CLUSTER_GAP"]

CLUSTER_GAP = 0.02  # errors closer than this came out of one burst
_KEPT = 16  # gaps remembered
_MIN_GAPS = 3  # refills seen before an interval is believed


class IcmpLimit:
    """The burst and refill interval one lane's errors show."""

    __slots__ = ("_last", "_refills", "burst", "_in_first_cluster", "limited", "errors")

    def __init__(self) -> None:
        self._last: float | None = None
        self._refills: deque[float] = deque(maxlen=_KEPT)  # arrival times of errors while the limit held
        self.burst = 0  # errors in the first cluster
        self._in_first_cluster = True
        self.limited = False  # the session saw silence a limit explains (a canary went unanswered)
        self.errors = 0

    def error(self, now: float) -> None:
        """An ICMP error from the target arrived at ``now``."""
        self.errors += 1
        last = self._last
        self._last = now
        if last is None:
            self.burst = 1
            return
        gap = now - last
        if self._in_first_cluster and gap < CLUSTER_GAP:
            self.burst += 1
            return
        self._in_first_cluster = False
        if self.limited and gap >= CLUSTER_GAP:
            self._refills.append(now)

    @property
    def interval(self) -> float | None:
        """Seconds between refills, once a few were seen while the limit held; None before."""
        refills = self._refills
        if len(refills) <= _MIN_GAPS:
            return None
        # Refills come on a fixed schedule: one met late makes the next gap short, so the
        # span over several is the interval, where single gaps would scatter around it.
        return (refills[-1] - refills[0]) / (len(refills) - 1)

    def round_period(self, timeout: float) -> float:
        """How long a limited lane waits between rounds: an eighth of a refill once measured, a quarter
        of a round's timeout before.

        Sending faster than the refill wastes nothing but packets; sending
        slower leaves refills unused.  An eighth keeps the unused part of
        each refill under about 12%.
        """
        interval = self.interval
        if interval is None:
            return timeout / 4
        return interval / 8

    def describe(self) -> str:
        interval = self.interval
        if interval is None:
            return f"ICMP errors limited after a burst of {self.burst}"
        return f"ICMP errors limited: a burst of {self.burst}, then one per {interval * 1000:.0f} ms"
