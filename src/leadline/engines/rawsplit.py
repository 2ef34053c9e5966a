"""A large raw scan split across worker processes, one per CPU core.

A SYN scan of a nearby host is CPU-bound: one Python process builds,
sends, captures and matches every packet on one core.  So a big scan
forks workers; worker i probes the ports congruent to i modulo the
worker count, with its own session, rate controller and sockets, and its
receiver's BPF filter passes only the TCP replies from those ports (see
``packetio.protocol_filter``): no worker reads another's answers.  A scan
of many IPv4 hosts on fewer ports than workers is split by host instead:
worker i probes the hosts whose address is i modulo the worker count, and
its filter passes only their replies.  ICMP errors
reach every worker; each session checks the quoted probe against its own
cookie and in-flight ports, so only the owner acts on one.

Each worker streams its events back as compact tuples; this process
rebuilds them and hands them to ``on_event`` as a single-process scan
would, with one ``HostDone`` per host once every worker has finished it
(its latency the shortest any worker saw).
Scan-wide limits (--min-rate, --max-rate, --max-parallelism) are divided
among the workers.  A scan that writes --pcap or --packet-trace is not
split: those record one ordered conversation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from leadline.config import Timing
from leadline.core.probes.base import Verdict
from leadline.core.session import Event, HostDone, MakeSession, PortDecided, Warning
from leadline.engines.procpool import Send, WorkerFailed, WorkerPool, divide_limits
from leadline.engines.raw import run_raw_scan
from leadline.model import PortState, Reason

__all__ = ["share_of_ports", "split_raw_scan"]

_FLUSH_EVENTS = 4096
_FLUSH_SECONDS = 0.1
_VANISHED = "a raw-scan worker process ended before finishing its share"


def share_of_ports(ports: Sequence[int], index: int, count: int) -> list[int]:
    """The ports worker ``index`` of ``count`` probes, in the scan's order: by value modulo
    ``count``, because its receive filter tells its replies apart by source port."""
    return [port for port in ports if port % count == index]


def _raw_work(make_session: MakeSession, ports: Sequence[int], timing: Timing, count: int, family: int,
              by_hosts: bool) -> Callable[[int, Send, threading.Event], None]:
    share = divide_limits(timing, count)

    def work(index: int, send: Send, stopping: threading.Event) -> None:
        mine = (index, count)
        host_share, port_share = (mine, None) if by_hosts else (None, mine)
        # Only a host split names its share: a port split's factory may take (ports, timing) alone.
        session = (make_session(ports, share, host_share) if host_share is not None
                   else make_session(share_of_ports(ports, index, count), share))
        batch: list[tuple[object, ...]] = []
        flushed = [time.monotonic()]

        def flush() -> None:
            if batch:
                send(("events", batch[:]))
                batch.clear()
            flushed[0] = time.monotonic()

        def on_event(event: Event) -> None:
            if isinstance(event, PortDecided):
                v = event.verdict
                batch.append((event.address, event.port, v.state.value, v.reason.value, v.ttl, event.rtt, event.attempts, event.exchange))
            elif isinstance(event, HostDone):
                batch.append(("done", event.address, event.latency))
            else:
                batch.append(("warning", event.address, event.text))
            if len(batch) >= _FLUSH_EVENTS or time.monotonic() - flushed[0] >= _FLUSH_SECONDS:
                flush()

        run_raw_scan(session, family=family, on_event=on_event, stop=stopping, share=port_share, host_share=host_share)
        flush()
        send(("finished", session.finished))

    return work


def split_raw_scan(
    make_session: MakeSession,
    ports: Sequence[int],
    timing: Timing,
    workers: int,
    *,
    family: int,
    on_event: Callable[[Event], None],
    stop: threading.Event | None,
    by_hosts: bool = False,
) -> None:
    """Run the scan ``make_session(ports, timing)`` describes over ``workers`` processes.

    ``make_session`` is called in each worker with its share of the ports
    and of the timing limits, or (``by_hosts``, IPv4 only) with every port
    and its share of the hosts; it must draw the hosts itself.
    """
    pool = WorkerPool(workers, _raw_work(make_session, ports, timing, workers, family, by_hosts))
    hosts_done: dict[str, list[float | None]] = {}
    warned: set[tuple[str, str]] = set()
    finished = [False] * workers
    states = {state.value: state for state in PortState}
    reasons = {reason.value: reason for reason in Reason}
    # A scan's ports share a handful of (state, reason, ttl) verdicts: one object each, not one per port.
    verdicts: dict[tuple[str, str, int | None], Verdict] = {}
    try:
        for worker, message in pool.messages(stop):
            if message is None:
                stopping = stop is not None and stop.is_set()
                if worker >= 0 and not finished[worker] and not stopping:
                    raise WorkerFailed(_VANISHED)
                continue
            kind = message[0]
            if kind == "error":
                raise WorkerFailed(f"raw scan failed in a worker process: {message[1]}")
            if kind == "finished":
                finished[worker] = True
                continue
            for row in message[1]:  # type: ignore[attr-defined]
                if len(row) == 8:
                    address, port, state, reason, ttl, rtt, attempts, exchange = row
                    verdict = verdicts.get((state, reason, ttl))
                    if verdict is None:
                        verdict = verdicts[(state, reason, ttl)] = Verdict(states[state], reasons[reason], ttl)
                    on_event(PortDecided(address, port, verdict, rtt, attempts, exchange))
                elif row[0] == "done":
                    _, address, latency = row
                    if by_hosts:  # the host's one worker
                        on_event(HostDone(address, latency))
                        continue
                    reports = hosts_done.setdefault(address, [])
                    reports.append(latency)
                    if len(reports) == workers:
                        del hosts_done[address]
                        measured = [value for value in reports if value is not None]
                        on_event(HostDone(address, min(measured) if measured else None))
                elif (row[1], row[2]) not in warned:  # each worker may see the same thing
                    warned.add((row[1], row[2]))
                    on_event(Warning(row[1], row[2]))
    finally:
        pool.close()
