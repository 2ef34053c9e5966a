"""The FTP bounce scan's control connection, as a state machine with no I/O and no clock.

An FTP server that accepts ``PORT`` naming a third host connects there for
us when we ask for a listing; its reply codes say whether the connection
worked.  One ``BounceControl`` is one control connection: bytes in
(``receive``), bytes out (``outgoing``), time as a parameter (``expire``).

Invariants:

* Replies are read as RFC 959 says: a multi-line reply (``150-``) ends
  at the line starting with its code and a space; only complete replies
  move the state.
* Each command waits for its reply before the next is sent, so a reply is
  always matched to the command it answers.  A reply that comes when none
  is awaited (late, or doubled) is ignored.
* ``PORT`` + ``LIST`` per port: a preliminary ``150``/``125`` followed by
  a final ``2xx`` means ``open``; a final ``425``/``426`` means ``closed``;
  no preliminary reply by the deadline means the server is still trying
  to connect to a port that drops its SYNs: ``filtered``, and the
  connection is abandoned (the server will not hear us until it gives up),
  so the engine opens a fresh one.  A ``150`` with no final reply by the
  deadline is ``open`` (the connection was made).
* The first ``PORT`` refused (``5xx``) ends the scan with one line naming the
  server's reply; a failed login likewise.
* Everything the server says is data: ``escape`` makes it printable before
  it reaches a message.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BounceControl",
    "BounceRefused",
    "Phase",
    "PortVerdict",
    "escape",
    "parse_server",
    "port_command",
]

_MAX_LINE = 4096


class BounceRefused(Exception):
    """The server cannot be used for bouncing; the message is one line."""


class Phase(enum.Enum):
    GREETING = "greeting"
    USER = "user"
    PASS = "pass"
    READY = "ready"  # logged in, waiting for a port
    PORT = "port"  # PORT sent
    LIST = "list"  # LIST sent, no preliminary reply yet
    TRANSFER = "transfer"  # preliminary 1xx seen, waiting for the final reply
    DEAD = "dead"  # abandoned or closed: the engine reconnects


@dataclass(frozen=True, slots=True)
class PortVerdict:
    port: int
    state: str  # "open" | "closed" | "filtered"
    reply: str  # the server's words that decided it (escaped)


def escape(text: bytes | str, limit: int = 200) -> str:
    """Printable ASCII only: everything else as \\xHH, cut at ``limit`` characters."""
    raw = text.encode("latin-1", "replace") if isinstance(text, str) else text
    out = "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in raw[:limit])
    return out + ("..." if len(raw) > limit else "")


def parse_server(spec: str) -> tuple[str, str, str, int]:
    """``[USER[:PASS]@]SERVER[:PORT]`` → (user, password, server, port); anonymous by default, as nmap."""
    user, password = "anonymous", "-wwwuser@"
    credentials, at, rest = spec.rpartition("@")
    if at:
        user, _, given = credentials.partition(":")
        password = given if _ else password
        if not user:
            raise BounceRefused(f"Your -b argument {escape(spec)!r} names no user before '@'")
    host, colon, port_text = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
    host = host if colon else rest
    port = 21
    if colon:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise BounceRefused(f"Your -b argument {escape(spec)!r} has a bad port {escape(port_text)!r}")
        port = int(port_text)
    if not host:
        raise BounceRefused(f"Your -b argument {escape(spec)!r} names no FTP server")
    return user, password, host, port


def port_command(address: str, port: int) -> bytes:
    """``PORT h1,h2,h3,h4,p1,p2`` for an IPv4 address."""
    return f"PORT {address.replace('.', ',')},{port >> 8},{port & 0xFF}\r\n".encode()


class BounceControl:
    """One control connection to the FTP server, bouncing to ``target`` (see the module's invariants)."""

    def __init__(self, user: str, password: str, target: str, deadline: float, first: bool = True) -> None:
        self.user = user
        self.password = password
        self.target = target
        self.deadline = deadline  # seconds a LIST may take to start
        self.first = first  # no PORT accepted yet on any connection: a refusal ends the scan
        self.phase = Phase.GREETING
        self.port: int | None = None
        self._buffer = b""
        self._reply: list[bytes] = []
        self._out = b""
        self._since = 0.0
        self._preliminary = ""

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY

    def outgoing(self) -> bytes:
        data, self._out = self._out, b""
        return data

    def start(self, port: int, now: float) -> None:
        """Bounce to ``port`` next (only when ``ready``)."""
        assert self.phase is Phase.READY
        self.port, self.phase, self._since = port, Phase.PORT, now
        self._out += port_command(self.target, port)

    def closed(self) -> int | None:
        """The server hung up; the port in flight (if any) must be tried again on a new connection."""
        port = self.port if self.phase in (Phase.PORT, Phase.LIST, Phase.TRANSFER) else None
        self.phase, self.port = Phase.DEAD, None
        return port

    def expire(self, now: float) -> list[PortVerdict]:
        """Decide a port whose LIST has waited past the deadline."""
        if self.phase not in (Phase.LIST, Phase.TRANSFER) or now - self._since < self.deadline or self.port is None:
            return []
        state = "open" if self.phase is Phase.TRANSFER else "filtered"
        verdict = PortVerdict(self.port, state, self._preliminary or "no reply before the deadline")
        self.phase, self.port = Phase.DEAD, None
        return [verdict]

    def receive(self, data: bytes, now: float) -> list[PortVerdict]:
        """Bytes from the server; the ports its complete replies decide."""
        self._buffer += data
        found: list[PortVerdict] = []
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            reply = self._line(line.rstrip(b"\r"))
            if reply is not None:
                found += self._handle(reply, now)
        if len(self._buffer) > _MAX_LINE:
            self._buffer = b""
        return found

    def _line(self, line: bytes) -> tuple[int, str] | None:
        """Collect lines until the one that ends a reply; the reply's code and its last line."""
        self._reply.append(line)
        first = self._reply[0]
        if len(first) < 3 or not first[:3].isdigit():
            self._reply = []
            return None
        if line[:3] == first[:3] and line[3:4] in (b" ", b""):
            self._reply = []
            return int(first[:3]), escape(line)
        return None

    def _handle(self, reply: tuple[int, str], now: float) -> list[PortVerdict]:
        code, text = reply
        phase = self.phase
        if phase is Phase.GREETING:
            self._login_step(code, text, 220, b"USER " + self.user.encode() + b"\r\n", Phase.USER)
        elif phase is Phase.USER:
            if code == 230:
                self.phase = Phase.READY
            else:
                self._login_step(code, text, 331, b"PASS " + self.password.encode() + b"\r\n", Phase.PASS)
        elif phase is Phase.PASS:
            self._login_step(code, text, 230, b"", Phase.READY)
        elif phase is Phase.PORT:
            return self._port_reply(code, text, now)
        elif phase in (Phase.LIST, Phase.TRANSFER):
            return self._list_reply(code, text)
        return []  # READY or DEAD: a late or doubled reply answers nothing we wait for

    def _login_step(self, code: int, text: str, wanted: int, command: bytes, then: Phase) -> None:
        if code // 100 == 1:
            return
        if code != wanted:
            raise BounceRefused(f"the FTP server refused our login: {text}")
        self._out += command
        self.phase = then

    def _port_reply(self, code: int, text: str, now: float) -> list[PortVerdict]:
        assert self.port is not None
        if code == 200:
            self.first = False
            self.phase, self._since = Phase.LIST, now
            self._out += b"LIST\r\n"
            return []
        if code // 100 == 5 and self.first:
            raise BounceRefused(f"the FTP server does not allow a PORT to another host (it said: {text})")
        verdict = PortVerdict(self.port, "closed", text)
        self.phase, self.port = Phase.READY, None
        return [verdict]

    def _list_reply(self, code: int, text: str) -> list[PortVerdict]:
        assert self.port is not None
        if code // 100 == 1:
            self.phase, self._preliminary = Phase.TRANSFER, text
            return []
        opened = self.phase is Phase.TRANSFER
        state = "open" if opened and code // 100 == 2 else "closed"
        if not opened and code // 100 == 2:
            state = "open"
        verdict = PortVerdict(self.port, state, text)
        self.phase, self.port, self._preliminary = Phase.READY, None, ""
        return [verdict]


def decided_ports(verdicts: Sequence[PortVerdict]) -> dict[int, str]:
    """port → state, for tests and summaries."""
    return {v.port: v.state for v in verdicts}
