"""OS detection against nmap's, host by host, in the practice lab.

nmap -O and leadline -O (both with nmap's database and --osscan-guess, so
both name a best guess even when nothing matches exactly) run in the
same scanner namespace against hosts with three different stacks: the
course server (Linux as it comes), ``desktop`` (TTL 128, no timestamps,
SACK or window scaling) and ``gear`` (TTL 255), and the far host two
routers away.  For each host:

* the best match's class (vendor, family, generation) is nmap's;
* every test line of the fingerprint is nmap's, except the values that
  are random by nature: the SEQ test's SP, GCD and ISR (ISN-derived) and
  TS (Linux offsets timestamps at random per connection);
* the ports used and the distance are nmap's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from leadline.lab import Lab, practice
from tests.conftest import scan_in_lab
from tests.oracle.osxml import OsReport, fingerprint_tests, read_os

pytestmark = [pytest.mark.lab, pytest.mark.oracle, pytest.mark.serial]  # fingerprints measure timing: alone, as nmap is run

LEADLINE = str(Path(sys.executable).parent / "leadline")
HOSTS = [practice.COURSE, practice.DESKTOP, practice.GEAR, practice.FAR]
PORTS = "1,22,23,80,3389,50007"
RANDOM_SEQ = ("SP", "GCD", "ISR", "TS")


def _run(lab: Lab, argv: list[str], out: str) -> dict[str, OsReport]:
    done = scan_in_lab(lab, [*argv, "-O", "--osscan-guess", "-n", "-Pn", "-p", PORTS, "-oX", out, *HOSTS],
                       timeout=240)
    assert done.returncode == 0, done.stderr
    text = lab.run(lab.scanner, ["cat", out], timeout=10).stdout
    return read_os(text)


@pytest.fixture(scope="module")
def both(practice_lab: Lab) -> tuple[dict[str, OsReport], dict[str, OsReport]]:
    nmap = _run(practice_lab, ["nmap", "-d"], "/tmp/leadline-os-nmap.xml")
    ours = _run(practice_lab, [LEADLINE, "--osdb", "nmap"], "/tmp/leadline-os-ours.xml")
    return nmap, ours


def _stable(tests: list[str]) -> set[str]:
    """Test lines with the random-by-nature SEQ values blanked; the SCAN line dropped."""
    out = set()
    for test in tests:
        if test.startswith("SCAN("):
            continue
        if test.startswith("SEQ("):
            values = [v for v in test[4:-1].split("%") if v.split("=")[0] not in RANDOM_SEQ]
            test = "SEQ(" + "%".join(values) + ")"
        out.add(test)
    return out


@pytest.mark.parametrize("address", HOSTS)
def test_best_class_is_nmaps(both: tuple[dict[str, OsReport], dict[str, OsReport]], address: str) -> None:
    nmap, ours = both
    if not nmap[address].matches:
        pytest.fail(f"nmap made no guess for {address}; the lab no longer tests what it should")
    if ours[address].best_class == nmap[address].best_class:
        return
    # nmap's own first place may be a tie at the accuracy it shows (the far host: Linux 3.2 and Linux
    # 5.3 - 5.4, both 95%, ordered by random ISN-derived values that differ from run to run): then our
    # best match must be one of nmap's tied first and score about what nmap shows for them.  The
    # random SEQ values (SP, GCD, ISR, TS: 225 of the 4,055 points of nmap-os-db's MatchPoints) fall
    # inside or outside a reference range from run to run in either tool, which moves the shown
    # accuracy by a few points (a CI run: nmap 91 for the three tied, ours 93 for one of them).
    top = nmap[address].matches[0][1]
    tied = {name for name, accuracy in nmap[address].matches if accuracy == top}
    best, accuracy = ours[address].matches[0]
    assert len(tied) > 1 and best in tied and abs(accuracy - top) <= 3, (nmap[address].matches[:5], ours[address].matches[:5])


@pytest.mark.parametrize("address", HOSTS)
def test_fingerprint_lines_are_nmaps(both: tuple[dict[str, OsReport], dict[str, OsReport]], address: str) -> None:
    nmap, ours = both
    theirs, mine = nmap[address].fingerprint, ours[address].fingerprint
    assert theirs and mine
    assert _stable(fingerprint_tests(mine)) == _stable(fingerprint_tests(theirs))


@pytest.mark.parametrize("address", HOSTS)
def test_ports_used_and_distance_are_nmaps(both: tuple[dict[str, OsReport], dict[str, OsReport]], address: str) -> None:
    nmap, ours = both
    tcp = lambda r: [p for p in r.ports_used if p[1] == "tcp"]  # noqa: E731 - the UDP port nmap picks is random
    assert tcp(ours[address]) == tcp(nmap[address])
    assert ours[address].distance == nmap[address].distance
