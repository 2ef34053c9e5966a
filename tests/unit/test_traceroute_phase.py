"""The Traceroute phase over a scripted routed network, and how each output writes a route."""

from __future__ import annotations

import io
import json

import pytest

from leadline.config import ScanConfig
from leadline.engines.fake import CLOSED, DROP, OPEN, FakeHost
from leadline.errors import PrivilegeError
from leadline.model import HostResult, HostStatus, OsResult, Reason, RunInfo, Trace, TraceHop
from leadline.options import parse_args
from leadline.output.json import JsonOutput
from leadline.output.normal import NormalOutput
from leadline.output.trace import traceroute_lines
from leadline.output.xml import XmlOutput
from leadline.pipeline import Scan
from leadline.scantypes import ScanType
from tests.schema_check import load_schema, schema_errors
from tests.unit.fakeengines import FakeEngines, ScriptedHost
from tests.unit.test_pipeline import Recorder

R1, R2 = "198.18.1.1", "198.18.2.2"
FAR, FAR2, NEAR, SILENT_PATH = "198.18.3.10", "198.18.3.20", "198.18.1.10", "198.18.4.10"


def _engines() -> FakeEngines:
    far = FakeHost(ports={22: OPEN, 80: OPEN}, default=CLOSED, ttl=62)
    closed_only = FakeHost(default=CLOSED, ttl=62)
    hosts = {FAR: ScriptedHost(far), FAR2: ScriptedHost(closed_only), NEAR: ScriptedHost(FakeHost(default=CLOSED), neighbour=True),
             SILENT_PATH: ScriptedHost(FakeHost(default=DROP, ttl=60))}
    routes: dict[str, list[str | None]] = {FAR: [R1, R2], FAR2: [R1, R2], SILENT_PATH: [R1, None, "198.18.9.1", R2]}
    return FakeEngines(hosts, routes=routes)


def _scan(targets: tuple[str, ...], engines: FakeEngines | None = None, **fields: object) -> tuple[Recorder, FakeEngines]:
    engines = engines or _engines()
    config = ScanConfig(**{"privileged": True, "dns": "never", "targets": targets, "ports": "22,80",
                           "scan_types": (ScanType.SYN,), "traceroute": True, **fields})  # type: ignore[arg-type]
    sink = Recorder()
    Scan(config, sink, warn=lambda w: None, engines=engines).run()
    return sink, engines


def _by_address(sink: Recorder) -> dict[str, HostResult]:
    return {h.address: h for h in sink.hosts}


def test_routes_distance_and_probe_choice() -> None:
    sink, engines = _scan((FAR, FAR2, NEAR))
    hosts = _by_address(sink)
    far, far2, near = hosts[FAR], hosts[FAR2], hosts[NEAR]
    assert far.trace is not None and (far.trace.protocol, far.trace.port) == ("tcp", 22)  # the lowest open port
    assert [h.address for h in far.trace.hops] == [R1, R2, FAR] and far.distance == 3
    assert far2.trace is not None and (far2.trace.protocol, far2.trace.port) == ("tcp", 22)  # closed: the RST answers
    assert [h.address for h in far2.trace.hops] == [R1, R2, FAR2]
    shared = [h for h in (far, far2) if h.trace is not None and h.trace.shared_hops == 2]
    assert len(shared) == 1  # one of the two borrowed hops 1-2 from the other
    assert near.trace == Trace(None, None, (TraceHop(1, NEAR, near.latency),)) and near.distance == 1
    assert all(dst != NEAR for dst, _ in engines.trace_sent)  # our own link: no probe
    assert "Traceroute" in sink.tasks


def test_silent_router_and_icmp_when_nothing_answered() -> None:
    sink, _ = _scan((SILENT_PATH,))
    host = sink.hosts[0]
    assert host.trace is not None and host.trace.protocol == "icmp"
    assert [h.address for h in host.trace.hops] == [R1, None, "198.18.9.1", R2, SILENT_PATH]


def test_ping_scan_traces_too() -> None:
    sink, engines = _scan((FAR,), ports=None, scan_types=(), ping_only=True)
    host = sink.hosts[0]
    assert host.trace is not None and [h.address for h in host.trace.hops] == [R1, R2, FAR]
    assert engines.calls["trace_routes"] == 1


def test_no_trace_without_the_option_and_root_needed() -> None:
    sink, engines = _scan((FAR,), traceroute=False)
    assert sink.hosts[0].trace is None and engines.calls["trace_routes"] == 0
    with pytest.raises(PrivilegeError, match="Traceroute has to be run as root"):
        _scan((FAR,), privileged=False, scan_types=(ScanType.CONNECT,))


def test_aggressive_without_root_leaves_traceroute_out() -> None:
    config = parse_args(["-A", "--unprivileged", "-sT", "-p22", FAR]).config
    assert not config.traceroute and config.wants_traceroute and config.aggressive and config.version_detection
    engines = _engines()
    Scan(config, Recorder(), warn=lambda w: None, engines=engines)  # no PrivilegeError


def test_aggressive_with_typed_traceroute_without_root_is_refused() -> None:
    """-A --traceroute asks for the route explicitly: without root that is nmap's error, wherever it sits."""
    for argv in (["-A", "--traceroute"], ["--traceroute", "-A"]):
        config = parse_args([*argv, "--unprivileged", "-sT", "-p22", FAR]).config
        assert config.traceroute and config.aggressive
        with pytest.raises(PrivilegeError, match="Traceroute has to be run as root"):
            Scan(config, Recorder(), warn=lambda w: None, engines=_engines())


def test_api_aggressive_is_the_clis() -> None:
    """The typed API reads -A the same: aggressive=True alone drops traceroute without root, traceroute=True refuses."""
    from leadline.api import config_from

    quiet = config_from([FAR], "-sT -p22 --unprivileged", aggressive=True, version_detection=True)
    assert quiet.wants_traceroute and not quiet.traceroute
    Scan(quiet, Recorder(), warn=lambda w: None, engines=_engines())  # no PrivilegeError
    typed = config_from([FAR], "-A --traceroute -sT -p22 --unprivileged")
    with pytest.raises(PrivilegeError):
        Scan(typed, Recorder(), warn=lambda w: None, engines=_engines())


def test_options_parse() -> None:
    assert parse_args(["--traceroute", FAR]).config.traceroute
    assert not parse_args([FAR]).config.traceroute


# -- outputs -------------------------------------------------------------------------------
def _host(trace: Trace, family: int = 4, distance: int | None = 3, **fields: object) -> HostResult:
    address = FAR if family == 4 else "fd18:4c11:0:3::10"
    return HostResult(address, family, HostStatus.UP, Reason.SYN_ACK, latency=0.0002, trace=trace, distance=distance,
                      **fields)  # type: ignore[arg-type]


ROUTE = Trace("tcp", 22, (TraceHop(1, R1, 0.00007), TraceHop(2, R2, 0.00023), TraceHop(3, FAR, 0.00002)))


def _normal(host: HostResult) -> str:
    out = io.StringIO()
    sink = NormalOutput(out)
    sink.begin(RunInfo("leadline --traceroute", 0.0, "0"))
    sink.host(host)
    return out.getvalue()


def test_normal_table_as_nmap_prints_it() -> None:
    text = _normal(_host(ROUTE))
    assert "\nTRACEROUTE (using port 22/tcp)\nHOP RTT     ADDRESS\n1   0.07 ms 198.18.1.1\n2   0.23 ms 198.18.2.2\n" \
           "3   0.02 ms 198.18.3.10\n" in text
    assert "Network Distance" not in text  # nmap prints it with OS detection's results only
    assert "Network Distance: 3 hops" in _normal(_host(ROUTE, os=OsResult()))


def test_normal_folds_shared_hops_and_silence() -> None:
    trace = Trace("udp", 33434, (TraceHop(1, R1, 0.001), TraceHop(2, R2, 0.001), TraceHop(3, None), TraceHop(4, None),
                                 TraceHop(5, None), TraceHop(6, "198.18.9.1", 0.0123, "gw.lab"), TraceHop(7, FAR, 0.01)),
                  shared_with="198.18.3.20", shared_hops=2)
    lines = _normal(_host(trace)).split("TRACEROUTE")[1].rstrip("\n").splitlines()
    assert lines == [" (using port 33434/udp)", "HOP RTT      ADDRESS", "-   Hops 1-2 are the same as for 198.18.3.20",
                     "3   ... 5", "6   12.30 ms gw.lab (198.18.9.1)", "7   10.00 ms 198.18.3.10"]
    one = Trace("icmp", None, (TraceHop(1, R1, 0.001), TraceHop(2, FAR, 0.001)), shared_with="198.18.3.20", shared_hops=1)
    text = _normal(_host(one, family=4))
    assert "TRACEROUTE (using proto 1/icmp)" in text and "-   Hop 1 is the same as for 198.18.3.20" in text
    assert "TRACEROUTE (using proto 58/ipv6-icmp)" in _normal(_host(one, family=6))
    near = _normal(_host(Trace(None, None, (TraceHop(1, FAR, 0.00004),)), distance=1))
    assert "\nTRACEROUTE\nHOP RTT     ADDRESS\n1   0.04 ms 198.18.3.10\n" in near


def _xml(host: HostResult) -> str:
    out = io.StringIO()
    sink = XmlOutput(out)
    sink.begin(RunInfo("leadline --traceroute", 0.0, "0"))
    sink.host(host)
    return out.getvalue()


def test_xml_trace_element() -> None:
    text = _xml(_host(ROUTE))
    assert '<trace port="22" proto="tcp">\n<hop ttl="1" ipaddr="198.18.1.1" rtt="0.07"/>\n' \
           '<hop ttl="2" ipaddr="198.18.2.2" rtt="0.23"/>\n<hop ttl="3" ipaddr="198.18.3.10" rtt="0.02"/>\n</trace>\n' in text
    assert "<distance" not in text
    silent = Trace("icmp", None, (TraceHop(1, None), TraceHop(2, FAR, None, "far.lab")))
    text = _xml(_host(silent))
    assert '<trace proto="icmp">\n<hop ttl="2" ipaddr="198.18.3.10" rtt="-&#45;" host="far.lab"/>\n</trace>' in text
    assert "<trace>\n" in _xml(_host(silent, family=6))
    assert '<distance value="3"/>' in _xml(_host(ROUTE, os=OsResult()))


def test_json_trace_and_distance_validate() -> None:
    out = io.StringIO()
    sink = JsonOutput(out)
    sink.begin(RunInfo("leadline --traceroute", 0.0, "0"))
    sink.host(_host(ROUTE))
    sink.host(_host(Trace(None, None, (TraceHop(1, FAR, None),)), distance=1))
    from leadline.model import RunStats
    sink.end(RunStats(1.0, 1.0, 2, 0, 2))
    doc = json.loads(out.getvalue())
    assert schema_errors(doc, load_schema()) == []
    first = doc["hosts"][0]
    assert first["distance"] == 3 and first["trace"]["protocol"] == "tcp"
    assert [h["address"] for h in first["trace"]["hops"]] == [R1, R2, FAR]


def test_traceroute_lines_for_leadline_trace() -> None:
    trace = Trace("tcp", 80, (TraceHop(1, R1, 0.0005), TraceHop(2, None), TraceHop(3, FAR, 0.0012)))
    lines = traceroute_lines(_host(trace), numeric=True)
    assert lines == ["traceroute to 198.18.3.10, 30 hops max, SYN to port 80/tcp",
                     " 1  198.18.1.1  0.500 ms", " 2  *", " 3  198.18.3.10  1.200 ms"]
    assert traceroute_lines(_host(trace))[1] == " 1  198.18.1.1 (198.18.1.1)  0.500 ms"


def test_leadline_trace_arguments() -> None:
    from leadline.cli.trace import trace_options
    from leadline.errors import UsageError

    assert trace_options(["198.18.3.10"]) == ("198.18.3.10", ["--traceroute", "-sn"], False)
    assert trace_options(["-n", "-6", "-T", "fd18:4c11:0:3::10"]) == (
        "fd18:4c11:0:3::10", ["--traceroute", "-sS", "-p", "80", "-n", "-6"], True)
    assert trace_options(["-p", "22", "-Pn", "x"])[1] == ["--traceroute", "-sS", "-p", "22", "-Pn"]
    for bad in (["-p", "0", "x"], ["-p", "http", "x"], ["--bogus", "x"], []):
        with pytest.raises(UsageError, match="^trace: "):
            trace_options(bad)


def test_ping_scan_output_shows_the_route() -> None:
    out = io.StringIO()
    sink = NormalOutput(out)
    sink.begin(RunInfo("leadline -sn --traceroute", 0.0, "0", ping_only=True))
    sink.host(_host(ROUTE))
    assert "Host is up (0.00020s latency).\n\nTRACEROUTE (using port 22/tcp)\nHOP RTT     ADDRESS\n1   0.07 ms" \
           in out.getvalue()


def test_xml_with_routes_is_valid_against_nmaps_dtd(tmp_path: object) -> None:
    import subprocess
    from pathlib import Path

    from leadline.model import RunStats

    path = Path(str(tmp_path)) / "trace.xml"
    with open(path, "w") as stream:
        sink = XmlOutput(stream)
        sink.begin(RunInfo("leadline --traceroute", 0.0, "0"))
        sink.host(_host(ROUTE))
        sink.host(_host(Trace("icmp", None, (TraceHop(1, None), TraceHop(2, FAR, None, "far.lab")))))
        sink.host(_host(Trace(None, None, (TraceHop(1, FAR, 0.0001),)), family=6, distance=1, os=OsResult()))
        sink.end(RunStats(1.0, 1.0, 3, 0, 3))
    done = subprocess.run(["xmllint", "--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd", str(path)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
