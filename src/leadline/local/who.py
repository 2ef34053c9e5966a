"""``--who PORT[/udp]``: who holds a port, since when, and why a second program cannot bind it.

The kernel keeps no creation time per socket, so "since when" is the
holding process's start time.  The sharing options of each holder's
socket (``SO_REUSEADDR``, ``SO_REUSEPORT``, ``IPV6_V6ONLY``) are read from
a duplicate of its descriptor, taken with ``pidfd_getfd`` (Linux 5.6,
root); then a trial bind of the port on the wildcard addresses shows
what a second program would get now.  The trial binds and closes at once
and sends nothing.

Linux's rules that the explanation applies: a TCP port held by a
listening socket can be shared only when every socket sets
``SO_REUSEPORT`` and they belong to one user (``SO_REUSEADDR`` only lets
a new socket bind beside ones that are not listening); a UDP port is
shared when all set ``SO_REUSEADDR`` or all set ``SO_REUSEPORT`` (one
user).  Addresses clash when they are equal or either side is a wildcard
(``0.0.0.0``; ``::`` also covers IPv4 unless ``IPV6_V6ONLY``).
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import time
from dataclasses import dataclass

from leadline.errors import UsageError
from leadline.local.model import LocalSocket, Owner, Snapshot
from leadline.local.render import endpoint

__all__ = ["Holder", "SharingOptions", "WhoAnswer", "format_who", "parse_who", "socket_options", "trial_bind", "who"]

_PIDFD_GETFD = 438  # the same number on every architecture Linux has added it to


@dataclass(frozen=True)
class SharingOptions:
    """The socket options that decide whether a second bind may share the port."""

    reuseaddr: bool
    reuseport: bool
    v6only: bool | None  # None for IPv4 sockets


@dataclass(frozen=True)
class Holder:
    """One listening socket on the port, with its owner and options."""

    socket: LocalSocket
    owner: Owner | None
    options: SharingOptions | None  # None: not readable (not root, or the process is gone)


@dataclass(frozen=True)
class WhoAnswer:
    """Everything ``--who`` found for one port."""

    port: int
    protocol: str
    holders: tuple[Holder, ...]
    trials: tuple[tuple[str, str], ...]  # (address, "free" or an errno name) for a plain bind now


def parse_who(text: str) -> tuple[int, str]:
    """``80`` -> (80, "tcp"); ``53/udp`` -> (53, "udp")."""
    port_text, _, protocol = text.strip().partition("/")
    protocol = (protocol or "tcp").lower()
    if protocol not in ("tcp", "udp") or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"--who: '{text}' is not PORT or PORT/udp (e.g. 80, 53/udp)")
    return int(port_text), protocol


def socket_options(pid: int, fd: int) -> SharingOptions | None:
    """The sharing options of another process's socket, read from a duplicate of its descriptor."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        copy = int(libc.syscall(_PIDFD_GETFD, pidfd, fd, 0))
        if copy < 0:
            return None
        with socket.socket(fileno=copy) as dup:
            v6only = None
            if dup.family == socket.AF_INET6:
                v6only = bool(dup.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
            return SharingOptions(bool(dup.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)),
                                  bool(dup.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)), v6only)
    except OSError:
        return None
    finally:
        os.close(pidfd)


def trial_bind(protocol: str, address: str, port: int) -> str:
    """What a plain ``bind()`` to the address and port gets now: "free" or the errno's name."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    try:
        with socket.socket(family, kind) as probe:
            probe.bind((address, port))
    except OSError as e:
        return errno.errorcode.get(e.errno or 0, str(e))
    return "free"


def who(snapshot: Snapshot, port: int, protocol: str) -> WhoAnswer:
    """The listening sockets holding ``port``/``protocol``, with their options and a trial bind."""
    holders = []
    for item in snapshot.sockets:
        if item.protocol == protocol and item.local_port == port and item.listening:
            options = socket_options(item.pid, item.fd) if item.pid is not None and item.fd is not None else None
            holders.append(Holder(item, snapshot.owners.get(item.pid) if item.pid else None, options))
    trials = tuple((address, trial_bind(protocol, address, port)) for address in ("0.0.0.0", "::"))
    return WhoAnswer(port, protocol, tuple(holders), trials)


def _since(owner: Owner | None, now: float) -> str:
    if owner is None or owner.started is None:
        return ""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(owner.started))
    return f", running since {stamp} ({_age(now - owner.started)})"


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _why(holder: Holder, protocol: str) -> str:
    item, options = holder.socket, holder.options
    where = "a wildcard bind: it covers every address" if item.wildcard else f"bound to {item.local_address} only"
    if item.local_address == "::" and options is not None and options.v6only is False:
        where += " (IPv4 as well: IPV6_V6ONLY is off)"
    if options is None:
        return f"{where}; its SO_REUSEADDR/SO_REUSEPORT cannot be read (needs root)"
    flags = f"SO_REUSEADDR {'on' if options.reuseaddr else 'off'}, SO_REUSEPORT {'on' if options.reuseport else 'off'}"
    if options.reuseport:
        share = "another program of the same user that also sets SO_REUSEPORT can bind it beside this one"
    elif protocol == "tcp":
        share = "a listening TCP socket without SO_REUSEPORT shares its port with no one (SO_REUSEADDR does not help)"
    elif options.reuseaddr:
        share = "another program that also sets SO_REUSEADDR can bind it too"
    else:
        share = "no other program can bind it on an overlapping address"
    return f"{where}; {flags}: {share}"


def format_who(answer: WhoAnswer, now: float | None = None) -> str:
    """The answer in words, one holder per paragraph, then the trial binds."""
    now = time.time() if now is None else now
    label = f"{answer.port}/{answer.protocol}"
    if not answer.holders:
        lines = [f"{label}: nobody listens here (in this network namespace)"]
    else:
        lines = [f"{label} is held by:"]
        for holder in answer.holders:
            item, owner = holder.socket, holder.owner
            name = "an owner we cannot see (not root?)" if item.pid is None else (
                f"{owner.name} (pid {item.pid}, user {owner.user or '?'}{_since(owner, now)})" if owner else f"pid {item.pid}")
            lines.append(f"  {name}: {endpoint(item.local_address, item.local_port, item.family)} {item.state}")
            lines.append(f"    {_why(holder, answer.protocol)}")
            if owner and owner.cmdline:
                lines.append(f"    command: {' '.join(owner.cmdline)}")
    for address, outcome in answer.trials:
        shown = endpoint(address, answer.port, 6 if ":" in address else 4)
        verdict = "succeeds (the port is free there)" if outcome == "free" else f"fails now with {outcome}"
        lines.append(f"A second program binding {shown}/{answer.protocol} {verdict}")
    return "\n".join(lines) + "\n"
