"""Bad input: one clear line naming what is wrong, a non-zero exit, never a traceback.

These run the real ``leadline`` executable; none of them sends a packet
(every case fails before a scan starts), and each runs in a network
namespace of its own with no interface up, so that stays true even if
a check ever let a case through to scanning.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

LEADLINE = str(Path(sys.executable).parent / "leadline")


ISOLATED = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--net"]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ISOLATED, LEADLINE, *argv], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["-sT", "-p", "22", "198.18.1.300"], "198.18.1.300"),
        (["-sT", "-p", "22", "198.18.1.0/33"], "198.18.1.0/33"),
        (["-sT", "-p", "22", "198.18.1-x.1"], "198.18.1-x.1"),
        (["-sT", "-p", "70000", "198.18.1.10"], "70000"),
        (["-sT", "-p", "80-20", "198.18.1.10"], "80-20"),
        (["-sT", "-p", "U:abc", "198.18.1.10"], "abc"),
        (["-sT", "-p", "nosuchservicename", "198.18.1.10"], "nosuchservicename"),
        (["-sT", "-iL", "/nonexistent/targets.txt"], "/nonexistent/targets.txt"),
        (["-sT", "--excludefile", "/nonexistent/ex.txt", "198.18.1.10"], "/nonexistent/ex.txt"),
        (["-sQ", "198.18.1.10"], "-sQ"),
        (["--no-such-flag", "198.18.1.10"], "--no-such-flag"),
        (["-T9", "198.18.1.10"], "-T9"),
        (["-sU", "--data-length", "99999", "-p", "53", "198.18.1.10"], "--data-length"),
        (["-sU", "--data", "0xabc", "-p", "53", "198.18.1.10"], "0xabc"),
        (["-sU", "--data", "zz", "-p", "53", "198.18.1.10"], "--data"),
        (["-sU", "--data-string", "x", "--data-length", "3", "-p", "53", "198.18.1.10"], "only one of --data"),
        (["-sU", "--source-pool", "198.18.1.300", "-p", "53", "198.18.1.10"], "198.18.1.300"),
        (["-sU", "--source-pool", "10.0.0.0/8", "-p", "53", "198.18.1.10"], "10.0.0.0/8"),
        (["-sT"], "no targets"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(argv: list[str], needle: str) -> None:
    r = run(*argv)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("leadline: ")
    assert needle in lines[0]
    assert "Traceback" not in r.stderr + r.stdout


def test_unreadable_input_file(tmp_path: Path) -> None:
    f = tmp_path / "targets.txt"
    f.write_text("198.18.1.10\n")
    f.chmod(0)
    # root reads mode-0 files; a directory is unreadable as a list for everyone.
    r = run("-sT", "-iL", str(tmp_path))
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1 and str(tmp_path) in r.stderr


def test_help_and_version() -> None:
    r = run("-h")
    assert r.returncode == 0
    for group in ("TARGET SPECIFICATION:", "HOST DISCOVERY:", "SCAN TECHNIQUES:", "TIMING AND PERFORMANCE:", "OUTPUT:"):
        assert group in r.stdout
    assert run("-V").stdout.startswith("leadline version ")


def test_raw_scan_without_root_is_one_line(unprivileged_leadline: list[str]) -> None:
    r = subprocess.run(
        [*unprivileged_leadline, "-sS", "-p", "22", "198.18.1.10"],
        capture_output=True, text=True, timeout=30, cwd="/",
    )
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs root privileges" in lines[0], r.stderr
