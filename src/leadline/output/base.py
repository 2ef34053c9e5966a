"""The sink protocol: how results leave the scanner.

A sink receives the run's header once, then each host as soon as it is
finished, then the footer.  Sinks write as they go, so a /8 never sits
in memory and an interrupted run still leaves what was found on disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from leadline.model import HostResult, HostStatus, PortResult, Reason, RunInfo, RunStats

__all__ = ["FanOut", "NullSink", "Sink", "listed_host"]


def listed_host(address: str) -> HostResult:
    """What a list scan reports for an address it names nothing for."""
    return HostResult(address=address, family=6 if ":" in address else 4, status=HostStatus.UNKNOWN,
                      status_reason=Reason.USER_SET)


class Sink(Protocol):
    def begin(self, run: RunInfo) -> None: ...

    def task_begin(self, task: str, time: float, extra: str = "") -> None:
        """A phase starts (e.g. "Connect Scan", "Ping Scan", "Parallel DNS resolution")."""

    def task_progress(self, task: str, time: float, percent: float, remaining: float | None, etc: float | None) -> None: ...

    def task_end(self, task: str, time: float, extra: str = "") -> None: ...

    def port_found(self, address: str, port: PortResult) -> None:
        """An open port, as soon as a scan decides it (nmap's -v "Discovered open port" line)."""

    def host(self, host: HostResult) -> None: ...

    def listed(self, addresses: Sequence[str]) -> None:
        """A batch of -sL addresses with no names: the same as one ``host`` event each, cheaper."""

    def flush(self) -> None:
        """A batch of hosts is over (a host group, a sweep): what a sink holds back goes out now."""

    def end(self, stats: RunStats) -> None: ...


class NullSink:
    """A sink that ignores everything; a base for sinks that care about few events."""

    def begin(self, run: RunInfo) -> None:
        pass

    def task_begin(self, task: str, time: float, extra: str = "") -> None:
        pass

    def task_progress(self, task: str, time: float, percent: float, remaining: float | None, etc: float | None) -> None:
        pass

    def task_end(self, task: str, time: float, extra: str = "") -> None:
        pass

    def port_found(self, address: str, port: PortResult) -> None:
        pass

    def host(self, host: HostResult) -> None:
        pass

    def listed(self, addresses: Sequence[str]) -> None:
        for address in addresses:
            self.host(listed_host(address))

    def flush(self) -> None:
        pass

    def end(self, stats: RunStats) -> None:
        pass


class FanOut(NullSink):
    """Sends every event to several sinks in order."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks

    def begin(self, run: RunInfo) -> None:
        for s in self.sinks:
            s.begin(run)

    def task_begin(self, task: str, time: float, extra: str = "") -> None:
        for s in self.sinks:
            s.task_begin(task, time, extra)

    def task_progress(self, task: str, time: float, percent: float, remaining: float | None, etc: float | None) -> None:
        for s in self.sinks:
            s.task_progress(task, time, percent, remaining, etc)

    def task_end(self, task: str, time: float, extra: str = "") -> None:
        for s in self.sinks:
            s.task_end(task, time, extra)

    def port_found(self, address: str, port: PortResult) -> None:
        for s in self.sinks:
            s.port_found(address, port)

    def host(self, host: HostResult) -> None:
        for s in self.sinks:
            s.host(host)

    def listed(self, addresses: Sequence[str]) -> None:
        for s in self.sinks:
            s.listed(addresses)

    def flush(self) -> None:
        for s in self.sinks:
            s.flush()

    def end(self, stats: RunStats) -> None:
        for s in self.sinks:
            s.end(stats)
