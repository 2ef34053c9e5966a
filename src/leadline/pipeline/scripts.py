"""The script scan phase ("Script scan"): run the selected scripts on every matching port and host.

Scripts are chosen once per scan (``wanted`` parses the ``--script``
expressions, so a typo fails before any output).  Per host group, every
(script, host, port) the scripts' rules accept becomes a job; jobs run
concurrently on a thread pool, each with its own deadline
(``--script-timeout``), each talking to its target only through the I/O
context ``ctx.engines.script_io`` builds.  A script that raises, times
out or meets a protocol it does not expect costs only its own result; with
``-d`` each job's status is told (ok, no output, timeout, protocol error,
error).  Results are sanitised once more here, so a third-party script
that forgets to escape cannot put control characters into any output.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from leadline.detect.scripts.base import HostInfo, Script, ScriptContext, ScriptError, ScriptTimeout, clean
from leadline.detect.scripts.select import available_scripts, selection
from leadline.model import PortResult, PortState, ScriptElement, ScriptResult
from leadline.pipeline.context import ScanContext, TaskProgress
from leadline.pipeline.plan import ScanPlan
from leadline.pipeline.record import HostGroup, HostRecord

__all__ = ["DEFAULT_SCRIPT_TIMEOUT", "ScriptJob", "ScriptScan", "sanitize"]

TASK = "Script scan"
DEFAULT_SCRIPT_TIMEOUT = 30.0  # seconds per script run when --script-timeout is not given
MAX_WORKERS = 64
GRACE = 1.0  # seconds past a job's deadline before the phase stops waiting for it


@dataclass
class ScriptJob:
    """One script against one host (and port, for a port script) and, once run, how it went."""

    script: Script
    record: HostRecord
    port: PortResult | None
    boost: int = 0  # 1 when the script was chosen by name (nmap's verbosity boost)
    status: str = "pending"
    result: ScriptResult | None = None
    elapsed: float = 0.0

    @property
    def where(self) -> str:
        port = f":{self.port.port}" if self.port is not None else ""
        return f"{self.record.address}{port}"


def sanitize(result: ScriptResult) -> ScriptResult:
    """Every line of the text and every key and value of the table escaped (newlines kept between lines)."""
    def el(e: ScriptElement) -> ScriptElement:
        key = clean(e.key, 256) if e.key is not None else None
        value = "\n".join(clean(x, 65536) for x in e.value.split("\n")) if e.value is not None else None
        return ScriptElement(key, value, tuple(el(c) for c in e.children))
    text = "\n".join(clean(line, 65536) for line in result.output.split("\n"))
    return ScriptResult(clean(result.id, 128), text, tuple(el(e) for e in result.elements))


def _run_job(job: ScriptJob, ctx: ScanContext, timeout: float, targets: frozenset[str]) -> ScriptJob:
    config = ctx.plan.config
    t0 = time.monotonic()
    host = HostInfo(job.record.address, job.record.target.hostname, targets)
    sctx = ScriptContext(host, job.port, ctx.engines.script_io(job.record.address, t0 + timeout),
                         dict(config.script_args), config.verbosity + job.boost, config.debugging)
    try:
        result = job.script.action(sctx)
        job.status = "ok" if result is not None else "no output"
        job.result = sanitize(result) if result is not None and (result.output or result.elements) else None
    except ScriptTimeout:
        job.status = "timeout"
    except ScriptError as e:
        job.status = f"protocol error ({clean(str(e), 200)})"
    except Exception as e:  # a script's bug is its own result, never the scan's end
        job.status = f"error ({type(e).__name__}: {clean(str(e), 200)})"
    job.elapsed = time.monotonic() - t0
    return job


class ScriptScan:
    """The post-scan phase behind -sC and --script."""

    def __init__(self) -> None:
        self.scripts: list[Script] = []
        self.named: frozenset[str] = frozenset()  # chosen by name or pattern: nmap's verbosity boost

    def wanted(self, plan: ScanPlan) -> bool:
        config = plan.config
        if not config.scripts:
            return False
        # nmap's -sV brings the "version" category (http-server-header) to whatever --script/-sC chose
        expressions = (*config.scripts, "version") if config.version_detection else config.scripts
        self.scripts, self.named = selection(expressions, available_scripts())
        return bool(self.scripts)

    def jobs(self, group: HostGroup) -> list[ScriptJob]:
        jobs: list[ScriptJob] = []
        targets = frozenset(r.address for r in group.records)
        for record in group.up():
            info = HostInfo(record.address, record.target.hostname, targets)
            for script in self.scripts:
                if script.host_script:
                    if script.rule(info, None):
                        jobs.append(ScriptJob(script, record, None, int(script.name in self.named)))
                    continue
                for port in record.ports:
                    if port.state in (PortState.OPEN, PortState.OPEN_FILTERED) and script.rule(info, port):
                        jobs.append(ScriptJob(script, record, port, int(script.name in self.named)))
        return jobs

    def run(self, group: HostGroup, ctx: ScanContext) -> None:
        jobs = self.jobs(group)
        if not jobs:
            return
        sink = ctx.sink
        sink.task_begin(TASK, time.time())
        timeout = ctx.plan.config.script_timeout or DEFAULT_SCRIPT_TIMEOUT
        self._execute(jobs, ctx, timeout, frozenset(r.address for r in group.records))
        for job in jobs:
            self._report(job, ctx)
        _attach(jobs)
        sink.task_end(TASK, time.time())

    def _execute(self, jobs: list[ScriptJob], ctx: ScanContext, timeout: float, targets: frozenset[str]) -> None:
        progress = TaskProgress(ctx.sink, TASK, len(jobs))
        pool = ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(jobs)), thread_name_prefix="script")
        started = time.monotonic()
        pending: set[Future[ScriptJob]] = {pool.submit(_run_job, j, ctx, timeout, targets) for j in jobs}
        # Every job's I/O ends by its own deadline; jobs queued behind others start later, so the
        # bound on waiting grows with the queue (one deadline per wave of MAX_WORKERS jobs).
        waves = (len(jobs) + MAX_WORKERS - 1) // MAX_WORKERS
        limit = started + waves * (timeout + GRACE)
        try:
            while pending and not ctx.stopped and time.monotonic() < limit:
                _done, pending = wait(pending, timeout=min(0.5, max(0.0, limit - time.monotonic())),
                                      return_when=FIRST_COMPLETED)
                progress.update(len(jobs) - len(pending))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        for job in jobs:
            if job.status == "pending":
                job.status = "timeout" if not ctx.stopped else "interrupted"

    @staticmethod
    def _report(job: ScriptJob, ctx: ScanContext) -> None:
        if ctx.plan.config.debugging > 0:
            ctx.warn(f"NSE: {job.script.name} against {job.where}: {job.status} ({job.elapsed:.2f}s)")


def _attach(jobs: list[ScriptJob]) -> None:
    """Results onto the records: port scripts on their PortResult, host scripts on the host; sorted by id."""
    by_port: dict[tuple[int, int, str], list[ScriptResult]] = {}
    for job in jobs:
        if job.result is None or job.status != "ok":
            continue
        if job.port is None:
            job.record.scripts.append(job.result)
            job.record.scripts.sort(key=lambda r: r.id)
        else:
            by_port.setdefault((id(job.record), job.port.port, job.port.protocol), []).append(job.result)
    records = {id(j.record): j.record for j in jobs}
    for rid, record in records.items():
        for i, port in enumerate(record.ports):
            found = by_port.get((rid, port.port, port.protocol))
            if found:
                merged = sorted((*port.scripts, *found), key=lambda r: r.id)
                record.ports[i] = dataclasses.replace(port, scripts=tuple(merged))
