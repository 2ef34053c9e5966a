"""Engines for the pipeline over a scripted network, without root or sockets.

Raw port scans run the real sans-I/O session and probe modules over
``engines.fake.FakeNetwork`` in virtual time; discovery, connect scans
and names answer from the same script.  Every probe a phase asks for is
counted, so tests can check what the pipeline sent as well as what it
reported.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from leadline.config import DiscoveryProbe, Timing
from leadline.core.ftpbounce import PortVerdict
from leadline.core.idle import IdleSession, PortFound, judge_zombie
from leadline.core.session import Event
from leadline.core.tracesession import TraceSession
from leadline.errors import LeadlineError
from leadline.detect.service.policy import PortProbing
from leadline.detect.service.probes import ProbeDatabase
from leadline.detect.scripts.base import MAX_READ, ScriptError, ScriptTimeout
from leadline.engines.connect import HostPortResults, PingResult
from leadline.engines.discovery import DiscoveryResult
from leadline.engines.fake import Answer, FakeHost, FakeNetwork, run_fake_scan
from leadline.engines.service import OnResult, ServiceOptions, ServiceTarget
from leadline.model import PortResult, PortState, Reason
from leadline.core.session import MakeSession
from tests.unit.tracenet import TraceNet, run_session

SOURCE = "198.18.0.1"


@dataclass
class Service:
    """A scripted service behind one port, for scripts: what it has said once the client sent ``sent``.

    ``respond(sent)`` returns everything the server has sent so far given
    everything the client sent so far on this connection; ``closes`` says
    whether the server then ends the stream (else a read waits: a timeout).
    """

    respond: Callable[[bytes], bytes]
    closes: bool = True
    cert: bytes | None = None  # DER, for TLS services
    tls: bool | None = None  # True: TLS only, False: plain only, None: either


class FakeConn:
    """A conversation with a scripted service; reads follow ``respond`` and its caps, like SocketConn."""

    def __init__(self, service: Service, tls: bool) -> None:
        self.service = service
        self.tls = tls
        self.sent = b""
        self.read = 0
        self.closed = False

    def _available(self) -> bytes:
        return self.service.respond(self.sent)[self.read:]

    def send(self, data: bytes) -> None:
        self.sent += data

    def recv(self, cap: int = 4096, wait: float | None = None) -> bytes:
        data = self._available()[:min(cap, MAX_READ)]
        if not data and not self.service.closes:
            raise ScriptTimeout("scripted service says nothing more")
        self.read += len(data)
        return data

    def recv_until(self, marker: bytes, cap: int = MAX_READ) -> bytes:
        data = self._available()
        end = data.find(marker)
        n = min(cap, end + len(marker)) if end >= 0 else min(cap, len(data))
        if end < 0 and n < cap and not data and not self.service.closes:
            raise ScriptTimeout("scripted service says nothing more")
        self.read += n
        return data[:n]

    def recv_all(self, cap: int = MAX_READ) -> bytes:
        data = self._available()[:cap]
        if not data and not self.service.closes:
            raise ScriptTimeout("scripted service says nothing more")
        self.read += len(data)
        return data

    def peer_certificate(self) -> bytes | None:
        return self.service.cert if self.tls else None

    def close(self) -> None:
        self.closed = True


class FakeScriptIO:
    """Scripts' I/O for one scripted address: connections to its services, logged for the tests."""

    def __init__(self, address: str, services: Mapping[int, Service], udp: Mapping[int, Callable[[bytes], bytes]],
                 log: list[tuple[str, int, bool]]) -> None:
        self.address = address
        self.services = services
        self.udp = udp
        self.log = log

    def connect(self, port: int, *, tls: bool = False) -> FakeConn:
        self.log.append((self.address, port, tls))
        service = self.services.get(port)
        if service is None:
            raise ScriptError(f"connect to port {port} failed: Connection refused")
        if service.tls is not None and service.tls != tls:
            raise ScriptError(f"connect to port {port} failed: {'TLS' if tls else 'plain'} not spoken")
        return FakeConn(service, tls)

    def udp_exchange(self, port: int, payload: bytes, cap: int = 4096) -> bytes:
        self.log.append((self.address, port, False))
        answer = self.udp.get(port)
        reply = answer(payload) if answer is not None else b""
        if not reply:
            raise ScriptTimeout(f"no UDP answer from port {port}")
        return reply[:cap]


@dataclass
class ScriptedHost:
    """One scripted address: how its ports answer, and how it answers discovery."""

    ports: FakeHost = field(default_factory=FakeHost)
    up: bool = True
    neighbour: bool = False  # on our Ethernet link: ARP decides
    mac: str | None = None
    ptr: str | None = None
    # Version detection: per (port, protocol), what the service answers to a probe's payload
    # (b"" for the NULL probe: its banner); None for silence, CLOSED for a connection closed at once.
    services: dict[tuple[int, str], Callable[[bytes], bytes | None]] = field(default_factory=dict)
    script_services: dict[int, Service] = field(default_factory=dict)  # what scripts meet on each TCP port
    udp: dict[int, Callable[[bytes], bytes]] = field(default_factory=dict)  # datagram in, answer out
    ipid_step: int = 0  # as an idle scan zombie: 0 numbers every packet 0 (Linux), 1 one global counter
    ftp_bounce: bool | None = None  # as an FTP server: None no server, False refuses third-party PORT


CLOSED = b"<closed>"


class FakeEngines:
    def __init__(self, hosts: Mapping[str, ScriptedHost], *, seed: int = 0,
                 routes: Mapping[str, list[str | None]] | None = None) -> None:
        self.hosts = dict(hosts)
        self.seed = seed
        self.routes = dict(routes or {})  # traceroute: the routers before each host (None: silent)
        self.trace_sent: list[tuple[str, int]] = []  # (destination, TTL) of every trace probe
        self.calls: Counter[str] = Counter()
        self.discovery_asked: list[str] = []
        self.ports_probed: Counter[str] = Counter()
        self.service_probes: list[tuple[str, int, str]] = []
        self.script_connects: list[tuple[str, int, bool]] = []  # (address, port, tls) of every script connection

    def raw_available(self) -> bool:
        return True

    def arp_reaches(self, address: str) -> bool:
        host = self.hosts.get(address)
        return host is not None and host.neighbour

    def nd_reaches(self, address: str) -> bool:
        return self.arp_reaches(address)

    def source_address_for(self, address: str) -> str:
        return SOURCE

    def neighbour_mac(self, address: str) -> str | None:
        host = self.hosts.get(address)
        return host.mac if host is not None and host.neighbour else None

    def _discover(self, addresses: Iterable[str], arp: bool, link: Reason = Reason.ARP_RESPONSE) -> Iterator[DiscoveryResult]:
        for address in addresses:
            self.discovery_asked.append(address)
            host = self.hosts.get(address)
            if host is None or not host.up:
                yield DiscoveryResult(address, False, Reason.NO_RESPONSE)
            elif host.neighbour and arp:
                yield DiscoveryResult(address, True, link, None, 0.0002, host.mac)
            else:
                yield DiscoveryResult(address, True, Reason.ECHO_REPLY, host.ports.ttl, host.ports.rtt)

    def raw_discover(self, addresses: Iterable[str], probes: Sequence[DiscoveryProbe], timing: Timing, *,
                     arp: bool, stop: threading.Event, evidence: object) -> Iterator[DiscoveryResult]:
        self.calls["raw_discover"] += 1
        return self._discover(addresses, arp)

    def nd_discover(self, addresses: Sequence[str], probes: Sequence[DiscoveryProbe], timing: Timing, *,
                    stop: threading.Event, evidence: object) -> Iterator[DiscoveryResult]:
        self.calls["nd_discover"] += 1
        return self._discover(addresses, True, Reason.ND_RESPONSE)

    def connect_ping(self, addresses: Sequence[str], ports: Sequence[int], timing: Timing) -> Iterator[PingResult]:
        self.calls["connect_ping"] += 1
        for address in addresses:
            host = self.hosts.get(address)
            up = host is not None and host.up
            yield PingResult(address, up, Reason.CONN_REFUSED if up else Reason.NO_RESPONSE, 0.001 if up else None)

    def connect_scan(self, addresses: Sequence[str], ports: Sequence[int], timing: Timing, *,
                     on_host_done: Callable[[HostPortResults], None], on_progress: Callable[[int, int], None],
                     stop: threading.Event, labels: object = None) -> None:
        self.calls["connect_scan"] += 1
        verdicts = {Answer.OPEN: (PortState.OPEN, Reason.SYN_ACK), Answer.CLOSED: (PortState.CLOSED, Reason.CONN_REFUSED)}
        for address in addresses:
            script = self.hosts[address].ports
            results = []
            for port in ports:
                self.ports_probed[address] += 1
                answer = script.ports.get(port, script.default).answer
                state, reason = verdicts.get(answer, (PortState.FILTERED, Reason.NO_RESPONSE))
                results.append(PortResult(port, "tcp", state, reason))
            on_host_done(HostPortResults(address, results, 0.001))

    def raw_scan(self, make_session: MakeSession, hosts: int, ports: Sequence[int], timing: Timing, *, family: int,
                 on_event: Callable[[Event], None], stop: threading.Event, evidence: object,
                 split: bool = True) -> None:
        self.calls["raw_scan"] += 1
        session = make_session(ports, timing)
        network = FakeNetwork({a: h.ports for a, h in self.hosts.items()}, seed=self.seed)
        run_fake_scan(session, network, on_event=on_event)
        self.ports_probed["sent"] += len(network.send_times)

    def trace_routes(self, session: TraceSession, family: int, *, stop: threading.Event, evidence: object) -> None:
        self.calls["trace_routes"] += 1
        net = TraceNet({a: list(self.routes.get(a, [])) for a, h in self.hosts.items() if h.up})
        run_session(session, net, start=time.monotonic())
        self.trace_sent.extend(net.sent)

    def idle_scan(self, zombie: str, targets: Sequence[str], ports: Sequence[int], timing: Timing, *,
                  on_zombie: Callable[[str], None], on_host_done: Callable[[str, list[PortFound]], None],
                  stop: threading.Event) -> None:
        """The real zombie check and IdleSession over a scripted global counter."""
        self.calls["idle_scan"] += 1
        host = self.hosts.get(zombie)
        counter = [1000]

        def answer(opened: int) -> int:
            counter[0] += (opened + 1) * (host.ipid_step if host else 0)
            return counter[0] % 65536 if host and host.ipid_step else 0

        ipids = [answer(0) for _ in range(6)] if host is not None and host.up else []
        check = judge_zombie(zombie, zombie, 80, ipids)
        if not check.usable:
            raise LeadlineError(check.message)
        on_zombie(check.message)
        for target in targets:
            script = self.hosts[target].ports
            session = IdleSession(ports, check.kind, ipids[-1])
            found: list[PortFound] = []
            while (round_ := session.next_round()) is not None:
                opened = round_.copies * sum(script.ports.get(p, script.default).answer is Answer.OPEN
                                             for p in round_.ports)
                self.ports_probed[target] += len(round_.ports)
                found += session.record(round_, answer(opened))
            on_host_done(target, found)

    def bounce_scan(self, server: str, target: str, ports: Sequence[int], timing: Timing, *,
                    stop: threading.Event) -> list[PortVerdict]:
        self.calls["bounce_scan"] += 1
        relay = self.hosts.get(server.rpartition("@")[2].partition(":")[0])
        if relay is None or relay.ftp_bounce is None:
            raise LeadlineError(f"cannot reach the FTP bounce server {server}")
        if not relay.ftp_bounce:
            raise LeadlineError("the FTP server does not allow a PORT to another host (it said: 500 Illegal PORT command.)")
        script = self.hosts[target].ports
        names = {Answer.OPEN: "open", Answer.CLOSED: "closed"}
        return [PortVerdict(p, names.get(script.ports.get(p, script.default).answer, "filtered"), "") for p in ports]

    def reverse_names(self, addresses: Sequence[str]) -> dict[str, str | None]:
        self.calls["reverse_names"] += 1
        return {a: self.hosts[a].ptr if a in self.hosts else None for a in addresses}

    def resolve_name(self, name: str, family: int) -> list[str]:
        return []

    def detect_services(self, db: ProbeDatabase, targets: Sequence[ServiceTarget], options: ServiceOptions, *,
                        on_result: OnResult, stop: threading.Event, log: Callable[[str], None] | None,
                        trace: Callable[[str], None] | None) -> None:
        """The real probe-order policy over scripted services; every probe sent is recorded."""
        self.calls["detect_services"] += 1
        for t in targets:
            answer = self.hosts[t.address].services.get((t.port, t.protocol))
            policy = PortProbing(db, t.protocol, t.port, options.intensity, log=log)
            while (probe := policy.next_probe()) is not None:
                self.service_probes.append((t.address, t.port, probe.name))
                reply = answer(probe.payload) if answer is not None else None
                closed = 0.0 if reply == CLOSED else None
                data = b"" if reply is None or reply == CLOSED else reply
                policy.feed(probe, data)
                policy.end_probe(probe, data, closed)
            on_result(t, policy.result())

    def os_round(self, rounds, *, wait, stop, evidence):  # type: ignore[no-untyped-def]
        """Every scripted host answers OS probes as a Linux host does (tests/unit/osreplies.py)."""
        from leadline.engines.osprobe import RoundTraffic
        from tests.unit.osreplies import linux_answers

        self.calls["os_round"] += 1
        out = []
        for plan, probes in rounds:
            sent = {p.name: 1_800_000_000.0 + p.at for p in probes}
            got = linux_answers(plan, list(probes), sent, host=plan.target) if plan.target in self.hosts else []
            out.append(RoundTraffic(plan, sent, got))
        return out

    def script_io(self, address: str, deadline: float) -> FakeScriptIO:
        self.calls["script_io"] += 1
        host = self.hosts.get(address, ScriptedHost())
        return FakeScriptIO(address, host.script_services, host.udp, self.script_connects)
