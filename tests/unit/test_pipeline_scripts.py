"""The "Script scan" phase over the scripted network: selection, results on ports and hosts, statuses,
deadlines, a broken script, and a third-party script package found through its entry point."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.config import ScanConfig
from leadline.detect.scripts import select as script_select
from leadline.detect.scripts.base import Script, ScriptContext
from leadline.engines.fake import CLOSED, OPEN, FakeHost
from leadline.errors import UsageError
from leadline.model import HostResult, ScriptResult
from leadline.pipeline import Scan
from leadline.scantypes import ScanType
from tests.unit.fakeengines import FakeEngines, ScriptedHost, Service
from tests.unit.scripthelp import http_service
from tests.unit.test_pipeline import Recorder

PLUGIN = Path(__file__).resolve().parent.parent / "plugins" / "leadline-demo-check"
WEB = "198.18.5.1"
PAGE = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<title>Lab \x1b[5mhome</title>"


def hosts() -> dict[str, ScriptedHost]:
    web = ScriptedHost(FakeHost(ports={80: OPEN, 7777: OPEN, 9000: OPEN}, default=CLOSED),
                       script_services={80: http_service({"GET /": PAGE}),
                                 7777: Service(lambda sent: b"hello \x1b]0;x\x07there\n", closes=False),
                                 9000: Service(lambda sent: b"", closes=False)})
    return {WEB: web, "198.18.5.2": ScriptedHost(FakeHost(default=CLOSED))}


def run(engines: FakeEngines, **fields: object) -> tuple[Recorder, list[str]]:
    config = ScanConfig(**{"privileged": True, "dns": "never", "scan_types": (ScanType.SYN,), **fields})  # type: ignore[arg-type]
    sink, warnings = Recorder(), []
    Scan(config, sink, warn=warnings.append, engines=engines).run()
    return sink, warnings


def by_address(sink: Recorder) -> dict[str, HostResult]:
    return {h.address: h for h in sink.hosts}


def test_default_scripts_put_their_results_on_the_port() -> None:
    engines = FakeEngines(hosts())
    sink, warnings = run(engines, targets=("198.18.5.1-2",), ports="80,7777", scripts=("default",))
    web = by_address(sink)[WEB]
    ports = {p.port: p for p in web.ports}
    assert [(s.id, s.output) for s in ports[80].scripts] == [("http-title", "Lab \\x1B[5mhome")]
    assert ports[7777].scripts == () and by_address(sink)["198.18.5.2"].ports[0].scripts == ()
    assert "Script scan" in sink.tasks and not warnings
    # http-robots.txt (1 request) and http-methods (OPTIONS, an invented method, 4 safe ones) asked too and
    # found nothing to show at this verbosity; every connection went to port 80 of the scanned host
    assert sorted(engines.script_connects) == [(WEB, 80, False)] * 8


def test_statuses_are_told_with_d_and_a_silent_service_times_out_alone() -> None:
    engines = FakeEngines(hosts())
    t0 = time.monotonic()
    sink, warnings = run(engines, targets=(WEB,), ports="80,9000", scripts=("http-title,banner",), debugging=1,
                         script_timeout=2.0)
    assert time.monotonic() - t0 < 10
    said = "\n".join(warnings)
    assert "NSE: http-title against 198.18.5.1:80: ok" in said
    assert "NSE: banner against 198.18.5.1:9000: timeout" in said
    assert "NSE: banner against 198.18.5.1:80: no output" in said
    ports = {p.port: p for p in by_address(sink)[WEB].ports}
    assert [s.id for s in ports[80].scripts] == ["http-title"] and ports[9000].scripts == ()


def test_a_script_that_raises_costs_only_its_own_result(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(ctx: ScriptContext) -> ScriptResult | None:
        raise KeyError("bug")
    broken = Script("broken", frozenset({"default"}), lambda h, p: p is not None, boom)
    monkeypatch.setattr(script_select, "plugin_scripts", lambda warn=None: [broken])
    sink, warnings = run(FakeEngines(hosts()), targets=(WEB,), ports="80", scripts=("default",), debugging=1)
    assert "NSE: broken against 198.18.5.1:80: error (KeyError: 'bug')" in "\n".join(warnings)
    assert [s.id for s in by_address(sink)[WEB].ports[0].scripts] == ["http-title"]


def test_a_script_past_its_deadline_is_a_timeout_and_does_not_hold_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    def stuck(ctx: ScriptContext) -> ScriptResult | None:
        time.sleep(4)  # pure computation that never reaches the I/O context's deadline checks
        return ScriptResult("stuck", "late")
    slow = Script("stuck", frozenset({"default"}), lambda h, p: p is not None, stuck)
    monkeypatch.setattr(script_select, "plugin_scripts", lambda warn=None: [slow])
    t0 = time.monotonic()
    sink, warnings = run(FakeEngines(hosts()), targets=(WEB,), ports="80", scripts=("stuck,http-title",),
                         script_timeout=0.3, debugging=1)
    assert time.monotonic() - t0 < 3.0
    assert "NSE: stuck against 198.18.5.1:80: timeout" in "\n".join(warnings)
    assert [s.id for s in by_address(sink)[WEB].ports[0].scripts] == ["http-title"]


def test_an_unknown_script_fails_before_any_output() -> None:
    sink = Recorder()
    with pytest.raises(UsageError, match="'no-such-check' did not match"):
        Scan(ScanConfig(targets=(WEB,), privileged=True, scripts=("no-such-check",)), sink, warn=print,
             engines=FakeEngines(hosts()))
    assert sink.run is None


@pytest.fixture(scope="module")
def demo_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The demonstration package installed with pip into a directory of its own, put on sys.path."""
    target = tmp_path_factory.mktemp("plugins")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(PLUGIN)], check=True, capture_output=True)
    sys.path.insert(0, str(target))
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        for name in [m for m in sys.modules if m.startswith("leadline_demo_check")]:
            del sys.modules[name]


def test_a_pip_installed_script_package_is_found_and_run(demo_package: Path) -> None:
    assert (demo_package / "leadline_demo_check").is_dir()
    names = {s.name for s in script_select.available_scripts()}
    assert {"demo-greeting", "demo-host"} <= names
    sink, _ = run(FakeEngines(hosts()), targets=(WEB,), ports="80,7777", scripts=("demo",),
                  script_args=(("greeting", "hi"),))
    web = by_address(sink)[WEB]
    ports = {p.port: p for p in web.ports}
    # The package returned raw escape sequences: the phase escaped them.
    assert [(s.id, s.output) for s in ports[7777].scripts] == [("demo-greeting", "said: hello \\x1B]0;x\\x07there")]
    assert ports[7777].scripts[0].elements[0].value == "hello \\x1B]0;x\\x07there"
    assert [(s.id, s.output) for s in web.scripts] == [("demo-host", "checked 198.18.5.1 (greeting=hi)")]
    assert ports[80].scripts == ()
