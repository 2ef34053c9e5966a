"""``--cluster``: one scan's hosts spread over the workers of a Dask ``distributed`` cluster.

The coordinator is the ordinary pipeline (same plan, same target stream
with ``--shards`` and ``--resume`` applied, same sinks) with the hosts'
scanning handed to Dask: the stream is cut into tasks of a few hundred
hosts (thousands for a sweep), submitted with explicit keys, a bounded
number at a time, and collected with ``as_completed`` so finished hosts
reach the outputs and the progress line as soon as a task ends.

Promises kept here:

* Each host is in exactly one task, and a task's result is written once,
  whichever worker finally ran it: a task whose worker dies is run again
  by the scheduler elsewhere, and only the run that completes reports.
* Raw-packet tasks ask for the ``rawsock`` resource, so they go only to
  workers started with ``--resources "rawsock=1"``; ``local:N`` starts its
  workers with it.
* Addresses are grouped into tasks by their value modulo K (the reply
  class), so a task's capture can drop, in the kernel, replies from
  addresses another task on the same machine is probing.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from leadline.cluster.task import TaskResult, scan_task, warm
from leadline.cluster.wire import unpack
from leadline.core.targets import Target, reply_class
from leadline.errors import UsageError
from leadline.model import Hostname
from leadline.pipeline import Scan
from leadline.scantypes import Engine

__all__ = ["ClusterScan", "connect", "require_dask"]

MISSING = "--cluster needs Dask's distributed package: pip install 'leadline[cluster]'"
SWEEP_TASK = 8192  # hosts per task of a -sn sweep: a task's fixed cost (sockets, routes, pacing ramp) stays small
SCAN_TASK = 256  # hosts per task of a port scan: hundreds, so Dask's ~1 ms per task is noise
IN_FLIGHT_PER_WORKER = 2  # tasks queued per worker: one running, one ready, and the stream stays lazy

# A local cluster is ours alone, with no dashboard to feed: its workers need not sample their own stacks
# every 10 ms (about a tenth of a sweep task's CPU, and the sampler takes the GIL from the task) nor
# poll the system and the event loop many times a second; memory limits are checked once a second,
# not ten times (workers and nannies alike).  Forked workers start in about a second; spawned ones
# would import everything again (several seconds).
LOCAL_CONFIG = {
    "distributed.worker.multiprocessing-method": "fork",
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def require_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(MISSING) from None


def connect(spec: str) -> Any:
    """A Dask client for ``tcp://HOST:PORT`` (a running scheduler) or ``local:N`` (N worker processes here)."""
    require_dask()
    import dask
    from distributed import Client, LocalCluster

    if spec.startswith("local:"):
        dask.config.set(LOCAL_CONFIG)
        warm()
        count = spec[len("local:"):]
        if not count.isdigit() or not 1 <= int(count) <= 256:
            raise UsageError(f"--cluster local:N needs N from 1 to 256, not '{count}'")
        cluster = LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True,
                               resources={"rawsock": 1}, dashboard_address=None, silence_logs=50)
        return Client(cluster)
    if spec.startswith(("tcp://", "tls://")):
        try:
            return Client(spec, timeout=10)
        except (OSError, TimeoutError) as e:
            raise UsageError(f"cannot reach the Dask scheduler at {spec}: {e}") from None
    raise UsageError(f"--cluster takes tcp://HOST:PORT or local:N, not '{spec}'")


class ClusterScan(Scan):
    """A Scan whose hosts are scanned by Dask workers; everything else is the pipeline's."""

    def scan_all(self) -> None:
        config = self.config
        assert config.cluster is not None
        if config.list_only:  # a list scan sends nothing: there is no work to spread
            super().scan_all()
            return
        client = connect(config.cluster)
        self._closing: threading.Thread | None = None
        try:
            self._run_tasks(client)
        finally:
            if self._closing is None:
                self._release(client)
            assert self._closing is not None
            self._closing.join()

    def _release(self, client: Any) -> None:
        """Close the client (and a local cluster) in the background: it takes about a second,
        which the last task's hosts are written in."""
        def close() -> None:
            client.close()
            cluster = getattr(client, "cluster", None)
            if cluster is not None and str(self.config.cluster).startswith("local:"):
                cluster.close()

        self._closing = threading.Thread(target=close, name="leadline-cluster-close", daemon=True)
        self._closing.start()

    def _raw(self) -> bool:
        plan = self.plan
        return plan.raw_discovery or plan.raw_port_scan

    def _task_size(self) -> int:
        return SWEEP_TASK if not self.plan.scan_types and not self.config.list_only else SCAN_TASK

    def _run_tasks(self, client: Any) -> None:
        from distributed import as_completed

        if self.config.cluster and self.config.cluster.startswith("local:"):
            client.wait_for_workers(int(self.config.cluster[len("local:"):]), timeout=60)
        resources = {"rawsock": 1} if self._raw() else None
        addresses = sorted(client.nthreads())  # asked of the scheduler now, not a cached view
        if resources and not _any_raw_worker(client):
            raise UsageError(f"no worker of {self.config.cluster} declares the rawsock resource this scan needs: "
                             "start workers as root with --resources \"rawsock=1\"")
        workers = max(1, len(addresses))
        # Reply class r goes first to worker r, so the tasks running side by side on one machine are of
        # different classes and their captures split the replies between them; any worker may take a
        # class over when its own dies.
        classes = workers
        token = uuid.uuid4().hex[:12]
        batches = _batches(self.targets(), classes, self._task_size())
        pending: dict[str, dict[str, Target]] = {}
        counter = itertools.count()

        def submit(batch: tuple[int, list[Target]]) -> Any:
            share, targets = batch
            key = f"leadline-{token}-{next(counter)}"
            pending[key] = {t.address: t for t in targets}
            return client.submit(scan_task, self.config, tuple(t.address for t in targets),
                                 (share, classes) if classes > 1 else None, key=key, resources=resources,
                                 pure=False, retries=2, workers=[addresses[share]] if addresses else None,
                                 allow_other_workers=True)

        running = as_completed([submit(b) for b in itertools.islice(batches, workers * IN_FLIGHT_PER_WORKER)])
        task_name = "Cluster Scan"
        self.ctx.sink.task_begin(task_name, _now(), f"on {workers} worker{'s' if workers != 1 else ''}")
        for future in running:
            if self.ctx.stopped:
                client.cancel(list(running.futures))
                break
            result: TaskResult = future.result()
            following = next(batches, None)
            if following is not None:
                running.add(submit(following))  # before writing, so no worker waits for our outputs
            elif running.is_empty():
                self._release(client)
            self._write(result, pending.pop(future.key))
        self.ctx.sink.task_end(task_name, _now(), "")

    def _write(self, result: TaskResult, targets: dict[str, Target]) -> None:
        for line in result.warnings:
            self.warn(line)
        for host in unpack(result.hosts, scanned_by=result.worker):
            target = targets.get(host.address)
            if target is not None and target.hostname and not any(n.kind == "user" for n in host.hostnames):
                host = replace(host, hostnames=(Hostname(target.hostname, "user"), *host.hostnames),
                               other_addresses=target.other_addresses)
            self.emitter.replay(host)
        self.emitter.flush()


def _any_raw_worker(client: Any) -> bool:
    """Whether some worker of the scheduler declared ``rawsock`` (raw tasks would wait forever otherwise)."""
    def declared(dask_scheduler: Any) -> bool:
        return any(w.resources.get("rawsock") for w in dask_scheduler.workers.values())

    return bool(client.run_on_scheduler(declared))


def _now() -> float:
    import time

    return time.time()


def _batches(targets: Iterator[Target], classes: int, size: int) -> Iterator[tuple[int, list[Target]]]:
    """Tasks of ``size`` targets, each of one reply class (address mod ``classes``), lazily."""
    open_batches: dict[int, list[Target]] = {}
    for target in targets:
        share = reply_class(target.address, classes)
        batch = open_batches.setdefault(share, [])
        batch.append(target)
        if len(batch) >= size:
            yield share, open_batches.pop(share)
    for share, batch in sorted(open_batches.items()):
        yield share, batch
