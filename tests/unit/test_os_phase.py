"""The OS detection phase over the scripted network: rounds, stopping rules, the report in every output."""

from __future__ import annotations

import io
import json

import pytest

from leadline.config import ScanConfig
from leadline.engines.fake import CLOSED as PORT_CLOSED, OPEN, FakeHost
from leadline.errors import PrivilegeError, UsageError
from leadline.output.normal import NormalOutput
from leadline.pipeline import Scan
from leadline.scantypes import ScanType
from tests.unit.fakeengines import FakeEngines, ScriptedHost
from tests.unit.test_pipeline import Recorder

ADDRESS = "198.18.5.1"


def _linux_db(path: str) -> str:
    """A database whose Linux record is the fingerprint the scripted host gives (SEQ left out)."""
    from importlib import resources

    from leadline.detect.os.fingerprint import build_fingerprint
    from tests.unit.osreplies import linux_round

    ours = resources.files("leadline.data").joinpath("leadline-os-db").read_text()
    points = ours[ours.index("MatchPoints"):ours.index("\n\n", ours.index("MatchPoints"))]
    fp = build_fingerprint(*linux_round())
    lines = [fp.line(t) for t in fp.tests if t != "SEQ"]
    record = ["Fingerprint Linux 5.4 - 6.18", "Class Linux | Linux | 5.X | general purpose",
              "CPE cpe:/o:linux:linux_kernel:5 auto", "Class Linux | Linux | 6.X | general purpose",
              "CPE cpe:/o:linux:linux_kernel:6 auto", *lines]
    with open(path, "w") as f:
        f.write(points + "\n\n" + "\n".join(record) + "\n")
    return path


def _config(**fields: object) -> ScanConfig:
    return ScanConfig(**{"privileged": True, "dns": "never", "targets": (ADDRESS,), "ports": "22,23",
                         "scan_types": (ScanType.SYN,), "os_detection": True, "osdb": "leadline",
                         **fields})  # type: ignore[arg-type]


def _scan(**fields: object) -> tuple[Recorder, FakeEngines]:
    if "osdb" not in fields:
        import tempfile

        fields["osdb"] = _linux_db(tempfile.mkstemp(suffix=".db")[1])
    engines = FakeEngines({ADDRESS: ScriptedHost(FakeHost(ports={22: OPEN, 23: PORT_CLOSED}, default=PORT_CLOSED))})
    sink = Recorder()
    Scan(_config(**fields), sink, warn=lambda w: None, engines=engines).run()
    return sink, engines


def test_a_perfect_match_takes_one_round() -> None:
    sink, engines = _scan()
    host = sink.hosts[0]
    assert engines.calls["os_round"] == 1
    assert host.os is not None and host.os.perfect >= 1 and host.os.matches[0].name.startswith("Linux")
    assert host.distance == 1  # U1's quoted TTL: same link


def test_without_a_match_rounds_stop_when_they_repeat() -> None:
    db = "MatchPoints\nT1(R=100%DF=20%T=15%TG=15%S=20%A=20%F=30%RD=20%Q=20)\n\nFingerprint Nothing\n" \
         "Class X | X || general purpose\nT1(R=N)\n"
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".db", delete=False) as f:
        f.write(db)
    sink, engines = _scan(osdb=f.name, max_os_tries=5)
    assert engines.calls["os_round"] == 2
    os = sink.hosts[0].os
    assert os is not None and not os.matches and os.fingerprint and os.fingerprint.startswith("OS:SCAN(")


def test_outputs_render_the_os_block() -> None:
    sink, _ = _scan()
    host = sink.hosts[0]
    text = "\n".join(NormalOutput(io.StringIO(), verbosity=1).host_lines(host))
    assert "OS details: Linux 5.4 - 6.18" in text and "Running: Linux 5.X|6.X" in text
    assert "Network Distance: 1 hop" in text and "IP ID Sequence Generation: All zeros" in text
    assert "OS hint from the initial TTL (leadline, not a match): initial TTL 64" in text
    from leadline.output.osreport import os_json, os_xml_lines

    lines = os_xml_lines(host)
    assert lines[0] == "<os>" and any(l.startswith("<osmatch name=\"Linux 5.4 - 6.18\"") for l in lines)
    assert any(l.startswith("<distance value=\"1\"") for l in lines)
    data = os_json(host)
    assert data is not None and data["matches"][0]["classes"][0]["family"] == "Linux"
    json.dumps(data)


def test_root_is_needed_and_a_bad_osdb_fails_first(tmp_path) -> None:
    with pytest.raises(PrivilegeError, match="requires root privileges"):
        Scan(_config(privileged=False, scan_types=(ScanType.CONNECT,)), Recorder(), warn=lambda w: None,
             engines=FakeEngines({}))
    bad = tmp_path / "bad.db"
    bad.write_text("nonsense\n")
    with pytest.raises(UsageError, match="bad.db"):
        Scan(_config(osdb=str(bad)), Recorder(), warn=lambda w: None, engines=FakeEngines({}))


def test_aggressive_without_root_leaves_os_detection_out() -> None:
    scan = Scan(_config(privileged=False, aggressive=True, scan_types=(ScanType.CONNECT,)), Recorder(),
                warn=lambda w: None, engines=FakeEngines({}))
    assert not scan.os_scan


def test_grepable_fields() -> None:
    from leadline.output.grepable import GrepableOutput

    sink, _ = _scan()
    line = "\n".join(GrepableOutput(io.StringIO()).host_lines(sink.hosts[0]))
    assert "\tOS: Linux 5.4 - 6.18\tSeq Index: " in line and line.endswith("\tIP ID Seq: All zeros")
