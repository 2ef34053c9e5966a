"""Reading OS detection results out of nmap-format XML, for the oracle and lab tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

__all__ = ["OsReport", "fingerprint_tests", "read_os"]


@dataclass
class OsReport:
    matches: list[tuple[str, int]] = field(default_factory=list)  # (name, accuracy)
    best_class: tuple[str, str, str | None] | None = None  # vendor, family, generation of the best match
    fingerprint: str | None = None
    distance: int | None = None
    ports_used: list[tuple[str, str, int]] = field(default_factory=list)


def read_os(xml_text: str) -> dict[str, OsReport]:
    """address -> what the file says about that host's OS."""
    out: dict[str, OsReport] = {}
    for host in ET.fromstring(xml_text).findall("host"):
        address = next(a.get("addr", "") for a in host.findall("address") if a.get("addrtype") in ("ipv4", "ipv6"))
        report = OsReport()
        os = host.find("os")
        if os is not None:
            for used in os.findall("portused"):
                report.ports_used.append((used.get("state", ""), used.get("proto", ""), int(used.get("portid", "0"))))
            for match in os.findall("osmatch"):
                report.matches.append((match.get("name", ""), int(match.get("accuracy", "0"))))
                cls = match.find("osclass")
                if report.best_class is None and cls is not None:
                    report.best_class = (cls.get("vendor", ""), cls.get("osfamily", ""), cls.get("osgen"))
            fp = os.find("osfingerprint")
            if fp is not None:
                report.fingerprint = fp.get("fingerprint")
        distance = host.find("distance")
        if distance is not None:
            report.distance = int(distance.get("value", "0"))
        out[address] = report
    return out


def fingerprint_tests(wrapped: str) -> list[str]:
    """The tests of a wrapped ``OS:`` fingerprint, one string each (``T1(R=Y%...)``), SCAN included."""
    flat = "".join(line[3:] if line.startswith("OS:") else line for line in wrapped.splitlines())
    tests: list[str] = []
    depth_start = 0
    for i, ch in enumerate(flat):
        if ch == ")":
            tests.append(flat[depth_start:i + 1])
            depth_start = i + 1
    return tests
