"""Sending one round of OS detection probes to many hosts at once, and capturing what comes back.

The probes and their timing come from ``core.osprobes`` (the SEQ probes
100 ms apart, the rest right after); this loop only sends each at its
time and hands back every IPv4 TCP or ICMP datagram the hosts sent us,
with its arrival time.  Deciding what an answer means is the
fingerprint builder's work (``detect.os.fingerprint``).

A round ends ``wait`` seconds after its last probe left.  Send times are wall-clock
(the SEQ test reads rates against them and the uptime guess needs a date).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from leadline.core.evidence import PacketEvidence
from leadline.core.osprobes import OsPlan, OsProbe
from leadline.engines.packetio import Capture, open_ip_sender

__all__ = ["RoundTraffic", "run_os_round"]

_NEEDS = "OS detection (-O) needs root: it sends raw packets"
_TCP, _ICMP = 6, 1


@dataclass(slots=True)
class RoundTraffic:
    """One host's round: when each probe left, and (arrival time, datagram) for what the host sent."""

    plan: OsPlan
    sent: dict[str, float] = field(default_factory=dict)
    received: list[tuple[float, bytes]] = field(default_factory=list)


def run_os_round(rounds: Sequence[tuple[OsPlan, Sequence[OsProbe]]], *, wait: float,
                 stop: threading.Event | None = None, evidence: PacketEvidence | None = None) -> list[RoundTraffic]:
    """Send every host's probes on schedule; capture answers until ``wait`` after the last probe."""
    traffic = {plan.target: RoundTraffic(plan) for plan, _ in rounds}
    schedule = sorted(((probe.at, plan.target, probe) for plan, probes in rounds for probe in probes),
                      key=lambda item: item[0])
    sender = open_ip_sender(4, _NEEDS)
    capture = Capture(4, (_TCP, _ICMP), needs=_NEEDS)
    try:
        for plan, _ in rounds:
            capture.follow(plan.target)
        started = time.time()
        clock0 = time.monotonic()
        index = 0
        last = schedule[-1][0] if schedule else 0.0
        deadline = clock0 + last + wait
        while time.monotonic() < deadline:
            if stop is not None and stop.is_set():
                break
            now = time.monotonic() - clock0
            while index < len(schedule) and schedule[index][0] <= now:
                _, target, probe = schedule[index]
                _send(sender, target, probe, traffic[target], started, clock0, evidence)
                index += 1
            _receive(capture, traffic, started, clock0, evidence)
            upcoming = schedule[index][0] + clock0 if index < len(schedule) else deadline
            capture.wait(max(0.0, min(upcoming, deadline) - time.monotonic()))
    finally:
        capture.close()
        sender.close()
        if evidence is not None:
            evidence.flush()
    return [traffic[plan.target] for plan, _ in rounds]


def _send(sender: socket.socket, target: str, probe: OsProbe, traffic: RoundTraffic, started: float, clock0: float,
          evidence: PacketEvidence | None) -> None:
    wall = started + (time.monotonic() - clock0)
    try:
        sender.sendto(probe.datagram, (target, 0))
    except (BlockingIOError, OSError):
        return
    traffic.sent[probe.name] = wall
    if evidence is not None:
        if evidence.captures:
            evidence.record(probe.datagram, wall)
        if evidence.traces:
            evidence.sent(probe.datagram, wall - started)


def _receive(capture: Capture, traffic: dict[str, RoundTraffic], started: float, clock0: float,
             evidence: PacketEvidence | None) -> None:
    for datagram in capture.datagrams():
        if len(datagram) < 20 or datagram[0] >> 4 != 4:
            continue
        source = "%d.%d.%d.%d" % (datagram[12], datagram[13], datagram[14], datagram[15])
        host = traffic.get(source)
        if host is None:
            continue
        wall = started + (time.monotonic() - clock0)
        host.received.append((wall, datagram))
        if evidence is not None:
            if evidence.captures:
                evidence.record(datagram, wall)
            if evidence.traces:
                evidence.received(datagram, wall - started)
