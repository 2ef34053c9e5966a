"""A fingerprint as nmap prints it: the SCAN line, the tests of every round merged, wrapped in ``OS:`` lines.

``OS:SCAN(V=...%E=4%D=12/2%OT=22%CT=1%CU=40000%PV=N%DS=1%DC=D%G=Y%M=024C11%TM=...%P=...)SEQ(...)...``
Tests that several rounds gave alike are written once; different ones
each, in nmap's order (by test, then by values).  Lines hold 75
characters, as nmap's do, so the text can be pasted where nmap's goes.
"""

from __future__ import annotations

import ipaddress
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass

from leadline.detect.os.fingerprint import ATTRIBUTES, TEST_ORDER, Fingerprint

__all__ = ["ScanInfo", "merged_fingerprint", "scan_line", "wrap"]

_WRAP = 72  # characters of fingerprint after each "OS:"
# nmap's ip_is_reserved(): the ranges for which PV=Y.
_RESERVED = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "224.0.0.0/3"))


@dataclass(frozen=True, slots=True)
class ScanInfo:
    """What the SCAN line records about the conditions of the scan."""

    version: str
    target: str
    open_port: int | None
    closed_port: int | None
    closed_udp: int | None
    distance: int | None
    distance_method: str  # "D" direct (a MAC), "I" from U1, "L" localhost, "" unknown
    good: bool  # G=Y: conditions fit for a submission
    mac: str | None = None
    when: float = 0.0


def scan_line(info: ScanInfo) -> str:
    when = info.when or time.time()
    local = time.localtime(when)
    reserved = any(ipaddress.ip_address(info.target) in net for net in _RESERVED if net.version == 4) \
        if ":" not in info.target else False
    parts = [f"V={info.version}", "E=4", f"D={local.tm_mon}/{local.tm_mday}",
             f"OT={info.open_port if info.open_port is not None else ''}",
             f"CT={info.closed_port if info.closed_port is not None else ''}",
             f"CU={info.closed_udp if info.closed_udp is not None else ''}",
             f"PV={'Y' if reserved else 'N'}"]
    if info.distance is not None:
        parts.append(f"DS={info.distance}")
    if info.distance_method:
        parts.append(f"DC={info.distance_method}")
    parts.append(f"G={'Y' if info.good else 'N'}")
    if info.mac:
        parts.append("M=" + info.mac.replace(":", "")[:6].upper())
    parts += [f"TM={int(when):X}", f"P={platform.machine()}-pc-linux-gnu"]
    return "SCAN(" + "%".join(parts) + ")"


def _sort_key(test: str, values: dict[str, str]) -> tuple[int, tuple[tuple[int, str], ...]]:
    return TEST_ORDER.index(test), tuple((0, "") if a not in values else (1, values[a]) for a in ATTRIBUTES[test])


def merged_fingerprint(info: ScanInfo, rounds: Sequence[Fingerprint], wrapped: bool = True) -> str:
    """The rounds' tests merged under one SCAN line; ``wrapped``: in OS: lines, else one test per line."""
    seen: dict[str, tuple[str, dict[str, str]]] = {}
    for fp in rounds:
        for test, values in fp.tests.items():
            line = fp.line(test)
            seen.setdefault(line, (test, values))
    lines = [line for line, (test, values) in sorted(seen.items(), key=lambda kv: _sort_key(*kv[1]))]
    if not wrapped:
        return "\n".join([scan_line(info), *lines])
    return wrap(scan_line(info) + "".join(lines))


def wrap(text: str) -> str:
    """nmap's wrapping: "OS:" and up to 72 characters per line."""
    return "\n".join("OS:" + text[i:i + _WRAP] for i in range(0, len(text), _WRAP))
