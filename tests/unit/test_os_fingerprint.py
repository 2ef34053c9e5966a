"""The fingerprint builder, from answers built field by field: nmap's values for each test."""

from __future__ import annotations

from leadline.core.ipid import IpidClass
from leadline.detect.os.answers import option_string
from leadline.detect.os.fingerprint import build_fingerprint, initial_ttl
from leadline.detect.os.printed import ScanInfo, merged_fingerprint, wrap
from leadline.detect.os.sequence import difficulty, ts_option
from tests.unit.osreplies import linux_round


def test_option_strings_as_nmap_writes_them() -> None:
    assert option_string(bytes.fromhex("020405b40402080a0000000100000000010303070000")) == "M5B4ST10NW7LL"
    assert option_string(bytes.fromhex("0204ffff")) == "MFFFF"
    assert option_string(b"") == ""
    assert option_string(bytes.fromhex("0205")) == ""  # length runs past the end: malformed
    assert option_string(bytes.fromhex("08050000")) == ""


def test_linux_round() -> None:
    plan, sent, got = linux_round()
    fp = build_fingerprint(plan, sent, got)
    assert fp.distance == 1
    assert fp.line("OPS") == "OPS(O1=M5B4ST11NW7%O2=M5B4ST11NW7%O3=M5B4ST11NW7%O4=M5B4ST11NW7%O5=M5B4ST11NW7" \
                             "%O6=M5B4ST11NW7)"
    assert fp.line("WIN") == "WIN(W1=FE88%W2=FE88%W3=FE88%W4=FE88%W5=FE88%W6=FE88)"
    assert fp.line("ECN") == "ECN(R=Y%DF=Y%T=40%W=FAF0%O=M5B4NNSNW7%CC=Y%Q=)"
    assert fp.line("T1") == "T1(R=Y%DF=Y%T=40%S=O%A=S+%F=AS%RD=0%Q=)"
    assert fp.line("T2") == "T2(R=N)" and fp.line("T3") == "T3(R=N)"
    assert fp.line("T4") == "T4(R=Y%DF=Y%T=40%W=0%S=A%A=Z%F=R%O=%RD=0%Q=)"
    assert fp.line("T5") == "T5(R=Y%DF=Y%T=40%W=0%S=Z%A=S+%F=AR%O=%RD=0%Q=)"
    assert fp.line("U1") == "U1(R=Y%DF=N%T=40%IPL=164%UN=0%RIPL=G%RID=G%RIPCK=G%RUCK=G%RUD=G)"
    assert fp.line("IE") == "IE(R=Y%DFI=N%T=40%CD=S)"
    seq = fp.tests["SEQ"]
    assert seq["TI"] == "Z" and seq["CI"] == "Z" and seq["II"] == "I"
    assert seq["TS"] == "A"  # 1000 per second: round(log2(1000)) = 10
    assert seq["GCD"] == "1" or int(seq["GCD"], 16) > 0
    assert fp.seq.ipid_class is IpidClass.ZERO and fp.seq.ts_class == "1000HZ"


def test_without_u1_ttls_become_guesses() -> None:
    plan, sent, got = linux_round(ttl=61)
    got = [(t, d) for t, d in got if not (d[9] == 1 and d[20] == 3)]
    fp = build_fingerprint(plan, sent, got)
    assert fp.distance is None and fp.distance_guess == 3
    assert fp.line("T1") == "T1(R=Y%DF=Y%TG=40%S=O%A=S+%F=AS%RD=0%Q=)"
    assert fp.line("U1") == "U1(R=N)"


def test_distance_from_u1_makes_initial_ttls_exact() -> None:
    plan, sent, got = linux_round(ttl=62)
    # A router between decrements the quoted copy's TTL too: rebuild by shifting udp_ttl.
    fp = build_fingerprint(plan, sent, got)
    assert fp.tests["T1"]["T"] == f"{62 + fp.distance - 1:X}"  # type: ignore[operator]


def test_printed_form_wraps_like_nmap() -> None:
    plan, sent, got = linux_round()
    fp = build_fingerprint(plan, sent, got)
    info = ScanInfo("7.93", "198.18.1.10", 22, 1, 40000, 1, "D", True, "02:4c:11:00:00:10", 1_800_000_000.0)
    text = merged_fingerprint(info, [fp, fp])
    lines = text.splitlines()
    assert all(line.startswith("OS:") for line in lines)
    assert all(len(line) == 75 for line in lines[:-1]) and len(lines[-1]) <= 75
    flat = "".join(line[3:] for line in lines)
    assert flat.startswith("SCAN(V=7.93%E=4%D=") and "%OT=22%CT=1%CU=40000%PV=N%DS=1%DC=D%G=Y%M=024C11%TM=" in flat
    assert flat.count("T1(") == 1  # identical tests of two rounds are written once
    assert wrap("x" * 73) == "OS:" + "x" * 72 + "\nOS:x"


def test_helpers() -> None:
    assert [initial_ttl(t) for t in (30, 64, 100, 128, 200)] == [32, 64, 128, 128, 255]
    assert difficulty(261) == "Good luck!" and difficulty(2) == "Trivial joke" and difficulty(11) == "Formidable"
    assert ts_option(bytes.fromhex("0101080a0000000500000000")) == 5
    assert ts_option(bytes.fromhex("020405b4")) is None
