"""nmap's -sI and leadline's through the same zombie (the lab's legacy device): the same state and
reason for every port of the course server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from leadline.lab import Lab, practice
from leadline.lab.legacy import LEGACY
from tests.conftest import scan_in_lab
from tests.oracle.nmapxml import diff_states, read_states

pytestmark = [pytest.mark.lab, pytest.mark.oracle, pytest.mark.serial]  # the zombie has one IP ID counter: any other scan of the lab beside it would move it

LEADLINE = str(Path(sys.executable).parent / "leadline")


def test_idle_scan_states_equal_nmaps(practice_lab: Lab) -> None:
    argv = ["-sI", LEGACY, "-Pn", "-n", "-p", "1-1024,49990-50010", "-oX", "-", practice.COURSE]
    theirs = scan_in_lab(practice_lab, ["nmap", *argv], timeout=300)
    ours = scan_in_lab(practice_lab, [LEADLINE, *argv], timeout=300)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    mine, nmaps = read_states(ours.stdout)[practice.COURSE], read_states(theirs.stdout)[practice.COURSE]
    assert len(mine.ports) == 1045
    assert diff_states(mine, nmaps) == []
    assert mine.ports[("tcp", practice.COURSE_HTTP_PORT)] == ("open", "ipid-change")
