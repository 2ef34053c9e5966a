"""nmap's XML output (``-oX``), valid against nmap's own DTD.

Tools that read nmap XML (ndiff, python-libnmap, importers in many
security tools) check the root element, so ``scanner`` stays "nmap";
leadline names itself in the opening comment and the run summary.  The
document is written as events arrive, one element per line as nmap does,
and :meth:`XmlOutput.end` always closes it, so an interrupted run still
leaves a well-formed, valid file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TextIO

from leadline.model import HostResult, HostStatus, PortResult, RunInfo, RunStats, ScriptElement, ScriptResult, ServiceDetail
from leadline.output.base import NullSink
from leadline.output.formatting import compress_ports, ctime_string, done_summary, fold_ports, port_sort_key
from leadline.output.osreport import os_xml_lines

__all__ = ["XmlOutput", "element", "port_element", "script_element", "service_element", "times_element", "xml_attr", "xml_text"]

PROGRAM = "leadline"
XML_OUTPUT_VERSION = "1.05"
DEFAULT_STYLESHEET = "file:///usr/share/nmap/nmap.xsl"

# nmap's floor for a retransmission timeout, in microseconds.
MIN_TIMEOUT_US = 100_000

_CACHED_PORTS = 16  # hosts with more port rows than this are laid out afresh (a -p- host is one of a kind)
_CACHE_ENTRIES = 256  # distinct port tuples remembered before the cache starts over
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;", "\n": "&#xa;", "\r": "&#xd;", "\t": "&#9;"}
_ESCAPE_TABLE = str.maketrans(_ESCAPES)
# Anything xml_attr changes; most attribute values (numbers, addresses, states) have none of it.
_NEEDS_ESCAPE = re.compile(r"[&<>\"'\n\r\t\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|--")


def xml_attr(value: object) -> str:
    """Text made safe for a double-quoted attribute.

    Characters XML 1.0 forbids become "?"; "--" is broken up as nmap
    does, so the same text can also sit inside a comment.
    """
    text = value if isinstance(value, str) else str(value)
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    return _CONTROL.sub("?", text).translate(_ESCAPE_TABLE).replace("--", "-&#45;")


def xml_comment(text: str) -> str:
    """Text for a comment, which may not contain "--" or end in "-"."""
    safe = _CONTROL.sub("?", text).replace("--", "-&#45;")
    return safe + " " if safe.endswith("-") else safe


def element(name: str, attrs: dict[str, object], *, empty: bool = True) -> str:
    body = "".join(f' {k}="{xml_attr(v)}"' for k, v in attrs.items() if v is not None)
    return f"<{name}{body}{'/' if empty else ''}>"


class XmlOutput(NullSink):
    """Writes an nmap-DTD document incrementally and flushes after each event."""

    def __init__(self, stream: TextIO, *, open_only: bool = False, stylesheet: str | None = DEFAULT_STYLESHEET) -> None:
        self.stream = stream
        self.open_only = open_only
        self.stylesheet = stylesheet
        self.run: RunInfo | None = None
        self.closed = False
        # Hosts of a sweep share their few port rows (80/tcp closed reset ttl 63 on 32,768
        # hosts): their <ports> element is laid out once per distinct port tuple.
        self._ports_cache: dict[tuple[PortResult, ...], list[str]] = {}

    # -- events ----------------------------------------------------------
    def begin(self, run: RunInfo) -> None:
        self.run = run
        started = ctime_string(run.start_time)
        lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<!DOCTYPE nmaprun>"]
        if self.stylesheet:
            lines.append(f'<?xml-stylesheet href="{xml_attr(self.stylesheet)}" type="text/xsl"?>')
        lines.append(f"<!-- {xml_comment(f'{PROGRAM} {run.version} scan initiated {started} as: {run.args}')} -->")
        lines.append(
            element(
                "nmaprun",
                {
                    "scanner": "nmap",
                    "args": run.args,
                    "start": int(run.start_time),
                    "startstr": started,
                    "version": run.version,
                    "xmloutputversion": XML_OUTPUT_VERSION,
                },
                empty=False,
            )
        )
        for info in run.scaninfo:
            lines.append(
                element(
                    "scaninfo",
                    {"type": info.scan_type, "protocol": info.protocol, "numservices": info.numservices, "services": info.services},
                )
            )
        lines.append(element("verbose", {"level": run.verbosity}))
        lines.append(element("debugging", {"level": run.debugging}))
        self._emit(lines)

    def task_begin(self, task: str, time: float, extra: str = "") -> None:
        # nmap's taskbegin has no extrainfo; "Scanning N hosts [...]" is for the terminal.
        self._emit([element("taskbegin", {"task": task, "time": int(time)})])

    def task_progress(self, task: str, time: float, percent: float, remaining: float | None, etc: float | None) -> None:
        attrs: dict[str, object] = {"task": task, "time": int(time), "percent": f"{percent:.2f}"}
        attrs["remaining"] = None if remaining is None else int(round(remaining))
        attrs["etc"] = None if etc is None else int(round(etc))
        self._emit([element("taskprogress", attrs)])

    def task_end(self, task: str, time: float, extra: str = "") -> None:
        self._emit([element("taskend", {"task": task, "time": int(time), "extrainfo": extra or None})])

    def host(self, host: HostResult) -> None:
        self._emit(self.host_lines(host))

    def end(self, stats: RunStats) -> None:
        if self.closed or self.run is None:
            return
        summary = f"{PROGRAM} done at {ctime_string(stats.end_time)}; {done_summary(stats)}"
        finished = element(
            "finished",
            {
                "time": int(stats.end_time),
                "timestr": ctime_string(stats.end_time),
                "summary": stats.summary or summary,
                "elapsed": f"{stats.elapsed:.2f}",
                "exit": "error" if stats.exit == "error" else "success",
                "errormsg": stats.error_message or None,
            },
        )
        hosts = element("hosts", {"up": stats.hosts_up, "down": stats.hosts_down, "total": stats.hosts_total})
        self._emit([f"<runstats>{finished}{hosts}", "</runstats>", "</nmaprun>"])
        self.closed = True

    # -- layout ----------------------------------------------------------
    def host_lines(self, host: HostResult) -> list[str]:
        """The ``<host>`` element for one host, one child per line as nmap writes it."""
        run = self.run
        verbosity = run.verbosity if run else 0
        ping_only = run is not None and (run.ping_only or run.list_only)
        if host.status is HostStatus.DOWN and (verbosity < 1 or self.open_only):
            return []
        lines = [element("output", {"type": "interactive"}, empty=False) + xml_text(f"Warning: {w}") + "</output>" for w in host.warnings]
        timed = not ping_only and host.status is HostStatus.UP
        # The busiest lines of a sweep, written with f-strings rather than element(): the
        # names are nmap's vocabulary (enum values, numbers) and need no escaping; the address does.
        head = "<host"
        if timed and host.start_time is not None:
            head += f' starttime="{int(host.start_time)}"'
        if timed and host.end_time is not None:
            head += f' endtime="{int(host.end_time)}"'
        if host.timed_out:
            head += ' timedout="true"'
        comment = host_comment(host)  # nmap's DTD has a free comment here; --resume reads it
        if comment is not None:
            head += f' comment="{xml_attr(comment)}"'
        lines.append(f'{head}><status state="{host.status.value}" reason="{host.status_reason.value}" '
                     f'reason_ttl="{host.status_reason_ttl or 0}"/>')
        family = "ipv6" if host.family == 6 else "ipv4"
        lines.append(f'<address addr="{xml_attr(host.address)}" addrtype="{family}"/>')
        if host.mac:
            lines.append(element("address", {"addr": host.mac, "addrtype": "mac", "vendor": host.mac_vendor}))
        if host.status is not HostStatus.DOWN:
            lines.append("<hostnames>")
            lines.extend(element("hostname", {"name": n.name, "type": n.kind}) for n in host.hostnames)
            lines.append("</hostnames>")
            if not ping_only and not host.timed_out and host.ports:
                lines.extend(self.ports_lines(host))
            if not ping_only:
                lines.extend(os_xml_lines(host))
            if host.scripts and not ping_only:
                lines.append("<hostscript>" + "".join(script_element(s) for s in host.scripts) + "</hostscript>")
            lines.extend(trace_lines(host))
            if host.latency is not None:
                lines.append(times_element(host.latency))
        lines.append("</host>")
        return lines

    def ports_lines(self, host: HostResult) -> list[str]:
        ports = host.ports
        if len(ports) > _CACHED_PORTS:
            return self._ports_lines(ports)
        cached = self._ports_cache.get(ports)
        if cached is None:
            if len(self._ports_cache) >= _CACHE_ENTRIES:
                self._ports_cache.clear()
            cached = self._ports_cache[ports] = self._ports_lines(ports)
        return cached

    def _ports_lines(self, ports: tuple[PortResult, ...]) -> list[str]:
        verbosity = self.run.verbosity if self.run else 0
        debugging = self.run.debugging if self.run else 0
        folding = fold_ports(ports, open_only=self.open_only, verbosity=verbosity, debugging=debugging)
        lines: list[str] = []
        for state, count, groups in folding.folded_states():
            lines.append(element("extraports", {"state": str(state), "count": count}, empty=False))
            for g in groups:
                lines.append(
                    element("extrareasons", {"reason": g.reason, "count": g.count, "proto": g.protocol, "ports": compress_ports(g.ports)})
                )
            lines.append("</extraports>")
        lines.extend(port_element(p) for p in sorted(folding.shown, key=port_sort_key))
        if lines:
            lines[0] = "<ports>" + lines[0]
        else:
            lines.append("<ports>")
        lines.append("</ports>")
        return lines

    def _emit(self, lines: list[str]) -> None:
        if self.closed or not lines:
            return
        self.stream.write("".join(line + "\n" for line in lines))
        self.stream.flush()


def host_comment(host: HostResult) -> str | None:
    """``interrupted`` (not every port was decided) and ``scanned by WORKER`` (--cluster), joined by "; "."""
    notes = (["interrupted"] if host.interrupted else []) + ([f"scanned by {host.scanned_by}"] if host.scanned_by else [])
    return "; ".join(notes) or None


def xml_text(value: str) -> str:
    """Character data: only &, < and > need escaping."""
    return _CONTROL.sub("?", value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def port_element(port: PortResult) -> str:
    """One ``<port>`` on one line; ``--explain`` evidence rides in a script element."""
    parts = [
        element("port", {"protocol": port.protocol, "portid": port.port}, empty=False),
        element("state", {"state": str(port.state), "reason": str(port.reason), "reason_ttl": port.reason_ttl or 0}),
    ]
    if port.detail is not None:
        parts.append(service_element(port.detail))
    elif port.service:
        parts.append(element("service", {"name": port.service, "method": "table", "conf": 3}))
    if port.evidence:
        parts.append(element("script", {"id": "explain", "output": "\n".join(port.evidence)}))
    parts.extend(script_element(s) for s in port.scripts)
    parts.append("</port>")
    return "".join(parts)


def service_element(d: ServiceDetail) -> str:
    """``<service name product version extrainfo ostype method conf><cpe>…</cpe></service>``, as nmap writes it."""
    attrs: dict[str, object] = {"name": d.name, "product": d.product, "version": d.version, "extrainfo": d.extrainfo,
                                "tunnel": d.tunnel, "hostname": d.hostname, "ostype": d.ostype,
                                "devicetype": d.devicetype, "method": d.method, "conf": d.confidence}
    if not d.cpe:
        return element("service", attrs)
    return element("service", attrs, empty=False) + "".join(f"<cpe>{xml_text(c)}</cpe>" for c in d.cpe) + "</service>"


def _script_children(elements: Sequence[ScriptElement]) -> str:
    out: list[str] = []
    for e in elements:
        key: dict[str, object] = {"key": e.key} if e.key is not None else {}
        if e.children or e.value is None:
            out.append(element("table", key, empty=False) + _script_children(e.children) + "</table>")
        else:
            out.append(element("elem", key, empty=False) + xml_text(e.value) + "</elem>")
    return "".join(out)


def script_element(s: ScriptResult) -> str:
    """``<script id output>`` with its ``<elem key>``/``<table key>`` structure."""
    head = element("script", {"id": s.id, "output": s.output}, empty=not s.elements)
    return head + _script_children(s.elements) + "</script>" if s.elements else head


def times_element(latency: float) -> str:
    """``<times>`` from one latency sample.

    Only the smoothed RTT is known, so the variance takes RFC 6298's value
    after a first sample (half the RTT) and the timeout nmap's floor.
    """
    srtt = int(round(latency * 1_000_000))
    rttvar = srtt // 2
    timeout = max(srtt + 4 * rttvar, MIN_TIMEOUT_US)
    return f'<times srtt="{srtt}" rttvar="{rttvar}" to="{timeout}"/>'


def trace_lines(host: HostResult) -> list[str]:
    """``<trace port proto>`` and one ``<hop ttl ipaddr rtt host>`` per answering TTL, as nmap writes them.

    nmap names the protocol for TCP, UDP and ICMP probes but not for
    ICMPv6 ones, and writes no attribute at all for a host on our link."""
    trace = host.trace
    if trace is None or not trace.hops:
        return []
    attrs: dict[str, object] = {}
    if trace.protocol in ("tcp", "udp"):
        attrs = {"port": trace.port, "proto": trace.protocol}
    elif trace.protocol == "icmp" and host.family == 4:
        attrs = {"proto": "icmp"}
    lines = [element("trace", attrs, empty=False)]
    for hop in trace.hops:
        if hop.address is None:
            continue
        rtt = "--" if hop.rtt is None else f"{hop.rtt * 1000:.2f}"
        lines.append(element("hop", {"ttl": hop.ttl, "ipaddr": hop.address, "rtt": rtt, "host": hop.hostname}))
    lines.append("</trace>")
    return lines
