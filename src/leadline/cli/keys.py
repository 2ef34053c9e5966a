"""Runtime interaction, as nmap has it: status on a key press, and ``--stats-every``.

nmap reads the keyboard while it scans: ``v``/``V`` raise or lower the
verbosity, ``d``/``D`` the debugging level, and any other key (Enter,
space) prints a two-line status.  ``--stats-every`` prints the same
status at an interval whatever the output is.  Both run in one thread
next to the scan; every line it prints is written under the lock that
also guards the sinks, so it never lands in the middle of a host's
report or on top of the progress line.

The terminal is put in non-canonical, no-echo mode for the run (keys
would otherwise echo into the progress line and Enter would leave a
stale line above the report) and restored on the way out.
"""

from __future__ import annotations

import os
import select
import sys
import threading
import time
from contextlib import suppress
from collections.abc import Sequence
from typing import Any, Callable, Protocol, TextIO

__all__ = ["Console", "StatusKeys", "Tunable", "keyboard_for"]


class Tunable(Protocol):
    """A sink whose verbosity and debugging a key press may change (the terminal's normal output)."""

    verbosity: int
    debugging: int

    def set_verbosity(self, level: int) -> None: ...


class Console:
    """Where interactive lines go, and the lock that keeps them whole."""

    def __init__(self, stream: TextIO, lock: threading.RLock, clear: Callable[[], None]) -> None:
        self.stream = stream
        self.lock = lock
        self.clear = clear  # erases the progress line before a line is written

    def say(self, lines: list[str]) -> None:
        with self.lock:
            self.clear()
            self.stream.write("".join(line + "\n" for line in lines))
            self.stream.flush()


class StatusKeys:
    """The thread that answers key presses and prints ``--stats-every`` lines."""

    def __init__(
        self,
        console: Console,
        status: Callable[[float], list[str]],
        *,
        tunables: Sequence[Tunable],
        stats_every: float | None,
        keyboard: TextIO | None,
    ) -> None:
        self.console = console
        self.status = status  # time.time() -> the status lines
        self.tunables = tunables
        self.stats_every = stats_every
        self.keyboard = keyboard  # a terminal to read keys from, or None
        self.done = threading.Event()
        self.thread: threading.Thread | None = None
        self.saved_mode: list[object] | None = None
        self.verbosity = max((t.verbosity for t in tunables), default=0)
        self.debugging = max((t.debugging for t in tunables), default=0)

    @property
    def wanted(self) -> bool:
        return self.keyboard is not None or self.stats_every is not None

    def __enter__(self) -> StatusKeys:
        if not self.wanted:
            return self
        if self.keyboard is not None:
            self.saved_mode = _quiet_terminal(self.keyboard)
        self.thread = threading.Thread(target=self._loop, name="leadline-status", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join(timeout=1.0)
        if self.keyboard is not None and self.saved_mode is not None:
            _restore_terminal(self.keyboard, self.saved_mode)

    def _loop(self) -> None:
        next_stats = time.monotonic() + self.stats_every if self.stats_every else None
        while not self.done.is_set():
            wait = 0.2 if next_stats is None else max(0.0, min(0.2, next_stats - time.monotonic()))
            key = self._read_key(wait)
            if self.done.is_set():
                return
            if key:
                self.press(key)
            if next_stats is not None and time.monotonic() >= next_stats:
                self.console.say(self.status(time.time()))
                assert self.stats_every is not None
                next_stats = time.monotonic() + self.stats_every

    def _read_key(self, wait: float) -> str:
        if self.keyboard is None:
            self.done.wait(wait)
            return ""
        try:
            ready, _, _ = select.select([self.keyboard], [], [], wait)
            if not ready:
                return ""
            data = os.read(self.keyboard.fileno(), 32)
        except (OSError, ValueError):
            self.keyboard = None  # the terminal went away: keep the --stats-every clock only
            return ""
        if not data:
            self.keyboard = None
        return data.decode("ascii", "replace")

    def press(self, keys: str) -> None:
        """Act on the keys read at once, as nmap does."""
        for key in keys:
            if key == "v":
                self._tune(verbosity=self.verbosity + 1)
                self.console.say([f"Verbosity Increased to {self.verbosity}."])
            elif key == "V":
                self._tune(verbosity=max(0, self.verbosity - 1))
                self.console.say([f"Verbosity Decreased to {self.verbosity}."])
            elif key == "d":
                self._tune(debugging=min(9, self.debugging + 1))
                self.console.say([f"Debugging Increased to {self.debugging}."])
            elif key == "D":
                self._tune(debugging=max(0, self.debugging - 1))
                self.console.say([f"Debugging Decreased to {self.debugging}."])
            elif key == "\x1b" or key == "\n" and "\r" in keys:
                continue  # escape sequences and the second half of CR LF print nothing
            else:
                self.console.say(self.status(time.time()))

    def _tune(self, *, verbosity: int | None = None, debugging: int | None = None) -> None:
        with self.console.lock:
            if verbosity is not None:
                self.verbosity = verbosity
                for t in self.tunables:
                    t.set_verbosity(verbosity)
            if debugging is not None:
                self.debugging = debugging
                for t in self.tunables:
                    t.debugging = debugging


def _quiet_terminal(stream: TextIO) -> list[object] | None:
    """Keys are read one at a time and not echoed; returns the mode to restore."""
    try:
        import termios

        fd = stream.fileno()
        saved: list[object] = termios.tcgetattr(fd)
        mode = termios.tcgetattr(fd)
        mode[3] &= ~(termios.ICANON | termios.ECHO)
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(fd, termios.TCSANOW, mode)
        return saved
    except (ImportError, OSError, ValueError):
        return None


def _restore_terminal(stream: TextIO, saved: list[Any]) -> None:
    with suppress(ImportError, OSError, ValueError):
        import termios

        termios.tcsetattr(stream.fileno(), termios.TCSADRAIN, saved)


def keyboard_for(noninteractive: bool) -> TextIO | None:
    """Standard input, when it is a terminal and interaction was not turned off."""
    if noninteractive:
        return None
    try:
        return sys.stdin if sys.stdin is not None and sys.stdin.isatty() else None
    except (AttributeError, ValueError):
        return None
