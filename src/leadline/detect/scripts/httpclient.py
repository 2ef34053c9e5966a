"""A small HTTP/1.1 client for scripts: one request per connection, capped, redirects checked.

Parsing is pure (``parse_response`` takes bytes), so scripts that use it are
tested from canned replies.  Redirects are followed only to the target
itself, on the same port, at most five times, as nmap's default rules do:
a redirect elsewhere is reported, never followed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from leadline.detect.scripts.base import ScriptContext, ScriptError
from leadline.detect.scripts.rules import wants_tls

__all__ = ["MAX_BODY", "USER_AGENT", "Response", "fetch", "parse_response", "request"]

MAX_BODY = 262144  # bytes of a response read per request
USER_AGENT = "Mozilla/5.0 (compatible; leadline; network mapper)"
MAX_REDIRECTS = 5


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    locations: list[str] = field(default_factory=list)  # redirects followed on the way, in order

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None


def parse_response(raw: bytes) -> Response:
    """Status line, headers and body (chunked bodies decoded); ``ScriptError`` if it is not HTTP."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
    lines = re.split(rb"\r?\n", head)
    m = re.match(rb"HTTP/\d\.\d (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise ScriptError("not an HTTP response")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        k, colon, v = line.partition(b":")
        if colon:
            headers.append((k.strip().decode("latin-1"), v.strip().decode("latin-1")))
    resp = Response(int(m.group(1)), (m.group(2) or b"").decode("latin-1"), headers, body)
    if (resp.header("transfer-encoding") or "").lower() == "chunked":
        resp.body = _dechunk(body)
    return resp


def _dechunk(body: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(body):
        end = body.find(b"\r\n", i)
        if end < 0:
            break
        try:
            size = int(body[i:end].split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += body[end + 2:end + 2 + size]
        i = end + 2 + size + 2
    return bytes(out)


def request(ctx: ScriptContext, path: str, method: str = "GET", *, tls: bool | None = None,
            extra_headers: str = "") -> Response:
    """One request on a fresh connection to the script's port."""
    assert ctx.port is not None
    use_tls = wants_tls(ctx.port) if tls is None else tls
    host = ctx.host.hostname or ctx.host.address
    if ":" in host:
        host = f"[{host}]"
    wire = (f"{method} {path} HTTP/1.1\r\nConnection: close\r\nUser-Agent: {USER_AGENT}\r\n"
            f"Host: {host}\r\n{extra_headers}\r\n").encode("latin-1", "replace")
    conn = ctx.io.connect(ctx.port.port, tls=use_tls)
    try:
        conn.send(wire)
        raw = conn.recv_all(MAX_BODY)
    finally:
        conn.close()
    return parse_response(raw)


def _follow(ctx: ScriptContext, current: str, location: str) -> str | None:
    """The path to request next, or None when nmap's rules (and ours: targets only) forbid it."""
    assert ctx.port is not None
    url = urlsplit(urljoin(current, location))
    if url.scheme not in ("http", "https") or url.username or url.password:
        return None
    allowed = {ctx.host.address, *([ctx.host.hostname] if ctx.host.hostname else [])}
    if (url.hostname or "") not in allowed:
        return None
    port = url.port or (443 if url.scheme == "https" else 80)
    if port != ctx.port.port:
        return None
    path = url.path or "/"
    if path == "/" and not url.query:
        return None  # nmap's loop guard: a redirect to the site's root of the same host
    return path + (f"?{url.query}" if url.query else "")


def fetch(ctx: ScriptContext, path: str = "/") -> Response:
    """GET ``path``, following redirects the rules allow; ``locations`` lists those followed."""
    assert ctx.port is not None
    scheme = "https" if wants_tls(ctx.port) else "http"
    host = ctx.host.hostname or ctx.host.address
    current = f"{scheme}://{host}:{ctx.port.port}{path}"
    followed: list[str] = []
    resp = request(ctx, path)
    while 300 <= resp.status < 400 and resp.header("location") and len(followed) < MAX_REDIRECTS:
        location = resp.header("location") or ""
        nxt = _follow(ctx, current, location)
        if nxt is None:
            break
        followed.append(location)
        current = urljoin(current, location)
        resp = request(ctx, nxt)
    resp.locations = followed
    return resp
