"""The raw-packet engine: a thin loop that moves a ScanSession's datagrams over real sockets.

Sending uses a raw IP socket with the header included, so the probe's
bytes go out exactly as the scan module built them.  Receiving uses the
capture of ``packetio``: packet sockets bound to the interfaces the
routes to the targets use (each is opened before the first probe to a
destination behind it leaves), seeing ICMP errors too and, when a pcap
is written, our own outgoing packets, so the pcap holds the whole
conversation, including the RST the kernel sends when a SYN/ACK answers
a SYN it never made.  The capture's BPF filter passes only the probe's
protocol and ICMP; without a pcap it also drops our own packets, which
would otherwise double the receive work.

The capture's drop counters (PACKET_STATISTICS) are read before each
point where the session judges silence and handed to
``session.on_receive_drops``: under a flood the kernel may throw real
answers away, and the session must not take that silence for filtering.

All decisions live in the session; this module only moves bytes and
reads the clock.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Callable

from leadline.core.evidence import PacketEvidence
from leadline.core.session import Event, ScanSession
from leadline.engines.packetio import MAX_WAIT, RECEIVE_BATCH, Capture, destination, open_ip_sender
from leadline.engines.routes import source_address_for

__all__ = ["run_raw_scan", "source_address_for"]

_NEEDS_ROOT = "raw-packet scans need root (or CAP_NET_RAW); use -sT instead"
_SEND_LOSSES = (errno.ENOBUFS, errno.EAGAIN, errno.EHOSTUNREACH, errno.ENETUNREACH)


def run_raw_scan(
    session: ScanSession,
    *,
    family: int = 4,
    on_event: Callable[[Event], None],
    stop: threading.Event | None = None,
    evidence: PacketEvidence | None = None,
    clock: Callable[[], float] = time.monotonic,
    share: tuple[int, int] | None = None,
    host_share: tuple[int, int] | None = None,
) -> None:
    """Run ``session`` to the end (or until ``stop`` is set), sending and capturing for real.

    ``share=(index, count)``: this session probes only ports congruent to
    ``index`` modulo ``count`` (one worker of a split scan); its capture
    then never sees TCP replies meant for the others.  ``host_share`` is the
    same for IPv4 hosts (the address modulo ``count``): TCP replies and ICMP
    answers from the others' hosts are dropped by the kernel.
    """
    sender = open_ip_sender(family, _NEEDS_ROOT)
    # Evidence someone will read (a pcap, the packet trace, --explain) gets the
    # kernel's arrival times and a clock reading per send: under load, answers
    # wait in our socket while a batch of probes goes out, and the RTTs shown
    # would carry that wait.
    precise = evidence is not None or session.explain
    icmp = 58 if family == 6 else 1
    capture = Capture(
        family,
        tuple(dict.fromkeys((session.module.ip_protocol, icmp))),
        needs=_NEEDS_ROOT,
        outgoing=evidence is not None and evidence.captures,
        share=share,
        source_share=host_share if family == 4 else None,
        timestamps=precise,
    )
    loop = _Loop(session, capture, on_event, evidence, clock)
    try:
        while not session.finished and not (stop is not None and stop.is_set()):
            # Drops are read just before each point where silence is judged
            # (``due`` and ``expire`` both sweep timeouts), so no probe is
            # judged silent while a drop that may have taken its answer is unreported.
            loop.check_drops()
            loop.send(sender)
            capture.wait(min(MAX_WAIT, session.time_until_next(clock())))
            if precise:
                loop.receive_precisely()
            else:
                loop.receive()
            loop.check_drops()
            for event in session.expire(clock()):
                on_event(event)
    finally:
        sender.close()
        capture.close()
        if evidence is not None:
            evidence.flush()


class _Loop:
    """The three steps of the engine's loop, over one session, capture and evidence."""

    def __init__(
        self,
        session: ScanSession,
        capture: Capture,
        on_event: Callable[[Event], None],
        evidence: PacketEvidence | None,
        clock: Callable[[], float],
    ) -> None:
        self.session = session
        self.capture = capture
        self.on_event = on_event
        self.evidence = evidence
        self.clock = clock
        self.precise = evidence is not None or session.explain
        self.start = clock()
        self.wall_offset = time.time() - self.start
        self.followed: set[str] = set()
        self.dropped = 0  # replies the kernel dropped before we read them (PACKET_STATISTICS)
        # The session retries, unspent, what the drops may have taken.
        self._on_drops: Callable[[int, float], object] | None = getattr(session, "on_receive_drops", None)

    def check_drops(self) -> None:
        """Read the capture's drop counters (one getsockopt per socket) and pass any drops on."""
        dropped = self.capture.drops()
        if dropped:
            self.dropped += dropped
            if self._on_drops is not None:
                self._on_drops(dropped, self.clock())

    def send(self, sender: socket.socket) -> None:
        session, clock, followed = self.session, self.clock, self.followed
        send = sender.sendto
        evidence = self.evidence if self.evidence is not None and self.evidence.traces else None
        now = clock()
        for probe in session.due(now):
            address = probe.key.address
            if address not in followed:  # listen where the reply will come before asking
                followed.add(address)
                self.capture.follow(address)
            if self.precise:
                now = clock()
                session.stamp_sent(probe.key, now)
            for packet in (probe.packet, *probe.extra) if probe.extra else (probe.packet,):
                try:
                    send(packet, (address, 0))
                except OSError as exc:
                    if exc.errno not in _SEND_LOSSES:
                        raise
                    # lost on our side; the session retransmits it like any lost probe
                if evidence is not None:
                    evidence.sent(packet, now - self.start)

    def receive(self) -> None:
        """Bytes only: the capture already dropped our own packets and nobody keeps evidence."""
        datagrams = self.capture.datagrams(RECEIVE_BATCH)
        if datagrams:
            on_event = self.on_event
            for event in self.session.receive_many(datagrams, self.clock()):
                on_event(event)

    def receive_precisely(self) -> None:
        """Kernel arrival times, and every packet shown to the evidence."""
        evidence = self.evidence
        our_address = self.session.ctx.source_address
        receive, on_event = self.session.receive, self.on_event
        for packet in self.capture.packets(RECEIVE_BATCH):
            received = self.clock() if packet.arrived is None else packet.arrived - self.wall_offset
            if evidence is not None:
                # On loopback each packet is seen leaving and arriving: record it once.
                if evidence.captures and not (packet.outgoing and packet.interface == "lo"):
                    evidence.record(packet.data, received + self.wall_offset)
                if not packet.outgoing and evidence.traces and destination(packet.data) == our_address:
                    evidence.received(packet.data, received - self.start)
            if packet.outgoing:
                continue
            for event in receive(packet.data, received):
                on_event(event)
