"""Host discovery in a worker process, so the scanning process's work on each result runs beside it.

A big sweep is CPU-bound in two places: the discovery engine (building,
sending, capturing and matching probes) and what the pipeline does with
each host it decides (its record, and every output).  In one process they
take turns on one core.  Here the engine runs in a forked worker while
this process writes hosts: a thread feeds the worker the target addresses
through a pipe, as the engine asks for them (the pipe's capacity bounds
how far ahead it reads), and the worker streams back compact results, in
target order, which this process turns back into ``DiscoveryResult``.

Nothing else changes: the same session, with the same limits and pacing,
decides every host, and the results arrive in the order one process would
give them.  A scan that records evidence (--pcap, --packet-trace) is not
split: that records one conversation in this process.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence

from leadline.config import DiscoveryProbe, Timing
from leadline.core.discoverysession import DiscoveryResult
from leadline.engines.procpool import Send, Work, WorkerFailed, WorkerPool
from leadline.errors import PrivilegeError
from leadline.model import Reason

__all__ = ["WORKER_AFTER", "discover_in_worker", "worth_a_worker"]

# A sweep this long takes a second or more; forking (a few milliseconds) pays.
WORKER_AFTER = 4096
_FLUSH_RESULTS = 1024
_FLUSH_SECONDS = 0.05
_PIPE_SIZE = 1 << 20  # addresses the feeder may write ahead of the engine: about 60,000
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_VANISHED = "the host discovery worker process ended before finishing"


def worth_a_worker(addresses: Iterable[str], cores: int, threshold: int = WORKER_AFTER) -> tuple[bool, Iterator[str]]:
    """Whether the sweep is long enough for a worker, and the addresses to sweep (those read to tell, then the rest).

    Reads at most ``threshold`` addresses ahead: the stream is never held whole.
    """
    stream = iter(addresses)
    if cores < 2:
        return False, stream
    head = list(itertools.islice(stream, threshold))
    return len(head) >= threshold, itertools.chain(head, stream)


def discover_in_worker(
    addresses: Iterator[str],
    probes: Sequence[DiscoveryProbe],
    timing: Timing,
    *,
    arp: bool,
    stop: threading.Event | None,
) -> Iterator[DiscoveryResult]:
    """``engines.discovery.raw_discover`` run in a forked worker; the same results, in the same order."""
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_fd, _F_SETPIPE_SZ, _PIPE_SIZE)
    try:
        pool = WorkerPool(1, _work(read_fd, write_fd, probes, timing, arp))
    except BaseException:
        os.close(read_fd)
        os.close(write_fd)
        raise
    os.close(read_fd)
    feeder = _Feeder(addresses, write_fd)
    feeder.start()
    finished = False
    reasons = {reason.value: reason for reason in Reason}
    try:
        for worker, message in pool.messages(stop):
            if message is None:
                if worker >= 0 and not finished and not (stop is not None and stop.is_set()):
                    raise feeder.failure or WorkerFailed(_VANISHED)
                continue
            kind = message[0]
            if kind == "error":
                raise _worker_error(str(message[1]))
            if kind == "finished":
                finished = True
                continue
            for address, up, reason, ttl, latency, mac in message[1]:  # type: ignore[attr-defined]
                yield DiscoveryResult(address, up, reasons[reason], ttl, latency, mac)
        if feeder.failure is not None:
            raise feeder.failure
    finally:
        pool.close()
        feeder.close()


def _work(read_fd: int, write_fd: int, probes: Sequence[DiscoveryProbe], timing: Timing, arp: bool) -> Work:
    def work(_index: int, send: Send, stopping: threading.Event) -> None:
        from leadline.engines.discovery import raw_discover

        os.close(write_fd)  # the worker's copy: end-of-file must come when the feeder closes its own
        batch: list[tuple[object, ...]] = []
        flushed = time.monotonic()
        with os.fdopen(read_fd, "r", encoding="ascii", newline="\n") as incoming:
            targets = (line.rstrip("\n") for line in incoming)
            for result in raw_discover(targets, probes, timing, arp=arp, stop=stopping):
                batch.append((result.address, result.up, result.reason.value, result.ttl, result.latency, result.mac))
                now = time.monotonic()
                if len(batch) >= _FLUSH_RESULTS or now - flushed >= _FLUSH_SECONDS:
                    send(("results", batch))
                    batch = []
                    flushed = now
        if batch:
            send(("results", batch))
        send(("finished",))

    return work


def _worker_error(text: str) -> Exception:
    """The worker's exception as this process would have raised it: a missing privilege keeps its one line."""
    name, _, detail = text.partition(": ")
    if name == PrivilegeError.__name__:
        return PrivilegeError(detail)
    return WorkerFailed(f"host discovery failed in a worker process: {text}")


class _Feeder(threading.Thread):
    """Writes the addresses, one a line, into the worker's pipe; blocks while the pipe is full."""

    def __init__(self, addresses: Iterator[str], fd: int) -> None:
        super().__init__(name="leadline-discovery-feeder", daemon=True)
        self.addresses = addresses
        self.fd = fd
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            pending: list[str] = []
            for address in self.addresses:
                pending.append(address)
                if len(pending) >= 256:
                    self._write(pending)
                    pending = []
            if pending:
                self._write(pending)
        except (BrokenPipeError, OSError):
            pass  # the worker has stopped reading: stopped, or failed (its own message says why)
        except BaseException as exc:  # noqa: BLE001 - a bad target spec must reach the scanning thread
            self.failure = exc
        finally:
            with contextlib.suppress(OSError):
                os.close(self.fd)

    def _write(self, addresses: list[str]) -> None:
        view = memoryview(("\n".join(addresses) + "\n").encode("ascii"))
        while view:
            view = view[os.write(self.fd, view):]

    def close(self) -> None:
        self.join(timeout=1.0)
