"""The idle and FTP bounce scans through the whole pipeline and the outputs, over the scripted network."""

from __future__ import annotations

import io

import pytest

from leadline.engines.fake import CLOSED, DROP, OPEN, FakeHost  # noqa: F401
from leadline.errors import LeadlineError, UsageError
from leadline.model import PortState, Reason
from leadline.options import parse_args
from leadline.output.normal import NormalOutput
from leadline.scantypes import ScanType
from tests.unit.fakeengines import FakeEngines, ScriptedHost
from tests.unit.test_pipeline import run

TARGET = "198.18.5.1"
ZOMBIE = "198.18.5.75"
LINUX = "198.18.5.20"
FTP = "198.18.5.76"
STRICT = "198.18.5.77"
HOSTS = {
    TARGET: ScriptedHost(FakeHost(ports={22: OPEN, 80: OPEN, 1100: OPEN, 443: CLOSED, 8080: DROP}, default=CLOSED)),
    ZOMBIE: ScriptedHost(FakeHost(default=CLOSED), ipid_step=1),
    LINUX: ScriptedHost(FakeHost(default=CLOSED)),
    FTP: ScriptedHost(ftp_bounce=True),
    STRICT: ScriptedHost(ftp_bounce=False),
}


def test_idle_scan_through_the_pipeline() -> None:
    engines = FakeEngines(HOSTS)
    sink, _ = run(engines, targets=(TARGET,), scan_types=(ScanType.IDLE,), idle_zombie=ZOMBIE, skip_discovery=True,
                  ports="1-1024,8080")
    host = sink.hosts[0]
    opened = {p.port for p in host.ports if p.state is PortState.OPEN}
    assert opened == {22, 80}
    assert {p.reason for p in host.ports if p.port not in opened} == {Reason.NO_IPID_CHANGE}
    assert host.through == f"Idle scan using zombie {ZOMBIE} ({ZOMBIE}:80); Class: Incremental"
    assert sink.run is not None and sink.run.scaninfo[0].scan_type == "idle"
    assert "IdleScan" in sink.tasks and engines.calls["raw_scan"] == 0
    text = io.StringIO()
    out = NormalOutput(text)
    out.host(host)
    assert text.getvalue().startswith(host.through + "\n")


def test_a_linux_zombie_is_refused() -> None:
    with pytest.raises(LeadlineError, match="All zeros"):
        run(FakeEngines(HOSTS), targets=(TARGET,), scan_types=(ScanType.IDLE,), idle_zombie=LINUX,
            skip_discovery=True, ports="80")


def test_idle_needs_pn_and_a_zombie_on_the_command_line() -> None:
    with pytest.raises(UsageError, match="needs -Pn"):
        parse_args(["-sI", ZOMBIE, TARGET])
    config = parse_args(["-sI", f"{ZOMBIE}:22", "-Pn", TARGET]).config
    assert config is not None and config.idle_zombie == f"{ZOMBIE}:22" and config.scan_types == (ScanType.IDLE,)
    with pytest.raises(UsageError):
        parse_args(["-sI"])


def test_bounce_scan_skips_privileged_ports_and_reports_the_rest() -> None:
    engines = FakeEngines(HOSTS)
    sink, warnings = run(engines, targets=(TARGET,), scan_types=(ScanType.BOUNCE,), bounce_server=f"anonymous@{FTP}",
                         skip_discovery=True, ports="22,80,1100-1102,8080")
    states = {p.port: p.state for p in sink.hosts[0].ports}
    assert states == {1100: PortState.OPEN, 1101: PortState.CLOSED, 1102: PortState.CLOSED, 8080: PortState.FILTERED}
    assert any("privileged ports" in w for w in warnings)
    assert parse_args(["-b", FTP, TARGET]).config.scan_types == (ScanType.BOUNCE,)  # type: ignore[union-attr]


def test_a_refusing_ftp_server_ends_the_scan_in_one_line() -> None:
    with pytest.raises(LeadlineError, match="does not allow a PORT"):
        run(FakeEngines(HOSTS), targets=(TARGET,), scan_types=(ScanType.BOUNCE,), bounce_server=STRICT,
            skip_discovery=True, ports="8080")
