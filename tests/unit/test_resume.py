"""Resume: a run's XML or JSON is its own checkpoint; a resumed run equals an uninterrupted one."""

from __future__ import annotations

import io
import threading

import pytest

from leadline.cli.main import main
from leadline.config import ScanConfig
from leadline.engines.fake import CLOSED, DROP, OPEN, FakeHost
from leadline.model import HostResult, RunStats
from leadline.output.base import FanOut, NullSink
from leadline.output.json import JsonOutput
from leadline.output.resumed import read_json_run, read_xml_run
from leadline.output.xml import XmlOutput
from leadline.pipeline import Scan
from tests.unit.fakeengines import FakeEngines, ScriptedHost

HOSTS = {f"198.18.6.{n}": ScriptedHost(FakeHost(ports={22: OPEN, 80: DROP}, default=CLOSED), up=n % 4 != 0)
         for n in range(1, 25)}
ARGS = "leadline -sS -p 22,80,443 -v -oX out.xml 198.18.6.1-24"


class StopAfter(NullSink):
    """Sets the stop event after ``count`` hosts, as a Ctrl-C would mid-run."""

    def __init__(self, stop: threading.Event, count: int) -> None:
        self.stop, self.count = stop, count

    def host(self, host: HostResult) -> None:
        self.count -= 1
        if self.count <= 0:
            self.stop.set()


def scan(kind: str, *, stop_after: int | None = None, resumed: tuple[HostResult, ...] = ()) -> str:
    config = ScanConfig(targets=("198.18.6.1-24",), ports="22,80,443", privileged=True, dns="never", verbosity=1,
                        args=ARGS, timing=ScanConfig().timing.__class__(**{
                            **{f: getattr(ScanConfig().timing, f) for f in ScanConfig().timing.__slots__},
                            "max_hostgroup": 4}))
    out = io.StringIO()
    writer = XmlOutput(out) if kind == "xml" else JsonOutput(out)
    stop = threading.Event()
    sinks: list = [writer]
    if stop_after is not None:
        sinks.append(StopAfter(stop, stop_after))
    Scan(config, FanOut(sinks), warn=lambda _: None, engines=FakeEngines(HOSTS), stop=stop, resumed=resumed).run()
    return out.getvalue()


def hosts(kind: str, text: str) -> dict[str, tuple[object, ...]]:
    run = read_xml_run(text) if kind == "xml" else read_json_run(text)
    addresses = [h.address for h in run.hosts]
    assert len(addresses) == len(set(addresses))
    return {h.address: (h.status, h.status_reason, tuple((p.port, p.protocol, p.state, p.reason) for p in h.ports))
            for h in run.hosts}


@pytest.mark.parametrize("kind", ["xml", "json"])
def test_the_reader_gives_back_what_the_writer_wrote(kind: str) -> None:
    text = scan(kind)
    run = read_xml_run(text) if kind == "xml" else read_json_run(text)
    assert run.args == ARGS and run.finished
    assert len(run.hosts) == 24
    up = [h for h in run.hosts if h.ports]
    assert {(p.port, str(p.state)) for p in up[0].ports} == {(22, "open"), (80, "filtered"), (443, "closed")}


@pytest.mark.parametrize("kind", ["xml", "json"])
@pytest.mark.parametrize("cut_after", [1, 5, 9, 17])
def test_an_interrupted_run_resumed_equals_an_uninterrupted_one(kind: str, cut_after: int) -> None:
    full = hosts(kind, scan(kind))
    first = scan(kind, stop_after=cut_after)
    partial = read_xml_run(first) if kind == "xml" else read_json_run(first)
    assert not partial.finished and 0 < len(partial.hosts) < 24
    second = scan(kind, resumed=tuple(partial.hosts))
    assert hosts(kind, second) == full


@pytest.mark.parametrize("kind", ["xml", "json"])
def test_a_file_cut_anywhere_keeps_every_complete_host_before_the_cut(kind: str) -> None:
    """SIGKILL leaves a torn tail: the reader never fails on it and never invents a host."""
    text = scan(kind)
    full = hosts(kind, text)
    previous = 0
    for cut in range(len(text) // 3, len(text), max(1, len(text) // 200)):
        got = hosts(kind, text[:cut])
        assert set(got) <= set(full) and all(got[a] == full[a] for a in got)
        assert len(got) >= previous
        previous = len(got)


def test_interrupted_hosts_are_marked_and_scanned_again() -> None:
    out = io.StringIO()
    writer = XmlOutput(out)
    writer.begin(__import__("leadline.model", fromlist=["RunInfo"]).RunInfo(args=ARGS, start_time=0, version="x"))
    from leadline.model import HostStatus, Reason
    writer.host(HostResult("198.18.6.1", 4, HostStatus.UP, Reason.ECHO_REPLY, interrupted=True))
    writer.end(RunStats(end_time=0, elapsed=0, hosts_up=1, hosts_down=0, hosts_total=1, exit="error"))
    run = read_xml_run(out.getvalue())
    assert run.hosts == [] and run.interrupted == ["198.18.6.1"] and not run.finished


def test_resume_errors_are_one_line(tmp_path, capsys) -> None:
    assert main(["--resume", str(tmp_path / "missing.xml")]) != 0
    assert main(["--resume", str(tmp_path / "x.xml"), "-p", "80"]) != 0
    (tmp_path / "junk.xml").write_text("hello")
    assert main(["--resume", str(tmp_path / "junk.xml")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("leadline: ") for line in err)
    assert "No such file" in err[0] and "takes no other options" in err[1] and "neither" in err[2]


def test_a_finished_run_has_nothing_to_resume(tmp_path, capsys) -> None:
    path = tmp_path / "out.xml"
    path.write_text(scan("xml").replace("-oX out.xml", f"-oX {path}"))
    assert main(["--resume", str(path)]) == 0
    assert "nothing to resume" in capsys.readouterr().err
