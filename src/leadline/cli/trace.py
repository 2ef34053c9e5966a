"""`leadline trace [-n] [-6] [-Pn] [-T] [-p PORT] HOST`: the route to one host, laid out as traceroute(8) does.

It is a one-host run of the scan pipeline: discovery (none with -Pn),
with -T or -p a SYN scan of that one port (so the trace can send SYNs
to it, open or closed), then the Traceroute phase, as ``--traceroute``
runs it.  Without a port the trace sends ICMP echo requests, as the
discovery's answer says works.  Like every raw-packet feature it needs
root; each failure is one line and a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from leadline.errors import UsageError

__all__ = ["trace_main", "trace_options"]

DEFAULT_TCP_PORT = 80


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"trace: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="leadline trace", description="The route to HOST, hop by hop (root).")
    parser.add_argument("host", help="a name or address")
    parser.add_argument("-n", dest="numeric", action="store_true", help="show addresses only, no reverse names")
    parser.add_argument("-6", dest="ipv6", action="store_true", help="trace over IPv6")
    parser.add_argument("-Pn", dest="no_ping", action="store_true", help="skip host discovery: treat HOST as up")
    parser.add_argument("-T", dest="tcp", action="store_true", help=f"send TCP SYNs (to port {DEFAULT_TCP_PORT} unless -p)")
    parser.add_argument("-p", dest="port", type=int, metavar="PORT", help="TCP port for the SYNs (implies -T)")
    return parser


def trace_options(argv: list[str]) -> tuple[str, list[str], bool]:
    """(host, the scan's nmap-style options, numeric) from ``leadline trace``'s arguments."""
    args = _parser().parse_args(argv)
    if args.port is not None and not 0 < args.port < 65536:
        raise UsageError(f"trace: port {args.port} is out of range (1..65535)")
    options = ["--traceroute"]
    if args.tcp or args.port is not None:
        options += ["-sS", "-p", str(args.port or DEFAULT_TCP_PORT)]
    else:
        options.append("-sn")
    options += [flag for flag, on in (("-n", args.numeric), ("-6", args.ipv6), ("-Pn", args.no_ping)) if on]
    return args.host, options, args.numeric


def trace_main(argv: list[str]) -> int:
    """Run the trace and print its lines; LeadlineError travels up to the one-line error printer."""
    from leadline.api import scan
    from leadline.output.trace import traceroute_lines

    host, options, numeric = trace_options(argv)
    report = scan(host, options)
    up = [h for h in report.hosts if h.is_up]
    if not up:
        raise UsageError(f"{host} seems down; if it is up but blocks pings, try leadline trace -Pn {host}")
    result = up[0]
    if result.timed_out or result.trace is None:
        raise UsageError(f"no route to {host} was traced")
    sys.stdout.write("".join(line + "\n" for line in traceroute_lines(result, numeric=numeric)))
    return 0
