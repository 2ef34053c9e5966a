"""Reading port states out of nmap-format XML, for oracle comparisons.

Both nmap's and leadline's files go through the same reader, which
expands folded ``<extraports>`` back into one state per port so that
two scans can be compared port by port.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass


def expand_ports(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


@dataclass(frozen=True)
class HostStates:
    address: str
    status: str
    status_reason: str
    ports: dict[tuple[str, int], tuple[str, str]]  # (proto, port) -> (state, reason)
    mac: str | None = None


def read_states(xml_text: str) -> dict[str, HostStates]:
    root = ET.fromstring(xml_text)
    scanned: dict[str, list[int]] = {}
    for si in root.findall("scaninfo"):
        scanned.setdefault(si.get("protocol", "tcp"), []).extend(expand_ports(si.get("services", "")))
    hosts: dict[str, HostStates] = {}
    for h in root.findall("host"):
        addr = mac = None
        for a in h.findall("address"):
            if a.get("addrtype") in ("ipv4", "ipv6"):
                addr = a.get("addr")
            elif a.get("addrtype") == "mac":
                mac = a.get("addr")
        assert addr is not None
        st = h.find("status")
        assert st is not None
        ports: dict[tuple[str, int], tuple[str, str]] = {}
        pe = h.find("ports")
        if pe is not None:
            for p in pe.findall("port"):
                s = p.find("state")
                assert s is not None
                ports[(p.get("protocol", ""), int(p.get("portid", "0")))] = (s.get("state", ""), s.get("reason", ""))
            for ex in pe.findall("extraports"):
                state = ex.get("state", "")
                for er in ex.findall("extrareasons"):
                    proto = er.get("proto", "tcp")
                    if er.get("ports") is not None:
                        for port in expand_ports(er.get("ports", "")):
                            ports.setdefault((proto, port), (state, er.get("reason", "")))
            # Ports folded without an explicit list: the single extraports state.
            extras = pe.findall("extraports")
            if len(extras) == 1:
                state = extras[0].get("state", "")
                reasons = extras[0].findall("extrareasons")
                reason = reasons[0].get("reason", "") if len(reasons) == 1 else ""
                for proto, plist in scanned.items():
                    for port in plist:
                        ports.setdefault((proto, port), (state, reason))
        hosts[addr] = HostStates(addr, st.get("state", ""), st.get("reason", ""), ports, mac)
    return hosts


def diff_states(ours: HostStates, theirs: HostStates, with_reason: bool = True) -> list[str]:
    """Human-readable differences, empty when every port agrees."""
    out = []
    for key in sorted(set(ours.ports) | set(theirs.ports)):
        a = ours.ports.get(key)
        b = theirs.ports.get(key)
        if a is None or b is None or a[0] != b[0] or (with_reason and a[1] != b[1]):
            out.append(f"{key[1]}/{key[0]}: leadline={a} nmap={b}")
    return out
