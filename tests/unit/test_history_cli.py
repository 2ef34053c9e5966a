"""--save, LEADLINE_DB, leadline db/diff/report over the fake network and files (no packets leave the process)."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest

from leadline.api import output_sinks
from leadline.cli.main import main
from leadline.engines.fake import CLOSED, DROP, OPEN, FakeHost
from leadline.history.store import open_store
from leadline.options import parse_args
from leadline.output.base import FanOut
from leadline.output.json import JsonOutput
from leadline.pipeline import Scan
from tests.unit.fakeengines import FakeEngines, ScriptedHost

HOSTS = {
    "198.18.5.1": ScriptedHost(FakeHost(ports={22: OPEN, 80: OPEN, 443: CLOSED, 8080: DROP}, default=CLOSED)),
    "198.18.5.2": ScriptedHost(FakeHost(ports={22: OPEN}, default=DROP)),
    "198.18.5.3": ScriptedHost(up=False),
}


def _scan(db: str, stop: threading.Event | None = None, hosts: dict[str, ScriptedHost] = HOSTS) -> str:
    """A --save scan over the fake network; its own -oJ document."""
    parsed = parse_args(["-sS", "-p", "1-100,443,8080", "-n", "--privileged", "--db", db, "-v", "198.18.5.1-3"])
    out = io.StringIO()
    sinks = [*output_sinks(parsed.config, lambda _: out), JsonOutput(out)]
    Scan(parsed.config, FanOut(sinks), warn=lambda _: None, engines=FakeEngines(hosts), stop=stop).run()
    return out.getvalue()


def test_options_save_db_and_diff_last() -> None:
    assert parse_args(["--save", "x"]).config.output.save
    spec = parse_args(["--db", "sqlite:///a.db", "-oX", "-", "x"]).config.output
    assert spec.save and spec.db == "sqlite:///a.db" and spec.xml == "-"
    spec = parse_args(["--diff-last", "x"]).config.output
    assert spec.save and spec.diff_last
    assert not parse_args(["x"]).config.output.save


def test_a_saved_scan_reads_back_equal_to_its_own_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path}/h.db"
    own = json.loads(_scan(db))
    assert main(["db", "export", "1", "--db", db, "-oJ", str(tmp_path / "back.json")]) == 0
    back = json.loads((tmp_path / "back.json").read_text())
    assert back["hosts"] == own["hosts"] and back["runstats"] == own["runstats"]
    assert open_store(db).run(1).status == "complete"


def test_an_interrupted_saved_scan_keeps_its_finished_hosts(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/h.db"
    stop = threading.Event()
    own = _scan_stopping(db, stop, dict(HOSTS))
    store = open_store(db)
    (run,) = store.runs()
    assert run.status == "interrupted"
    saved = [h.address for h in store.hosts(run.id)]
    assert saved == [h["address"] for h in own["hosts"]] and 0 < len(saved) < 3


def _scan_stopping(db: str, stop: threading.Event, hosts: dict[str, ScriptedHost]) -> dict:
    """A scan whose first host written sets the stop event: later groups are never scanned."""
    parsed = parse_args(["-sS", "-p", "22", "-n", "--privileged", "--db", db, "--max-hostgroup", "1", "198.18.5.1-3"])
    out = io.StringIO()

    class Stopper(JsonOutput):
        def host(self, host):  # type: ignore[no-untyped-def]
            super().host(host)
            stop.set()

    sinks = [*output_sinks(parsed.config, lambda _: out), Stopper(out)]
    Scan(parsed.config, FanOut(sinks), warn=lambda _: None, engines=FakeEngines(hosts), stop=stop).run()
    return json.loads(out.getvalue())


def test_db_commands_and_diff_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path}/h.db"
    _scan(db)
    changed = dict(HOSTS, **{"198.18.5.2": ScriptedHost(FakeHost(ports={22: CLOSED, 25: OPEN}, default=DROP))})
    _scan(db, hosts=changed)
    capsys.readouterr()
    assert main(["db", "list", "--db", db]) == 0
    listing = capsys.readouterr().out
    assert listing.count("complete") == 2
    assert main(["db", "hosts", "--db", db, "--service", "ssh"]) == 0
    assert "198.18.5.1" in capsys.readouterr().out
    assert main(["db", "hosts", "--db", db, "--port", "25", "-oJ", "-"]) == 0
    (host,) = json.loads(capsys.readouterr().out)
    assert host["address"] == "198.18.5.2" and host["run"] == 2 and host["ports"][0]["state"] == "open"
    assert main(["diff", "1", "2", "--db", db]) == 1
    text = capsys.readouterr().out
    assert " 198.18.5.2:\n" in text and "-22/tcp open" in text and "+25/tcp open" in text
    assert main(["diff", "1", "1", "--db", db]) == 0
    assert main(["diff", "1", "9", "--db", db]) == 2
    assert "no run 9" in capsys.readouterr().err
    assert main(["db", "history", "198.18.5.2", "--db", db]) == 0
    assert "run 2" in capsys.readouterr().out
    assert main(["report", "2", "--db", db, "-o", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "Changes since run 1" in html and "25/tcp" in html


def test_leadline_db_saves_every_scan_and_diff_last_prints_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from leadline.history.sink import StoreSink
    from leadline.history.store import default_url

    monkeypatch.setenv("LEADLINE_DB", f"sqlite:///{tmp_path}/env.db")
    assert default_url() == f"sqlite:///{tmp_path}/env.db"
    monkeypatch.delenv("LEADLINE_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_url() == f"sqlite:///{tmp_path}/leadline/scans.db"
    db = f"sqlite:///{tmp_path}/h.db"
    _scan(db)
    sink = StoreSink(db, "198.18.5.1-3", warn=lambda _: None)
    _scan(db, hosts=dict(HOSTS, **{"198.18.5.3": ScriptedHost(FakeHost(ports={22: OPEN}, default=CLOSED))}))
    from leadline.cli.history import print_diff_last

    sink.store, sink.run_id = open_store(db), 2
    print_diff_last([sink], __import__("sys").stdout)
    out = capsys.readouterr().out
    assert "Changes since run 1 (this is run 2):\n" in out  # banner lines follow when the runs began in different seconds
    assert "\n 198.18.5.3:\n-Host is down.\n+Host is up.\n" in out


def test_a_broken_database_warns_once_and_the_scan_goes_on(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    warnings: list[str] = []
    from leadline.history.sink import StoreSink

    parsed = parse_args(["-sS", "-p", "22", "-n", "--privileged", "198.18.5.1"])
    out = io.StringIO()
    sinks = [StoreSink(f"sqlite:///{tmp_path}/dir.db", "x", warnings.append), JsonOutput(out)]
    Scan(parsed.config, FanOut(sinks), warn=lambda _: None, engines=FakeEngines(HOSTS)).run()
    assert len(warnings) == 1 and "cannot open database" in warnings[0]
    assert json.loads(out.getvalue())["hosts"][0]["address"] == "198.18.5.1"



def test_db_import_of_a_broken_file_is_one_line_and_leaves_no_run(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_history_store import NMAP_XML

    db = f"sqlite:///{tmp_path}/h.db"
    good, broken = tmp_path / "good.xml", tmp_path / "broken.xml"
    good.write_text(NMAP_XML)
    cut = NMAP_XML.index("<port protocol=\"tcp\" portid=\"80\">")
    broken.write_text(NMAP_XML[:cut] + "<port protocol='tcp' portid='80'><state state='open'/></portx>" + NMAP_XML[cut:])
    assert main(["db", "import", str(good), "--db", db]) == 0
    assert main(["db", "import", str(broken), "--db", db]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not well-formed XML in host 1" in err
    assert [r.source for r in open_store(db).runs()] == [str(good)]
    assert main(["db", "import", str(good), "--db", db]) == 0
    store = open_store(db)
    assert [len(list(store.hosts(r.id))) for r in store.runs()] == [1, 1]
    (first,) = list(store.hosts(1))
    assert first.trace is not None and first.os is not None and len(first.ports) == 1000
