"""The connect scan's decisions, with no sockets and no clock.

A connect scan asks the kernel to make each handshake and reads the outcome
as an errno.  Everything that is policy lives here: which (host, port) to
try next, how many attempts may be in flight, how fast they may start, when
an attempt is given up, how many retransmissions a port gets, what each
outcome means, and when a host is done.  The engine (``engines/connect``)
owns the sockets and the waiting; it tells the session what happened and
does what the session says.  Time is a parameter of every method.

The contract, as the engine drives it::

    session = ConnectSession(addresses, ports, timing, now, fd_limit=budget)
    while not session.finished:
        session.expire(now)                      # timeouts, --host-timeout
        while (attempt := session.next_attempt(now)) is not None:
            ... socket(); connect() ...
            session.no_socket(attempt, now)      # EMFILE & co: back in line, stop starting
            session.sent(attempt, now)           # in flight: an answer is awaited
            session.answered_at_once(attempt, errno, now, then)  # connect() itself decided
        wait at most session.wakeup(now) seconds for in-flight attempts
        session.completed(attempt, errno, now)   # for each attempt that finished
        close the socket of every attempt in session.abandoned()
        report every host in session.finished_hosts()

Events in: "attempt sent", "connect completed with errno X at t", "no socket
to be had" (descriptor or local port exhaustion), and the passing of time
(``expire``: attempts whose timeout passed, hosts whose --host-timeout did);
also a round trip to the group measured elsewhere (``learn_rtt``: another
worker process of a split scan).
Decisions out: attempts to start, ports decided (``port_result``: nmap's
state and reason: syn-ack, conn-refused, no-response, host-unreach ...),
attempts to abandon, hosts done.

Invariants:
  * every port of every host ends with exactly one verdict, unless its host
    timed out (reported with no ports) or the scan was interrupted
    (reported with the ports decided so far);
  * an attempt is live from ``sent`` until it completes, times out or its
    host finishes; ``in_flight`` counts live attempts, never exceeds the
    descriptor cap, and exceeds the congestion window only by what
    --min-rate owes;
  * a live attempt that the session stops waiting for appears exactly once
    in ``abandoned()``, and a later ``completed`` for it is ignored;
  * a port is called filtered/no-response only after its retransmissions
    went unanswered: one more than the most any answered port of its host
    needed (nmap's adaptive retries), at most --max-retries;
  * with --max-rate, attempts never start faster than the rate (one pacer,
    ``core.ratecontrol.RateController``, the raw scans' own); with
    --min-rate, attempts owed to it start even when the window is full;
  * ``wakeup`` never asks to be woken for a send the window or the
    descriptor cap would refuse, so a full window means a quiet wait.

Congestion: an answer to a retransmission means the earlier attempt was
lost on the way, and halves the window (at most once per flight).  Both
answers and silence open it: a timeout on a path that shows no loss is a
filtering host's silence, not congestion, and costs the path nothing, so a
host that drops most ports is probed with a wide window instead of one
that never grows.  Before anything has answered, every attempt waits the
initial timeout (a second by default) and silence would open the window
only once a second; so until the first answer the window doubles once per
--min-rtt-timeout of silence while it is full: a slow start clocked by
the shortest round trip the user allows, which finds the few open ports
of a mostly-filtered host in a fraction of a second.
"""

from __future__ import annotations

import collections
import errno
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from leadline.config import Timing
from leadline.core.ratecontrol import DEFAULT_MAX_RATE, RateController
from leadline.core.timing import CongestionWindow, RttEstimator
from leadline.model import PortResult, PortState, Reason

__all__ = [
    "DEFAULT_MAX_PARALLELISM",
    "NO_ANSWER",
    "Attempt",
    "ConnectPacer",
    "ConnectSession",
    "HostPortResults",
    "Labels",
    "Outcome",
    "is_live_answer",
    "port_result",
]

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
# The outcome code of a port whose every attempt went unanswered.  Every
# other errno (ETIMEDOUT, EHOSTDOWN, odd errors) means "this attempt got
# no answer" and goes through the retransmission logic.
NO_ANSWER = -1

DEFAULT_MAX_PARALLELISM = 4096
_INITIAL_WINDOW = 32
_MIN_QUIET_PERIOD = 0.01  # seconds; the unanswered slow start's clock when --min-rtt-timeout is 0
_FD_BACKOFF = 0.05  # seconds to wait after EMFILE/ENFILE before trying socket() again
# With --max-rate, wake for a batch of this many seconds' worth of starts,
# not for every single token: the difference is a few hundred wake-ups a
# second against thousands.
_RATE_BATCH = 0.004

# A port's verdict as kept until its host is reported: (errno of the
# deciding answer or NO_ANSWER, attempts made, seconds) where the seconds
# are the answered attempt's RTT, or the whole wait when silent.  Compact,
# so that a worker process can ship verdicts as plain tuples.
Outcome = tuple[int, int, float]


@dataclass(slots=True)
class HostPortResults:
    """One host's verdicts from a connect scan."""

    address: str
    ports: list[PortResult]
    latency: float | None  # smoothed RTT in seconds, from connects that were answered
    timed_out: bool = False  # --host-timeout expired: ``ports`` is empty, as nmap reports it
    interrupted: bool = False  # the scan was stopped: ``ports`` holds only what was decided


def is_live_answer(reason: Reason) -> bool:
    """True for answers only a live TCP stack gives (an accept or a refusal)."""
    return reason in _LIVE_REASONS


def port_result(port: int, code: int, attempts: int, seconds: float, service: str | None = None,
                evidence: bool = True) -> PortResult:
    """The reported verdict for one port, from its compact outcome.

    ``service`` is the name to label the port with; ``evidence=False``
    leaves out the line --explain prints.  The caller that knows both
    (the pipeline) so builds each port's result once: a -p- scan makes
    65,535 of them, and the evidence line's float formatting alone costs
    more than the rest of the result.
    """
    if code == NO_ANSWER:
        lines = (f"connect() to port {port}: no answer to {attempts} attempts in {seconds * 1000:.0f} ms",) if evidence else ()
        return PortResult(port, "tcp", PortState.FILTERED, Reason.NO_RESPONSE, None, service, lines)
    state, reason, outcome = _ANSWERS[code]
    lines = (f"connect() to port {port}: {outcome} after {seconds * 1000:.2f} ms (attempt {attempts})",) if evidence else ()
    return PortResult(port, "tcp", state, reason, None, service, lines)


@dataclass(frozen=True, slots=True)
class Labels:
    """What a scan's reported ports carry besides the verdict: service names, and whether the evidence line."""

    names: Mapping[int, str] | None = None  # port -> service name
    evidence: bool = True

    def result(self, port: int, outcome: Outcome) -> PortResult:
        names = self.names
        return port_result(port, *outcome, names.get(port) if names is not None else None, self.evidence)


class Attempt:
    """One port of one host, across all its connect attempts.

    ``handle`` is the engine's: it hangs the attempt's socket there; the
    session never reads it.
    """

    __slots__ = ("host", "port", "tries", "sent_at", "first_sent_at", "live", "handle")

    def __init__(self, host: int, port: int) -> None:
        self.host = host
        self.port = port
        self.tries = 0
        self.sent_at = 0.0
        self.first_sent_at = 0.0
        self.live = False
        self.handle: object = None


@dataclass(eq=False)
class _Host:
    """Scan state of one target address."""

    index: int
    address: str
    rtt: RttEstimator
    deadline: float | None
    next_port: int = 0
    retries: collections.deque[Attempt] = field(default_factory=collections.deque)
    # Attempts in the order they were sent, as (sent_at, try, attempt); an
    # entry is stale once that try was answered or retransmitted.  Each try
    # expires by the host's *current* timeout, so the first answers shorten
    # the wait of attempts sent before the RTT was known.
    sent_order: collections.deque[tuple[float, int, Attempt]] = field(default_factory=collections.deque)
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    next_send_at: float = 0.0
    # Highest retransmission count that ever drew an answer from this host.
    best_answered_retry: int = 0
    # Ports called silent under a smaller retry budget than the host has now
    # earned: their verdict stands only until an answered retransmission
    # raises that budget, then they are tried again.  Journaled when the host ends.
    silent: dict[int, Attempt] = field(default_factory=dict)
    queued: bool = False  # in the round-robin of hosts with something to send
    done: bool = False

    def reopen_silent(self, budget: int) -> int:
        """Loss has just shown itself: ports called silent on fewer tries than ``budget`` allows go back
        in line.  Returns how many did.

        A port whose every try was lost before any retransmission had been
        answered would otherwise stay filtered, though an open port among
        the first probed of a lossy path is as likely to be lost as any.
        """
        reopened = [attempt for attempt in self.silent.values() if attempt.tries - 1 < budget]
        for attempt in reopened:
            del self.silent[attempt.port]
            del self.outcomes[attempt.port]
            self.retries.append(attempt)
        return len(reopened)

    def oldest_sent(self) -> tuple[float, int, Attempt] | None:
        """The oldest try still awaited (stale entries dropped on the way), or None."""
        order = self.sent_order
        while order and (not order[0][2].live or order[0][2].tries != order[0][1]):
            order.popleft()
        return order[0] if order else None

    def take_live(self) -> list[Attempt]:
        """Every try still awaited; the host stops waiting for all of them."""
        live = [attempt for _sent_at, tries, attempt in self.sent_order if attempt.live and attempt.tries == tries]
        self.sent_order.clear()
        return live


class ConnectPacer:
    """How many attempts may be in flight and how fast they may start.

    The congestion window and the descriptor cap bound what is in flight;
    --max-rate and --min-rate are a ``RateController`` used as a plain pacer
    (its rate experiments are for raw scans, whose probes the window does
    not govern); --min-rate's debt lets owed attempts past a full window.
    """

    def __init__(self, timing: Timing, fd_limit: int, initial_window: int) -> None:
        ceiling = min(timing.max_parallelism or DEFAULT_MAX_PARALLELISM, fd_limit)
        self.window = CongestionWindow(timing.min_parallelism, ceiling, min(ceiling, initial_window))
        bounded = timing.min_rate is not None or timing.max_rate is not None
        cap = timing.max_rate or DEFAULT_MAX_RATE
        self.rate = (
            RateController(min_rate=timing.min_rate, max_rate=cap, initial_rate=cap, adaptive=False) if bounded else None
        )
        self.min_rate = None if timing.min_rate is None else min(timing.min_rate, cap)
        self.fd_limit = fd_limit
        self.fd_cap = fd_limit  # lowered when the kernel says we are out of descriptors
        self.fd_retry_at = -math.inf
        self.in_flight = 0
        self.started = 0
        self.first_start: float | None = None

    def owed(self, now: float) -> int:
        """Attempts --min-rate wants started by ``now`` beyond those started."""
        if self.min_rate is None:
            return 0
        if self.first_start is None:
            return 1
        return max(0, math.floor(self.min_rate * (now - self.first_start)) + 1 - self.started)

    def may_start(self, now: float) -> bool:
        """Whether one more attempt may start at ``now``."""
        if now < self.fd_retry_at or self.in_flight >= self.fd_cap:
            return False
        if self.rate is not None and self.rate.allowed(now) < 1:
            return False
        return self.in_flight < self.window.size or self.owed(now) > 0

    def on_start(self, now: float) -> None:
        """An attempt left (whether or not it stays in flight)."""
        if self.rate is not None:
            self.rate.on_send(now)
            if self.first_start is None:
                self.first_start = now
            self.started += 1

    def on_finish(self) -> None:
        """A live attempt ended: its descriptor is free again."""
        self.in_flight -= 1
        if self.fd_cap < self.fd_limit:
            self.fd_cap += 1

    def on_answer(self, tries: int, first_sent_at: float, now: float) -> None:
        """An attempt was answered; a retransmission's answer means an earlier try was lost."""
        window = self.window
        if window.cwnd < window.maximum:
            window.on_answer()
        if tries > 1:
            window.on_drop(first_sent_at, now)

    def on_silence(self) -> None:
        """An attempt timed out: with no loss seen, silence is a firewall's, so open the window."""
        window = self.window
        if window.cwnd < window.maximum:
            window.on_answer()

    def open_quietly(self) -> None:
        """Nothing has answered yet and the window is full: double it (slow start without answers)."""
        window = self.window
        for _ in range(window.size):
            if window.cwnd >= window.maximum:
                return
            window.on_answer()

    def on_no_socket(self, now: float) -> None:
        """socket() or connect() found no descriptor or local port: hold at what is in flight."""
        self.fd_cap = max(1, self.in_flight)
        self.fd_retry_at = now + _FD_BACKOFF if self.in_flight == 0 else now

    def start_wait(self, now: float) -> float | None:
        """Seconds until the pacer would let an attempt start, or None when the window is full.

        A full window reopens only when an attempt ends, which the engine
        sees anyway: waking for anything else would be a busy loop.
        """
        if now < self.fd_retry_at:
            return self.fd_retry_at - now
        owed_at: float | None = None
        if self.min_rate is not None and self.first_start is not None:
            owed_at = max(0.0, self.first_start + self.started / self.min_rate - now)
        room = min(self.window.size, self.fd_cap) - self.in_flight
        if room <= 0:
            return owed_at if self.in_flight < self.fd_cap else None
        if self.rate is None:
            return 0.0
        rate = self.rate
        batch = min(room, max(1, int(rate.rate * _RATE_BATCH)))
        tokens = rate.allowed(now)
        wait = 0.0 if tokens >= batch else (batch - tokens) / rate.rate
        return wait if owed_at is None else min(wait, owed_at)


class ConnectSession:
    """The scan of one host group; see the module docstring for the contract."""

    def __init__(
        self,
        addresses: Sequence[str],
        ports: Sequence[int],
        timing: Timing,
        now: float,
        *,
        fd_limit: int,
        first_answer_decides: bool = False,
        journal: list[tuple[int, int, int, int, float]] | None = None, labels: Labels | None = None,
    ) -> None:
        self.timing = timing
        self.result = (labels or Labels()).result  # a decided port's reported result
        # A port listed twice would never let its host count as complete.
        self.ports = list(dict.fromkeys(ports))
        self.port_count = len(self.ports)
        # When set, every verdict is also appended here as (host index, port, *outcome) and finished hosts are
        # reported without ports: a worker process streams the journal to the process that reports results.
        self.journal = journal
        self.first_answer_decides = first_answer_decides
        self.total = len(addresses) * len(self.ports)
        self.decided = 0
        deadline = None if timing.host_timeout is None else now + timing.host_timeout
        self.hosts = [_Host(i, a, RttEstimator(timing), deadline) for i, a in enumerate(addresses)]
        # Answers from any host of the group teach the timeout for hosts that
        # have not answered yet (as nmap keeps group-wide timing), so silent
        # addresses in a sweep are not each given the initial timeout.
        self.group_rtt = RttEstimator(timing)
        self.unsampled_hosts = len(self.hosts)
        # A ping sweep expects most addresses to stay silent: it starts with
        # one attempt per host in flight instead of growing a window.
        initial = max(_INITIAL_WINDOW, len(addresses)) if first_answer_decides else _INITIAL_WINDOW
        self.pacer = ConnectPacer(timing, fd_limit, initial)
        self.scan_delay = timing.scan_delay
        self.heard = False  # some attempt drew an answer from a live stack
        self.quiet_period = max(_MIN_QUIET_PERIOD, timing.min_rtt_timeout)
        self.quiet_growth_at = now + self.quiet_period
        self.waiting_hosts: set[_Host] = set()  # hosts with attempts awaiting an answer
        self.ready: collections.deque[_Host] = collections.deque()
        self._abandoned: list[Attempt] = []
        self._finished_hosts: list[HostPortResults] = []
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

    @property
    def in_flight(self) -> int:
        return self.pacer.in_flight

    @property
    def measured_rtt(self) -> float | None:
        """The group's smoothed round trip from answers heard here, or None before any."""
        return self.group_rtt.srtt if self.group_rtt.samples else None

    def learn_rtt(self, srtt: float) -> None:
        """A round trip to this group measured elsewhere (another worker of a split scan), used until an
        answer is heard here: hosts without samples of their own wait a timeout from it, not the initial one."""
        if not self.heard and not self.group_rtt.samples:
            self.group_rtt.update(srtt)
            self.heard = True

    def finished_hosts(self) -> list[HostPortResults]:
        """Hosts finished since the last call, in the order they finished."""
        done, self._finished_hosts = self._finished_hosts, []
        return done

    def abandoned(self) -> list[Attempt]:
        """Live attempts the session stopped waiting for since the last call: close their sockets."""
        dropped, self._abandoned = self._abandoned, []
        return dropped

    # -- what to start -------------------------------------------------------

    def _enqueue(self, host: _Host) -> None:
        if not host.queued and not host.done:
            host.queued = True
            self.ready.append(host)

    def next_attempt(self, now: float) -> Attempt | None:
        """The next attempt to start at ``now``, or None when nothing may start now."""
        ready, pacer = self.ready, self.pacer
        # Once per attempt: the usual case (no pacing, no descriptor trouble, in_flight < int(cwnd)) inline.
        if not ready or ((pacer.rate is not None or pacer.in_flight + 1 > pacer.window.cwnd or pacer.in_flight
                          >= pacer.fd_cap or now < pacer.fd_retry_at) and not pacer.may_start(now)):
            return None
        for _ in range(len(ready)):
            host = ready[0]
            if host.next_send_at > now:
                ready.rotate(-1)
                continue
            # A host in ``ready`` always has something to send.
            if host.retries:
                attempt = host.retries.popleft()
            else:
                attempt = Attempt(host.index, self.ports[host.next_port])
                host.next_port += 1
            if not host.retries and host.next_port >= self.port_count:
                ready.popleft()
                host.queued = False
            elif len(ready) > 1:
                ready.rotate(-1)
            return attempt
        return None

    def no_socket(self, attempt: Attempt, now: float) -> None:
        """No descriptor or local port for ``attempt``: it waits in line, and starting slows."""
        host = self.hosts[attempt.host]
        if not host.done:
            host.retries.appendleft(attempt)
            self._enqueue(host)
        self.pacer.on_no_socket(now)

    def _count_start(self, attempt: Attempt, host: _Host, now: float) -> None:
        attempt.tries += 1
        attempt.sent_at = now
        if attempt.tries == 1:
            attempt.first_sent_at = now
        host.next_send_at = now + self.scan_delay
        if self.pacer.rate is not None:  # only a paced scan counts its starts
            self.pacer.on_start(now)

    def sent(self, attempt: Attempt, now: float) -> None:
        """``attempt``'s connect() is under way; its answer is awaited."""
        host = self.hosts[attempt.host]
        self._count_start(attempt, host, now)
        attempt.live = True
        self.pacer.in_flight += 1
        if not host.sent_order:
            self.waiting_hosts.add(host)
        host.sent_order.append((now, attempt.tries, attempt))

    def answered_at_once(self, attempt: Attempt, code: int, now: float, answered: float) -> None:
        """connect() itself, started at ``now``, returned the outcome ``code`` at ``answered``."""
        self._count_start(attempt, self.hosts[attempt.host], now)
        self._conclude(attempt, code, answered)

    # -- what happened -------------------------------------------------------

    def completed(self, attempt: Attempt, code: int, now: float) -> None:
        """A live attempt finished with errno ``code`` (0: accepted); stale ones are ignored."""
        if not attempt.live:
            return
        attempt.live = False
        self.pacer.on_finish()
        self._conclude(attempt, code, now)

    def _conclude(self, attempt: Attempt, code: int, now: float) -> None:
        host = self.hosts[attempt.host]
        if host.done:
            return
        if code not in _DECIDING_ERRNOS:
            self._no_answer(host, attempt, now)
            return
        elapsed = now - attempt.sent_at
        if code in _LIVE_ERRNOS:
            self.heard = True
            rtt = host.rtt
            rtt.update(elapsed)
            if self.unsampled_hosts:
                self.group_rtt.update(elapsed)
                if rtt.samples == 1:
                    self.unsampled_hosts -= 1
        self.pacer.on_answer(attempt.tries, attempt.first_sent_at, now)
        if attempt.tries - 1 > host.best_answered_retry:
            host.best_answered_retry = attempt.tries - 1
            if host.silent:
                self.decided -= host.reopen_silent(min(self.timing.max_retries, host.best_answered_retry + 1))
                if host.retries:
                    self._enqueue(host)
        self._record(host, attempt.port, (code, attempt.tries, elapsed))

    def _no_answer(self, host: _Host, attempt: Attempt, now: float) -> None:
        if attempt.tries - 1 < min(self.timing.max_retries, host.best_answered_retry + 1):
            host.retries.append(attempt)
            self._enqueue(host)
            return
        if attempt.tries <= self.timing.max_retries:
            host.silent[attempt.port] = attempt  # more tries may yet be earned
        self._record(host, attempt.port, (NO_ANSWER, attempt.tries, now - attempt.first_sent_at))

    def _record(self, host: _Host, port: int, outcome: Outcome) -> None:
        outcomes = host.outcomes
        outcomes[port] = outcome
        self.decided += 1
        if self.journal is not None and port not in host.silent:
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
        if self.journal is not None:
            self.journal.extend((host.index, port, *host.outcomes[port]) for port in host.silent)
        self._abandon_all(host)
        host.retries.clear()
        if host.queued:
            self.ready.remove(host)
            host.queued = False
        if timed_out:
            self.decided += self.port_count - len(host.outcomes)
        if timed_out or self.journal is not None:
            ports = []
        else:
            outcomes = host.outcomes
            ports = [self.result(port, outcomes[port]) for port in sorted(outcomes)]
        self._finished_hosts.append(HostPortResults(host.address, ports, host.rtt.srtt, timed_out, interrupted))
        if self.ports:
            self.remaining_hosts -= 1

    def _abandon(self, attempt: Attempt) -> None:
        attempt.live = False
        self.pacer.on_finish()
        self._abandoned.append(attempt)

    def _abandon_all(self, host: _Host) -> None:
        for attempt in host.take_live():
            self._abandon(attempt)
        self.waiting_hosts.discard(host)

    def interrupt(self) -> None:
        """Stop now: every unfinished host is reported with what it has decided."""
        for host in self.hosts:
            self._finish(host, interrupted=True)

    # -- the passing of time -------------------------------------------------

    def expire(self, now: float) -> None:
        """Give up attempts whose timeout passed and hosts whose --host-timeout did."""
        if not self.heard and now >= self.quiet_growth_at:
            following = self.quiet_growth_at + self.quiet_period
            self.quiet_growth_at = following if following > now else now + self.quiet_period
            if self.pacer.in_flight >= self.pacer.window.size:
                self.pacer.open_quietly()
        if self.timing.host_timeout is not None:
            for host in self.hosts:
                if not host.done and host.deadline is not None and now >= host.deadline:
                    self._finish(host, timed_out=True)
        for host in list(self.waiting_hosts):
            order = host.sent_order
            limit = now - self._timeout(host)
            while order:
                sent_at, tries, attempt = order[0]
                current = attempt.live and attempt.tries == tries
                if current and sent_at > limit:
                    break
                order.popleft()
                if current:
                    self._abandon(attempt)
                    self.pacer.on_silence()
                    self._no_answer(host, attempt, now)  # may finish the host and empty ``order``
            if not order:
                self.waiting_hosts.discard(host)

    def _timeout(self, host: _Host) -> float:
        return host.rtt.timeout() if host.rtt.samples else self.group_rtt.timeout()

    def _next_expiry(self) -> float | None:
        soonest: float | None = None
        for host in self.waiting_hosts:
            oldest = host.oldest_sent()
            if oldest is not None:
                at = oldest[0] + self._timeout(host)
                soonest = at if soonest is None else min(soonest, at)
        return soonest

    def wakeup(self, now: float) -> float | None:
        """Seconds until the session has something to do without an answer arriving; None: nothing."""
        waits: list[float] = []
        expiry = self._next_expiry()
        if expiry is not None:
            waits.append(expiry - now)
        window = self.pacer.window
        if self.ready and not self.heard and self.pacer.in_flight and window.cwnd < window.maximum:
            waits.append(self.quiet_growth_at - now)
        if self.ready:
            start = self.pacer.start_wait(now)
            if start is not None:
                waits.append(max(start, min(h.next_send_at for h in self.ready) - now))
        if self.timing.host_timeout is not None:
            deadlines = [h.deadline for h in self.hosts if not h.done and h.deadline is not None]
            if deadlines:
                waits.append(min(deadlines) - now)
        return max(0.0, min(waits)) if waits else None
