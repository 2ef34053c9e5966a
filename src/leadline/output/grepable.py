"""nmap's grepable layout (``-oG``): one line per host and fact, tab-separated.

Scripts written for nmap's grepable files split on "\\t", "/" and ", ";
those separators, the field order and the "Ignored State" rule are kept
exactly so that such scripts work on leadline's files unchanged.
"""

from __future__ import annotations

from typing import Sequence, TextIO

from leadline.model import HostResult, HostStatus, PortResult, RunInfo, RunStats
from leadline.output.services import service_column, version_text
from leadline.output.base import NullSink
from leadline.output.formatting import ctime_string, done_summary, fold_ports, has_possibly_open, ptr_name

PROGRAM = "leadline"

_SCANINFO_LABELS = (("tcp", "TCP"), ("udp", "UDP"), ("sctp", "SCTP"), ("ip", "PROTOCOLS"))


class GrepableOutput(NullSink):
    """Writes ``Host:`` lines as hosts arrive, flushing after each."""

    def __init__(self, stream: TextIO, *, open_only: bool = False) -> None:
        self.stream = stream
        self.open_only = open_only
        self.run: RunInfo | None = None

    def begin(self, run: RunInfo) -> None:
        self.run = run
        self._write(f"# {PROGRAM} {run.version} scan initiated {ctime_string(run.start_time)} as: {run.args}")
        if run.verbosity >= 1:
            self._write("# Ports scanned: " + " ".join(self._scanned(run, proto, label) for proto, label in _SCANINFO_LABELS))
        self.stream.flush()

    def host(self, host: HostResult) -> None:
        lines = self.host_lines(host)
        if lines:
            self.stream.write("".join(line + "\n" for line in lines))
            self.stream.flush()

    def listed(self, addresses: Sequence[str]) -> None:
        """A batch of -sL addresses without names, written at once."""
        if addresses:
            self.stream.write("".join([f"Host: {a} ()\tStatus: Unknown\n" for a in addresses]))
            self.stream.flush()

    def end(self, stats: RunStats) -> None:
        if stats.exit == "error":
            # A comment, so scripts that split Host: lines are not disturbed.
            self._write(f"# QUITTING! {stats.error_message or 'scan interrupted'}")
        self._write(f"# {PROGRAM} done at {ctime_string(stats.end_time)} -- {done_summary(stats)}")
        self.stream.flush()

    def host_lines(self, host: HostResult) -> list[str]:
        """The ``Host:`` lines for one host; none for hosts the run does not report."""
        verbosity = self.run.verbosity if self.run else 0
        ping_only = self.run is not None and (self.run.ping_only or self.run.list_only)
        prefix = f"Host: {host.address} ({ptr_name(host) or ''})"
        if host.status is HostStatus.DOWN:
            return [f"{prefix}\tStatus: Down"] if verbosity >= 1 and not self.open_only else []
        if host.status is HostStatus.UNKNOWN:
            return [f"{prefix}\tStatus: Unknown"]
        if host.timed_out:
            return [f"{prefix}\tStatus: Timeout"]
        if self.open_only and not ping_only and not has_possibly_open(host):
            return []
        lines = [f"{prefix}\tStatus: Up"]
        if ping_only:
            return lines
        debugging = self.run.debugging if self.run else 0
        folding = fold_ports(host.ports, open_only=self.open_only, verbosity=verbosity, debugging=debugging)
        ports_field = f"{prefix}\tPorts: " + ", ".join(port_entry(p) for p in folding.shown)
        states = folding.folded_states()
        # nmap names the ignored state only when exactly one state was folded.
        if len(states) == 1:
            state, count, _ = states[0]
            ports_field += f"\tIgnored State: {state} ({count})"
        lines.append(ports_field + _os_fields(host))
        if host.interrupted:
            lines.append(f"# {host.address}: scan interrupted, the ports above are incomplete")
        return lines

    def _scanned(self, run: RunInfo, protocol: str, label: str) -> str:
        for info in run.scaninfo:
            if info.protocol == protocol:
                return f"{label}({info.numservices};{info.services})"
        return f"{label}(0;)"

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")


def port_entry(port: PortResult) -> str:
    """"22/open/tcp//ssh//OpenSSH 9.2p1 (protocol 2.0)/": port/state/protocol/owner/service/rpc/version/.

    A "/" inside a field becomes "|", as in nmap ("ssl|http"); what a service sent is escaped.
    """
    service = service_column(port).replace("/", "|") if port.service or port.detail else ""
    version = version_text(port.detail).replace("/", "|")
    return f"{port.port}/{port.state}/{port.protocol}//{service}//{version}/"


__all__ = ["GrepableOutput", "port_entry"]


def _os_fields(host: HostResult) -> str:
    """nmap's OS fields on the Ports line: exact matches only, then the sequence classes."""
    os = host.os
    if os is None:
        return ""
    out = ""
    if os.perfect and not os.too_many:
        out += "\tOS: " + "|".join(m.name for m in os.matches[:os.perfect])
    seq = os.sequences
    if seq is not None and seq.tcp_index is not None and len(seq.tcp_values) > 3:
        out += f"\tSeq Index: {seq.tcp_index}"
    if seq is not None and seq.ipid_class is not None and len(seq.ipid_values) > 2:
        out += f"\tIP ID Seq: {seq.ipid_class}"
    return out
