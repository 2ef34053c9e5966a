"""The SEQ test: how a host numbers its ISNs, IP IDs and TCP timestamps, from the six SEQ answers.

nmap's arithmetic, so the values agree with its fingerprints:

* SP, GCD, ISR need four SYN/ACKs.  GCD is the greatest common divisor
  of the ISN steps (each the shorter way round 2**32); ISR is the mean
  ISN rate per second, as round(8 * log2(rate)); SP the same of the
  rates' standard deviation (divided by the GCD when that exceeds 9).
* TI (the SEQ answers, three needed), CI (T5-T7, two) and II (the two
  echoes, two) are IP ID classes from ``core.ipid``; SS says whether
  ICMP shares the TCP counter.
* TS: the timestamp clock's rate, U without timestamps, 0 when zero;
  its rate and first value give the boot time (over two years: ignored).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from leadline.core.ipid import IpidClass, classify_ipids
from leadline.core.osprobes import SEQ_PROBES, OsPlan
from leadline.detect.os.answers import Answer, SeqSummary, mod_diff

__all__ = ["difficulty", "seq_test", "ts_option"]

_SYN_ACK = 0x12
_TWO_YEARS = 63072000
TS_UNKNOWN, TS_ZERO, TS_UNSUPPORTED = "unknown class", "zero timestamp", "none returned (unsupported)"


def difficulty(index: int) -> str:
    """nmap's words for a TCP sequence difficulty index."""
    return ("Trivial joke" if index < 3 else "Easy" if index < 6 else "Medium" if index < 11
            else "Formidable" if index < 12 else "Worthy challenge" if index < 16 else "Good luck!")


def ts_option(options: bytes) -> int | None:
    """TSval of the timestamp option, None when there is none (or the options are malformed)."""
    i = 0
    while i < len(options):
        kind = options[i]
        if kind in (0, 1):
            i += 1
            continue
        if i + 1 >= len(options) or options[i + 1] < 2:
            return None
        length = options[i + 1]
        if kind == 8 and length >= 10 and i + 10 <= len(options):
            return int.from_bytes(options[i + 2:i + 6], "big")
        i += length
    return None


def _ipid_value(kind: IpidClass, ipids: Sequence[int]) -> str | None:
    if kind is IpidClass.CONSTANT:
        return f"{ipids[0]:X}"
    if kind in (IpidClass.INCREMENTAL, IpidClass.INCREMENTAL_BY_2):
        return "I"
    if kind is IpidClass.UNKNOWN:
        return None
    return kind.value


def _isn_values(isns: list[int], usecs: list[int]) -> tuple[int, int, int]:
    """(SP, GCD, ISR) from four or more ISNs and the microseconds between their probes."""
    diffs = [mod_diff(b, a) for a, b in zip(isns, isns[1:])]
    rates = [d * 1000000.0 / u for d, u in zip(diffs, usecs)]
    avg = sum(rates) / len(rates)
    gcd = 0
    for d in diffs:
        gcd = math.gcd(gcd, d)
    if gcd == 0:
        return 0, 0, 0
    isr = int(math.log2(avg) * 8 + 0.5) if avg > 0 else 0
    div = gcd if gcd > 9 else 1
    variance = sum((r / div - avg / div) ** 2 for r in rates) / max(1, len(isns) - 2)
    stddev = math.sqrt(variance)
    index = 0 if stddev <= 1 else int(math.log2(stddev) * 8 + 0.5)
    return index, gcd, max(0, isr)


def _timestamps(ts_class: str, stamps: list[int], usecs: list[int], start: float) -> tuple[str | None, str, float | None]:
    """(TS value, class words, boot time) from the SEQ answers' timestamps."""
    if ts_class == TS_ZERO:
        return "0", ts_class, None
    if ts_class == TS_UNSUPPORTED:
        return "U", ts_class, None
    if len(stamps) < 2:
        return None, ts_class, None
    diffs = [mod_diff(b, a) for a, b in zip(stamps, stamps[1:])]
    hz = sum(d / (u / 1000000.0) for d, u in zip(diffs, usecs)) / len(diffs)
    if hz <= 0:
        return None, ts_class, None
    if hz < 5.66:
        words, uptime = "2HZ", stamps[0] // 2
    elif 70 < hz < 150:
        words, uptime = "100HZ", stamps[0] // 100
    elif 724 < hz < 1448:
        words, uptime = "1000HZ", stamps[0] // 1000
    else:
        words, uptime = "other", stamps[0] // int(0.5 + hz)
    if uptime > _TWO_YEARS:
        uptime = 0
    value = 1 if hz <= 5.66 else 7 if 70 < hz <= 150 else 8 if 150 < hz <= 350 else int(0.5 + math.log2(hz))
    return f"{value:X}", words, float(int(start) - uptime)


def seq_test(plan: OsPlan, sent: Mapping[str, float], answers: Mapping[str, Answer]) -> tuple[dict[str, str], SeqSummary]:
    """The SEQ test's values and the sequence summary the report prints."""
    good: list[tuple[int, Answer, float]] = []
    ts_class = TS_UNKNOWN
    for i in range(SEQ_PROBES):
        answer = answers.get(f"SEQ{i + 1}")
        if answer is None or answer.icmp_type >= 0 or answer.flags & _SYN_ACK != _SYN_ACK or answer.seq == 0:
            continue
        stamp = ts_option(answer.options)
        if stamp is None:
            ts_class = TS_UNSUPPORTED
        elif stamp == 0:
            ts_class = TS_ZERO
        good.append((i, answer, sent.get(f"SEQ{i + 1}", answer.at)))
    isns = [a.seq for _, a, _ in good]
    stamps = [ts_option(a.options) or 0 for _, a, _ in good]
    usecs = [max(1, int(round((t2 - t1) * 1000000))) for (_, _, t1), (_, _, t2) in zip(good, good[1:])]
    values: dict[str, str] = {}
    index = 0
    if len(good) >= 4:
        index, gcd, isr = _isn_values(isns, usecs)
        values.update(SP=f"{index:X}", GCD=f"{gcd:X}", ISR=f"{isr:X}")
    tcp_ipids = [a.ip.ident for _, a, _ in good]
    closed = [answers[n].ip.ident for n in ("T5", "T6", "T7") if n in answers and answers[n].icmp_type < 0]
    icmp = [answers[n].ip.ident for n in ("IE1", "IE2") if n in answers]
    ti = classify_ipids(tcp_ipids) if len(tcp_ipids) >= 3 else IpidClass.UNKNOWN
    ci = classify_ipids(closed) if len(closed) >= 2 else IpidClass.UNKNOWN
    ii = classify_ipids(icmp) if len(icmp) >= 2 else IpidClass.UNKNOWN
    for name, kind, ids in (("TI", ti, tcp_ipids), ("CI", ci, closed), ("II", ii, icmp)):
        value = _ipid_value(kind, ids)
        if value is not None:
            values[name] = value
    shared = (IpidClass.INCREMENTAL, IpidClass.BROKEN_INCREMENTAL, IpidClass.RANDOM_INCREMENTS)
    if ti in shared and ii in shared:
        avg = ((tcp_ipids[-1] - tcp_ipids[0]) % (1 << 32)) // (len(tcp_ipids) - 1)
        values["SS"] = "S" if icmp[0] < tcp_ipids[-1] + 3 * avg else "O"
    start = good[0][2] if good else 0.0
    ts_value, ts_words, lastboot = _timestamps(ts_class, stamps, usecs, start)
    if ts_value is not None:
        values["TS"] = ts_value
    summary = SeqSummary(tuple(isns), tuple(tcp_ipids), tuple(stamps), index, ti, ts_words, lastboot)
    return values, summary
