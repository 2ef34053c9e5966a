"""The route to a host as text: nmap's TRACEROUTE table, and traceroute(8)'s lines for ``leadline trace``.

Both read only the result model (``HostResult.trace``).  nmap's table
folds the hops learned while tracing another host into one line ("Hops
1-2 are the same as for …") and runs of silent TTLs into one ("... 5"),
and pads each column to its widest cell plus a space, with no trailing
spaces; hop RTTs are milliseconds with two decimals.
"""

from __future__ import annotations

from leadline.model import HostResult, Trace, TraceHop
from leadline.output.formatting import named_address, ptr_name

__all__ = ["distance_line", "trace_header", "trace_lines", "traceroute_lines"]


def trace_header(trace: Trace, family: int) -> str:
    """nmap's "TRACEROUTE (using port 22/tcp)" line (bare "TRACEROUTE" for a host on our link)."""
    if trace.protocol in ("tcp", "udp"):
        return f"TRACEROUTE (using port {trace.port}/{trace.protocol})"
    if trace.protocol == "icmp":
        return "TRACEROUTE (using proto 58/ipv6-icmp)" if family == 6 else "TRACEROUTE (using proto 1/icmp)"
    return "TRACEROUTE"


def _hop_name(hop: TraceHop, host: HostResult) -> str:
    assert hop.address is not None
    name = hop.hostname
    if name is None and hop.address == host.address:
        name = ptr_name(host)
    return named_address(name, hop.address)


def _rtt(hop: TraceHop) -> str:
    return "--" if hop.rtt is None else f"{hop.rtt * 1000:.2f} ms"


def trace_lines(host: HostResult) -> list[str]:
    """The blank line, header and HOP/RTT/ADDRESS table nmap prints after a host's other results."""
    trace = host.trace
    if trace is None or not trace.hops:
        return []
    rows: list[tuple[str, str, str]] = []
    full: dict[int, str] = {}  # row index -> a text spanning the RTT and ADDRESS columns
    hops = list(trace.hops)
    i = 0
    if trace.shared_with is not None and trace.shared_hops > 0:
        shared = trace.shared_hops
        i = sum(1 for h in hops if h.ttl <= shared)
        full[len(rows)] = (f"Hop 1 is the same as for {trace.shared_with}" if shared == 1
                           else f"Hops 1-{shared} are the same as for {trace.shared_with}")
        rows.append(("-", "", ""))
    while i < len(hops):
        hop = hops[i]
        if hop.address is None:
            last = hop.ttl
            while i < len(hops) and hops[i].address is None:
                last = hops[i].ttl
                i += 1
            rows.append((str(hop.ttl), "..." if last == hop.ttl else f"... {last}", ""))
            continue
        rows.append((str(hop.ttl), _rtt(hop), _hop_name(hop, host)))
        i += 1
    header = ("HOP", "RTT", "ADDRESS")
    widths = [max(len(r[c]) for n, r in enumerate([header, *rows]) if not (c and n - 1 in full)) + 1 for c in (0, 1)]
    lines = ["", trace_header(trace, host.family)]
    for n, row in enumerate([header, *rows]):
        if n - 1 in full:
            lines.append(row[0].ljust(widths[0]) + full[n - 1])
        else:
            lines.append((row[0].ljust(widths[0]) + row[1].ljust(widths[1]) + row[2]).rstrip())
    return lines


def distance_line(host: HostResult) -> list[str]:
    """nmap's "Network Distance: N hops", which it prints with the OS detection results."""
    if host.distance is None or host.os is None:
        return []
    return [f"Network Distance: {host.distance} hop{'' if host.distance == 1 else 's'}"]


def traceroute_lines(host: HostResult, *, numeric: bool = False, max_ttl: int = 30) -> list[str]:
    """``leadline trace``: traceroute(8)'s layout, one line per TTL ("*" for silence), "name (address)" unless -n."""
    trace = host.trace
    probe = "" if trace is None else {"tcp": f", SYN to port {trace.port}/tcp", "udp": f", UDP to port {trace.port}",
                                      "icmp": ", ICMP echo"}.get(trace.protocol or "", "")
    target = host.address if numeric else f"{ptr_name(host) or host.address} ({host.address})"
    lines = [f"traceroute to {target}, {max_ttl} hops max{probe}"]
    for hop in trace.hops if trace is not None else ():
        if hop.address is None:
            lines.append(f"{hop.ttl:2d}  *")
            continue
        name = hop.hostname or (ptr_name(host) if hop.address == host.address else None)
        where = hop.address if numeric else f"{name or hop.address} ({hop.address})"
        rtt = "" if hop.rtt is None else f"  {hop.rtt * 1000:.3f} ms"
        lines.append(f"{hop.ttl:2d}  {where}{rtt}")
    return lines
