"""Reading a service's answer against a probe's matches, with nmap's substitutions and a bounded cost.

nmap's PCRE stops a match that backtracks too long; Python's ``re`` has no
such limit, so a crafted banner could hold a scan for hours.  Two bounds
keep it cheap: only the first ``MATCH_BYTES`` of an answer are matched
(nmap reads little more), and, on the main thread, each pattern runs under
an interval timer (``re`` checks for signals while it backtracks), so a
pattern that takes longer than its budget is abandoned and named in the
``abandoned`` list that ``-d`` prints.  Off the main thread no timer can
interrupt ``re``; the byte cap is then the only bound.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from leadline.detect.service.probes import Match

__all__ = ["MATCH_BYTES", "PATTERN_BUDGET", "MatchOutcome", "ServiceMatch", "find_match", "substitute"]

MATCH_BYTES = 32 * 1024  # what of an answer the patterns see
PATTERN_BUDGET = 0.25  # seconds one pattern may spend on one answer


@dataclass(frozen=True, slots=True)
class ServiceMatch:
    """What a matching line said about the service, substitutions done."""

    service: str
    soft: bool
    product: str | None = None
    version: str | None = None
    extrainfo: str | None = None
    hostname: str | None = None
    ostype: str | None = None
    devicetype: str | None = None
    cpe: tuple[str, ...] = ()
    line: int = 0


@dataclass
class MatchOutcome:
    """The first hard match (or the first softmatch when no hard one), and the patterns given up on."""

    match: ServiceMatch | None = None
    abandoned: list[str] = field(default_factory=list)


class _Timeout(Exception):
    pass


def _raise_timeout(signum: int, frame: object) -> None:
    raise _Timeout


@contextmanager
def _alarm_handler() -> Iterator[bool]:
    """Install the SIGALRM handler for a search; yields False off the main thread, where signals cannot reach."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = signal.signal(signal.SIGALRM, _raise_timeout)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _search(regex: re.Pattern[bytes], data: bytes, budget: float, timed: bool) -> re.Match[bytes] | None:
    if not timed:
        return regex.search(data)
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        return regex.search(data)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


_SUBST = re.compile(rb'\$(?:(\d)|P\((\d)\)|SUBST\((\d),"((?:[^"\\]|\\.)*)","((?:[^"\\]|\\.)*)"\)|I\((\d),"([<>])"\))')


def substitute(template: str, m: re.Match[bytes]) -> bytes:
    """nmap's version-field templates: ``$1``, ``$P(1)`` (printable only), ``$SUBST(1,"a","b")``, ``$I(1,">")``."""
    raw = template.encode("latin-1", "replace")

    def group(n: bytes) -> bytes:
        i = int(n)
        if i > (m.re.groups or 0):
            return b""
        return m.group(i) or b""

    def repl(s: re.Match[bytes]) -> bytes:
        if s.group(1):
            return group(s.group(1))
        if s.group(2):
            return bytes(b for b in group(s.group(2)) if 0x20 <= b < 0x7F)
        if s.group(3):
            return group(s.group(3)).replace(s.group(4), s.group(5))
        data = group(s.group(6))
        return str(int.from_bytes(data, "big" if s.group(7) == b">" else "little")).encode()

    return _SUBST.sub(repl, raw)


def _text(value: bytes) -> str | None:
    text = value.decode("utf-8", "backslashreplace").strip()
    return text or None


def _one_per_part(cpes: Iterable[str]) -> tuple[str, ...]:
    """One CPE per part (application, hardware, OS), the line's last of each, as nmap keeps them."""
    parts: dict[str, str] = {}
    for c in cpes:
        parts[c[5:6] if c.startswith("cpe:/") else c] = c
    return tuple(parts[k] for k in sorted(parts, key=lambda k: "aho".find(k) if k in "aho" else 9))


def _service_match(line: Match, m: re.Match[bytes]) -> ServiceMatch:
    f = {k: _text(substitute(v, m)) for k, v in line.fields.items()}
    cpes = _one_per_part(c for c in (_text(substitute(c, m)) for c in line.cpe) if c)
    return ServiceMatch(line.service, line.soft, f.get("p"), f.get("v"), f.get("i"), f.get("h"), f.get("o"),
                        f.get("d"), cpes, line.line)


def find_match(matches: Sequence[Match], data: bytes, *, soft_service: str | None = None,
               budget: float = PATTERN_BUDGET, deadline: float | None = None) -> MatchOutcome:
    """Try ``matches`` in order on ``data``: the first hard match wins; a softmatch is kept while looking on.

    With ``soft_service`` set (an earlier probe softmatched), only matches for that
    service count, as in nmap.  ``deadline`` (monotonic) bounds the whole search.
    """
    data = data[:MATCH_BYTES]
    with _alarm_handler() as timed:
        return _search_all(matches, data, soft_service, budget, deadline, timed)


def _search_all(matches: Sequence[Match], data: bytes, soft_service: str | None, budget: float,
                deadline: float | None, timed: bool) -> MatchOutcome:
    outcome = MatchOutcome()
    for line in matches:
        if soft_service is not None and line.service != soft_service:
            continue
        if line.soft and outcome.match is not None:
            continue
        if deadline is not None and time.monotonic() > deadline:
            outcome.abandoned.append(f"the rest of the matches from line {line.line} (deadline)")
            break
        regex = line.regex()
        if regex is None:
            continue
        try:
            m = _search(regex, data, budget, timed)
        except _Timeout:
            outcome.abandoned.append(f"line {line.line}: {line.service} m|{line.pattern[:60]}|")
            continue
        if m is None:
            continue
        found = _service_match(line, m)
        if not line.soft:
            outcome.match = found
            return outcome
        outcome.match = found
    return outcome
