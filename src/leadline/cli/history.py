"""``leadline db …``, ``leadline diff A B`` and ``leadline report RUN|FILE``: the scan history's commands.

Thin: arguments in, the ``leadline.history`` API called, a table or a
file out.  Every failure a user can cause is one line ``leadline: …``
and a non-zero exit (2, as ndiff, for ``diff``); ``diff`` exits 0 when
the runs are equal and 1 when they differ.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, NoReturn, TextIO

from leadline.errors import StoreError, UsageError

__all__ = ["history_main", "print_diff_last"]

USAGE = """leadline db import FILE... [--db URL]          nmap or leadline XML, leadline JSON
       leadline db list [--db URL] [-oJ FILE]
       leadline db hosts [--port N] [--state S|all] [--service NAME] [--since DATE] [--all] [-oJ FILE]
       leadline db history ADDRESS [-oJ FILE]
       leadline db export RUN [-oX FILE] [-oJ FILE] [-oN FILE]
       leadline diff A B [--xml] [-oJ FILE]           A, B: run ids or result files; exit 0 same, 1 changed
       leadline report RUN|FILE [-o report.html] [--previous RUN|FILE]"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog.removeprefix('leadline ')}: {message} (usage: see 'leadline {self.prog.split()[1]} -h')")


def _parser(prog: str) -> argparse.ArgumentParser:
    p = _Parser(prog=f"leadline {prog}", usage=USAGE)
    p.add_argument("--db", metavar="URL", help="sqlite:///PATH or postgresql://USER@HOST/DB (default: LEADLINE_DB, "
                                               "else ~/.local/share/leadline/scans.db)")
    return p


def _since(text: str) -> float:
    """A date (2026-12-01, 2026-12-01T10:30) or an age (90m, 36h, 7d)."""
    m = re.fullmatch(r"(\d+)([mhd])", text)
    if m:
        return time.time() - int(m.group(1)) * {"m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(f"db hosts: --since '{text}' is neither a date (2026-12-01) nor an age (36h, 7d)") from None


def _out(stack: ExitStack, path: str | None) -> TextIO:
    if path in (None, "-"):
        return sys.stdout
    try:
        return stack.enter_context(open(path, "w", encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot write '{path}': {e.strerror or e}") from None


def _stamp(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else "-"


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")


def _safe(text: str) -> str:
    return re.sub("[\x00-\x1f\x7f-\x9f\ud800-\udfff]", lambda m: f"\\x{ord(m.group()) & 0xFF:02x}", text)


# -- db ----------------------------------------------------------------------------------------

def _db_import(args: list[str]) -> int:
    from leadline.history.sources import open_file
    from leadline.history.store import open_store

    p = _parser("db import")
    p.add_argument("files", nargs="+", metavar="FILE")
    o = p.parse_args(args)
    store = open_store(o.db)
    for path in o.files:
        loaded = open_file(path)
        run_id = None
        try:
            run = loaded.run
            run_id = store.begin_run(run, source=path, scanner=loaded.scanner, targets=_targets_of(run.args))
            from leadline.history.importer import import_hosts
            from leadline.model import RunStats

            count, footer = import_hosts(store, run_id, loaded)
            stats = footer or RunStats(end_time=run.start_time, elapsed=0.0, hosts_up=0, hosts_down=0,
                                             hosts_total=count, exit="error", error_message="no runstats in file")
            store.end_run(run_id, stats)
        except BaseException:
            if run_id is not None:
                store.delete_run(run_id)
            raise
        finally:
            loaded.close()
        print(f"{path}: run {run_id}, {count} hosts ({loaded.scanner}{', interrupted' if stats.exit == 'error' else ''})")
    return 0


def _targets_of(args: str) -> str:
    """The target words of a command line, for matching runs over the same targets (best effort for nmap's)."""
    import shlex

    try:
        words = shlex.split(args)[1:]
    except ValueError:
        return args
    takes_value = {"-p", "-oX", "-oN", "-oG", "-oA", "-oJ", "--top-ports", "-iL", "--exclude", "--script",
                   "--script-args", "--max-retries", "--host-timeout", "--min-rate", "--max-rate", "-e", "-S", "--db"}
    out, skip = [], False
    for w in words:
        if skip:
            skip = False
        elif w in takes_value:
            skip = True
        elif not w.startswith("-"):
            out.append(w)
    return " ".join(out)


def _db_list(args: list[str]) -> int:
    from leadline.history.store import open_store

    p = _parser("db list")
    p.add_argument("-oJ", dest="json", metavar="FILE")
    o = p.parse_args(args)
    runs = open_store(o.db).runs()
    with ExitStack() as stack:
        if o.json:
            _out(stack, o.json).write(json.dumps([r.__dict__ for r in runs], indent=1) + "\n")
            return 0
        rows = [["RUN", "STARTED", "STATUS", "UP", "TOTAL", "SCANNER", "SOURCE", "COMMAND"]]
        rows += [[str(r.id), _stamp(r.start_time), r.status, str(r.hosts_up if r.hosts_up is not None else "-"),
                  str(r.hosts_total if r.hosts_total is not None else "-"), r.scanner, _safe(r.source),
                  _safe(r.args or "")] for r in runs]
        if len(rows) == 1:
            print("no runs stored yet: scan with --save, or 'leadline db import FILE.xml'")
        else:
            _table(rows, sys.stdout)
    return 0


def _port_json(p: Any) -> dict[str, Any]:
    from leadline.history.diff import version_string

    name = p.detail.name if p.detail else p.service
    return {"port": p.port, "protocol": p.protocol, "state": str(p.state), "reason": str(p.reason),
            "service": name, "version": version_string(p)}


def _matching(host: Any, o: argparse.Namespace) -> list[Any]:
    ports = []
    for p in host.ports:
        name = (p.detail.name if p.detail else p.service) or ""
        if o.port is not None and p.port != o.port:
            continue
        if o.state != "all" and str(p.state) != o.state:
            continue
        if o.service is not None and name != o.service:
            continue
        ports.append(p)
    return ports


def _host_rows(o: argparse.Namespace) -> Iterator[tuple[int, Any, list[Any]]]:
    from leadline.history.store import open_store

    filtering = o.port is not None or o.service is not None or o.state not in ("open", "all")
    for run_id, host in open_store(o.db).current(_since(o.since) if o.since else None):
        if not host.is_up and not o.all:
            continue
        ports = _matching(host, o)
        if filtering and not ports:
            continue
        yield run_id, host, ports


def _db_hosts(args: list[str]) -> int:
    from leadline.history.diff import version_string

    p = _parser("db hosts")
    p.add_argument("--port", type=int, help="only hosts with this port (in --state)")
    p.add_argument("--state", default="open", help="port state to show: open (default), closed, filtered, ..., or all")
    p.add_argument("--service", help="only hosts with a port running this service (ssh, http, ...)")
    p.add_argument("--since", metavar="DATE", help="only observations from runs started since DATE or age (7d)")
    p.add_argument("--all", action="store_true", help="also hosts whose latest observation is down")
    p.add_argument("-oJ", dest="json", metavar="FILE")
    o = p.parse_args(args)
    from ipaddress import ip_address

    found = sorted(_host_rows(o), key=lambda r: (ip_address(r[1].address).version, ip_address(r[1].address)))
    with ExitStack() as stack:
        if o.json:
            doc = [{"address": h.address, "run": run_id, "status": str(h.status), "seen": h.end_time or h.start_time,
                    "hostnames": [n.name for n in h.hostnames], "ports": [_port_json(x) for x in ports]}
                   for run_id, h, ports in found]
            _out(stack, o.json).write(json.dumps(doc, indent=1, ensure_ascii=True) + "\n")
            return 0
        rows = [["ADDRESS", "RUN", "SEEN", "STATUS", "PORTS"]]
        for run_id, h, ports in found:
            text = ", ".join(f"{x.port}/{x.protocol} {x.state} {(x.detail.name if x.detail else x.service) or ''}"
                             f"{' ' + (version_string(x) or '') if x.detail else ''}".rstrip() for x in ports)
            rows.append([h.address, str(run_id), _stamp(h.end_time or h.start_time), str(h.status), _safe(text)])
        _table(rows, sys.stdout) if len(rows) > 1 else print("no hosts match")
    return 0


def _db_history(args: list[str]) -> int:
    from leadline.history.store import open_store

    p = _parser("db history")
    p.add_argument("address")
    p.add_argument("-oJ", dest="json", metavar="FILE")
    o = p.parse_args(args)
    store = open_store(o.db)
    seen = list(store.history(o.address))
    if not seen:
        raise StoreError(f"db history: {o.address} is in no stored run")
    with ExitStack() as stack:
        if o.json:
            doc = [{"run": run_id, "status": str(h.status), "seen": h.end_time or h.start_time,
                    "ports": [_port_json(x) for x in h.ports if str(x.state) != "closed"]} for run_id, h in seen]
            _out(stack, o.json).write(json.dumps(doc, indent=1, ensure_ascii=True) + "\n")
            return 0
        _history_text(seen)
    return 0


def _history_text(seen: list[tuple[int, Any]]) -> None:
    """One block per run: the status, and what changed since the run before (the first run in full)."""
    from leadline.history.diff import compare_hosts, host_view
    from leadline.history.diffout import host_text

    before = None
    for run_id, h in seen:
        view = host_view(h)
        print(f"run {run_id}  {_stamp(h.end_time or h.start_time)}  host {h.status}")
        lines = host_text(compare_hosts(before, view))[1:]
        print("\n".join(lines) if lines else "  (no change)")
        before = view


def _db_export(args: list[str]) -> int:
    from leadline.history.sources import open_run
    from leadline.output.json import JsonOutput
    from leadline.output.normal import NormalOutput
    from leadline.output.xml import XmlOutput

    p = _parser("db export")
    p.add_argument("run", type=int)
    p.add_argument("-oX", dest="xml", metavar="FILE")
    p.add_argument("-oJ", dest="json", metavar="FILE")
    p.add_argument("-oN", dest="normal", metavar="FILE")
    o = p.parse_args(args)
    loaded = open_run(str(o.run), o.db)
    with ExitStack() as stack:
        sinks: list[Any] = []
        if o.xml:
            sinks.append(XmlOutput(_out(stack, o.xml)))
        if o.json:
            sinks.append(JsonOutput(_out(stack, o.json)))
        if o.normal or not sinks:
            sinks.append(NormalOutput(_out(stack, o.normal), file_header=bool(o.normal and o.normal != "-")))
        run = loaded.run
        for s in sinks:
            s.begin(run)
        for h in loaded.hosts():
            for s in sinks:
                s.host(h)
        stats = loaded.stats
        if stats is not None:
            for s in sinks:
                s.end(stats)
    loaded.close()
    return 0


# -- diff and report ---------------------------------------------------------------------------

def _diff(args: list[str]) -> int:
    from leadline.history.diff import diff_runs
    from leadline.history.diffout import write_json, write_text, write_xml
    from leadline.history.sources import open_run

    p = _parser("diff")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--xml", action="store_true", help="ndiff's XML")
    p.add_argument("--text", action="store_true", help="ndiff's text (the default)")
    p.add_argument("-oJ", dest="json", metavar="FILE", help="JSON ('-' for standard output)")
    o = p.parse_args(args)
    a, b = open_run(o.a, o.db), open_run(o.b, o.db)
    try:
        d = diff_runs(a, b)
    finally:
        a.close()
        b.close()
    with ExitStack() as stack:
        if o.json:
            write_json(d, _out(stack, o.json))
        if o.xml:
            write_xml(d, sys.stdout)
        elif not o.json or o.json != "-":
            write_text(d, sys.stdout)
    return 1 if d.changed else 0


def _report(args: list[str]) -> int:
    from leadline.history.diff import diff_runs
    from leadline.history.report import write_report
    from leadline.history.sources import open_run
    from leadline.history.store import open_store

    p = _parser("report")
    p.add_argument("source", metavar="RUN|FILE")
    p.add_argument("-o", dest="output", default="report.html", metavar="FILE", help="where to write (report.html)")
    p.add_argument("--previous", metavar="RUN|FILE", help="the run to list changes against "
                                                          "(default for a stored run: the last one over its targets)")
    o = p.parse_args(args)
    previous_spec = o.previous
    if previous_spec is None and o.source.isdigit():
        prev = open_store(o.db).previous_run(int(o.source))
        previous_spec = str(prev) if prev is not None else None
    changes = None
    if previous_spec is not None:
        before, now = open_run(previous_spec, o.db), open_run(o.source, o.db)
        changes = diff_runs(before, now)
        before.close()
        now.close()
    loaded = open_run(o.source, o.db)
    with ExitStack() as stack:
        hosts, routers = write_report(loaded, _out(stack, o.output), previous=changes)
    loaded.close()
    if o.output != "-":
        print(f"report of {loaded.name} ({hosts} hosts, {routers} routers on the map) written to {o.output}",
              file=sys.stderr)
    return 0


_DB = {"import": _db_import, "list": _db_list, "hosts": _db_hosts, "history": _db_history, "export": _db_export}


def history_main(argv: Sequence[str]) -> int:
    """``argv`` starts with the command word: db, diff or report."""
    command, rest = argv[0], list(argv[1:])
    if rest[:1] in (["-h"], ["--help"]) or (command == "db" and not rest):
        print(USAGE)
        return 0
    try:
        with _quiet_collector():
            if command == "db":
                handler = _DB.get(rest[0])
                if handler is None:
                    raise UsageError(f"db: unknown command '{rest[0]}' (import, list, hosts, history, export)")
                return handler(rest[1:])
            return _diff(rest) if command == "diff" else _report(rest)
    except StoreError as e:
        print(f"leadline: {e}", file=sys.stderr)
        return 2


@contextmanager
def _quiet_collector() -> Iterator[None]:
    """Keep the cyclic garbage collector from walking a run's objects again and again.

    Reading a run makes a few short-lived objects per element and row
    (next to no cycles) while the map's nodes and the tables of shared
    parts live to the end, and each collection of the older generations
    walks them all: about a tenth of a report's CPU time.  What exists now
    is frozen and the young generation collected every 100,000 allocations
    instead of 700, as a scan does; cycles are still collected.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def print_diff_last(sinks: Sequence[object], console: TextIO) -> None:
    """``--save --diff-last``: what changed since the last run over the same targets, in ndiff's layout."""
    from leadline.history.diff import diff_runs
    from leadline.history.diffout import write_text
    from leadline.history.sink import StoreSink
    from leadline.history.sources import open_run

    sink = next((s for s in sinks if isinstance(s, StoreSink)), None)
    if sink is None or sink.run_id is None or sink.store is None:
        return
    prev = sink.store.previous_run(sink.run_id)
    if prev is None:
        print(f"\nNo earlier run over the same targets in the history: this is run {sink.run_id}.", file=console)
        return
    a, b = open_run(str(prev), sink.url), open_run(str(sink.run_id), sink.url)
    d = diff_runs(a, b)
    a.close()
    b.close()
    print(f"\nChanges since run {prev} (this is run {sink.run_id}):" if d.changed else
          f"\nNo changes since run {prev} (this is run {sink.run_id}).", file=console)
    write_text(d, console)
