"""Read back what a run already wrote: our XML (``-oX``) or JSON (``-oJ``), even cut off mid-write.

A run killed with SIGKILL leaves its files as far as the last flushed
host; the readers keep every complete ``<host>`` element or JSON line and
ignore the torn tail.  What they return is the result model again, so a
resumed run hands the earlier hosts to its sinks as if it had just found
them.  Fields our XML does not carry (the TTL of folded ports, the tables
behind script output) come back empty; everything the outputs print
comes back as written.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from leadline.model import (
    Hostname, HostResult, HostStatus, PortResult, PortState, Reason, ScriptElement, ScriptResult, ServiceDetail,
)

__all__ = ["WrittenRun", "read_json_run", "read_written_run", "read_xml_run"]

INTERRUPTED_COMMENT = "interrupted"  # <host comment="interrupted">: not every port was decided


@dataclass
class WrittenRun:
    """The command line a file was written by, and its finished hosts in file order."""

    args: str = ""
    hosts: list[HostResult] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)  # addresses written before every port was decided
    finished: bool = False  # the run reached its end uninterrupted


def read_written_run(path: str) -> WrittenRun:
    """Our XML or JSON output at ``path``, told apart by the first character. Raises OSError, ValueError."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if text.lstrip().startswith("{"):
        return read_json_run(text)
    if text.lstrip().startswith("<"):
        return read_xml_run(text)
    raise ValueError(f"'{path}' is neither leadline's XML (-oX) nor its JSON (-oJ) output")


# -- XML -----------------------------------------------------------------
def read_xml_run(text: str) -> WrittenRun:
    run = WrittenRun()
    parser = ET.XMLPullParser(events=("start", "end"))  # type: ignore[var-annotated]
    depth = 0
    try:
        for chunk in _chunks(text):
            parser.feed(chunk)
            for item in parser.read_events():
                pair: tuple[Any, ...] = tuple(item)
                event, elem = pair
                assert isinstance(event, str) and isinstance(elem, ET.Element)
                if event == "start":
                    depth += 1
                    if elem.tag == "nmaprun":
                        run.args = elem.get("args", "")
                    continue
                depth -= 1
                if elem.tag == "host" and depth == 1:
                    notes = elem.get("comment", "").split("; ")
                    by = next((n[len("scanned by "):] for n in notes if n.startswith("scanned by ")), None)
                    host = replace(_xml_host(elem), scanned_by=by)
                    if INTERRUPTED_COMMENT in notes:
                        run.interrupted.append(host.address)
                    else:
                        run.hosts.append(host)
                    elem.clear()
                elif elem.tag == "finished":
                    run.finished = elem.get("exit") == "success"
    except ET.ParseError:
        pass  # the torn tail of a killed run: every complete host before it is kept
    if not run.args:
        raise ValueError("no <nmaprun args=...> header: not an XML file leadline wrote")
    return run


def _chunks(text: str, size: int = 1 << 16) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start:start + size]


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def _expand(spec: str) -> Iterator[int]:
    for piece in spec.split(","):
        low, _, high = piece.partition("-")
        yield from range(int(low), int(high or low) + 1)


def _xml_host(e: ET.Element) -> HostResult:
    status = e.find("status")
    assert status is not None
    address, family, mac, vendor = "", 4, None, None
    for a in e.findall("address"):
        if a.get("addrtype") == "mac":
            mac, vendor = a.get("addr"), a.get("vendor")
        else:
            address, family = a.get("addr", ""), 6 if a.get("addrtype") == "ipv6" else 4
    times = e.find("times")
    hostscript = e.find("hostscript")
    return HostResult(
        address=address, family=family, status=HostStatus(status.get("state")),
        status_reason=Reason(status.get("reason")), status_reason_ttl=_int(status.get("reason_ttl")) or None,
        hostnames=tuple(Hostname(h.get("name", ""), h.get("type", "")) for h in e.iterfind("hostnames/hostname")),
        latency=int(times.get("srtt", "0")) / 1_000_000 if times is not None else None,
        ports=tuple(_xml_ports(e)), mac=mac, mac_vendor=vendor,
        start_time=_float(e.get("starttime")), end_time=_float(e.get("endtime")),
        timed_out=e.get("timedout") == "true",
        scripts=tuple(_xml_script(s) for s in hostscript.findall("script")) if hostscript is not None else (),
    )


def _xml_ports(host: ET.Element) -> Iterator[PortResult]:
    for extra in host.iterfind("ports/extraports"):
        state = PortState(extra.get("state"))
        for group in extra.findall("extrareasons"):
            for number in _expand(group.get("ports", "")):
                yield PortResult(number, group.get("proto", "tcp"), state, Reason(group.get("reason")))
    for p in host.iterfind("ports/port"):
        st = p.find("state")
        assert st is not None
        service, detail = None, None
        s = p.find("service")
        if s is not None and s.get("method") == "probed" or s is not None and s.get("product"):
            detail = ServiceDetail(
                s.get("name", ""), s.get("product"), s.get("version"), s.get("extrainfo"), s.get("hostname"),
                s.get("ostype"), s.get("devicetype"), s.get("tunnel"), s.get("method", "table"),
                int(s.get("conf", "3")), tuple(c.text or "" for c in s.findall("cpe")))
        elif s is not None:
            service = s.get("name")
        scripts = [x for x in p.findall("script") if x.get("id") != "explain"]
        evidence = [tuple(x.get("output", "").split("\n")) for x in p.findall("script") if x.get("id") == "explain"]
        yield PortResult(int(p.get("portid", "0")), p.get("protocol", "tcp"), PortState(st.get("state")),
                         Reason(st.get("reason")), _int(st.get("reason_ttl")) or None,
                         service if detail is None else detail.name, evidence[0] if evidence else (), detail,
                         tuple(_xml_script(x) for x in scripts))


def _xml_script(e: ET.Element) -> ScriptResult:
    return ScriptResult(e.get("id", ""), e.get("output", ""), tuple(_xml_element(c) for c in e))


def _xml_element(e: ET.Element) -> ScriptElement:
    if e.tag == "table":
        return ScriptElement(e.get("key"), None, tuple(_xml_element(c) for c in e))
    return ScriptElement(e.get("key"), e.text or "")


# -- JSON ----------------------------------------------------------------
def read_json_run(text: str) -> WrittenRun:
    """The JSON sink writes the header, then one host per line: each complete line is a host."""
    lines = text.splitlines()
    if not lines:
        raise ValueError("an empty file: not a JSON file leadline wrote")
    header, _, first = lines[0].partition(', "hosts": [')
    try:
        meta = json.loads(header + "}")
    except json.JSONDecodeError:
        raise ValueError("no JSON run header: not a JSON file leadline wrote") from None
    run = WrittenRun(args=str(meta.get("args", "")))
    for line in [first, *lines[1:]]:
        line = line.strip()
        if line.startswith("]"):
            stats = line.partition('"runstats": ')[2].rstrip()[:-1]
            try:
                run.finished = json.loads(stats).get("exit") == "success"
            except (json.JSONDecodeError, AttributeError):
                pass
            break
        line = line.removeprefix(",")
        if not line:
            continue
        try:
            host = _json_host(json.loads(line))
        except (json.JSONDecodeError, KeyError, ValueError):
            break  # the torn tail of a killed run
        if host.interrupted:
            run.interrupted.append(host.address)
        else:
            run.hosts.append(host)
    return run


def _json_detail(d: dict[str, Any] | None) -> ServiceDetail | None:
    if d is None:
        return None
    return ServiceDetail(d["name"], d.get("product"), d.get("version"), d.get("extrainfo"), d.get("hostname"),
                         d.get("ostype"), d.get("devicetype"), d.get("tunnel"), d.get("method", "table"),
                         d.get("conf", 3), tuple(d.get("cpe", ())))


def _json_element(e: dict[str, Any]) -> ScriptElement:
    if "children" in e:
        return ScriptElement(e.get("key"), None, tuple(_json_element(c) for c in e["children"]))
    return ScriptElement(e.get("key"), e.get("value"))


def _json_script(s: dict[str, Any]) -> ScriptResult:
    return ScriptResult(s["id"], s["output"], tuple(_json_element(e) for e in s.get("elements", ())))


def _json_host(h: dict[str, Any]) -> HostResult:
    ports = tuple(
        PortResult(p["port"], p["protocol"], PortState(p["state"]), Reason(p["reason"]), p.get("reason_ttl"),
                   p.get("service"), tuple(p.get("evidence", ())), _json_detail(p.get("version")),
                   tuple(_json_script(s) for s in p.get("scripts", ())))
        for p in h.get("ports", ()))
    return HostResult(
        address=h["address"], family=h["family"], status=HostStatus(h["status"]), status_reason=Reason(h["reason"]),
        status_reason_ttl=h.get("reason_ttl"), hostnames=tuple(Hostname(n["name"], n["type"]) for n in h["hostnames"]),
        latency=h.get("latency"), ports=ports, mac=h.get("mac"), mac_vendor=h.get("mac_vendor"),
        start_time=h.get("start_time"), end_time=h.get("end_time"), other_addresses=tuple(h.get("other_addresses", ())),
        timed_out=h.get("timed_out", False), warnings=tuple(h.get("warnings", ())),
        interrupted=h.get("interrupted", False), scanned_by=h.get("scanned_by"), scripts=tuple(_json_script(s) for s in h.get("scripts", ())),
    )
