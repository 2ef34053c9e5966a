"""Fuzzing the fingerprint builder: whatever arrives, it never raises and gives a (partial) fingerprint.

Truncated answers, junk bytes, answers twice, answers missing, TCP options
in any order or cut anywhere: the builder keeps the first well-formed
answer per probe and computes what it can.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from leadline.detect.os.answers import option_string
from leadline.detect.os.fingerprint import ATTRIBUTES, build_fingerprint
from leadline.detect.os.printed import ScanInfo, merged_fingerprint
from tests.unit.osreplies import linux_round

PLAN, SENT, GOT = linux_round()
INFO = ScanInfo("test", PLAN.target, 22, 1, 40000, None, "", False)


def _check(got: list[tuple[float, bytes]]) -> None:
    fp = build_fingerprint(PLAN, SENT, got)
    for test, values in fp.tests.items():
        assert set(values) <= set(ATTRIBUTES[test])
    merged_fingerprint(INFO, [fp])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(GOT) - 1), st.integers(0, 400)), max_size=30))
def test_truncated_and_duplicated_answers(cuts: list[tuple[int, int]]) -> None:
    got = [(GOT[i][0], GOT[i][1][:cut]) for i, cut in cuts] + [GOT[i] for i, _ in cuts]
    _check(got)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=120), max_size=20), st.permutations(list(range(len(GOT)))))
def test_junk_and_any_order(junk: list[bytes], order: list[int]) -> None:
    got = [(0.0, b) for b in junk] + [GOT[i] for i in order]
    _check(got)
    fp = build_fingerprint(PLAN, SENT, [GOT[i] for i in order])
    assert fp.line("T1") == "T1(R=Y%DF=Y%T=40%S=O%A=S+%F=AS%RD=0%Q=)"  # the order of arrival changes nothing


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_bytes_flipped_anywhere(data: st.DataObject) -> None:
    got = list(GOT)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(got) - 1))
        t, d = got[i]
        pos = data.draw(st.integers(0, len(d) - 1))
        got[i] = (t, d[:pos] + bytes([data.draw(st.integers(0, 255))]) + d[pos + 1:])
    _check(got)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"\x01", b"\x00", b"\x02\x04\x05\xb4", b"\x03\x03\x07", b"\x04\x02",
                                 b"\x08\x0a" + bytes(8), b"\x08\x0a\x00\x00\x00\x01" + bytes(4), b"\x05\x0a" + bytes(8),
                                 b"\xfe\x04ab"]), max_size=10), st.integers(0, 40))
def test_options_in_any_order(parts: list[bytes], cut: int) -> None:
    raw = b"".join(parts)
    text = option_string(raw)
    assert set(text) <= set("0123456789ABCDEFMWSTNL")
    option_string(raw[:cut])


def test_nothing_at_all_gives_a_partial_fingerprint() -> None:
    fp = build_fingerprint(PLAN, SENT, [])
    assert fp.line("T1") == "T1(R=N)" and fp.line("U1") == "U1(R=N)" and fp.line("IE") == "IE(R=N)"
    assert "OPS" not in fp.tests and fp.tests["SEQ"] == {}


def test_missing_answers_leave_tests_out() -> None:
    got = [g for g in GOT if not (g[1][9] == 6 and g[1][20 + 3] == PLAN.tcp_source("SEQ3") & 0xFF)]
    fp = build_fingerprint(PLAN, SENT, got)
    assert "OPS" not in fp.tests and "WIN" not in fp.tests
    assert "SP" in fp.tests["SEQ"]  # five SYN/ACKs still give the ISN tests
