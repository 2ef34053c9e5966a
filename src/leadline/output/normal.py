"""nmap's human-readable layout, for the terminal and for ``-oN`` files.

The same sink writes both: ``file_header`` switches to the ``-oN``
flavour, which starts with a ``# ... scan initiated`` comment, ends with
``# ... done at``, and leaves out the live task lines that only make
sense on a terminal.  Each host is written and flushed as soon as it
arrives, so an interrupted run keeps every host already reported.
"""

from __future__ import annotations

from typing import Sequence, TextIO

from leadline.model import HostResult, HostStatus, PortResult, PortState, RunInfo, RunStats
from leadline.output.base import NullSink
from leadline.output.osreport import detection_performed, os_normal_lines
from leadline.output.services import script_lines, service_column, service_info_line, version_text
from leadline.output.trace import trace_lines
from leadline.output.formatting import (
    PortFolding,
    clock_time,
    ctime_string,
    display_name,
    done_summary,
    fold_ports,
    has_possibly_open,
    long_date,
    not_shown_line,
    ptr_name,
    reason_text,
    short_date,
    sig_digits,
    user_name,
)

__all__ = ["NormalOutput", "evidence_lines"]

PROGRAM = "leadline"

# A host the interrupt cut short is printed with what was decided, and says so.
INTERRUPTED_NOTE = "Scan of this host was interrupted: the port states below are incomplete."

__all__ = ["INTERRUPTED_NOTE", "NormalOutput", "evidence_lines"]

_CACHED_PORTS = 16  # hosts with more port rows than this are laid out afresh (a -p- host is one of a kind)
_CACHE_ENTRIES = 256  # distinct port tuples remembered before the cache starts over


class NormalOutput(NullSink):
    """Writes nmap's normal output, host by host, as results arrive."""

    def __init__(
        self,
        stream: TextIO,
        *,
        reason: bool = False,
        open_only: bool = False,
        verbosity: int = 0,
        file_header: bool = False,
        debugging: int = 0,
        ping_hint: bool = False,
    ) -> None:
        self.stream = stream
        self.asked_reason = reason
        # nmap shows reasons from -vv on, even without --reason.
        self.reason = reason or verbosity >= 2
        # Host discovery ran (no -Pn, no -sL): a lone host found down earns nmap's -Pn hint.
        self.ping_hint = ping_hint
        self.open_only = open_only
        self._through_shown: str | None = None  # nmap names the zombie once, before the first report
        self.verbosity = verbosity
        self.debugging = debugging
        self.file_header = file_header
        self.run: RunInfo | None = None
        # Hosts of a sweep share their few port rows: the folding, the table and the
        # Service Info line are laid out once per distinct port tuple (see _layout).
        self._layouts: dict[tuple[PortResult, ...], tuple[PortFolding, list[str], str | None]] = {}
        self.task_started: dict[str, float] = {}

    # -- events ----------------------------------------------------------
    def begin(self, run: RunInfo) -> None:
        self.run = run
        if self.file_header:
            self._write(f"# {PROGRAM} {run.version} scan initiated {ctime_string(run.start_time)} as: {run.args}")
        else:
            self._write(f"Starting {PROGRAM} {run.version} at {short_date(run.start_time)}")
        self.stream.flush()

    def task_begin(self, task: str, time: float, extra: str = "") -> None:
        self.task_started[task] = time
        if not self._live():
            return
        self._write(f"Initiating {task} at {clock_time(time)}")
        if extra:
            self._write(f"Scanning {extra}")
        self.stream.flush()

    def task_end(self, task: str, time: float, extra: str = "") -> None:
        started = self.task_started.pop(task, time)
        if not self._live():
            return
        tail = f" ({extra})" if extra else ""
        self._write(f"Completed {task} at {clock_time(time)}, {time - started:.2f}s elapsed{tail}")
        self.stream.flush()

    def set_verbosity(self, level: int) -> None:
        """A key press (v/V) changed the verbosity mid-scan."""
        self.verbosity = max(0, level)
        self.reason = self.asked_reason or self.verbosity >= 2
        self._layouts.clear()

    def port_found(self, address: str, port: PortResult) -> None:
        """nmap's -v line for each open port as the scan decides it (terminal only)."""
        if self._live() and port.state is PortState.OPEN:
            self._write(f"Discovered open port {port.port}/{port.protocol} on {address}")
            self.stream.flush()

    def host(self, host: HostResult) -> None:
        if host.status is HostStatus.UNKNOWN and not host.hostnames and not host.warnings:
            # A list-scan address without names: one line (the bulk of -sL over a big range).
            self.stream.write(f"{PROGRAM} scan report for {host.address}\n")
            self.stream.flush()
            return
        lines = self.host_lines(host)
        if lines:
            self.stream.write("".join(line + "\n" for line in lines))
            self.stream.flush()

    def listed(self, addresses: Sequence[str]) -> None:
        """A batch of -sL hosts with no names: one report line each, written at once."""
        if addresses:
            self.stream.write("".join([f"{PROGRAM} scan report for {a}\n" for a in addresses]))
            self.stream.flush()

    def end(self, stats: RunStats) -> None:
        if self.ping_hint and not self.file_header and stats.hosts_total == 1 and stats.hosts_up == 0:
            self._write("Note: Host seems down. If it is really up, but blocking our ping probes, try -Pn")
        if stats.exit == "error":
            note = stats.error_message or "scan interrupted"
            self._write(f"# QUITTING! {note}" if self.file_header else f"QUITTING! {note}")
        if self.run is not None and stats.exit != "error" and stats.hosts_up:
            performed = detection_performed(service=self.run.service_scan, os=self.run.os_scan)
            if performed:
                self._write(performed)
        if self.file_header:
            self._write(f"# {PROGRAM} done at {ctime_string(stats.end_time)} -- {done_summary(stats)}")
        else:
            self._write(f"{PROGRAM} done: {done_summary(stats)}")
        self.stream.flush()

    # -- layout ----------------------------------------------------------
    def host_lines(self, host: HostResult) -> list[str]:
        """The lines one host contributes (empty when the host is not shown)."""
        lines = [f"Warning: {w}" for w in host.warnings]
        name = display_name(host)
        if host.status is HostStatus.DOWN:
            if self.verbosity < 1 or self.open_only:
                return []
            why = f", received {reason_text(host.status_reason, host.status_reason_ttl)}" if self.reason else ""
            return lines + [f"{PROGRAM} scan report for {name} [host down{why}]"]
        if host.status is HostStatus.UNKNOWN:
            return lines + [f"{PROGRAM} scan report for {name}"]
        if host.timed_out:
            return lines + [f"Skipping host {name} due to host timeout"]
        ping_only = self.run is not None and (self.run.ping_only or self.run.list_only)
        if self.open_only and not ping_only and not has_possibly_open(host):
            return []
        if host.through and host.through != self._through_shown:
            self._through_shown = host.through
            lines.append(host.through)
        lines.append(f"{PROGRAM} scan report for {name}")
        lines.append(self._up_line(host))
        if host.interrupted:
            lines.append(INTERRUPTED_NOTE)
        typed = user_name(host)
        if host.other_addresses:
            lines.append(f"Other addresses for {typed or host.address} (not scanned): {' '.join(host.other_addresses)}")
        reverse = ptr_name(host)
        if typed and reverse and reverse != typed:
            lines.append(f"rDNS record for {host.address}: {reverse}")
        if not ping_only:
            if self.verbosity >= 2 and host.start_time is not None and host.end_time is not None:
                spent = int(host.end_time - host.start_time)
                lines.append(f"Scanned at {long_date(host.start_time)} for {spent}s")
            folding, table, info = self._layout(host.ports)
            lines.extend(self._port_section(name, folding, table))
        if host.mac:
            lines.append(f"MAC Address: {host.mac} ({host.mac_vendor or 'Unknown'})")
        if not ping_only:
            lines.extend(os_normal_lines(host, self.verbosity))
            lines.extend(self._after_ports(host, info))
            lines.append("")
        elif host.trace is not None:  # -sn --traceroute: nmap prints the route after the host lines
            lines.extend([*trace_lines(host), ""])
        return lines

    def _layout(self, ports: tuple[PortResult, ...]) -> tuple[PortFolding, list[str], str | None]:
        """The folding, the port table and the Service Info line of ``ports``; remembered for short tuples."""
        cacheable = len(ports) <= _CACHED_PORTS
        layout = self._layouts.get(ports) if cacheable else None
        if layout is None:
            folding = fold_ports(ports, open_only=self.open_only, verbosity=self.verbosity, debugging=self.debugging)
            layout = (folding, self.port_table(folding.shown) if folding.shown else [], service_info_line(ports))
            if cacheable:
                if len(self._layouts) >= _CACHE_ENTRIES:
                    self._layouts.clear()
                self._layouts[ports] = layout
        return layout

    def _after_ports(self, host: HostResult, info: str | None) -> list[str]:
        """``Service Info:``, the host scripts' block and the route, after the port table as nmap places them."""
        lines: list[str] = []
        if info is not None:
            lines.append(info)
        if host.scripts:
            lines.extend(["", "Host script results:", *script_lines(host.scripts)])
        lines.extend(trace_lines(host))
        return lines

    def _up_line(self, host: HostResult) -> str:
        why = f", received {reason_text(host.status_reason, host.status_reason_ttl)}" if self.reason else ""
        latency = f" ({sig_digits(host.latency)}s latency)" if host.latency is not None else ""
        return f"Host is up{why}{latency}."

    def _port_section(self, name: str, folding: PortFolding, table: list[str]) -> list[str]:
        lines: list[str] = []
        if folding.total == 0:
            return lines
        if not folding.shown:
            lines.append(f"All {folding.total} scanned ports on {name} are in ignored states.")
        if folding.folded:
            lines.append(not_shown_line(folding))
        else:
            lines.append("")
        lines.extend(table)
        return lines

    def port_table(self, ports: tuple[PortResult, ...]) -> list[str]:
        """The PORT/STATE/SERVICE[/REASON][/VERSION] table; each column one wider than its widest cell."""
        versions = (self.run is not None and self.run.service_scan) or any(p.detail for p in ports)
        rows = [
            [f"{p.port}/{p.protocol}", str(p.state), service_column(p)]
            + ([reason_text(p.reason, p.reason_ttl)] if self.reason else [])
            + ([version_text(p.detail)] if versions else [])
            for p in ports
        ]
        header = ["PORT", "STATE", "SERVICE"] + (["REASON"] if self.reason else []) + (["VERSION"] if versions else [])
        widths = [max(len(r[i]) for r in [header, *rows]) + 1 for i in range(len(header) - 1)]

        def layout(cells: list[str]) -> str:
            return ("".join(c.ljust(w) for c, w in zip(cells, widths)) + cells[-1]).rstrip()

        lines = [layout(header)]
        for port, row in zip(ports, rows):
            lines.append(layout(row))
            lines.extend(evidence_lines(port.evidence))
            lines.extend(script_lines(port.scripts))
        return lines

    # -- helpers ---------------------------------------------------------
    def _live(self) -> bool:
        """Task lines belong on a verbose terminal, never in an -oN file."""
        return not self.file_header and self.verbosity >= 1

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")


def evidence_lines(evidence: tuple[str, ...]) -> list[str]:
    """--explain lines under a port row, framed like nmap's script output."""
    if not evidence:
        return []
    return [("|_ " if i == len(evidence) - 1 else "|  ") + line for i, line in enumerate(evidence)]
