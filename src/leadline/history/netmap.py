"""The report's network map: scanner, routers and hosts laid out radially, as SVG, in Python.

The layout is Zenmap's radial view: the scanner in the centre, each node
on the ring of its hop count, every subtree given an angle in
proportion to the hosts behind it.  Routers come from the hosts' trace
hops; a hop that did not answer is drawn as an unknown router, and a
router that was not itself scanned is drawn dashed.  Hosts are coloured
by how many ports are open (none, 1-2, 3-6, more) and grouped by subnet
(/24, /64) behind their last hop, with an arc naming each group.  A host
whose route is unknown hangs off the scanner, dashed when it is more
than one hop away (by its distance, or else by the TTL of its answers).

The graph is laid out here rather than in the browser: the report then
needs no JavaScript library (nothing to pin, fetch or inline) and the
drawing is the same in every browser.  Pan and zoom are a few lines of
script in ``report.py``.  Above ``MAX_DRAWN`` hosts the hosts behind
each hop are drawn as one node per subnet (the table still lists every
host), so a /16 stays a picture.

Every text drawn comes from a target (addresses aside) and is escaped.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape

from leadline.history.memo import Parts
from leadline.model import HostResult, PortResult, PortState

__all__ = ["MAX_DRAWN", "MapNode", "NetworkMap", "build_map", "colour_class", "render_svg"]

MAX_DRAWN = 4096
SCANNER = "scanner"


def colour_class(open_ports: int) -> str:
    """The colour band of a host by its open ports (Zenmap's idea: more open, warmer)."""
    if open_ports == 0:
        return "p0"
    if open_ports <= 2:
        return "p1"
    if open_ports <= 6:
        return "p2"
    return "p3"


@dataclass
class MapNode:
    id: str
    kind: str  # "scanner" | "router" | "host" | "group"
    label: str
    parent: str | None = None
    scanned: bool = False  # a host of this run (a router may be one too)
    router: bool = False  # seen as an intermediate hop
    answered: bool = True  # False: a hop that did not answer
    open_ports: int = 0
    count: int = 1  # hosts a group node stands for
    far: bool = False  # known to be more than one hop away, route unknown
    subnet: str = ""
    children: list[str] = field(default_factory=list)
    depth: int = 0
    angle: float = 0.0
    x: float = 0.0
    y: float = 0.0
    title: str = ""


@dataclass
class NetworkMap:
    nodes: dict[str, MapNode]
    hosts: int
    routers: int
    grouped: bool  # hosts drawn as one node per subnet


def _subnet(address: str) -> str:
    head, dot, last = address.rpartition(".")
    if dot and ":" not in address and last.isdigit():
        return f"{head}.0/24"  # the common case, without ipaddress's parsing
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 64}", strict=False))


def _sort_key(address: str) -> tuple[int, int]:
    parts = address.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        a, b, c, d = map(int, parts)
        return 4, a << 24 | b << 16 | c << 8 | d
    try:
        ip = ipaddress.ip_address(address)
        return ip.version, int(ip)
    except ValueError:
        return 9, 0


def _hops_from_ttl(h: HostResult) -> int | None:
    """Hops away, from the TTL of an answer and the nearest common initial TTL at or above it (64, 128, 255)."""
    ttls = [h.status_reason_ttl, *(p.reason_ttl for p in h.ports if p.state is PortState.OPEN)]
    ttl = next((t for t in ttls if t), None)
    if ttl is None:
        return None
    initial = next(i for i in (64, 128, 255) if ttl <= i)
    return initial - ttl + 1


def _open_ports(ports: tuple[PortResult, ...]) -> int:
    return sum(1 for p in ports if p.state is PortState.OPEN)


def _far(h: HostResult) -> bool:
    """Known to be more than one hop away (by its distance, or else by the TTL of its answers)."""
    distance = getattr(h, "distance", None) or _hops_from_ttl(h)
    return distance is not None and distance > 1


def _attach(nodes: dict[str, MapNode], node: MapNode, parent: str) -> None:
    if node.parent is None and node.id != SCANNER:
        node.parent = parent
        nodes[parent].children.append(node.id)


def _route(nodes: dict[str, MapNode], h: HostResult) -> str:
    """Add the routers on the host's trace; the id of its last hop (the scanner if none)."""
    parent = SCANNER
    trace = getattr(h, "trace", None)
    for hop in trace.hops if trace is not None else ():
        if hop.address == h.address:
            break
        key = hop.address or f"?{parent}#{hop.ttl}"
        node = nodes.get(key)
        if node is None:
            node = nodes[key] = MapNode(key, "router", hop.address or "?", answered=hop.address is not None,
                                        title=hop.hostname or "")
        node.router = True
        _attach(nodes, node, parent)
        parent = key
    return parent


def build_map(hosts: Iterable[HostResult]) -> NetworkMap:
    """The tree of nodes for the up hosts, not yet laid out."""
    nodes = {SCANNER: MapNode(SCANNER, "scanner", "scanner", title="the scanning host")}
    count = 0
    parts = Parts()  # hosts read from a file or the store share their ports tuples
    for h in hosts:
        if not h.is_up:
            continue
        count += 1
        parent = _route(nodes, h)
        node = nodes.get(h.address)
        if node is None:
            node = nodes[h.address] = MapNode(h.address, "host", h.address)
        node.scanned = True
        node.open_ports = parts.get(h.ports, _open_ports)
        names = ", ".join(n.name for n in h.hostnames)
        os_result = getattr(h, "os", None)
        os_name = os_result.matches[0].name if os_result is not None and os_result.matches else ""
        node.title = "; ".join(x for x in (names, os_name, f"{node.open_ports} open ports") if x)
        node.far = parent == SCANNER and _far(h)
        node.subnet = _subnet(h.address)
        _attach(nodes, node, parent)
    routers = sum(1 for n in nodes.values() if n.router)
    grouped = count > MAX_DRAWN
    if grouped:
        _group(nodes)
    return NetworkMap(nodes, count, routers, grouped)


def _group(nodes: dict[str, MapNode]) -> None:
    """Replace the plain hosts behind each node by one node per subnet."""
    for parent in list(nodes.values()):
        leaves = [nodes[c] for c in parent.children if nodes[c].kind == "host" and not nodes[c].children]
        if not leaves:
            continue
        leaf_ids = {leaf.id for leaf in leaves}
        keep = [c for c in parent.children if c not in leaf_ids]
        groups: dict[str, MapNode] = {}
        for leaf in leaves:
            key = f"{parent.id}|{leaf.subnet}"
            g = groups.get(key)
            if g is None:
                g = groups[key] = MapNode(key, "group", leaf.subnet, parent=parent.id, scanned=True, count=0,
                                          subnet=leaf.subnet)
            g.count += 1
            g.open_ports = max(g.open_ports, leaf.open_ports)
            del nodes[leaf.id]
        for g in groups.values():
            g.title = f"{g.count} hosts; up to {g.open_ports} open ports on one"
            nodes[g.id] = g
        parent.children = keep + list(groups)


def _weight(nodes: dict[str, MapNode], node: MapNode, memo: dict[str, int]) -> int:
    stack = [node.id]
    order = []
    while stack:
        current = stack.pop()
        order.append(current)
        stack.extend(nodes[current].children)
    for nid in reversed(order):
        n = nodes[nid]
        memo[nid] = sum(memo[c] for c in n.children) or 1
    return memo[node.id]


def _ordered_children(nodes: dict[str, MapNode], node: MapNode) -> list[str]:
    """Routers first, then hosts by address: hosts of one subnet end up side by side."""
    return sorted(node.children, key=lambda c: (not nodes[c].children, nodes[c].subnet,
                                                _sort_key(nodes[c].label), c))


def layout(m: NetworkMap) -> float:
    """Angles and positions for every node; the radius of the outermost ring."""
    nodes = m.nodes
    weights: dict[str, int] = {}
    total = _weight(nodes, nodes[SCANNER], weights)
    stack = [(SCANNER, 0.0, 2 * math.pi, 0)]
    max_depth = 1
    while stack:
        nid, start, span, depth = stack.pop()
        n = nodes[nid]
        n.depth, n.angle = depth, start + span / 2
        max_depth = max(max_depth, depth)
        n.children = _ordered_children(nodes, n)
        at = start
        for c in n.children:
            share = span * weights[c] / weights[nid]
            stack.append((c, at, share, depth + 1))
            at += share
    step = max(150.0, total * 18 / (2 * math.pi * max_depth))
    for n in nodes.values():
        radius = n.depth * step
        n.x, n.y = radius * math.cos(n.angle), radius * math.sin(n.angle)
    return max_depth * step


def _clean(text: str) -> str:
    """Target text for SVG: control characters and lone surrogates become U+FFFD, then escaped."""
    return escape("".join("\ufffd" if (ord(ch) < 32 or 0xD800 <= ord(ch) <= 0xDFFF) else ch for ch in text), quote=True)


def _node_svg(n: MapNode, labels: bool) -> str:
    classes = ["node", n.kind]
    if n.kind in ("host", "group") or n.scanned:
        classes.append(colour_class(n.open_ports))
    if n.router and n.kind != "router":
        classes.append("router")
    if n.router and not n.scanned:
        classes.append("unscanned")
    if not n.answered:
        classes.append("silent")
    radius = 14 if n.kind == "scanner" else 9 if n.router else 7 + min(6, n.count.bit_length()) if n.kind == "group" else 6
    shape = (f'<rect x="{-radius}" y="{-radius}" width="{2 * radius}" height="{2 * radius}" rx="3"/>'
             if n.router or n.kind == "scanner" else f'<circle r="{radius}"/>')
    label = n.label if n.kind != "group" else f"{n.label} ({n.count})"
    tip = f"{label}: {n.title}" if n.title else label
    text = (f'<text x="{radius + 3}" y="4">{_clean(label)}</text>' if labels or n.kind != "host" else "")
    return (f'<g class="{" ".join(classes)}" data-id="{_clean(n.id)}" transform="translate({n.x:.1f},{n.y:.1f})">'
            f"<title>{_clean(tip)}</title>{shape}{text}</g>")


def _arcs(m: NetworkMap) -> list[str]:
    """An arc and a name for each subnet of two or more hosts behind one node."""
    out = []
    for parent in m.nodes.values():
        runs: dict[str, list[MapNode]] = {}
        for c in parent.children:
            child = m.nodes[c]
            if child.kind == "host" and not child.children:
                runs.setdefault(child.subnet, []).append(child)
        for subnet, members in runs.items():
            if len(members) < 2:
                continue
            radius = math.hypot(members[0].x, members[0].y) + 26
            a0, a1 = min(x.angle for x in members), max(x.angle for x in members)
            x0, y0, x1, y1 = radius * math.cos(a0), radius * math.sin(a0), radius * math.cos(a1), radius * math.sin(a1)
            large = 1 if a1 - a0 > math.pi else 0
            mid = (a0 + a1) / 2
            out.append(f'<g class="subnet"><path d="M{x0:.1f},{y0:.1f} A{radius:.1f},{radius:.1f} 0 {large} 1 '
                       f'{x1:.1f},{y1:.1f}"/><text x="{(radius + 12) * math.cos(mid):.1f}" '
                       f'y="{(radius + 12) * math.sin(mid):.1f}">{_clean(subnet)} ({len(members)})</text></g>')
    return out


def render_svg(m: NetworkMap) -> str:
    """The whole map as one ``<svg>`` element; the viewBox frames every node."""
    outer = layout(m)
    nodes = m.nodes
    edges = []
    for n in nodes.values():
        if n.parent is not None:
            p = nodes[n.parent]
            dashed = " dashed" if n.far or not n.answered or not p.answered else ""
            edges.append(f'<line class="edge{dashed}" x1="{p.x:.1f}" y1="{p.y:.1f}" x2="{n.x:.1f}" y2="{n.y:.1f}"/>')
    labels = m.hosts <= 400
    drawn = [_node_svg(n, labels) for n in nodes.values()]
    pad = 160.0
    box = f"{-outer - pad:.0f} {-outer - pad:.0f} {2 * (outer + pad):.0f} {2 * (outer + pad):.0f}"
    return (f'<svg id="map" xmlns="http://www.w3.org/2000/svg" viewBox="{box}" data-box="{box}" '
            f'role="img" aria-label="network map"><g id="viewport"><g class="rings">'
            + "".join(f'<circle class="ring" r="{r:.1f}"/>' for r in _rings(nodes, outer))
            + "</g>" + "".join(_arcs(m)) + "".join(edges) + "".join(drawn) + "</g></svg>")


def _rings(nodes: dict[str, MapNode], outer: float) -> list[float]:
    depths = sorted({n.depth for n in nodes.values() if n.depth})
    deepest = max(depths, default=1)
    return [outer * d / deepest for d in depths]
