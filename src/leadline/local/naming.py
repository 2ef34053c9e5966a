"""Service names for local sockets, from leadline's services table.

A listener is named after its own port.  A connection is named after the
server's end: the local port when this namespace listens on it (we are the
server), else the remote port (we are the client: ``ssh`` for a
connection to 22 from port 54312).
"""

from __future__ import annotations

from collections.abc import Iterable

from leadline.local.model import LocalSocket, ServiceNames

__all__ = ["with_services"]


def with_services(sockets: Iterable[LocalSocket], names: ServiceNames) -> list[LocalSocket]:
    """The sockets with ``service`` filled in where the table has a name."""
    items = list(sockets)
    served = {(s.protocol, s.local_port) for s in items if s.listening}
    tables = {"tcp": names.names("tcp"), "udp": names.names("udp")}
    named: list[LocalSocket] = []
    append = named.append
    make = LocalSocket._make  # _replace costs twice as much, and a busy host has many sockets
    for item in items:
        table = tables[item.protocol]
        if item.remote_port is None or (item.protocol, item.local_port) in served:
            service = table.get(item.local_port)
        else:
            service = table.get(item.remote_port)
        append(make((*item[:9], service, item.exposure)) if service else item)
    return named
