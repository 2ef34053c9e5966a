"""The traceroute state machine: which TTL to probe next for which host, and what the answers make of routes.

The shape every session here keeps: ``due(now)`` → datagrams to send,
``receive(datagram, now)``, ``expire(now)``, ``time_until_next(now)``,
``finished``; then ``result(address)``.  No socket, no clock.

Counting, as nmap counts: each host starts at its known distance (from
the TTL its answers arrived with during the scan; 10 when none is
known), counts down to 1, then counts up from the start until the target
answers, a router says "unreachable", or TTL 30.  An answer from the
target at a TTL beyond the distance its own TTL implies moves the
countdown straight to that distance.

The hop cache (``HopCache``) is shared by every session of a scan: a
(TTL, address) pair belongs to the first host whose trace found it.  When
another host's hop at TTL t is such a pair, its hops 1..t are the owner's
("Hops 1-t are the same as for …"): nothing below t is probed for it,
probes already in flight there are forgotten, and it counts up.

Pacing: at most ``max_in_flight`` probes in flight over all hosts.  Per
host, counting down, the next lower TTL waits for an answer to the last
one or for a short stagger (a few RTTs), so a shared hop is recognised
before the TTLs below it are spent, while a silent hop costs only the
stagger; counting up, a few TTLs go out together.  Timeouts come from an
RTT estimate seeded with the hosts' latency from discovery (never above
nmap's one second); a silent TTL is retried ``retries`` times and then
shown as "...", but an answer arriving later still fills it in.

Invariants: a host's trace never probes a TTL twice except as a retry;
it ends when its deadline (``--host-timeout``) passes, and is then
marked timed out; the result lists every TTL from 1 to the target (or
the router that refused, or the last TTL tried), hop or silence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from leadline.core.traceprobe import (
    MAX_ATTEMPTS,
    MAX_TTL,
    ReplyKind,
    TraceMethod,
    TraceProbes,
    distance_from_ttl,
)
from leadline.model import TraceHop

__all__ = ["HopCache", "TraceOptions", "TraceResult", "TraceSession", "TraceTarget"]

NO_DISTANCE_START = 10  # nmap's first TTL when nothing tells the distance
_UP_WINDOW = 3  # TTLs in flight together per host while counting up
_MIN_STAGGER = 0.005
_CACHE_LIMIT = 4096  # hosts remembered by a HopCache before it starts afresh


@dataclass(frozen=True, slots=True)
class TraceTarget:
    """One host to trace, and what the scan already knows about it."""

    address: str
    source: str  # our address on the way to it
    method: TraceMethod
    distance: int | None = None  # hops, from the TTL of its answers; None: unknown
    latency: float | None = None  # seconds, from discovery or the port scan
    deadline: float | None = None  # --host-timeout, on the session's clock


@dataclass(frozen=True, slots=True)
class TraceOptions:
    retries: int = 2  # nmap's MAX_RESENDS (less when --max-retries says so)
    max_in_flight: int = 32
    min_timeout: float = 0.1
    max_timeout: float = 1.0  # nmap's PROBE_TIMEOUT
    scan_delay: float = 0.0  # --scan-delay between probes


@dataclass(frozen=True, slots=True)
class TraceResult:
    hops: tuple[TraceHop, ...]  # TTL 1 upwards; address None for silence
    distance: int | None  # the TTL at which the target answered
    shared_with: str | None = None  # hops 1..shared_hops are those of this host
    shared_hops: int = 0
    timed_out: bool = False


@dataclass
class _Host:
    target: TraceTarget
    start: int
    down: int
    up: int
    counting_up: bool = False
    floor: int = 1  # TTLs below belong to the linked host
    link: tuple[int, str] | None = None  # (ttl, owner): hops 1..ttl are the owner's
    reached: int | None = None
    end: int | None = None  # a router refused at this TTL
    hops: dict[int, tuple[str, float | None]] = field(default_factory=dict)
    silent: set[int] = field(default_factory=set)
    sent: dict[int, list[float]] = field(default_factory=dict)  # TTL -> send time of each attempt
    inflight: dict[int, float] = field(default_factory=dict)  # TTL -> when the attempt times out
    retry: list[int] = field(default_factory=list)
    next_new: float = 0.0
    done: bool = False
    timed_out: bool = False

    @property
    def address(self) -> str:
        return self.target.address

    def last_ttl(self) -> int:
        limit = MAX_TTL
        if self.reached is not None:
            limit = min(limit, self.reached)
        if self.end is not None:
            limit = min(limit, self.end)
        return limit

    def next_new_ttl(self) -> int | None:
        """The next TTL never sent, counting down then up; None when nothing is left."""
        if not self.counting_up:
            while self.down >= self.floor and self.down in self.sent:
                self.down -= 1
            if self.down >= self.floor:
                return self.down
            self.counting_up = True
        self.up = max(self.up, self.floor)
        while self.up in self.sent:
            self.up += 1
        top = self.last_ttl() - (1 if self.reached is not None or self.end is not None else 0)
        return self.up if self.up <= top else None

    def forget(self, keep: Iterable[int]) -> None:
        """Drop probes in flight and retries outside ``keep``: their answers no longer matter."""
        wanted = set(keep)
        for ttl in [t for t in self.inflight if t not in wanted]:
            del self.inflight[ttl]
        self.retry = [t for t in self.retry if t in wanted]


class HopCache:
    """(TTL, address) → the host whose trace found it, and the traces themselves; shared by a scan."""

    def __init__(self) -> None:
        self.owners: dict[tuple[int, str], str] = {}
        self.hosts: dict[str, _Host] = {}

    def owner(self, ttl: int, address: str) -> str | None:
        return self.owners.get((ttl, address))

    def claim(self, ttl: int, address: str, host: str) -> None:
        self.owners.setdefault((ttl, address), host)

    def leads_to(self, start: str, host: str) -> bool:
        """Whether ``start``'s route borrows, directly or not, from ``host``'s (a link would make a cycle)."""
        seen: set[str] = set()
        current: str | None = start
        while current is not None and current not in seen:
            if current == host:
                return True
            seen.add(current)
            record = self.hosts.get(current)
            current = record.link[1] if record is not None and record.link is not None else None
        return False

    def trim(self) -> None:
        if len(self.hosts) > _CACHE_LIMIT:
            self.owners.clear()
            self.hosts.clear()


class TraceSession:
    """Traces of a set of hosts, probed in parallel."""

    def __init__(self, targets: Sequence[TraceTarget], secret: bytes, family: int,
                 options: TraceOptions = TraceOptions(), cache: HopCache | None = None) -> None:
        self.options = options
        self.cache = cache if cache is not None else HopCache()
        self.probes: dict[str, TraceProbes] = {}
        self.hosts: dict[str, _Host] = {}
        for t in targets:
            if t.source not in self.probes:
                self.probes[t.source] = TraceProbes(t.source, secret, family)
            start = min(MAX_TTL, max(1, t.distance if t.distance is not None else NO_DISTANCE_START))
            host = _Host(t, start, start, start + 1)
            self.hosts[t.address] = host
            self.cache.hosts[t.address] = host
        latencies = [t.latency for t in targets if t.latency is not None]
        self.srtt: float | None = max(latencies) if latencies else None
        self.rttvar = self.srtt / 2 if self.srtt is not None else 0.0
        self.active = [h for h in self.hosts.values()]
        self.in_flight = 0
        self.next_send = 0.0
        self.sent_count = 0

    # -- timing ------------------------------------------------------------
    def timeout(self) -> float:
        o = self.options
        if self.srtt is None:
            return o.max_timeout
        return min(o.max_timeout, max(o.min_timeout, self.srtt + 4 * self.rttvar))

    def _stagger(self, host: _Host) -> float:
        rtt = host.target.latency if host.target.latency is not None else self.srtt
        return min(self.timeout(), max(_MIN_STAGGER, 3 * rtt if rtt is not None else 0.0))

    def _sample(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt

    # -- the session's interface --------------------------------------------
    @property
    def finished(self) -> bool:
        return not self.active

    def due(self, now: float) -> list[tuple[str, bytes]]:
        """Datagrams to send now, as (destination, bytes), taking hosts in turn."""
        out: list[tuple[str, bytes]] = []
        self._end_expired_hosts(now)
        progress = True
        while progress and self.in_flight < self.options.max_in_flight and now >= self.next_send:
            progress = False
            for host in self.active:
                if self.in_flight >= self.options.max_in_flight or now < self.next_send:
                    break
                ttl = self._pick(host, now)
                if ttl is None:
                    continue
                out.append((host.address, self._send(host, ttl, now)))
                progress = True
        self._finish_idle(now)
        return out

    def _pick(self, host: _Host, now: float) -> int | None:
        if host.retry:
            return host.retry.pop(0)
        if host.counting_up:
            if len(host.inflight) >= _UP_WINDOW:
                return None
        elif now < host.next_new:
            return None
        ttl = host.next_new_ttl()
        if ttl is not None:
            host.next_new = now + self._stagger(host)
        return ttl

    def _send(self, host: _Host, ttl: int, now: float) -> bytes:
        times = host.sent.setdefault(ttl, [])
        attempt = len(times)
        times.append(now)
        host.inflight[ttl] = now + self.timeout() * (1 + attempt)
        self.in_flight += 1
        self.sent_count += 1
        if self.options.scan_delay:
            self.next_send = now + self.options.scan_delay
        return self.probes[host.target.source].build(host.address, host.target.method, ttl, attempt)

    def receive(self, datagram: bytes, now: float) -> bool:
        """Take one captured datagram; True if it answered one of our probes."""
        for probes in self.probes.values():
            reply = probes.read(datagram)
            if reply is not None:
                break
        else:
            return False
        host = self.hosts.get(reply.target)
        if host is None:
            return False
        if host.timed_out or (host.done and reply.ttl not in host.silent):
            return True  # ours, but the trace is over (a late answer still fills a silent TTL)
        times = host.sent.get(reply.ttl)
        if times is None or reply.attempt >= len(times) or reply.ttl in host.hops or reply.ttl < host.floor:
            return True
        rtt = max(0.0, now - times[reply.attempt])
        if reply.ttl in host.inflight:
            del host.inflight[reply.ttl]
            self.in_flight -= 1
        if reply.ttl in host.retry:
            host.retry.remove(reply.ttl)
        host.silent.discard(reply.ttl)
        self._sample(rtt)
        host.next_new = now
        self._answer(host, reply.ttl, reply.sender, reply.kind, reply.reply_ttl, rtt)
        return True

    def _answer(self, host: _Host, ttl: int, sender: str, kind: ReplyKind, reply_ttl: int, rtt: float) -> None:
        host.hops[ttl] = (sender, rtt)
        if kind is ReplyKind.TARGET:
            host.reached = ttl if host.reached is None else min(host.reached, ttl)
            distance = distance_from_ttl(reply_ttl)
            if not host.counting_up and 0 < distance < ttl:
                host.down = min(host.down, distance)
        elif kind is ReplyKind.UNREACHABLE:
            host.end = ttl if host.end is None else min(host.end, ttl)
        owner = self.cache.owner(ttl, sender)
        if owner is None or owner == host.address or kind is ReplyKind.TARGET:
            self.cache.claim(ttl, sender, host.address)  # the target's own answer stays its own row
        elif not self.cache.leads_to(owner, host.address) and (host.link is None or host.link[0] < ttl):
            host.link = (ttl, owner)
            host.floor = ttl + 1
            host.counting_up = True
            host.silent = {t for t in host.silent if t > ttl}
        self._drop_outside(host)

    def _drop_outside(self, host: _Host) -> None:
        """Forget probes below the linked hops or beyond the end of the route."""
        top = host.last_ttl()
        before = len(host.inflight)
        host.forget(t for t in range(host.floor, top + 1))
        self.in_flight -= before - len(host.inflight)

    def expire(self, now: float) -> None:
        """Probes whose time ran out: retried, or their TTL called silent."""
        for host in self.active:
            for ttl, deadline in list(host.inflight.items()):
                if now < deadline:
                    continue
                del host.inflight[ttl]
                self.in_flight -= 1
                if len(host.sent[ttl]) <= min(self.options.retries, MAX_ATTEMPTS - 1):
                    host.retry.append(ttl)
                else:
                    host.silent.add(ttl)
        self._end_expired_hosts(now)
        self._finish_idle(now)

    def _end_expired_hosts(self, now: float) -> None:
        for host in self.active:
            deadline = host.target.deadline
            if deadline is not None and now >= deadline and not host.done:
                self.in_flight -= len(host.inflight)
                host.inflight.clear()
                host.retry.clear()
                host.timed_out = host.done = True
        self.active = [h for h in self.active if not h.done]

    def _finish_idle(self, now: float) -> None:
        for host in self.active:
            if host.inflight or host.retry:
                continue
            if not host.counting_up and host.down >= host.floor:
                continue
            if host.next_new_ttl() is None:
                host.done = True
        self.active = [h for h in self.active if not h.done]

    def time_until_next(self, now: float) -> float:
        """Seconds until something is due: a send, a timeout or a host's deadline."""
        if self.finished:
            return 0.0
        moments: list[float] = []
        window_open = self.in_flight < self.options.max_in_flight
        for host in self.active:
            if host.retry and window_open:
                return max(0.0, self.next_send - now)
            moments.extend(host.inflight.values())
            if window_open and host.next_new_ttl() is not None and (
                    not host.counting_up or len(host.inflight) < _UP_WINDOW):
                moments.append(max(host.next_new, self.next_send))
            if host.target.deadline is not None:
                moments.append(host.target.deadline)
        return max(0.0, min(moments) - now) if moments else self.options.max_timeout

    # -- results -------------------------------------------------------------
    def sent_ttls(self, address: str) -> tuple[int, ...]:
        """The TTLs probed for ``address``, in increasing order (for tests and --packet-trace counts)."""
        return tuple(sorted(self.hosts[address].sent))

    def result(self, address: str) -> TraceResult:
        host = self.hosts[address]
        route = _route(self.cache, host, frozenset())
        if host.reached is not None or host.end is not None:
            last = host.last_ttl()
        else:
            last = max([*route, *host.sent, 0])
        hops = tuple(TraceHop(t, route[t][0], route[t][1]) if t in route else TraceHop(t, None)
                     for t in range(1, last + 1))
        shared_with, shared = (host.link[1], host.link[0]) if host.link is not None else (None, 0)
        return TraceResult(hops, host.reached, shared_with, shared, host.timed_out)


def _route(cache: HopCache, host: _Host, seen: frozenset[str]) -> dict[int, tuple[str, float | None]]:
    """TTL → (address, rtt) of ``host``'s route: the linked host's hops below the link, its own above."""
    route: dict[int, tuple[str, float | None]] = {}
    if host.link is not None:
        ttl, owner = host.link
        record = cache.hosts.get(owner)
        if record is not None and owner not in seen:
            lower = _route(cache, record, seen | {host.address})
            route.update({t: hop for t, hop in lower.items() if t <= ttl})
    for t, hop in host.hops.items():
        if host.link is None or t > host.link[0] or t not in route:
            route.setdefault(t, hop)
    return route
