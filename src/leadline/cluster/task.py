"""One cluster task: a batch of hosts scanned by the ordinary pipeline inside a Dask worker.

A task is a pure function of its arguments (the scan's config, the
addresses, the reply class), so the scheduler may run it again on
another worker when the first one dies: the coordinator keeps the
result of whichever run finishes, once. Hosts come back frozen, each
naming the worker that scanned it, as rows (``leadline.cluster.wire``):
pickling the dataclasses themselves cost more than the scan's output.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from leadline.cluster.wire import Rows, pack
from leadline.config import OutputSpec, ScanConfig
from leadline.core.targets import Target
from leadline.model import HostResult
from leadline.output.base import NullSink
from leadline.pipeline import Scan
from leadline.pipeline.engines import SystemEngines

__all__ = ["TaskResult", "scan_task", "task_config", "warm", "worker_name"]


def warm() -> None:
    """Import what a task needs before local workers are forked, so each does not import it again."""
    import leadline.engines.discovery  # noqa: F401
    import leadline.pipeline.sweep  # noqa: F401
    from leadline.services import ServiceTable

    ServiceTable.load()
    try:
        import leadline.engines.raw  # noqa: F401
    except ImportError:
        pass


@dataclass(frozen=True)
class TaskResult:
    worker: str  # every host of the task was scanned by it
    hosts: Rows
    warnings: tuple[str, ...] = ()
    started: float = 0.0  # wall clock on the worker, for the coordinator's debugging lines
    elapsed: float = 0.0


class _Collect(NullSink):
    def __init__(self) -> None:
        self.hosts: list[HostResult] = []

    def host(self, host: HostResult) -> None:
        self.hosts.append(host)


def task_config(config: ScanConfig, addresses: tuple[str, ...]) -> ScanConfig:
    """The user's config narrowed to ``addresses``: no files, no shards, no cluster of its own."""
    return replace(config, targets=addresses, input_file=None, exclude=(), exclude_file=None, shard=None,
                   resume=None, cluster=None, output=OutputSpec(), interactive=False, randomize_hosts=False,
                   pcap=None, packet_trace=False)


def worker_name() -> str:
    """This worker's address as the scheduler knows it; "local" outside a worker."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"


def scan_task(config: ScanConfig, addresses: tuple[str, ...], reply_share: tuple[int, int] | None = None) -> TaskResult:
    """Scan ``addresses`` here; ``reply_share=(r, K)``: every address is r modulo K, so the
    capture keeps only replies from such addresses and never reads another worker's.

    The addresses were expanded (and names resolved) by the coordinator, so
    they go in as targets, not as specs to parse again."""
    warnings: list[str] = []
    sink = _Collect()
    started = time.time()
    family = 6 if config.ipv6 else 4
    Scan(task_config(config, ()), sink, warn=warnings.append, engines=SystemEngines(reply_share=reply_share),
         given=[Target(a, family) for a in addresses]).run()
    return TaskResult(worker_name(), pack(sink.hosts), tuple(warnings), started, time.time() - started)
