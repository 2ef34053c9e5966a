"""The raw-scan state machine: which probes go out when, and what the replies decide.

An engine drives one ``ScanSession`` with three calls and a clock it owns:
``due(now)`` hands out the probes to send, ``receive(datagram, now)``
turns a captured datagram into decisions, ``expire(now)`` turns silence
into decisions.  The session never touches a socket or reads a clock, so
the fake network in ``leadline.engines.fake`` runs it in virtual time.

Invariants kept:
  * memory is flat in the size of the scan: the (address, port) stream is
    read lazily and only probes in flight are held; a host's counters are
    dropped once the host is done;
  * every (address, port) drawn from the stream gets exactly one
    ``PortDecided``; replies to decided probes (duplicates, late answers
    to an earlier attempt) are ignored;
  * a host gets ``HostDone`` once, after its last ``PortDecided``;
  * at most ``max_retries + 1`` attempts per port.  Fewer when the scan
    shows no loss: the number of attempts is the smallest that keeps the
    expected count of answering ports wrongly left unanswered under 0.01.
    The loss rate comes from resolved attempts only (first and second
    attempts, an answer counted when its attempt's deadline passes, as a
    timeout is), so it is not biased low while retries and timeouts are
    still to come; until ten second attempts have resolved, a silent port
    gets three attempts.  A clean path costs 2 or 3 attempts for a silent
    port, a path losing 30% costs up to the user's limit.
  * silence is believed only when the kernel dropped no replies while the
    attempt was outstanding: the engine reports its capture's drops
    (``on_receive_drops``) and such attempts are re-sent without being
    counted, as attempts, as 'filtered' or as loss (``core.inflight``).

Timeouts come from a per-host RFC 6298 estimator fed only with
unambiguous samples (ports answered on their first attempt, Karn's rule).

Deadlines are kept per batch: (deadline, tie-breaker, attempt level, keys
sent together with that deadline).  A key no longer in flight when its
batch comes due was answered: answers are counted then, as timeouts are,
so the two are counted over the same span of time.

The text of each port's exchange (for --explain) is written only when
the session is made with ``explain=True``: building it for 65535 ports
nobody reads costs a tenth of a scan's time.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol

from leadline.config import Timing
from leadline.core.attempts import AttemptBudget
from leadline.core.inflight import (
    Event,
    HostDone,
    HostTally,
    InFlight,
    PortDecided,
    Warning,
    describe_probe,
    describe_reply,
    excusable,
    excuse,
    finish_events,
)
from leadline.core.probes.base import Probe, ProbeContext, ProbeKey, ProbeModule, Verdict
from leadline.core.ratecontrol import RateController
from leadline.core.timing import RttEstimator
from leadline.model import PortState

__all__ = ["Event", "HostDone", "MakeSession", "PortDecided", "ScanSession", "Warning"]

DEFAULT_MAX_IN_FLIGHT = 10_000
_MAX_BACKOFF_DOUBLINGS = 4
_UNKNOWN_SCAN_SIZE = 1000


def _tally(timing: Timing, seed: float | None, expected: int | None) -> HostTally:
    """A host's tally; its first timeouts come from the RTT discovery measured (``seed``), when there
    is one, not from --initial-rtt-timeout, as nmap carries a ping's timing over to the port scan."""
    estimator = RttEstimator(timing)
    if seed is not None:
        estimator.update(seed)
    return HostTally(estimator, expected)


def _port_major(hosts: list[str], ports: list[int]) -> Iterator[tuple[str, int]]:
    for port in ports:
        for host in hosts:
            yield host, port


class MakeSession(Protocol):
    """Builds the session of one scan, or of one worker's share of it (split across processes).

    ``ports`` and ``timing`` are that share's; ``host_share=(index, count)``
    keeps only the hosts whose IPv4 address is ``index`` modulo ``count``.
    """

    def __call__(self, ports: Sequence[int], timing: Timing, host_share: tuple[int, int] | None = None) -> ScanSession: ...


class ScanSession:
    """Sends probes for a stream of (address, port) and decides each port's state."""

    def __init__(
        self,
        module: ProbeModule,
        ctx: ProbeContext,
        targets: Iterable[tuple[str, int]],
        timing: Timing,
        rate: RateController,
        *,
        expected_per_host: Mapping[str, int] | None = None,
        explain: bool = True,
        rtt_seeds: Mapping[str, float] | None = None,
    ) -> None:
        self.module, self.ctx, self.timing, self.rate, self.explain = module, ctx, timing, rate, explain
        self._rtt_seeds = dict(rtt_seeds or {})  # discovery's RTTs: see _tally
        self._targets: Iterator[tuple[str, int]] = iter(targets)
        self._exhausted = False
        self._expected = dict(expected_per_host or {})
        # How many ports the miss budget is spread over: the whole scan when known.
        self._planned = sum(self._expected.values()) if self._expected else _UNKNOWN_SCAN_SIZE
        self._stream_length: int | None = None  # exact, when the stream has no repeats (for_group)
        self._hosts: dict[str, HostTally] = {}
        self._in_flight: dict[ProbeKey, InFlight] = {}
        self._deadlines: list[tuple[float, int, int, list[ProbeKey]]] = []
        self._retry: deque[ProbeKey] = deque()
        self._pending: list[Event] = []
        self._sequence = 0
        self._max_in_flight = timing.max_parallelism or DEFAULT_MAX_IN_FLIGHT
        self.started = 0
        self.sent = 0
        self.answered_ports = 0
        self.receive_drops = 0  # captured replies the kernel dropped, as reported by the engine
        self._dropped_at = -math.inf  # when drops were last reported
        self.attempts = AttemptBudget(timing.max_retries + 1, self._planned)

    @classmethod
    def for_group(
        cls,
        module: ProbeModule,
        ctx: ProbeContext,
        hosts: Sequence[str],
        ports: Sequence[int],
        timing: Timing,
        rate: RateController,
        *,
        explain: bool = True,
        rtt_seeds: Mapping[str, float] | None = None,
    ) -> ScanSession:
        """A session over hosts x ports, port-major so consecutive probes hit different hosts."""
        unique_hosts, unique_ports = list(dict.fromkeys(hosts)), list(dict.fromkeys(ports))
        expected = {host: len(unique_ports) for host in unique_hosts}
        session = cls(module, ctx, _port_major(unique_hosts, unique_ports), timing, rate, expected_per_host=expected,
                      explain=explain, rtt_seeds=rtt_seeds)
        session._stream_length = len(unique_hosts) * len(unique_ports)
        return session

    # -- what the engine calls --------------------------------------------

    @property
    def finished(self) -> bool:
        return self._exhausted and not self._in_flight and not self._pending

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def due(self, now: float) -> list[Probe]:
        """Probes to send now: retransmissions first, then new ones, as the pacer allows.

        Bookkeeping is per batch where it can be: every probe of one call
        leaves at ``now``, so probes to one host share a deadline (one heap
        entry for all of them) and the pacer is charged once.
        """
        self._sweep(now)
        budget = self.rate.allowed(now)
        out: list[Probe] = []
        if budget <= 0:
            return out
        batches: dict[tuple[float, int], list[ProbeKey]] = {}
        timeouts: dict[str, float] = {}
        while budget > 0 and self._retry:
            entry = self._in_flight.get(self._retry.popleft())
            if entry is None:
                continue
            out.append(self._send(entry, now, batches, timeouts))
            budget -= 1
        in_flight = self._in_flight
        ceiling = self._max_in_flight
        while budget > 0 and not self._exhausted and len(in_flight) < ceiling:
            started = self._start_next(now)
            if started is None:
                break
            out.append(self._send(started[0], now, batches, timeouts, started[1]))
            budget -= 1
        for (deadline, level), keys in batches.items():
            self._sequence += 1
            heapq.heappush(self._deadlines, (deadline, self._sequence, level, keys))
        if out:
            self.rate.on_sends(now, len(out))
            self.sent += len(out)
        return out

    def receive(self, datagram: bytes, now: float) -> list[Event]:
        """Decide the port a captured datagram answers; anything else is ignored."""
        return self.receive_many((datagram,), now)

    def receive_many(self, datagrams: Iterable[bytes], now: float) -> list[Event]:
        """``receive`` for a batch read at ``now``: locals and one event list (replies are a scan's bulk)."""
        match, ctx, classify = self.module.match, self.ctx, self.module.classify
        in_flight, hosts, rate, explain = self._in_flight, self._hosts, self.rate, self.explain
        events: list[Event] = []
        for datagram in datagrams:
            matched = match(datagram, ctx)
            if matched is None:
                continue
            key, reply = matched
            entry = in_flight.pop(key, None)
            if entry is None:
                continue
            host, rtt = hosts[key.address], max(0.0, now - entry.last_sent)
            if entry.attempts == 1 and not entry.excused:
                host.rtt.update(rtt)
                if rtt < host.fastest:
                    host.fastest = rtt
            self.answered_ports += 1
            rate.on_answer(now, rtt)
            if explain:
                entry.exchange.append(describe_reply(reply, rtt))
            self._decide(entry, host, classify(reply), rtt, events)
        return events

    def on_receive_drops(self, count: int, now: float) -> None:
        """The kernel dropped ``count`` captured packets since the last report (PACKET_STATISTICS):
        every attempt sent before ``now`` may have lost its answer, so its silence is excused (core/inflight.py)."""
        self.receive_drops += count
        self._dropped_at = now

    def stamp_sent(self, key: ProbeKey, now: float) -> None:
        """The probe for ``key`` really left at ``now`` (later than ``due`` said): RTTs count from here."""
        entry = self._in_flight.get(key)
        if entry is not None:
            entry.last_sent = now

    def expire(self, now: float) -> list[Event]:
        """Decide the ports whose last attempt went unanswered; report finished hosts."""
        self._sweep(now)
        events, self._pending = self._pending, []
        return events

    def time_until_next(self, now: float) -> float:
        """Seconds until ``due`` or ``expire`` has something to do (0: call them now)."""
        if self._pending:
            return 0.0
        waits: list[float] = []
        if self._deadlines:
            waits.append(self._deadlines[0][0] - now)
        wants_to_send = bool(self._retry) or (not self._exhausted and len(self._in_flight) < self._max_in_flight)
        if wants_to_send:
            waits.append(self.rate.next_send_time(now) - now)
        if not waits:
            return 0.0
        return max(0.0, min(waits))

    # -- internals ---------------------------------------------------------

    def _start_next(self, now: float) -> tuple[InFlight, Probe] | None:
        while True:
            try:
                address, port = next(self._targets)
            except StopIteration:
                self._exhausted = True
                for idle, tally in list(self._hosts.items()):
                    self._pending.extend(self._maybe_finish(idle, tally))
                return None
            host = self._hosts.get(address)
            if host is None:
                host = _tally(self.timing, self._rtt_seeds.get(address), self._expected.get(address))
                self._hosts[address] = host
            probe = self.module.build(address, port, 0, self.ctx)
            if probe.key in self._in_flight:  # the same port twice in the stream
                continue
            host.in_flight += 1
            self.started += 1
            if self.started == self._stream_length:
                # Known length: note the end with the last probe, so the engine
                # does not wait for the pacer before it learns there is no more.
                self._exhausted = True
            label = describe_probe(probe, self.module.ip_protocol) if self.explain else ""
            entry = InFlight(probe.key, label, 0, now, now)
            self._in_flight[probe.key] = entry
            return entry, probe

    def _send(
        self,
        entry: InFlight,
        now: float,
        batches: dict[tuple[float, int], list[ProbeKey]],
        timeouts: dict[str, float],
        probe: Probe | None = None,
    ) -> Probe:
        if probe is None:
            probe = self.module.build(entry.key.address, entry.key.port, entry.attempts, self.ctx)
        if self.explain:
            entry.exchange.append(entry.label if entry.attempts == 0 else f"{entry.label} (retry {entry.attempts})")
        entry.attempts += 1
        entry.last_sent = now
        address = entry.key.address
        timeout = timeouts.get(address)
        if timeout is None:
            timeout = timeouts[address] = self._hosts[address].rtt.timeout()
        if entry.attempts > 1 and self.rate.suspect:
            # Answers are going missing faster than usual and the controller has not
            # yet measured why: back off (RFC 6298 section 5.5) so a rate cap does not
            # eat the port's attempts before the pace is corrected.
            timeout *= 2 ** min(entry.attempts - 1, _MAX_BACKOFF_DOUBLINGS)
        entry.deadline = now + timeout
        batch = (entry.deadline, min(entry.attempts, 3))
        keys = batches.get(batch)
        if keys is None:
            batches[batch] = [entry.key]
        else:
            keys.append(entry.key)
        return probe

    def _sweep(self, now: float) -> None:
        """Move timed-out probes to the retry queue, or decide them if out of attempts.

        All timeouts due now are counted before any is judged, so a port's
        fate reads the evidence its peers timed out with.
        """
        expired: list[InFlight] = []
        in_flight = self._in_flight
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, _, level, keys = heapq.heappop(self._deadlines)
            for key in keys:
                entry = in_flight.get(key)
                if entry is None:
                    # Answered: counted now, when a timeout of the same attempt would be.
                    self.attempts.resolved(level, True)
                    continue
                if entry.deadline != deadline:
                    continue
                if excusable(entry, self._dropped_at):  # its answer may be among the replies the kernel dropped
                    excuse(entry, now, self.explain)
                    self._retry.append(key)
                    continue
                self.rate.on_timeout(now)
                self.attempts.resolved(entry.attempts, False)
                if self.explain:
                    entry.exchange.append(f"no reply in {now - entry.last_sent:.2f} s")
                expired.append(entry)
        if not expired:
            return
        # Attempts before silence is believed, from the loss measured so far (core/attempts.py).
        capped = self.rate.ceiling is not None or (self.rate.suspect and self.rate.fraction_measured)
        needed = self.attempts.needed(any_answered=self.answered_ports > 0, started=self.started, capped=capped)
        for entry in expired:
            if entry.attempts < needed:
                entry.deadline = math.inf
                self._retry.append(entry.key)
                continue
            del self._in_flight[entry.key]
            host = self._hosts[entry.key.address]
            self._decide(entry, host, self.module.classify(None), None, self._pending)

    def _decide(self, entry: InFlight, host: HostTally, verdict: Verdict, rtt: float | None, events: list[Event]) -> None:
        """Append the port's ``PortDecided`` to ``events``, and its host's closing events when it was the last."""
        host.in_flight -= 1
        host.decided += 1
        if verdict.state is PortState.OPEN:
            host.open += 1
        events.append(PortDecided(entry.key.address, entry.key.port, verdict, rtt, entry.attempts, tuple(entry.exchange)))
        if not host.in_flight:
            events.extend(self._maybe_finish(entry.key.address, host))

    def _maybe_finish(self, address: str, host: HostTally) -> list[Event]:
        if host.in_flight or (not self._exhausted and (host.expected is None or host.decided < host.expected)):
            return []
        del self._hosts[address]
        return finish_events(address, host)
