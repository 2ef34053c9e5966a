"""The scan history: runs, hosts, ports, OS matches and trace hops in SQLite or PostgreSQL.

Two database layers sit behind one small interface (``_Backend``): the
standard library's ``sqlite3`` for the default, a file in the user's data
directory that needs nothing set up, and ``psycopg`` (an optional extra)
for ``postgresql://`` URLs shared by a team.  The SQL is written once with
``?`` placeholders and rewritten per dialect (``schema.Dialect``); no ORM
stands between the model and the tables, so the store stays as fast as
the drivers and there is one dependency fewer to keep.

Writes are transactional per host: a scan's sink commits each host as
it is emitted, so an interrupted scan keeps every finished host, and the
run row says ``interrupted`` (or stays ``running`` if the process died).
Imports commit in batches and remove a run whose file turns out broken.
Reads stream: a run's hosts are assembled from four ordered cursors
(hosts, ports, OS matches, hops) merged by host id, so a 65,536-host run
is never held in memory at once; ``rows`` converts between rows and the
result model, each part hosts share once.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from leadline.errors import StoreError
from leadline.history import codec
from leadline.history.memo import Parts
from leadline.history.rows import Decoder, clean, host_rows
from leadline.history.schema import MIGRATIONS, POSTGRESQL, SCHEMA_VERSION, SQLITE, Dialect
from leadline.model import HostResult, RunInfo, RunStats, ScanInfo

__all__ = ["RunRow", "Store", "default_url", "open_store"]

def default_url() -> str:
    """``LEADLINE_DB`` if set, else the SQLite file in the user's data directory."""
    env = os.environ.get("LEADLINE_DB")
    if env:
        return env
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return "sqlite:///" + str(Path(base) / "leadline" / "scans.db")


@dataclass(frozen=True)
class RunRow:
    """One run as ``db list`` shows it."""

    id: int
    source: str
    scanner: str
    version: str | None
    args: str | None
    targets: str | None
    start_time: float | None
    end_time: float | None
    status: str
    hosts_up: int | None
    hosts_down: int | None
    hosts_total: int | None


class _Backend(Protocol):
    dialect: Dialect

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None: ...
    def insert_id(self, sql: str, params: tuple[Any, ...]) -> int: ...
    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...
    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]: ...
    def begin(self) -> None: ...
    def begin_schema(self) -> bool: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


class _Sqlite:
    """sqlite3 in autocommit mode with explicit transactions; WAL so readers never wait for a scan."""

    dialect = SQLITE

    def __init__(self, path: str) -> None:
        import sqlite3

        self.errors: tuple[type[Exception], ...] = (sqlite3.Error,)
        if path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(os.path.expanduser(path), isolation_level=None, timeout=30)
        self._wal(sqlite3.OperationalError)
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")

    def _wal(self, busy: type[Exception]) -> None:
        """Switch to WAL; the switch needs the file to itself and SQLite does not wait for that, so we do."""
        deadline = time.monotonic() + 30
        while True:
            try:
                self.conn.execute("PRAGMA journal_mode=WAL")
                return
            except busy as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.conn.execute(sql, params)

    def insert_id(self, sql: str, params: tuple[Any, ...]) -> int:
        return int(self.conn.execute(sql + " RETURNING id", params).fetchone()[0])

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.conn.executemany(sql, rows)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        cursor = self.conn.execute(sql, params)
        while batch := cursor.fetchmany(2048):
            yield from batch

    def begin(self) -> None:
        self.conn.execute("BEGIN")

    def begin_schema(self) -> bool:
        """Take the write lock before the schema is read, so two processes never create it at once; is there a meta table?"""
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is not None

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()


class _Postgres:
    """psycopg 3; reads of whole runs go through server-side cursors so they stream."""

    dialect = POSTGRESQL

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise StoreError("PostgreSQL needs the psycopg package: pip install 'leadline[postgresql]'") from None
        self.errors = (psycopg.Error,)
        self.cursors = 0
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as e:
            raise StoreError(f"cannot connect to {_hide_password(url)}: {_first_line(e)}") from None

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.conn.execute(sql, params)

    def insert_id(self, sql: str, params: tuple[Any, ...]) -> int:
        row = self.conn.execute(sql + " RETURNING id", params).fetchone()
        assert row is not None
        return int(row[0])

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(sql, rows)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        self.cursors += 1
        # WITH HOLD: the cursor outlives the statement's implicit transaction, so several stream side by side.
        with self.conn.cursor(name=f"leadline_{self.cursors}", withhold=True) as cur:
            cur.itersize = 2048
            cur.execute(sql, params)
            yield from cur

    def begin(self) -> None:
        self.conn.execute("BEGIN")

    def begin_schema(self) -> bool:
        """A transaction holding the schema's advisory lock (released at its end); is there a meta table?"""
        self.conn.execute("BEGIN")
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        row = self.conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
        return bool(row and row[0])

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()


_SCHEMA_LOCK = 0x6C6C6462  # the advisory lock key of schema changes ("lldb")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _backend(url: str) -> _Backend:
    if url.startswith(("postgresql://", "postgres://")):
        return _Postgres(url)
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
        if not path.startswith("/"):
            raise StoreError(f"bad database URL '{url}': write sqlite:///relative.db or sqlite:////absolute/path.db")
        path = path[1:] or ":memory:"
    elif "://" in url:
        raise StoreError(f"unsupported database URL '{_hide_password(url)}': use sqlite:///PATH or postgresql://USER@HOST/DB")
    else:
        path = url
    try:
        return _Sqlite(path)
    except Exception as e:  # sqlite3.Error, OSError: a path we cannot create or open
        raise StoreError(f"cannot open database '{path}': {_first_line(e)}") from None


_HOST_COLS = ("h.id, h.run_id, h.address, h.family, h.status, h.reason, h.reason_ttl, h.mac, h.mac_vendor, h.latency,"
              " h.start_time, h.end_time, h.distance, h.uptime, h.timed_out, h.interrupted, h.hostnames, h.extra")
_PORT_COLS = "p.host_id, p.protocol, p.port, p.state, p.reason, p.reason_ttl, p.service, p.detail, p.scripts, p.evidence"
_RUN_COLS = ("id, source, scanner, version, args, targets, start_time, end_time, status, hosts_up, hosts_down,"
             " hosts_total")


class Store:
    """One open database: write runs and hosts, read them back as the result model."""

    def __init__(self, backend: _Backend, url: str) -> None:
        self.db = backend
        self.url = url
        self.d = backend.dialect
        self._migrate()

    # -- schema ----------------------------------------------------------------
    def _version(self) -> int:
        try:
            row = next(self.db.rows(self.d.sql("SELECT value FROM meta WHERE key = ?"), ("schema_version",)), None)
        except Exception:  # no meta table: an empty database (a failed read ends any transaction it began)
            self.db.rollback()
            return 0
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        version = self._version()
        if version > SCHEMA_VERSION:
            raise StoreError(f"{_hide_password(self.url)} holds history schema {version}, newer than this "
                             f"leadline's ({SCHEMA_VERSION}): upgrade leadline to read it")
        if version == SCHEMA_VERSION:
            return
        # Another process (a scan saving to a new file while `db list` reads it) may be creating the
        # schema right now: take the lock, then read the version again under it.
        has_meta = self.db.begin_schema()
        try:
            if has_meta:
                row = next(self.db.rows(self.d.sql("SELECT value FROM meta WHERE key = ?"), ("schema_version",)), None)
                version = int(row[0]) if row else 0
            if version >= SCHEMA_VERSION:
                self.db.commit()
                return
            for step in MIGRATIONS[version:]:
                for statement in step:
                    self.db.execute(self.d.sql(statement))
            self.db.execute(self.d.sql("DELETE FROM meta WHERE key = ?"), ("schema_version",))
            self.db.execute(self.d.sql("INSERT INTO meta (key, value) VALUES (?, ?)"),
                            ("schema_version", str(SCHEMA_VERSION)))
            self.db.commit()
        except Exception:
            self.db.rollback()
            raise

    def close(self) -> None:
        self.db.close()

    # -- writing ---------------------------------------------------------------
    def begin_run(self, run: RunInfo, *, source: str = "scan", scanner: str = "leadline",
                  targets: str | None = None) -> int:
        """A new run, ``running`` until :meth:`end_run`."""
        header = {"args": run.args, "start": run.start_time, "version": run.version,
                  "scaninfo": [[s.scan_type, s.protocol, s.numservices, s.services] for s in run.scaninfo],
                  "verbosity": run.verbosity, "debugging": run.debugging, "ping_only": run.ping_only,
                  "list_only": run.list_only, "service_scan": run.service_scan}
        self.db.begin()
        run_id = self.db.insert_id(self.d.sql(
            "INSERT INTO runs (source, scanner, version, args, targets, start_time, status, run_json)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
            (source, scanner, run.version, clean(run.args), targets, run.start_time, "running", codec.dumps(header)))
        self.db.commit()
        return run_id

    def add_host(self, run_id: int, host: HostResult) -> None:
        """One host in its own transaction: it is stored whole or not at all."""
        self.db.begin()
        try:
            self._insert_host(run_id, host)
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise

    def add_hosts(self, run_id: int, hosts: Iterable[HostResult], batch: int = 1000) -> int:
        """Many hosts, a transaction per ``batch``; the count stored.

        On SQLite the batch's host ids are handed out here (the write lock
        is held from BEGIN IMMEDIATE, so no other writer can take them) and
        each table gets one ``executemany`` per batch: a 65,536-host import
        is a few hundred statements, not a quarter of a million.
        """
        if self.d is not SQLITE:
            return self._add_hosts_one_by_one(run_id, hosts, batch)
        count = 0
        pending: list[HostResult] = []
        parts = Parts()
        for host in hosts:
            pending.append(host)
            count += 1
            if len(pending) == batch:
                self._write_batch(run_id, pending, parts)
                pending = []
        if pending:
            self._write_batch(run_id, pending, parts)
        return count

    def _write_batch(self, run_id: int, hosts: list[HostResult], parts: Parts) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            first = next(self.db.rows("SELECT COALESCE(MAX(id), 0) FROM hosts"))[0] + 1
            tables: tuple[list[tuple[Any, ...]], ...] = ([], [], [], [])
            for n, h in enumerate(hosts):
                for table, rows in zip(tables, host_rows(run_id, first + n, h, parts)):
                    table.extend(rows)
            for sql, rows in zip((_INSERT_HOST_ID, _INSERT_PORTS, _INSERT_OS, _INSERT_HOPS), tables):
                self.db.many(self.d.sql(sql), rows)
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise

    def _add_hosts_one_by_one(self, run_id: int, hosts: Iterable[HostResult], batch: int) -> int:
        count = 0
        self.db.begin()
        try:
            for host in hosts:
                self._insert_host(run_id, host)
                count += 1
                if count % batch == 0:
                    self.db.commit()
                    self.db.begin()
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise
        return count

    def _insert_host(self, run_id: int, h: HostResult) -> None:
        host_id = self.db.insert_id(self.d.sql(_INSERT_HOST), host_rows(run_id, None, h)[0][0][1:])
        _, ports, oses, hops = host_rows(run_id, host_id, h)
        for sql, rows in ((_INSERT_PORTS, ports), (_INSERT_OS, oses), (_INSERT_HOPS, hops)):
            self.db.many(self.d.sql(sql), rows)

    def end_run(self, run_id: int, stats: RunStats) -> None:
        status = "interrupted" if stats.exit == "error" else "complete"
        footer = {"end": stats.end_time, "elapsed": stats.elapsed, "up": stats.hosts_up, "down": stats.hosts_down,
                  "total": stats.hosts_total, "exit": stats.exit, "summary": stats.summary,
                  "error": stats.error_message}
        self.db.begin()
        self.db.execute(self.d.sql(
            "UPDATE runs SET end_time = ?, status = ?, hosts_up = ?, hosts_down = ?, hosts_total = ?, stats_json = ?"
            " WHERE id = ?"),
            (stats.end_time, status, stats.hosts_up, stats.hosts_down, stats.hosts_total, codec.dumps(footer), run_id))
        self.db.commit()

    def delete_run(self, run_id: int) -> None:
        self.db.begin()
        self.db.execute(self.d.sql("DELETE FROM runs WHERE id = ?"), (run_id,))
        self.db.commit()

    # -- reading ---------------------------------------------------------------
    def runs(self) -> list[RunRow]:
        return [RunRow(*row) for row in self.db.rows(f"SELECT {_RUN_COLS} FROM runs ORDER BY id")]

    def run(self, run_id: int) -> RunRow:
        row = next(self.db.rows(self.d.sql(f"SELECT {_RUN_COLS} FROM runs WHERE id = ?"), (run_id,)), None)
        if row is None:
            raise StoreError(f"no run {run_id} in {_hide_password(self.url)} (see 'leadline db list')")
        return RunRow(*row)

    def run_info(self, run_id: int) -> tuple[RunInfo, RunStats | None]:
        """A run's header and footer, as the sinks take them."""
        row = next(self.db.rows(self.d.sql("SELECT run_json, stats_json FROM runs WHERE id = ?"), (run_id,)), None)
        if row is None:
            raise StoreError(f"no run {run_id} in {_hide_password(self.url)} (see 'leadline db list')")
        head = json.loads(row[0])
        info = RunInfo(args=head.get("args") or "", start_time=head.get("start") or 0.0, version=head.get("version") or "",
                       scaninfo=tuple(ScanInfo(*s) for s in head.get("scaninfo") or ()),
                       verbosity=head.get("verbosity", 0), debugging=head.get("debugging", 0),
                       ping_only=bool(head.get("ping_only")), list_only=bool(head.get("list_only")),
                       service_scan=bool(head.get("service_scan")))
        if row[1] is None:
            return info, None
        f = json.loads(row[1])
        return info, RunStats(end_time=f["end"], elapsed=f["elapsed"], hosts_up=f["up"], hosts_down=f["down"],
                              hosts_total=f["total"], exit=f.get("exit") or "success", summary=f.get("summary") or "",
                              error_message=f.get("error") or "")

    def hosts(self, run_id: int) -> Iterator[HostResult]:
        """A run's hosts in the order they were stored, streamed."""
        for _, host in self._assemble("h.run_id = ?", (run_id,)):
            yield host

    def current(self, since: float | None = None) -> Iterator[tuple[int, HostResult]]:
        """For each address, its latest observation (run id, host), from runs started at ``since`` or later."""
        where = ("h.id IN (SELECT MAX(h2.id) FROM hosts h2 JOIN runs r ON r.id = h2.run_id"
                 " WHERE r.start_time >= ? GROUP BY h2.address)")
        return self._assemble(where, (since if since is not None else float("-inf"),))

    def history(self, address: str) -> Iterator[tuple[int, HostResult]]:
        """Every observation of one address, oldest first."""
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            pass
        return self._assemble("h.address = ?", (address,))

    def previous_run(self, run_id: int) -> int | None:
        """The latest finished run before ``run_id`` over the same targets."""
        row = self.run(run_id)
        found = next(self.db.rows(self.d.sql(
            "SELECT MAX(id) FROM runs WHERE id < ? AND targets = ? AND status <> ?"),
            (run_id, row.targets or "", "running")), None)
        return int(found[0]) if found and found[0] is not None else None

    def _assemble(self, where: str, params: tuple[Any, ...]) -> Iterator[tuple[int, HostResult]]:
        """Hosts matching ``where`` (over ``hosts h``) with their ports, OS matches and hops: four cursors merged."""
        sql = self.d.sql
        # Ordered by h.id first, which the join walks in order: the database sorts each host's few rows, not all.
        hosts = self.db.rows(sql(f"SELECT {_HOST_COLS} FROM hosts h WHERE {where} ORDER BY h.id"), params)
        ports = _Children(self.db.rows(sql(
            f"SELECT {_PORT_COLS} FROM ports p JOIN hosts h ON h.id = p.host_id WHERE {where}"
            " ORDER BY h.id, p.n"), params))
        oses = _Children(self.db.rows(sql(
            "SELECT o.host_id, o.name, o.accuracy, o.classes FROM os_matches o JOIN hosts h ON h.id = o.host_id"
            f" WHERE {where} ORDER BY h.id, o.rank"), params))
        hops = _Children(self.db.rows(sql(
            "SELECT t.host_id, t.ttl, t.address, t.rtt, t.hostname FROM hops t JOIN hosts h ON h.id = t.host_id"
            f" WHERE {where} ORDER BY h.id, t.ttl"), params))
        decoder = Decoder()
        for row in hosts:
            host_id = row[0]
            yield row[1], decoder.host(row, ports.take(host_id), oses.take(host_id), hops.take(host_id))


class _Children:
    """Rows of a child table ordered by host id, handed out one host at a time."""

    def __init__(self, rows: Iterator[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.head = next(rows, None)

    def take(self, host_id: int) -> list[tuple[Any, ...]]:
        out = []
        while self.head is not None and self.head[0] <= host_id:
            if self.head[0] == host_id:
                out.append(self.head)
            self.head = next(self.rows, None)
        return out


_HOST_FIELDS = ("run_id, address, family, status, reason, reason_ttl, mac, mac_vendor, latency, start_time, end_time,"
                " distance, uptime, timed_out, interrupted, open_ports, hostnames, extra")
_INSERT_HOST = f"INSERT INTO hosts ({_HOST_FIELDS}) VALUES ({', '.join(['?'] * 18)})"
_INSERT_HOST_ID = f"INSERT INTO hosts (id, {_HOST_FIELDS}) VALUES ({', '.join(['?'] * 19)})"
_INSERT_PORTS = ("INSERT INTO ports (host_id, n, protocol, port, state, reason, reason_ttl, service, product, version,"
                 " detail, scripts, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_OS = "INSERT INTO os_matches (host_id, rank, name, accuracy, classes) VALUES (?, ?, ?, ?, ?)"
_INSERT_HOPS = "INSERT INTO hops (host_id, ttl, address, rtt, hostname) VALUES (?, ?, ?, ?, ?)"


def open_store(url: str | None = None) -> Store:
    """The store at ``url`` (default: ``LEADLINE_DB``, else the user's SQLite file), created or migrated as needed."""
    url = url or default_url()
    backend = _backend(url)
    try:
        return Store(backend, url)
    except StoreError:
        backend.close()
        raise
    except Exception as e:
        backend.close()
        raise StoreError(f"cannot use database {_hide_password(url)}: {_first_line(e)}") from None
