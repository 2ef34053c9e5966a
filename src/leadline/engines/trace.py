"""The traceroute engine: a thin loop moving a ``TraceSession``'s probes and answers over real sockets.

Probes leave through the raw IP sender of ``packetio`` (our header
included, so the hop limit is the session's); answers are read by a
``Capture`` on the interfaces the routes to the targets use, filtered
to TCP, UDP and ICMP (ICMPv6).  Every decision is the session's.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable

from leadline.core.evidence import PacketEvidence
from leadline.core.tracesession import TraceSession
from leadline.engines.packetio import MAX_WAIT, RECEIVE_BATCH, Capture, open_ip_sender

__all__ = ["run_trace"]

_NEEDS_ROOT = "Traceroute has to be run as root"
_SEND_LOSSES = (errno.ENOBUFS, errno.EAGAIN, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EPERM, errno.EACCES)


def run_trace(session: TraceSession, family: int, *, stop: threading.Event | None = None,
              evidence: PacketEvidence | None = None, clock: Callable[[], float] = time.monotonic) -> None:
    """Run ``session`` until every host's route is known (or ``stop`` is set)."""
    sender = open_ip_sender(family, _NEEDS_ROOT)
    capture = Capture(family, (6, 17, 58 if family == 6 else 1), needs=_NEEDS_ROOT)
    start = clock()
    wall_offset = time.time() - start
    traces = evidence is not None and evidence.traces
    try:
        for address in session.hosts:
            capture.follow(address)  # every capture socket opens before the first probe leaves
        while not session.finished and not (stop is not None and stop.is_set()):
            now = clock()
            for address, datagram in session.due(now):
                capture.follow(address)  # listen where the answer will come before asking
                try:
                    sender.sendto(datagram, (address, 0))
                except OSError as exc:
                    if exc.errno not in _SEND_LOSSES:
                        raise
                if evidence is not None:
                    if traces:
                        evidence.sent(datagram, now - start)
                    if evidence.captures:
                        evidence.record(datagram, now + wall_offset)
            session.expire(clock())
            capture.wait(min(MAX_WAIT, session.time_until_next(clock())))
            for data in capture.datagrams(RECEIVE_BATCH):
                now = clock()
                if session.receive(data, now) and evidence is not None:
                    if traces:
                        evidence.received(data, now - start)
                    if evidence.captures:
                        evidence.record(data, now + wall_offset)
            session.expire(clock())
    finally:
        sender.close()
        capture.close()
        if evidence is not None:
            evidence.flush()
