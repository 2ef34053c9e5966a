"""When a sweep's engine goes to a worker process, and how the worker's failures read here (no sockets)."""

from __future__ import annotations

from collections.abc import Iterator

from leadline.engines.discoverysplit import _worker_error, worth_a_worker
from leadline.engines.procpool import WorkerFailed
from leadline.errors import PrivilegeError


def test_a_long_stream_is_split_and_read_no_further_than_the_threshold() -> None:
    pulled: list[int] = []

    def stream() -> Iterator[str]:
        for i in range(100):
            pulled.append(i)
            yield f"198.19.0.{i}"

    split, addresses = worth_a_worker(stream(), cores=2, threshold=10)
    assert split
    assert len(pulled) == 10  # only what it took to tell
    assert list(addresses) == [f"198.19.0.{i}" for i in range(100)]  # nothing lost, nothing repeated


def test_a_short_stream_or_one_core_stays_in_this_process() -> None:
    short = [f"198.19.0.{i}" for i in range(9)]
    split, addresses = worth_a_worker(iter(short), cores=2, threshold=10)
    assert not split and list(addresses) == short
    split, addresses = worth_a_worker(iter(short * 5), cores=1, threshold=10)
    assert not split and list(addresses) == short * 5


def test_a_missing_privilege_in_the_worker_keeps_its_one_line() -> None:
    error = _worker_error("PrivilegeError: raw host discovery needs root (or CAP_NET_RAW); use --unprivileged")
    assert isinstance(error, PrivilegeError)
    assert str(error) == "raw host discovery needs root (or CAP_NET_RAW); use --unprivileged"
    other = _worker_error("OSError: [Errno 105] No buffer space available")
    assert isinstance(other, WorkerFailed) and "No buffer space available" in str(other)
