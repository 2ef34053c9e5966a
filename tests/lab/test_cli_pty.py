"""Runtime interaction on a real terminal: keys, --stats-every, the progress line's counts.

leadline runs on a pseudo-terminal in a namespace this test makes (loopback
only, no route out) and connect-scans that namespace's own loopback at a
capped rate, so the scan lasts a few seconds and nothing leaves it.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator

import pytest

pytestmark = [pytest.mark.lab]

NS = f"nuk{os.getpid() % 100000}"
SCAN = ["-sT", "-Pn", "-n", "-p", "1-3000", "--max-rate", "400", "127.0.0.1"]


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.fail("needs root (network namespaces)")
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        subprocess.run(["ip", "-n", NS, "link", "set", "lo", "up"], check=True)
        yield NS
    finally:
        subprocess.run(["ip", "netns", "del", NS], check=False)


class Terminal:
    """leadline on a pty: what it wrote so far, keys typed to it."""

    def __init__(self, argv: list[str], netns: str) -> None:
        self.master, slave = pty.openpty()
        env = {k: v for k, v in os.environ.items() if k != "CI"}
        self.proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-m", "leadline", *argv],
                                     stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        self.text = ""

    def read_until(self, pattern: str, limit: float = 20.0) -> re.Match[str]:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text)
            if found:
                return found
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.text += os.read(self.master, 65536).decode("utf-8", "replace")
                except OSError:
                    break
        raise AssertionError(f"{pattern!r} not seen in {self.text[-2000:]!r}")

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def finish(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.read_until(r"leadline done", 20)
        except AssertionError:
            pass
        code = self.proc.wait(timeout=20)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def test_keys_print_status_and_change_verbosity_without_echo(netns: str) -> None:
    term = Terminal(SCAN, netns)
    try:
        term.read_until(r"Connect Scan: \d")  # the progress line is up
        term.type("v")
        term.read_until(r"Verbosity Increased to 1\.")
        term.type("\n")
        status = term.read_until(r"Stats: \d+:\d\d:\d\d elapsed; 0 hosts completed \(0 up\), 1 undergoing Connect Scan"
                                 r"\r?\nConnect Scan Timing: About \d+\.\d\d% done")
        before = term.text[: status.start()]
        assert "v" not in re.sub(r"[^\n]*(Verbosity|Connect Scan|Starting|leadline)[^\n]*", "", before)  # no echo
        term.type("d")
        term.read_until(r"Debugging Increased to 1\.")
        assert term.finish() == 130
        mode = termios.tcgetattr(term.master)
        assert mode[3] & termios.ECHO and mode[3] & termios.ICANON  # the terminal is given back as it was
    finally:
        term.close()


def test_stats_every_prints_stats_lines_at_the_interval(netns: str) -> None:
    term = Terminal(["--stats-every", "1s", *SCAN], netns)
    try:
        term.read_until(r"(Stats: .*\n(.|\n)*){3}", 25)
        assert term.finish() == 130
    finally:
        term.close()
    stamps = re.findall(r"Stats: (\d+):(\d\d):(\d\d) elapsed", term.text)
    seconds = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in stamps]
    assert len(seconds) >= 3 and seconds == sorted(seconds) and seconds[-1] - seconds[0] >= len(seconds) - 3


def test_stats_every_works_when_output_is_not_a_terminal(netns: str) -> None:
    done = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-m", "leadline", "--stats-every", "500ms",
                           "-sT", "-Pn", "-n", "-p", "1-1200", "--max-rate", "600", "127.0.0.1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(re.findall(r"^Stats: ", done.stdout, re.M)) >= 2
    assert re.search(r"^Connect Scan Timing: About \d+\.\d\d% done", done.stdout, re.M)


def test_open_ports_are_counted_and_announced_as_found(netns: str) -> None:
    """The progress line's count and -v's "Discovered open port" lines, end to end.

    The sinks' side is tested in tests/unit/test_output_newuser.py; this
    needs the pipeline to call ``sink.port_found`` as each port is decided.
    """
    listener = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c",
                                 "import socket,time\n"
                                 "s=[socket.create_server(('127.0.0.1',p)) for p in (2101,2102)]\n"
                                 "time.sleep(60)"])
    try:
        time.sleep(0.5)
        term = Terminal(["-v", "-sT", "-Pn", "-n", "-p", "2000-2200,1-1500", "--max-rate", "300", "-r", "127.0.0.1"],
                        netns)
        try:
            term.read_until(r"Discovered open port 2102/tcp on 127\.0\.0\.1", 30)
            term.read_until(r"2 open ports found", 30)
            term.finish()
        finally:
            term.close()
    finally:
        listener.kill()
        listener.wait()
