"""Scanning localhost by name, as the course handouts do (`nmap localhost -Pn -sT -p 8000`).

Runs in the practice lab's scanner namespace, whose loopback is its own: the
only listener there is the one this test opens.  nmap, run the same way, is
the oracle for every line that matters.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from leadline.lab import Lab

pytestmark = [pytest.mark.lab]

LEADLINE = str(Path(sys.executable).parent / "leadline")
PORT = 8000
_SCRIPT = r'''
import socket, subprocess, sys
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(16)
done = subprocess.run(sys.argv[2:], capture_output=True, text=True, timeout=60)
listener.close()
sys.stdout.write(done.stdout)
sys.stderr.write(done.stderr)
raise SystemExit(done.returncode)
'''


def _lines_that_matter(output: str) -> list[str]:
    keep = ("scan report for", "Host is up", "/tcp", "PORT")
    lines = [line for line in output.splitlines() if line.startswith(keep) or "Failed to resolve" in line]
    # Latencies differ from run to run; the rest must not.
    return [line.split(" (0.")[0] if line.startswith("Host is up") else line for line in lines]


@pytest.mark.parametrize("argv", [["localhost", "-Pn", "-sT", "-p", str(PORT)],
                                  ["localhost", "-p", f"25,{PORT}"],
                                  ["-sT", "--reason", "-p", f"24-25,{PORT}", "localhost"]])
def test_localhost_by_name_gives_nmaps_report(practice_lab: Lab, argv: list[str]) -> None:
    ours = practice_lab.run(practice_lab.scanner, [sys.executable, "-c", _SCRIPT, str(PORT), LEADLINE, *argv], timeout=90)
    theirs = practice_lab.run(practice_lab.scanner, [sys.executable, "-c", _SCRIPT, str(PORT), "nmap", *argv], timeout=90)
    assert ours.returncode == 0 and theirs.returncode == 0, ours.stderr + theirs.stderr
    assert "Failed to resolve" not in ours.stderr
    assert "leadline scan report for localhost (127.0.0.1)" in ours.stdout
    assert _lines_that_matter(ours.stdout) == [line.replace("Nmap scan report", "leadline scan report")
                                               for line in _lines_that_matter(theirs.stdout)]


def test_the_system_resolver_is_asked_with_the_right_family() -> None:
    from leadline.engines.resolve import resolve_name

    assert "127.0.0.1" in resolve_name("localhost", 4)
    assert resolve_name("localhost", 4) == resolve_name("localhost", __import__("socket").AF_INET)
    assert subprocess.run([LEADLINE, "-sL", "-n", "localhost"], capture_output=True, text=True, timeout=30).stdout.count(
        "leadline scan report for localhost (127.0.0.1)") == 1


def test_names_that_do_not_resolve_get_nmaps_warnings(practice_lab: Lab) -> None:
    # In the scanner namespace, which has no route out: a name nobody can answer for.
    done = practice_lab.run(practice_lab.scanner, [LEADLINE, "-sL", "-n", "no-such-host.invalid"], timeout=60)
    assert done.returncode == 0
    assert done.stderr.splitlines() == ['Failed to resolve "no-such-host.invalid".',
                                        "WARNING: No targets were specified, so 0 hosts scanned."]
    assert "0 IP addresses (0 hosts up)" in done.stdout
