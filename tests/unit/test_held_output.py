"""Output files, and standard output redirected to a file, are written a batch of whole events at a time."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from leadline.output.held import HeldStream

LEADLINE = str(Path(sys.executable).parent / "leadline")
ISOLATED = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--net"]


class Recorder(io.StringIO):
    """A file that remembers each write() it was handed."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_hosts_finished_close_together_reach_the_file_in_one_write() -> None:
    file, clock = Recorder(), Clock()
    stream = HeldStream(file, clock=clock)
    for n in range(100):
        stream.write(f"<host {n}>\n")
        stream.flush()
        clock.now += 0.0001  # 10,000 hosts a second, as in a sweep
    assert len(file.writes) == 1  # the first host, after a quiet start, went out at once
    clock.now += 0.05
    stream.write("<host 100>\n")
    stream.flush()
    assert len(file.writes) == 2
    assert file.getvalue() == "".join(f"<host {n}>\n" for n in range(101))


def test_a_file_never_holds_part_of_an_event() -> None:
    """The checkpoint reader relies on whole hosts: half a host is never written, however long it takes."""
    file, clock = Recorder(), Clock()
    stream = HeldStream(file, clock=clock, limit=10)
    stream.write("<host>")
    clock.now += 10.0
    stream.write("<ports/>" * 5)  # past the size limit too
    assert file.getvalue() == ""
    stream.write("</host>\n")
    stream.flush()
    assert file.getvalue() == "<host>" + "<ports/>" * 5 + "</host>\n"


def two_events() -> tuple[Recorder, HeldStream]:
    """A held stream given two events in quick succession: the first is in the file, the second held."""
    file = Recorder()
    stream = HeldStream(file, clock=Clock())
    stream.write("first\n")
    stream.flush()
    stream.write("second\n")
    stream.flush()
    return file, stream


def test_release_writes_everything_now() -> None:
    file, stream = two_events()
    assert file.getvalue() == "first\n"
    stream.write("done\n")
    stream.release()
    assert file.getvalue() == "first\nsecond\ndone\n"


def test_the_size_limit_writes_without_waiting_for_the_clock() -> None:
    file, clock = Recorder(), Clock()
    stream = HeldStream(file, clock=clock, limit=100)
    for _ in range(30):
        stream.write("x" * 10)
        stream.flush()
    assert len(file.writes) == 3  # the first event, then one write per 100 characters gathered


def test_a_run_into_files_ends_every_file_with_its_last_line(tmp_path: Path) -> None:
    """Standard output redirected to a file and the -o files are held; the run's end still reaches all of them."""
    normal, grepable, xml, printed = (tmp_path / name for name in ("out.nmap", "out.gnmap", "out.xml", "stdout.txt"))
    with printed.open("w") as stdout:
        done = subprocess.run([*ISOLATED, LEADLINE, "-sL", "-n", "198.18.0.0/22", "-oN", str(normal), "-oG",
                               str(grepable), "-oX", str(xml)], stdout=stdout, stderr=subprocess.PIPE, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    text = printed.read_text()
    assert text.count("leadline scan report for") == 1024
    assert text.rstrip().splitlines()[-1].startswith("leadline done: 1024 IP addresses (0 hosts up)")
    assert normal.read_text().rstrip().splitlines()[-1].startswith("# leadline done at ")
    assert grepable.read_text().rstrip().splitlines()[-1].startswith("# leadline done at ")
    assert xml.read_text().rstrip().endswith("</nmaprun>")


def test_a_piped_run_is_complete_too() -> None:
    done = subprocess.run([*ISOLATED, LEADLINE, "-sL", "-n", "198.18.0.0/24"], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("leadline scan report for") == 256
    assert done.stdout.rstrip().splitlines()[-1].startswith("leadline done: 256 IP addresses (0 hosts up)")


def test_closing_releases_and_never_raises_once_the_file_is_gone() -> None:
    file, stream = two_events()
    stream.close()
    assert file.getvalue() == "first\nsecond\n"
    gone = Recorder()
    late = HeldStream(gone, clock=Clock())
    late.write("lost\n")
    gone.close()
    late.close()  # the held text cannot be kept; no error escapes
    assert late.closed
