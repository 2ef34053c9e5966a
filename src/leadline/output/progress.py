"""The live status line on a terminal, and nmap-style "Stats:" lines.

The line is redrawn in place with a carriage return, so it must be gone
before any other output reaches the same terminal: the sink clears it on
every event except a progress update, and therefore must come before
the terminal's normal-output sink in a FanOut.  Anything else that
prints (warnings) calls :meth:`ProgressLine.clear` first.  When the
stream is not a terminal the sink writes nothing at all, so piped
output and files stay clean.
"""

from __future__ import annotations

from typing import Sequence, TextIO

from leadline.model import HostResult, PortResult, PortState, RunInfo, RunStats
from leadline.output.base import NullSink
from leadline.output.formatting import clock_time, counted, duration


__all__ = ["ESTIMATE_AFTER_PERCENT", "ESTIMATE_AFTER_SECONDS", "ProgressLine"]

ESTIMATE_AFTER_PERCENT = 5.0
ESTIMATE_AFTER_SECONDS = 10.0


class ProgressLine(NullSink):
    """A single redrawn status line: percentage, ETA and open ports so far."""

    def __init__(self, stream: TextIO, *, width: int = 79, enabled: bool | None = None) -> None:
        self.stream = stream
        self.width = width
        isatty = getattr(stream, "isatty", None)
        # ``enabled=False`` keeps the counts (for --stats-every and key presses) without drawing.
        self.enabled = bool(isatty and isatty()) if enabled is None else enabled
        self.drawn = 0  # characters currently on the status line
        self.start_time: float | None = None
        self.task: str | None = None
        self.percent = 0.0
        self.remaining: float | None = None
        self.etc: float | None = None
        self.hosts_done = 0
        self.hosts_up = 0
        self.open_emitted = 0  # open ports of hosts already reported
        self.open_noted = 0  # open ports the engine reported for hosts still in progress
        self.task_started: float | None = None

    # -- sink events -----------------------------------------------------
    def begin(self, run: RunInfo) -> None:
        self.start_time = run.start_time

    def task_begin(self, task: str, time: float, extra: str = "") -> None:
        self.clear()
        self.task, self.percent, self.remaining, self.etc = task, 0.0, None, None
        self.task_started = time

    def task_progress(self, task: str, time: float, percent: float, remaining: float | None, etc: float | None) -> None:
        if task != self.task:
            self.task_started = time
        self.task, self.percent = task, percent
        if not self.estimate_is_sound(time, percent):
            remaining = etc = None
        self.remaining, self.etc = remaining, etc
        self.draw()

    def estimate_is_sound(self, time: float, percent: float) -> bool:
        """Whether a time estimate is worth showing yet.

        The first second of a connect scan is dominated by the slowest
        ports (timeouts not yet learned), so a rate taken there projects
        hours for a scan that takes minutes.  nmap waits for some progress
        before it prints an ETC; so does this line: 5% done, or 10 s into
        the task with at least 1% done.
        """
        elapsed = time - self.task_started if self.task_started is not None else 0.0
        return percent >= ESTIMATE_AFTER_PERCENT or (elapsed >= ESTIMATE_AFTER_SECONDS and percent >= 1.0)

    def port_found(self, address: str, port: PortResult) -> None:
        if port.state is PortState.OPEN:
            self.note_open()
            if self.task is not None:
                self.draw()

    def task_end(self, task: str, time: float, extra: str = "") -> None:
        self.clear()
        if self.task == task:
            self.task = None

    def host(self, host: HostResult) -> None:
        self.clear()
        found = sum(1 for p in host.ports if p.state is PortState.OPEN)
        self.open_emitted += found
        self.open_noted = max(0, self.open_noted - found)
        self.hosts_done += 1
        self.hosts_up += host.is_up

    def listed(self, addresses: Sequence[str]) -> None:
        self.clear()
        self.hosts_done += len(addresses)

    def end(self, stats: RunStats) -> None:
        self.clear()

    # -- for the engine and the CLI --------------------------------------
    def note_open(self, count: int = 1) -> None:
        """The engine found ``count`` open ports on hosts not yet reported."""
        self.open_noted += count

    @property
    def open_ports(self) -> int:
        return self.open_emitted + self.open_noted

    def status_text(self) -> str:
        """The status line's text, without control characters."""
        parts = [f"{self.task or 'Scanning'}: {self.percent:.1f}% done"]
        if self.remaining is not None:
            eta = f"ETC {clock_time(self.etc)} " if self.etc is not None else ""
            parts.append(f"{eta}({duration(self.remaining)} remaining)")
        parts.append(f"{counted(self.open_ports, 'open port')} found")
        return "; ".join(parts)[: self.width]

    def draw(self) -> None:
        if not self.enabled:
            return
        text = self.status_text()
        self.stream.write("\r" + text.ljust(self.drawn))
        self.stream.flush()
        self.drawn = len(text)

    def clear(self) -> None:
        """Erase the status line so the next output starts at column 0."""
        if not self.enabled or not self.drawn:
            return
        self.stream.write("\r" + " " * self.drawn + "\r")
        self.stream.flush()
        self.drawn = 0

    def stats_lines(self, now: float) -> list[str]:
        """nmap's ``--stats-every`` report, two lines, whatever the stream is."""
        elapsed = now - self.start_time if self.start_time is not None else 0.0
        head = f"Stats: {duration(elapsed)} elapsed; {counted(self.hosts_done, 'host')} completed ({self.hosts_up} up)"
        if self.task is None:
            return [head]
        lines = [f"{head}, 1 undergoing {self.task}"]
        timing = f"{self.task} Timing: About {self.percent:.2f}% done"
        if self.remaining is not None and self.etc is not None:
            timing += f"; ETC: {clock_time(self.etc)} ({duration(self.remaining)} remaining)"
        lines.append(timing)
        return lines
