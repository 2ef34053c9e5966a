"""The nmap-os-db reader, the expression matcher and nmap's scoring, on small databases written here."""

from __future__ import annotations

import os

import pytest

from leadline.detect.os.database import NMAP_OS_DB, load_os_db, parse_os_db
from leadline.detect.os.expr import expr_match
from leadline.detect.os.match import accuracy, match_fingerprint

DB = """\
# a test database
MatchPoints
SEQ(SP=25%GCD=75%ISR=25%TI=100%CI=50%II=100%SS=80%TS=100)
OPS(O1=20%O2=20%O3=20%O4=20%O5=20%O6=20)
T1(R=100%DF=20%T=15%TG=15%S=20%A=20%F=30%RD=20%Q=20)
T2(R=80%DF=20%T=15%TG=15%W=25%S=20%A=20%F=30%O=10%RD=20%Q=20)

Fingerprint Alpha 1.0
Class Alpha | AlphaOS | 1.X | general purpose
CPE cpe:/o:alpha:alphaos:1 auto
SEQ(SP=0-5%GCD=1-6%TI=Z%TS=A)
OPS(O1=M[>500]ST11W[1-7])
T1(DF=Y%T=3B-45%TG=40%S=O%A=S+%F=AS%RD=0%Q=)
T2(R=N)

Fingerprint Beta 2
Class Beta | BetaOS || router
Class Beta | BetaOS | 2.X | router
SEQ(R=N)
T1(R=Y%DF=N%T=FA-104%TG=FF%S=O%A=S+%F=AS%RD=0%Q=)
"""


@pytest.mark.parametrize("value,expr,nested,expected", [
    ("40", "3B-45", False, True), ("46", "3B-45", False, False), ("3B", "3b-45", False, True),
    ("A", ">5", False, True), ("5", ">5", False, False), ("4", "<5", False, True), ("0040", "40", False, True),
    ("", "", False, True), ("", "|Z", False, True), ("Z", "", False, False), ("S+", "S|S+|O", False, True),
    ("A+", "A", False, False), ("AS", "AS|AR", False, True), ("M5B4ST11W7", "M[>500]ST11W[1-7]", True, True),
    ("M1F4ST11W7", "M[>500]ST11W[1-7]", True, False), ("M5B4ST11W8", "M[>500]ST11W[1-7]", True, False),
    ("M5B4ST11W7", "M5B4ST11W7|M[>500]ST11W[1-7]", True, True), ("M5B4NW7", "M[>500]ST11W[1-7]|M5B4NW7", True, True),
    ("M5B4ST11W7X", "M[>500]ST11W[1-7]", True, False),
])
def test_expressions(value: str, expr: str, nested: bool, expected: bool) -> None:
    assert expr_match(value, expr, nested) is expected


def test_parse() -> None:
    db = parse_os_db(DB)
    assert db.points["T1"]["R"] == 100 and db.points["SEQ"]["TI"] == 100
    alpha, beta = db.references
    assert alpha.name == "Alpha 1.0" and alpha.line == 8
    assert alpha.classes[0].cpes == ("cpe:/o:alpha:alphaos:1",) and alpha.classes[0].generation == "1.X"
    assert alpha.tests["T1"]["R"] == "Y"  # values without R mean an answer
    assert alpha.tests["T2"] == {"R": "N"}
    assert beta.tests["SEQ"] == {} and beta.classes[0].generation is None and len(beta.classes) == 2


@pytest.mark.parametrize("bad,words", [
    (DB.replace("T1(DF=Y", "T9(DF=Y"), "line 13: unknown test 'T9'"),
    (DB.replace("%Q=)\nT2(R=N)", "%ZZ=1)\nT2(R=N)"), "unknown attribute 'ZZ'"),
    (DB.replace("Class Alpha | AlphaOS | 1.X | general purpose", "Class Alpha AlphaOS"), "four fields"),
    (DB.replace("MatchPoints\n", ""), "outside any Fingerprint"),
    ("Fingerprint X\n", "no MatchPoints"),
])
def test_bad_files_are_named_in_one_line(bad: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as info:
        parse_os_db(bad, "mydb")
    assert "\n" not in str(info.value) and "mydb" in str(info.value)


def test_scoring() -> None:
    db = parse_os_db(DB)
    observed = {"SEQ": {"SP": "3", "GCD": "1", "TI": "Z", "TS": "A", "II": "I"},
                "OPS": {"O1": "M5B4ST11W7"},
                "T1": {"R": "Y", "DF": "Y", "T": "40", "S": "O", "A": "S+", "F": "AS", "RD": "0", "Q": ""},
                "T2": {"R": "N"}}
    alpha, beta = db.references
    assert accuracy(alpha, observed, db.points) == 1.0
    # Beta: only T1 compares (SEQ R=N has nothing, TG was not observed); DF (20) and T (15) differ.
    assert accuracy(beta, observed, db.points) == pytest.approx(210 / 245)
    result = match_fingerprint(observed, db)
    assert [r.name for r, _ in result.matches] == ["Alpha 1.0", "Beta 2"] and result.perfect == 1
    assert result.classes[0][0].family == "AlphaOS" and result.class_perfect == 1
    assert [r.name for r, _ in match_fingerprint(observed, db, threshold=0.9).matches] == ["Alpha 1.0"]


def test_our_database_parses() -> None:
    db = load_os_db("leadline")
    assert len(db.references) >= 14
    families = {c.family for r in db.references for c in r.classes}
    assert {"Linux", "Windows", "macOS", "iOS", "FreeBSD", "OpenBSD", "IOS"} <= families


def test_nmap_database_when_installed() -> None:
    if not os.path.exists(NMAP_OS_DB):
        pytest.fail("nmap is a test dependency (make deps installs it)")
    db = load_os_db(NMAP_OS_DB)
    assert len(db.references) > 1000 and "MatchPoints" not in {r.name for r in db.references}


def test_unreadable_path() -> None:
    with pytest.raises(ValueError, match="cannot read the OS database /nonexistent/db"):
        load_os_db("/nonexistent/db")
