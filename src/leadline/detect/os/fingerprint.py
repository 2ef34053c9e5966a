"""From the answers to one round of OS probes to a fingerprint: nmap's tests and their values.

The builder takes the round's plan, the times its probes left and every
datagram captured from the host, in any order, duplicated, truncated or
malformed: it keeps the first well-formed answer to each probe, ignores
the rest, and computes whichever tests the answers allow.  A test whose
probe went out and got nothing says R=N, as nmap's do; a test that could
not be computed (too few SEQ answers, an OPS line missing one of its six)
is left out.  Values are nmap's: hexadecimal numbers, option strings such
as ``M5B4ST11NW7``, the one-letter classes.

Besides the tests, a ``Fingerprint`` keeps what the report prints about
the sequences: the ISNs, IP IDs and timestamps, the difficulty index, the
timestamp class and the boot time it implies, and the hop distance U1's
quoted TTL tells.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from leadline.core.osprobes import SEQ_PROBES, U1_IPID, U1_PAYLOAD, OsPlan
from leadline.core.packet.checksum import internet_checksum
from leadline.core.packet.ipv4 import DF
from leadline.detect.os.answers import Answer, SeqSummary, option_string, sort_answers
from leadline.detect.os.sequence import seq_test

__all__ = ["ATTRIBUTES", "TEST_ORDER", "Fingerprint", "build_fingerprint", "initial_ttl"]

# nmap's tests and, for each, its attributes in printing order.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "SEQ": ("SP", "GCD", "ISR", "TI", "CI", "II", "SS", "TS"),
    "OPS": ("O1", "O2", "O3", "O4", "O5", "O6"),
    "WIN": ("W1", "W2", "W3", "W4", "W5", "W6"),
    "ECN": ("R", "DF", "T", "TG", "W", "O", "CC", "Q"),
    "T1": ("R", "DF", "T", "TG", "S", "A", "F", "RD", "Q"),
    **{f"T{n}": ("R", "DF", "T", "TG", "W", "S", "A", "F", "O", "RD", "Q") for n in range(2, 8)},
    "U1": ("R", "DF", "T", "TG", "IPL", "UN", "RIPL", "RID", "RIPCK", "RUCK", "RUD"),
    "IE": ("R", "DFI", "T", "TG", "CD"),
}
TEST_ORDER = tuple(ATTRIBUTES)

_TH_FIN, _TH_SYN, _TH_RST, _TH_PSH, _TH_ACK, _TH_URG, _TH_ECE, _TH_CWR = 1, 2, 4, 8, 16, 32, 64, 128
_FLAG_LETTERS = ((_TH_ECE, "E"), (_TH_URG, "U"), (_TH_ACK, "A"), (_TH_PSH, "P"), (_TH_RST, "R"),
                 (_TH_SYN, "S"), (_TH_FIN, "F"))


def _hex(value: int) -> str:
    return f"{value:X}"


def initial_ttl(ttl: int) -> int:
    """The initial TTL a received one most likely started from (32, 64, 128 or 255)."""
    return 32 if ttl <= 32 else 64 if ttl <= 64 else 128 if ttl <= 128 else 255


@dataclass(slots=True)
class Fingerprint:
    """The tests of one round (test name -> attribute -> value, in nmap's order) and its sequence summary."""

    tests: dict[str, dict[str, str]] = field(default_factory=dict)
    seq: SeqSummary = field(default_factory=SeqSummary)
    distance: int | None = None  # hops, from U1's quoted TTL
    distance_guess: int | None = None  # from the initial TTL when U1 said nothing
    closed_udp_answered: bool = False

    def line(self, test: str) -> str:
        """One test as nmap prints it: ``T1(R=Y%DF=Y%...)``."""
        values = self.tests[test]
        return f"{test}(" + "%".join(f"{k}={values[k]}" for k in ATTRIBUTES[test] if k in values) + ")"


def _tcp_test(plan: OsPlan, answer: Answer, with_window: bool) -> dict[str, str]:
    values = {"R": "Y", "DF": "Y" if answer.ip.flags & DF else "N", "T": _hex(answer.ip.ttl)}
    if with_window:
        values["W"] = _hex(answer.window)
    seq, ack = answer.seq, answer.ack
    values["S"] = ("Z" if seq == 0 else "A" if seq == plan.ack else "A+" if seq == (plan.ack + 1) & 0xFFFFFFFF
                   else "O")
    values["A"] = ("Z" if ack == 0 else "S" if ack == plan.seq_base else "S+"
                   if ack == (plan.seq_base + 1) & 0xFFFFFFFF else "O")
    values["F"] = "".join(letter for bit, letter in _FLAG_LETTERS if answer.flags & bit)
    if with_window:
        values["O"] = option_string(answer.options)
    if answer.flags & _TH_RST and answer.payload:
        values["RD"] = _hex(zlib.crc32(answer.payload))
    else:
        values["RD"] = "0"
    values["Q"] = _quirks(answer)
    return values


def _quirks(answer: Answer) -> str:
    return ("R" if answer.reserved else "") + ("U" if not answer.flags & _TH_URG and answer.urgent else "")


def _ecn_test(answer: Answer) -> dict[str, str]:
    flags = answer.flags
    cc = ("S" if flags & _TH_ECE and flags & _TH_CWR else "Y" if flags & _TH_ECE
          else "N" if not flags & _TH_CWR else "O")
    return {"R": "Y", "DF": "Y" if answer.ip.flags & DF else "N", "T": _hex(answer.ip.ttl),
            "W": _hex(answer.window), "O": option_string(answer.options), "CC": cc, "Q": _quirks(answer)}


def _u1_test(plan: OsPlan, answer: Answer) -> tuple[dict[str, str], int]:
    """U1's values, and the quoted TTL (for the distance)."""
    body = answer.icmp_body
    hlen = (body[0] & 0x0F) * 4
    quoted_len = int.from_bytes(body[2:4], "big")
    quoted_id = int.from_bytes(body[4:6], "big")
    checksum = int.from_bytes(body[10:12], "big")
    if checksum == 0:
        ripck = "Z"
    else:
        ripck = "G" if internet_checksum(body[:10] + b"\x00\x00" + body[12:20]) == checksum else "I"
    udp_checksum = int.from_bytes(body[hlen + 6:hlen + 8], "big")
    data = body[hlen + 8:]
    values = {
        "R": "Y", "DF": "Y" if answer.ip.flags & DF else "N", "T": _hex(answer.ip.ttl),
        "IPL": _hex(answer.ip.total_length or 0), "UN": _hex(answer.icmp_rest),
        "RIPL": "G" if quoted_len == 20 + 8 + len(U1_PAYLOAD) else _hex(quoted_len),
        "RID": "G" if quoted_id == U1_IPID else _hex(quoted_id),
        "RIPCK": ripck,
        "RUCK": "G" if udp_checksum == plan.udp_checksum() else _hex(udp_checksum),
        "RUD": "G" if all(b == U1_PAYLOAD[0] for b in data) else "I",
    }
    return values, body[8]


def _ie_test(first: Answer, second: Answer) -> dict[str, str]:
    df1, df2 = bool(first.ip.flags & DF), bool(second.ip.flags & DF)
    dfi = "Y" if df1 and df2 else "S" if df1 else "N" if not df2 else "O"
    c1, c2 = first.icmp_code, second.icmp_code
    cd = ("Z" if c1 == 0 else _hex(c1)) if c1 == c2 else "S" if (c1, c2) == (9, 0) else "O"
    latest = second if second.at >= first.at else first
    return {"R": "Y", "DFI": dfi, "T": _hex(latest.ip.ttl), "CD": cd}


def build_fingerprint(plan: OsPlan, sent: Mapping[str, float], received: Iterable[tuple[float, bytes]], *,
                      closed_port_known: bool = True) -> Fingerprint:
    """The fingerprint of one round: ``sent`` maps probe names to send times, ``received`` is (time, datagram).

    ``closed_port_known``: whether T5-T7 went to a port the scan found
    closed (not one picked at random); only then does silence count as R=N.
    """
    answers = sort_answers(plan, received)
    fp = Fingerprint()
    fp.tests["SEQ"], fp.seq = seq_test(plan, sent, answers)
    _ops_win(fp, answers)
    _response_tests(plan, fp, answers, sent, closed_port_known)
    _fix_ttls(fp)
    return fp


def _ops_win(fp: Fingerprint, answers: Mapping[str, Answer]) -> None:
    seq_answers = [answers.get(f"SEQ{i + 1}") for i in range(SEQ_PROBES)]
    if all(a is not None and a.icmp_type < 0 for a in seq_answers):
        fp.tests["OPS"] = {f"O{i + 1}": option_string(a.options) for i, a in enumerate(seq_answers) if a}
        fp.tests["WIN"] = {f"W{i + 1}": _hex(a.window) for i, a in enumerate(seq_answers) if a}


def _response_tests(plan: OsPlan, fp: Fingerprint, answers: Mapping[str, Answer], sent: Mapping[str, float],
                    closed_port_known: bool) -> None:
    quoted_ttl: int | None = None
    ecn = answers.get("ECN")
    if ecn is not None and ecn.icmp_type < 0:
        fp.tests["ECN"] = _ecn_test(ecn)
    t1 = answers.get("SEQ1")
    if t1 is not None and t1.icmp_type < 0:
        fp.tests["T1"] = _tcp_test(plan, t1, with_window=False)
    for n in range(2, 8):
        answer = answers.get(f"T{n}")
        if answer is not None and answer.icmp_type < 0:
            fp.tests[f"T{n}"] = _tcp_test(plan, answer, with_window=True)
    u1 = answers.get("U1")
    if u1 is not None:
        fp.tests["U1"], quoted_ttl = _u1_test(plan, u1)
        fp.closed_udp_answered = True
    ie1, ie2 = answers.get("IE1"), answers.get("IE2")
    if ie1 is not None and ie2 is not None:
        fp.tests["IE"] = _ie_test(ie1, ie2)
    if quoted_ttl is not None:
        fp.distance = plan.udp_ttl - quoted_ttl + 1
    for test in ("ECN", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "U1", "IE"):
        if test in fp.tests:
            continue
        wanted = (plan.open_port is not None if test in ("ECN", "T1", "T2", "T3", "T4")
                  else plan.closed_port is not None and closed_port_known if test in ("T5", "T6", "T7")
                  else True)
        if wanted:
            fp.tests[test] = {"R": "N"}
    ordered = {name: fp.tests[name] for name in TEST_ORDER if name in fp.tests}
    fp.tests.clear()
    fp.tests.update(ordered)


def _fix_ttls(fp: Fingerprint) -> None:
    """Received TTLs become initial TTLs: exact with U1's distance (T), else a guess (TG), as nmap does."""
    for test in ("ECN", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "U1", "IE"):
        values = fp.tests.get(test)
        if not values or "T" not in values:
            continue
        ttl = int(values["T"], 16)
        if fp.distance_guess is None:
            fp.distance_guess = initial_ttl(ttl) - ttl
        if fp.distance is not None:
            values["T"] = _hex(ttl + fp.distance - 1)
        else:
            del values["T"]
            values["TG"] = _hex(initial_ttl(ttl))
        fp.tests[test] = {k: values[k] for k in ATTRIBUTES[test] if k in values}

