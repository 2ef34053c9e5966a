"""The connect scan's session, driven by a fake clock and scripted outcomes: no sockets, no root."""

from __future__ import annotations

import dataclasses
import errno
import heapq
from collections.abc import Callable

import pytest

from leadline.config import TIMING_TEMPLATES, Timing
from leadline.core.connectsession import (
    NO_ANSWER,
    Attempt,
    ConnectPacer,
    ConnectSession,
    HostPortResults,
    Labels,
    port_result,
)
from leadline.model import PortState, Reason

NORMAL = TIMING_TEMPLATES[3]  # initial timeout 1.0 s, min 0.1 s, max 10 retries
SILENT = None
# An outcome script: (host index, port, try) -> (errno, seconds until it arrives) or SILENT.
Script = Callable[[int, int, int], "tuple[int, float] | None"]


def timing(**changes: object) -> Timing:
    return dataclasses.replace(NORMAL, **changes)  # type: ignore[arg-type]


@dataclasses.dataclass
class Run:
    """What a scripted scan did."""

    hosts: list[HostPortResults]
    starts: list[tuple[float, int, int, int]]  # (time, host, port, try)
    abandoned: list[Attempt]
    end: float
    max_in_flight: int


class FakeNet:
    """Plays the engine: starts what the session says, delivers scripted outcomes at their time."""

    def __init__(self, session: ConnectSession, script: Script, *, fd_limit: int | None = None) -> None:
        self.session = session
        self.script = script
        self.fd_limit = fd_limit
        self.pending: list[tuple[float, int, Attempt, int]] = []  # (due, seq, attempt, code)
        self.seq = 0
        self.starts: list[tuple[float, int, int, int]] = []
        self.abandoned: list[Attempt] = []
        self.hosts: list[HostPortResults] = []
        self.max_in_flight = 0

    def launch(self, now: float) -> None:
        session = self.session
        while (attempt := session.next_attempt(now)) is not None:
            if self.fd_limit is not None and session.in_flight >= self.fd_limit:
                session.no_socket(attempt, now)
                return
            outcome = self.script(attempt.host, attempt.port, attempt.tries + 1)
            self.starts.append((now, attempt.host, attempt.port, attempt.tries + 1))
            if outcome is not None and outcome[1] == 0.0:
                session.answered_at_once(attempt, outcome[0], now, now)
                continue
            session.sent(attempt, now)
            if outcome is not None:
                self.seq += 1
                heapq.heappush(self.pending, (now + outcome[1], self.seq, attempt, outcome[0]))
        self.max_in_flight = max(self.max_in_flight, session.in_flight)

    def run(self, *, step: float = 0.001, limit: float = 120.0) -> Run:
        now = 0.0
        session = self.session
        self.hosts.extend(session.finished_hosts())
        while not session.finished and now < limit:
            session.expire(now)
            self.abandoned.extend(session.abandoned())
            self.launch(now)
            now = round(now + step, 9)
            while self.pending and self.pending[0][0] <= now:
                _, _, attempt, code = heapq.heappop(self.pending)
                session.completed(attempt, code, now)
            self.abandoned.extend(session.abandoned())
            self.hosts.extend(session.finished_hosts())
        return Run(self.hosts, self.starts, self.abandoned, now, self.max_in_flight)


def scan(
    ports: list[int], script: Script, *, hosts: int = 1, tm: Timing = NORMAL, fd_limit: int = 10_000, **options: object
) -> Run:
    session = ConnectSession([f"198.18.0.{i + 1}" for i in range(hosts)], ports, tm, 0.0, fd_limit=fd_limit, **options)  # type: ignore[arg-type]
    return FakeNet(session, script).run()


def verdicts(result: HostPortResults) -> dict[int, tuple[PortState, Reason]]:
    return {p.port: (p.state, p.reason) for p in result.ports}


def tries_of(run: Run, port: int) -> int:
    return max(t for _, _, p, t in run.starts if p == port)


class TestVerdicts:
    def test_every_kind_of_answer(self) -> None:
        outcomes = {
            22: (0, 0.001),
            23: (errno.ECONNREFUSED, 0.0),
            24: (errno.EHOSTUNREACH, 0.002),
            25: (errno.ENETUNREACH, 0.002),
            26: (errno.EACCES, 0.002),
        }
        run = scan([22, 23, 24, 25, 26, 27], lambda h, port, t: outcomes.get(port, SILENT))
        assert verdicts(run.hosts[0]) == {
            22: (PortState.OPEN, Reason.SYN_ACK),
            23: (PortState.CLOSED, Reason.CONN_REFUSED),
            24: (PortState.FILTERED, Reason.HOST_UNREACH),
            25: (PortState.FILTERED, Reason.NET_UNREACH),
            26: (PortState.FILTERED, Reason.ADMIN_PROHIBITED),
            27: (PortState.FILTERED, Reason.NO_RESPONSE),
        }

    def test_odd_errors_count_as_silence(self) -> None:
        run = scan([80], lambda h, p, t: (errno.ETIMEDOUT, 0.01))
        assert verdicts(run.hosts[0]) == {80: (PortState.FILTERED, Reason.NO_RESPONSE)}
        assert tries_of(run, 80) == 2

    def test_port_result_evidence(self) -> None:
        silent = port_result(80, NO_ANSWER, 2, 0.25)
        assert (silent.state, silent.reason) == (PortState.FILTERED, Reason.NO_RESPONSE)
        assert "no answer to 2 attempts in 250 ms" in silent.evidence[0]
        refused = port_result(81, errno.ECONNREFUSED, 1, 0.0015)
        assert "ECONNREFUSED after 1.50 ms (attempt 1)" in refused.evidence[0]

    def test_labels_name_ports_and_leave_out_evidence(self) -> None:
        """With labels, each port comes out named and, unless evidence is wanted, without its line."""
        names = {80: "http", 22: "ssh"}
        outcome = lambda h, p, t: (errno.ECONNREFUSED, 0.001)  # noqa: E731
        plain = scan([22, 80, 81], outcome, labels=Labels(names, evidence=False)).hosts[0].ports
        assert [(p.port, p.service, p.evidence) for p in plain] == [(22, "ssh", ()), (80, "http", ()), (81, None, ())]
        explained = scan([80, 81], outcome, labels=Labels(names, evidence=True)).hosts[0].ports
        assert [p.service for p in explained] == ["http", None]
        assert all("ECONNREFUSED after" in p.evidence[0] for p in explained)
        default = scan([80], outcome).hosts[0].ports[0]
        assert default.service is None and default.evidence

    def test_repeated_ports_are_scanned_once(self) -> None:
        run = scan([80, 80, 81], lambda h, p, t: (errno.ECONNREFUSED, 0.0))
        assert [p.port for p in run.hosts[0].ports] == [80, 81]
        assert len(run.starts) == 2

    def test_no_ports_finishes_every_host_at_once(self) -> None:
        session = ConnectSession(["198.18.0.1", "198.18.0.2"], [], NORMAL, 0.0, fd_limit=100)
        assert session.finished
        assert [h.ports for h in session.finished_hosts()] == [[], []]


class TestRetries:
    def test_silent_port_gets_one_retransmission(self) -> None:
        run = scan([80, 81], lambda h, port, t: (errno.ECONNREFUSED, 0.001) if port == 81 else SILENT)
        assert tries_of(run, 80) == 2
        assert tries_of(run, 81) == 1

    def test_no_retransmission_with_max_retries_zero(self) -> None:
        run = scan([80], lambda h, p, t: SILENT, tm=timing(max_retries=0))
        assert tries_of(run, 80) == 1

    def test_a_port_answered_late_buys_every_port_more_tries(self) -> None:
        # Port 80 answers only its second try: loss is real, so silent ports get three.
        def script(h: int, port: int, attempt: int) -> tuple[int, float] | None:
            if port == 80:
                return (0, 0.001) if attempt == 2 else SILENT
            return SILENT

        run = scan([80, *range(1000, 1010)], script)
        assert verdicts(run.hosts[0])[80] == (PortState.OPEN, Reason.SYN_ACK)
        assert {tries_of(run, p) for p in range(1000, 1010)} == {3}

    def test_retries_never_exceed_max_retries(self) -> None:
        def script(h: int, port: int, attempt: int) -> tuple[int, float] | None:
            return (0, 0.001) if port == 80 and attempt == 3 else SILENT

        run = scan([80, 90], script, tm=timing(max_retries=1))
        assert tries_of(run, 80) == 2
        assert verdicts(run.hosts[0])[80] == (PortState.FILTERED, Reason.NO_RESPONSE)

    def test_a_port_called_silent_before_loss_showed_is_tried_again(self) -> None:
        # One attempt at a time: port 22 loses both of its tries before any
        # retransmission has been answered; port 1005 later answers only its
        # second try, so the path loses packets and 22 earns the third try it
        # would have had, and answers it.
        def script(h: int, port: int, attempt: int) -> tuple[int, float] | None:
            if port == 22:
                return (0, 0.001) if attempt == 3 else SILENT
            if port == 1005:
                return (errno.ECONNREFUSED, 0.001) if attempt == 2 else SILENT
            return (errno.ECONNREFUSED, 0.001)

        journal: list[tuple[int, int, int, int, float]] = []
        tm = timing(max_parallelism=1)
        run = scan([22, *range(1000, 1010)], script, tm=tm)
        assert [(p, t) for _, _, p, t in run.starts][:3] == [(22, 1), (22, 2), (1000, 1)]
        assert verdicts(run.hosts[0])[22] == (PortState.OPEN, Reason.SYN_ACK)
        assert tries_of(run, 22) == 3
        assert len(run.hosts[0].ports) == 11
        # Split across workers, the port's one verdict is journaled, the final one.
        split = scan([22, *range(1000, 1010)], script, tm=tm, journal=journal)
        assert split.hosts[0].ports == []
        assert [(code, tries) for _, p, code, tries, _ in journal if p == 22] == [(0, 3)]
        assert sorted(p for _, p, *_ in journal) == [22, *range(1000, 1010)]

    def test_a_silent_port_keeps_its_verdict_when_loss_shows_no_more(self) -> None:
        # Without an answered retransmission, two tries stay the rule.
        def script(h: int, port: int, attempt: int) -> tuple[int, float] | None:
            return SILENT if port == 22 else (errno.ECONNREFUSED, 0.001)

        journal: list[tuple[int, int, int, int, float]] = []
        run = scan([22, *range(1000, 1010)], script, tm=timing(max_parallelism=1))
        assert tries_of(run, 22) == 2
        assert verdicts(run.hosts[0])[22] == (PortState.FILTERED, Reason.NO_RESPONSE)
        scan([22, *range(1000, 1010)], script, tm=timing(max_parallelism=1), journal=journal)
        assert [(code, tries) for _, p, code, tries, _ in journal if p == 22] == [(NO_ANSWER, 2)]

    def test_a_completion_after_the_timeout_is_ignored(self) -> None:
        session = ConnectSession(["198.18.0.1"], [80], NORMAL, 0.0, fd_limit=100)
        attempt = session.next_attempt(0.0)
        assert attempt is not None
        session.sent(attempt, 0.0)
        session.expire(1.0)  # the initial timeout passed: retransmission queued
        assert session.abandoned() == [attempt]
        session.completed(attempt, 0, 1.01)  # the old try's answer, too late
        assert not session.finished
        retry = session.next_attempt(1.02)
        assert retry is attempt and retry.tries == 1


class TestTimeouts:
    def test_initial_timeout_before_any_answer(self) -> None:
        run = scan([80], lambda h, p, t: SILENT)
        starts = [s for s, _, _, _ in run.starts]
        assert starts[1] == pytest.approx(1.0, abs=0.002)  # T3's initial timeout

    def test_first_answers_shorten_the_wait_of_earlier_attempts(self) -> None:
        # Port 80 is silent; 81 answers in 10 ms: 80's first try then expires
        # after the minimum timeout (0.1 s), not the initial second.
        run = scan([80, 81], lambda h, port, t: (errno.ECONNREFUSED, 0.01) if port == 81 else SILENT)
        retry_at = [s for s, _, p, t in run.starts if p == 80 and t == 2][0]
        assert retry_at == pytest.approx(0.1, abs=0.003)

    def test_host_timeout_reports_no_ports_and_abandons_attempts(self) -> None:
        run = scan(list(range(1, 200)), lambda h, p, t: SILENT, tm=timing(host_timeout=0.5))
        host = run.hosts[0]
        assert host.timed_out and host.ports == []
        assert run.end == pytest.approx(0.5, abs=0.002)
        assert run.abandoned and all(not a.live for a in run.abandoned)

    def test_wakeup_follows_the_next_expiry(self) -> None:
        session = ConnectSession(["198.18.0.1"], [80], NORMAL, 0.0, fd_limit=100)
        attempt = session.next_attempt(0.0)
        assert attempt is not None
        session.sent(attempt, 0.0)
        assert session.wakeup(0.25) == pytest.approx(0.75)


class TestDescriptors:
    def test_exhaustion_holds_at_what_is_in_flight(self) -> None:
        session = ConnectSession(["198.18.0.1"], list(range(1, 100)), NORMAL, 0.0, fd_limit=1000)
        net = FakeNet(session, lambda h, p, t: (errno.ECONNREFUSED, 0.005), fd_limit=5)
        run = net.run()
        assert run.max_in_flight == 5
        assert len(run.hosts[0].ports) == 99
        assert {state for state, _ in verdicts(run.hosts[0]).values()} == {PortState.CLOSED}

    def test_no_socket_with_nothing_in_flight_backs_off(self) -> None:
        session = ConnectSession(["198.18.0.1"], [80, 81], NORMAL, 0.0, fd_limit=100)
        attempt = session.next_attempt(0.0)
        assert attempt is not None
        session.no_socket(attempt, 0.0)
        assert session.next_attempt(0.01) is None
        assert session.wakeup(0.01) == pytest.approx(0.04)
        again = session.next_attempt(0.05)
        assert again is attempt and again.port == 80  # the same port, first in line


class TestPacing:
    def test_max_rate_caps_the_starts(self) -> None:
        run = scan(list(range(1, 1001)), lambda h, p, t: (errno.ECONNREFUSED, 0.0), tm=timing(max_rate=200.0))
        first_second = [s for s, _, _, _ in run.starts if s < 1.0]
        assert 195 <= len(first_second) <= 202

    def test_sustained_max_rate(self) -> None:
        run = scan(list(range(1, 601)), lambda h, p, t: (errno.ECONNREFUSED, 0.0), tm=timing(max_rate=250.0))
        assert run.end == pytest.approx(600 / 250, abs=0.05)

    def test_min_rate_starts_past_a_full_window(self) -> None:
        tm = timing(min_rate=500.0, max_parallelism=4, initial_rtt_timeout=5.0, min_rtt_timeout=5.0)
        session = ConnectSession(["198.18.0.1"], list(range(1, 2000)), tm, 0.0, fd_limit=10_000)
        net = FakeNet(session, lambda h, p, t: SILENT)
        for tick in range(1001):
            net.launch(tick / 1000)
        # The window allows 4, yet about 500 a second are owed.
        assert 495 <= len(net.starts) <= 502
        assert session.in_flight > 4

    def test_min_rate_above_max_rate_is_capped(self) -> None:
        pacer = ConnectPacer(timing(min_rate=500.0, max_rate=100.0), 1000, 32)
        assert pacer.min_rate == 100.0

    def test_no_rate_limit_without_bounds(self) -> None:
        pacer = ConnectPacer(NORMAL, 1000, 32)
        assert pacer.rate is None
        assert pacer.owed(5.0) == 0

    def test_a_full_window_waits_quietly_under_max_rate(self) -> None:
        # Every attempt in flight and silent: nothing may start, so the session
        # must not ask to be woken before the next timeout (no busy loop).
        tm = timing(max_rate=3000.0, max_parallelism=32)
        session = ConnectSession(["198.18.0.1"], list(range(1, 1000)), tm, 0.0, fd_limit=10_000)
        net = FakeNet(session, lambda h, p, t: SILENT)
        for tick in range(100):
            net.launch(tick / 1000)
        assert session.in_flight == 32
        wait = session.wakeup(0.1)
        assert wait is not None and wait > 0.05

    def test_rate_wakeups_come_in_batches(self) -> None:
        tm = timing(max_rate=3000.0)
        session = ConnectSession(["198.18.0.1"], list(range(1, 1000)), tm, 0.0, fd_limit=10_000)
        FakeNet(session, lambda h, p, t: (errno.ECONNREFUSED, 0.0)).launch(0.0)
        wait = session.wakeup(0.0)
        assert wait is not None and wait >= 0.003  # a batch of tokens, not one (0.33 ms)


class TestWindow:
    def test_answers_open_the_window(self) -> None:
        session = ConnectSession(["198.18.0.1"], list(range(1, 5000)), NORMAL, 0.0, fd_limit=100_000)
        net = FakeNet(session, lambda h, p, t: (errno.ECONNREFUSED, 0.002))
        net.launch(0.0)
        assert session.in_flight == 32
        net.run(limit=0.05)
        assert session.pacer.window.size > 500

    def test_silence_before_any_answer_doubles_per_min_timeout(self) -> None:
        session = ConnectSession(["198.18.0.1"], list(range(1, 60000)), NORMAL, 0.0, fd_limit=100_000)
        net = FakeNet(session, lambda h, p, t: SILENT)
        sizes = []
        for tick in range(5):
            now = tick * 0.1 + 0.0005
            session.expire(now)
            net.launch(now)
            sizes.append(session.pacer.window.size)
        assert sizes == [32, 64, 128, 256, 512]

    def test_after_an_answer_only_timeouts_open_the_window(self) -> None:
        def script(h: int, port: int, t: int) -> tuple[int, float] | None:
            return (errno.ECONNREFUSED, 0.001) if port == 1 else SILENT

        session = ConnectSession(["198.18.0.1"], list(range(1, 60000)), NORMAL, 0.0, fd_limit=100_000)
        net = FakeNet(session, script)
        net.run(limit=0.05)  # port 1 answered; nothing has timed out yet (min timeout 0.1 s)
        assert session.pacer.window.size == 33
        net.run(limit=0.12)  # the first flight timed out: silence opened the window
        assert session.pacer.window.size >= 64

    def test_an_answered_retransmission_halves_the_window(self) -> None:
        pacer = ConnectPacer(NORMAL, 10_000, 64)
        pacer.on_answer(2, first_sent_at=1.0, now=2.0)
        assert pacer.window.size == 32
        pacer.on_silence()
        assert pacer.window.size == 32  # past slow start: +1/cwnd per event

    def test_window_never_exceeds_max_parallelism(self) -> None:
        run = scan(list(range(1, 3000)), lambda h, p, t: SILENT, tm=timing(max_parallelism=100))
        assert run.max_in_flight == 100


class TestHosts:
    def test_several_hosts_interleave_and_finish_apart(self) -> None:
        def script(host: int, port: int, t: int) -> tuple[int, float] | None:
            return (errno.ECONNREFUSED, 0.001) if host == 0 else SILENT

        run = scan([80, 81, 82], script, hosts=2)
        assert [h.address for h in run.hosts] == ["198.18.0.1", "198.18.0.2"]
        assert [h for _, h, _, t in run.starts if t == 1][:2] == [0, 1]

    def test_first_answer_decides_a_ping(self) -> None:
        run = scan([80, 443], lambda h, port, t: (0, 0.01) if port == 443 else SILENT, first_answer_decides=True)
        host = run.hosts[0]
        assert [(p.port, p.reason) for p in host.ports] == [(443, Reason.SYN_ACK)]
        assert [a.port for a in run.abandoned] == [80]
        assert host.latency == pytest.approx(0.01, abs=0.002)

    def test_journal_records_verdicts_and_hosts_come_without_ports(self) -> None:
        journal: list[tuple[int, int, int, int, float]] = []
        run = scan([80, 81], lambda h, port, t: (errno.ECONNREFUSED, 0.0), journal=journal)
        assert run.hosts[0].ports == []
        assert sorted((h, p, code, tries) for h, p, code, tries, _ in journal) == [
            (0, 80, errno.ECONNREFUSED, 1),
            (0, 81, errno.ECONNREFUSED, 1),
        ]

    def test_interrupt_reports_what_was_decided(self) -> None:
        session = ConnectSession(["198.18.0.1"], [80, 81], NORMAL, 0.0, fd_limit=100)
        first = session.next_attempt(0.0)
        assert first is not None
        session.answered_at_once(first, errno.ECONNREFUSED, 0.0, 0.0)
        second = session.next_attempt(0.0)
        assert second is not None
        session.sent(second, 0.0)
        session.interrupt()
        (host,) = session.finished_hosts()
        assert host.interrupted and [p.port for p in host.ports] == [80]
        assert session.abandoned() == [second]
        assert session.finished and session.in_flight == 0

    def test_scan_delay_spaces_one_hosts_attempts(self) -> None:
        run = scan([80, 81, 82], lambda h, p, t: (errno.ECONNREFUSED, 0.0), tm=timing(scan_delay=0.2))
        assert [round(s, 3) for s, _, _, _ in run.starts] == [0.0, 0.2, 0.4]


class TestSharedRtt:
    def test_a_round_trip_from_elsewhere_replaces_the_initial_timeout(self) -> None:
        session = ConnectSession(["198.18.0.1"], [80], NORMAL, 0.0, fd_limit=100)
        assert session.measured_rtt is None
        attempt = session.next_attempt(0.0)
        assert attempt is not None
        session.sent(attempt, 0.0)
        assert session.wakeup(0.0) == pytest.approx(1.0)  # the initial timeout
        session.learn_rtt(0.002)
        assert session.heard
        assert session.wakeup(0.0) == pytest.approx(0.1)
        session.expire(0.1)  # min timeout 0.1 s, not the initial second
        assert session.abandoned() == [attempt]
        assert session.measured_rtt == pytest.approx(0.002)

    def test_answers_heard_here_win_over_a_posted_round_trip(self) -> None:
        session = ConnectSession(["198.18.0.1"], [80, 81], NORMAL, 0.0, fd_limit=100)
        attempt = session.next_attempt(0.0)
        assert attempt is not None
        session.answered_at_once(attempt, errno.ECONNREFUSED, 0.0, 0.004)
        session.learn_rtt(5.0)
        assert session.measured_rtt == pytest.approx(0.004)
