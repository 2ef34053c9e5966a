"""The "OS detection" phase (-O): fingerprint each up host and match it against a database.

Per host group, as nmap does: one open and one closed TCP port and a
closed UDP port are taken from the scan's results (the first of each in
port order; a closed port picked at random when the scan found none),
then rounds of probes go to every host at once.  A host leaves once it
has a perfect match; the others get another round, up to
``--max-os-tries`` (two when the conditions rule out an exact match),
and leadline also stops a host whose round said exactly what the round
before said (but for values random by nature): a third identical answer
would not change the match.  IPv6 hosts are skipped with a warning: OS
detection over IPv6 is not there yet.
"""

from __future__ import annotations

import os
import random
import threading
import time

from leadline.core.osprobes import SEQ_DELAY, SEQ_PROBES, OsPlan, make_plan, round_probes
from leadline.detect.os.database import NMAP_OS_DB, OsDatabase, load_os_db
from leadline.detect.os.fingerprint import Fingerprint, build_fingerprint
from leadline.detect.os.match import MatchResult, match_fingerprint, prepare
from leadline.detect.os.printed import ScanInfo, merged_fingerprint
from leadline.detect.os.report import Conditions, best_round, not_ideal_reason, os_result, repeats, ttl_hint
from leadline.errors import PrivilegeError, UsageError
from leadline.model import PortResult, PortState, Reason
from leadline.pipeline.context import ScanContext
from leadline.pipeline.plan import ScanPlan
from leadline.pipeline.record import HostGroup, HostRecord

__all__ = ["OsScan"]

TASK = "OS detection"
_ROOT = "TCP/IP fingerprinting (for OS scan) requires root privileges."
STANDARD_TRIES = 2


def _database(path: str | None) -> OsDatabase:
    try:
        return load_os_db(path)
    except ValueError as e:
        raise UsageError(str(e)) from None


class _Preload:
    """nmap's database parsed in the background: round one needs no database, so the parse overlaps it."""

    def __init__(self, path: str | None) -> None:
        self.error: UsageError | None = None
        self.thread = threading.Thread(target=self._load, args=(path,), name="os-db", daemon=True)
        self.thread.start()

    def _load(self, path: str | None) -> None:
        try:
            prepare(_database(path))
        except UsageError as e:
            self.error = e

    def wait(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


class _Host:
    """One host's OS detection: the ports it uses and its rounds so far."""

    def __init__(self, record: HostRecord, rng: random.Random) -> None:
        self.record = record
        ports = sorted(record.ports, key=lambda p: p.port)
        self.open = next((p for p in ports if p.protocol == "tcp" and p.state is PortState.OPEN), None)
        self.closed = next((p for p in ports if p.protocol == "tcp" and p.state is PortState.CLOSED), None) or \
            next((p for p in ports if p.protocol == "tcp" and p.state is PortState.UNFILTERED), None)
        self.closed_udp = next((p for p in ports if p.protocol == "udp" and p.state is PortState.CLOSED), None)
        self.random_closed = 30000 + rng.randrange(14781)
        self.random_udp = 30000 + rng.randrange(14781)
        self.udp_answered: int | None = None
        self.rounds: list[Fingerprint] = []
        self.results: list[MatchResult] = []
        self.timing_ratio = 1.0
        self.done = False

    def plan(self, source: str, rng: random.Random) -> OsPlan:
        closed = self.closed.port if self.closed else self.random_closed
        udp = self.closed_udp.port if self.closed_udp else self.udp_answered or self.random_udp
        return make_plan(source, self.record.address, self.open.port if self.open else None, closed, udp, rng)

    def conditions(self, ctx: ScanContext) -> Conditions:
        config = ctx.plan.config
        udp = self.closed_udp.port if self.closed_udp else self.udp_answered
        return Conditions(self.open.port if self.open else None, self.closed.port if self.closed else None, udp,
                          any(p.protocol == "udp" for p in self.record.ports), config.template >= 5,
                          self.timing_ratio)


class OsScan:
    """OS detection over the up hosts of one group."""

    def wanted(self, plan: ScanPlan) -> bool:
        """Whether -O asked for it (as root); a bad --osdb fails here, before any output."""
        config = plan.config
        if not config.os_detection or config.ping_only or config.list_only:
            return False
        if not (plan.privileged and plan.raw_available):
            if config.aggressive:
                return False  # -A without root: the rest of -A still runs, as with nmap
            raise PrivilegeError(_ROOT)
        if config.osdb in (None, "nmap") and os.path.exists(NMAP_OS_DB):
            self.preload: _Preload | None = _Preload(config.osdb)  # nmap's own file: parse it meanwhile
        else:
            _database(config.osdb)  # a file of the user's: a bad one fails before any output
            self.preload = None
        return True

    def run(self, group: HostGroup, ctx: ScanContext) -> None:
        config = ctx.plan.config
        rng = random.Random()
        hosts: list[_Host] = []
        for record in group.up():
            if record.target.family == 6:
                record.warnings.append("OS detection over IPv6 is not supported yet; this host was not fingerprinted")
                continue
            host = _Host(record, rng)
            if config.osscan_limit and (host.open is None or host.closed is None):
                if config.verbosity:
                    ctx.warn(f"Skipping OS Scan against {record.address} due to absence of open (or perhaps "
                             "closed) ports")
                continue
            hosts.append(host)
        if not hosts or ctx.stopped:
            return
        ctx.sink.task_begin(TASK, time.time(), f"{len(hosts)} host{'s' if len(hosts) != 1 else ''}")
        for attempt in range(config.max_os_tries):
            active = [h for h in hosts if not h.done]
            if not active or ctx.stopped:
                break
            self._round(active, ctx, rng, attempt)
        for host in hosts:
            if host.rounds:
                self._report(host, ctx)
        ctx.sink.task_end(TASK, time.time())

    def _round(self, active: list[_Host], ctx: ScanContext, rng: random.Random, attempt: int) -> None:
        plans = {h.record.address: h.plan(ctx.engines.source_address_for(h.record.address), rng) for h in active}
        rounds = [(plans[h.record.address], round_probes(plans[h.record.address], rng)) for h in active]
        latency = max((h.record.latency or 0.0) for h in active)
        wait = min(2.0, max(0.3, 8 * latency))
        traffic = {t.plan.target: t for t in ctx.engines.os_round(rounds, wait=wait, stop=ctx.stop,
                                                                 evidence=ctx.evidence)}
        preload = getattr(self, "preload", None)
        if preload is not None:
            preload.wait()
        db = _database(ctx.plan.config.osdb)
        for host in active:
            got = traffic.get(host.record.address)
            if got is None:
                host.done = True
                continue
            fp = build_fingerprint(got.plan, got.sent, got.received, closed_port_known=host.closed is not None)
            seq_times = [got.sent[f"SEQ{i + 1}"] for i in range(SEQ_PROBES) if f"SEQ{i + 1}" in got.sent]
            if len(seq_times) == SEQ_PROBES:
                ideal = SEQ_DELAY * (SEQ_PROBES - 1)
                host.timing_ratio = max(host.timing_ratio, (seq_times[-1] - seq_times[0]) / ideal)
            if fp.closed_udp_answered and host.closed_udp is None:
                host.udp_answered = got.plan.closed_udp
            repeated = bool(host.rounds) and repeats(host.rounds[-1], fp)
            result = match_fingerprint(fp.tests, db)  # even a repeat: its SEQ values may score higher (best round wins)
            host.rounds.append(fp)
            host.results.append(result)
            if repeated:
                host.done = True
            reason = not_ideal_reason(host.conditions(ctx), fp.distance)
            tries = min(ctx.plan.config.max_os_tries, STANDARD_TRIES) if reason else ctx.plan.config.max_os_tries
            if result.perfect or len(host.rounds) >= tries:
                host.done = True

    def _report(self, host: _Host, ctx: ScanContext) -> None:
        record = host.record
        index = best_round(host.results)
        fp, result = host.rounds[index], host.results[index]
        distance, method = _distance(record, host.rounds)
        if record.distance is None and distance is not None:
            record.distance = distance
        conditions = host.conditions(ctx)
        reason = not_ideal_reason(conditions, distance)
        udp = conditions.closed_udp
        info = ScanInfo(_nmap_like_version(), record.address, conditions.open_port, conditions.closed_port, udp,
                        distance, method, reason is None, record.mac)
        used = tuple(p for p in (host.open, host.closed) if p is not None)
        if udp is not None:
            used += (host.closed_udp or PortResult(udp, "udp", PortState.CLOSED, Reason.PORT_UNREACH),)
        if fp.seq.lastboot is not None:
            record.uptime = max(0.0, time.time() - fp.seq.lastboot)
        received = host.open.reason_ttl if host.open and host.open.reason_ttl else record.reason_ttl
        record.os = os_result(result, fp, fingerprint_text=merged_fingerprint(info, host.rounds), ports_used=used,
                              reason=reason, guess=ctx.plan.config.osscan_guess,
                              unreliable=host.open is None or host.closed is None, hint=ttl_hint(received))


def _distance(record: HostRecord, rounds: list[Fingerprint]) -> tuple[int | None, str]:
    """Hops to the host and how they were known: D (a MAC: same link), I (U1's quoted TTL), or unknown."""
    if record.mac:
        return 1, "D"
    for fp in rounds:
        if fp.distance is not None:
            return fp.distance, "I"
    return None, ""


def _nmap_like_version() -> str:
    from leadline._version import __version__

    return f"leadline-{__version__}"
