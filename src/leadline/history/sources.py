"""Where a run comes from: a result file (nmap's or leadline's XML, leadline's JSON) or a run in the store.

``open_run`` takes what a user types after ``diff`` or ``report``: a run
id (digits) names a run in the store, anything else a file.  Every
source gives the same ``Loaded``: the header, the hosts as a stream, and
the footer once the stream has been read.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import IO, Any

from leadline.errors import StoreError
from leadline.history.codec import host_from_json
from leadline.history.nmapxml import XmlRun, read_xml
from leadline.model import HostResult, RunInfo, RunStats, ScanInfo

__all__ = ["Loaded", "open_file", "open_run"]


class Loaded:
    """One run, header first, hosts streamed; ``stats`` is known after ``hosts`` is exhausted."""

    def __init__(self, name: str, scanner: str, hosts: Iterator[HostResult], header: Callable[[], RunInfo | None],
                 footer: Callable[[], RunStats | None], run_id: int | None = None,
                 closers: tuple[Callable[[], None], ...] = ()) -> None:
        self.name = name
        self.scanner = scanner
        self.run_id = run_id
        self._hosts = hosts
        self._header = header
        self._footer = footer
        self._peeked: list[HostResult] = []
        self._closers = closers

    @property
    def run(self) -> RunInfo:
        """The header; for XML it is complete once the first host has been seen, so that host is read ahead."""
        info = self._header()
        if info is None:
            self._peeked = list(itertools.islice(self._hosts, 1))
            info = self._header()
        return info or RunInfo(args="", start_time=0.0, version="")

    def hosts(self) -> Iterator[HostResult]:
        yield from self._peeked
        self._peeked = []
        yield from self._hosts

    @property
    def stats(self) -> RunStats | None:
        return self._footer()

    def close(self) -> None:
        for close in self._closers:
            close()


def _json_run(doc: dict[str, Any]) -> RunInfo:
    infos = tuple(ScanInfo(s.get("scan_type", ""), s.get("protocol", "tcp"), int(s.get("numservices", 0)),
                           s.get("services", "")) for s in doc.get("scaninfo") or ())
    return RunInfo(args=doc.get("args") or "", start_time=float(doc.get("start") or 0.0),
                   version=doc.get("version") or "", scaninfo=infos, verbosity=int(doc.get("verbosity") or 0),
                   debugging=int(doc.get("debugging") or 0), ping_only=bool(doc.get("ping_only")),
                   list_only=bool(doc.get("list_only")))


def _json_stats(doc: dict[str, Any]) -> RunStats | None:
    s = doc.get("runstats")
    if not isinstance(s, dict):
        return None
    return RunStats(end_time=float(s.get("end") or 0.0), elapsed=float(s.get("elapsed") or 0.0),
                    hosts_up=int(s.get("hosts_up") or 0), hosts_down=int(s.get("hosts_down") or 0),
                    hosts_total=int(s.get("hosts_total") or 0), exit=s.get("exit") or "success",
                    summary=s.get("summary") or "", error_message=s.get("error_message") or "")


def _json_hosts(doc: dict[str, Any], name: str) -> Iterator[HostResult]:
    for n, raw in enumerate(doc.get("hosts") or ()):
        try:
            yield host_from_json(raw)
        except (KeyError, TypeError, ValueError) as e:
            raise StoreError(f"{name}: host {n + 1} is not in leadline's JSON schema ({type(e).__name__}: {e})") from None


def _open_json(stream: IO[bytes], name: str) -> Loaded:
    try:
        doc = json.load(stream)
    except (ValueError, UnicodeDecodeError) as e:
        raise StoreError(f"{name}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("hosts"), list):
        raise StoreError(f"{name}: not a leadline JSON document (no 'hosts' list)")
    run = _json_run(doc)
    stats = _json_stats(doc)
    return Loaded(name, str(doc.get("scanner") or "leadline"), _json_hosts(doc, name), lambda: run, lambda: stats)


def open_file(path: str) -> Loaded:
    """A result file: XML (nmap's DTD, from nmap or leadline) or leadline's JSON, told apart by content."""
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed by Loaded.close
    except OSError as e:
        raise StoreError(f"cannot read '{path}': {e.strerror or e}") from None
    head = stream.read(4096)
    stream.seek(0)
    first = head.lstrip()
    if first.startswith(b"{"):
        with stream:
            return _open_json(stream, path)
    if not first.startswith(b"<"):
        stream.close()
        raise StoreError(f"{path}: neither XML nor leadline's JSON")
    state = XmlRun()
    scanner = "leadline" if b"<!-- leadline" in head else "nmap"
    return Loaded(path, scanner, _closing(stream, read_xml(stream, path, state)), lambda: state.run,
                  lambda: state.stats, closers=(stream.close,))


def _closing(stream: IO[bytes], hosts: Iterator[HostResult]) -> Iterator[HostResult]:
    """The hosts, closing the file once they are read, fail, or are no longer wanted."""
    try:
        yield from hosts
    finally:
        stream.close()


def open_run(spec: str, url: str | None = None) -> Loaded:
    """A run id from the store (``12``) or a result file (``scan.xml``)."""
    if spec.isdigit():
        from leadline.history.store import open_store

        store = open_store(url)
        run_id = int(spec)
        row = store.run(run_id)
        info, stats = store.run_info(run_id)
        return Loaded(f"run {run_id}", row.scanner, store.hosts(run_id), lambda: info, lambda: stats, run_id=run_id,
                      closers=(store.close,))
    return open_file(spec)
