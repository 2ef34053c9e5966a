"""Helpers for script tests: a ScriptContext over scripted services, and canned servers (HTTP, SSH)."""

from __future__ import annotations

import struct
from collections.abc import Callable

from leadline.detect.scripts.base import HostInfo, ScriptContext
from leadline.detect.scripts.sshproto import build_packet, string
from leadline.model import PortResult, PortState, Reason
from tests.unit.fakeengines import FakeScriptIO, Service

__all__ = ["ADDRESS", "context", "http_service", "ssh_service"]

ADDRESS = "198.18.7.10"


def context(services: dict[int, Service], port: int, service: str | None = None, *, proto: str = "tcp",
            args: dict[str, str] | None = None, verbosity: int = 0,
            udp: dict[int, Callable[[bytes], bytes]] | None = None,
            log: list[tuple[str, int, bool]] | None = None) -> ScriptContext:
    io = FakeScriptIO(ADDRESS, services, udp or {}, log if log is not None else [])
    result = PortResult(port, proto, PortState.OPEN, Reason.SYN_ACK, service=service)
    return ScriptContext(HostInfo(ADDRESS, None, frozenset({ADDRESS})), result, io, args or {}, verbosity)


def http_service(routes: dict[str, bytes], default: bytes = b"HTTP/1.1 404 Not Found\r\n\r\n") -> Service:
    """An HTTP server answering by request line ("GET /", "OPTIONS /") once the request is complete."""
    def respond(sent: bytes) -> bytes:
        if b"\r\n\r\n" not in sent:
            return b""
        line = sent.split(b"\r\n", 1)[0].decode()
        method, path = line.split(" ")[:2]
        return routes.get(f"{method} {path}", routes.get(path, default))
    return Service(respond)


def server_kexinit(host_key_algorithms: str, kex: str = "curve25519-sha256,diffie-hellman-group14-sha256") -> bytes:
    lists = [kex, host_key_algorithms, "aes128-ctr,aes256-gcm@openssh.com", "aes128-ctr,aes256-gcm@openssh.com",
             "hmac-sha2-256", "hmac-sha2-256", "none,zlib@openssh.com", "none,zlib@openssh.com", "", ""]
    return build_packet(bytes([20]) + b"\x11" * 16 + b"".join(string(x.encode()) for x in lists) + b"\x00" + b"\x00" * 4)


def ssh_service(keys: dict[str, bytes], banner: bytes = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n") -> Service:
    """An SSH server that lists ``keys``' types and answers a key exchange with the blob of the type asked for."""
    offered = ",".join(keys)

    def respond(sent: bytes) -> bytes:
        out = banner
        if b"\r\n" not in sent:
            return out
        out += server_kexinit(offered)
        rest = sent.split(b"\r\n", 1)[1]
        if len(rest) < 4:
            return out
        (length,) = struct.unpack(">I", rest[:4])
        kexinit, after = rest[4:4 + length], rest[4 + length:]
        if len(after) < 6 or after[5] != 30:
            return out
        asked = _second_list(kexinit[1:])
        blob = keys.get(asked)
        if blob is None:
            return out
        reply = bytes([31]) + string(blob) + string(b"\x00" * 32) + string(b"sig")
        return out + build_packet(reply)
    return Service(respond, closes=False)


def _second_list(body: bytes) -> str:
    """The host key algorithms of a client KEXINIT packet body (after the padding-length byte)."""
    pos = 1 + 16
    (n,) = struct.unpack_from(">I", body, pos)
    pos += 4 + n
    (n,) = struct.unpack_from(">I", body, pos)
    return body[pos + 4:pos + 4 + n].decode()
