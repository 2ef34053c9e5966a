"""The HTML report and its network map, read as text (tests/lab/test_history_lab.py opens it in Chromium)."""

from __future__ import annotations

import io
import re
from dataclasses import replace

from leadline.history.netmap import MAX_DRAWN, build_map, render_svg
from leadline.history.report import write_report
from leadline.history.sources import Loaded
from leadline.model import HostResult, HostStatus, Trace, TraceHop

from .history_samples import HOSTILE, RUN, STATS, rich_host, simple_host


def _traced(address: str, hops: tuple[str | None, ...]) -> HostResult:
    trace = Trace("tcp", 80, tuple(TraceHop(n + 1, a) for n, a in enumerate((*hops, address))))
    return replace(simple_host(address), trace=trace)


def _report(hosts: list[HostResult]) -> str:
    out = io.StringIO()
    write_report(Loaded("sample", "leadline", iter(hosts), lambda: RUN, lambda: STATS), out)
    return out.getvalue()


def test_map_nodes_are_the_scanner_the_routers_and_each_host() -> None:
    hosts = [_traced("198.18.3.10", ("198.18.1.1", "198.18.2.2")), _traced("198.18.3.1", ("198.18.1.1", "198.18.2.2")),
             _traced("198.18.1.10", ()), simple_host("198.18.1.20"), simple_host("198.18.1.1"),
             simple_host("198.18.1.50", status=HostStatus.DOWN)]
    m = build_map(hosts)
    assert (m.hosts, m.routers) == (5, 2)
    svg = render_svg(m)
    nodes = re.findall(r'<g class="(node [^"]*)" data-id="([^"]*)"', svg)
    assert len(nodes) == 1 + 5 + 1  # scanner, hosts, router2 (router1 was scanned: one node, both roles)
    kinds = dict((nid, cls) for cls, nid in nodes)
    assert "router" in kinds["198.18.1.1"] and "unscanned" not in kinds["198.18.1.1"]
    assert "unscanned" in kinds["198.18.2.2"] and kinds["scanner"].startswith("node scanner")
    assert "198.18.1.0/24 (" in svg  # hosts of one subnet behind one hop get an arc


def test_a_silent_hop_is_an_unknown_router_and_far_hosts_without_a_route_are_dashed() -> None:
    far = replace(simple_host("198.18.3.10"), distance=3)
    by_ttl = replace(simple_host("198.18.3.11"), status_reason_ttl=62)  # 64 - 62 + 1 = 3 hops
    near = replace(simple_host("198.18.1.30"), status_reason_ttl=128)
    svg = render_svg(build_map([_traced("198.18.3.1", ("198.18.1.1", None)), far, by_ttl, near]))
    assert 'class="node router unscanned silent"' in svg and svg.count('class="edge dashed"') == 4


def test_many_hosts_are_drawn_one_node_per_subnet() -> None:
    hosts = [simple_host(f"10.{(n >> 8) & 255}.{n & 255}.{n % 7}") for n in range(MAX_DRAWN + 10)]
    m = build_map(hosts)
    assert m.grouped and m.hosts == MAX_DRAWN + 10
    assert sum(n.count for n in m.nodes.values() if n.kind == "group") == MAX_DRAWN + 10


def test_report_is_self_contained_and_escapes_what_targets_sent() -> None:
    html = _report([rich_host(), simple_host("198.18.1.10")])
    assert "<script>alert(1)</script>" not in html and "\ud800" not in html and "\x00" not in html.split("<script", 1)[0]
    assert not re.search(r'(src|href)="(?!data:|#)', html)  # nothing loaded from anywhere
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    nonce = re.search(r"script-src 'nonce-([^']+)'", html)
    assert nonce and html.count(f'nonce="{nonce.group(1)}"') == 2  # the style and the one script
    data = html.split('type="application/json">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and "\\u003cscript\\u003ealert(1)" in data
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the map's tooltip (hostname), as text


def test_hostile_text_in_every_field_stays_text() -> None:
    evil = replace(rich_host(), address="198.18.1.66", hostnames=())
    evil = replace(evil, trace=Trace("tcp", 80, (TraceHop(1, "198.18.1.1", hostname=HOSTILE), TraceHop(2, "198.18.1.66"))))
    html = _report([evil])
    assert html.count("<script") == 2 and "<script>alert" not in html
