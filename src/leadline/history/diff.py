"""What changed between two runs, host by host and port by port, with ndiff's rules.

Hosts are matched by address.  A port counts as changed when its state,
service name or version string changed, or one of its scripts' output
did; as in ndiff, a port whose state is folded into "Not shown" on both
sides is not listed (a firewall that turns 995 closed ports into 995
filtered ones shows as a changed "Not shown" line, not 995 rows), and
the folding is nmap's rule applied with each run's verbosity, which is
what the XML files hold.  A host present in one run only is listed
whole, marked as gone or new.  OS changes compare the lists of OS match
names, in order.

``diff_runs`` reads the first run into a compact view per host (a few
strings per shown port), then streams the second against it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from leadline.history.sources import Loaded
from leadline.model import HostResult, PortResult, RunInfo
from leadline.output.formatting import fold_ports

__all__ = ["HostDiff", "HostView", "PortDiff", "PortView", "RunDiff", "changed_ports", "compare_hosts", "diff_runs", "host_view",
           "version_string"]


@dataclass(frozen=True)
class PortView:
    """The columns of one port row: ndiff's PORT STATE SERVICE VERSION, plus the port's script outputs."""

    state: str
    service: str | None
    version: str | None
    scripts: tuple[tuple[str, str], ...] = ()

    def same_as(self, other: PortView) -> bool:
        # A folded port has no service name in XML: a missing name is not a change of name.
        names = self.service == other.service or self.service is None or other.service is None
        return self.state == other.state and names and self.version == other.version and self.scripts == other.scripts


@dataclass
class HostView:
    """What a diff needs of one host."""

    address: str
    names: tuple[str, ...]
    status: str
    ports: dict[tuple[str, int], PortView]
    folded: frozenset[str]  # states folded into "Not shown"
    not_shown: tuple[tuple[int, str], ...]  # (count, state), largest first, as ndiff prints them
    os: tuple[str, ...]
    scripts: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PortDiff:
    protocol: str
    port: int
    a: PortView | None  # None: not shown (folded) or not scanned in that run
    b: PortView | None


@dataclass
class HostDiff:
    address: str
    a: HostView | None  # None: the host is not in that run
    b: HostView | None
    ports: list[PortDiff] = field(default_factory=list)
    status_changed: bool = False
    names_changed: bool = False
    not_shown_changed: bool = False
    os_changed: bool = False
    scripts_changed: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.ports) or self.status_changed or self.names_changed or self.not_shown_changed \
            or self.os_changed or self.scripts_changed


@dataclass
class RunDiff:
    a_name: str
    b_name: str
    a_run: RunInfo
    b_run: RunInfo
    a_scanner: str
    b_scanner: str
    hosts: list[HostDiff]

    @property
    def changed(self) -> bool:
        return any(h.changed for h in self.hosts)


def version_string(p: PortResult) -> str | None:
    """nmap's VERSION column: product, version, (extrainfo)."""
    d = p.detail
    if d is None:
        return None
    parts = [x for x in (d.product, d.version) if x]
    if d.extrainfo:
        parts.append(f"({d.extrainfo})")
    return " ".join(parts) or None


def _service(p: PortResult) -> str | None:
    name = p.detail.name if p.detail is not None else p.service
    if p.detail is not None and p.detail.tunnel and name:
        return f"{p.detail.tunnel}/{name}"
    return name


def host_view(h: HostResult, verbosity: int = 0, debugging: int = 0) -> HostView:
    folding = fold_ports(h.ports, verbosity=verbosity, debugging=debugging)
    folded = frozenset(str(state) for state, _, _ in folding.folded_states())
    ports = {(p.protocol, p.port): PortView(str(p.state), _service(p), version_string(p),
                                            tuple((s.id, s.output) for s in p.scripts))
             for p in folding.shown}
    not_shown = tuple(sorted(((count, str(state)) for state, count, _ in folding.folded_states()), reverse=True))
    os_names = tuple(m.name for m in h.os.matches) if getattr(h, "os", None) is not None and h.os else ()
    return HostView(address=h.address, names=tuple(sorted({n.name for n in h.hostnames})), status=str(h.status),
                    ports=ports, folded=folded, not_shown=not_shown, os=os_names,
                    scripts=tuple((s.id, s.output) for s in h.scripts))


def _views(loaded: Loaded) -> Iterator[HostView]:
    run = loaded.run
    for h in loaded.hosts():
        yield host_view(h, run.verbosity, run.debugging)


def _port_diffs(a: HostView | None, b: HostView | None) -> list[PortDiff]:
    a_ports = a.ports if a else {}
    b_ports = b.ports if b else {}
    out = []
    for key in sorted(set(a_ports) | set(b_ports), key=lambda k: (k[0], k[1])):
        pa, pb = a_ports.get(key), b_ports.get(key)
        if pa is not None and pb is not None and pa.same_as(pb):
            continue
        out.append(PortDiff(key[0], key[1], pa, pb))
    return out


def compare_hosts(a: HostView | None, b: HostView | None) -> HostDiff:
    address = (a or b).address  # type: ignore[union-attr]
    d = HostDiff(address, a, b, _port_diffs(a, b))
    d.status_changed = (a.status if a else None) != (b.status if b else None)
    d.names_changed = a is None or b is None or a.names != b.names
    d.not_shown_changed = (a.not_shown if a else ()) != (b.not_shown if b else ())
    d.os_changed = (a.os if a else ()) != (b.os if b else ())
    d.scripts_changed = (a.scripts if a else ()) != (b.scripts if b else ())
    return d


def _sort_key(address: str) -> tuple[int, int, str]:
    try:
        ip = ipaddress.ip_address(address)
        return ip.version, int(ip), address
    except ValueError:
        return 9, 0, address


def diff_runs(a: Loaded, b: Loaded) -> RunDiff:
    """Compare two runs; the hosts are in address order, unchanged ones included (``changed`` tells)."""
    before = {v.address: v for v in _views(a)}
    pairs: list[tuple[HostView | None, HostView | None]] = []
    for view in _views(b):
        pairs.append((before.pop(view.address, None), view))
    pairs.extend((view, None) for view in before.values())
    hosts = [compare_hosts(x, y) for x, y in pairs]
    hosts.sort(key=lambda h: _sort_key(h.address))
    return RunDiff(a.name, b.name, a.run, b.run, a.scanner, b.scanner, hosts)


def changed_ports(d: RunDiff) -> Iterable[tuple[str, str, int, str | None, str | None]]:
    """(address, protocol, port, state before, state after) for every port row of the diff; for tests and JSON."""
    for h in d.hosts:
        for p in h.ports:
            yield h.address, p.protocol, p.port, p.a.state if p.a else None, p.b.state if p.b else None

