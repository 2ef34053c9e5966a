"""The FTP bounce scan's I/O: several control connections to one FTP server, driven by ``core.ftpbounce``.

Each connection bounces to one port at a time; a connection abandoned on a
dropped port (the server stays busy connecting there) or hung up by the
server is replaced by a fresh one, and the port in flight is tried again
(twice at most, then ``filtered``).
"""

from __future__ import annotations

import selectors
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence

from leadline.core.ftpbounce import BounceControl, BounceRefused, PortVerdict
from leadline.errors import LeadlineError

__all__ = ["bounce_ports"]

_CONNECT_TIMEOUT = 5.0
_MAX_RETRIES = 2


class _Connection:
    def __init__(self, sock: socket.socket, control: BounceControl) -> None:
        self.sock = sock
        self.control = control
        self.opened = time.monotonic()


def bounce_ports(server: tuple[str, int], user: str, password: str, target: str, ports: Sequence[int], *,
                 parallel: int = 8, deadline: float = 2.0, stop: Callable[[], bool] = lambda: False) -> list[PortVerdict]:
    """Every port of ``target`` bounced through the FTP server; LeadlineError (one line) when it refuses."""
    todo = deque(ports)
    tries: dict[int, int] = {}
    found: dict[int, PortVerdict] = {}
    selector = selectors.DefaultSelector()
    connections: list[_Connection] = []
    accepted = False  # some PORT went through: a 5xx is then about one port, not the server

    def open_one() -> None:
        try:
            sock = socket.create_connection(server, timeout=_CONNECT_TIMEOUT)
        except OSError as error:
            raise LeadlineError(f"cannot reach the FTP bounce server {server[0]}:{server[1]}: "
                                f"{error.strerror or error}") from None
        sock.setblocking(False)
        connection = _Connection(sock, BounceControl(user, password, target, deadline, first=not accepted))
        selector.register(sock, selectors.EVENT_READ, connection)
        connections.append(connection)

    def retire(connection: _Connection) -> None:
        selector.unregister(connection.sock)
        connection.sock.close()
        connections.remove(connection)

    def requeue(port: int | None) -> None:
        if port is None or port in found:
            return
        tries[port] = tries.get(port, 0) + 1
        if tries[port] > _MAX_RETRIES:
            found[port] = PortVerdict(port, "filtered", "the server dropped the session each time")
        else:
            todo.appendleft(port)

    try:
        open_one()
        while (todo or any(c.control.port is not None for c in connections)) and not stop():
            accepted = accepted or any(not c.control.first for c in connections)
            wanted = min(parallel if accepted else 1, len(todo) + sum(c.control.port is not None for c in connections))
            while len(connections) < wanted:
                open_one()
            now = time.monotonic()
            for connection in list(connections):
                control = connection.control
                if control.ready and todo:
                    control.start(todo.popleft(), now)
                for verdict in control.expire(now):
                    found[verdict.port] = verdict
                data = control.outgoing()
                if data:
                    try:
                        connection.sock.sendall(data)
                    except OSError:
                        requeue(control.closed())
                if control.phase.value == "dead":
                    retire(connection)
            for key, _ in selector.select(timeout=0.05):
                connection = key.data
                try:
                    data = connection.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    requeue(connection.control.closed())
                    retire(connection)
                    continue
                for verdict in connection.control.receive(data, time.monotonic()):
                    found.setdefault(verdict.port, verdict)
    except BounceRefused as refused:
        raise LeadlineError(f"FTP bounce server {server[0]}:{server[1]}: {refused}") from None
    finally:
        for connection in list(connections):
            retire(connection)
        selector.close()
    return [found[port] for port in ports if port in found]
