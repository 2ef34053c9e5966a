"""What to send to a port next, given what came back: nmap's probe order, as a pure state machine.

One ``PortProbing`` per open port.  The engine asks ``next_probe()``, sends
it, hands every chunk received to ``feed()`` (True: the answer is settled,
stop reading), and calls ``end_probe()`` when the connection closed or the
probe's wait ran out.  No socket and no clock in here: the tests drive it
from byte literals.

The order, as nmap's: the NULL probe first (TCP: send nothing, wait for a
banner); then every probe whose ``ports`` (``sslports`` inside TLS) list
the port, in file order; then the others whose ``rarity`` is at most the
intensity, in file order.  A softmatch narrows later probes to those with
a hard match for that service (below intensity 9).  Each probe's answer is
read with its own matches, then its ``fallback`` probes' matches, then
(TCP) the NULL probe's.  A connection closed on us with nothing said
within ``tcpwrappedms`` of the NULL probe is ``tcpwrapped``.  A hard match
for ``ssl`` asks the engine for TLS; probing then starts again inside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from leadline.detect.service.match import PATTERN_BUDGET, MatchOutcome, ServiceMatch, find_match
from leadline.detect.service.probes import Match, Probe, ProbeDatabase
from leadline.model import ServiceDetail

__all__ = ["PortProbing", "probe_order"]


def probe_order(db: ProbeDatabase, protocol: str, port: int, intensity: int, *, tls: bool = False) -> list[Probe]:
    """The probes nmap would send to ``port``, in order, before any answer narrows them."""
    proto = protocol.upper()
    mine = [p for p in db.probes if p.protocol == proto]
    first = [p for p in mine if p.is_null]
    listed = [p for p in mine if not p.is_null and port in (p.sslports if tls else p.ports)]
    seen = {id(p) for p in first + listed}
    rest = [p for p in mine if id(p) not in seen and p.rarity <= intensity]
    return first + listed + rest


class PortProbing:
    """The conversation with one port: probes in order, the best answer so far."""

    def __init__(self, db: ProbeDatabase, protocol: str, port: int, intensity: int = 7, *, tls: bool = False,
                 log: Callable[[str], None] | None = None, budget: float = PATTERN_BUDGET) -> None:
        self.db = db
        self.protocol = protocol
        self.port = port
        self.intensity = intensity
        self.tls = tls
        self.log = log
        self.budget = budget
        self.queue = probe_order(db, protocol, port, intensity, tls=tls)
        self.hard: ServiceMatch | None = None
        self.soft: ServiceMatch | None = None
        self.wrapped = False
        self.wants_tls = False
        self.answered = False  # something came back to some probe
        self._last: tuple[tuple[str, str, bytes], MatchOutcome] | None = None

    # -- the order ---------------------------------------------------------
    def next_probe(self) -> Probe | None:
        """The next probe to send, or None when the conversation is over."""
        if self.settled:
            return None
        while self.queue:
            probe = self.queue.pop(0)
            if self.soft is not None and self.intensity < 9 and not self._can_harden(probe):
                continue
            return probe
        return None

    @property
    def settled(self) -> bool:
        return self.hard is not None or self.wrapped or self.wants_tls

    def _can_harden(self, probe: Probe) -> bool:
        assert self.soft is not None
        return any(not m.soft and m.service == self.soft.service for m in probe.matches)

    def _matches(self, probe: Probe) -> list[Match]:
        lines = list(probe.matches)
        for name in probe.fallback:  # a TCP probe may fall back on a UDP probe's lines (DNS)
            other = self.db.probe(probe.protocol, name) or self.db.probe("UDP" if probe.protocol == "TCP" else "TCP",
                                                                          name)
            if other is not None and other is not probe:
                lines.extend(other.matches)
        null = self.db.probe("TCP", "NULL") if probe.protocol == "TCP" else None
        if null is not None and null is not probe:
            lines.extend(null.matches)
        return lines

    # -- the answers -------------------------------------------------------
    def _outcome(self, probe: Probe, data: bytes) -> MatchOutcome:
        """The matches' verdict on ``data``, computed once per (probe, answer)."""
        key = (probe.name, probe.protocol, data)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        soft = self.soft.service if self.soft is not None and self.intensity < 9 else None
        outcome = find_match(self._matches(probe), data, soft_service=soft, budget=self.budget,
                             deadline=time.monotonic() + 5.0)
        if self.log is not None:
            for line in outcome.abandoned:
                self.log(f"Service scan: gave up on pattern {line} for port {self.port}/{self.protocol}")
        self._last = (key, outcome)
        return outcome

    def peek(self, probe: Probe, data: bytes) -> bool:
        """Would this answer settle the port?  Changes nothing: probes in flight together are read in order later."""
        if not data:
            return False
        found = self._outcome(probe, data).match
        return found is not None and not found.soft

    def feed(self, probe: Probe, data: bytes) -> bool:
        """Read what ``probe`` got back so far; True when the port's answer is settled."""
        if not data:
            return False
        self.answered = True
        found = self._outcome(probe, data).match
        if found is None:
            return False
        if found.soft:
            if self.soft is None:
                self.soft = found
            return False
        if found.service == "ssl" and not self.tls:
            self.wants_tls = True
            return True
        self.hard = found
        return True

    def end_probe(self, probe: Probe, data: bytes, closed_after: float | None) -> None:
        """The probe's exchange is over: ``closed_after`` seconds after connecting the peer closed (None: it did not)."""
        if probe.is_null and not data and not self.answered and closed_after is not None \
                and closed_after * 1000 < probe.wrapped_ms():
            self.wrapped = True

    # -- the verdict -------------------------------------------------------
    def result(self) -> ServiceDetail | None:
        """What to report: a hard match, else a softmatch, else tcpwrapped; None when nothing was learned."""
        tunnel = "ssl" if self.tls else None
        found = self.hard or self.soft
        if found is not None:
            name = found.service
            if name.startswith("ssl/"):  # spoke of TLS without it: nginx's "plain HTTP to an HTTPS port"
                name, tunnel = name[4:], "ssl"
            return ServiceDetail(name, found.product, found.version, found.extrainfo, found.hostname,
                                 found.ostype, found.devicetype, tunnel, "probed", 10, found.cpe)
        if self.wrapped:
            return ServiceDetail("tcpwrapped", method="probed", confidence=8)
        if self.tls:
            return ServiceDetail("ssl", method="probed", confidence=10)
        return None
