"""leadline -sT against nmap -sT, port by port, in the practice lab.

nmap (Debian's package) runs in the same scanner namespace against the
same targets with the same flags; every port's state and reason must be
equal.  A difference is printed port by port.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from leadline.lab import practice
from tests.conftest import scan_in_lab
from tests.oracle.nmapxml import diff_states, read_states

pytestmark = [pytest.mark.lab, pytest.mark.oracle]

LEADLINE = str(Path(sys.executable).parent / "leadline")


def both(lab, flags: list[str], targets: list[str], timeout: float = 240):  # type: ignore[no-untyped-def]
    theirs = scan_in_lab(lab, ["nmap", *flags, "-oX", "-", *targets], timeout=timeout)
    assert theirs.returncode == 0, theirs.stderr
    ours = scan_in_lab(lab, [LEADLINE, *flags, "-oX", "-", *targets], timeout=timeout)
    assert ours.returncode == 0, ours.stderr
    return read_states(ours.stdout), read_states(theirs.stdout)


def assert_same_ports(ours, theirs, address: str, expect_ports: int) -> None:  # type: ignore[no-untyped-def]
    assert address in theirs and address in ours
    assert len(theirs[address].ports) == expect_ports
    assert len(ours[address].ports) == expect_ports
    differences = diff_states(ours[address], theirs[address])
    assert not differences, "\n".join(differences[:40])


def test_course_server_all_ports(practice_lab) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = both(practice_lab, ["-sT", "-p-", "-n", "-Pn"], [practice.COURSE])
    assert_same_ports(ours, theirs, practice.COURSE, 65535)
    states = ours[practice.COURSE].ports
    assert states[("tcp", 50007)] == ("open", "syn-ack")
    assert states[("tcp", 50003)] == ("filtered", "no-response")
    assert states[("tcp", 22)] == ("closed", "conn-refused")


def test_windows_like_top_1000(practice_lab) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = both(practice_lab, ["-sT", "-n", "-Pn", "-T4"], [practice.WINDOWS])
    assert_same_ports(ours, theirs, practice.WINDOWS, 1000)
    opened = sorted(p for (proto, p), (s, _) in ours[practice.WINDOWS].ports.items() if s == "open")
    assert opened == [135, 139, 445, 3389, 5357]


def test_firewall_host(practice_lab) -> None:  # type: ignore[no-untyped-def]
    ports = "1-1024,8080"
    ours, theirs = both(practice_lab, ["-sT", "-n", "-Pn", "-p", ports], [practice.FIREWALL])
    assert_same_ports(ours, theirs, practice.FIREWALL, 1025)
    reasons = {r for (s, r) in ours[practice.FIREWALL].ports.values()}
    assert {"syn-ack", "conn-refused", "no-response"} <= reasons


def test_far_host_through_two_routers(practice_lab) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = both(practice_lab, ["-sT", "-n", "-Pn", "-p", "1-1024"], [practice.FAR])
    assert_same_ports(ours, theirs, practice.FAR, 1024)


def test_unprivileged_ping_sweep_finds_the_same_hosts(practice_lab) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = both(practice_lab, ["--unprivileged", "-sn", "-n"], [practice.LAN])
    up_theirs = sorted(a for a, h in theirs.items() if h.status == "up")
    up_ours = sorted(a for a, h in ours.items() if h.status == "up")
    assert up_ours == up_theirs
    assert practice.COURSE in up_ours and practice.NO_HOST not in up_ours
