"""``leadline report``: one self-contained HTML file for a run: summary, network map, sortable table.

Everything the page needs is in the file: the style and the script are
inline, the map is SVG drawn by ``netmap``, and the hosts ride along as
JSON that the script turns into table rows.  Nothing is fetched, so the
page works from ``file://`` with no network; a Content-Security-Policy
with a fresh nonce per file says so to the browser too (``default-src
'none'``), so even a string that slipped through escaping could neither
run nor load anything.

Escaping, one rule per context: text in the HTML and the SVG goes
through ``html.escape`` after control characters and lone surrogates
become U+FFFD; the JSON block is ASCII with ``<``, ``>`` and ``&``
written as ``\\u003c``-style escapes, so no ``</script>`` can close it; the
script writes target text with ``textContent`` only.  A title of
``<script>alert(1)</script>`` is shown as those characters.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html import escape
from typing import IO, Any, TextIO

from leadline.history.diff import RunDiff, changed_ports, version_string
from leadline.history.memo import Parts
from leadline.history.netmap import build_map, render_svg
from leadline.history.sources import Loaded
from leadline.model import HostResult, PortResult, PortState
from leadline.output.formatting import ctime_string, fold_ports

__all__ = ["ReportData", "write_report"]


def _text(value: object) -> str:
    s = "" if value is None else str(value)
    return escape("".join("\ufffd" if (ord(c) < 32 and c not in "\n\t") or 0xD800 <= ord(c) <= 0xDFFF else c
                          for c in s), quote=True)


def _os_name(h: HostResult) -> str:
    os_result = getattr(h, "os", None)
    return os_result.matches[0].name if os_result is not None and os_result.matches else ""


@dataclass
class ReportData:
    """What one pass over the hosts gathers for the page."""

    rows: IO[str] = field(default_factory=lambda: tempfile.TemporaryFile("w+", encoding="utf-8"))  # JSON rows, spooled
    row_count: int = 0
    up: int = 0
    down: int = 0
    open_by_service: Counter[str] = field(default_factory=Counter)
    open_ports: int = 0

    def tap(self, hosts: Iterable[HostResult], verbosity: int) -> Iterator[HostResult]:
        """Pass the hosts on to the map while keeping a table row of each."""
        parts = Parts()

        def ports_part(ports: tuple[PortResult, ...]) -> tuple[str, list[str], int]:
            return _ports_part(ports, verbosity)

        for h in hosts:
            if not h.is_up:
                self.down += 1
                continue
            self.up += 1
            ports, open_shown, open_count = parts.get(h.ports, ports_part)
            self.open_ports += len(open_shown)
            for name in open_shown:
                self.open_by_service[name] += 1
            trace = getattr(h, "trace", None)
            hops = [hop.address or "*" for hop in trace.hops] if trace is not None else []
            # The row's JSON, written out piece by piece (the ports' piece once per distinct ports tuple):
            # the same text as _json_block(row) for row = [address, names, OS, open, ports, scripts, hops, MAC, vendor].
            row = (f"[{_string(h.address)},{_strings([n.name for n in h.hostnames])},{_string(_os_name(h))},"
                   f"{open_count},{ports},{_ENCODE([[s.id, s.output] for s in h.scripts]) if h.scripts else '[]'},"
                   f"{_strings(hops)},{_string(h.mac or '')},{_string(h.mac_vendor or '')}]")
            self.rows.write(("," if self.row_count else "") + _safe(row) + "\n")
            self.row_count += 1
            yield h


def _ports_part(ports: tuple[PortResult, ...], verbosity: int) -> tuple[str, list[str], int]:
    """A host's ports as the table's JSON, the service of each open port shown, and how many ports are open."""
    # nmap folds a state only above 25 ports: a short list is shown whole, without the folding's cost.
    shown = ports if len(ports) <= 25 else fold_ports(ports, verbosity=verbosity).shown
    rows = []
    open_shown = []
    for p in shown:
        name = (p.detail.name if p.detail else p.service) or ""
        if p.state is PortState.OPEN:
            open_shown.append(name or "unknown")
        rows.append([p.port, p.protocol, str(p.state), name, version_string(p) or "",
                     [[s.id, s.output] for s in p.scripts]])
    return _json_block(rows), open_shown, sum(1 for p in ports if p.state is PortState.OPEN)


_SURROGATE = re.compile("[\ud800-\udfff]")
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_ENCODE_STR = json.encoder.encode_basestring  # what _ENCODE writes for a string


def _string(value: object) -> str:
    return _ENCODE_STR(value) if type(value) is str else _ENCODE(value)


def _strings(items: list[str]) -> str:
    return "[" + ",".join(map(_string, items)) + "]" if items else "[]"


def _safe(text: str) -> str:
    """JSON text made safe for a ``<script type="application/json">``: no ``<``, ``>`` or ``&``, and no lone
    surrogates (undecodable bytes a target sent), which a browser may refuse to serialise."""
    text = _SURROGATE.sub("\ufffd", text)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _json_block(value: Any) -> str:
    """JSON for a ``<script type="application/json">`` (see ``_safe``)."""
    return _safe(_ENCODE(value))


def _summary(loaded: Loaded, data: ReportData, netmap_counts: tuple[int, int, bool]) -> str:
    run, stats = loaded.run, loaded.stats
    hosts, routers, grouped = netmap_counts
    rows = [("Source", loaded.name), ("Scanner", f"{loaded.scanner} {run.version}"), ("Command", run.args),
            ("Started", ctime_string(run.start_time) if run.start_time else "")]
    if stats is not None:
        rows.append(("Finished", f"{ctime_string(stats.end_time)} ({stats.elapsed:.2f} s, "
                                 f"{'interrupted' if stats.exit == 'error' else 'complete'})"))
    total = stats.hosts_total if stats is not None and stats.hosts_total else data.up + data.down
    rows += [("Hosts", f"{data.up} up, {max(total - data.up, data.down)} down, {total} scanned"),
             ("Open ports", str(data.open_ports)),
             ("Map", f"{hosts} hosts, {routers} routers" + (" (hosts drawn per subnet)" if grouped else ""))]
    table = "".join(f"<tr><th>{_text(k)}</th><td>{_text(v)}</td></tr>" for k, v in rows)
    services = "".join(f"<tr><td>{_text(name)}</td><td>{count}</td></tr>"
                       for name, count in data.open_by_service.most_common(20))
    return (f'<section id="summary"><h2>Summary</h2><table class="facts">{table}</table>'
            f'<h3>Open ports by service</h3><table class="services"><tr><th>service</th><th>open</th></tr>'
            f'{services or "<tr><td colspan=2>none</td></tr>"}</table></section>')


def _changes(diff: RunDiff | None) -> str:
    if diff is None:
        return ""
    new = sum(1 for h in diff.hosts if h.a is None and h.b is not None)
    gone = sum(1 for h in diff.hosts if h.b is None and h.a is not None)
    status = sum(1 for h in diff.hosts if h.a is not None and h.b is not None and h.status_changed)
    ports = list(changed_ports(diff))
    opened = sum(1 for *_, a, b in ports if b == "open" and a != "open")
    closed = sum(1 for *_, a, b in ports if a == "open" and b != "open")
    items = "".join(f"<li><code>{_text(addr)}</code> {_text(port)}/{_text(proto)}: {_text(a or 'not shown')} "
                    f"&#8594; {_text(b or 'not shown')}</li>" for addr, proto, port, a, b in ports[:200])
    more = f"<li>… and {len(ports) - 200} more</li>" if len(ports) > 200 else ""
    return (f'<section id="changes"><h2>Changes since {_text(diff.a_name)}</h2>'
            f"<p>{new} new hosts, {gone} hosts gone, {status} hosts changed state, {opened} ports opened, "
            f"{closed} ports no longer open.</p><ul>{items}{more}</ul></section>")


def write_report(loaded: Loaded, out: TextIO, *, previous: RunDiff | None = None) -> tuple[int, int]:
    """Write the page for ``loaded``; (hosts on the map, routers on the map)."""
    data = ReportData()
    verbosity = loaded.run.verbosity
    netmap = build_map(data.tap(loaded.hosts(), verbosity))
    svg = render_svg(netmap)
    nonce = secrets.token_urlsafe(16)
    title = f"leadline report: {loaded.name}"
    out.write(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        f"style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<link rel=\"icon\" href=\"data:,\">"
        f"<title>{_text(title)}</title><style nonce=\"{nonce}\">{_CSS}</style></head><body>"
        f"<header><h1>{_text(title)}</h1><p>written {_text(ctime_string(time.time()))} by leadline; "
        "self-contained: works offline, fetches nothing</p></header><main>")
    out.write(_summary(loaded, data, (netmap.hosts, netmap.routers, netmap.grouped)))
    out.write(_changes(previous))
    out.write('<section id="network"><h2>Network map</h2><div class="legend">'
              '<span class="key scanner">scanner</span><span class="key router">router</span>'
              '<span class="key unscanned">router not scanned</span><span class="key p0">no open port</span>'
              '<span class="key p1">1–2 open</span><span class="key p2">3–6 open</span>'
              '<span class="key p3">7 or more open</span>'
              '<button id="zoom-in" type="button">+</button><button id="zoom-out" type="button">−</button>'
              '<button id="zoom-reset" type="button">fit</button></div><div id="map-frame">')
    out.write(svg)
    out.write('</div><p class="hint">Drag to pan, wheel or buttons to zoom, click a node to show its rows.</p>'
              '</section><section id="hosts"><h2>Hosts and ports</h2>'
              '<p><input id="filter" type="search" placeholder="filter: address, service, version, script text…" '
              'aria-label="filter"> <span id="count"></span> <button id="prev" type="button">previous</button>'
              '<button id="next" type="button">next</button></p><table id="table"><thead><tr>'
              '<th data-col="0">address</th><th data-col="1">names</th><th data-col="2">port</th>'
              '<th data-col="3">state</th><th data-col="4">service</th><th data-col="5">version</th>'
              '<th data-col="6">OS</th><th data-col="7">details</th></tr></thead><tbody></tbody></table></section>'
              '</main><script id="hosts-data" type="application/json">')
    out.write("[")
    data.rows.seek(0)
    shutil.copyfileobj(data.rows, out)
    data.rows.close()
    out.write("]")
    out.write(f'</script><script nonce="{nonce}">{_JS}</script></body></html>\n')
    return netmap.hosts, netmap.routers


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:10px 20px}header h1{font-size:20px;margin:0}header p{margin:2px 0;opacity:.8}
main{padding:10px 20px}section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 16px;margin:12px 0}
h2{font-size:17px;margin:4px 0 8px}h3{font-size:15px}
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #eceef1;text-align:left;vertical-align:top}
.facts th{color:#5a6472;font-weight:normal}#table th{cursor:pointer;user-select:none;background:#eef1f4}
#table th.sorted-1::after{content:" \\25B2"}#table th.sorted--1::after{content:" \\25BC"}
#table pre{margin:2px 0;white-space:pre-wrap;max-width:60ch;font-size:12px;background:#f4f5f7}
#map-frame{height:70vh;border:1px solid #dde1e6;border-radius:4px;overflow:hidden;background:#fbfcfd}
#map{width:100%;height:100%;cursor:grab}#map.dragging{cursor:grabbing}
.ring{fill:none;stroke:#e3e7ec;stroke-dasharray:4 4}.edge{stroke:#9aa5b1;stroke-width:1.2}.edge.dashed{stroke-dasharray:5 4}
.node circle,.node rect{stroke:#33404d;stroke-width:1.2;fill:#cfd6dd}.node text{font-size:11px;fill:#1d2430}
.node.scanner rect{fill:#3b6fd1}.node.router rect{fill:#8e99a6}.node.unscanned rect{fill:#fff;stroke-dasharray:3 2}
.node.silent rect{fill:#fff;stroke:#b0b8c1}
.node.p0 circle,.node.p0.router rect{fill:#b8c2cc}.node.p1 circle,.node.p1.router rect{fill:#5cb85c}
.node.p2 circle,.node.p2.router rect{fill:#f0ad4e}.node.p3 circle,.node.p3.router rect{fill:#d9534f}
.node{cursor:pointer}.node.picked circle,.node.picked rect{stroke:#000;stroke-width:3}
.subnet path{fill:none;stroke:#7d8fa3;stroke-width:3;opacity:.5}.subnet text{font-size:11px;fill:#56657a}
.legend{display:flex;gap:12px;align-items:center;flex-wrap:wrap;margin-bottom:6px}
.key::before{content:"";display:inline-block;width:11px;height:11px;margin-right:4px;border:1px solid #33404d;vertical-align:-1px}
.key.scanner::before{background:#3b6fd1}.key.router::before{background:#8e99a6}
.key.unscanned::before{background:#fff;border-style:dashed}.key.p0::before{background:#b8c2cc;border-radius:50%}
.key.p1::before{background:#5cb85c;border-radius:50%}.key.p2::before{background:#f0ad4e;border-radius:50%}
.key.p3::before{background:#d9534f;border-radius:50%}.hint{color:#5a6472;font-size:12px}
"""

_JS = """
(function(){
"use strict";
const data=JSON.parse(document.getElementById("hosts-data").textContent);
const rows=[];
for(const h of data){if(h[4].length===0){rows.push([h,null]);}else{for(const p of h[4]){rows.push([h,p]);}}}
function ipKey(a){if(a.indexOf(":")<0){return a.split(".").map(function(x){return x.padStart(3,"0");}).join(".");}return "~"+a;}
function cell(r,c){const h=r[0],p=r[1];
 switch(c){case 0:return ipKey(h[0]);case 1:return h[1].join(" ");case 2:return p?("000000"+p[0]).slice(-6)+p[1]:"";
 case 3:return p?p[2]:"";case 4:return p?p[3]:"";case 5:return p?p[4]:"";case 6:return h[2];
 default:return p?p[5].map(function(s){return s[0]+s[1];}).join(" "):"";}}
function text(r){const h=r[0],p=r[1];const parts=[h[0],h[1].join(" "),h[2],h[7],h[8]];
 if(p){parts.push(p[0]+"/"+p[1],p[2],p[3],p[4]);for(const s of p[5]){parts.push(s[0],s[1]);}}
 for(const s of h[5]){parts.push(s[0],s[1]);}return parts.join("\\n").toLowerCase();}
const haystack=rows.map(text);
let sortCol=0,sortDir=1,page=0,shown=rows.map(function(_,i){return i;});
const PAGE=500,tbody=document.querySelector("#table tbody"),count=document.getElementById("count");
const filter=document.getElementById("filter");
function el(tag,content,cls){const e=document.createElement(tag);if(content!==undefined){e.textContent=content;}if(cls){e.className=cls;}return e;}
function scripts(list){const td=el("td");for(const s of list){td.appendChild(el("pre",s[0]+": "+s[1]));}return td;}
function draw(){tbody.replaceChildren();const start=page*PAGE;
 for(const i of shown.slice(start,start+PAGE)){const r=rows[i],h=r[0],p=r[1],tr=el("tr");tr.dataset.address=h[0];
  tr.appendChild(el("td",h[0]));tr.appendChild(el("td",h[1].join(", ")));
  tr.appendChild(el("td",p?p[0]+"/"+p[1]:""));tr.appendChild(el("td",p?p[2]:"up"));
  tr.appendChild(el("td",p?p[3]:""));tr.appendChild(el("td",p?p[4]:""));
  tr.appendChild(el("td",h[2]+(h[6].length?" (route: "+h[6].join(" > ")+")":"")));
  tr.appendChild(scripts((p?p[5]:[]).concat(p===null||p===h[4][0]?h[5]:[])));tbody.appendChild(tr);}
 const pages=Math.max(1,Math.ceil(shown.length/PAGE));
 count.textContent=shown.length+" rows"+(pages>1?", page "+(page+1)+" of "+pages:"");}
function sortRows(){shown.sort(function(a,b){const x=cell(rows[a],sortCol),y=cell(rows[b],sortCol);
 return (x<y?-1:x>y?1:a-b)*sortDir;});
 for(const th of document.querySelectorAll("#table th")){th.className=(+th.dataset.col===sortCol)?"sorted-"+sortDir:"";}}
function apply(){const q=filter.value.trim().toLowerCase();shown=[];
 for(let i=0;i<rows.length;i++){if(!q||haystack[i].indexOf(q)>=0){shown.push(i);}}page=0;sortRows();draw();}
for(const th of document.querySelectorAll("#table th")){th.addEventListener("click",function(){
 const c=+th.dataset.col;sortDir=(c===sortCol)?-sortDir:1;sortCol=c;sortRows();draw();});}
filter.addEventListener("input",apply);
document.getElementById("prev").addEventListener("click",function(){if(page>0){page--;draw();}});
document.getElementById("next").addEventListener("click",function(){if((page+1)*PAGE<shown.length){page++;draw();}});
const svg=document.getElementById("map"),home=svg.getAttribute("data-box").split(" ").map(Number);
let box=home.slice(),drag=null;
function setBox(){svg.setAttribute("viewBox",box.map(function(v){return v.toFixed(1);}).join(" "));}
function zoom(f,cx,cy){const nw=box[2]*f,nh=box[3]*f;box=[cx-(cx-box[0])*f,cy-(cy-box[1])*f,nw,nh];setBox();}
function point(ev){const r=svg.getBoundingClientRect();return [box[0]+(ev.clientX-r.left)/r.width*box[2],box[1]+(ev.clientY-r.top)/r.height*box[3]];}
svg.addEventListener("wheel",function(ev){ev.preventDefault();const p=point(ev);zoom(ev.deltaY>0?1.2:1/1.2,p[0],p[1]);},{passive:false});
svg.addEventListener("pointerdown",function(ev){drag=[ev.clientX,ev.clientY,box[0],box[1]];svg.classList.add("dragging");});
window.addEventListener("pointerup",function(){drag=null;svg.classList.remove("dragging");});
svg.addEventListener("pointermove",function(ev){if(!drag){return;}const r=svg.getBoundingClientRect();
 box[0]=drag[2]-(ev.clientX-drag[0])/r.width*box[2];box[1]=drag[3]-(ev.clientY-drag[1])/r.height*box[3];setBox();});
document.getElementById("zoom-in").addEventListener("click",function(){zoom(1/1.4,box[0]+box[2]/2,box[1]+box[3]/2);});
document.getElementById("zoom-out").addEventListener("click",function(){zoom(1.4,box[0]+box[2]/2,box[1]+box[3]/2);});
document.getElementById("zoom-reset").addEventListener("click",function(){box=home.slice();setBox();});
for(const node of document.querySelectorAll("#map .node")){node.addEventListener("click",function(){
 for(const n of document.querySelectorAll("#map .picked")){n.classList.remove("picked");}node.classList.add("picked");
 const id=node.getAttribute("data-id");if(id.indexOf("|")>=0){filter.value=id.split("|")[1].split("/")[0].split(".").slice(0,3).join(".")+".";}
 else if(id!=="scanner"&&id[0]!=="?"){filter.value=id;}apply();});}
apply();
})();
"""
