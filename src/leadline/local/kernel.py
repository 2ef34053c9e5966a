"""Reading this namespace's sockets and their owners from the kernel, through psutil.

psutil's ``net_connections`` reads the kernel's socket tables
(``/proc/net/tcp``, ``tcp6``, ``udp``, ``udp6`` of the calling process's
network namespace) and maps each socket to the processes holding it by
walking ``/proc/<pid>/fd``, as ``ss -p`` does; ``psutil.Process`` gives
name, user, command line and start time.  It is maintained, typed, and
fast enough (docs/local.md has the figures); pyroute2's sock_diag was
measured slower to import and to decode, and parsing ``ss`` output would
tie us to one tool's layout.

Without root the kernel still lists every socket, but other users'
processes cannot be read: those sockets come without an owner, as in
``ss``, and :attr:`Snapshot.note` says so in one line.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable

import psutil

from leadline.local.model import LocalSocket, Owner, Snapshot

__all__ = ["NOT_ROOT_NOTE", "owners_of", "read_snapshot"]

# psutil's status words -> ss's
_STATES = {
    psutil.CONN_ESTABLISHED: "ESTAB",
    psutil.CONN_SYN_SENT: "SYN-SENT",
    psutil.CONN_SYN_RECV: "SYN-RECV",
    psutil.CONN_FIN_WAIT1: "FIN-WAIT-1",
    psutil.CONN_FIN_WAIT2: "FIN-WAIT-2",
    psutil.CONN_TIME_WAIT: "TIME-WAIT",
    psutil.CONN_CLOSE: "UNCONN",
    psutil.CONN_CLOSE_WAIT: "CLOSE-WAIT",
    psutil.CONN_LAST_ACK: "LAST-ACK",
    psutil.CONN_LISTEN: "LISTEN",
    psutil.CONN_CLOSING: "CLOSING",
}
_KINDS = {frozenset({4, 6}): "inet", frozenset({4}): "inet4", frozenset({6}): "inet6"}
NOT_ROOT_NOTE = "not root: sockets of other users' processes are listed without their owner (as ss shows them)"


def _sockets(families: frozenset[int]) -> list[LocalSocket]:
    """Every TCP and UDP socket of the wanted families, one entry per holding process."""
    rows = psutil.net_connections(kind=_KINDS[families])
    found: list[LocalSocket] = []
    append = found.append
    tcp, v4 = socket.SOCK_STREAM, socket.AF_INET
    states = _STATES
    for fd, family, kind_, local, remote, status, pid in rows:
        version = 4 if family == v4 else 6
        if local:
            address, port = local
        else:  # psutil gives () for an address with port 0
            address, port = ("0.0.0.0" if version == 4 else "::"), 0
        if kind_ == tcp:
            protocol, state = "tcp", states.get(status, status)
        else:
            protocol, state = "udp", "ESTAB" if remote else "UNCONN"
        peer, peer_port = remote if remote else (None, None)
        append(LocalSocket(protocol, version, state, address, port, peer, peer_port, pid,
                           fd if fd is not None and fd >= 0 else None))
    return found


def owners_of(pids: Iterable[int]) -> dict[int, Owner]:
    """Name, user, command line and start time of each process still there to be read."""
    owners: dict[int, Owner] = {}
    for pid in pids:
        try:
            process = psutil.Process(pid)
            with process.oneshot():
                name = process.name()
                started = process.create_time()
                try:
                    user: str | None = process.username()
                except (KeyError, psutil.Error):
                    user = None
                try:
                    cmdline = tuple(process.cmdline())
                except psutil.Error:
                    cmdline = ()
        except psutil.Error:
            continue  # gone since the socket table was read, or not ours to read
        owners[pid] = Owner(pid=pid, name=name, user=user, cmdline=cmdline, started=started)
    return owners


def read_snapshot(families: frozenset[int] = frozenset({4, 6})) -> Snapshot:
    """This network namespace's TCP and UDP sockets now, with their owners."""
    taken = time.time()
    sockets = _sockets(families)
    owners = owners_of(sorted({s.pid for s in sockets if s.pid is not None}))
    privileged = os.geteuid() == 0
    return Snapshot(sockets=tuple(sockets), owners=owners, privileged=privileged, taken=taken,
                    note=None if privileged else NOT_ROOT_NOTE)
