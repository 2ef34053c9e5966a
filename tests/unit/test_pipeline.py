"""The whole pipeline over a scripted network, without root: discovery, port scans, names, sinks."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from leadline.config import DiscoveryProbe, ScanConfig
from leadline.engines.fake import CLOSED, DROP, OPEN, FakeHost
from leadline.core.session import Event
from leadline.errors import PrivilegeError, UsageError
from leadline.model import HostResult, HostStatus, PortResult, PortState, Reason, RunInfo, RunStats
from leadline.output.base import NullSink
from leadline.pipeline import Scan
from leadline.scantypes import ScanType
from tests.unit.fakeengines import FakeEngines, ScriptedHost


class Recorder(NullSink):
    def __init__(self) -> None:
        self.run: RunInfo | None = None
        self.hosts: list[HostResult] = []
        self.found: list[tuple[str, int]] = []
        self.tasks: list[str] = []
        self.stats: RunStats | None = None

    def begin(self, run: RunInfo) -> None:
        self.run = run

    def task_begin(self, task: str, time: float, extra: str = "") -> None:
        self.tasks.append(task)

    def port_found(self, address: str, port: PortResult) -> None:
        self.found.append((address, port.port))

    def host(self, host: HostResult) -> None:
        self.hosts.append(host)

    def end(self, stats: RunStats) -> None:
        self.stats = stats


SERVER = FakeHost(ports={22: OPEN, 80: OPEN, 443: CLOSED, 8080: DROP}, default=CLOSED)
HOSTS = {
    "198.18.5.1": ScriptedHost(SERVER, ptr="server.lab"),
    "198.18.5.2": ScriptedHost(FakeHost(default=DROP)),
    "198.18.5.3": ScriptedHost(up=False),
}


def run(engines: FakeEngines, stop: threading.Event | None = None, **fields: object) -> tuple[Recorder, list[str]]:
    config = ScanConfig(**{"privileged": True, "dns": "never", **fields})  # type: ignore[arg-type]
    sink, warnings = Recorder(), []
    Scan(config, sink, warn=warnings.append, engines=engines, stop=stop).run()
    return sink, warnings


def states(host: HostResult) -> dict[int, tuple[PortState, Reason]]:
    return {p.port: (p.state, p.reason) for p in host.ports}


def test_syn_scan_decides_every_port_through_the_real_session() -> None:
    engines = FakeEngines(HOSTS)
    sink, _ = run(engines, targets=("198.18.5.1-3",), scan_types=(ScanType.SYN,), ports="22,80,443,8080")
    by_address = {h.address: h for h in sink.hosts}
    assert by_address["198.18.5.3"].status is HostStatus.DOWN
    assert states(by_address["198.18.5.1"]) == {
        22: (PortState.OPEN, Reason.SYN_ACK), 80: (PortState.OPEN, Reason.SYN_ACK),
        443: (PortState.CLOSED, Reason.RESET), 8080: (PortState.FILTERED, Reason.NO_RESPONSE)}
    assert {s for s, _ in states(by_address["198.18.5.2"]).values()} == {PortState.FILTERED}
    assert [p.service for p in by_address["198.18.5.1"].ports] == ["ssh", "http", "https", "http-proxy"]
    assert sorted(sink.found) == [("198.18.5.1", 22), ("198.18.5.1", 80)]
    assert "SYN Stealth Scan" in sink.tasks and "Ping Scan" in sink.tasks
    assert sink.stats is not None and (sink.stats.hosts_up, sink.stats.hosts_down) == (2, 1)
    assert sink.run is not None and sink.run.scaninfo[0].scan_type == "syn"
    assert engines.calls["raw_scan"] == 1 and engines.calls["connect_scan"] == 0


def test_down_hosts_are_written_before_the_group_is_port_scanned() -> None:
    sink, _ = run(FakeEngines(HOSTS), targets=("198.18.5.1-3",), scan_types=(ScanType.SYN,), ports="22")
    assert [h.address for h in sink.hosts] == ["198.18.5.3", "198.18.5.1", "198.18.5.2"]


def test_connect_scan_takes_the_connect_engine_and_default_unprivileged() -> None:
    engines = FakeEngines(HOSTS)
    sink, _ = run(engines, targets=("198.18.5.1",), ports="22,443", privileged=False)
    assert engines.calls["connect_ping"] == 1 and engines.calls["connect_scan"] == 1
    assert engines.calls["raw_scan"] == 0
    assert states(sink.hosts[0]) == {22: (PortState.OPEN, Reason.SYN_ACK), 443: (PortState.CLOSED, Reason.CONN_REFUSED)}
    assert "Connect Scan" in sink.tasks and sink.run is not None and sink.run.scaninfo[0].scan_type == "connect"


def test_a_ping_sweep_as_root_streams_every_target_once() -> None:
    hosts = {f"198.18.6.{i}": ScriptedHost(up=i % 3 == 0) for i in range(1, 101)}
    engines = FakeEngines(hosts)
    sink, _ = run(engines, targets=("198.18.6.1-100",), ping_only=True)
    assert engines.discovery_asked == [f"198.18.6.{i}" for i in range(1, 101)]
    assert len(sink.hosts) == 100
    assert {h.address for h in sink.hosts if h.is_up} == {a for a, h in hosts.items() if h.up}
    assert sink.hosts[2].status_reason is Reason.ECHO_REPLY and sink.hosts[2].ports == ()


def test_skip_discovery_with_a_raw_scan_still_asks_neighbours() -> None:
    hosts = {
        "198.18.7.1": ScriptedHost(SERVER, neighbour=True, mac="02:00:00:00:00:01"),
        "198.18.7.2": ScriptedHost(up=False, neighbour=True),
        "198.18.7.3": ScriptedHost(FakeHost(default=CLOSED)),  # beyond a router: -Pn keeps it up
    }
    engines = FakeEngines(hosts)
    sink, _ = run(engines, targets=("198.18.7.1-3",), scan_types=(ScanType.SYN,), ports="22", skip_discovery=True)
    by_address = {h.address: h for h in sink.hosts}
    assert engines.discovery_asked == ["198.18.7.1", "198.18.7.2"]
    assert by_address["198.18.7.1"].status_reason is Reason.ARP_RESPONSE
    assert by_address["198.18.7.1"].mac == "02:00:00:00:00:01"
    assert by_address["198.18.7.2"].status is HostStatus.DOWN
    assert by_address["198.18.7.3"].status_reason is Reason.USER_SET
    assert states(by_address["198.18.7.3"]) == {22: (PortState.CLOSED, Reason.RESET)}


def test_a_list_scan_sends_nothing_and_names_hosts() -> None:
    engines = FakeEngines(HOSTS)
    sink, _ = run(engines, targets=("198.18.5.1-2",), list_only=True, dns="default")
    assert [h.status for h in sink.hosts] == [HostStatus.UNKNOWN, HostStatus.UNKNOWN]
    assert [n.name for n in sink.hosts[0].hostnames] == ["server.lab"]
    assert engines.calls["raw_discover"] == 0 and engines.calls["raw_scan"] == 0


def test_a_syn_proxy_warning_reaches_the_host_result() -> None:
    engines = FakeEngines({"198.18.8.1": ScriptedHost(FakeHost(default=OPEN))})
    sink, warnings = run(engines, targets=("198.18.8.1",), scan_types=(ScanType.SYN,), ports="1-300",
                         skip_discovery=True)
    assert sink.hosts[0].warnings and "SYN proxy" in sink.hosts[0].warnings[0]
    assert warnings and warnings[0].startswith("198.18.8.1: ")


def test_ipv6_discovery_as_root_takes_neighbour_discovery() -> None:
    engines = FakeEngines({"2001:db8::10": ScriptedHost(SERVER, neighbour=True, mac="02:00:00:00:00:10")})
    sink, _ = run(engines, targets=("2001:db8::10",), ipv6=True, ping_only=True,
                  discovery_probes=(DiscoveryProbe("echo"),))
    assert engines.calls["nd_discover"] == 1 and engines.calls["raw_discover"] == 0
    assert sink.hosts[0].status_reason is Reason.ND_RESPONSE and "ND Ping Scan" in sink.tasks


def test_a_stopped_scan_ends_as_interrupted_and_closes_the_sinks() -> None:
    stop = threading.Event()
    stop.set()
    sink, _ = run(FakeEngines(HOSTS), stop, targets=("198.18.5.1-3",), scan_types=(ScanType.SYN,), ports="22")
    assert sink.stats is not None and sink.stats.exit == "error" and sink.stats.error_message == "interrupted"
    assert sink.hosts == []


def test_raw_scans_need_privileges() -> None:
    with pytest.raises((PrivilegeError, UsageError)):
        run(FakeEngines(HOSTS), targets=("198.18.5.1",), scan_types=(ScanType.SYN,), privileged=False)
    with pytest.raises((PrivilegeError, UsageError)):
        run(FakeEngines(HOSTS), targets=("198.18.5.1",), scan_types=(ScanType.UDP,), privileged=False)


class ListRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []

    def listed(self, addresses: Sequence[str]) -> None:
        self.order.extend(addresses)

    def host(self, host: HostResult) -> None:
        super().host(host)
        self.order.append(f"named:{host.address}")


def test_a_list_scan_without_names_writes_batches_in_target_order() -> None:
    engines = FakeEngines({})
    engines.resolve_name = lambda name, family: ["198.18.9.9"]  # type: ignore[method-assign]
    sink = ListRecorder()
    config = ScanConfig(targets=("198.18.9.0/30", "gw.lab", "198.18.9.4"), list_only=True, dns="never")
    stats = Scan(config, sink, warn=lambda _: None, engines=engines).run()
    assert sink.order == ["198.18.9.0", "198.18.9.1", "198.18.9.2", "198.18.9.3", "named:198.18.9.9", "198.18.9.4"]
    assert stats.hosts_total == 6 and engines.calls["reverse_names"] == 0


class StopAfterFirstPort(Recorder):
    def __init__(self, stop: threading.Event) -> None:
        super().__init__()
        self.stop = stop

    def port_found(self, address: str, port: PortResult) -> None:
        super().port_found(address, port)
        self.stop.set()


def test_a_host_cut_short_by_an_interrupt_is_marked_interrupted() -> None:
    stop = threading.Event()
    sink = StopAfterFirstPort(stop)
    config = ScanConfig(targets=("198.18.5.1",), scan_types=(ScanType.SYN,), ports="1-2000", privileged=True,
                        dns="never", skip_discovery=True)
    engines = FakeEngines({"198.18.5.1": ScriptedHost(FakeHost(ports={1: OPEN}, default=OPEN))})

    def stopping_scan(make_session, hosts, ports, timing, *, family, on_event, stop, evidence, split=True):  # type: ignore[no-untyped-def]
        events: list[Event] = []
        FakeEngines.raw_scan(engines, make_session, hosts, ports, timing, family=family, on_event=events.append,
                             stop=stop, evidence=evidence)
        for event in events[:5]:
            on_event(event)

    engines.raw_scan = stopping_scan  # type: ignore[method-assign]
    Scan(config, sink, warn=lambda _: None, engines=engines, stop=stop).run()
    assert sink.hosts and sink.hosts[0].interrupted and len(sink.hosts[0].ports) < 2000
    assert sink.stats is not None and sink.stats.exit == "error"


def test_common_ports_are_probed_first_and_order_is_kept_with_r() -> None:
    from leadline.pipeline.portscan import port_order

    ports = list(range(1, 1001))
    order = port_order(ports, False, 7, common=[22, 80, 443])
    assert sorted(order[:3]) == [22, 80, 443] and sorted(order) == ports and order[3:] != ports[3:]
    assert port_order(ports, True, 7, common=[22, 80, 443]) == ports


class InterruptAfterHost(Recorder):
    """A sink that, like the CLI's guarded sinks, raises a held-back Ctrl-C once a host is written."""

    def host(self, host: HostResult) -> None:
        super().host(host)
        raise KeyboardInterrupt


def test_a_host_written_as_an_interrupt_surfaces_is_counted() -> None:
    sink = InterruptAfterHost()
    stats = Scan(ScanConfig(targets=("198.18.5.1",), scan_types=(ScanType.SYN,), ports="22", privileged=True,
                            dns="never"), sink, warn=lambda _: None, engines=FakeEngines(HOSTS)).run()
    assert len(sink.hosts) == 1 and stats.exit == "error" and stats.hosts_up == 1
