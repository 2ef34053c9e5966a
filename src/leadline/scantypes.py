"""Every port-scan technique, described once.

A scan type is a row of ``SCAN_KINDS``: the letter after ``-s``, the
protocol it scans, whether it needs raw packets, nmap's task name and
XML name, the engine that runs it and the probe module that builds and
classifies its packets.  The CLI, the pipeline and the outputs read this
table; none of them keeps its own list.  Adding a scan type is a probe
module under ``core/probes/`` plus a row here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable

from leadline.core.probes.ack import AckScan
from leadline.core.probes.base import ProbeModule
from leadline.core.probes.custom import CustomScan
from leadline.core.probes.fin import FinScan
from leadline.core.probes.maimon import MaimonScan
from leadline.core.probes.null import NullScan
from leadline.core.probes.syn import SynScan
from leadline.core.probes.udp import UdpScan
from leadline.core.probes.window import WindowScan
from leadline.core.probes.xmas import XmasScan
from leadline.errors import UsageError

__all__ = ["SCAN_KINDS", "Engine", "ScanKind", "ScanType", "kind_by_letter", "probe_module"]


class ScanType(str, enum.Enum):
    """Port scan techniques; values are nmap's XML ``scaninfo type`` names."""

    CONNECT = "connect"
    SYN = "syn"
    FIN = "fin"
    XMAS = "xmas"
    NULL = "null"
    ACK = "ack"
    WINDOW = "window"
    MAIMON = "maimon"
    CUSTOM = "custom"  # --scanflags with -sS's classification
    UDP = "udp"
    IDLE = "idle"  # -sI: SYNs forged in a zombie's name, read from its IP ID counter
    BOUNCE = "bounce"  # -b: an FTP server connects to each port for us

    @property
    def kind(self) -> ScanKind:
        return SCAN_KINDS[self]

    @property
    def protocol(self) -> str:
        return SCAN_KINDS[self].protocol

    @property
    def needs_root(self) -> bool:
        return SCAN_KINDS[self].needs_root

    @property
    def flag(self) -> str:
        """The option that asks for this scan, as nmap spells it."""
        return SCAN_KINDS[self].flag


class Engine(str, enum.Enum):
    """What carries a scan's probes: the kernel's connect(), or our own packets."""

    CONNECT = "connect"
    RAW = "raw"
    IDLE = "idle"  # forged SYNs and zombie probes (engines/idle.py)
    BOUNCE = "bounce"  # an FTP control connection (engines/ftpbounce.py)


@dataclass(frozen=True)
class ScanKind:
    """One scan technique.  ``probe`` builds its module (given --scanflags) for the raw engine."""

    scan_type: ScanType
    letter: str | None  # -s<letter>; None when no letter asks for it (--scanflags)
    flag: str
    protocol: str  # "tcp" | "udp": which port list it scans and how ports are written
    task: str  # nmap's task name: "SYN Stealth Scan" in "Initiating SYN Stealth Scan"
    engine: Engine
    probe: Callable[[int | None], ProbeModule] | None
    implemented: bool = True

    @property
    def needs_root(self) -> bool:
        return self.engine in (Engine.RAW, Engine.IDLE)

    @property
    def xml_name(self) -> str:
        return self.scan_type.value


def _row(t: ScanType, letter: str | None, flag: str, protocol: str, task: str, engine: Engine,
         probe: Callable[[int | None], ProbeModule] | None, implemented: bool = True) -> tuple[ScanType, ScanKind]:
    return t, ScanKind(t, letter, flag, protocol, task, engine, probe, implemented)


SCAN_KINDS: dict[ScanType, ScanKind] = dict((
    _row(ScanType.CONNECT, "T", "-sT", "tcp", "Connect Scan", Engine.CONNECT, None),
    _row(ScanType.SYN, "S", "-sS", "tcp", "SYN Stealth Scan", Engine.RAW, SynScan),
    _row(ScanType.FIN, "F", "-sF", "tcp", "FIN Scan", Engine.RAW, FinScan),
    _row(ScanType.XMAS, "X", "-sX", "tcp", "XMAS Scan", Engine.RAW, XmasScan),
    _row(ScanType.NULL, "N", "-sN", "tcp", "NULL Scan", Engine.RAW, NullScan),
    _row(ScanType.ACK, "A", "-sA", "tcp", "ACK Scan", Engine.RAW, AckScan),
    _row(ScanType.WINDOW, "W", "-sW", "tcp", "Window Scan", Engine.RAW, WindowScan),
    _row(ScanType.MAIMON, "M", "-sM", "tcp", "Maimon Scan", Engine.RAW, MaimonScan),
    _row(ScanType.CUSTOM, None, "--scanflags", "tcp", "Custom Scan", Engine.RAW, CustomScan),
    _row(ScanType.UDP, "U", "-sU", "udp", "UDP Scan", Engine.RAW, UdpScan),
    _row(ScanType.IDLE, "I", "-sI", "tcp", "IdleScan", Engine.IDLE, None),
    _row(ScanType.BOUNCE, None, "-b", "tcp", "FTP bounce scan", Engine.BOUNCE, None),
))


def kind_by_letter(letter: str) -> ScanKind | None:
    """The scan that ``-s<letter>`` asks for, if any."""
    for kind in SCAN_KINDS.values():
        if kind.letter == letter:
            return kind
    return None


def probe_module(scan_type: ScanType, scanflags: int | None) -> ProbeModule:
    """A fresh probe module for one raw scan; ``scanflags`` (0..255) overrides the TCP flags it sends.

    ``--scanflags`` changes the flags sent; the scan type keeps deciding how
    replies are read (nmap(1): "the scan type tells Nmap how to interpret
    responses").
    """
    kind = SCAN_KINDS[scan_type]
    if kind.probe is None:
        raise UsageError(f"scan type {scan_type.value!r} has no packet probe module")
    if scanflags is not None and not 0 <= scanflags <= 0xFF:
        raise UsageError(f"--scanflags value {scanflags} is outside 0-255")
    return kind.probe(scanflags)
