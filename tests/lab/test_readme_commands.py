"""The README's commands, copied as written, work after `make demo`.

The "Using it" block runs in one shell, in a fresh directory that holds
only a link to the installation (`.venv`, as `make demo` leaves it), with
a PATH that has no leadline on it, so the block's own first line is what
makes `leadline` found.  The lab it builds uses this test's own prefix
(LEADLINE_LAB_PREFIX=nur), not the default one, and is removed by the
block's last line (and again by the test, whatever happened).  The
Python example runs inside that lab before it goes down.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import lab_prefix

pytestmark = [pytest.mark.lab]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PREFIX = lab_prefix("ur")


def _block(after: str, language: str) -> str:
    text = README.read_text()
    section = text[text.index(after):]
    found = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert found, f"no {language} block after {after!r}"
    return found.group(1)


def _commands() -> list[str]:
    lines = [line.split("  #")[0].strip() for line in _block("## Using it", "sh").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_readme_commands_run_as_written(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("the lab needs root")
    commands = _commands()
    assert commands[0].startswith("export PATH=") and commands[-1] == "leadline lab down"
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    (tmp_path / "example.py").write_text(_block("From Python:", "python"))
    python_step = f"leadline lab exec {sys.executable} example.py"
    script = "set -e\n" + "\n".join([*commands[:-1], python_step, commands[-1]]) + "\n"
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if p != venv_bin)
    env = {**os.environ, "PATH": path, "LEADLINE_LAB_PREFIX": PREFIX, "SHELL": "/bin/sh", "CI": "true"}
    env.pop("VIRTUAL_ENV", None)
    try:
        done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, input="leadline -V\nexit\n",
                              capture_output=True, text=True, timeout=600)
    finally:
        subprocess.run([sys.executable, "-m", "leadline", "lab", "down", "--prefix", PREFIX],
                       capture_output=True, timeout=120)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    out = done.stdout
    assert "50007/tcp open" in out  # the -p- connect scan of the course server
    assert re.search(r"leadline done: 256 IP addresses \(\d+ hosts up\)", out)  # the -sn sweep
    assert "leadline version" in out  # typed into `lab shell`
    assert re.search(r"^50007 \S+ syn-ack$", out, re.M)  # the Python example prints the open ports
    assert f"lab {PREFIX} removed" in out
    for suffix in ("nmap", "xml", "gnmap"):
        assert (tmp_path / f"course.{suffix}").stat().st_size > 0
