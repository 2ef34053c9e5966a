"""Name lookups through the system resolver: forward for targets, reverse (PTR) for reports.

The system resolver (nsswitch: /etc/hosts, DNS, ...) answers as the user's
other tools do.  Its calls block, so reverse lookups for a host group run
on a thread pool, and a slow name server costs at most ``timeout`` per
batch rather than per address.
"""

from __future__ import annotations

import concurrent.futures
import socket
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
    as None); their threads finish in the background without blocking us.
    """
    unique = list(dict.fromkeys(addresses))
    names: dict[str, str | None] = dict.fromkeys(unique)
    if not unique:
        return names
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(workers, len(unique))))
    try:
        futures = {pool.submit(_reverse_lookup, address): address for address in unique}
        deadline = time.monotonic() + timeout
        try:
            for future in concurrent.futures.as_completed(futures, timeout=max(0.0, deadline - time.monotonic())):
                names[futures[future]] = future.result()
        except concurrent.futures.TimeoutError:
            pass
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return names


def resolve_name(name: str, family: int) -> list[str]:
    """Addresses of ``name`` in ``family`` (AF_INET or AF_INET6), resolver order kept; [] if none."""
    try:
        infos = socket.getaddrinfo(name, None, family, socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses
