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


class _Entry(NamedTuple):
    name: str
    frequency: float


# One entry a line: name, port/protocol, optional frequency; the line's rest is ignored.
_LINE = re.compile(r"^[ \t]*([^#\s][^\s#]*)[ \t]+(\d+)/([^\s#]+)(?:[ \t]+([^\s#]+))?", re.MULTILINE)


def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    """nmap's service-name wildcards: ``*`` any run of characters, ``?`` exactly one."""
    translated = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile(translated, re.DOTALL)


class ServiceTable:
    """Port → (name, frequency) per protocol, with nmap's look-ups."""

    def __init__(self, entries: dict[tuple[int, str], tuple[str, float]], source: str = "") -> None:
        self.source = source
        self._entries = {key: _Entry._make(value) for key, value in entries.items()}
        self._ranked: dict[str, list[int]] = {}
        self._names: dict[str, dict[int, str]] = {}

    @classmethod
    def parse(cls, text: str, source: str = "") -> "ServiceTable":
        """Read the services format; malformed lines are skipped, as nmap skips them.

        One regular-expression pass over the whole text: the table is read on
        every run, and line-by-line splitting cost a noticeable part of a
        short scan's start-up.
        """
        entries: dict[tuple[int, str], tuple[str, float]] = {}
        for name, port_text, protocol, frequency_text in _LINE.findall(text):
            port = int(port_text)
            if port > 65535:
                continue
            key = (port, protocol.lower())
            if key in entries:  # the first entry for a port names it
                continue
            try:
                frequency = float(frequency_text) if frequency_text else 0.0
            except ValueError:
                frequency = 0.0
            entries[key] = (name, frequency)
        return cls(entries, source)

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
        entry = self._entries.get((port, proto))
        return entry.name if entry else None

    def names(self, proto: str) -> dict[int, str]:
        """Port -> name for one protocol, built once: ``names("tcp").get(port)`` is the
        per-port look-up of a big scan, with no key tuple to build."""
        table = self._names.get(proto)
        if table is None:
            table = self._names[proto] = {port: entry.name for (port, p), entry in self._entries.items() if p == proto}
        return table

    def frequency(self, port: int, proto: str) -> float:
        entry = self._entries.get((port, proto))
        return entry.frequency if entry else 0.0

    def __contains__(self, key: tuple[int, str]) -> bool:
        return key in self._entries

    def ports(self, proto: str) -> list[int]:
        """Every port the table lists for ``proto``, ascending."""
        return sorted(port for port, protocol in self._entries if protocol == proto)

    def top(self, n: int, proto: str) -> list[int]:
        """The ``n`` most frequently open ports of ``proto``, most frequent first.

        Ties are broken by port number, lowest first, so the list is the
        same on every run.
        """
        ranked = self._ranked.get(proto)
        if ranked is None:
            ranked = sorted(
                (port for port, protocol in self._entries if protocol == proto),
                key=lambda port: (-self._entries[(port, proto)].frequency, port),
            )
            self._ranked[proto] = ranked
        return ranked[: max(0, n)]

    def ports_named(self, pattern: str, proto: str) -> list[int]:
        """Ports of ``proto`` whose service name matches ``pattern`` (``*``/``?`` wildcards), ascending."""
        matcher = _wildcard_regex(pattern)
        return sorted(
            port
            for (port, protocol), entry in self._entries.items()
            if protocol == proto and matcher.fullmatch(entry.name)
        )
