"""Checkpoints: the finished hosts an output file already holds.

Every sink that can be read back (XML, JSON) writes whole hosts only
(several at once when they finish within 50 ms of each other, see
``output/held.py``), so a file is its own checkpoint at every moment:
SIGKILL loses at most the hosts still being scanned and those finished
in the last 50 ms, never part of one.
A resumed run replays the checkpoint's hosts into fresh outputs, then
scans only what is left, so its files equal an uninterrupted run's.
"""

from __future__ import annotations

from dataclasses import dataclass

from leadline.model import HostResult
from leadline.output.resumed import read_written_run

__all__ = ["Checkpoint", "read_checkpoint"]


@dataclass(frozen=True)
class Checkpoint:
    """What ``--resume FILE`` continues: the original command line and the hosts it need not scan again."""

    path: str
    args: str
    done: tuple[HostResult, ...]
    finished: bool  # the earlier run reached its end: nothing is left to scan

    @property
    def done_addresses(self) -> frozenset[str]:
        return frozenset(h.address for h in self.done)


def read_checkpoint(path: str) -> Checkpoint:
    """The checkpoint in ``path``; raises OSError or ValueError with one line naming what is wrong."""
    run = read_written_run(path)
    unique: dict[str, HostResult] = {}
    for host in run.hosts:
        unique.setdefault(host.address, host)  # written once each; a hand-merged file keeps the first
    return Checkpoint(path, run.args, tuple(unique.values()), run.finished)
