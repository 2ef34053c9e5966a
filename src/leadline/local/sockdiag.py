"""This namespace's TCP and UDP sockets from the kernel's ``sock_diag`` netlink interface, as ``ss`` reads them.

One dump request (``inet_diag_req_v2``) per protocol and family asks the
kernel for every socket of the calling process's network namespace; each
answer (``inet_diag_msg``) carries the state, both ends, the owning uid
and the socket's inode, which ``procfs`` maps to the processes holding
it.  The reader is ours, in the standard library, because it is the cost
that decides how fast ``leadline local`` answers: psutil decodes the text
tables of ``/proc/net`` at about 14 µs a socket, pyroute2 imports in
250 ms; this decodes a socket in about 1 µs (docs/local.md has the
figures).  :func:`parse_dump` is pure, so recorded bytes test it.

Layouts (``linux/netlink.h``, ``linux/inet_diag.h``; native byte order,
ports and addresses in network order)::

    nlmsghdr         len u32, type u16, flags u16, seq u32, pid u32
    inet_diag_req_v2 family u8, protocol u8, ext u8, pad u8, states u32, inet_diag_sockid
    inet_diag_sockid sport be16, dport be16, src 16 bytes, dst 16 bytes, if u32, cookie 2 x u32
    inet_diag_msg    family u8, state u8, timer u8, retrans u8, inet_diag_sockid,
                     expires u32, rqueue u32, wqueue u32, uid u32, inode u32 (then attributes)
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable, Iterator

__all__ = [
    "DiagSocket",
    "SockDiagError",
    "TCP_STATES",
    "dump_request",
    "parse_dump",
    "read_sockets",
]

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_HEADER = struct.Struct("=IHHII")  # nlmsghdr
_REQUEST = struct.Struct("=IHHIIBBBxI48x")  # nlmsghdr + inet_diag_req_v2 with an empty socket id
# inet_diag_msg after its nlmsghdr: family, state, ports, source, destination; then uid and inode.
_MESSAGE = struct.Struct("=xxxxxxxxxxxxxxxxBBxx2s2s16s16s")
_OWNER = struct.Struct("=II")
_OWNER_AT = 16 + 64  # uid's offset in a message (inode follows)
_ERROR = struct.Struct("=i")

# The kernel's TCP states (include/net/tcp_states.h) in ss's words.  UDP
# uses two of them: ESTABLISHED for a connected socket, CLOSE otherwise.
TCP_STATES = {
    1: "ESTAB", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2", 6: "TIME-WAIT",
    7: "UNCONN", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN", 11: "CLOSING", 12: "SYN-RECV",
}
_ALL_STATES = 0xFFFFFFFF
_PATIENCE = 10.0  # seconds without an answer before the dump counts as refused; a dump of 10,000 takes 0.02
_PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
_FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}

# One socket as the kernel reported it: protocol, family (4/6), state
# (ss's word), local address, local port, remote address, remote port
# (both None when there is no peer), uid, inode (0: no descriptor holds
# it, as for TIME-WAIT).
DiagSocket = tuple[str, int, str, str, int, "str | None", "int | None", int, int]


class SockDiagError(OSError):
    """The kernel refused a dump (no sock_diag support, a protocol module missing, or netlink denied)."""


def dump_request(protocol: str, family: int, states: int = _ALL_STATES, seq: int = 1) -> bytes:
    """The netlink message that asks for every ``protocol`` socket of ``family`` in the given states."""
    return _REQUEST.pack(_REQUEST.size, SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST | _NLM_F_DUMP, seq, 0,
                         _FAMILIES[family], _PROTOCOLS[protocol], 0, states)


def _address(raw: bytes, family: int, names: dict[bytes, str]) -> str:
    text = names.get(raw)
    if text is None:
        text = names[raw] = (socket.inet_ntop(socket.AF_INET, raw[:4]) if family == 4
                             else socket.inet_ntop(socket.AF_INET6, raw))
    return text


def parse_dump(chunks: Iterable[bytes], protocol: str) -> Iterator[DiagSocket]:
    """The sockets in the answers to one dump request; stops at ``NLMSG_DONE``.

    Raises :class:`SockDiagError` when the kernel answered with an error.
    Everything but the fields we use (and any attributes) is skipped by
    each message's own length, so newer kernels' additions do no harm.
    """
    names: dict[bytes, str] = {}
    head, body, owner = _HEADER.unpack_from, _MESSAGE.unpack_from, _OWNER.unpack_from
    udp = protocol == "udp"
    states = TCP_STATES
    for chunk in chunks:
        offset, end = 0, len(chunk)
        while offset + 16 <= end:
            length, kind = head(chunk, offset)[:2]
            if kind == _NLMSG_DONE or kind == _NLMSG_ERROR:
                # Both carry an error number (negative) or 0; a dump that failed midway ends in a DONE with one.
                code = -_ERROR.unpack_from(chunk, offset + 16)[0] if offset + 20 <= end else 0
                if code > 0:
                    raise SockDiagError(code, f"sock_diag {protocol}: {os.strerror(code)}")
                return
            if kind == SOCK_DIAG_BY_FAMILY:
                family_number, state, sport, dport, src, dst = body(chunk, offset)
                family = 4 if family_number == socket.AF_INET else 6
                uid, inode = owner(chunk, offset + _OWNER_AT)
                remote_port = int.from_bytes(dport, "big")
                if udp:
                    word = "ESTAB" if state == 1 else "UNCONN"
                else:
                    word = states.get(state, "UNKNOWN")
                if remote_port:
                    yield (protocol, family, word, _address(src, family, names), int.from_bytes(sport, "big"),
                           _address(dst, family, names), remote_port, uid, inode)
                else:
                    yield (protocol, family, word, _address(src, family, names), int.from_bytes(sport, "big"),
                           None, None, uid, inode)
            if length < 16:
                raise SockDiagError(0, "sock_diag: a malformed answer")
            offset += (length + 3) & ~3


def _chunks(channel: socket.socket) -> Iterator[bytes]:
    while True:
        data = channel.recv(65536)
        if not data:
            return
        yield data


def read_sockets(protocols: Iterable[str] = ("tcp", "udp"), families: Iterable[int] = (4, 6),
                 states: dict[str, int] | None = None) -> list[DiagSocket]:
    """Every socket of the given protocols and families in this network namespace.

    ``states`` narrows a protocol's dump to a bit mask of kernel states
    (``1 << 10`` is TCP's LISTEN): the kernel then skips the rest.
    """
    found: list[DiagSocket] = []
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as channel:
            channel.settimeout(_PATIENCE)
            seq = 0
            for protocol in protocols:
                for family in families:
                    seq += 1
                    mask = (states or {}).get(protocol, _ALL_STATES)
                    channel.send(dump_request(protocol, family, mask, seq))
                    found.extend(parse_dump(_chunks(channel), protocol))
    except SockDiagError:
        raise
    except OSError as error:  # no netlink here, refused, or no answer in time
        raise SockDiagError(error.errno or 0, f"sock_diag: {error.strerror or error}") from None
    return found
