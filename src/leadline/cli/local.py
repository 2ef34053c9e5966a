"""``leadline local``: the listening sockets and connections of this machine, as ``ss -tulpn`` and ``ss -tn`` show them.

Only the modules a command needs are imported, so a plain listing starts
as fast as ``ss`` does its work.  Every failure a user can cause ends as
one line ``leadline: <message>`` and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TYPE_CHECKING, NoReturn

from leadline.errors import LeadlineError, UsageError

if TYPE_CHECKING:
    from leadline.local.selection import Selection

__all__ = ["local_main"]

USAGE = """leadline local [-l] [-e] [-t] [-u] [-4|-6] [-p PORTS] [--process NAME] [-oJ FILE] [-oX FILE]
       leadline local --who PORT[/udp]
       leadline local --exposure [--from NAMESPACE] [filters] [-oJ FILE] [-oX FILE]
       leadline local --diff A.json B.json"""


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"local: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="leadline local", usage=USAGE,
                     description="This machine's sockets, who holds them, and what a scan from outside reaches.")
    parser.add_argument("-l", "--listening", action="store_true", help="listening sockets only (TCP LISTEN, UDP UNCONN)")
    parser.add_argument("-e", "--established", action="store_true", help="established TCP connections only")
    parser.add_argument("-t", "--tcp", action="store_true", help="TCP only")
    parser.add_argument("-u", "--udp", action="store_true", help="UDP only")
    parser.add_argument("-4", dest="ipv4", action="store_true", help="IPv4 only")
    parser.add_argument("-6", dest="ipv6", action="store_true", help="IPv6 only")
    parser.add_argument("-p", dest="ports", metavar="PORTS", help="ports in leadline's syntax (22,80 1-1024 U:53 http*)")
    parser.add_argument("--process", metavar="NAME", help="a process name (wildcards allowed) or pid")
    parser.add_argument("-oJ", dest="json", metavar="FILE", help="write the listing as JSON ('-' for stdout)")
    parser.add_argument("-oX", dest="xml", metavar="FILE", help="write the listing as XML ('-' for stdout)")
    parser.add_argument("--who", metavar="PORT[/udp]", help="who holds this port, and why a second bind fails")
    parser.add_argument("--exposure", action="store_true", help="label listeners by what a scan from outside reaches")
    parser.add_argument("--from", dest="from_namespace", metavar="NAMESPACE",
                        help="with --exposure: scan from this namespace (a lab host) instead of a new one")
    parser.add_argument("--diff", nargs=2, metavar=("A.json", "B.json"), help="compare two -oJ files")
    return parser


def _selection(options: argparse.Namespace) -> Selection:
    from leadline.local.selection import Selection, port_sets

    if options.ipv4 and options.ipv6:
        raise UsageError("local: -4 and -6 together mean both; give neither")
    families = frozenset({4}) if options.ipv4 else frozenset({6}) if options.ipv6 else frozenset({4, 6})
    protocols = {"tcp"} if options.tcp and not options.udp else {"udp"} if options.udp and not options.tcp else {"tcp", "udp"}
    ports = None
    if options.ports is not None:
        from leadline.core.ports import parse_port_spec  # only here: it brings dataclasses, which a listing skips
        from leadline.services import ServiceTable

        ports = port_sets(parse_port_spec(options.ports, ServiceTable.shipped(), protocols))
    elif protocols != {"tcp", "udp"}:
        ports = {proto: frozenset(range(65536)) for proto in protocols}
    return Selection(listening=options.listening, established=options.established, ports=ports,
                     process=options.process, families=families)


def _write(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        return
    try:
        with open(path, "w", encoding="utf-8", errors="replace") as handle:
            handle.write(text)
    except OSError as e:
        raise UsageError(f"cannot write output file '{path}': {e.strerror or e}") from None


def _diff(paths: list[str]) -> int:
    from leadline.local.diff import diff_listings, format_diff
    from leadline.local.files import read_json

    before, after = read_json(paths[0]), read_json(paths[1])
    changes, same = diff_listings(before, after)
    sys.stdout.write(format_diff(changes, same, (paths[0], paths[1])))
    return 1 if changes else 0


def _who(text: str) -> int:
    from leadline.local.kernel import read_snapshot
    from leadline.local.who import format_who, parse_who, who

    port, protocol = parse_who(text)
    snapshot = read_snapshot()
    if snapshot.note:
        print(snapshot.note)
    sys.stdout.write(format_who(who(snapshot, port, protocol)))
    return 0


def _listing(options: argparse.Namespace, argv: list[str]) -> int:
    from leadline._version import __version__
    from leadline.local.kernel import read_snapshot
    from leadline.local.naming import with_services
    from leadline.local.render import format_listing
    from leadline.local.selection import select
    from leadline.services import ServiceTable

    selection = _selection(options)
    protocols = frozenset({"tcp"} if options.tcp and not options.udp else {"udp"} if options.udp and not options.tcp
                          else {"tcp", "udp"})
    snapshot = read_snapshot(selection.families, protocols,
                             listening_only=options.listening and not options.established)
    # Named before filtering: a connection is named after its server's end, found among all listeners.
    items = select(with_services(snapshot.sockets, ServiceTable.shipped()), selection, snapshot.owners)
    outside = None
    if options.exposure:
        from leadline.local.exposure import assess

        items, outside = assess(items, options.from_namespace)
    snapshot = snapshot._replace(sockets=tuple(items))
    args = shlex.join(["leadline", "local", *argv])
    if options.json or options.xml:
        from leadline.local.files import to_json, to_xml
    if options.json:
        _write(options.json, to_json(snapshot, items, args, __version__, outside))
    if options.xml:
        _write(options.xml, to_xml(snapshot, items, args, __version__, outside))
    if "-" not in (options.json, options.xml):
        sys.stdout.write(format_listing(snapshot, items, exposure=options.exposure))
    return 0


def local_main(argv: list[str]) -> int:
    """Run ``leadline local``; the return value is the exit code."""
    try:
        options = _parser().parse_args(argv)
        if options.from_namespace and not options.exposure:
            raise UsageError("local: --from goes with --exposure")
        if options.diff:
            return _diff(options.diff)
        if options.who is not None:
            return _who(options.who)
        return _listing(options, argv)
    except LeadlineError as error:
        print(f"leadline: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("leadline: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141
