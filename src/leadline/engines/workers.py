"""A large connect scan split across worker processes, one per CPU core.

A connect scan against nearby hosts is CPU-bound: each probe is a
connect() system call in which the kernel also processes the answer, plus
the engine's bookkeeping, and one Python process uses one core.  So a scan
with many probes forks workers, each running its own connect engine over
an interleaved share of the ports (ports[i::n]) of every host; each worker
streams its verdicts back through a pipe as compact tuples, and this
process turns them into results and reports a host once every worker has
finished it.

The engine that runs in each worker is handed in by the caller
(``scan_share``), so this module depends on the connect session's types,
never on the connect engine: the engine imports this module, not the
other way round.

Workers of one scan probe the same hosts, so a round trip one of them
measured is good for all: the first is posted on a board in anonymous
shared memory (``RttBoard``, mapped before the fork), and a worker that has
heard nothing yet times its attempts by it instead of the initial
timeout.  On a host that drops all but a few ports, a worker whose share
holds none of them would otherwise wait a second for every attempt.

Promises kept on top of the engine's own:
  * the same results and callbacks as a single-process scan;
  * global limits stay global: --max-rate, --min-rate and the parallelism
    bounds are divided among the workers;
  * ``stop`` reaches every worker, which reports what it decided; hosts are
    then reported with ``interrupted=True``;
  * no worker outlives the scan (see ``procpool``);
  * a worker that fails ends the scan with one line naming the failure.
"""

from __future__ import annotations

import mmap
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

from leadline.config import Timing
from leadline.core.connectsession import DEFAULT_MAX_PARALLELISM, HostPortResults, Labels
from leadline.engines.procpool import Send, WorkerFailed, WorkerPool, divide_limits
from leadline.model import PortResult

__all__ = ["Journal", "RttBoard", "ShareScan", "share_timing", "split_connect_scan"]

# Verdicts as a worker records them: (host index, port, errno or NO_ANSWER, attempts, seconds).
Journal = list[tuple[int, int, int, int, float]]
_RTT_SLOT = struct.Struct("d")


class RttBoard:
    """One smoothed round trip (seconds) shared by the workers of a split scan; 0 until one is posted.

    Made before the workers are forked, so all of them map the same page.
    A torn read cannot happen: one aligned 8-byte store and load.
    """

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, _RTT_SLOT.size)

    def post(self, srtt: float) -> None:
        _RTT_SLOT.pack_into(self._memory, 0, max(srtt, 1e-9))

    def read(self) -> float | None:
        (srtt,) = _RTT_SLOT.unpack_from(self._memory, 0)
        return float(srtt) if srtt > 0 else None

    def close(self) -> None:
        self._memory.close()


# Runs one worker's share: (hosts, ports, timing, clock, journal, stopping,
# flush, board) where flush(ports decided, hosts finished) is called after
# every step with the journal filled since the last call.
ShareScan = Callable[
    [Sequence[str], Sequence[int], Timing, Callable[[], float], Journal, threading.Event,
     Callable[[int, list[HostPortResults]], None], RttBoard],
    None,
]

_VANISHED = "a connect-scan worker process ended before finishing its share"


def share_timing(timing: Timing, workers: int) -> Timing:
    """One connect worker's share of the scan-wide limits (the engine's default parallelism divided too)."""
    return divide_limits(timing, workers, default_parallelism=DEFAULT_MAX_PARALLELISM)


def _connect_work(
    hosts: Sequence[str],
    ports: Sequence[int],
    timing: Timing,
    count: int,
    clock: Callable[[], float],
    scan_share: ShareScan,
    board: RttBoard,
) -> Callable[[int, Send, threading.Event], None]:
    """One worker's job: its interleaved share of the ports, verdicts streamed as frames
    ("verdicts", decided, [(host index, port, *outcome)], [(host index, latency, timed_out, interrupted)])."""
    share = share_timing(timing, count)
    position = {address: i for i, address in enumerate(hosts)}

    def work(index: int, send: Send, stopping: threading.Event) -> None:
        journal: Journal = []

        def flush(decided: int, finished: list[HostPortResults]) -> None:
            if journal or finished:
                reports = [(position[h.address], h.latency, h.timed_out, h.interrupted) for h in finished]
                send(("verdicts", decided, journal[:], reports))
                journal.clear()

        scan_share(hosts, ports[index::count], share, clock, journal, stopping, flush, board)

    return work


@dataclass
class _Merge:
    """What the workers have said about one host so far."""

    ports: list[PortResult] = field(default_factory=list)
    reports: int = 0
    latencies: list[float] = field(default_factory=list)
    timed_out: bool = False
    interrupted: bool = False


class _Split:
    def __init__(self, hosts: Sequence[str], workers: int, on_host_done: Callable[[HostPortResults], None],
                 labels: Labels) -> None:
        self.hosts = hosts
        self.labels = labels
        self.workers = workers
        self.on_host_done = on_host_done
        self.merges = [_Merge() for _ in hosts]
        self.reported = [False] * len(hosts)
        self.decided_by = [0] * workers
        self.hosts_done_by = [0] * workers
        self.failure: str | None = None

    def handle(self, worker: int, message: tuple[object, ...]) -> None:
        if message[0] == "error":
            self.failure = self.failure or str(message[1])
            return
        _, decided, verdicts, reports = cast("tuple[str, int, Journal, list[tuple[int, float | None, bool, bool]]]", message)
        self.decided_by[worker] = decided
        merges = self.merges
        result = self.labels.result
        for host_index, port, code, attempts, seconds in verdicts:
            merges[host_index].ports.append(result(port, (code, attempts, seconds)))
        for host_index, latency, timed_out, interrupted in reports:
            self.hosts_done_by[worker] += 1
            merge = merges[host_index]
            merge.reports += 1
            if latency is not None:
                merge.latencies.append(latency)
            merge.timed_out = merge.timed_out or timed_out
            merge.interrupted = merge.interrupted or interrupted
            if merge.reports == self.workers:
                self.report(host_index)

    def report(self, host_index: int, *, interrupted: bool = False) -> None:
        if self.reported[host_index]:
            return
        self.reported[host_index] = True
        merge = self.merges[host_index]
        latency = sum(merge.latencies) / len(merge.latencies) if merge.latencies else None
        ports = [] if merge.timed_out else sorted(merge.ports, key=_port_number)
        self.on_host_done(
            HostPortResults(self.hosts[host_index], ports, latency, merge.timed_out, merge.interrupted or interrupted)
        )

    @property
    def decided(self) -> int:
        return sum(self.decided_by)


def _port_number(result: PortResult) -> int:
    return result.port


def split_connect_scan(
    hosts: Sequence[str],
    ports: Sequence[int],
    timing: Timing,
    workers: int,
    scan_share: ShareScan,
    *,
    on_host_done: Callable[[HostPortResults], None],
    on_progress: Callable[[int, int], None] | None,
    stop: threading.Event | None,
    clock: Callable[[], float],
    labels: Labels | None = None,
) -> None:
    """``connect_scan`` over ``workers`` processes; same arguments, same callbacks.

    ``hosts`` and ``ports`` must be checked and free of repeats already;
    ``scan_share`` runs one worker's share (the connect engine's loop).
    """
    total = len(hosts) * len(ports)
    board = RttBoard()
    pool = WorkerPool(workers, _connect_work(hosts, ports, timing, workers, clock, scan_share, board))
    split = _Split(hosts, workers, on_host_done, labels or Labels())
    last_progress = -1
    try:
        for worker, message in pool.messages(stop):
            if message is not None:
                split.handle(worker, message)
            elif worker >= 0:
                stopping = stop is not None and stop.is_set()
                if split.hosts_done_by[worker] < len(hosts) and not stopping and split.failure is None:
                    raise WorkerFailed(_VANISHED)
            if split.failure is not None:
                raise WorkerFailed(f"connect scan failed in a worker process: {split.failure}")
            if on_progress is not None and split.decided != last_progress:
                last_progress = split.decided
                on_progress(last_progress, total)
        unfinished = [i for i, done in enumerate(split.reported) if not done]
        if unfinished and not (stop is not None and stop.is_set()):
            raise WorkerFailed(_VANISHED)
        for host_index in unfinished:
            split.report(host_index, interrupted=True)
    finally:
        pool.close()
        board.close()
