"""The ``leadline`` command: nmap's command line over leadline's API.

This layer only parses arguments, opens files, wires sinks and maps
errors to one line and an exit code; the scanning lives in
``leadline.pipeline``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import ExitStack
from typing import TextIO

from leadline._version import __version__
from leadline.cli.help import HELP
from leadline.options import Parsed, parse_args
from leadline.config import ScanConfig
from leadline.errors import InputFileError, LeadlineError, UsageError
from leadline.output.base import FanOut, Sink


def _err(msg: str) -> None:
    print(f"leadline: {msg}", file=sys.stderr, flush=True)


_progress_line: object | None = None


def _warn(msg: str) -> None:
    if _progress_line is not None:
        _progress_line.clear()  # type: ignore[attr-defined]
    print(f"Warning: {msg}" if not msg.startswith(("Failed", "Warning", "WARNING")) else msg, file=sys.stderr, flush=True)


def _trace(line: str) -> None:
    """--packet-trace lines go to standard output, as nmap's do."""
    if _progress_line is not None:
        _progress_line.clear()  # type: ignore[attr-defined]
    print(line, flush=True)


def read_list_file(path: str, option: str) -> list[str]:
    """Targets from an ``-iL``/``--excludefile`` file ("-" is standard input)."""
    from leadline.core.targets import read_target_file

    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
    except OSError as e:
        raise InputFileError(f"cannot read {option} file '{path}': {e.strerror or e}") from None
    return list(read_target_file(text))


def _open_output(stack: ExitStack, path: str) -> TextIO:
    if path == "-":
        return sys.stdout
    try:
        return stack.enter_context(open(path, "w", encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot write output file '{path}': {e.strerror or e}") from None


def build_sinks(config: ScanConfig, stack: ExitStack) -> tuple[Sink, object | None]:
    """The sinks the flags ask for, plus the progress line (if on a terminal)."""
    from leadline.output.grepable import GrepableOutput
    from leadline.output.json import JsonOutput
    from leadline.output.normal import NormalOutput
    from leadline.output.xml import XmlOutput

    out = config.output
    sinks: list[Sink] = []
    stdout_taken = "-" in (out.normal, out.xml, out.grepable, out.json)
    progress = None
    if not stdout_taken:
        if config.interactive:
            from leadline.output.progress import ProgressLine

            progress = ProgressLine(sys.stdout)
            sinks.append(progress)
        sinks.append(
            NormalOutput(
                sys.stdout,
                reason=config.reason,
                open_only=config.open_only,
                verbosity=config.verbosity,
                debugging=config.debugging,
            )
        )
    if out.normal:
        sinks.append(
            NormalOutput(
                _open_output(stack, out.normal),
                reason=config.reason,
                open_only=config.open_only,
                verbosity=config.verbosity,
                debugging=config.debugging,
                file_header=out.normal != "-",
            )
        )
    if out.xml:
        sinks.append(XmlOutput(_open_output(stack, out.xml), open_only=config.open_only))
    if out.grepable:
        sinks.append(GrepableOutput(_open_output(stack, out.grepable), open_only=config.open_only))
    if out.json:
        sinks.append(JsonOutput(_open_output(stack, out.json)))
    return FanOut(sinks), progress


def _install_interrupt(stop: threading.Event) -> None:
    """First Ctrl-C: stop cleanly and write what was found.  Second: leave now."""

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\ncaught interrupt: finishing up and writing what was found (Ctrl-C again to quit at once)", file=sys.stderr, flush=True)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def run(parsed: Parsed) -> int:
    from dataclasses import replace

    from leadline.pipeline import Scan

    config = parsed.config
    config = replace(config, interactive=sys.stdout.isatty() and os.environ.get("CI") != "true")
    extra_targets: list[str] = []
    extra_excludes: list[str] = []
    if config.input_file:
        extra_targets = read_list_file(config.input_file, "-iL")
    if config.exclude_file:
        extra_excludes = read_list_file(config.exclude_file, "--excludefile")
    if not config.targets and not extra_targets:
        raise UsageError("no targets were specified, so 0 hosts scanned (see 'leadline -h')")
    stop = threading.Event()
    _install_interrupt(stop)
    with ExitStack() as stack:
        global _progress_line
        sink, _progress_line = build_sinks(config, stack)
        scan = Scan(
            config,
            sink,
            warn=_warn,
            stop=stop,
            extra_targets=extra_targets,
            extra_excludes=extra_excludes,
            trace=_trace,
        )
        stats = scan.run()
    return 130 if stats.exit == "error" and stop.is_set() else 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["lab"]:
            from leadline.cli.lab import lab_main

            return lab_main(args[1:])
        if args[:1] == ["local"]:
            from leadline.cli.local import local_main

            return local_main(args[1:])
        parsed = parse_args(args)
        if parsed.show_help or not args:
            sys.stdout.write(HELP)
            return 0
        if parsed.show_version:
            print(f"leadline version {__version__}")
            return 0
        return run(parsed)
    except LeadlineError as e:
        _err(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 141


def entry() -> None:
    """The ``leadline`` command: ``main``, then a prompt exit.

    A -p- scan leaves some 65535 result objects behind; letting the
    interpreter free them one by one on the way out costs a tenth of a
    second after the last line is written.  Everything the run wrote is
    flushed and closed by then, so the process ends at once.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 141
    except OSError:
        pass
    os._exit(code)

