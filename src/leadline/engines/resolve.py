"""Name lookups through the system resolver: forward for targets, reverse (PTR) for reports.

The system resolver (nsswitch: /etc/hosts, DNS, ...) answers as the user's
other tools do.  Its calls block, so reverse lookups for a host group run
on a thread pool, and a slow name server costs at most ``timeout`` per
batch rather than per address.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Iterable

__all__ = ["resolve_name", "reverse_lookup_many"]


def _reverse_lookup(address: str) -> str | None:
    try:
        name, _aliases, _addresses = socket.gethostbyaddr(address)
    except (OSError, UnicodeError):
        return None
    return name or None


def reverse_lookup_many(addresses: Iterable[str], *, workers: int = 16, timeout: float = 2.0) -> dict[str, str | None]:
    """PTR names for ``addresses``, looked up in parallel; None where there is no name.

    Lookups still running after ``timeout`` seconds are given up (reported
    as None).  The workers are daemon threads: a resolver stuck on an
    unreachable name server must not hold the process open at exit, as
    the joined workers of a ThreadPoolExecutor would.
    """
    unique = list(dict.fromkeys(addresses))
    names: dict[str, str | None] = dict.fromkeys(unique)
    if not unique:
        return names
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for address in unique:
        todo.put(address)
    answers: queue.SimpleQueue[tuple[str, str | None]] = queue.SimpleQueue()

    def work() -> None:
        while True:
            try:
                address = todo.get_nowait()
            except queue.Empty:
                return
            answers.put((address, _reverse_lookup(address)))

    for _ in range(max(1, min(workers, len(unique)))):
        threading.Thread(target=work, name="leadline-rdns", daemon=True).start()
    deadline = time.monotonic() + timeout
    for _ in range(len(unique)):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            address, name = answers.get(timeout=remaining)
        except queue.Empty:
            break
        names[address] = name
    while True:  # stop idle workers from starting lookups nobody waits for
        try:
            todo.get_nowait()
        except queue.Empty:
            break
    return names


_ADDRESS_FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}


def resolve_name(name: str, family: int) -> list[str]:
    """Addresses of ``name`` for IP version ``family`` (4 or 6, as the target
    parser counts; AF_INET and AF_INET6 are taken too), resolver order kept; [] if none."""
    try:
        infos = socket.getaddrinfo(name, None, _ADDRESS_FAMILIES.get(family, family), socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses
