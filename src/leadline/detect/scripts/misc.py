"""Line-protocol scripts: banner, ftp-anon, smtp-commands, redis-info, memcached-info, dns-nsid."""

from __future__ import annotations

import os
import re
import struct

from leadline.detect.scripts.base import HostInfo, Script, ScriptContext, ScriptError, clean, elem, table
from leadline.detect.scripts.rules import port_or_service
from leadline.model import PortResult, PortState, ScriptElement, ScriptResult

__all__ = ["SCRIPTS", "aligned", "banner", "dns_nsid", "ftp_anon", "memcached_info", "redis_info", "smtp_commands"]


def any_open_tcp(host: HostInfo, port: PortResult | None) -> bool:
    return port is not None and port.protocol == "tcp" and port.state is PortState.OPEN


def banner(ctx: ScriptContext) -> ScriptResult | None:
    """What the service says first, unprompted, within ``banner.timeout`` (5 s), escaped as nmap does."""
    assert ctx.port is not None
    wait = float(ctx.arg("timeout", "5", script="banner") or "5")
    conn = ctx.io.connect(ctx.port.port)
    try:
        data = conn.recv(1024, wait=wait)  # silence is a timeout: no output, "timeout" with -d
    finally:
        conn.close()
    if not data:
        return None
    text = clean(data, 1024)
    return ScriptResult("banner", text, (elem(None, data.decode("utf-8", "backslashreplace")),))


def _reply(conn: object, cap: int = 8192) -> tuple[int, list[str]]:
    """One (possibly multi-line) FTP/SMTP reply: its code and its lines' texts."""
    lines: list[str] = []
    for _ in range(200):
        line = conn.recv_until(b"\n", cap)  # type: ignore[attr-defined]
        if not line:
            break
        m = re.match(rb"(\d{3})([ -]?)(.*?)\r?\n?$", line, re.S)
        if not m:
            if lines:
                lines.append(clean(line.rstrip(b"\r\n"), 512))
                continue
            raise ScriptError("not an FTP/SMTP reply")
        lines.append(clean(m.group(3), 512))
        if m.group(2) != b"-":
            return int(m.group(1)), lines
    raise ScriptError("reply cut short")


def ftp_anon(ctx: ScriptContext) -> ScriptResult | None:
    """Whether anonymous login works, and the first entries of the root listing (data port on the target only)."""
    assert ctx.port is not None
    conn = ctx.io.connect(ctx.port.port)
    try:
        if _reply(conn)[0] != 220:
            return None
        conn.send(b"USER anonymous\r\n")
        code, _ = _reply(conn)
        if code == 331:
            conn.send(b"PASS IEUser@\r\n")
            code, _ = _reply(conn)
        if code not in (230, 202):
            return None
        head = f"Anonymous FTP login allowed (FTP code {code})"
        listing = _ftp_list(ctx, conn)
    finally:
        conn.close()
    limit = int(ctx.arg("maxlist", "20", script="ftp-anon") or "20")
    shown = listing if limit < 0 else listing[:limit]
    lines = [head, *shown]
    if len(shown) < len(listing):
        lines.append(f"Only {len(shown)} shown. Use --script-args ftp-anon.maxlist=-1 to see all.")
    return ScriptResult("ftp-anon", "\n".join(lines), (elem("login", head), table("listing", [elem(None, x) for x in listing])))


def _ftp_list(ctx: ScriptContext, conn: object) -> list[str]:
    """LIST over a passive data connection; the address in the 227 reply is ignored: only the target is dialled."""
    conn.send(b"PASV\r\n")  # type: ignore[attr-defined]
    code, lines = _reply(conn)
    m = re.search(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", " ".join(lines))
    if code != 227 or not m:
        return []
    data_port = int(m.group(5)) * 256 + int(m.group(6))
    data = ctx.io.connect(data_port)
    try:
        conn.send(b"LIST\r\n")  # type: ignore[attr-defined]
        raw = data.recv_all(65536)
    finally:
        data.close()
    return [clean(x, 512) for x in raw.decode("utf-8", "backslashreplace").splitlines() if x.strip()]


def smtp_commands(ctx: ScriptContext) -> ScriptResult | None:
    """The EHLO reply's lines joined by ", ", as nmap's smtp-commands shows them."""
    assert ctx.port is not None
    domain = ctx.arg("domain", None, script="smtp-commands") or ctx.arg("smtp.domain") or "leadline.invalid"
    conn = ctx.io.connect(ctx.port.port)
    try:
        if _reply(conn)[0] != 220:
            return None
        conn.send(f"EHLO {domain}\r\n".encode())
        code, lines = _reply(conn)
        conn.send(b"QUIT\r\n")
    finally:
        conn.close()
    if code != 250:
        return None
    return ScriptResult("smtp-commands", ", ".join(lines), tuple(elem(None, x) for x in lines))


def aligned(rows: list[tuple[str, str]]) -> str:
    """nmap's two-column tables: names padded to the longest, two spaces, then the value."""
    width = max(len(k) for k, _ in rows)
    return "".join(f"\n  {k.ljust(width)}  {v}" for k, v in rows)


REDIS_FIELDS = (("redis_version", "Version"), ("os", "Operating System"), ("arch_bits", "Architecture"),
                ("process_id", "Process ID"), ("used_cpu_sys", "Used CPU (sys)"), ("used_cpu_user", "Used CPU (user)"),
                ("connected_clients", "Connected clients"), ("connected_slaves", "Connected slaves"),
                ("used_memory_human", "Used memory"), ("role", "Role"))


def redis_info(ctx: ScriptContext) -> ScriptResult | None:
    """Selected fields of Redis's INFO reply (a RESP bulk string)."""
    assert ctx.port is not None
    conn = ctx.io.connect(ctx.port.port)
    try:
        conn.send(b"INFO\r\n")
        head = conn.recv_until(b"\r\n", 64)
        m = re.fullmatch(rb"\$(\d+)\r\n", head)
        if not m:
            raise ScriptError(f"not a Redis INFO reply: {clean(head, 80)}")
        body = conn.recv_all(min(int(m.group(1)) + 2, 65536))
    finally:
        conn.close()
    info = dict(line.split(":", 1) for line in body.decode("latin-1").splitlines() if ":" in line)
    rows = []
    for key, label in REDIS_FIELDS:
        if key in info:
            value = clean(info[key].strip(), 256)
            rows.append((label, f"{value} bits" if key == "arch_bits" else value))
    if not rows:
        return None
    return ScriptResult("redis-info", aligned(rows), tuple(elem(k, v) for k, v in rows))


MEMCACHED_FIELDS = (("pid", "Process ID"), ("uptime", "Uptime"), ("version", "Version"),
                    ("pointer_size", "Architecture"), ("rusage_user", "Used CPU (user)"),
                    ("rusage_system", "Used CPU (system)"), ("curr_connections", "Current connections"),
                    ("total_connections", "Total connections"), ("max_connections", "Maximum connections"),
                    ("tcp_port", "TCP Port"), ("udp_port", "UDP Port"))


def memcached_info(ctx: ScriptContext) -> ScriptResult | None:
    """Selected fields of memcached's ``stats`` reply."""
    assert ctx.port is not None
    conn = ctx.io.connect(ctx.port.port)
    try:
        conn.send(b"stats\r\n")
        raw = conn.recv_until(b"END\r\n", 65536)
    finally:
        conn.close()
    stats = {}
    for line in raw.decode("latin-1").splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            stats[parts[1]] = parts[2]
    if not stats:
        raise ScriptError("not a memcached stats reply")
    rows: list[tuple[str, str]] = []
    for key, label in MEMCACHED_FIELDS:
        if key in stats:
            value = clean(stats[key], 128)
            value = f"{value} seconds" if key == "uptime" else f"{value} bit" if key == "pointer_size" else value
            rows.append((label, value))
    return ScriptResult("memcached-info", "".join(f"\n  {k}: {v}" for k, v in rows),
                        tuple(elem(k, v) for k, v in rows))


def dns_query(name: str, qtype: int, qclass: int, nsid: bool = False) -> bytes:
    """A DNS query (RFC 1035 §4.1), with an EDNS OPT record asking for the NSID (RFC 5001) when ``nsid``."""
    header = struct.pack(">HHHHHH", int.from_bytes(os.urandom(2), "big"), 0x0000, 1, 0, 0, 1 if nsid else 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\x00"
    opt = b"\x00" + struct.pack(">HHIH", 41, 4096, 0, 4) + struct.pack(">HH", 3, 0) if nsid else b""
    return header + qname + struct.pack(">HH", qtype, qclass) + opt


def _skip_name(msg: bytes, pos: int) -> int:
    for _ in range(128):
        if pos >= len(msg):
            raise ScriptError("DNS: truncated name")
        n = msg[pos]
        if n == 0:
            return pos + 1
        if n & 0xC0 == 0xC0:
            return pos + 2
        pos += n + 1
    raise ScriptError("DNS: name too long")


def dns_records(msg: bytes) -> list[tuple[int, bytes]]:
    """(type, rdata) of every answer, authority and additional record of a DNS reply."""
    if len(msg) < 12:
        raise ScriptError("DNS: short reply")
    qd, an, ns, ar = struct.unpack_from(">HHHH", msg, 4)
    pos = 12
    for _ in range(qd):
        pos = _skip_name(msg, pos) + 4
    out = []
    for _ in range(min(an + ns + ar, 64)):
        pos = _skip_name(msg, pos)
        if pos + 10 > len(msg):
            raise ScriptError("DNS: truncated record")
        rtype, _cls, _ttl, rdlen = struct.unpack_from(">HHIH", msg, pos)
        out.append((rtype, msg[pos + 10:pos + 10 + rdlen]))
        pos += 10 + rdlen
    return out


def _txt(rdata: bytes) -> str:
    parts, i = [], 0
    while i < len(rdata):
        n = rdata[i]
        parts.append(rdata[i + 1:i + 1 + n])
        i += n + 1
    return clean(b"".join(parts), 256)


def _nsid(rdata: bytes) -> str | None:
    i = 0
    while i + 4 <= len(rdata):
        code, n = struct.unpack_from(">HH", rdata, i)
        if code == 3:
            return clean(rdata[i + 4:i + 4 + n], 256)
        i += 4 + n
    return None


def dns_nsid(ctx: ScriptContext) -> ScriptResult | None:
    """The server's NSID (RFC 5001), id.server and version.bind (CHAOS TXT), as nmap's dns-nsid asks."""
    assert ctx.port is not None
    rows: list[tuple[str, str]] = []
    for label, query in (("NSID", dns_query("id.server", 16, 3, nsid=True)),
                         ("id.server", dns_query("id.server", 16, 3)),
                         ("bind.version", dns_query("version.bind", 16, 3))):
        try:
            records = dns_records(ctx.io.udp_exchange(ctx.port.port, query, 4096))
        except ScriptError:
            continue
        for rtype, rdata in records:
            value = _nsid(rdata) if label == "NSID" and rtype == 41 else _txt(rdata) if label != "NSID" and rtype == 16 else None
            if value is not None:
                rows.append((label, value))
                break
    if not rows:
        return None
    elements: list[ScriptElement] = [elem(k, v) for k, v in rows]
    return ScriptResult("dns-nsid", "".join(f"\n  {k}: {v}" for k, v in rows), tuple(elements))


SCRIPTS = (
    Script("banner", frozenset({"discovery", "safe"}), any_open_tcp, banner,
           description="What a TCP service sends first."),
    Script("ftp-anon", frozenset({"default", "auth", "safe"}), port_or_service((21, 990), ("ftp", "ftps")), ftp_anon,
           description="Checks for anonymous FTP login and lists the root directory."),
    Script("smtp-commands", frozenset({"default", "discovery", "safe"}),
           port_or_service((25, 465, 587), ("smtp", "smtps", "submission")), smtp_commands,
           description="The extensions an SMTP server's EHLO reply lists."),
    Script("redis-info", frozenset({"discovery", "safe"}), port_or_service((6379,), ("redis",)), redis_info,
           description="Version and state from Redis's INFO command."),
    Script("memcached-info", frozenset({"discovery", "safe"}), port_or_service((11211,), ("memcache",)),
           memcached_info, description="Version and state from memcached's stats command."),
    Script("dns-nsid", frozenset({"discovery", "default", "safe"}),
           port_or_service((53,), ("domain",), ("tcp", "udp")), dns_nsid,
           description="The DNS server's NSID, id.server and version.bind."),
)
