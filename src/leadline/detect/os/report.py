"""From a host's rounds of fingerprints to the ``OsResult`` every output renders.

Decisions nmap makes after matching, made here once:

* which round counts: the first with a perfect match, else the one whose
  best guess scored highest (nmap's findBestFPs);
* whether the fingerprint is fit for an exact match (nmap's reasons: no
  open or closed TCP port, the host more than five hops away, no answer
  to U1 without a UDP scan, the SEQ probes sent too slowly, -T5) — if
  not, guesses are shown as with --osscan-guess;
* which matches are listed: the perfect ones (more than eight is "too
  many"), else up to ten guesses within ten points of the best;
* leadline's own hint from the initial TTL, labelled as a hint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from leadline.detect.os.fingerprint import Fingerprint, initial_ttl
from leadline.detect.os.match import MatchResult
from leadline.detect.os.sequence import difficulty
from leadline.model import OsClass, OsMatch, OsResult, OsSequences, PortResult

__all__ = ["Conditions", "best_round", "not_ideal_reason", "os_result", "repeats", "ttl_hint"]

_FAMILIES = {
    32: "old Windows (9x) or small embedded stacks",
    64: "Linux, Android, macOS/iOS, the BSDs and most embedded devices",
    128: "Windows",
    255: "network equipment (Cisco IOS and other routers and switches), OpenBSD, Solaris",
}


@dataclass(frozen=True, slots=True)
class Conditions:
    """What the scan knew while probing one host."""

    open_port: int | None
    closed_port: int | None  # a port the scan found closed (not one picked at random)
    closed_udp: int | None  # a closed UDP port the scan found or U1 proved
    udp_scanned: bool
    insane: bool  # -T5
    timing_ratio: float  # how much slower than 100 ms apart the SEQ probes went (1.0: on time)


def not_ideal_reason(c: Conditions, distance: int | None) -> str | None:
    """Why the fingerprint cannot give an exact match, in nmap's words; None when it can."""
    if c.insane:
        return "Timing level 5 (Insane) used"
    if c.open_port is None:
        return "Missing an open TCP port so results incomplete"
    if c.closed_port is None:
        return "Missing a closed TCP port so results incomplete"
    if distance is not None and distance < 0:
        return f"Host distance ({distance} network hops) appears to be negative"
    if distance is not None and distance > 5:
        return f"Host distance ({distance} network hops) is greater than five"
    if c.timing_ratio > 1.4:
        return f"maxTimingRatio ({c.timing_ratio:e}) is greater than 1.4"
    if c.closed_udp is None and not c.udp_scanned:
        return "Didn't receive UDP response. Please try again with -sSU"
    return None


def repeats(previous: Fingerprint, current: Fingerprint) -> bool:
    """Whether a round said the same as the one before, but for values random by nature (the SEQ test)."""
    return {k: v for k, v in previous.tests.items() if k != "SEQ"} == \
        {k: v for k, v in current.tests.items() if k != "SEQ"}


def best_round(results: Sequence[MatchResult]) -> int:
    """The round that counts: the first with a perfect match, else the highest best accuracy (first wins)."""
    best, index = -1.0, 0
    for i, result in enumerate(results):
        if result.perfect:
            return i
        if result.matches and result.best > best:
            best, index = result.best, i
    return index


def ttl_hint(received_ttl: int | None) -> str | None:
    """leadline's hint: which systems start at the initial TTL this one most likely came from."""
    if received_ttl is None or received_ttl <= 0:
        return None
    start = initial_ttl(received_ttl)
    hops = start - received_ttl
    return (f"initial TTL {start} ({received_ttl} received, {hops} router{'' if hops == 1 else 's'} between) "
            f"is typical of {_FAMILIES[start]}")


def _classes(result: MatchResult) -> tuple[OsClass, ...]:
    return tuple(OsClass(c.vendor, c.family, c.generation, c.device_type, math.floor(acc * 100), c.cpes)
                 for c, acc in result.classes)


def _matches(result: MatchResult, shown: int) -> tuple[OsMatch, ...]:
    out = []
    for reference, acc in result.matches[:shown]:
        pct = math.floor(acc * 100)
        out.append(OsMatch(reference.name, pct,
                           tuple(OsClass(c.vendor, c.family, c.generation, c.device_type, pct, c.cpes)
                                 for c in reference.classes), reference.line))
    return tuple(out)


def os_result(result: MatchResult, fp: Fingerprint, *, fingerprint_text: str, ports_used: tuple[PortResult, ...],
              reason: str | None, guess: bool, unreliable: bool, hint: str | None) -> OsResult:
    """The report of one host from the round that counts."""
    if result.perfect:
        shown = result.perfect
    else:
        top = result.best
        shown = sum(1 for i, (_, acc) in enumerate(result.matches) if i < 10 and (i == 0 or acc > top - 0.10))
    seq = fp.seq
    sequences = OsSequences(
        tcp_index=seq.index if len(seq.isns) >= 4 else None,
        tcp_difficulty=difficulty(seq.index) if len(seq.isns) >= 4 else None,
        tcp_values=seq.isns, ipid_class=seq.ipid_class.description if seq.ipids else None,
        ipid_values=seq.ipids, ts_class=seq.ts_class if seq.isns else None, ts_values=seq.timestamps,
        lastboot=seq.lastboot)
    return OsResult(matches=_matches(result, shown), fingerprint=fingerprint_text, ports_used=ports_used,
                    perfect=result.perfect, classes=_classes(result), class_perfect=result.class_perfect,
                    too_many=result.too_many or result.perfect > 8, show_guesses=guess or reason is not None,
                    not_ideal=reason, unreliable=unreliable, sequences=sequences, ttl_hint=hint)
