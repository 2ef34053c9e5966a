"""The ``nmap-service-probes`` format, parsed.

One parser reads both databases: leadline's own (``data/leadline-service-probes``,
written from the protocols) and nmap's file when it is installed.  Patterns
are kept as text and compiled on first use (``Match.regex``): a run that
probes three ports never pays for the 12,000 patterns it does not try.

The format, as nmap documents it: ``Probe TCP|UDP name q|bytes| [no-payload]``
starts a probe; ``match``/``softmatch service m<d>regex<d>[is] fields`` lines
follow, with fields ``p/ v/ i/ h/ o/ d/`` (any delimiter after the letter) and
``cpe:/…/`` (optionally followed by ``a``); ``ports``, ``sslports``,
``rarity``, ``fallback``, ``totalwaitms`` and ``tcpwrappedms`` set the probe's
attributes; ``Exclude`` at the top names ports never probed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Match", "Probe", "ProbeDatabase", "ProbeFileError", "parse_probes", "unescape"]

_ESCAPES = {"\\": 0x5C, "0": 0, "a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}


class ProbeFileError(ValueError):
    """A line of a probe file that does not parse; the message names the line."""


def unescape(text: str) -> bytes:
    """A probe string's C-like escapes (``\\r \\n \\0 \\xHH``) to bytes."""
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\" or i + 1 == len(text):
            out += ch.encode("latin-1", "replace")
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "x" and re.fullmatch(r"[0-9A-Fa-f]{2}", text[i + 2:i + 4]):
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out += nxt.encode("latin-1", "replace")
            i += 2
    return bytes(out)


@dataclass(slots=True)
class Match:
    """One ``match`` or ``softmatch`` line; ``regex`` compiles the pattern on first use."""

    service: str
    pattern: str
    flags: str  # "i", "s" or both
    soft: bool
    fields: dict[str, str]  # "p", "v", "i", "h", "o", "d" -> template
    cpe: tuple[str, ...]
    line: int
    _compiled: re.Pattern[bytes] | None = None
    _broken: bool = False

    def regex(self) -> re.Pattern[bytes] | None:
        """The compiled pattern, or None when Python's ``re`` cannot read it."""
        if self._compiled is None and not self._broken:
            flags = re.DOTALL if "s" in self.flags else 0
            if "i" in self.flags:
                flags |= re.IGNORECASE
            try:
                self._compiled = re.compile(_to_python(self.pattern).encode("latin-1"), flags)
            except (re.error, UnicodeEncodeError, OverflowError, RecursionError):
                self._broken = True
        return self._compiled


def _to_python(pattern: str) -> str:
    """PCRE spellings Python's ``re`` lacks: ``\\z`` is ``\\Z``; ``\\Z`` (end or before a final newline) is kept as ``(?=\\n?\\Z)``."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append({"z": r"\Z", "Z": r"(?=\n?\Z)"}.get(nxt, ch + nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@dataclass(slots=True)
class Probe:
    """One ``Probe`` section: what to send and the matches that read the answer."""

    protocol: str  # "TCP" | "UDP"
    name: str
    payload: bytes
    rarity: int = 5  # nmap's default when a probe gives none
    ports: frozenset[int] = frozenset()
    sslports: frozenset[int] = frozenset()
    fallback: tuple[str, ...] = ()
    totalwaitms: int | None = None
    tcpwrappedms: int | None = None
    matches: list[Match] = field(default_factory=list)
    order: int = 0  # position in the file

    @property
    def is_null(self) -> bool:
        return self.protocol == "TCP" and not self.payload and self.name == "NULL"

    def wait_ms(self) -> int:
        """nmap's defaults: 5000 ms, 6000 on the NULL probe (which waits for a banner)."""
        return self.totalwaitms if self.totalwaitms is not None else 5000

    def wrapped_ms(self) -> int:
        return self.tcpwrappedms if self.tcpwrappedms is not None else (3000 if self.is_null else 2000)


@dataclass
class ProbeDatabase:
    """A whole probe file: its probes in file order and the excluded ports."""

    probes: list[Probe]
    exclude_tcp: frozenset[int] = frozenset()
    exclude_udp: frozenset[int] = frozenset()
    source: str = ""

    def probe(self, protocol: str, name: str) -> Probe | None:
        for p in self.probes:
            if p.protocol == protocol and p.name == name:
                return p
        return None

    def excluded(self, protocol: str, port: int) -> bool:
        return port in (self.exclude_tcp if protocol == "tcp" else self.exclude_udp)


def _delimited(text: str, start: int, what: str, lineno: int) -> tuple[str, int]:
    """The text between ``text[start]`` (the delimiter) and its next occurrence, and the index after it."""
    if start >= len(text):
        raise ProbeFileError(f"line {lineno}: {what} has no delimiter")
    delim = text[start]
    end = text.find(delim, start + 1)
    if end < 0:
        raise ProbeFileError(f"line {lineno}: {what} is not closed with '{delim}'")
    return text[start + 1:end], end + 1


def _parse_match(rest: str, soft: bool, lineno: int) -> Match:
    service, _, spec = rest.partition(" ")
    spec = spec.lstrip()
    if not service or not spec.startswith("m"):
        raise ProbeFileError(f"line {lineno}: a match needs a service name and m/regex/")
    pattern, i = _delimited(spec, 1, "the pattern", lineno)
    flags = ""
    while i < len(spec) and spec[i] in "is":
        flags += spec[i]
        i += 1
    fields: dict[str, str] = {}
    cpes: list[str] = []
    while i < len(spec):
        if spec[i] == " ":
            i += 1
            continue
        if spec.startswith("cpe:", i):
            value, i = _delimited(spec, i + 4, "a cpe field", lineno)
            cpes.append("cpe:/" + value if not value.startswith("cpe:") else value)
            if i < len(spec) and spec[i] == "a":
                i += 1
            continue
        letter = spec[i]
        if letter not in "pvihod":
            raise ProbeFileError(f"line {lineno}: unknown version field '{letter}'")
        value, i = _delimited(spec, i + 1, f"the {letter} field", lineno)
        fields[letter] = value
    return Match(service, pattern, flags, soft, fields, tuple(cpes), lineno)


def _ports(text: str, lineno: int) -> frozenset[int]:
    ports: set[int] = set()
    for part in text.replace(" ", "").split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or int(m.group(2) or m.group(1)) > 65535:
            raise ProbeFileError(f"line {lineno}: bad port list '{text}'")
        ports.update(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    return frozenset(ports)


def _exclude(text: str, lineno: int) -> tuple[set[int], set[int]]:
    tcp: set[int] = set()
    udp: set[int] = set()
    target = None
    for part in text.replace(" ", "").split(","):
        if part[:2].upper() in ("T:", "U:"):
            target = tcp if part[0].upper() == "T" else udp
            part = part[2:]
        ports = _ports(part, lineno)
        if target is None:
            tcp.update(ports)
            udp.update(ports)
        else:
            target.update(ports)
    return tcp, udp


def _parse_probe_line(rest: str, lineno: int, order: int) -> Probe:
    m = re.match(r"(TCP|UDP)\s+(\S+)\s+q(.*)$", rest)
    if not m:
        raise ProbeFileError(f"line {lineno}: a Probe line is 'Probe TCP|UDP name q|payload|'")
    raw, _ = _delimited(m.group(3), 0, "the probe string", lineno)
    return Probe(m.group(1), m.group(2), unescape(raw), order=order)


def _apply(probe: Probe, word: str, rest: str, lineno: int) -> None:
    if word in ("match", "softmatch"):
        probe.matches.append(_parse_match(rest, word == "softmatch", lineno))
    elif word == "ports":
        probe.ports = _ports(rest, lineno)
    elif word == "sslports":
        probe.sslports = _ports(rest, lineno)
    elif word in ("rarity", "totalwaitms", "tcpwrappedms"):
        if not rest.strip().isdigit():
            raise ProbeFileError(f"line {lineno}: {word} needs a number")
        setattr(probe, word, int(rest))
    elif word == "fallback":
        probe.fallback = tuple(n for n in rest.replace(" ", "").split(",") if n)
    else:
        raise ProbeFileError(f"line {lineno}: unknown directive '{word}'")


def parse_probes(text: str, source: str = "") -> ProbeDatabase:
    """Parse a whole probe file; raises ProbeFileError naming the first bad line."""
    probes: list[Probe] = []
    tcp_x: set[int] = set()
    udp_x: set[int] = set()
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word == "Probe":
            probes.append(_parse_probe_line(rest, lineno, len(probes)))
        elif word == "Exclude":
            t, u = _exclude(rest, lineno)
            tcp_x |= t
            udp_x |= u
        elif not probes:
            raise ProbeFileError(f"line {lineno}: '{word}' before the first Probe")
        else:
            _apply(probes[-1], word, rest, lineno)
    return ProbeDatabase(probes, frozenset(tcp_x), frozenset(udp_x), source)
