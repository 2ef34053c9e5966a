"""The store's rows and the result model, both ways, each shared part converted once.

``host_rows`` turns a host into rows of the four tables; ``Decoder``
turns them back.  Both convert each distinct part once (``memo``): the
rows of a ports tuple or an OS result by the part's identity, as the XML
reader hands out shared parts, and the objects made from a row or JSON
text by its value, so the hosts read back share them too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar, cast

from leadline.history import codec
from leadline.history.memo import Parts, remember
from leadline.model import (
    HostResult,
    Hostname,
    HostStatus,
    OsMatch,
    OsResult,
    PortResult,
    PortState,
    ScriptResult,
    Trace,
    TraceHop,
)

__all__ = ["Decoder", "Rows", "clean", "host_rows"]

Rows = list[tuple[Any, ...]]
_P = TypeVar("_P")
_V = TypeVar("_V")

_DIRTY = re.compile("[\x00\ud800-\udfff]")


def clean(text: str | None) -> str | None:
    """Text for a plain column: NUL (PostgreSQL refuses it) and lone surrogates (not UTF-8) become U+FFFD."""
    return None if text is None else _DIRTY.sub("\ufffd", text)


# -- the model as rows ---------------------------------------------------------------------------

def _build(part: _P, build: Callable[[_P], _V]) -> _V:
    return build(part)


def host_rows(run_id: int, host_id: int | None, h: HostResult,
              parts: Parts | None = None) -> tuple[Rows, Rows, Rows, Rows]:
    """One host as rows of hosts (with its id first), ports, os_matches and hops."""
    get = parts.get if parts is not None else _build
    extra: dict[str, Any] = {}
    if h.other_addresses:
        extra["other"] = list(h.other_addresses)
    if h.warnings:
        extra["warnings"] = list(h.warnings)
    if h.scripts:
        extra["scripts"] = codec.scripts_to_json(h.scripts)
    os_result = getattr(h, "os", None)
    os_rows: Rows = []
    if os_result is not None:
        extra["os"], os_rows = get(os_result, _os_parts)
    trace = getattr(h, "trace", None)
    if trace is not None:
        extra["trace"] = [trace.protocol, trace.port]
    open_ports, port_rows = get(h.ports, _port_parts)
    host = (host_id, run_id, h.address, h.family, str(h.status), str(h.status_reason), h.status_reason_ttl, h.mac,
            clean(h.mac_vendor), h.latency, h.start_time, h.end_time, getattr(h, "distance", None),
            getattr(h, "uptime", None), int(h.timed_out), int(h.interrupted), open_ports,
            codec.dumps([[n.name, n.kind] for n in h.hostnames]), codec.dumps(extra))
    if host_id is None:
        return [host], [], [], []
    key = (host_id,)
    ports = [key + row for row in port_rows]
    oses = [key + row for row in os_rows]
    hops = [(host_id, hop.ttl, hop.address, hop.rtt, clean(hop.hostname)) for hop in trace.hops] if trace else []
    return [host], ports, oses, hops


def _os_parts(os_result: OsResult) -> tuple[dict[str, Any], Rows]:
    """An OS result's part of a host's ``extra`` column, and its os_matches rows without the host id."""
    extra = {"fingerprint": os_result.fingerprint,
             "ports_used": [[p.protocol, p.port, str(p.state), str(p.reason)] for p in os_result.ports_used]}
    return extra, [(n, clean(m.name), m.accuracy, codec.dumps(codec.classes_to_json(m.classes)))
                   for n, m in enumerate(os_result.matches)]


def _port_parts(ports: tuple[PortResult, ...]) -> tuple[int, Rows]:
    """How many ports are open, and the ports rows without the host id."""
    return sum(1 for p in ports if p.state is PortState.OPEN), [_port_row(n, p) for n, p in enumerate(ports)]


def _port_row(n: int, p: PortResult) -> tuple[Any, ...]:
    d = p.detail
    return (n, p.protocol, p.port, str(p.state), str(p.reason), p.reason_ttl, clean(p.service),
            clean(d.product) if d else None, clean(d.version) if d else None,
            codec.dumps(codec.detail_to_json(d)) if d else None,
            codec.dumps(codec.scripts_to_json(p.scripts)) if p.scripts else None,
            codec.dumps(list(p.evidence)) if p.evidence else None)


# -- rows as the model ---------------------------------------------------------------------------

class _Extra(NamedTuple):
    """A host's ``extra`` column, decoded."""

    other: tuple[str, ...]
    warnings: tuple[str, ...]
    scripts: tuple[ScriptResult, ...]
    os: OsResult | None  # fingerprint and ports used; the matches come from os_matches
    trace: tuple[str | None, int | None] | None  # the probe; the hops come from hops


def _extra(text: str) -> _Extra:
    extra = json.loads(text)
    os_base = None
    if "os" in extra:
        os_base = codec.os_from_json({**extra["os"], "matches": []}) or OsResult()
    trace = tuple(extra["trace"]) if "trace" in extra else None
    return _Extra(tuple(extra.get("other", ())), tuple(extra.get("warnings", ())),
                  codec.scripts_from_json(extra.get("scripts")), os_base, cast(Any, trace))


def _port(row: tuple[Any, ...]) -> PortResult:
    """A ports row without its host id."""
    protocol, port, state, reason, ttl, service, detail, scripts, evidence = row
    return PortResult(port=port, protocol=protocol, state=PortState(state), reason=codec.reason(reason),
                      reason_ttl=ttl, service=service,
                      evidence=tuple(json.loads(evidence)) if evidence else (),
                      detail=codec.detail_from_json(json.loads(detail)) if detail else None,
                      scripts=codec.scripts_from_json(json.loads(scripts)) if scripts else ())


_STATUS = {s.value: s for s in HostStatus}


class Decoder:
    """Rows back into the model, each distinct row or JSON text decoded once."""

    def __init__(self) -> None:
        self.ports: dict[tuple[Any, ...], tuple[PortResult, ...]] = {}
        self.oses: dict[tuple[Any, ...], OsResult] = {}
        self.extras: dict[str, _Extra] = {}
        self.names: dict[str, tuple[Hostname, ...]] = {}
        self.hops: dict[tuple[Any, ...], TraceHop] = {}

    def _ports(self, rows: Rows) -> tuple[PortResult, ...]:
        key = tuple([row[1:] for row in rows])  # without the host id
        found = self.ports.get(key)
        return found if found is not None else remember(self.ports, key, tuple(_port(row) for row in key))

    def _os(self, extra_text: str, base: OsResult, rows: Rows) -> OsResult:
        key = (extra_text, *[row[1:] for row in rows])
        found = self.oses.get(key)
        if found is not None:
            return found
        matches = tuple(OsMatch(name=name, accuracy=acc, classes=codec.classes_from_json(json.loads(classes)))
                        for _, name, acc, classes in rows)
        return remember(self.oses, key, OsResult(matches=matches, fingerprint=base.fingerprint,
                                                  ports_used=base.ports_used))

    def _hop(self, row: tuple[Any, ...]) -> TraceHop:
        key = row[1:]
        found = self.hops.get(key)
        if found is not None:
            return found
        ttl, address, rtt, name = key
        return remember(self.hops, key, TraceHop(ttl=ttl, address=address, rtt=rtt, hostname=name))

    def host(self, row: tuple[Any, ...], ports: Rows, oses: Rows, hops: Rows) -> HostResult:
        """A hosts row (with its id first) and its ports, os_matches and hops rows as a ``HostResult``."""
        (_, _, address, family, status, reason, ttl, mac, vendor, latency, start, end, distance, uptime, timed_out,
         interrupted, hostnames, extra_text) = row
        extra = self.extras.get(extra_text) or remember(self.extras, extra_text, _extra(extra_text))
        names = self.names.get(hostnames)
        if names is None:
            names = remember(self.names, hostnames, tuple(Hostname(n, k) for n, k in json.loads(hostnames)))
        trace = None
        if extra.trace is not None:
            trace = Trace(protocol=extra.trace[0], port=extra.trace[1], hops=tuple(map(self._hop, hops)))
        return HostResult(
            address=address, family=family, status=_STATUS.get(status) or HostStatus(status),
            status_reason=codec.reason(reason), status_reason_ttl=ttl, hostnames=names, latency=latency,
            ports=self._ports(ports), mac=mac, mac_vendor=vendor, start_time=start, end_time=end,
            other_addresses=extra.other, timed_out=bool(timed_out), distance=distance, uptime=uptime,
            os=self._os(extra_text, extra.os, oses) if extra.os is not None else None, trace=trace,
            scripts=extra.scripts, warnings=extra.warnings, interrupted=bool(interrupted))
