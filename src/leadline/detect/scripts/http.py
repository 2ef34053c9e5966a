"""HTTP scripts: http-title, http-server-header, http-robots.txt, http-methods.

Output text follows nmap's scripts of the same names (``-sC`` layout);
every field a server sent is escaped by ``clean`` before it is shown.
"""

from __future__ import annotations

import os
import re

from leadline.detect.scripts.base import Script, ScriptContext, ScriptError, clean, elem, table
from leadline.detect.scripts.httpclient import fetch, request
from leadline.detect.scripts.rules import HTTP_PORTS, HTTP_SERVICES, port_or_service, wants_tls
from leadline.model import ScriptElement, ScriptResult

__all__ = ["SCRIPTS", "http_methods", "http_robots", "http_server_header", "http_title"]

http_rule = port_or_service(HTTP_PORTS, HTTP_SERVICES)
_TITLE = re.compile(rb"<title[^>]*>([^<]*)</title>", re.IGNORECASE)


def http_title(ctx: ScriptContext) -> ScriptResult | None:
    """The page title, or why there is none; a redirect off the target is named, not followed."""
    resp = fetch(ctx, ctx.arg("url", "/", script="http-title") or "/")
    location = resp.header("location")
    if 300 <= resp.status < 400 and location:
        return ScriptResult("http-title", f"Did not follow redirect to {clean(location)}",
                            (elem("redirect_url", location),))
    m = _TITLE.search(resp.body)
    elements = []
    if m and m.group(1):
        raw = re.sub(rb"[\n\r\t]", b"", m.group(1))
        shown = clean(raw[:62]) + "..." if len(raw) > 65 else clean(raw)
        elements.append(elem("title", m.group(1).decode("utf-8", "backslashreplace")))
    else:
        ctype = resp.header("content-type")
        shown = "Site doesn't have a title" + (f" ({clean(ctype)})." if ctype else ".")
    if resp.locations:
        shown += f"\nRequested resource was {clean(resp.locations[-1])}"
        elements.append(elem("redirect_url", resp.locations[-1]))
    return ScriptResult("http-title", shown, tuple(elements))


_SERVER = re.compile(rb"\n[Ss][Ee][Rr][Vv][Ee][Rr]:[ \t]*(.*?)\r?\n")


def _raw_exchange(ctx: ScriptContext, wire: bytes) -> bytes | None:
    """nmap's comm.tryssl: the likelier of plain and TLS first, then the other."""
    assert ctx.port is not None
    first = wants_tls(ctx.port)
    for tls in (first, not first):
        try:
            conn = ctx.io.connect(ctx.port.port, tls=tls)
        except ScriptError:
            continue
        try:
            conn.send(wire)
            data = conn.recv_all(16384)
        except ScriptError:
            data = b""
        finally:
            conn.close()
        if data:
            return data
    return None


def http_server_header(ctx: ScriptContext) -> ScriptResult | None:
    """Every distinct Server header of a plain and a Host-bearing request, sorted, as nmap lists them.

    The HTTP/1.1 request says ``Connection: close`` (as nmap's http library does): a kept-alive
    connection would hold the read until the server's idle timeout.
    """
    host = ctx.host.hostname or ctx.host.address
    found: set[str] = set()
    for wire in (b"GET / HTTP/1.0\r\n\r\n", f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()):
        data = _raw_exchange(ctx, wire)
        if not data or not re.match(rb"HTTP/1\.[01] \d\d\d", data):
            continue
        m = _SERVER.search(data)
        if m is None:
            continue
        value = m.group(1).decode("latin-1")
        product = ctx.port.detail.product if ctx.port is not None and ctx.port.detail is not None else None
        if product != value:
            found.add(value)
    if not found:
        return None
    values = sorted(found)
    shown = [clean(v) if v else "<empty>" for v in values]
    text = ("\n  " if len(values) > 1 else "") + "\n  ".join(shown)
    return ScriptResult("http-server-header", text, tuple(elem(None, v) for v in values))


def robots_entries(body: bytes) -> list[str]:
    """Disallow values in nmap's layout: duplicates dropped, a new line once a line passes 50 characters."""
    out: list[str] = []
    line_len = 0
    for line in re.split(r"[\r\n]+", body.decode("utf-8", "backslashreplace")):
        m = re.search(r"[Dd]isallow:\s*(.*)", line)
        if m is None or not m.group(1):
            continue
        w = clean(m.group(1), 512)
        if any(w == v or w == v[1:] for v in out):
            continue
        if line_len == 0 or line_len + len(w) <= 50:
            line_len += len(w)
            out.append(w)
        else:
            line_len = 0
            out.append("\n" + w)
    return out


def http_robots(ctx: ScriptContext) -> ScriptResult | None:
    """Disallowed entries of /robots.txt: 15 shown, 40 with -vv, all with -d -d -v (nmap's levels)."""
    resp = request(ctx, "/robots.txt")
    if resp.status != 200:
        return None
    entries = robots_entries(resp.body)
    if not entries:
        return None
    level = ctx.verbosity + 2 * ctx.debugging
    detail = min(len(entries), len(entries) if level >= 5 else 40 if level > 1 else 15)
    noun = "entry " if len(entries) == 1 else "entries "
    shown = "\n" if detail == len(entries) else f"({detail} shown)\n"
    text = f"{len(entries)} disallowed {noun}{shown}{' '.join(entries[:detail])}"
    return ScriptResult("http-robots.txt", text, tuple(elem(None, e.lstrip()) for e in entries))


SAFE_METHODS = ("GET", "HEAD", "POST", "OPTIONS")
UNSAFE_METHODS = ("DELETE", "PUT", "CONNECT", "TRACE")


def _allowed(random_status: int, status: int) -> bool:
    """nmap's test: a method exists unless refused (405, 501) or answered as an invented method was."""
    if status in (405, 501):
        return False
    return not (400 <= status < 600 and status == random_status)


def http_methods(ctx: ScriptContext) -> ScriptResult | None:
    """The methods OPTIONS names, plus the safe ones that answer unlike an invented method, as nmap tests them;
    "Supported Methods" is shown from -v on, risky ones always."""
    path = ctx.arg("url-path", "/", script="http-methods") or "/"
    resp = request(ctx, path, "OPTIONS")
    methods: list[str] = []
    for name in ("allow", "public"):
        for v in re.split(r",\s*", resp.header(name) or ""):
            if v and v not in methods:
                methods.append(v)
    to_test = [m for m in SAFE_METHODS if m not in methods]
    if ctx.arg("test-all", None, script="http-methods"):
        to_test += [m for m in UNSAFE_METHODS if m not in methods]
    invented = "".join(chr(0x41 + b % 26) for b in os.urandom(4))
    random_status = request(ctx, path, invented).status
    for method in to_test:
        try:
            if _allowed(random_status, request(ctx, path, method).status):
                methods.append(method)
        except ScriptError:
            continue
    shown = [clean(m, 64) for m in methods]
    lines: list[str] = []
    elements: list[ScriptElement] = []
    if ctx.verbosity > 0 and shown:
        lines.append(f"\n  Supported Methods: {' '.join(shown)}")
        elements.append(table("Supported Methods", [elem(None, m) for m in shown]))
    risky = [m for m in shown if m not in SAFE_METHODS]
    if risky:
        lines.append(f"\n  Potentially risky methods: {' '.join(risky)}")
        elements.append(table("Potentially risky methods", [elem(None, m) for m in risky]))
    if path != "/":
        lines.append(f"\n  Path tested: {clean(path)}")
        elements.append(elem("Path tested", path))
    if not lines:
        return None
    return ScriptResult("http-methods", "".join(lines), tuple(elements))


SCRIPTS = (
    Script("http-title", frozenset({"default", "discovery", "safe"}), http_rule, http_title,
           description="Shows the title of a web server's default page."),
    Script("http-server-header", frozenset({"version"}), http_rule, http_server_header,
           description="Shows the HTTP Server header."),
    Script("http-robots.txt", frozenset({"default", "discovery", "safe"}), http_rule, http_robots,
           description="Lists the disallowed entries of /robots.txt."),
    Script("http-methods", frozenset({"default", "safe"}), http_rule, http_methods,
           description="Lists the methods an OPTIONS request reports."),
)
