"""The connect() scan engine: many non-blocking connects in flight on one epoll.

A connect scan needs no privileges: the kernel does the handshake and
reports the outcome as an errno, which maps onto nmap's verdicts.  Speed
comes from parallelism, because a probe to a dropped port costs a whole
timeout; so the engine keeps as many connects outstanding as the
congestion window and the descriptor budget allow.

Promises:
  * every port of every host ends with exactly one verdict, unless the
    host timed out (reported with no ports) or the caller stopped the scan
    (reported with the ports decided so far and ``interrupted=True``);
  * a port is called filtered/no-response only after its retransmissions
    went unanswered, so random loss does not turn open ports filtered;
  * running out of descriptors or local ports slows the scan, never fails it;
  * every socket opened is closed before the engine returns.

A retransmission is a fresh socket: the old one is closed (with an RST,
by SO_LINGER 0) and a new connect() is made.  So every answer belongs to
exactly one attempt, and its RTT sample is never ambiguous.
"""

from __future__ import annotations

import _socket
import collections
import errno
import ipaddress
import select
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from leadline.config import Timing
from leadline.core.timing import CongestionWindow, RateGovernor, RttEstimator
from leadline.engines.limits import FD_EXHAUSTED, fd_budget
from leadline.errors import PortSpecError, TargetSpecError
from leadline.model import PortResult, PortState, Reason

__all__ = ["HostPortResults", "PingResult", "connect_ping", "connect_scan"]

# close() on a socket with linger on and a zero timeout sends RST: no
# TIME_WAIT on our side, and the target's accept queue is freed at once.
_LINGER_ZERO = struct.pack("ii", 1, 0)

# connect() outcomes that decide a port at once.  ICMP errors reach
# connect() through the kernel's own translation (e.g. Linux turns
# "communication administratively prohibited" into EHOSTUNREACH and
# "port unreachable" into ECONNREFUSED), so the reason names the errno
# seen, as nmap's connect scan does.
_DECIDING_ERRNOS: dict[int, tuple[PortState, Reason]] = {
    0: (PortState.OPEN, Reason.SYN_ACK),
    errno.EISCONN: (PortState.OPEN, Reason.SYN_ACK),
    errno.ECONNREFUSED: (PortState.CLOSED, Reason.CONN_REFUSED),
    errno.EHOSTUNREACH: (PortState.FILTERED, Reason.HOST_UNREACH),
    errno.ENETUNREACH: (PortState.FILTERED, Reason.NET_UNREACH),
    errno.ENETDOWN: (PortState.FILTERED, Reason.NET_UNREACH),
    errno.ENETRESET: (PortState.FILTERED, Reason.NET_UNREACH),
    errno.ECONNABORTED: (PortState.FILTERED, Reason.NET_UNREACH),
    errno.ENONET: (PortState.FILTERED, Reason.HOST_UNREACH),
    errno.ENOPROTOOPT: (PortState.FILTERED, Reason.PROTO_UNREACH),
    errno.EACCES: (PortState.FILTERED, Reason.ADMIN_PROHIBITED),
    errno.EPERM: (PortState.FILTERED, Reason.ADMIN_PROHIBITED),
}
# Answers that prove a live endpoint: they feed the RTT estimate.
_LIVE_REASONS = frozenset({Reason.SYN_ACK, Reason.CONN_REFUSED})
_LIVE_ERRNOS = frozenset(code for code, (_, reason) in _DECIDING_ERRNOS.items() if reason in _LIVE_REASONS)
# What each deciding errno means, with the name the evidence line gives it.
_ANSWERS = {
    code: (state, reason, "connected" if code in (0, errno.EISCONN) else errno.errorcode.get(code, str(code)))
    for code, (state, reason) in _DECIDING_ERRNOS.items()
}
# The outcome code of a port whose every attempt went unanswered.
NO_ANSWER = -1
# Everything else (ETIMEDOUT, EHOSTDOWN, odd errors) counts as "this attempt
# got no answer" and goes through the retransmission logic.

_DEFAULT_MAX_PARALLELISM = 4096
_INITIAL_WINDOW = 32
_LAUNCHES_PER_ROUND = 512  # bounds work between two looks at timeouts and answers
_MAX_POLL = 0.1  # seconds; keeps the engine responsive to ``stop``
_FD_BACKOFF = 0.05  # seconds to wait after EMFILE/ENFILE before trying socket() again
_STREAM_NONBLOCK = socket.SOCK_STREAM | socket.SOCK_NONBLOCK

# A port's verdict as the engine keeps it until a host is reported:
# (errno of the deciding answer or NO_ANSWER, attempts made, seconds) where
# the seconds are the answered attempt's RTT, or the whole wait when silent.
# Building the PortResult (and its evidence line) is deferred to
# ``port_result`` so that the per-probe path stays short and a worker
# process can ship verdicts as plain tuples.
Outcome = tuple[int, int, float]


@dataclass(slots=True)
class HostPortResults:
    """One host's verdicts from a connect scan."""

    address: str
    ports: list[PortResult]
    latency: float | None  # smoothed RTT in seconds, from connects that were answered
    timed_out: bool = False  # --host-timeout expired: ``ports`` is empty, as nmap reports it
    interrupted: bool = False  # the scan was stopped: ``ports`` holds only what was decided


@dataclass(frozen=True, slots=True)
class PingResult:
    """Whether a host answered unprivileged discovery, and why we think so."""

    address: str
    up: bool
    reason: Reason
    latency: float | None


class _Probe:
    """One port of one host, across all its connect attempts."""

    __slots__ = ("host", "port", "attempts", "sock", "sent_at", "first_sent_at", "live")

    def __init__(self, host: _Host, port: int) -> None:
        self.host = host
        self.port = port
        self.attempts = 0
        self.sock: socket.socket | None = None
        self.sent_at = 0.0
        self.first_sent_at = 0.0
        self.live = False


@dataclass(eq=False)
class _Host:
    """Scan state of one target address."""

    index: int
    address: str
    family: int
    rtt: RttEstimator
    deadline: float | None
    next_port: int = 0
    retries: collections.deque[_Probe] = field(default_factory=collections.deque)
    # Attempts in the order they were sent, as (sent_at, attempt, probe); an
    # entry is stale once that attempt was answered or retransmitted.  Each
    # attempt expires by the host's *current* timeout, so the first answers
    # shorten the wait of probes sent before the RTT was known.
    sent_order: collections.deque[tuple[float, int, _Probe]] = field(default_factory=collections.deque)
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    next_send_at: float = 0.0
    # Highest retransmission count that ever drew an answer from this host:
    # a port gets one retransmission more than that (nmap's adaptive retries),
    # so loss buys more tries while a host that drops ports costs little.
    best_answered_retry: int = 0
    queued: bool = False  # in the engine's round-robin of hosts with something to send
    done: bool = False

    def sockaddr(self, port: int) -> tuple[str, int] | tuple[str, int, int, int]:
        if self.family == socket.AF_INET6:
            return (self.address, port, 0, 0)
        return (self.address, port)


class _ConnectWatcher:
    """Tells which in-flight connects finished (their socket became writable).

    Uses epoll directly where there is one: the generic selectors wrapper
    costs about a third of the CPU time of a 65535-port scan.  Elsewhere it
    falls back to ``selectors.DefaultSelector``.
    """

    def __init__(self) -> None:
        self.epoll = select.epoll() if hasattr(select, "epoll") else None
        self.selector = None if self.epoll is not None else selectors.DefaultSelector()
        self.probes: dict[int, _Probe] = {}

    def watch(self, fd: int, probe: _Probe) -> None:
        self.probes[fd] = probe
        if self.epoll is not None:
            self.epoll.register(fd, select.EPOLLOUT)
        else:
            assert self.selector is not None
            self.selector.register(fd, selectors.EVENT_WRITE)

    def forget(self, fd: int) -> None:
        """Stop watching ``fd``; call before closing it (epoll forgets closed descriptors itself)."""
        del self.probes[fd]
        if self.selector is not None:
            self.selector.unregister(fd)

    def finished(self, timeout: float) -> list[_Probe]:
        if self.epoll is not None:
            ready = [fd for fd, _ in self.epoll.poll(timeout)]
        else:
            assert self.selector is not None
            ready = [key.fd for key, _ in self.selector.select(timeout)]
        return [self.probes[fd] for fd in ready if fd in self.probes]

    def close(self) -> None:
        if self.epoll is not None:
            self.epoll.close()
        if self.selector is not None:
            self.selector.close()


def port_result(port: int, code: int, attempts: int, seconds: float) -> PortResult:
    """The reported verdict for one port, from the engine's compact outcome."""
    if code == NO_ANSWER:
        evidence = f"connect() to port {port}: no answer to {attempts} attempts in {seconds * 1000:.0f} ms"
        return PortResult(port, "tcp", PortState.FILTERED, Reason.NO_RESPONSE, None, None, (evidence,))
    state, reason, outcome = _ANSWERS[code]
    evidence = f"connect() to port {port}: {outcome} after {seconds * 1000:.2f} ms (attempt {attempts})"
    return PortResult(port, "tcp", state, reason, None, None, (evidence,))


def check_scan_inputs(hosts: Sequence[str], ports: Sequence[int]) -> None:
    """Reject what no engine could scan, with one line naming the culprit."""
    for port in ports:
        if not 0 <= port <= 65535:
            raise PortSpecError(f"port out of range: {port}")
    if len(set(hosts)) != len(hosts):
        duplicate = next(h for h in hosts if list(hosts).count(h) > 1)
        raise TargetSpecError(f"host listed twice in one group: {duplicate}")
    for host in hosts:
        _family_of(host)


def _family_of(address: str) -> int:
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        raise TargetSpecError(f"not an IP address: {address!r}") from None
    return socket.AF_INET6 if parsed.version == 6 else socket.AF_INET


class _ConnectEngine:
    """The scan loop; ``step()`` advances it and returns the hosts it finished."""

    def __init__(
        self,
        hosts: Sequence[str],
        ports: Sequence[int],
        timing: Timing,
        *,
        clock: Callable[[], float],
        first_answer_decides: bool = False,
        journal: list[tuple[int, int, int, int, float]] | None = None,
    ) -> None:
        check_scan_inputs(hosts, ports)
        self.timing = timing
        # A port listed twice would never let its host count as complete.
        self.ports = list(dict.fromkeys(ports))
        self.port_count = len(self.ports)
        self.clock = clock
        # When set, every verdict is also appended here as (host index, port,
        # *outcome) and finished hosts are reported without ports: a worker
        # process streams the journal to the process that reports results.
        self.journal = journal
        self.first_answer_decides = first_answer_decides
        self.total = len(hosts) * len(self.ports)
        self.decided = 0
        now = clock()
        self.hosts = [
            _Host(
                index=index,
                address=h,
                family=_family_of(h),
                rtt=RttEstimator(timing),
                deadline=None if timing.host_timeout is None else now + timing.host_timeout,
            )
            for index, h in enumerate(hosts)
        ]
        # Answers from any host of the group teach the timeout for hosts that
        # have not answered yet (as nmap keeps group-wide timing), so silent
        # addresses in a sweep are not each given the initial timeout.
        self.group_rtt = RttEstimator(timing)
        # The group estimate is read only for hosts without samples of their
        # own; once none is left unfinished, updating it is wasted work.
        self.unsampled_hosts = len(self.hosts)
        self.fd_limit = fd_budget()
        self.fd_cap = self.fd_limit  # lowered when the kernel says we are out of descriptors
        self.fd_retry_at = 0.0
        ceiling = min(timing.max_parallelism or _DEFAULT_MAX_PARALLELISM, self.fd_limit)
        # A ping sweep expects most addresses to stay silent: silence there
        # means "down", not congestion, so it starts with one probe per host
        # in flight instead of growing a window from answers that never come.
        initial = min(ceiling, max(_INITIAL_WINDOW, len(hosts))) if first_answer_decides else _INITIAL_WINDOW
        self.window = CongestionWindow(timing.min_parallelism, ceiling, initial)
        self.rate = RateGovernor(timing.min_rate, timing.max_rate)
        self.rate_limited = timing.min_rate is not None or timing.max_rate is not None
        self.scan_delay = timing.scan_delay
        self.watcher = _ConnectWatcher()
        self.spare: dict[int, _socket.socket] = {}  # a refused socket per family, ready to connect again
        self.waiting_hosts: set[_Host] = set()  # hosts with attempts awaiting an answer
        self.ready: collections.deque[_Host] = collections.deque()
        self.in_flight = 0
        self.finished_hosts: list[HostPortResults] = []
        self.remaining_hosts = 0
        for host in self.hosts:
            if self.ports:
                self._enqueue(host)
                self.remaining_hosts += 1
            else:
                self._finish(host)

    @property
    def finished(self) -> bool:
        return self.remaining_hosts == 0

    # -- sending -------------------------------------------------------------

    def _allowed_retransmissions(self, host: _Host) -> int:
        return min(self.timing.max_retries, host.best_answered_retry + 1)

    def _enqueue(self, host: _Host) -> None:
        if not host.queued and not host.done:
            host.queued = True
            self.ready.append(host)

    def _launch(self, now: float) -> None:
        if now < self.fd_retry_at:
            return
        rate_allows = self.rate.may_send(now)
        owed = self.rate.must_send(now)
        ready = self.ready
        window = self.window
        port_count = self.port_count
        clock = self.clock
        launched = 0
        idle_hosts = 0
        while ready and idle_hosts < len(ready) and launched < _LAUNCHES_PER_ROUND:
            if launched >= rate_allows:
                return
            if self.in_flight >= self.fd_cap:
                return
            if self.in_flight >= window.size and launched >= owed:
                return
            host = ready[0]
            if host.next_send_at > now:
                ready.rotate(-1)
                idle_hosts += 1
                continue
            if host.retries:
                probe = host.retries.popleft()
                now = clock()
                if not self._send(probe, now):
                    host.retries.appendleft(probe)
                    return
            elif host.next_port < port_count:
                now = clock()
                if not self._send_first(host, self.ports[host.next_port], now):
                    return
                host.next_port += 1
            else:
                ready.popleft()
                host.queued = False
                continue
            launched += 1
            idle_hosts = 0
            if len(ready) > 1 and ready[0] is host:
                ready.rotate(-1)

    def _send_first(self, host: _Host, port: int, now: float) -> bool:
        """A port's first connect attempt; False when out of descriptors (try later).

        The commonest outcome by far, a refusal already on the socket when
        connect() returns, is decided here without a _Probe object.
        """
        family = host.family
        address = (host.address, port) if family == socket.AF_INET else (host.address, port, 0, 0)
        sock = self.spare.pop(family, None)
        try:
            if sock is None:
                try:
                    # The bare C type: socket.socket's Python-level constructor
                    # costs more than the system call at tens of thousands a second.
                    sock = _socket.socket(family, _STREAM_NONBLOCK)
                except OSError as exc:
                    if exc.errno in FD_EXHAUSTED:
                        self._back_off_descriptors(now)
                        return False
                    raise
                result = sock.connect_ex(address)
            else:
                result = sock.connect_ex(address)
                if result == errno.ECONNABORTED:
                    # A socket whose last connect was refused reports that one
                    # as aborted first; the next call starts a new connection.
                    result = sock.connect_ex(address)
        except OSError as exc:  # e.g. a scope-less link-local v6 address
            result = exc.errno or errno.EINVAL
        if result in FD_EXHAUSTED:
            sock.close()
            self._back_off_descriptors(now)
            return False
        host.next_send_at = now + self.scan_delay
        if self.rate_limited:
            self.rate.record_sent(now)
        if result == errno.EINPROGRESS:
            # On a nearby target the answer is often processed before
            # connect() returns, so ask again at once: a second connect()
            # reports the refusal (and leaves the socket ready to connect
            # anew), 0 for an accept, or EALREADY while the answer is still
            # out, which saves a trip through epoll for most ports.
            try:
                result = sock.connect_ex(address)
            except OSError as exc:
                result = exc.errno or errno.EINVAL
            if result == errno.EALREADY:
                probe = _Probe(host, port)
                probe.attempts = 1
                probe.sent_at = probe.first_sent_at = now
                self._watch(probe, sock, now)
                return True
        if result == errno.ECONNREFUSED and family not in self.spare:
            # Linux lets a refused TCP socket connect again: keeping it
            # saves a socket() and a close() on the commonest outcome.
            self.spare[family] = sock
        else:
            if result in (0, errno.EISCONN):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
            sock.close()
        answered = self.clock()
        if result in _DECIDING_ERRNOS:
            self._answered(host, port, result, 1, answered - now, now, answered)
        else:
            probe = _Probe(host, port)
            probe.attempts = 1
            probe.sent_at = probe.first_sent_at = now
            self._no_answer(probe, answered)
        return True

    def _send(self, probe: _Probe, now: float) -> bool:
        """Retransmit: a new connect attempt on a fresh socket; False when out of descriptors."""
        host = probe.host
        try:
            sock = _socket.socket(host.family, _STREAM_NONBLOCK)
        except OSError as exc:
            if exc.errno in FD_EXHAUSTED:
                self._back_off_descriptors(now)
                return False
            raise
        try:
            result = sock.connect_ex(host.sockaddr(probe.port))
        except OSError as exc:
            result = exc.errno or errno.EINVAL
        if result in FD_EXHAUSTED:
            sock.close()
            self._back_off_descriptors(now)
            return False
        probe.attempts += 1
        probe.sent_at = now
        if probe.attempts == 1:
            probe.first_sent_at = now
        host.next_send_at = now + self.scan_delay
        if self.rate_limited:
            self.rate.record_sent(now)
        if result == errno.EINPROGRESS:
            result = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if result == 0:
                self._watch(probe, sock, now)
                return True
        elif result == 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        sock.close()
        self._conclude(probe, result, self.clock())
        return True

    def _watch(self, probe: _Probe, sock: _socket.socket, now: float) -> None:
        """Wait for an attempt whose answer has not arrived yet."""
        host = probe.host
        probe.sock = sock  # type: ignore[assignment]
        probe.live = True
        self.in_flight += 1
        self.watcher.watch(sock.fileno(), probe)
        if not host.sent_order:
            self.waiting_hosts.add(host)
        host.sent_order.append((now, probe.attempts, probe))

    def _back_off_descriptors(self, now: float) -> None:
        self.fd_cap = max(1, self.in_flight)
        self.fd_retry_at = now + _FD_BACKOFF if self.in_flight == 0 else now

    def _retire(self, probe: _Probe) -> None:
        """Close the attempt's socket and stop watching it."""
        sock = probe.sock
        if sock is not None:
            self.watcher.forget(sock.fileno())
            sock.close()
            probe.sock = None
        probe.live = False
        self.in_flight -= 1
        if self.fd_cap < self.fd_limit:
            self.fd_cap += 1

    def _retire_all(self, host: _Host) -> None:
        for _sent_at, attempt, probe in host.sent_order:
            if probe.live and probe.attempts == attempt:
                self._retire(probe)
        host.sent_order.clear()
        self.waiting_hosts.discard(host)

    # -- deciding ------------------------------------------------------------

    def _conclude(self, probe: _Probe, result: int, now: float) -> None:
        """Turn one attempt's outcome into a verdict, or into a retransmission."""
        if probe.host.done:
            return
        if result in _DECIDING_ERRNOS:
            self._answered(probe.host, probe.port, result, probe.attempts, now - probe.sent_at, probe.first_sent_at, now)
        else:
            self._no_answer(probe, now)

    def _answered(
        self, host: _Host, port: int, result: int, attempts: int, elapsed: float, first_sent_at: float, now: float
    ) -> None:
        """An attempt drew an answer that decides its port."""
        if host.done:
            return
        if result in _LIVE_ERRNOS:
            rtt = host.rtt
            rtt.update(elapsed)
            if self.unsampled_hosts:
                self.group_rtt.update(elapsed)
                if rtt.samples == 1:
                    self.unsampled_hosts -= 1
        window = self.window
        if window.cwnd < window.maximum:
            window.on_answer()
        if attempts > 1:
            # The port answers, yet an earlier attempt went unanswered: that
            # attempt was lost on the way, which is what congestion looks like.
            # (A timeout alone cannot tell a congested path from a firewall.)
            window.on_drop(first_sent_at, now)
            host.best_answered_retry = max(host.best_answered_retry, attempts - 1)
        self._record(host, port, (result, attempts, elapsed))

    def _no_answer(self, probe: _Probe, now: float) -> None:
        host = probe.host
        if probe.attempts - 1 < self._allowed_retransmissions(host):
            host.retries.append(probe)
            self._enqueue(host)
            return
        self._record(host, probe.port, (NO_ANSWER, probe.attempts, now - probe.first_sent_at))

    def _record(self, host: _Host, port: int, outcome: Outcome) -> None:
        outcomes = host.outcomes
        outcomes[port] = outcome
        self.decided += 1
        if self.journal is not None:
            self.journal.append((host.index, port, *outcome))
        if len(outcomes) == self.port_count:
            self._finish(host)
        elif self.first_answer_decides and outcome[0] in _LIVE_ERRNOS:
            self._finish(host)

    def _finish(self, host: _Host, *, timed_out: bool = False, interrupted: bool = False) -> None:
        if host.done:
            return
        host.done = True
        if not host.rtt.samples:
            self.unsampled_hosts -= 1
        self._retire_all(host)
        host.retries.clear()
        if host.queued:
            self.ready.remove(host)
            host.queued = False
        undecided = self.port_count - len(host.outcomes)
        self.decided += undecided if timed_out else 0
        if timed_out or self.journal is not None:
            ports = []
        else:
            outcomes = host.outcomes
            ports = [port_result(port, *outcomes[port]) for port in sorted(outcomes)]
        self.finished_hosts.append(HostPortResults(host.address, ports, host.rtt.srtt, timed_out, interrupted))
        if self.ports:
            self.remaining_hosts -= 1

    # -- the loop ------------------------------------------------------------

    @staticmethod
    def _drop_stale(host: _Host) -> None:
        order = host.sent_order
        while order and (not order[0][2].live or order[0][2].attempts != order[0][1]):
            order.popleft()

    def _expire(self, now: float) -> None:
        for host in list(self.waiting_hosts):
            order = host.sent_order
            limit = now - self._timeout(host)
            while order:
                sent_at, attempt, probe = order[0]
                current = probe.live and probe.attempts == attempt
                if current and sent_at > limit:
                    break
                order.popleft()
                if current:
                    self._retire(probe)
                    self._no_answer(probe, now)  # may finish the host and empty ``order``
            if not order:
                self.waiting_hosts.discard(host)

    def _next_expiry(self) -> float | None:
        soonest: float | None = None
        for host in self.waiting_hosts:
            self._drop_stale(host)
            if host.sent_order:
                at = host.sent_order[0][0] + self._timeout(host)
                soonest = at if soonest is None else min(soonest, at)
        return soonest

    def _timeout(self, host: _Host) -> float:
        return host.rtt.timeout() if host.rtt.samples else self.group_rtt.timeout()

    def _enforce_host_timeouts(self, now: float) -> None:
        for host in self.hosts:
            if not host.done and host.deadline is not None and now >= host.deadline:
                self._finish(host, timed_out=True)

    def _poll_timeout(self, now: float) -> float:
        waits = [_MAX_POLL]
        expiry = self._next_expiry()
        if expiry is not None:
            waits.append(expiry - now)
        if self.ready:
            if now < self.fd_retry_at:
                waits.append(self.fd_retry_at - now)
            else:
                if self.in_flight < min(self.window.size, self.fd_cap):
                    waits.append(min(h.next_send_at for h in self.ready) - now)
                rate_wait = self.rate.next_event(now)
                if rate_wait is not None:
                    waits.append(rate_wait)
        deadlines = [h.deadline for h in self.hosts if not h.done and h.deadline is not None]
        if deadlines:
            waits.append(min(deadlines) - now)
        return max(0.0, min(waits))

    def step(self) -> list[HostPortResults]:
        """Send what may be sent, wait briefly for answers, decide what can be decided."""
        now = self.clock()
        self._enforce_host_timeouts(now)
        self._expire(now)
        self._launch(now)
        timeout = self._poll_timeout(self.clock()) if self.in_flight or self.ready else 0.0
        if self.in_flight:
            finished = self.watcher.finished(timeout)
            now = self.clock()
            for probe in finished:
                sock = probe.sock
                if not probe.live or sock is None:
                    continue
                result = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if result == 0:
                    # Linger 0: close() resets the connection instead of a FIN
                    # handshake, so neither side keeps state for it.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
                self._retire(probe)
                self._conclude(probe, result, now)
        elif self.ready and timeout > 0:
            time.sleep(timeout)
        done, self.finished_hosts = self.finished_hosts, []
        return done

    def interrupt(self) -> list[HostPortResults]:
        """Stop now: report every unfinished host with what it has decided."""
        for host in self.hosts:
            self._finish(host, interrupted=True)
        done, self.finished_hosts = self.finished_hosts, []
        return done

    def close(self) -> None:
        for host in self.hosts:
            self._retire_all(host)
        for sock in self.spare.values():
            sock.close()
        self.spare.clear()
        self.watcher.close()


def connect_scan(
    hosts: Sequence[str],
    ports: Sequence[int],
    timing: Timing,
    *,
    on_host_done: Callable[[HostPortResults], None],
    on_progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Connect-scan ``ports`` (in the order given) on every host of one group, concurrently.

    ``on_host_done`` is called once per host as soon as all its ports are
    decided, so output can stream.  Setting ``stop`` ends the scan within
    about a tenth of a second; unfinished hosts are then reported with
    ``interrupted=True``.  A scan with many probes runs in one worker
    process per CPU core (see ``workers``), with the same results.
    """
    check_scan_inputs(hosts, ports)
    from leadline.engines.procpool import usable_cores, worker_count
    from leadline.engines.workers import split_connect_scan

    unique_ports = list(dict.fromkeys(ports))
    workers = worker_count(len(hosts), len(unique_ports), timing, usable_cores())
    if workers > 1:
        split_connect_scan(
            hosts, unique_ports, timing, workers, on_host_done=on_host_done, on_progress=on_progress, stop=stop, clock=clock
        )
        return
    engine = _ConnectEngine(hosts, unique_ports, timing, clock=clock)
    last_progress = -1
    try:
        for result in engine.finished_hosts:  # hosts with nothing to scan
            on_host_done(result)
        engine.finished_hosts = []
        while not engine.finished:
            if stop is not None and stop.is_set():
                for result in engine.interrupt():
                    on_host_done(result)
                break
            for result in engine.step():
                on_host_done(result)
            if on_progress is not None and engine.decided != last_progress:
                last_progress = engine.decided
                on_progress(engine.decided, engine.total)
    finally:
        engine.close()


def _ping_verdict(result: HostPortResults) -> PingResult:
    for port in result.ports:
        if port.reason in _LIVE_REASONS:
            return PingResult(result.address, True, port.reason, result.latency)
    for port in result.ports:
        if port.reason is not Reason.NO_RESPONSE:
            return PingResult(result.address, False, port.reason, result.latency)
    return PingResult(result.address, False, Reason.NO_RESPONSE, result.latency)


def connect_ping(
    hosts: Sequence[str],
    ports: Sequence[int] = (80, 443),
    timing: Timing | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[PingResult]:
    """Unprivileged host discovery: a host is up if any of ``ports`` accepts or refuses a connect.

    A refusal proves a live TCP stack as well as an accept does.  A host is
    down (no-response) when every port's attempts time out; an ICMP error
    from the path names the reason instead.  Results are yielded as soon
    as each host is decided; the first answering port decides a host.
    """
    if timing is None:
        from leadline.config import TIMING_TEMPLATES

        timing = TIMING_TEMPLATES[3]
    engine = _ConnectEngine(hosts, ports, timing, clock=clock, first_answer_decides=True)
    try:
        for result in engine.finished_hosts:
            yield _ping_verdict(result)
        engine.finished_hosts = []
        while not engine.finished:
            for result in engine.step():
                yield _ping_verdict(result)
    finally:
        engine.close()
