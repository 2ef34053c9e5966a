"""Classic libpcap files, written as packets pass so an interrupted scan leaves a readable capture.

Format (pcap-savefile(5)): a 24-byte global header, then per packet a
16-byte record header (seconds, micro- or nanoseconds, captured length,
original length) and the bytes.  Native byte order, as libpcap writes
it; readers detect it from the magic number.  Records are flushed at
least every ``flush_interval`` seconds of capture time, and the global
header at once, so a killed scan loses at most that much.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

__all__ = ["LINKTYPE_ETHERNET", "LINKTYPE_RAW", "PcapWriter"]

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # the packet starts with an IPv4 or IPv6 header
_MAGIC_MICRO = 0xA1B2C3D4
_MAGIC_NANO = 0xA1B23C4D


class PcapWriter:
    """Appends packets to a pcap file or binary stream."""

    def __init__(
        self,
        target: str | os.PathLike[str] | BinaryIO,
        linktype: int = LINKTYPE_RAW,
        *,
        snaplen: int = 65535,
        nanosecond: bool = False,
        flush_interval: float = 0.25,
    ) -> None:
        if isinstance(target, (str, os.PathLike)):
            self._stream: BinaryIO = open(target, "wb")  # noqa: SIM115 - closed by close()
            self._owned = True
        else:
            self._stream = target
            self._owned = False
        self.snaplen = snaplen
        self.nanosecond = nanosecond
        self.flush_interval = flush_interval
        self.count = 0
        self._last_flush: float | None = None
        magic = _MAGIC_NANO if nanosecond else _MAGIC_MICRO
        self._stream.write(struct.pack("=IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        self._stream.flush()

    def write(self, packet: bytes, timestamp: float) -> None:
        """Record one packet seen at ``timestamp`` (epoch seconds)."""
        seconds = int(timestamp)
        scale = 1_000_000_000 if self.nanosecond else 1_000_000
        fraction = min(scale - 1, int(round((timestamp - seconds) * scale)))
        captured = packet[: self.snaplen]
        self._stream.write(struct.pack("=IIII", seconds, fraction, len(captured), len(packet)) + captured)
        self.count += 1
        if self._last_flush is None or timestamp - self._last_flush >= self.flush_interval:
            self._stream.flush()
            self._last_flush = timestamp

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()
        if self._owned:
            self._stream.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
