"""`leadline lab up | down | status | exec CMD... | shell`: the practice lab from the shell.

Every failure a user can cause ends as one line ``leadline: <message>`` on
stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import NoReturn

from leadline.errors import LabError, LeadlineError, UsageError
from leadline.lab import Lab, LabStatus, practice_topology, require_root
from leadline.lab.netns import in_namespace, namespaces


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"lab: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="leadline lab", description="The practice network, in namespaces.")
    common = _Parser(add_help=False)
    # Accepted before or after the command; the copy after it wins only when given.
    default_prefix = os.environ.get("LEADLINE_LAB_PREFIX") or "ll"
    for owner, default in ((parser, default_prefix), (common, argparse.SUPPRESS)):
        owner.add_argument("--prefix", default=default,
                           help="namespace name prefix, so several labs can coexist "
                                "(default: $LEADLINE_LAB_PREFIX, else ll)")
    for owner, state_default in ((parser, None), (common, argparse.SUPPRESS)):
        owner.add_argument("--state-dir", default=state_default,
                           help="where the lab records what it built (default: /run/leadline-lab/PREFIX)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("up", parents=[common], help="build the practice network")
    commands.add_parser("down", parents=[common], help="remove it, daemons and namespaces")
    commands.add_parser("status", parents=[common], help="show hosts, addresses and daemons")
    run = commands.add_parser("exec", parents=[common], help="run a command in the scanner namespace")
    run.add_argument("--host", default=None, help="another lab host to run it on")
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="CMD")
    shell = commands.add_parser("shell", parents=[common], help="start $SHELL in the scanner namespace")
    shell.add_argument("--host", default=None, help="another lab host to start it on")
    return parser


def lab_main(argv: list[str]) -> int:
    """Run one lab command; the return value is the process exit code."""
    if argv[:1] == ["lab"]:
        argv = argv[1:]
    try:
        options = _parser().parse_args(argv)
        require_root()
        lab = Lab(options.prefix, options.state_dir)
        match options.command:
            case "up":
                return _up(lab)
            case "down":
                removed = lab.down()
                print(f"lab {lab.prefix} removed" if removed else f"lab {lab.prefix} was not up")
                return 0
            case "status":
                status = lab.status()
                print(render_status(status))
                return 0 if status.is_up else 1
            case "exec":
                command = options.argv[1:] if options.argv[:1] == ["--"] else options.argv
                if not command:
                    raise UsageError("lab exec: give the command to run, e.g. leadline lab exec -- nmap -h")
                return _run_in_lab(lab, options.host, command)
            case _:
                return _run_in_lab(lab, options.host, [os.environ.get("SHELL") or "/bin/sh"])
    except LeadlineError as error:
        print(f"leadline: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("leadline: interrupted", file=sys.stderr)
        return 130


def _up(lab: Lab) -> int:
    built = lab.up(practice_topology())
    status = lab.status()
    if not built:
        print(f"lab {lab.prefix} is already up")
    else:
        print(f"lab {lab.prefix} is up: {len(status.hosts)} hosts, {len(status.daemons)} daemons")
    print(f"scans run in namespace {lab.namespace(lab.scanner)}: leadline lab exec -- CMD, "
          "or leadline lab shell")
    return 0


def _run_in_lab(lab: Lab, host: str | None, command: list[str]) -> int:
    """Run a command in a lab namespace with the terminal attached; pass its exit code on."""
    namespace = lab.namespace(host or lab.scanner)
    if namespace not in namespaces():
        raise LabError(f"lab {lab.prefix} has no namespace {namespace}; "
                       f"run 'leadline lab up{_prefix_flag(lab)}' first")
    environment = dict(os.environ, LEADLINE_LAB=lab.prefix, LEADLINE_LAB_HOST=host or lab.scanner,
                       PATH=lab_path(os.environ.get("PATH", os.defpath)))
    completed = subprocess.run(in_namespace(namespace, command), env=environment, check=False)
    code = completed.returncode
    return 128 - code if code < 0 else code


def lab_path(path: str) -> str:
    """PATH inside the lab: the running installation's scripts first, so ``leadline lab exec leadline ...``
    (and ``leadline`` typed in ``lab shell``) runs this leadline even when it is not on the caller's PATH."""
    scripts = os.path.dirname(os.path.abspath(sys.argv[0])) if os.path.basename(sys.argv[0]) == "leadline" else ""
    if not scripts or not os.access(os.path.join(scripts, "leadline"), os.X_OK):
        scripts = os.path.dirname(sys.executable)
        if not os.access(os.path.join(scripts, "leadline"), os.X_OK):
            return path
    rest = [entry for entry in path.split(os.pathsep) if entry and entry != scripts]
    return os.pathsep.join([scripts, *rest])


def _prefix_flag(lab: Lab) -> str:
    return "" if lab.prefix == "ll" else f" --prefix {lab.prefix}"


def render_status(status: LabStatus) -> str:
    """The text of `leadline lab status`."""
    if not status.topology:
        return f"lab {status.prefix}: down (nothing recorded in {status.state_dir})"
    verdict = "up" if status.is_up else ("degraded" if status.complete else "incomplete")
    lines = [f"lab {status.prefix} ({status.topology}): {verdict}", "hosts:"]
    for host in status.hosts:
        where = " ".join(host.addresses) if host.present else "namespace missing"
        lines.append(f"  {host.name:<10} {host.namespace:<16} {where:<32} {host.role}".rstrip())
    if status.daemons:
        lines.append("daemons:")
    for daemon in status.daemons:
        state = "running" if daemon.alive else "dead"
        lines.append(f"  {daemon.host:<10} {daemon.port:>5}  {daemon.kind:<11} {daemon.program:<6} "
                     f"pid {daemon.pid:<7} {state}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(lab_main(sys.argv[1:]))
