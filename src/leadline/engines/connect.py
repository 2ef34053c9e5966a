"""The connect() scan engine: many non-blocking connects in flight on one epoll.

A connect scan needs no privileges: the kernel does the handshake and
reports the outcome as an errno, which maps onto nmap's verdicts.  This
module is only the I/O: sockets, epoll, and turning what the kernel says
into events for ``core.connectsession.ConnectSession``, which decides
what to try next, when an attempt is given up, how many retransmissions a
port gets and how fast attempts may start (see its docstring for the
contract and its invariants).

Promises kept here, on top of the session's:
  * running out of descriptors or local ports slows the scan, never fails it;
  * every socket opened is closed before the engine returns;
  * ``stop`` is noticed within a tenth of a second.

A retransmission is a fresh socket: the old one is closed (with an RST,
by SO_LINGER 0) and a new connect() is made.  So every answer belongs to
exactly one attempt, and its RTT sample is never ambiguous.
"""

from __future__ import annotations

import _socket
import errno
import ipaddress
import select
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import cast

from leadline.config import Timing
from leadline.core.connectsession import Attempt, ConnectSession, HostPortResults, Labels, is_live_answer
from leadline.engines.limits import FD_EXHAUSTED, fd_budget
from leadline.engines.procpool import usable_cores, worker_count
from leadline.engines.workers import Journal, RttBoard, split_connect_scan
from leadline.errors import PortSpecError, TargetSpecError
from leadline.model import Reason

__all__ = ["HostPortResults", "Labels", "PingResult", "connect_ping", "connect_scan"]

# close() on a socket with linger on and a zero timeout sends RST: no
# TIME_WAIT on our side, and the target's accept queue is freed at once.
_LINGER_ZERO = struct.pack("ii", 1, 0)
_LAUNCHES_PER_ROUND = 512  # bounds work between two looks at timeouts and answers
_MAX_POLL = 0.1  # seconds; keeps the engine responsive to ``stop``
_STREAM_NONBLOCK = socket.SOCK_STREAM | socket.SOCK_NONBLOCK


@dataclass(frozen=True, slots=True)
class PingResult:
    """Whether a host answered unprivileged discovery, and why we think so."""

    address: str
    up: bool
    reason: Reason
    latency: float | None


class _ConnectWatcher:
    """Tells which in-flight connects finished (their socket became writable).

    Uses epoll directly where there is one: the generic selectors wrapper
    costs about a third of the CPU time of a 65535-port scan.  Elsewhere it
    falls back to ``selectors.DefaultSelector``.
    """

    def __init__(self) -> None:
        self.epoll = select.epoll() if hasattr(select, "epoll") else None
        self.selector = None if self.epoll is not None else selectors.DefaultSelector()
        self.probes: dict[int, Attempt] = {}

    def watch(self, fd: int, probe: Attempt) -> None:
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

    def finished(self, timeout: float) -> list[Attempt]:
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



class _ConnectLoop:
    """Sockets and epoll for one ``ConnectSession``; ``step()`` advances both and returns finished hosts."""

    def __init__(
        self,
        hosts: Sequence[str],
        ports: Sequence[int],
        timing: Timing,
        *,
        clock: Callable[[], float],
        first_answer_decides: bool = False,
        journal: Journal | None = None,
        board: RttBoard | None = None,
        labels: Labels | None = None,
    ) -> None:
        check_scan_inputs(hosts, ports)
        self.clock = clock
        self.board = board  # round trips shared with the other workers of a split scan
        self.posted = False
        self.addresses = list(hosts)
        self.families = [_family_of(h) for h in hosts]
        self.session = ConnectSession(
            hosts, ports, timing, clock(), fd_limit=fd_budget(), first_answer_decides=first_answer_decides, journal=journal,
            labels=labels,
        )
        self.watcher = _ConnectWatcher()
        self.spare: dict[int, _socket.socket] = {}  # a refused socket per family, ready to connect again

    def _launch(self, now: float) -> None:
        session = self.session
        clock = self.clock
        for _ in range(_LAUNCHES_PER_ROUND):
            attempt = session.next_attempt(now)
            if attempt is None:
                return
            now = clock()
            if not self._start(attempt, now):
                return

    def _start(self, attempt: Attempt, now: float) -> bool:
        """Start one connect attempt; False when out of descriptors (the session then waits).

        The commonest outcome by far, a refusal already on the socket when
        connect() returns, is reported at once, without a trip through epoll.
        """
        family = self.families[attempt.host]
        host = self.addresses[attempt.host]
        address = (host, attempt.port) if family == socket.AF_INET else (host, attempt.port, 0, 0)
        sock = self.spare.pop(family, None)
        try:
            if sock is None:
                # The bare C type: socket.socket's Python-level constructor
                # costs more than the system call at tens of thousands a second.
                sock = _socket.socket(family, _STREAM_NONBLOCK)
                result = sock.connect_ex(address)
            else:
                result = sock.connect_ex(address)
                if result == errno.ECONNABORTED:
                    # A socket whose last connect was refused reports that one
                    # as aborted first; the next call starts a new connection.
                    result = sock.connect_ex(address)
        except OSError as exc:  # no socket to be had, or e.g. a scope-less link-local v6 address
            result = exc.errno or errno.EINVAL
        if result in FD_EXHAUSTED:
            if sock is not None:
                sock.close()
            self.session.no_socket(attempt, now)
            return False
        if sock is not None and result == errno.EINPROGRESS:
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
                attempt.handle = sock
                self.watcher.watch(sock.fileno(), attempt)
                self.session.sent(attempt, now)
                return True
        if sock is not None:
            if result == errno.ECONNREFUSED and family not in self.spare:
                # Linux lets a refused TCP socket connect again: keeping it
                # saves a socket() and a close() on the commonest outcome.
                self.spare[family] = sock
            else:
                if result in (0, errno.EISCONN):
                    # Linger 0: close() resets the connection instead of a FIN
                    # handshake, so neither side keeps state for it.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
                sock.close()
        self.session.answered_at_once(attempt, result, now, self.clock())
        return True

    def _close(self, attempt: Attempt) -> None:
        """Close the attempt's socket and stop watching it."""
        sock = cast("_socket.socket | None", attempt.handle)
        if sock is not None:
            self.watcher.forget(sock.fileno())
            sock.close()
            attempt.handle = None

    def _close_abandoned(self) -> None:
        for attempt in self.session.abandoned():
            self._close(attempt)

    def _collect(self, timeout: float) -> None:
        """Wait up to ``timeout`` for in-flight connects; hand their outcomes to the session."""
        finished = self.watcher.finished(timeout)
        now = self.clock()
        session = self.session
        for attempt in finished:
            sock = cast("_socket.socket | None", attempt.handle)
            if not attempt.live or sock is None:
                continue
            result = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if result == 0:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
            self._close(attempt)
            session.completed(attempt, result, now)

    def _share_rtt(self, board: RttBoard) -> None:
        """Post the first round trip heard here; until then, take one another worker posted."""
        session = self.session
        if self.posted:
            return
        measured = session.measured_rtt
        if measured is not None:
            board.post(measured)
            self.posted = True
        elif (seen := board.read()) is not None:
            session.learn_rtt(seen)
            self.posted = True  # the board has it already

    def step(self) -> list[HostPortResults]:
        """Start what may start, wait briefly for answers, and return the hosts that finished."""
        session = self.session
        if self.board is not None:
            self._share_rtt(self.board)
        session.expire(self.clock())
        self._close_abandoned()
        self._launch(self.clock())
        timeout = 0.0
        if session.in_flight or session.ready:
            wait = session.wakeup(self.clock())
            timeout = _MAX_POLL if wait is None else min(wait, _MAX_POLL)
        if session.in_flight:
            self._collect(timeout)
        elif session.ready and timeout > 0:
            time.sleep(timeout)
        self._close_abandoned()
        return session.finished_hosts()

    def close(self) -> None:
        """Close every socket still open."""
        self._close_abandoned()
        for attempt in list(self.watcher.probes.values()):
            self._close(attempt)
        for sock in self.spare.values():
            sock.close()
        self.spare.clear()
        self.watcher.close()


def _drive(
    loop: _ConnectLoop, stop: threading.Event | None, report: Callable[[int, list[HostPortResults]], None]
) -> None:
    """Run ``loop`` to the end (or until ``stop``), reporting (ports decided, finished hosts) as it goes."""
    session = loop.session
    try:
        report(session.decided, session.finished_hosts())  # hosts with nothing to scan
        while not session.finished:
            if stop is not None and stop.is_set():
                session.interrupt()
                report(session.decided, session.finished_hosts())
                break
            finished = loop.step()
            report(session.decided, finished)
    finally:
        loop.close()


def _scan_share(
    hosts: Sequence[str],
    ports: Sequence[int],
    timing: Timing,
    clock: Callable[[], float],
    journal: Journal,
    stopping: threading.Event,
    flush: Callable[[int, list[HostPortResults]], None],
    board: RttBoard,
) -> None:
    """One worker process's share of a split scan: verdicts go to ``journal``, hosts are reported without ports."""
    _drive(_ConnectLoop(hosts, ports, timing, clock=clock, journal=journal, board=board), stopping, flush)


def connect_scan(
    hosts: Sequence[str],
    ports: Sequence[int],
    timing: Timing,
    *,
    on_host_done: Callable[[HostPortResults], None],
    on_progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    labels: Labels | None = None,
) -> None:
    """Connect-scan ``ports`` (in the order given) on every host of one group, concurrently.

    ``on_host_done`` is called once per host as soon as all its ports are
    decided, so output can stream.  Setting ``stop`` ends the scan within
    about a tenth of a second; unfinished hosts are then reported with
    ``interrupted=True``.  A scan with many probes runs in one worker
    process per CPU core (see ``workers``), with the same results.
    ``labels`` names the ports and says whether they carry their evidence
    line (by default: no names, with evidence).
    """
    check_scan_inputs(hosts, ports)
    unique_ports = list(dict.fromkeys(ports))
    workers = worker_count(len(hosts), len(unique_ports), timing, usable_cores())
    if workers > 1:
        split_connect_scan(
            hosts, unique_ports, timing, workers, _scan_share,
            on_host_done=on_host_done, on_progress=on_progress, stop=stop, clock=clock, labels=labels,
        )
        return
    loop = _ConnectLoop(hosts, unique_ports, timing, clock=clock, labels=labels)
    total = loop.session.total
    last_progress = -1

    def report(decided: int, finished: list[HostPortResults]) -> None:
        nonlocal last_progress
        for result in finished:
            on_host_done(result)
        if on_progress is not None and decided != last_progress:
            last_progress = decided
            on_progress(decided, total)

    _drive(loop, stop, report)


def _ping_verdict(result: HostPortResults) -> PingResult:
    for port in result.ports:
        if is_live_answer(port.reason):
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
    loop = _ConnectLoop(hosts, ports, timing, clock=clock, first_answer_decides=True)
    session = loop.session
    try:
        for result in session.finished_hosts():
            yield _ping_verdict(result)
        while not session.finished:
            for result in loop.step():
                yield _ping_verdict(result)
    finally:
        loop.close()
