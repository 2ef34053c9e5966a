"""Reading this namespace's sockets and their owners from the kernel.

Sockets come from ``sock_diag`` netlink (:mod:`leadline.local.sockdiag`),
the interface ``ss`` reads; their holders from a walk of
``/proc/<pid>/fd`` and the holders' details from ``/proc/<pid>``
(:mod:`leadline.local.procfs`), as ``ss -p`` finds them.  This is our own
code rather than psutil's ``net_connections`` because that call alone
took longer than a whole ``ss -tulpn`` on 10,000 sockets
(docs/local.md has the figures).  psutil still serves where netlink
``sock_diag`` is missing (a kernel without ``inet_diag``, some
sandboxes): the listing then comes from its reading of ``/proc/net``,
one holder per socket.

Without root the kernel still lists every socket, but other users'
processes cannot be read: those sockets come without an owner, as in
``ss``, and :attr:`Snapshot.note` says so in one line.
"""

from __future__ import annotations

import os
import time

from leadline.local.model import LocalSocket, Snapshot
from leadline.local.procfs import read_owners, socket_holders
from leadline.local.sockdiag import DiagSocket, SockDiagError, read_sockets

__all__ = ["LISTENING_MASKS", "NOT_ROOT_NOTE", "psutil_sockets", "read_snapshot", "with_holders"]

NOT_ROOT_NOTE = "not root: sockets of other users' processes are listed without their owner (as ss shows them)"
# Kernel state masks that mean "listening" as ss -l has it: TCP LISTEN, UDP unconnected (CLOSE).
LISTENING_MASKS = {"tcp": 1 << 10, "udp": 1 << 7}


def with_holders(rows: list[DiagSocket]) -> list[LocalSocket]:
    """One :class:`LocalSocket` per socket and holding descriptor (pid None: no holder we can see)."""
    holders = socket_holders({row[8] for row in rows if row[8]})
    make = LocalSocket._make  # a NamedTuple's keyword defaults cost more than this, 10,000 times
    found: list[LocalSocket] = []
    append = found.append
    for protocol, family, state, address, port, peer, peer_port, _, inode in rows:
        held = holders.get(inode) if inode else None
        if held is None:
            append(make((protocol, family, state, address, port, peer, peer_port, None, None, None, None)))
            continue
        for pid, fd in held:
            append(make((protocol, family, state, address, port, peer, peer_port, pid, fd, None, None)))
    return found


def psutil_sockets(families: frozenset[int], protocols: frozenset[str]) -> list[LocalSocket]:
    """The same listing through psutil (``/proc/net/tcp`` and friends), one holder per socket."""
    import socket

    import psutil

    states = {
        psutil.CONN_ESTABLISHED: "ESTAB", psutil.CONN_SYN_SENT: "SYN-SENT", psutil.CONN_SYN_RECV: "SYN-RECV",
        psutil.CONN_FIN_WAIT1: "FIN-WAIT-1", psutil.CONN_FIN_WAIT2: "FIN-WAIT-2", psutil.CONN_TIME_WAIT: "TIME-WAIT",
        psutil.CONN_CLOSE: "UNCONN", psutil.CONN_CLOSE_WAIT: "CLOSE-WAIT", psutil.CONN_LAST_ACK: "LAST-ACK",
        psutil.CONN_LISTEN: "LISTEN", psutil.CONN_CLOSING: "CLOSING",
    }
    kind = {frozenset({4, 6}): "inet", frozenset({4}): "inet4", frozenset({6}): "inet6"}[families]
    found: list[LocalSocket] = []
    for fd, family, type_, local, remote, status, pid in psutil.net_connections(kind=kind):
        protocol = "tcp" if type_ == socket.SOCK_STREAM else "udp"
        if protocol not in protocols:
            continue
        version = 4 if family == socket.AF_INET else 6
        address, port = local if local else ("0.0.0.0" if version == 4 else "::", 0)  # () for port 0
        state = states.get(status, status) if protocol == "tcp" else "ESTAB" if remote else "UNCONN"
        peer, peer_port = remote if remote else (None, None)
        found.append(LocalSocket(protocol, version, state, address, port, peer, peer_port, pid,
                                 fd if fd is not None and fd >= 0 else None))
    return found


def read_snapshot(families: frozenset[int] = frozenset({4, 6}), protocols: frozenset[str] = frozenset({"tcp", "udp"}),
                  *, listening_only: bool = False) -> Snapshot:
    """This network namespace's TCP and UDP sockets now, with their owners.

    ``listening_only`` lets the kernel skip every other socket (``ss -l``
    does the same); the caller still filters.
    """
    taken = time.time()
    wanted = [p for p in ("tcp", "udp") if p in protocols]
    try:
        rows = read_sockets(wanted, sorted(families), LISTENING_MASKS if listening_only else None)
        sockets = with_holders(rows)
    except SockDiagError:
        sockets = psutil_sockets(families, protocols)
    owners = read_owners(sorted({s.pid for s in sockets if s.pid is not None}))
    privileged = os.geteuid() == 0
    return Snapshot(sockets=tuple(sockets), owners=owners, privileged=privileged, taken=taken,
                    note=None if privileged else NOT_ROOT_NOTE)
