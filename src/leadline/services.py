"""The services table: port names and how often each port is found open.

Names label ports in every output; frequencies choose the default port
list ("top ports").  nmap's own ``nmap-services`` is used when nmap is
installed, so leadline's default ports match nmap's exactly; otherwise
the table shipped with leadline (built by ``scripts/build_services.py``
from the system's services list and a ranking of commonly exposed ports)
stands in.  Both files share one format, one entry a line::

    name  port/protocol  frequency  [# comment]

Parsing happens once per file per process: every later ``load`` returns
the same table.
"""

from __future__ import annotations

import os
import re
import threading
from typing import NamedTuple

__all__ = ["NMAP_SERVICES_PATH", "ServiceTable"]

NMAP_SERVICES_PATH = "/usr/share/nmap/nmap-services"
_SHIPPED_NAME = "leadline-services"

_cache: dict[str, "ServiceTable"] = {}
_cache_lock = threading.Lock()


# One entry a line: name, port/protocol, optional frequency; the line's rest is ignored.
# Compiled per protocol: a scan reads the entries of the protocols it scans only
# (nmap's file holds 19,000 UDP lines beside 8,000 TCP ones).
_LINE = r"^[ \t]*([^#\s][^\s#]*)[ \t]+(\d+)/(?i:{protocol})(?![^\s#])(?:[ \t]+([^\s#]+))?"


def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    """nmap's service-name wildcards: ``*`` any run of characters, ``?`` exactly one."""
    translated = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile(translated, re.DOTALL)


class _Protocol(NamedTuple):
    """One protocol's entries: port -> name, port -> frequency (both in the file's order)."""

    names: dict[int, str]
    frequencies: dict[int, float]


class ServiceTable:
    """Port → (name, frequency) per protocol, with nmap's look-ups.

    The text is kept and each protocol's lines are read the first time that
    protocol is asked about: the table is loaded on every run, and a TCP scan
    has no use for the UDP entries.
    """

    def __init__(self, text: str, source: str = "") -> None:
        self.source = source
        self._text = text
        self._protocols: dict[str, _Protocol] = {}
        self._ranked: dict[str, list[int]] = {}

    @classmethod
    def parse(cls, text: str, source: str = "") -> "ServiceTable":
        """The table of the services format in ``text``; malformed lines are skipped, as nmap skips them."""
        return cls(text, source)

    def _protocol(self, proto: str) -> _Protocol:
        table = self._protocols.get(proto)
        if table is not None:
            return table
        names: dict[int, str] = {}
        frequencies: dict[int, float] = {}
        if proto and not any(c.isspace() or c in "#/" for c in proto):
            pattern = re.compile(_LINE.format(protocol=re.escape(proto)), re.MULTILINE)
            for name, port_text, frequency_text in pattern.findall(self._text):
                port = int(port_text)
                if port > 65535 or port in names:  # the first entry for a port names it
                    continue
                names[port] = name
                try:
                    frequencies[port] = float(frequency_text) if frequency_text else 0.0
                except ValueError:
                    frequencies[port] = 0.0
        table = self._protocols[proto] = _Protocol(names, frequencies)
        return table

    @classmethod
    def load(cls, path: str | None = None) -> "ServiceTable":
        """The table at ``path``; by default nmap's when installed, else the shipped one."""
        if path is None:
            path = NMAP_SERVICES_PATH if os.path.exists(NMAP_SERVICES_PATH) else ""
        with _cache_lock:
            cached = _cache.get(path)
            if cached is not None:
                return cached
            if path:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    text = handle.read()
                source = path
            else:
                beside = os.path.join(os.path.dirname(__file__), "data", _SHIPPED_NAME)
                if os.path.exists(beside):  # a plain file: importlib.resources (15 ms to import) is for zips
                    with open(beside, encoding="utf-8") as handle:
                        text = handle.read()
                else:
                    import importlib.resources

                    text = importlib.resources.files("leadline").joinpath("data", _SHIPPED_NAME).read_text(encoding="utf-8")
                source = _SHIPPED_NAME
            table = cls.parse(text, source)
            _cache[path] = table
            return table

    @classmethod
    def shipped(cls) -> "ServiceTable":
        """The table shipped with leadline, whether or not nmap is installed."""
        return cls.load("")

    def name(self, port: int, proto: str) -> str | None:
        return self._protocol(proto).names.get(port)

    def names(self, proto: str) -> dict[int, str]:
        """Port -> name for one protocol: ``names("tcp").get(port)`` is the per-port look-up
        of a big scan, with no key tuple to build.  Not to be changed by the caller."""
        return self._protocol(proto).names

    def frequency(self, port: int, proto: str) -> float:
        return self._protocol(proto).frequencies.get(port, 0.0)

    def __contains__(self, key: tuple[int, str]) -> bool:
        return key[0] in self._protocol(key[1]).names

    def ports(self, proto: str) -> list[int]:
        """Every port the table lists for ``proto``, ascending."""
        return sorted(self._protocol(proto).names)

    def top(self, n: int, proto: str) -> list[int]:
        """The ``n`` most frequently open ports of ``proto``, most frequent first.

        Ties are broken by port number, lowest first, so the list is the
        same on every run.
        """
        ranked = self._ranked.get(proto)
        if ranked is None:
            frequencies = self._protocol(proto).frequencies
            ranked = self._ranked[proto] = sorted(frequencies, key=lambda port: (-frequencies[port], port))
        return ranked[: max(0, n)]

    def ports_named(self, pattern: str, proto: str) -> list[int]:
        """Ports of ``proto`` whose service name matches ``pattern`` (``*``/``?`` wildcards), ascending."""
        matcher = _wildcard_regex(pattern)
        return sorted(port for port, name in self._protocol(proto).names.items() if matcher.fullmatch(name))
