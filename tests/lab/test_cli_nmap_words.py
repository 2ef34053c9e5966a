"""nmap's warnings and refusals, side by side with nmap itself.

Refusals that happen while parsing send nothing, so both tools run
directly (with ``-n`` and, where a target is needed, ``-sL``).  Cases
that start a scan run in a namespace this test makes: loopback only, no
route anywhere, so every probe fails at once and nothing leaves it.
Exit status: nmap ends every refusal with 1, leadline with its usage
code 2; what is compared is that both refuse, and the words.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

pytestmark = [pytest.mark.lab]

LEADLINE = [sys.executable, "-m", "leadline"]
NS = f"nuw{os.getpid() % 100000}"


def _run(argv: list[str], netns: str | None = None) -> subprocess.CompletedProcess[str]:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "CI": "true"})


@pytest.fixture(scope="module")
def empty_netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.fail("these comparisons need root (network namespaces)")
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        subprocess.run(["ip", "-n", NS, "link", "set", "lo", "up"], check=True)
        routes = subprocess.run(["ip", "-n", NS, "route", "show"], capture_output=True, text=True, check=True)
        assert routes.stdout.strip() == ""  # no route out: nothing can leave
        yield NS
    finally:
        subprocess.run(["ip", "netns", "del", NS], check=False)


def _lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.strip() for line in (done.stdout + done.stderr).splitlines()]


@pytest.mark.parametrize("args, words", [
    (["-sL", "-sS", "198.18.1.1"], "-sL and -sn (skip port scan) are not valid with any other scan types"),
    (["-sn", "-sT", "198.18.1.1"], "-sL and -sn (skip port scan) are not valid with any other scan types"),
    (["-sL", "--min-hostgroup", "5", "--max-hostgroup", "1", "198.18.1.1"],
     "Maximum host group size may not be set to less than the minimum size (currently 5)"),
    (["-sL", "-p", "80", "198.18.1.1"],
     "You cannot use -F (fast scan) or -p (explicit port selection) when not doing a port scan"),
    (["-p", "198.18.1.20"], "Your port specifications are illegal."),
    (["-sL", "\u2014sT", "198.18.1.1"], "Unparseable option (dash, not '-') in argument 3"),
])
def test_refusals_match_nmap(args: list[str], words: str) -> None:
    nmap = _run(["nmap", "-n", *args])
    ours = _run([*LEADLINE, "-n", *args])
    assert nmap.returncode != 0 and any(words in line for line in _lines(nmap)), nmap.stdout + nmap.stderr
    assert ours.returncode != 0, ours.stdout
    assert ours.stderr.count("\n") == 1 and words in ours.stderr and "Traceback" not in ours.stderr


def test_verbosity_and_debugging_levels_are_accepted_like_nmap() -> None:
    for flag in ("-v10", "-d5"):
        nmap = _run(["nmap", "-n", "-sL", flag, "198.18.1.1"])
        ours = _run([*LEADLINE, "-n", "-sL", flag, "198.18.1.1"])
        assert nmap.returncode == 0 and ours.returncode == 0, ours.stderr


@pytest.mark.parametrize("args, warnings", [
    (["-sT", "-p", "U:53"], ['WARNING: Your ports include "U:" but you haven\'t specified UDP scan with -sU.',
                             "WARNING: a TCP scan type was requested, but no tcp ports were specified.  "
                             "Skipping this scan type."]),
    (["-sT", "--exclude-ports", "1-65535"], ["WARNING: a TCP scan type was requested, but no tcp ports were "
                                             "specified.  Skipping this scan type."]),
    # as root, as the flag is meant (unprivileged, nmap words the second line differently)
    (["--privileged", "-sT", "--scanflags", "SYN", "-p", "80"], ["You have specified some options that require raw socket access.",
                                                 "These options will not be honored for TCP Connect scan."]),
    (["-sT", "-p", "80"], ["Note: Host seems down. If it is really up, but blocking our ping probes, try -Pn"]),
    (["-sn"], ["Note: Host seems down. If it is really up, but blocking our ping probes, try -Pn"]),
])
def test_warnings_match_nmap(empty_netns: str, args: list[str], warnings: list[str]) -> None:
    argv = ["-n", *(args if "--privileged" in args else ["--unprivileged", *args]), "198.18.1.1"]
    nmap = _run(["nmap", *argv], empty_netns)
    ours = _run([*LEADLINE, *argv], empty_netns)
    assert nmap.returncode == ours.returncode == 0, ours.stderr
    for line in warnings:
        assert line in _lines(nmap), nmap.stdout + nmap.stderr
        assert line in _lines(ours), ours.stdout + ours.stderr


def test_no_ping_hint_with_Pn_or_two_hosts(empty_netns: str) -> None:
    for argv in (["-Pn", "-sT", "-p", "80", "198.18.1.1"], ["-sT", "-p", "80", "198.18.1.1-2"]):
        full = ["-n", "--unprivileged", *argv]
        nmap, ours = _run(["nmap", *full], empty_netns), _run([*LEADLINE, *full], empty_netns)
        assert "Host seems down" not in nmap.stdout and "Host seems down" not in ours.stdout


@pytest.mark.parametrize("timing", [[], ["-T4", "--max-rate", "100", "--max-parallelism", "7", "--host-timeout", "5s"],
                                    ["-T5", "--min-hostgroup", "4", "--max-hostgroup", "9", "--max-scan-delay", "20ms"]])
def test_debugging_prints_nmaps_timing_report(timing: list[str]) -> None:
    def report(done: subprocess.CompletedProcess[str]) -> list[str]:
        lines = done.stdout.splitlines()
        start = lines.index("--------------- Timing report ---------------")
        return lines[start:start + 8]

    args = ["-n", "-sL", "-d", *timing, "198.18.1.1"]
    nmap, ours = _run(["nmap", *args]), _run([*LEADLINE, *args])
    assert report(ours) == report(nmap)
