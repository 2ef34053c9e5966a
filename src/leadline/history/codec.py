"""The result model as plain JSON values, and back: what the store keeps in its JSON columns.

Two shapes are read here.  The store's own columns hold the nested parts
of a host (scripts, service details, OS classes) as JSON written by the
``*_to_json`` functions below.  ``host_from_json`` reads one host of
leadline's ``-oJ`` document (``output/json.py``) back into a
``HostResult``; it also takes the keys a newer document may carry
(``os``, ``trace``, ``distance``, ``uptime``) and ignores keys it does
not know, so files written by later versions still import.

Strings a target sent may hold any character, lone surrogates included
(undecodable bytes kept as such); ``json.dumps`` writes them as escapes,
so every column stays valid UTF-8 for SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
from typing import Any

from leadline.model import (
    HostResult,
    Hostname,
    HostStatus,
    OsClass,
    OsMatch,
    OsResult,
    PortResult,
    PortState,
    Reason,
    ScriptElement,
    ScriptResult,
    ServiceDetail,
    Trace,
    TraceHop,
)

__all__ = [
    "classes_from_json",
    "classes_to_json",
    "detail_from_json",
    "detail_to_json",
    "dumps",
    "host_from_json",
    "os_from_json",
    "os_to_json",
    "reason",
    "scripts_from_json",
    "scripts_to_json",
    "trace_from_json",
    "trace_to_json",
]


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


def dumps(value: Any) -> str:
    """Compact JSON with every non-ASCII character escaped (NUL and lone surrogates included)."""
    if not value:
        return "[]" if isinstance(value, list) else "{}" if isinstance(value, dict) else _ENCODE(value)
    return _ENCODE(value)


_REASONS = {r.value: r for r in Reason}


def reason(text: str | None) -> Reason:
    """nmap's reason string as a ``Reason``; one leadline does not name is an unknown response."""
    return _REASONS.get(text or "", Reason.UNKNOWN_RESPONSE)


def _element_to_json(e: ScriptElement) -> Any:
    if e.children or e.value is None:
        return [e.key, [_element_to_json(c) for c in e.children]]
    return [e.key, e.value]


def _element_from_json(raw: Any) -> ScriptElement:
    key, body = raw
    if isinstance(body, list):
        return ScriptElement(key=key, children=tuple(_element_from_json(c) for c in body))
    return ScriptElement(key=key, value=body)


def scripts_to_json(scripts: tuple[ScriptResult, ...]) -> list[Any]:
    return [[s.id, s.output, [_element_to_json(e) for e in s.elements]] for s in scripts]


def scripts_from_json(raw: list[Any] | None) -> tuple[ScriptResult, ...]:
    return tuple(ScriptResult(id=i, output=o, elements=tuple(_element_from_json(e) for e in els))
                 for i, o, els in raw or ())


_DETAIL_TEXT = ("name", "product", "version", "extrainfo", "hostname", "ostype", "devicetype", "tunnel")


def detail_to_json(d: ServiceDetail | None) -> dict[str, Any] | None:
    if d is None:
        return None
    out: dict[str, Any] = {k: getattr(d, k) for k in _DETAIL_TEXT if getattr(d, k) is not None}
    out.update(method=d.method, conf=d.confidence, cpe=list(d.cpe))
    return out


def detail_from_json(raw: dict[str, Any] | None) -> ServiceDetail | None:
    if not raw:
        return None
    texts = {k: raw.get(k) for k in _DETAIL_TEXT}
    return ServiceDetail(**texts, method=raw.get("method") or "table",  # type: ignore[arg-type]
                         confidence=int(raw.get("conf", 3)), cpe=tuple(raw.get("cpe") or ()))


def _class_to_json(c: OsClass) -> dict[str, Any]:
    return {"vendor": c.vendor, "family": c.family, "generation": c.generation, "type": c.device_type,
            "accuracy": c.accuracy, "cpe": list(c.cpe)}


def _class_from_json(raw: dict[str, Any]) -> OsClass:
    return OsClass(vendor=raw.get("vendor") or "", family=raw.get("family") or "", generation=raw.get("generation"),
                   device_type=raw.get("type", raw.get("device_type")), accuracy=int(raw.get("accuracy") or 0),
                   cpe=tuple(raw.get("cpe") or ()))


def classes_to_json(classes: tuple[OsClass, ...]) -> list[dict[str, Any]]:
    return [_class_to_json(c) for c in classes]


def classes_from_json(raw: list[dict[str, Any]]) -> tuple[OsClass, ...]:
    return tuple(_class_from_json(c) for c in raw)


def os_to_json(os: OsResult | None) -> dict[str, Any] | None:
    if os is None:
        return None
    return {
        "matches": [{"name": m.name, "accuracy": m.accuracy, "classes": [_class_to_json(c) for c in m.classes]}
                    for m in os.matches],
        "fingerprint": os.fingerprint,
        "ports_used": [[p.protocol, p.port, str(p.state), str(p.reason)] for p in os.ports_used],
        "perfect": os.perfect,
        "ttl_hint": os.ttl_hint,
    }


def os_from_json(raw: dict[str, Any] | None) -> OsResult | None:
    if not raw:
        return None
    matches = tuple(OsMatch(name=m.get("name") or "", accuracy=int(m.get("accuracy") or 0),
                            classes=tuple(_class_from_json(c) for c in m.get("classes") or ()))
                    for m in raw.get("matches") or ())
    used = tuple(_port_used(u) for u in raw.get("ports_used") or ())
    return OsResult(matches=matches, fingerprint=raw.get("fingerprint"), ports_used=used,
                    perfect=int(raw.get("perfect") or 0), ttl_hint=raw.get("ttl_hint"))


def _port_used(u: Any) -> PortResult:
    """A port OS detection used: ``[protocol, port, state, reason]`` in the store, an object in ``-oJ``."""
    if isinstance(u, dict):
        return PortResult(port=int(u["port"]), protocol=u["protocol"], state=PortState(u["state"]),
                          reason=reason(u.get("reason")))
    return PortResult(port=int(u[1]), protocol=u[0], state=PortState(u[2]), reason=reason(u[3] if len(u) > 3 else None))


def trace_to_json(trace: Trace | None) -> dict[str, Any] | None:
    if trace is None:
        return None
    return {"protocol": trace.protocol, "port": trace.port,
            "hops": [[h.ttl, h.address, h.rtt, h.hostname] for h in trace.hops]}


def trace_from_json(raw: dict[str, Any] | None) -> Trace | None:
    if not raw:
        return None
    hops = []
    for hop in raw.get("hops") or ():
        if isinstance(hop, dict):  # a document that spells hops out as objects
            hop = [hop.get("ttl"), hop.get("address"), hop.get("rtt"), hop.get("hostname")]
        ttl, address, rtt, name = (list(hop) + [None] * 4)[:4]
        hops.append(TraceHop(ttl=int(ttl), address=address, rtt=rtt, hostname=name))
    port = raw.get("port")
    return Trace(protocol=raw.get("protocol") or "tcp", port=int(port) if port is not None else None, hops=tuple(hops))


def _port_from_json(p: dict[str, Any]) -> PortResult:
    detail = p.get("version")
    return PortResult(
        port=int(p["port"]),
        protocol=p["protocol"],
        state=PortState(p["state"]),
        reason=reason(p.get("reason")),
        reason_ttl=p.get("reason_ttl"),
        service=p.get("service"),
        evidence=tuple(p.get("evidence") or ()),
        detail=_json_detail(detail),
        scripts=tuple(_json_script(s) for s in p.get("scripts") or ()),
    )


def _json_detail(d: dict[str, Any] | None) -> ServiceDetail | None:
    """A service detail as ``-oJ`` spells it (``output/json.py``)."""
    return detail_from_json(d)


def _json_element(e: dict[str, Any]) -> ScriptElement:
    if "children" in e:
        return ScriptElement(key=e.get("key"), children=tuple(_json_element(c) for c in e["children"]))
    return ScriptElement(key=e.get("key"), value=e.get("value"))


def _json_script(s: dict[str, Any]) -> ScriptResult:
    return ScriptResult(id=s["id"], output=s.get("output") or "",
                        elements=tuple(_json_element(e) for e in s.get("elements") or ()))


def host_from_json(h: dict[str, Any]) -> HostResult:
    """One element of ``-oJ``'s ``hosts`` array as a ``HostResult``."""
    distance = h.get("distance")
    return HostResult(
        address=h["address"],
        family=int(h.get("family") or (6 if ":" in h["address"] else 4)),
        status=HostStatus(h.get("status") or "unknown"),
        status_reason=reason(h.get("reason")),
        status_reason_ttl=h.get("reason_ttl"),
        hostnames=tuple(Hostname(n["name"], n.get("type") or n.get("kind") or "PTR") for n in h.get("hostnames") or ()),
        latency=h.get("latency"),
        ports=tuple(_port_from_json(p) for p in h.get("ports") or ()),
        mac=h.get("mac"),
        mac_vendor=h.get("mac_vendor"),
        start_time=h.get("start_time"),
        end_time=h.get("end_time"),
        other_addresses=tuple(h.get("other_addresses") or ()),
        timed_out=bool(h.get("timed_out")),
        distance=int(distance) if distance is not None else None,
        uptime=h.get("uptime"),
        os=os_from_json(h.get("os")),
        trace=trace_from_json(h.get("trace")),
        scripts=tuple(_json_script(s) for s in h.get("scripts") or ()),
        warnings=tuple(h.get("warnings") or ()),
        interrupted=bool(h.get("interrupted")),
    )
