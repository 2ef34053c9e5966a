"""Output files written a batch of hosts at a time, not a system call per host.

A sweep of a /16 finishes tens of thousands of hosts a second; flushing
each one to each -o file cost a write() apiece (a /17 swept into three
files and a redirected standard output spent 0.06 s more in the kernel,
about 5% of the run).  A ``HeldStream`` takes a sink's text as usual, and the sink's
``flush()`` still marks the end of a whole event (a host, a task line),
but the complete events reach the file together: when 50 ms have passed
since the last write, when 64 KB are waiting, or when the scan says a
batch of hosts is over (``Sink.flush``, which the CLI's sinks turn into
``release``) or the file closes.  A file
therefore always ends at an event boundary, as the checkpoint reader
expects, and lags the scan by at most those 50 ms while hosts keep
coming.  The -o files are held, and so is standard output when it is a
file (everything the CLI prints there goes through the one held stream,
in order); a terminal or a pipe, which someone may be reading live, is
written as each event happens.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["HeldStream"]

_INTERVAL = 0.05  # seconds a complete event may wait for company
_LIMIT = 1 << 16  # characters waiting that are written at once, whatever the time


class HeldStream(io.TextIOBase):
    """A text stream whose flush() is a promise to write soon; ``release()`` keeps it now."""

    def __init__(self, stream: TextIO, *, interval: float = _INTERVAL, limit: int = _LIMIT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.stream = stream
        self.interval = interval
        self.limit = limit
        self._clock = clock
        self._open: list[str] = []  # text of the event being written
        self._complete: list[str] = []  # whole events not yet in the file
        self._waiting = 0
        self._written_at = -float("inf")

    def write(self, text: str) -> int:
        self._open.append(text)
        return len(text)

    def flush(self) -> None:
        """The event written so far is whole: it goes out now if enough time or text has gathered."""
        self._close_event()
        if self._complete and (self._waiting >= self.limit or self._clock() - self._written_at >= self.interval):
            self.release()

    def release(self) -> None:
        """What was written, the event in hand included (the caller has finished it), into the file:
        one write and one flush."""
        self._close_event()
        if self._complete:
            self.stream.write("".join(self._complete))
            self._complete.clear()
            self._waiting = 0
        self.stream.flush()
        self._written_at = self._clock()

    def _close_event(self) -> None:
        if self._open:
            self._complete.extend(self._open)
            self._waiting += sum(len(part) for part in self._open)
            self._open.clear()

    def close(self) -> None:
        """Release what is held, unless the file under it is gone already (then nothing can be kept)."""
        if not self.closed:
            try:
                self.release()
            except (OSError, ValueError):
                self._open.clear()
                self._complete.clear()
        super().close()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def writable(self) -> bool:
        return True

