"""A streamed reader of nmap's XML (and leadline's, which is the same format) into the result model.

``iterparse`` hands over each ``<host>`` as it closes; the host is turned
into a ``HostResult`` and its element cleared, so a 65,536-host file is
read in memory bounded by one host.  Folded ports (``<extraports>``) are
unfolded from their ``<extrareasons ports="...">`` lists, which nmap
writes since 7.80, so every port scanned has its state; a file without
those lists keeps only the ports it shows.

Elements nmap writes and leadline's model holds are read: status,
addresses, hostnames, ports with services and scripts, host scripts, OS
matches with their classes, distance, uptime, the trace and its hops,
timing.  leadline's ``--explain`` evidence (a ``<script id="explain">``)
becomes the port's evidence again.  Anything else is skipped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar, cast

from leadline.errors import StoreError
from leadline.history.codec import reason
from leadline.history.memo import remember
from leadline.model import (
    HostResult,
    Hostname,
    HostStatus,
    OsClass,
    OsMatch,
    OsResult,
    PortResult,
    PortState,
    RunInfo,
    RunStats,
    ScanInfo,
    ScriptElement,
    ScriptResult,
    ServiceDetail,
    Trace,
    TraceHop,
)

__all__ = ["XmlRun", "host_from_element", "read_xml"]

_STATES = {s.value: s for s in PortState}
_T = TypeVar("_T")


@dataclass
class XmlRun:
    """What the reader learned outside the hosts; ``stats`` is set once the file's end is read."""

    run: RunInfo | None = None
    stats: RunStats | None = None
    verbosity: int = 0
    debugging: int = 0
    scaninfo: list[ScanInfo] = field(default_factory=list)


def _int(text: str | None, default: int | None = None) -> int | None:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _expand(spec: str) -> Iterator[int]:
    for part in spec.split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        yield from range(int(lo), int(hi or lo) + 1)


def _script_children(e: ET.Element) -> tuple[ScriptElement, ...]:
    out = []
    for child in e:
        if child.tag == "elem":
            out.append(ScriptElement(key=child.get("key"), value=child.text or ""))
        elif child.tag == "table":
            out.append(ScriptElement(key=child.get("key"), children=_script_children(child)))
    return tuple(out)


def _script(e: ET.Element) -> ScriptResult:
    return ScriptResult(id=e.get("id") or "", output=e.get("output") or "", elements=_script_children(e))


_RICHER = frozenset(("product", "version", "extrainfo", "hostname", "ostype", "devicetype", "tunnel"))


def _service(e: ET.Element | None) -> tuple[str | None, ServiceDetail | None]:
    """The port's table name, and a detail when version detection said more than the name."""
    if e is None:
        return None, None
    attrs = e.attrib
    name = attrs.get("name")
    if attrs.get("method") != "probed" and not len(e) and _RICHER.isdisjoint(attrs):
        return name, None  # named from the services table: the common case, kept cheap
    get = attrs.get
    detail = ServiceDetail(name=name or "unknown", product=get("product"), version=get("version"),
                           extrainfo=get("extrainfo"), hostname=get("hostname"), ostype=get("ostype"),
                           devicetype=get("devicetype"), tunnel=get("tunnel"), method=get("method") or "table",
                           confidence=_int(get("conf"), 3) or 0, cpe=tuple(c.text or "" for c in e.iter("cpe")))
    return name, detail


def _port(e: ET.Element) -> PortResult:
    state = service = None
    scripts = []
    for child in e:  # one pass over the children instead of a find() per kind
        tag = child.tag
        if tag == "state":
            state = child
        elif tag == "service":
            service = child
        elif tag == "script":
            scripts.append(child)
    name, detail = _service(service)
    evidence: tuple[str, ...] = ()
    for s in scripts:
        if s.get("id") == "explain":
            evidence = tuple((s.get("output") or "").split("\n"))
    st = state.attrib if state is not None else {}
    ttl = st.get("reason_ttl")
    return PortResult(
        port=_int(e.get("portid"), 0) or 0,
        protocol=e.get("protocol") or "tcp",
        state=_STATES.get(st.get("state") or "", PortState.FILTERED),
        reason=reason(st.get("reason")),
        reason_ttl=int(ttl) if ttl is not None and ttl.isdigit() else None,
        service=name,
        evidence=evidence,
        detail=detail,
        scripts=tuple(_script(s) for s in scripts if s.get("id") != "explain"),
    )


def _folded(ports_el: ET.Element, listed: set[tuple[str, int]]) -> Iterator[PortResult]:
    """The ports an ``<extraports>`` folds, from its ``<extrareasons ports>`` lists."""
    for extra in ports_el.findall("extraports"):
        state = _STATES.get(extra.get("state") or "")
        if state is None:
            continue
        for why in extra.findall("extrareasons"):
            spec = why.get("ports")
            if not spec:
                continue
            protocol = why.get("proto") or "tcp"
            r = reason(why.get("reason"))
            for number in _expand(spec):
                if (protocol, number) not in listed:
                    yield PortResult(port=number, protocol=protocol, state=state, reason=r)


def _ports(ports_el: ET.Element) -> tuple[PortResult, ...]:
    """A ``<ports>`` element's ports, listed and folded, in (protocol, number) order."""
    shown = [_port(p) for p in ports_el.findall("port")]
    listed = {(p.protocol, p.port) for p in shown}
    return tuple(sorted([*shown, *_folded(ports_el, listed)], key=lambda p: (p.protocol, p.port)))


def _os(os_el: ET.Element) -> OsResult:
    matches = []
    for m in os_el.findall("osmatch"):
        classes = tuple(OsClass(vendor=c.get("vendor") or "", family=c.get("osfamily") or "",
                                generation=c.get("osgen"), device_type=c.get("type"),
                                accuracy=_int(c.get("accuracy"), 0) or 0,
                                cpe=tuple(x.text or "" for x in c.findall("cpe")))
                        for c in m.findall("osclass"))
        matches.append(OsMatch(name=m.get("name") or "", accuracy=_int(m.get("accuracy"), 0) or 0, classes=classes))
    used = tuple(PortResult(port=_int(u.get("portid"), 0) or 0, protocol=u.get("proto") or "tcp",
                            state=_STATES.get(u.get("state") or "", PortState.OPEN), reason=reason(None))
                 for u in os_el.findall("portused"))
    fp = os_el.find("osfingerprint")
    return OsResult(matches=tuple(matches), fingerprint=fp.get("fingerprint") if fp is not None else None,
                    ports_used=used)


def _hop(ttl: str | None, address: str | None, rtt_ms: str | None, name: str | None) -> TraceHop:
    rtt = _float(rtt_ms)
    return TraceHop(ttl=_int(ttl, 0) or 0, address=address, rtt=rtt / 1000 if rtt is not None else None, hostname=name)


def _trace(host: ET.Element, shared: Shared | None = None) -> Trace | None:
    t = host.find("trace")
    if t is None:
        return None
    hops = []
    known = shared.hops if shared is not None else {}  # the first hops repeat from host to host
    for h in t.findall("hop"):
        key = (h.get("ttl"), h.get("ipaddr"), h.get("rtt"), h.get("host"))
        hop = known.get(key)
        if hop is None:
            hop = remember(known, key, _hop(*key)) if shared is not None else _hop(*key)
        hops.append(hop)
    return Trace(protocol=t.get("proto") or "tcp", port=_int(t.get("port")), hops=tuple(hops))


def _addresses(host: ET.Element) -> tuple[str, int, str | None, str | None]:
    address, family, mac, vendor = "", 4, None, None
    for a in host.findall("address"):
        kind = a.get("addrtype")
        if kind == "mac":
            mac, vendor = a.get("addr"), a.get("vendor")
        elif not address:
            address, family = a.get("addr") or "", 6 if kind == "ipv6" else 4
    return address, family, mac, vendor


def _child(host: ET.Element, tag: str, shared: Shared | None, convert: Callable[[ET.Element], _T]) -> _T | None:
    """The first ``tag`` child of ``host`` converted, whether written out or a reference to a shared one."""
    element = host.find(tag)
    ref = host.find("_" + tag) if shared is not None else None
    if ref is not None and shared is not None and (element is None or _before(host, ref, element)):
        return shared.value(ref, convert)
    return convert(element) if element is not None else None


def _before(host: ET.Element, a: ET.Element, b: ET.Element) -> bool:
    for child in host:
        if child is a or child is b:
            return child is a
    return False


def host_from_element(host: ET.Element, shared: Shared | None = None) -> HostResult:
    """One ``<host>`` element as a ``HostResult``; ``shared`` resolves the references ``Shared.cut`` left."""
    address, family, mac, vendor = _addresses(host)
    if not address:
        raise StoreError("a <host> element has no IP address")
    status = host.find("status")
    state = status.get("state") if status is not None else "unknown"
    distance = host.find("distance")
    uptime = host.find("uptime")
    times = host.find("times")
    srtt = _float(times.get("srtt")) if times is not None else None
    hostscript = host.find("hostscript")
    return HostResult(
        address=address, family=family,
        status=HostStatus(state) if state in ("up", "down") else HostStatus.UNKNOWN,
        status_reason=reason(status.get("reason") if status is not None else None),
        status_reason_ttl=_int(status.get("reason_ttl")) if status is not None else None,
        hostnames=tuple(Hostname(n.get("name") or "", n.get("type") or "PTR") for n in host.iter("hostname")),
        latency=srtt / 1_000_000 if srtt is not None else None,
        ports=_child(host, "ports", shared, _ports) or (), mac=mac, mac_vendor=vendor,
        start_time=_float(host.get("starttime")), end_time=_float(host.get("endtime")),
        timed_out=host.get("timedout") == "true",
        distance=_int(distance.get("value")) if distance is not None else None,
        uptime=_float(uptime.get("seconds")) if uptime is not None else None,
        os=_child(host, "os", shared, _os), trace=_trace(host, shared),
        scripts=tuple(_script(s) for s in hostscript.findall("script")) if hostscript is not None else (),
    )


def _run_info(root: ET.Element, state: XmlRun) -> RunInfo:
    args = root.get("args") or ""
    return RunInfo(args=args, start_time=_float(root.get("start")) or 0.0, version=root.get("version") or "",
                   scaninfo=tuple(state.scaninfo), verbosity=state.verbosity, debugging=state.debugging, ping_only=not state.scaninfo and " -sn" in f" {args}",
                   list_only=" -sL" in f" {args}")


def _stats(runstats: ET.Element) -> RunStats:
    fin = runstats.find("finished")
    counts = runstats.find("hosts")
    get = (fin if fin is not None else ET.Element("finished")).get
    count = (counts if counts is not None else ET.Element("hosts")).get
    return RunStats(end_time=_float(get("time")) or 0.0, elapsed=_float(get("elapsed")) or 0.0,
                    hosts_up=_int(count("up"), 0) or 0, hosts_down=_int(count("down"), 0) or 0,
                    hosts_total=_int(count("total"), 0) or 0, exit=get("exit") or "success",
                    summary=get("summary") or "", error_message=get("errormsg") or "")


_HOST_OPEN = re.compile(rb"<host[\s>]")
_HOST_CLOSE = b"</host>"
_CHUNK = 1 << 20


def _skeleton_root(parts: list[bytes], name: str, closed: bool) -> ET.Element:
    """The document without its hosts (header, hints, footer), parsed: the run's header and footer."""
    text = b"".join(parts)
    first = re.search(rb"<([A-Za-z_][\w.:-]*)", text)
    if first is not None and first.group(1) != b"nmaprun":
        raise StoreError(f"{name}: not nmap XML (the root element is <{first.group(1).decode('ascii', 'replace')}>)")
    try:
        root = ET.fromstring(text if closed else text + b"</nmaprun>")
    except ET.ParseError as e:
        if not text.strip():
            raise StoreError(f"{name}: empty file") from None
        raise StoreError(f"{name}: not well-formed XML ({e})") from None
    if root.tag != "nmaprun":
        raise StoreError(f"{name}: not nmap XML (the root element is <{root.tag}>)")
    return root


def _read_header(root: ET.Element, state: XmlRun) -> None:
    for elem in root:
        if elem.tag == "scaninfo":
            state.scaninfo.append(ScanInfo(elem.get("type") or "", elem.get("protocol") or "tcp",
                                           _int(elem.get("numservices"), 0) or 0, elem.get("services") or ""))
        elif elem.tag in ("verbose", "debugging"):
            setattr(state, "verbosity" if elem.tag == "verbose" else "debugging", _int(elem.get("level"), 0) or 0)
    state.run = _run_info(root, state)


def _host_chunks(stream: IO[bytes], skeleton: list[bytes]) -> Iterator[bytes]:
    """The bytes of each ``<host>…</host>``; everything else goes to ``skeleton``.

    nmap's DTD puts ``<host>`` only directly under ``<nmaprun>``, and XML
    escapes ``<`` in text and attributes, so ``<host`` and ``</host>`` mark
    exactly the host elements (leadline's and nmap's files carry no CDATA).
    """
    buf, pos, eof = b"", 0, False
    while True:
        m = _HOST_OPEN.search(buf, pos)
        end = buf.find(_HOST_CLOSE, m.start()) if m is not None else -1
        if m is None or end < 0:
            if eof:
                skeleton.append(buf[pos:])
                return
            if m is None:
                cut = max(pos, len(buf) - 8)  # a "<host" cut in two stays in the buffer
                skeleton.append(buf[pos:cut])
                pos = cut
            else:
                skeleton.append(buf[pos:m.start()])
                pos = m.start()
            chunk = stream.read(_CHUNK)
            eof = not chunk
            buf, pos = buf[pos:] + chunk, 0
            continue
        skeleton.append(buf[pos:m.start()])
        yield buf[m.start():end + len(_HOST_CLOSE)]
        pos = end + len(_HOST_CLOSE)


_SHARED_START = re.compile(rb"<(?:ports|os)[\s>]")
_STARTS = {"ports": re.compile(rb"<ports[\s>/]"), "os": re.compile(rb"<os[\s>/]")}


class _Unsure(Exception):
    """A group whose elements ``Shared.cut`` cannot vouch for: it is parsed as written instead."""


class Shared:
    """``<ports>`` and ``<os>`` elements met before, parsed and converted once.

    The hosts of one scan repeat these elements byte for byte (the same
    ports answering the same way, the same OS guess), so each distinct
    text is parsed once: in a group of hosts it is replaced by a
    reference, ``<_ports n="K"/>`` or ``<_os n="K"/>``, and the hosts
    share one immutable result.  A text is taken only when it parses on
    its own as exactly one such element, and a group holding a comment,
    CDATA or a name of its own starting with ``_`` is not cut at all, so
    the cut can change nothing: what it cannot vouch for is parsed as
    written.  Memory is bounded: the table is emptied at ``LIMIT`` texts.
    Trace hops are shared the same way, by their attributes (``hops``).
    """

    LIMIT = 2048

    def __init__(self) -> None:
        self.refs: dict[bytes, bytes] = {}
        self.elements: list[ET.Element | None] = []
        self.values: dict[int, Any] = {}
        self.hops: dict[tuple[str | None, ...], TraceHop] = {}  # trace hops by their attributes

    def _forget(self) -> None:
        self.refs.clear()
        self.elements.clear()
        self.values.clear()

    def cut(self, data: bytes) -> bytes:
        """``data`` (hosts) with each ``<ports>`` and ``<os>`` element replaced by a reference; or ``_Unsure``."""
        if b"<!" in data or b"<_" in data:
            raise _Unsure
        if len(self.refs) >= self.LIMIT:
            self._forget()
        refs, pos = self.refs, 0
        fresh: list[bytes] = []
        out: list[bytes] = []
        for m in _SHARED_START.finditer(data):  # each element from its start to the first end tag of its kind
            start = m.start()
            if start < pos:
                continue
            end_tag = b"</ports>" if data[start + 1] == 0x70 else b"</os>"
            end = data.find(end_tag, start)
            if end < 0:
                continue
            end += len(end_tag)
            text = data[start:end]
            ref = refs.get(text)
            if ref is None:
                ref = refs[text] = b'<_%s n="%d"/>' % (b"ports" if text[1] == 0x70 else b"os", len(self.elements))
                self.elements.append(None)
                fresh.append(text)
            out += (data[pos:start], ref)
            pos = end
        out.append(data[pos:])
        if fresh:
            self._parse(fresh)
        return b"".join(out)

    def _parse(self, fresh: list[bytes]) -> None:
        """Parse the new texts together; each must be one whole element of its kind, else ``_Unsure``."""
        first = len(self.elements) - len(fresh)
        try:
            root = ET.fromstring(b"<_>" + b"".join(fresh) + b"</_>")
        except ET.ParseError:
            root = None
        if root is None or len(root) != len(fresh):
            self._forget()
            raise _Unsure
        for n, (text, element) in enumerate(zip(fresh, root)):
            kind = "ports" if text[1] == 0x70 else "os"
            if element.tag != kind or _STARTS[kind].search(text, 1):
                self._forget()
                raise _Unsure
            self.elements[first + n] = element

    def value(self, ref: ET.Element, convert: Callable[[ET.Element], _T]) -> _T:
        """The converted element a reference stands for (converted on first use, as the plain path would)."""
        n = int(ref.get("n") or 0)
        value = self.values.get(n)
        if value is None:
            element = self.elements[n]
            assert element is not None
            value = self.values[n] = convert(element)
            self.elements[n] = None
        return cast(_T, value)


def _parse_group(group: list[bytes], before: int, name: str,
                 shared: Shared | None = None) -> tuple[list[ET.Element], Shared | None]:
    """Hosts parsed together (one parser for many hosts costs less), and the ``Shared`` their references
    point into (None when the group was parsed as written); on an error, the host at fault is named."""
    data = b"".join(group)
    if shared is not None:
        try:
            return list(ET.fromstring(b"<hosts>" + shared.cut(data) + b"</hosts>")), shared
        except (_Unsure, ET.ParseError):
            pass  # parsed as written below, which names the host at fault
    try:
        return list(ET.fromstring(b"<hosts>" + data + b"</hosts>")), None
    except ET.ParseError:
        for n, chunk in enumerate(group):
            try:
                ET.fromstring(chunk)
            except ET.ParseError as e:
                raise StoreError(f"{name}: not well-formed XML in host {before + n + 1} ({e})") from None
        raise StoreError(f"{name}: not well-formed XML in hosts {before + 1}-{before + len(group)}") from None


def read_xml(stream: IO[bytes], name: str, state: XmlRun, group_size: int = 64) -> Iterator[HostResult]:
    """Each host of an nmap XML document as it is read; ``state`` gets the header, then the footer.

    Hosts are cut out of the stream and parsed a few dozen at a time (in
    C), their repeated ``<ports>`` and ``<os>`` elements once (``Shared``),
    so memory holds one group of hosts and the table of those elements,
    and the rest of the document (a few elements, nmap's host hints) is
    parsed at the end to check it and read the footer.
    """
    skeleton: list[bytes] = []
    shared = Shared()
    count = 0
    group: list[bytes] = []
    for chunk in _host_chunks(stream, skeleton):
        if state.run is None:
            _read_header(_skeleton_root(skeleton, name, closed=False), state)
        group.append(chunk)
        if len(group) == group_size:
            elements, refs = _parse_group(group, count, name, shared)
            for element in elements:
                yield host_from_element(element, refs)
            count += len(group)
            group = []
    if group:
        elements, refs = _parse_group(group, count, name, shared)
        for element in elements:
            yield host_from_element(element, refs)
    count += len(group)
    if b"<host" in skeleton[-1]:
        raise StoreError(f"{name}: not well-formed XML (host {count + 1} is cut short)")
    # A file nmap was killed writing has no end: its hosts still count, and the run has no footer.
    root = _skeleton_root(skeleton, name, closed=b"</nmaprun>" in b"".join(skeleton[-2:]))
    if state.run is None:
        _read_header(root, state)
    runstats = root.find("runstats")
    if runstats is not None:
        state.stats = _stats(runstats)
