"""leadline's JSON output (``-oJ``): one document, written as it grows.

The header and the opening of the ``hosts`` array are written at the
start, each host is appended as one array element when it finishes, and
``end`` closes the array and adds ``runstats``.  So the file is valid JSON
once ``end`` has run, including after an interruption, and a reader that
follows the file sees one complete host per line (after the first host,
each line starts with the separating comma).  The schema is in
docs/json-schema.md; unlike the human formats nothing is folded: every
port of every host is listed.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import Any, Sequence, TextIO

from leadline.model import HostResult, HostStatus, Reason, RunInfo, RunStats, ScriptElement, ScriptResult, ServiceDetail, Trace
from leadline.output.base import NullSink
from leadline.output.formatting import sort_ports
from leadline.output.osreport import os_json

__all__ = ["SCHEMA_VERSION", "JsonOutput", "host_to_json", "run_to_json", "stats_to_json"]

SCHEMA_VERSION = 1

# Reasons that no IP packet gave: no TTL is known for them (ARP has none;
# nmap's XML writes reason_ttl="0" there, the schema says null).
_NO_TTL = frozenset({Reason.ARP_RESPONSE, Reason.USER_SET, Reason.NO_RESPONSE, Reason.LOCALHOST})


def _ttl(reason: Reason, ttl: int | None) -> int | None:
    return None if reason in _NO_TTL else ttl


def _service(name: str | None) -> str | None:
    """The services table names some ports "unknown"; the schema says null for that."""
    return None if name in (None, "unknown") else name


class JsonOutput(NullSink):
    """Streams one JSON object: run header, hosts array, then run statistics."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.hosts_written = 0
        self.started = False
        self.closed = False

    def begin(self, run: RunInfo) -> None:
        header = run_to_json(run)
        opening = json.dumps(header, separators=(", ", ": "))[:-1]  # leave the object open
        self.stream.write(opening + ', "hosts": [\n')
        self.stream.flush()
        self.started = True

    def host(self, host: HostResult) -> None:
        if not self.started or self.closed:
            return
        separator = "," if self.hosts_written else ""
        self.stream.write(separator + json.dumps(host_to_json(host)) + "\n")
        self.stream.flush()
        self.hosts_written += 1

    def listed(self, addresses: Sequence[str]) -> None:
        """A batch of -sL addresses without names: the same elements :meth:`host` writes, from a template."""
        if not self.started or self.closed or not addresses:
            return
        first = "," if self.hosts_written else ""
        rows = [_LISTED_4 if ":" not in a else _LISTED_6 for a in addresses]
        text = ",".join([row.replace("\x00", a) for row, a in zip(rows, addresses)])
        self.stream.write(first + text.replace(",{", "\n,{") + "\n")
        self.stream.flush()
        self.hosts_written += len(addresses)

    def end(self, stats: RunStats) -> None:
        if not self.started or self.closed:
            return
        self.stream.write('], "runstats": ' + json.dumps(stats_to_json(stats)) + "}\n")
        self.stream.flush()
        self.closed = True


def run_to_json(run: RunInfo) -> dict[str, Any]:
    return {
        "scanner": "leadline",
        "schema": SCHEMA_VERSION,
        "version": run.version,
        "args": run.args,
        "start": run.start_time,
        "scaninfo": [asdict(info) for info in run.scaninfo],
        "verbosity": run.verbosity,
        "debugging": run.debugging,
        "ping_only": run.ping_only,
        "list_only": run.list_only,
    }


def host_to_json(host: HostResult) -> dict[str, Any]:
    data = _host_fields(host)
    os = os_json(host)
    if os is not None:
        data["os"] = os
    return data


def _host_fields(host: HostResult) -> dict[str, Any]:
    return {
        "address": host.address,
        "family": host.family,
        "status": str(host.status),
        "reason": str(host.status_reason),
        "reason_ttl": _ttl(host.status_reason, host.status_reason_ttl),
        "hostnames": [{"name": n.name, "type": n.kind} for n in host.hostnames],
        "latency": host.latency,
        "mac": host.mac,
        "mac_vendor": host.mac_vendor,
        "start_time": host.start_time,
        "end_time": host.end_time,
        "other_addresses": list(host.other_addresses),
        "timed_out": host.timed_out,
        "interrupted": host.interrupted,
        "through": host.through,
        **({"scanned_by": host.scanned_by} if host.scanned_by else {}),
        "warnings": list(host.warnings),
        "ports": [
            {
                "port": p.port,
                "protocol": p.protocol,
                "state": str(p.state),
                "reason": str(p.reason),
                "reason_ttl": _ttl(p.reason, p.reason_ttl),
                "service": _service(p.service),
                "evidence": list(p.evidence),
                "version": _detail(p.detail),
                "scripts": [_script(s) for s in p.scripts],
            }
            for p in sort_ports(host.ports)
        ],
        "scripts": [_script(s) for s in host.scripts],
        "distance": host.distance,
        "uptime": host.uptime,
        "trace": _trace(host.trace),
    }


def _trace(trace: Trace | None) -> dict[str, Any] | None:
    if trace is None:
        return None
    return {
        "protocol": trace.protocol,
        "port": trace.port,
        "shared_with": trace.shared_with,
        "shared_hops": trace.shared_hops,
        "hops": [{"ttl": h.ttl, "address": h.address, "rtt": h.rtt, "hostname": h.hostname} for h in trace.hops],
    }


_SURROGATES = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    """Lone surrogates (undecodable bytes kept as such) become U+FFFD, so every JSON reader accepts the text."""
    return _SURROGATES.sub("\ufffd", text)


def _detail(d: ServiceDetail | None) -> dict[str, Any] | None:
    if d is None:
        return None
    texts = {k: (_clean(v) if v is not None else None) for k, v in (
        ("name", d.name), ("product", d.product), ("version", d.version), ("extrainfo", d.extrainfo),
        ("hostname", d.hostname), ("ostype", d.ostype), ("devicetype", d.devicetype))}
    return {**texts, "tunnel": d.tunnel, "method": d.method, "conf": d.confidence, "cpe": [_clean(c) for c in d.cpe]}


def _element(e: ScriptElement) -> dict[str, Any]:
    out: dict[str, Any] = {"key": _clean(e.key) if e.key is not None else None}
    if e.children or e.value is None:
        out["children"] = [_element(c) for c in e.children]
    else:
        out["value"] = _clean(e.value)
    return out


def _script(s: ScriptResult) -> dict[str, Any]:
    return {"id": _clean(s.id), "output": _clean(s.output), "elements": [_element(e) for e in s.elements]}


def stats_to_json(stats: RunStats) -> dict[str, Any]:
    return {
        "end": stats.end_time,
        "elapsed": stats.elapsed,
        "hosts_up": stats.hosts_up,
        "hosts_down": stats.hosts_down,
        "hosts_total": stats.hosts_total,
        "exit": stats.exit,
        "summary": stats.summary,
        "error_message": stats.error_message,
    }


def _listed_template(family: int) -> str:
    """A list-scan host's JSON with a NUL where the address goes (addresses never contain one)."""
    host = HostResult(address="\x00", family=family, status=HostStatus.UNKNOWN, status_reason=Reason.USER_SET)
    return json.dumps(host_to_json(host)).replace("\\u0000", "\x00")


_LISTED_4 = _listed_template(4)
_LISTED_6 = _listed_template(6)
