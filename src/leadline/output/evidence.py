"""The evidence writers engines are handed: ``--pcap`` and ``--packet-trace`` behind one object.

Implements ``leadline.core.evidence.PacketEvidence`` on top of
``PcapWriter`` and the trace-line formatters, so the engines write
evidence without importing anything from ``output``.  The pcap holds IP
datagrams (LINKTYPE_RAW), so ARP frames appear in the trace only.
"""

from __future__ import annotations

from collections.abc import Callable

from leadline.errors import UsageError
from leadline.output.packettrace import arp_trace_line, trace_line
from leadline.output.pcap import PcapWriter

__all__ = ["Evidence", "open_evidence"]


class Evidence:
    """A pcap file, a packet-trace line sink, or both; see ``PacketEvidence`` for the contract."""

    def __init__(self, pcap: PcapWriter | None, trace: Callable[[str], None] | None) -> None:
        self.pcap = pcap
        self.trace = trace

    @property
    def captures(self) -> bool:
        return self.pcap is not None

    @property
    def traces(self) -> bool:
        return self.trace is not None

    def record(self, datagram: bytes, wall_time: float) -> None:
        if self.pcap is not None:
            self.pcap.write(datagram, wall_time)

    def sent(self, packet: bytes, elapsed: float, *, frame: bool = False) -> None:
        self._line("SENT", packet, elapsed, frame)

    def received(self, packet: bytes, elapsed: float, *, frame: bool = False) -> None:
        self._line("RCVD", packet, elapsed, frame)

    def _line(self, direction: str, packet: bytes, elapsed: float, frame: bool) -> None:
        if self.trace is not None:
            self.trace(arp_trace_line(direction, elapsed, packet) if frame else trace_line(direction, elapsed, packet))

    def flush(self) -> None:
        if self.pcap is not None:
            self.pcap.flush()

    def close(self) -> None:
        """Close the pcap file (the trace sink belongs to the caller)."""
        if self.pcap is not None:
            self.pcap.close()


def open_evidence(pcap_path: str | None, trace: Callable[[str], None] | None) -> Evidence | None:
    """The evidence of a run, or None when neither a pcap file nor a trace was asked for.

    Raises UsageError (one line) when the pcap file cannot be written.
    """
    if pcap_path is None and trace is None:
        return None
    pcap = None
    if pcap_path is not None:
        try:
            pcap = PcapWriter(pcap_path)
        except OSError as e:
            raise UsageError(f"cannot write --pcap file '{pcap_path}': {e.strerror or e}") from None
    return Evidence(pcap, trace)
