"""How version detection and script results read in text: nmap's VERSION column, ``Service Info:``, script blocks.

Everything here came from the network, so all of it is data: ``printable``
turns control characters (C0, DEL, C1, and the bidirectional overrides
that reorder a line) into ``\\xHH``/``\\uHHHH`` escapes before any of it
reaches a terminal or a text file.  No escape sequence a service sends is
ever written as such.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from leadline.model import PortResult, ScriptResult, ServiceDetail

__all__ = ["printable", "script_lines", "service_column", "service_info_line", "version_text"]

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufeff\ufffe\uffff]")
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufeff\ufffe\uffff]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, newlines: bool = False) -> str:
    """``text`` with every control character escaped; with ``newlines``, line feeds and tabs are kept."""
    return (_UNSAFE if newlines else _UNSAFE_LINE).sub(_escape, text)


def version_text(detail: ServiceDetail | None) -> str:
    """nmap's VERSION column: ``product version (extrainfo)``."""
    if detail is None:
        return ""
    parts = [p for p in (detail.product, detail.version) if p]
    text = " ".join(parts)
    if detail.extrainfo:
        text = f"{text} ({detail.extrainfo})" if text else f"({detail.extrainfo})"
    return printable(text)


def service_column(port: PortResult) -> str:
    """The SERVICE cell: the name, ``ssl/`` in front when it spoke inside TLS."""
    name = port.service or "unknown"
    if port.detail is not None and port.detail.tunnel == "ssl":
        name = "ssl/" + name
    return printable(name)


def _join(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def service_info_line(ports: Sequence[PortResult]) -> str | None:
    """``Service Info: Host: x; OS: Linux; CPE: cpe:/o:linux:linux_kernel``, from the shown ports' details."""
    details = [p.detail for p in ports if p.detail is not None]
    hosts = _join(d.hostname or "" for d in details)
    oss = _join(d.ostype or "" for d in details)
    devices = _join(d.devicetype or "" for d in details)
    cpes = _join(c for d in details for c in d.cpe if c.startswith("cpe:/o") or c.startswith("cpe:/h"))
    fields = []
    for label, plural, values in (("Host", "Hosts", hosts), ("OS", "OSs", oss), ("Device", "Devices", devices),
                                  ("CPE", "CPE", cpes)):
        if values:
            fields.append(f"{plural if len(values) > 1 else label}: {', '.join(values)}")
    if not fields:
        return None
    return printable("Service Info: " + "; ".join(fields))


def script_lines(scripts: Sequence[ScriptResult]) -> list[str]:
    """Script output as nmap lays it out: ``| id: …`` lines, ``|_`` on the last one."""
    lines: list[str] = []
    for s in scripts:
        body = printable(f"{s.id}: {s.output.rstrip(chr(10))}", newlines=True).replace("\t", "  ").split("\n")
        for i, line in enumerate(body):
            lines.append(("|_" if i == len(body) - 1 else "| ") + line)
    return lines
