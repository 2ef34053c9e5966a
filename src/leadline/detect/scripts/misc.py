"""Line-protocol scripts: banner, ftp-anon, smtp-commands, redis-info, memcached-info, dns-nsid."""

from __future__ import annotations

import os
import re
import struct
import time

from leadline.detect.scripts.base import Conn, HostInfo, Script, ScriptContext, ScriptError, clean, elem, table
from leadline.detect.scripts.rules import port_or_service
from leadline.model import PortResult, PortState, ScriptElement, ScriptResult

__all__ = ["SCRIPTS", "aligned", "banner", "dns_nsid", "ftp_anon", "memcached_info", "redis_info", "smtp_commands"]


def any_open_tcp(host: HostInfo, port: PortResult | None) -> bool:
    return port is not None and port.protocol == "tcp" and port.state is PortState.OPEN


def banner_text(data: bytes, verbosity: int = 0, debugging: int = 0) -> str:
    """nmap's banner layout: trimmed, every byte outside printable ASCII as \\xNN, cut to fit 75 columns
    (one more line per -v beyond -d), wrapped at the same width."""
    name_len, line_len, offset = len("banner"), 75, 5
    first = line_len - 1 - name_len - offset
    other = line_len - 1 - (offset - 2)
    total = first + max(0, verbosity - debugging) * other
    out = "".join(chr(b) if 32 <= b <= 126 else f"\\x{b:02X}" for b in data.strip()[:total + 1])
    if len(out) > total:
        while len(out) > total:
            out = out[:-4] if re.fullmatch(r"\\x[0-9A-F]{2}", out[-4:]) else out[:-1]
        out = out[:total - 3] + "..."
    lines, width = [], first
    while len(out) >= width:
        lines.append(out[:width])
        out, width = out[width:], other
    lines.append(out)
    return "\n".join(lines)


def banner(ctx: ScriptContext) -> ScriptResult | None:
    """What the service says first, unprompted, within ``banner.timeout`` (5 s)."""
    assert ctx.port is not None
    wait = float(ctx.arg("timeout", "5", script="banner") or "5")
    conn = ctx.io.connect(ctx.port.port)
    try:
        data = conn.recv(1024, wait=wait)  # silence is a timeout: no output, "timeout" with -d
    finally:
        conn.close()
    if not data.strip():
        return None
    return ScriptResult("banner", banner_text(data, ctx.verbosity, ctx.debugging))


def _reply(conn: Conn, cap: int = 8192) -> tuple[int, list[str]]:
    """One (possibly multi-line) FTP/SMTP reply: its code and its lines' texts."""
    lines: list[str] = []
    for _ in range(200):
        line = conn.recv_until(b"\n", cap)
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


def _ftp_list(ctx: ScriptContext, conn: Conn) -> list[str]:
    """LIST over a passive data connection; the address in the 227 reply is ignored: only the target is dialled."""
    conn.send(b"PASV\r\n")
    code, lines = _reply(conn)
    m = re.search(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", " ".join(lines))
    if code != 227 or not m:
        return []
    data_port = int(m.group(5)) * 256 + int(m.group(6))
    data = ctx.io.connect(data_port)
    try:
        conn.send(b"LIST\r\n")
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


def resp_command(*words: str) -> bytes:
    """A Redis command as a RESP array of bulk strings."""
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w.encode()) for w in words)


def read_resp(conn: Conn, depth: int = 0) -> object:
    """One RESP value: str, int, None or a list of them; an error reply is a ``ScriptError``."""
    head = conn.recv_until(b"\r\n", 64)
    kind, body = head[:1], head[1:-2]
    if not head.endswith(b"\r\n") or kind not in b"+-:$*" or not kind:
        raise ScriptError(f"not a Redis reply: {clean(head, 80)}")
    if kind == b"-":
        raise ScriptError(f"Redis refused: {clean(body, 120)}")
    if kind == b"+":
        return body.decode("latin-1")
    n = int(body) if re.fullmatch(rb"-?\d+", body) else None
    if n is None:
        raise ScriptError("Redis: bad length")
    if kind == b":" or n < 0:
        return n if kind == b":" else None
    if kind == b"$":
        data = conn.recv_all(min(n + 2, 1 << 20))
        return data[:n].decode("latin-1")
    if depth > 4:
        raise ScriptError("Redis: reply nested too deep")
    return [read_resp(conn, depth + 1) for _ in range(min(n, 1024))]


def _redis_extras(conn: Conn) -> list[tuple[str, list[str]]]:
    """nmap's extra lists: the addresses Redis binds, and the addresses of its clients."""
    extras: list[tuple[str, list[str]]] = []
    try:
        conn.send(resp_command("CONFIG", "GET", "bind"))
        bind = read_resp(conn)
        if isinstance(bind, list) and len(bind) > 1 and bind[0] == "bind" and isinstance(bind[1], str):
            extras.append(("Bind addresses", [clean(a or "0.0.0.0", 64) for a in bind[1].split(" ")]))
        conn.send(resp_command("CLIENT", "LIST"))
        clients = read_resp(conn)
        if isinstance(clients, str):
            found = sorted({m.group(1) for m in re.finditer(r"(?:^|\s)addr=\[?([0-9a-fA-F:.]+)\]?:\d+", clients)},
                           key=lambda a: (":" in a, [int(x) if x.isdigit() else 0 for x in a.split(".")]))
            if found:
                extras.append(("Client connections", [clean(a, 64) for a in found]))
    except ScriptError:
        pass  # a server that refuses CONFIG or CLIENT still gets its INFO shown
    return extras


def redis_info(ctx: ScriptContext) -> ScriptResult | None:
    """Selected fields of Redis's INFO reply, then the bind and client addresses, as nmap's redis-info."""
    assert ctx.port is not None
    conn = ctx.io.connect(ctx.port.port)
    try:
        conn.send(resp_command("INFO"))
        body = read_resp(conn)
        if not isinstance(body, str):
            raise ScriptError("not a Redis INFO reply")
        extras = _redis_extras(conn)
    finally:
        conn.close()
    info = dict(line.split(":", 1) for line in body.splitlines() if ":" in line)
    rows = []
    for key, label in REDIS_FIELDS:
        if key in info:
            value = clean(info[key].strip(), 256)
            rows.append((label, f"{value} bits" if key == "arch_bits" else value))
    if not rows:
        return None
    text = "".join(f"\n  {k}: {v}" for k, v in rows)
    text += "".join(f"\n  {k}: " + "".join(f"\n    {a}" for a in items) for k, items in extras)
    elements = [elem(k, v) for k, v in rows] + [table(k, [elem(None, a) for a in items]) for k, items in extras]
    return ScriptResult("redis-info", text, tuple(elements))


MEMCACHED_FIELDS = (("pid", "Process ID"), ("uptime", "Uptime"), ("time", "Server time"),
                    ("pointer_size", "Architecture"), ("rusage_user", "Used CPU (user)"),
                    ("rusage_system", "Used CPU (system)"), ("curr_connections", "Current connections"),
                    ("total_connections", "Total connections"), ("max_connections", "Maximum connections"),
                    ("tcp_port", "TCP Port"), ("udp_port", "UDP Port"))


def _memcached_value(key: str, value: str) -> str:
    if key == "uptime":
        return f"{value} seconds"
    if key == "pointer_size":
        return f"{value} bit"
    if key == "time" and value.isdigit():
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(value)))
    return value


def _memcached_stats(raw: bytes) -> dict[str, str]:
    stats = {}
    for line in raw.decode("latin-1").splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            stats[parts[1]] = clean(parts[2], 128)
    return stats


def memcached_info(ctx: ScriptContext) -> ScriptResult | None:
    """Selected fields of memcached's ``stats`` reply, in nmap's memcached-info order."""
    assert ctx.port is not None
    conn = ctx.io.connect(ctx.port.port)
    try:
        conn.send(b"stats\r\n")
        raw = conn.recv_until(b"END\r\n", 65536)
        stats = _memcached_stats(raw)
        if not stats:
            raise ScriptError("not a memcached stats reply")
        conn.send(b"stats settings\r\n")
        settings = _memcached_stats(conn.recv_until(b"END\r\n", 65536))
    finally:
        conn.close()
    for key, setting in (("max_connections", "maxconns"), ("tcp_port", "tcpport"), ("udp_port", "udpport")):
        if key not in stats and setting in settings:
            stats[key] = settings[setting]
    rows = [(label, _memcached_value(key, stats[key])) for key, label in MEMCACHED_FIELDS if key in stats]
    rows.append(("Authentication", "yes" if settings.get("auth_enabled_sasl") == "yes" else "no"))
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
