"""The script contract: a rule, categories and an action over a small I/O context.

A script is a Python object with a ``name``, ``categories``, a ``rule``
(which ports, services or hosts it applies to) and an ``action`` that
talks to the target through a ``ScriptIO`` and returns a ``ScriptResult``
(or ``None`` when it has nothing to say, as an NSE script returning nil).
Scripts never open sockets themselves: the I/O context is built by the
engine layer (``engines/scriptio.py``) or, in tests, from canned bytes,
so a script's logic is tested without a network.

Invariants: every read is capped (``MAX_READ`` unless the script asks for
less) and bounded by the script's deadline; what a service sends is data,
and ``clean`` escapes control characters before it reaches any output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from leadline.model import PortResult, ScriptElement, ScriptResult

__all__ = [
    "MAX_READ", "Action", "Conn", "HostInfo", "Rule", "Script", "ScriptContext", "ScriptError", "ScriptIO", "ScriptTimeout",
    "clean", "elem", "table",
]

MAX_READ = 65536  # bytes a script reads from one connection unless it asks for fewer


class ScriptError(Exception):
    """The service spoke, but not the protocol the script expected (a "protocol error")."""


class ScriptTimeout(ScriptError):
    """The script's deadline passed while it waited for the service."""


class Conn(Protocol):
    """One conversation with a service; every call is bounded by the script's deadline."""

    def send(self, data: bytes) -> None: ...

    def recv(self, cap: int = 4096, wait: float | None = None) -> bytes:
        """Up to ``cap`` bytes as they arrive; ``b""`` at end of stream.

        ``wait`` bounds this one call (seconds, within the deadline): when it
        passes with nothing read, ``ScriptTimeout`` is raised.
        """

    def recv_until(self, marker: bytes, cap: int = MAX_READ) -> bytes:
        """Bytes up to and including ``marker``, or what came before end of stream or ``cap``."""

    def recv_all(self, cap: int = MAX_READ) -> bytes:
        """Everything until the service closes, the deadline passes (with data read) or ``cap``."""

    def peer_certificate(self) -> bytes | None:
        """The server's certificate (DER) on a TLS connection."""

    def close(self) -> None: ...


class ScriptIO(Protocol):
    """What a script may ask of the network: connections to its own target only."""

    def connect(self, port: int, *, tls: bool = False) -> Conn: ...

    def udp_exchange(self, port: int, payload: bytes, cap: int = 4096) -> bytes:
        """Send one datagram and return the first answer (``ScriptTimeout`` when none comes)."""


@dataclass(frozen=True)
class HostInfo:
    """The target as a script sees it."""

    address: str
    hostname: str | None = None
    targets: frozenset[str] = frozenset()  # every address of this scan: the only hosts a script may follow


@dataclass
class ScriptContext:
    """Everything one run of one script gets: the target, its port, the arguments and the I/O."""

    host: HostInfo
    port: PortResult | None
    io: ScriptIO
    args: Mapping[str, str] = field(default_factory=dict)
    verbosity: int = 0
    debugging: int = 0

    def arg(self, name: str, default: str | None = None, *, script: str = "") -> str | None:
        """``--script-args`` value: ``script.name`` first, then ``name``, as NSE looks them up."""
        if script and f"{script}.{name}" in self.args:
            return self.args[f"{script}.{name}"]
        return self.args.get(name, default)

    @property
    def service(self) -> str | None:
        """The port's service name: version detection's answer first, else the services table's."""
        if self.port is None:
            return None
        if self.port.detail is not None and self.port.detail.name:
            return self.port.detail.name
        return self.port.service

    @property
    def tunnel(self) -> bool:
        return self.port is not None and self.port.detail is not None and self.port.detail.tunnel == "ssl"


Rule = Callable[[HostInfo, PortResult | None], bool]
Action = Callable[[ScriptContext], ScriptResult | None]


@dataclass(frozen=True)
class Script:
    """One check: nmap's portrule/hostrule as ``rule`` and ``host_script``, its categories and action."""

    name: str
    categories: frozenset[str]
    rule: Rule
    action: Action
    host_script: bool = False  # True: runs once per host (hostrule), with ``port`` None
    description: str = ""


def clean(text: str | bytes, limit: int = 4096) -> str:
    """A service's words made safe to print: control characters and escapes shown as ``\\xNN``.

    Bytes are decoded as UTF-8 with invalid sequences escaped; tab is kept,
    every other C0/C1 control, DEL and the escape character are escaped, so
    nothing a service sends can move a terminal's cursor or end an XML text.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="backslashreplace")
    out = []
    for ch in text[:limit]:
        o = ord(ch)
        if ch == "\t" or (o >= 0x20 and o != 0x7F and not 0x80 <= o < 0xA0 and not 0xD800 <= o < 0xE000
                          and o not in (0xFFFE, 0xFFFF)):
            out.append(ch)
        else:
            out.append(f"\\x{o:02X}" if o < 0x100 else f"\\u{o:04X}")
    if len(text) > limit:
        out.append("...")
    return "".join(out)


def elem(key: str | None, value: object) -> ScriptElement:
    """An ``<elem>``: bytes are decoded as a service's words, anything else by ``str``; escaped either way."""
    return ScriptElement(key, clean(value if isinstance(value, bytes) else str(value)))


def table(key: str | None, children: list[ScriptElement] | tuple[ScriptElement, ...]) -> ScriptElement:
    return ScriptElement(key, None, tuple(children))
