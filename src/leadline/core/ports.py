"""Port specifications: nmap's ``-p`` syntax, the default port list, compact rendering.

Syntax accepted by :func:`parse_port_spec` (comma-separated tokens):

* ``22``, ``1-1024``; a missing start means 1 (``-100``), a missing end
  65535 (``60000-``), so ``-`` is 1-65535.  Port 0 is scanned only when
  written as a number (``0``, ``0-10``, ``0-``).
* ``T:``, ``U:``, ``S:`` in front of a token make it and every following
  token apply to TCP, UDP or SCTP only; before any prefix a token applies
  to every protocol being scanned.  Ports for a protocol that is not
  being scanned are dropped (SCTP is never scanned).
* Service names from the services table, with ``*`` and ``?`` wildcards
  (``http*``); a name that matches nothing is an error.
* ``[...]`` around tokens keeps only ports that the services table lists.

Pure: the services table is a parameter (anything with ``name``,
``top``, ``frequency`` and ``ports_named`` as in
:class:`leadline.services.ServiceTable`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from leadline.errors import PortSpecError

__all__ = ["DEFAULT_TOP_PORTS", "FAST_TOP_PORTS", "PortList", "ServiceLookup", "compact", "parse_port_spec", "select_ports"]

DEFAULT_TOP_PORTS = 1000  # nmap scans its 1000 most common ports per protocol by default
FAST_TOP_PORTS = 100  # -F
MAX_PORT = 65535
_ALL_PROTOCOLS = frozenset({"tcp", "udp", "sctp"})
_PREFIXES = {"T": "tcp", "U": "udp", "S": "sctp"}
_RANGE = re.compile(r"(\d*)-(\d*)|(\d+)", re.ASCII)
_PREFIX = re.compile(r"([A-Za-z]):(.*)", re.DOTALL)
_NAME = re.compile(r"[A-Za-z0-9_.+/*?\-]+")


class ServiceLookup(Protocol):
    """What port parsing needs from a services table."""

    def name(self, port: int, proto: str) -> str | None: ...

    def frequency(self, port: int, proto: str) -> float: ...

    def top(self, n: int, proto: str) -> list[int]: ...

    def ports_named(self, pattern: str, proto: str) -> list[int]: ...


@dataclass(frozen=True)
class PortList:
    """Ports to scan per protocol, each sorted and without duplicates."""

    tcp: tuple[int, ...] = ()
    udp: tuple[int, ...] = ()

    def for_protocol(self, proto: str) -> tuple[int, ...]:
        if proto == "tcp":
            return self.tcp
        if proto == "udp":
            return self.udp
        return ()

    def __len__(self) -> int:
        return len(self.tcp) + len(self.udp)


@dataclass
class _Accumulator:
    """Ports gathered so far while reading one spec."""

    by_protocol: dict[str, set[int]] = field(default_factory=lambda: {"tcp": set(), "udp": set(), "sctp": set()})
    any_given: bool = False

    def add(self, protocols: Iterable[str], ports: Iterable[int]) -> None:
        chosen = list(ports)
        if chosen:
            self.any_given = True
        for proto in protocols:
            self.by_protocol[proto].update(chosen)


def _fail(token: str, why: str) -> PortSpecError:
    shown = token.encode("unicode_escape").decode("ascii")  # keep the message on one line
    return PortSpecError(f"invalid port specification '{shown}': {why}")


def _port_number(digits: str) -> int:
    """The digits as a port number; anything longer than a port can be maps to one past the limit."""
    return int(digits) if len(digits) <= 5 else MAX_PORT + 1


def _parse_range(token: str) -> range | None:
    """``token`` as a port range, or None when it is not numeric (a service name)."""
    match = _RANGE.fullmatch(token)
    if match is None:
        return None
    low_text, high_text, single = match.groups()
    if single is not None:
        low = high = _port_number(single)
    else:
        low = _port_number(low_text) if low_text else 1
        high = _port_number(high_text) if high_text else MAX_PORT
    if low > MAX_PORT or high > MAX_PORT:
        raise _fail(token, f"ports must be between 0 and {MAX_PORT}")
    if low > high:
        raise _fail(token, f"range runs backwards (did you mean {high}-{low}?)")
    return range(low, high + 1)


def parse_port_spec(text: str, services: ServiceLookup, protocols: set[str] | frozenset[str] = frozenset({"tcp"})) -> PortList:
    """Parse an nmap port spec for the protocols being scanned."""
    scanned = set(protocols) & _ALL_PROTOCOLS
    gathered = _Accumulator()
    current: set[str] | None = None  # None: no prefix seen yet, tokens apply to every scanned protocol
    in_brackets = False
    if not text.strip():
        raise _fail(text, "empty")
    for raw_token in text.split(","):
        token = raw_token.strip()
        prefix = _PREFIX.fullmatch(token)
        if prefix is not None:
            letter, token = prefix.group(1), prefix.group(2).strip()
            if letter not in _PREFIXES:
                raise _fail(raw_token.strip(), f"unknown protocol prefix '{letter}:' (use T:, U: or S:)")
            current = {_PREFIXES[letter]}
            if not token:
                continue
        opens = token.startswith("[")
        closes = token.endswith("]")
        if opens:
            if in_brackets:
                raise _fail(raw_token.strip(), "'[' inside brackets")
            token = token[1:]
            in_brackets = True
        if closes:
            if not in_brackets:
                raise _fail(raw_token.strip(), "']' without '['")
            token = token[:-1]
        if not token:
            raise _fail(raw_token.strip() or text, "empty port in list")
        targets = (current if current is not None else scanned) & scanned
        listed_only = in_brackets
        if closes:
            in_brackets = False
        numbers = _parse_range(token)
        if numbers is not None:
            gathered.any_given = gathered.any_given or len(numbers) > 0
            for proto in targets:
                ports = (port for port in numbers if services.name(port, proto) is not None) if listed_only else numbers
                gathered.by_protocol[proto].update(ports)
            continue
        if _NAME.fullmatch(token) is None or not any(char.isalpha() or char in "*?" for char in token):
            raise _fail(token, "not a port, range or service name")
        # A prefixed name must exist for its protocol even when that protocol is not scanned.
        name_protocols = current if current is not None else scanned
        matched = False
        for proto in name_protocols:
            named = services.ports_named(token, proto)
            if named:
                matched = True
                gathered.add([proto] if proto in scanned else [], named)
        if not matched:
            raise _fail(token, "no service of that name for the protocols being scanned")
    if in_brackets:
        raise _fail(text, "'[' without ']'")
    if not gathered.any_given:
        raise _fail(text, "no ports specified")
    return PortList(tcp=tuple(sorted(gathered.by_protocol["tcp"])), udp=tuple(sorted(gathered.by_protocol["udp"])))


def _top_within(services: ServiceLookup, n: int, proto: str, allowed: set[int] | None, removed: set[int]) -> list[int]:
    """The ``n`` most frequent ports of ``proto`` that are ``allowed`` (None: any) and not ``removed``."""
    if allowed is not None:
        candidates = sorted(allowed - removed, key=lambda port: (-services.frequency(port, proto), port))
        return candidates[:n]
    ranked = services.top(n + len(removed), proto)
    return [port for port in ranked if port not in removed][:n]


def select_ports(
    *,
    spec: str | None,
    top_ports: int | None,
    exclude: str | None,
    protocols: set[str] | frozenset[str],
    services: ServiceLookup,
) -> PortList:
    """The ports a scan covers, as nmap chooses them.

    No ``-p`` and no ``--top-ports`` means the top 1000 of each protocol.
    ``--top-ports`` with ``-p`` picks the most frequent ports inside the
    ``-p`` list.  ``--exclude-ports`` is removed first, so ``--top-ports
    N`` still yields N ports.
    """
    if top_ports is not None and top_ports < 0:
        raise _fail(str(top_ports), "--top-ports must not be negative")
    removed = parse_port_spec(exclude, services, protocols) if exclude is not None else PortList()
    chosen = parse_port_spec(spec, services, protocols) if spec is not None else None
    if chosen is None and top_ports is None:
        top_ports = DEFAULT_TOP_PORTS
    result: dict[str, tuple[int, ...]] = {}
    for proto in ("tcp", "udp"):
        if proto not in protocols:
            result[proto] = ()
            continue
        excluded = set(removed.for_protocol(proto))
        allowed = set(chosen.for_protocol(proto)) if chosen is not None else None
        if top_ports is None:
            assert allowed is not None
            ports: Iterable[int] = allowed - excluded
        else:
            ports = _top_within(services, top_ports, proto, allowed, excluded)
        result[proto] = tuple(sorted(ports))
    return PortList(tcp=result["tcp"], udp=result["udp"])


def compact(ports: Sequence[int]) -> str:
    """nmap's compact list: sorted, runs of consecutive ports as ``a-b`` ("1-1024,8080")."""
    ordered = sorted(set(ports))
    pieces: list[str] = []
    index = 0
    while index < len(ordered):
        start = ordered[index]
        while index + 1 < len(ordered) and ordered[index + 1] == ordered[index] + 1:
            index += 1
        end = ordered[index]
        pieces.append(str(start) if start == end else f"{start}-{end}")
        index += 1
    return ",".join(pieces)
