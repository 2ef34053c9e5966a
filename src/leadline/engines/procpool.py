"""Forked worker processes that stream framed messages back to the scanning process.

A scan against nearby hosts is CPU-bound and one Python process uses one
core, so the engines split big scans across processes.  This module is
the part they share: whether a scan is worth splitting, each worker's
share of the limits, forking, the pipe protocol, signals, and reaping.
What a worker does and what its messages mean belong to the caller.

Promises kept:
  * each worker runs ``work(index, send, stopping)`` and nothing of the
    parent's: it ends with ``os._exit``, never runs the parent's cleanup
    or flushes its buffers;
  * a worker dies with the scanning process (PR_SET_PDEATHSIG);
  * Ctrl-C reaches the whole process group, but only the scanning process
    decides what it means: workers ignore SIGINT and are told to stop with
    SIGTERM, which sets their ``stopping`` event;
  * an exception in a worker reaches the parent as one ("error", text) message;
  * no worker outlives ``close``: each is reaped, killed if still running.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from leadline.config import Timing
from leadline.errors import LeadlineError

__all__ = ["Send", "Work", "WorkerFailed", "WorkerPool", "divide_limits", "split_plan", "usable_cores", "worker_count"]

Send = Callable[[tuple[object, ...]], None]
Work = Callable[[int, Send, threading.Event], None]

_FRAME_HEADER = struct.Struct("<I")
_READ_SIZE = 1 << 20
_PR_SET_PDEATHSIG = 1
_HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_POLL_INTERVAL = 0.1  # seconds; how soon ``stop`` is noticed
_STOP_GRACE = 2.0  # seconds a stopped worker gets to report before it is killed
# Below this many probes a scan takes tens of milliseconds: forking and
# merging would cost more than a second core saves.
_MIN_PROBES_PER_WORKER = 8192
_MAX_WORKERS = 8
# A rate cap this low keeps one process mostly idle: splitting gains nothing.
_MIN_SPLIT_RATE = 20000.0


class WorkerFailed(LeadlineError):
    """A scan worker process failed or vanished."""


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def worker_count(hosts: int, ports: int, timing: Timing, cores: int) -> int:
    """How many processes a scan is worth: 1 means scan here, without forking.

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


def split_plan(hosts: int, ports: int, timing: Timing, cores: int, *, by_hosts_allowed: bool) -> tuple[int, bool]:
    """(workers, by hosts): a scan's ports are shared out when there are enough of them, else (when
    allowed: IPv4) its hosts, so a scan of one port over a /16 uses every core as ``-p-`` of one host does."""
    workers = worker_count(hosts, ports, timing, cores)
    if workers < 2 and by_hosts_allowed:
        workers = worker_count(ports, hosts, timing, cores)
        return workers, workers > 1
    return workers, False


def divide_limits(timing: Timing, workers: int, *, default_parallelism: int | None = None) -> Timing:
    """One worker's share of the scan-wide limits, so their sum holds.

    ``default_parallelism`` is the engine's own cap when the user set none
    (None: the engine has no cap worth dividing).
    """

    def part(value: float | None) -> float | None:
        return None if value is None else value / workers

    ceiling = timing.max_parallelism or default_parallelism
    return dataclasses.replace(
        timing,
        min_rate=part(timing.min_rate),
        max_rate=part(timing.max_rate),
        max_parallelism=None if ceiling is None else max(1, -(-ceiling // workers)),
        min_parallelism=max(1, timing.min_parallelism // workers),
    )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sender(fd: int) -> Send:
    def send(message: tuple[object, ...]) -> None:
        payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        _write_all(fd, _FRAME_HEADER.pack(len(payload)) + payload)

    return send


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to kill this worker if the scanning process dies first."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _worker_main(index: int, fd: int, work: Work, parent: int, signal_mask: set[int | signal.Signals]) -> None:
    """The forked process: never returns."""
    status = 0
    send = _sender(fd)
    try:
        _die_with_parent(parent)
        stopping = threading.Event()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
        signal.pthread_sigmask(signal.SIG_SETMASK, signal_mask)
        work(index, send, stopping)
    except BrokenPipeError:
        status = 1  # the scanning process is gone; nobody to report to
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent as one line
        status = 1
        with contextlib.suppress(OSError):
            send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        os._exit(status)


@dataclass
class _Worker:
    pid: int
    fd: int
    buffer: bytearray = field(default_factory=bytearray)
    open: bool = True
    reaped: bool = False


class WorkerPool:
    """``count`` forked processes running ``work``; iterate ``messages`` to hear them."""

    def __init__(self, count: int, work: Work) -> None:
        self.workers: list[_Worker] = []
        parent = os.getpid()
        try:
            for index in range(count):
                read_fd, write_fd = os.pipe()
                # Until a worker has its own handlers, a signal would run the
                # scanning process's handlers in it: hold signals over the fork.
                held = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
                pid = os.fork()
                if pid == 0:
                    os.close(read_fd)
                    for earlier in self.workers:
                        os.close(earlier.fd)
                    _worker_main(index, write_fd, work, parent, held)
                signal.pthread_sigmask(signal.SIG_SETMASK, held)
                os.close(write_fd)
                os.set_blocking(read_fd, False)
                self.workers.append(_Worker(pid, read_fd))
        except BaseException:
            self.close()
            raise

    def stop(self) -> None:
        """Ask every worker to stop and report what it has."""
        for worker in self.workers:
            if not worker.reaped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGTERM)

    def messages(
        self, stop: threading.Event | None, poll_interval: float = _POLL_INTERVAL, grace: float = _STOP_GRACE
    ) -> Iterator[tuple[int, tuple[object, ...] | None]]:
        """(worker index, message) as they arrive; (index, None) when a worker's pipe closes.

        Ends when every pipe is closed, or ``grace`` seconds after ``stop`` was
        set and the workers were told.  Yields (-1, None) at least every
        ``poll_interval`` seconds, so the caller can report progress.
        """
        poller = select.poll()
        by_fd: dict[int, int] = {}
        for index, worker in enumerate(self.workers):
            poller.register(worker.fd, select.POLLIN)
            by_fd[worker.fd] = index
        stop_sent_at: float | None = None
        while any(worker.open for worker in self.workers):
            if stop is not None and stop.is_set() and stop_sent_at is None:
                stop_sent_at = time.monotonic()
                self.stop()
            if stop_sent_at is not None and time.monotonic() - stop_sent_at > grace:
                return
            for fd, _event in poller.poll(poll_interval * 1000):
                if fd not in by_fd:
                    continue
                index = by_fd[fd]
                worker = self.workers[index]
                yield from ((index, message) for message in self._read(worker))
                if not worker.open:
                    poller.unregister(fd)
                    del by_fd[fd]
                    yield index, None
            yield -1, None

    def _read(self, worker: _Worker) -> list[tuple[object, ...]]:
        try:
            chunk = os.read(worker.fd, _READ_SIZE)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EINTR):
                return []
            raise
        if not chunk:
            worker.open = False
            return []
        buffer = worker.buffer
        buffer += chunk
        out: list[tuple[object, ...]] = []
        while len(buffer) >= _FRAME_HEADER.size:
            (length,) = _FRAME_HEADER.unpack_from(buffer)
            end = _FRAME_HEADER.size + length
            if len(buffer) < end:
                break
            out.append(pickle.loads(buffer[_FRAME_HEADER.size : end]))
            del buffer[:end]
        return out

    def close(self) -> None:
        """Kill and reap whatever is still running; close every pipe."""
        for worker in self.workers:
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


def _reap(worker: _Worker, *, block: bool) -> None:
    if worker.reaped:
        return
    pid, _ = os.waitpid(worker.pid, 0 if block else os.WNOHANG)
    worker.reaped = pid != 0
