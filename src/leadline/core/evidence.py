"""What an engine hands the evidence of a scan to: the packets sent and received, as they pass.

Engines never import the writers (a pcap file, nmap's ``--packet-trace``
lines); they are handed an object with this shape and call it from
their loops.  The caller decides where the evidence goes.

Contract, per packet the engine moves:
  * ``record(datagram, wall_time)``: a whole IP datagram (IPv4 or IPv6,
    no link header) seen at ``wall_time`` (epoch seconds), sent or
    received, in the order the engine saw them.  Only called when
    ``captures`` is true; an engine that can see its own packets leave
    (a capture that keeps outgoing packets) records them from there, with
    the kernel's times, else from its send side.
  * ``sent(packet, elapsed)`` / ``received(packet, elapsed)``: one trace
    line for a probe that left, or a reply addressed to us, ``elapsed``
    seconds after the engine started.  ``frame=True`` marks an Ethernet
    frame (ARP) rather than an IP datagram.  Only called when
    ``traces`` is true.
  * ``flush()`` when the engine's loop ends, so an interrupted scan
    leaves what it saw on disk.  Closing is the owner's business.

Invariants: the evidence never changes what the engine does, and its
flags do not change during a run.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["PacketEvidence"]


class PacketEvidence(Protocol):
    """Where the packets of a scan are written down: a pcap file, a packet trace, or both."""

    @property
    def captures(self) -> bool:
        """True when whole datagrams are recorded (a pcap file)."""
        ...

    @property
    def traces(self) -> bool:
        """True when a line per packet is written (the packet trace)."""
        ...

    def record(self, datagram: bytes, wall_time: float) -> None:
        """Keep one whole IP datagram seen at ``wall_time`` (epoch seconds)."""
        ...

    def sent(self, packet: bytes, elapsed: float, *, frame: bool = False) -> None:
        """Trace a probe that left ``elapsed`` seconds into the run."""
        ...

    def received(self, packet: bytes, elapsed: float, *, frame: bool = False) -> None:
        """Trace a reply addressed to us, ``elapsed`` seconds into the run."""
        ...

    def flush(self) -> None:
        """Push what was written so far to its destination."""
        ...
