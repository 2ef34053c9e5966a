"""A large connect scan split across worker processes, one per CPU core.

A connect scan against nearby hosts is CPU-bound: each probe is a
connect() system call in which the kernel also processes the answer, plus
the engine's bookkeeping, and one Python process uses one core.  So a scan
with many probes forks workers, each running its own connect engine over
an interleaved share of the ports (ports[i::n]) of every host; each worker
streams its verdicts back through a pipe as compact tuples, and this
process turns them into results and reports a host once every worker has
finished it.

Promises kept on top of the engine's own:
  * the same results and callbacks as a single-process scan;
  * global limits stay global: --max-rate, --min-rate and the parallelism
    bounds are divided among the workers;
  * ``stop`` reaches every worker, which reports what it decided; hosts are
    then reported with ``interrupted=True``;
  * no worker outlives the scan: each is reaped before returning, killed if
    it does not finish, and dies with this process if that is killed;
  * a worker that fails ends the scan with one line naming the failure.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import os
import pickle
import select
import signal
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from leadline.config import Timing
from leadline.engines.connect import _DEFAULT_MAX_PARALLELISM, HostPortResults, _ConnectEngine, port_result
from leadline.errors import LeadlineError
from leadline.model import PortResult

__all__ = ["WorkerFailed", "share_timing", "split_connect_scan", "usable_cores", "worker_count"]

# Below this many probes a scan takes tens of milliseconds: forking and
# merging would cost more than a second core saves.
_MIN_PROBES_PER_WORKER = 8192
_MAX_WORKERS = 8
# A rate cap this low keeps one process mostly idle: splitting gains nothing.
_MIN_SPLIT_RATE = 20000.0
_FRAME_HEADER = struct.Struct("<I")
_READ_SIZE = 1 << 20
_POLL_INTERVAL = 0.1  # seconds; how soon ``stop`` is noticed
_STOP_GRACE = 2.0  # seconds a stopped worker gets to report before it is killed
_PR_SET_PDEATHSIG = 1
_HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_VANISHED = "a connect-scan worker process ended before finishing its share"


class WorkerFailed(LeadlineError):
    """A connect-scan worker process failed or vanished."""


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def worker_count(hosts: int, ports: int, timing: Timing, cores: int) -> int:
    """How many processes the scan is worth: 1 means scan here, without forking.

    A --scan-delay or a low --max-rate leaves one process idle most of the
    time, and spacing probes per host is only exact in one process.
    """
    if not hasattr(os, "fork") or timing.scan_delay > 0:
        return 1
    if timing.max_rate is not None and timing.max_rate < _MIN_SPLIT_RATE:
        return 1
    if timing.max_parallelism is not None and timing.max_parallelism < 2:
        return 1
    by_size = (hosts * ports) // _MIN_PROBES_PER_WORKER
    return max(1, min(cores, by_size, ports, _MAX_WORKERS))


def share_timing(timing: Timing, workers: int) -> Timing:
    """One worker's share of the scan-wide limits."""

    def part(value: float | None) -> float | None:
        return None if value is None else value / workers

    ceiling = timing.max_parallelism or _DEFAULT_MAX_PARALLELISM
    return dataclasses.replace(
        timing,
        min_rate=part(timing.min_rate),
        max_rate=part(timing.max_rate),
        max_parallelism=max(1, -(-ceiling // workers)),
        min_parallelism=max(1, timing.min_parallelism // workers),
    )


# -- the worker side ---------------------------------------------------------


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _send_frame(fd: int, message: tuple[object, ...]) -> None:
    payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    _write_all(fd, _FRAME_HEADER.pack(len(payload)) + payload)


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to kill this worker if the scanning process dies first."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _work(
    fd: int,
    hosts: Sequence[str],
    ports: Sequence[int],
    timing: Timing,
    clock: Callable[[], float],
    signal_mask: set[signal.Signals],
) -> None:
    """Run one share of the scan and stream its verdicts; frames are
    ("verdicts", decided, [(host index, port, *outcome)], [(host index, latency, timed_out, interrupted)])
    or ("error", message)."""
    stopping = threading.Event()
    # Ctrl-C reaches the whole process group: the scanning process decides
    # what it means and tells the workers with SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    signal.pthread_sigmask(signal.SIG_SETMASK, signal_mask)
    journal: list[tuple[int, int, int, int, float]] = []
    engine = _ConnectEngine(hosts, ports, timing, clock=clock, journal=journal)
    index = {address: i for i, address in enumerate(hosts)}

    def flush(finished: list[HostPortResults]) -> None:
        if journal or finished:
            reports = [(index[h.address], h.latency, h.timed_out, h.interrupted) for h in finished]
            _send_frame(fd, ("verdicts", engine.decided, journal[:], reports))
            journal.clear()

    try:
        flush(engine.finished_hosts)
        engine.finished_hosts = []
        while not engine.finished:
            if stopping.is_set():
                flush(engine.interrupt())
                break
            flush(engine.step())
    finally:
        engine.close()


def _worker_main(
    fd: int,
    hosts: Sequence[str],
    ports: Sequence[int],
    timing: Timing,
    clock: Callable[[], float],
    parent: int,
    signal_mask: set[signal.Signals],
) -> None:
    """The forked process: never returns, never runs the parent's cleanup or flushes its buffers."""
    status = 0
    try:
        _die_with_parent(parent)
        _work(fd, hosts, ports, timing, clock, signal_mask)
    except BrokenPipeError:
        status = 1  # the scanning process is gone; nobody to report to
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent as one line
        status = 1
        with contextlib.suppress(OSError):
            _send_frame(fd, ("error", f"{type(exc).__name__}: {exc}"))
    finally:
        os._exit(status)


# -- the scanning side ---------------------------------------------------------


@dataclass
class _Worker:
    pid: int
    fd: int
    buffer: bytearray = field(default_factory=bytearray)
    decided: int = 0
    hosts_done: int = 0
    open: bool = True
    reaped: bool = False


@dataclass
class _Merge:
    """What the workers have said about one host so far."""

    ports: list[PortResult] = field(default_factory=list)
    reports: int = 0
    latencies: list[float] = field(default_factory=list)
    timed_out: bool = False
    interrupted: bool = False


class _Split:
    def __init__(self, hosts: Sequence[str], workers: list[_Worker], on_host_done: Callable[[HostPortResults], None]) -> None:
        self.hosts = hosts
        self.workers = workers
        self.on_host_done = on_host_done
        self.merges = [_Merge() for _ in hosts]
        self.reported = [False] * len(hosts)
        self.failure: str | None = None

    def read(self, worker: _Worker) -> None:
        try:
            chunk = os.read(worker.fd, _READ_SIZE)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EINTR):
                return
            raise
        if not chunk:
            worker.open = False
            return
        buffer = worker.buffer
        buffer += chunk
        while len(buffer) >= _FRAME_HEADER.size:
            (length,) = _FRAME_HEADER.unpack_from(buffer)
            end = _FRAME_HEADER.size + length
            if len(buffer) < end:
                break
            message = pickle.loads(buffer[_FRAME_HEADER.size : end])
            del buffer[:end]
            self.handle(worker, message)

    def handle(self, worker: _Worker, message: tuple[object, ...]) -> None:
        if message[0] == "error":
            self.failure = self.failure or str(message[1])
            return
        _, decided, verdicts, reports = message
        worker.decided = decided  # type: ignore[assignment]
        merges = self.merges
        for host_index, port, code, attempts, seconds in verdicts:  # type: ignore[attr-defined]
            merges[host_index].ports.append(port_result(port, code, attempts, seconds))
        for host_index, latency, timed_out, interrupted in reports:  # type: ignore[attr-defined]
            worker.hosts_done += 1
            merge = merges[host_index]
            merge.reports += 1
            if latency is not None:
                merge.latencies.append(latency)
            merge.timed_out = merge.timed_out or timed_out
            merge.interrupted = merge.interrupted or interrupted
            if merge.reports == len(self.workers):
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
        return sum(worker.decided for worker in self.workers)


def _port_number(result: PortResult) -> int:
    return result.port


def _reap(worker: _Worker, *, block: bool) -> None:
    if worker.reaped:
        return
    pid, _ = os.waitpid(worker.pid, 0 if block else os.WNOHANG)
    worker.reaped = pid != 0


def _end_workers(workers: list[_Worker]) -> None:
    """Kill and reap whatever is still running; close every pipe."""
    for worker in workers:
        if not worker.reaped:
            # A worker whose pipe reached end-of-file is already exiting.
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                _reap(worker, block=not worker.open)
            if not worker.reaped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    _reap(worker, block=True)
        if worker.fd >= 0:
            os.close(worker.fd)
            worker.fd = -1


def _fork_workers(
    hosts: Sequence[str], ports: Sequence[int], timing: Timing, count: int, clock: Callable[[], float]
) -> list[_Worker]:
    share = share_timing(timing, count)
    parent = os.getpid()
    workers: list[_Worker] = []
    try:
        for i in range(count):
            read_fd, write_fd = os.pipe()
            # Until a worker has its own handlers, a signal would run the
            # scanning process's handlers in it: hold signals over the fork.
            held = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                for earlier in workers:
                    os.close(earlier.fd)
                _worker_main(write_fd, hosts, ports[i::count], share, clock, parent, held)
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            os.close(write_fd)
            os.set_blocking(read_fd, False)
            workers.append(_Worker(pid, read_fd))
    except BaseException:
        _end_workers(workers)
        raise
    return workers


def split_connect_scan(
    hosts: Sequence[str],
    ports: Sequence[int],
    timing: Timing,
    workers: int,
    *,
    on_host_done: Callable[[HostPortResults], None],
    on_progress: Callable[[int, int], None] | None,
    stop: threading.Event | None,
    clock: Callable[[], float],
) -> None:
    """``connect_scan`` over ``workers`` processes; same arguments, same callbacks.

    ``hosts`` and ``ports`` must be checked and free of repeats already.
    """
    total = len(hosts) * len(ports)
    running = _fork_workers(hosts, ports, timing, workers, clock)
    split = _Split(hosts, running, on_host_done)
    stop_sent_at: float | None = None
    last_progress = -1
    try:
        poller = select.poll()
        for worker in running:
            poller.register(worker.fd, select.POLLIN)
        while any(worker.open for worker in running):
            if stop is not None and stop.is_set() and stop_sent_at is None:
                stop_sent_at = time.monotonic()
                for worker in running:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(worker.pid, signal.SIGTERM)
            if stop_sent_at is not None and time.monotonic() - stop_sent_at > _STOP_GRACE:
                break
            by_fd = {worker.fd: worker for worker in running if worker.open}
            for fd, _event in poller.poll(_POLL_INTERVAL * 1000):
                worker = by_fd.get(fd)
                if worker is None:
                    continue
                split.read(worker)
                if not worker.open:
                    poller.unregister(fd)
                    if worker.hosts_done < len(hosts) and stop_sent_at is None and split.failure is None:
                        raise WorkerFailed(_VANISHED)
            if split.failure is not None:
                raise WorkerFailed(f"connect scan failed in a worker process: {split.failure}")
            if on_progress is not None and split.decided != last_progress:
                last_progress = split.decided
                on_progress(last_progress, total)
        unfinished = [i for i, done in enumerate(split.reported) if not done]
        if unfinished and stop_sent_at is None:
            raise WorkerFailed(_VANISHED)
        for host_index in unfinished:
            split.report(host_index, interrupted=True)
    finally:
        _end_workers(running)
