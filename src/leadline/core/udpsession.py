"""The UDP scan's state machine: rounds per host, and silence that counts only when it can.

Why a session of its own.  A closed UDP port answers with an ICMP port
unreachable, and targets ration those: Linux sends each source address a
burst of about six, then one per second (``core/icmplimit.py``).  An
unanswered probe therefore means "open|filtered" only if the target had
an error to spare when the probe arrived.  nmap cannot tell, so it slows
to a crawl or reports closed ports as open|filtered.  This session makes
every silence prove itself instead:

* Probes to one host go out in *rounds*: up to 64 of its undecided ports,
  then a *canary*, a port of that host already known to answer with an
  ICMP error.  Errors are rationed in arrival order, so if the canary
  (sent last) is answered, the target had an error to spare for every
  probe before it: their silences *count*.  If the canary goes
  unanswered, the limit (or loss) explains the round's silences: they do
  not count and the ports go back in the queue, costing nothing but a
  resend.  A host that has never sent an error has nothing to ration:
  its silences count as they are.
* The canary costs an error of its own when it is answered; an error to
  any port of the round proves the same for the ports sent before it, at
  no cost.  So ports whose silence has already counted (most likely
  open|filtered) lead the next round, and the next closed port behind
  them proves them again.  A port's other payloads go after the canary:
  a closed port answers every datagram, and errors spent on second
  payloads are errors the next ports and the canary do not get.
* A port is decided open|filtered after two silences that count (one if
  --max-retries 0).  A host that has sent no error for ``MUTE_AFTER``
  seconds while rounds went out has stopped answering altogether (its
  budget never refills): its silences count again, so the scan ends.
* A round is judged as soon as its canary answers (plus ``CANARY_GRACE``
  for reordering), not at its timeout: every error the kernel owed the
  ports sent before the canary has arrived by then.  A service answers
  from user space, later, so a port's silence counts only once the probe
  timeout has passed since its send (``_Lingering``).  While no canary has gone unanswered, rounds
  follow each other as fast as the pacer allows.  Once one has (the lane is *limited*), a lane keeps
  one round in flight and starts the next a round's timeout later, or an
  eighth of the measured refill interval if that is longer: every refill
  meets a probe to an undecided port within a fraction of the interval,
  so the scan runs at the speed the limit sets and not slower, and no
  probe is wasted on a port already decided.  Meanwhile other hosts'
  rounds go out: nothing waits for one host's budget.
* ``--source-pool``: each of our addresses is a *lane* with its own budget
  at the target (the limit is per source address); a host's undecided
  ports are shared among its lanes round by round, and a reply is matched
  with the context of the address it came to.

Invariants: every (host, port) gets exactly one ``PortDecided`` and a host
one ``HostDone`` after its last port; pacing never stalls: an undecided
port is always either in a round in flight or in its host's queue, and
``time_until_next`` always names the next round deadline or send time.
Replies the kernel dropped (``on_receive_drops``) make a round's
silences not count, as an unanswered canary does.  Time is a parameter.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from leadline.config import Timing
from leadline.core.icmplimit import IcmpLimit
from leadline.core.inflight import Event, HostDone, PortDecided
from leadline.core.probes.base import Probe, ProbeContext, ProbeKey, Reply, ReplyKind, Verdict
from leadline.core.ratecontrol import RateController
from leadline.core.session import ScanSession
from leadline.core.timing import RttEstimator
from leadline.core.probes.udp import UdpScan

__all__ = ["UdpSession", "ROUND_PORTS", "MAX_SENDS", "DEFAULT_UDP_RATE"]

ROUND_PORTS = 64
MAX_SENDS = 5000  # sends per port, counted or not, before its silence is believed anyway
MUTE_AFTER = 10.0  # seconds without an error from a host after which its silences count again
CANARY_GRACE = 0.002  # after a round's canary answers: time for answers the network reordered behind it
LIMITED_ROUND_PORTS = 16  # a limited lane's rounds: one refill's worth of candidates, not the whole queue
DEFAULT_UDP_RATE = 1000.0  # probes/s when the user set no rate
_ATTEMPT_CYCLE = 32  # attempt numbers carried in the source port (the module accepts < 51)


@dataclass(slots=True)
class _Port:
    sends: int = 0
    counted: int = 0  # silences that count
    last_sent: float = 0.0
    decided: bool = False
    exchange: list[str] = field(default_factory=list)
    round_: _Round | None = None  # the round its latest send went out in, until that round is judged
    slot: int = 0  # its place in that round's send order


@dataclass(slots=True)
class _Round:
    address: str
    lane: int
    sent: float
    deadline: float
    ports: list[int]
    canary: int | None
    canary_answered: bool = False
    judged: bool = False
    proven: int = 0  # leading ports whose silence an ICMP error to a later probe of the round proves


@dataclass(slots=True)
class _Lane:
    ctx: ProbeContext
    limit: IcmpLimit = field(default_factory=IcmpLimit)
    in_flight: int = 0
    next_round: float = -math.inf
    canary_sends: int = 0
    canary_rounds: dict[int, _Round] = field(default_factory=dict)  # canary attempt -> its round


@dataclass(slots=True)
class _Host:
    address: str
    ports: dict[int, _Port]
    queue: deque[int]
    lanes: list[_Lane]
    rtt: RttEstimator
    canary: int | None = None
    last_error: float = -math.inf
    rounds: list[_Round] = field(default_factory=list)  # in flight
    undecided: int = 0
    fastest: float = math.inf
    done: bool = False
    suspects: deque[int] = field(default_factory=deque)  # ports with a silence that counted: sent first

    @property
    def waiting(self) -> int:
        return len(self.queue) + len(self.suspects)


class UdpSession(ScanSession):
    """Rounds of UDP probes per host and lane; see the module docstring."""

    def __init__(
        self,
        module: UdpScan,
        contexts: Sequence[ProbeContext],
        hosts: Sequence[str],
        ports: Sequence[int],
        timing: Timing,
        rate: RateController,
        *,
        explain: bool = True,
    ) -> None:
        super().__init__(module, contexts[0], (), timing, rate, explain=explain)
        self.contexts = tuple(contexts)
        self._by_destination = {_packed(c.source_address): i for i, c in enumerate(self.contexts)}
        unique_ports = list(dict.fromkeys(ports))
        self._udp_hosts: dict[str, _Host] = {}
        for address in dict.fromkeys(hosts):
            self._udp_hosts[address] = _Host(address, {p: _Port() for p in unique_ports}, deque(unique_ports),
                                         [_Lane(c) for c in self.contexts], RttEstimator(timing),
                                         undecided=len(unique_ports))
        self._order = list(self._udp_hosts)
        self._next_host = 0
        self._rounds: list[tuple[float, int, _Round]] = []
        self._needed = 2 if timing.max_retries >= 1 else 1
        answer_delay = module.payloads.answer_delay
        delays = {p: d for p in unique_ports if (d := answer_delay(p)) > 0}
        self._lingering = _Lingering(delays)
        self._unfinished = sum(1 for h in self._udp_hosts.values() if h.undecided)
        self._exhausted = True
        self._pending.extend(e for h in self._udp_hosts.values() if not h.undecided for e in self._finish(h))

    # -- what the engine calls --------------------------------------------

    @property
    def finished(self) -> bool:
        return self._unfinished == 0 and not self._pending

    @property
    def in_flight(self) -> int:
        return len(self._rounds)

    @property
    def limits(self) -> dict[str, list[IcmpLimit]]:
        """Each host's lanes' limit estimates, for reports and tests."""
        return {a: [lane.limit for lane in h.lanes] for a, h in self._udp_hosts.items()}

    def due(self, now: float) -> list[Probe]:
        """Whole rounds, hosts taking turns, as long as the pacer has room."""
        self._sweep(now)
        budget = self.rate.allowed(now)
        out: list[Probe] = []
        if budget <= 0 or not self._order:
            return out
        idle_passes = total = 0
        while budget > 0 and idle_passes < len(self._order):
            host = self._udp_hosts[self._order[self._next_host]]
            self._next_host = (self._next_host + 1) % len(self._order)
            sent = self._start_rounds(host, now, out)
            budget -= sent
            total += sent
            idle_passes = 0 if sent else idle_passes + 1
        if total:  # a port's other payloads ride with its probe, as they did inside one Probe
            self.rate.on_sends(now, total)
            self.sent += total
        return out

    def receive(self, datagram: bytes, now: float) -> list[Event]:
        lane_index = self._by_destination.get(_destination(datagram), 0)
        matched = self.module.match(datagram, self.contexts[lane_index])
        if matched is None:
            return []
        key, reply = matched
        host = self._udp_hosts.get(key.address)
        if host is None:
            return []
        lane = host.lanes[lane_index]
        if reply.kind is not ReplyKind.UDP and not reply.third_party:
            lane.limit.error(now)
            host.last_error = now
            if host.canary is None:
                host.canary = key.port
            answered = lane.canary_rounds.get(reply.attempt if reply.attempt is not None else -1)
            if answered is not None and answered.canary == key.port and not answered.canary_answered:
                self._canary_answered(answered, lane, now)
            _prove(host.ports.get(key.port), lane_index, reply.attempt)
        port = host.ports.get(key.port)
        if port is None or port.decided:
            return []
        rtt = max(0.0, now - port.last_sent)
        if port.sends == 1 and reply.attempt == 0:  # Karn: only unambiguous samples
            host.rtt.update(rtt)
            host.fastest = min(host.fastest, rtt)
            self._shorten(host, now)
        self.answered_ports += 1
        if self.explain:
            port.exchange.append(_describe(reply, rtt))
        return self._settle(host, key.port, port, self.module.classify(reply), rtt)

    def receive_many(self, datagrams: Iterable[bytes], now: float) -> list[Event]:
        """``receive`` for each of a batch read together (the raw engine's fast path)."""
        events: list[Event] = []
        for datagram in datagrams:
            events.extend(self.receive(datagram, now))
        return events

    def stamp_sent(self, key: ProbeKey, now: float) -> None:
        host = self._udp_hosts.get(key.address)
        port = host.ports.get(key.port) if host is not None else None
        if port is not None and not port.decided:
            port.last_sent = now

    def expire(self, now: float) -> list[Event]:
        self._sweep(now)
        events, self._pending = self._pending, []
        return events

    def time_until_next(self, now: float) -> float:
        if self._pending:
            return 0.0
        waits: list[float] = []
        if self._rounds:
            waits.append(self._rounds[0][0] - now)
        if self._lingering.heap:
            waits.append(self._lingering.heap[0][0] - now)
        ready = [self._ready_at(h) for h in self._udp_hosts.values() if h.waiting]
        if ready:
            waits.append(max(min(ready), self.rate.next_send_time(now)) - now)
        return max(0.0, min(waits)) if waits else 0.0

    # -- rounds --------------------------------------------------------------

    def _ready_at(self, host: _Host) -> float:
        """When one of the host's lanes may start a round (inf: each waits for a round in flight)."""
        return min(_lane_ready(lane) for lane in host.lanes)

    def _start_rounds(self, host: _Host, now: float, out: list[Probe]) -> int:
        """One round on each lane of ``host`` that may start one; the number of probes sent."""
        sent = 0
        share = max(1, min(ROUND_PORTS, -(-host.waiting // len(host.lanes))))
        for index, lane in enumerate(host.lanes):
            if not host.waiting:
                break
            if _lane_ready(lane) > now:
                continue
            size = min(share, LIMITED_ROUND_PORTS) if lane.limit.limited else share
            sent += self._start_round(host, index, lane, size, now, out)
        return sent

    def _start_round(self, host: _Host, index: int, lane: _Lane, size: int, now: float, out: list[Probe]) -> int:
        """Send a round: its ports' first datagrams in order, the canary, then the ports' other payloads.

        The other payloads go last because a closed port answers each datagram with an error and
        the target rations those: sent with their port, they would spend errors that other ports'
        first datagrams (and the canary) need.  After the canary they cost nothing while the
        budget is short, and prove nothing either way.
        """
        ports = _take(host, size)
        if not ports:
            return 0
        timeout = host.rtt.timeout()
        round_ = _Round(host.address, index, now, now + timeout, ports, host.canary)
        later: list[Probe] = []
        for slot, number in enumerate(ports):
            state = host.ports[number]
            probe = self.module.build(host.address, number, state.sends % _ATTEMPT_CYCLE, lane.ctx)
            if probe.extra:
                later.append(Probe(probe.key, probe.extra[0], probe.attempt, probe.extra[1:]))
                probe = probe._replace(extra=())
            out.append(probe)
            state.sends += 1
            state.last_sent = now
            state.round_, state.slot = round_, slot
            if self.explain:
                state.exchange.append("UDP" if state.sends == 1 else f"UDP (send {state.sends})")
        if host.canary is not None:
            attempt = lane.canary_sends % _ATTEMPT_CYCLE
            lane.canary_sends += 1
            lane.canary_rounds[attempt] = round_
            out.append(self.module.build(host.address, host.canary, attempt, lane.ctx))
        out.extend(later)
        lane.in_flight += 1
        host.rounds.append(round_)
        lane.next_round = now + lane.limit.round_period(timeout)
        self._sequence += 1
        heapq.heappush(self._rounds, (round_.deadline, self._sequence, round_))
        return len(ports) + (host.canary is not None)

    def _canary_answered(self, round_: _Round, lane: _Lane, now: float) -> None:
        """The canary went last, so the round's other answers are in: judge it a moment later, not at its timeout,
        and let the lane go on at once (the target had an error to spare)."""
        round_.canary_answered = True
        deadline = now + CANARY_GRACE
        if deadline < round_.deadline:
            round_.deadline = deadline
            self._sequence += 1
            heapq.heappush(self._rounds, (deadline, self._sequence, round_))
        lane.next_round = min(lane.next_round, deadline)

    def _shorten(self, host: _Host, now: float) -> None:
        """A first RTT sample shrinks the timeout: rounds sent under the initial one are judged sooner."""
        timeout = host.rtt.timeout()
        for round_ in host.rounds:
            deadline = max(now, round_.sent + timeout)
            if deadline < round_.deadline - 1e-3:
                round_.deadline = deadline
                self._sequence += 1
                heapq.heappush(self._rounds, (deadline, self._sequence, round_))

    def _sweep(self, now: float) -> None:
        """Judge every round whose deadline has passed (entries a shorter deadline replaced are skipped)."""
        while self._rounds and self._rounds[0][0] <= now:
            deadline, _, round_ = heapq.heappop(self._rounds)
            if deadline != round_.deadline or round_.judged:
                continue
            round_.judged = True
            self._judge(round_, now)
        for address, number in self._lingering.due(now):
            host = self._udp_hosts[address]
            state = host.ports[number]
            if not state.decided:
                state.counted += 1
                self._after_silence(host, number, state, now)

    def _judge(self, round_: _Round, now: float) -> None:
        host = self._udp_hosts[round_.address]
        lane = host.lanes[round_.lane]
        lane.in_flight -= 1
        host.rounds.remove(round_)
        for attempt, waiting in list(lane.canary_rounds.items()):
            if waiting is round_:
                del lane.canary_rounds[attempt]
        if round_.canary is not None and not round_.canary_answered:
            lane.limit.limited = True
        counts = round_.sent > self._dropped_at and (
            round_.canary_answered if round_.canary is not None else host.canary is None)
        counts = counts or now - host.last_error > MUTE_AFTER
        proven = round_.proven if round_.sent > self._dropped_at else 0
        for slot, number in enumerate(round_.ports):
            state = host.ports[number]
            if state.round_ is round_:
                state.round_ = None
            if state.decided:
                continue
            if counts or slot < proven:
                if self._lingering.hold(round_.address, number, state.last_sent, now, host.rtt.timeout()):
                    continue
                state.counted += 1
            self._after_silence(host, number, state, now)

    def _after_silence(self, host: _Host, number: int, state: _Port, now: float) -> None:
        if state.counted >= self._needed or state.sends >= MAX_SENDS:
            if self.explain:
                state.exchange.append(f"no reply in {now - state.last_sent:.2f} s")
            self._pending.extend(self._settle(host, number, state, self.module.classify(None), None))
        else:
            (host.suspects if state.counted else host.queue).append(number)

    def _settle(self, host: _Host, number: int, state: _Port, verdict: Verdict, rtt: float | None) -> list[Event]:
        state.decided = True
        host.undecided -= 1
        decided = PortDecided(host.address, number, verdict, rtt, state.sends, tuple(state.exchange))
        if host.undecided:
            return [decided]
        return [decided, *self._finish(host)]

    def _finish(self, host: _Host) -> list[Event]:
        if host.done:
            return []
        host.done = True
        self._unfinished -= 1
        self._order.remove(host.address)
        self._next_host = 0
        return [HostDone(host.address, host.fastest if host.fastest < math.inf else None)]


def _take(host: _Host, size: int) -> list[int]:
    """Up to ``size`` undecided ports for a round: ports whose silence already counted first.

    A port goes silent either because it is open|filtered or because the
    target had no error left for it; an error to a port sent after it in the
    same round rules the second out.  Ports that have been silent with proof
    before are most likely open|filtered, so they lead: the next error any
    later port of the round draws proves them again for free, where behind
    a closed port they would need an error of their own (the canary's).
    """
    ports: list[int] = []
    for source in (host.suspects, host.queue):
        while source and len(ports) < size:
            number = source.popleft()
            if not host.ports[number].decided:
                ports.append(number)
    return ports


def _prove(state: _Port | None, lane: int, attempt: int | None) -> None:
    """An ICMP error for a port's latest send: every port sent before it in its round had an error to spare.

    Errors are rationed in arrival order and the round left in one burst,
    so the target could have answered each of those probes too: their
    silences count, as if the round's canary had answered.
    """
    if state is None or state.decided or state.round_ is None or state.round_.lane != lane:
        return  # (a decided port's error is a repeat, or the canary's: no place in a round)
    if attempt is not None and attempt != (state.sends - 1) % _ATTEMPT_CYCLE:
        return  # an answer to an older send, from before this round
    state.round_.proven = max(state.round_.proven, state.slot + 1)


class _Lingering:
    """Ports whose silence would count before a service could have answered.

    A round's canary is answered by the target's kernel, at once; a service
    answers from user space, later when the host is busy or the service
    works first (a resolver's lookup; SSDP waits up to MX s on purpose).
    So the canary proves the ports before it sent no error, but a port's
    silence counts only once the probe timeout (``floor``), or its
    protocol's answer delay if longer, has passed since its latest send.
    Until then it is held out of its round, which goes on without it.
    """

    __slots__ = ("delays", "heap", "_sequence")

    def __init__(self, delays: dict[int, float]) -> None:
        self.delays = delays
        self.heap: list[tuple[float, int, str, int]] = []
        self._sequence = 0

    def hold(self, address: str, port: int, sent: float, now: float, floor: float) -> bool:
        until = sent + max(floor, self.delays.get(port, 0.0))
        if until <= now:
            return False
        self._sequence += 1
        heapq.heappush(self.heap, (until, self._sequence, address, port))
        return True

    def due(self, now: float) -> list[tuple[str, int]]:
        out = []
        while self.heap and self.heap[0][0] <= now:
            _, _, address, port = heapq.heappop(self.heap)
            out.append((address, port))
        return out


def _lane_ready(lane: _Lane) -> float:
    """A lane not yet limited starts rounds at once (up to one per attempt number a canary can carry);
    a limited one keeps one round in flight and waits its period."""
    if lane.in_flight >= _ATTEMPT_CYCLE - 1 or (lane.limit.limited and lane.in_flight):
        return math.inf
    return lane.next_round if lane.limit.limited else -math.inf


def _packed(address: str) -> bytes:
    from leadline.core.packet.parse import pack_address

    return pack_address(address)


def _destination(datagram: bytes) -> bytes:
    """The destination address field of an IP datagram, unparsed (b"" when too short)."""
    if datagram[:1] and datagram[0] >> 4 == 6:
        return bytes(datagram[24:40])
    return bytes(datagram[16:20])


def _describe(reply: Reply, rtt: float) -> str:
    from leadline.core.inflight import describe_reply

    return describe_reply(reply, rtt)
