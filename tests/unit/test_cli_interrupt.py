"""Two quick Ctrl-Cs: every output file is complete for every host the terminal printed.

A list scan without DNS sends nothing and writes hosts as fast as the
outputs take them, so the second interrupt nearly always lands while a
host is being written: exactly the case that used to leave a host in
one file and not in another.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

LEADLINE = [sys.executable, "-m", "leadline"]


def _wait_for_output(path: Path, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > 20000:
            return
        time.sleep(0.005)
    raise AssertionError("the scan wrote nothing")


@pytest.mark.parametrize("gap", [0.0, 0.002, 0.01, 0.03, 0.05])
def test_double_interrupt_leaves_every_file_complete(tmp_path: Path, gap: float) -> None:
    base = tmp_path / "run"
    normal = tmp_path / "terminal.txt"
    argv = [*LEADLINE, "-sL", "-n", "-oA", str(base), "-oJ", f"{base}.json", "10.0.0.0/10"]
    with open(normal, "w") as terminal:
        proc = subprocess.Popen(argv, stdout=terminal, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "CI": "true"})
        try:
            _wait_for_output(Path(f"{base}.gnmap"))
            proc.send_signal(signal.SIGINT)
            time.sleep(gap)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    printed = [line.split()[-1] for line in normal.read_text().splitlines() if line.startswith("leadline scan report for")]
    doc = json.loads(Path(f"{base}.json").read_text())
    assert doc["runstats"]["exit"] == "error"
    xml_root = ET.parse(f"{base}.xml").getroot()
    assert xml_root.find("runstats/finished").get("exit") == "error"  # type: ignore[union-attr]
    grepable = Path(f"{base}.gnmap").read_text().splitlines()
    nmap_file = Path(f"{base}.nmap").read_text().splitlines()
    assert grepable[-1].startswith("# leadline done at") and "# QUITTING! interrupted" in grepable
    assert nmap_file[-1].startswith("# leadline done at")
    in_json = [h["address"] for h in doc["hosts"]]
    in_xml = [h.find("address").get("addr") for h in xml_root.findall("host")]  # type: ignore[union-attr]
    in_gnmap = [line.split()[1] for line in grepable if line.startswith("Host: ")]
    in_nmap = [line.split()[-1] for line in nmap_file if line.startswith("leadline scan report for")]
    assert printed  # the scan did report hosts before the interrupts
    assert in_json == in_xml == in_gnmap == in_nmap == printed


class _Recorder:
    """A sink that records hosts; optionally presses Ctrl-C while it writes one."""

    def __init__(self, press: bool = False) -> None:
        self.hosts: list[str] = []
        self.press = press
        self.ended = False

    def host(self, host: object) -> None:
        if self.press:
            signal.raise_signal(signal.SIGINT)  # the handler runs here, mid-event
        self.hosts.append(host.address)  # type: ignore[attr-defined]

    def end(self, stats: object) -> None:
        self.ended = True


def test_second_interrupt_mid_event_waits_until_every_sink_has_it() -> None:
    import threading

    from leadline.cli.main import GuardedSinks, _install_interrupt
    from tests.unit.test_output_samples import stats, up_host

    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    first, second = _Recorder(press=True), _Recorder()
    sinks = GuardedSinks([first, second], threading.RLock())  # type: ignore[list-item]
    stop = threading.Event()
    try:
        _install_interrupt(stop, sinks)
        signal.raise_signal(signal.SIGINT)  # the first Ctrl-C: stop cleanly
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            sinks.host(up_host())  # the second arrives while the first sink writes
        assert first.hosts == second.hosts == ["198.18.201.2"]
        sinks.end(stats())
        assert first.ended and second.ended
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])


def test_an_interrupt_after_every_file_is_closed_leaves_with_130_and_no_traceback() -> None:
    # The scan ended on the first Ctrl-C and wrote everything; the second lands on the way out,
    # after run() returned: once the files are closed there is nothing to unwind, so it leaves at once.
    code = (
        "import os, signal, threading, time\n"
        "from leadline.cli.main import _install_interrupt\n"
        "stop = threading.Event(); stop.set()\n"
        "files_closed = _install_interrupt(stop)\n"
        "files_closed()\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "time.sleep(5)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 130 and "Traceback" not in done.stderr, (done.returncode, done.stderr)
