"""``--save``: a result sink that writes the scan into the history store as it runs.

The run row is written at ``begin`` (status ``running``), each host in
its own transaction as the pipeline emits it, and the footer at ``end``
(``complete``, or ``interrupted`` when the run stopped early).  So an
interrupted scan keeps every host it finished, and a scan killed outright
leaves a ``running`` row with its finished hosts.  A failing database
never stops the scan: the first error is reported once and the sink goes
quiet, since the scan's other outputs are still worth having.
"""

from __future__ import annotations

from collections.abc import Callable

from leadline.history.store import Store, open_store
from leadline.model import HostResult, RunInfo, RunStats
from leadline.output.base import NullSink

__all__ = ["StoreSink"]


class StoreSink(NullSink):
    def __init__(self, url: str | None, targets: str, warn: Callable[[str], None]) -> None:
        self.url = url
        self.targets = targets
        self.warn = warn
        self.store: Store | None = None
        self.run_id: int | None = None
        self.saved = 0
        self.failed = False

    def _fail(self, e: Exception) -> None:
        if not self.failed:
            self.warn(f"scan history not saved from here on: {e}")
        self.failed = True

    def begin(self, run: RunInfo) -> None:
        try:
            self.store = open_store(self.url)
            self.run_id = self.store.begin_run(run, targets=self.targets)
        except Exception as e:
            self._fail(e)

    def host(self, host: HostResult) -> None:
        if self.store is None or self.run_id is None or self.failed:
            return
        try:
            self.store.add_host(self.run_id, host)
            self.saved += 1
        except Exception as e:
            self._fail(e)

    def end(self, stats: RunStats) -> None:
        if self.store is None or self.run_id is None:
            return
        try:
            self.store.end_run(self.run_id, stats)
        except Exception as e:
            self._fail(e)
