"""What every side-by-side benchmark shares: a private lab, timed runs under a budget,
port-state comparison and the result table.

A benchmark is only worth its number if both tools saw the same network in
the same run and came back with the same answer, so each script builds its
own lab (prefix "lli..."), runs leadline and nmap (or masscan) alternately in
the scanner namespace, compares their port states, prints wall times and
the ratio leadline/nmap, and removes the lab whatever happens.  Every run is
capped by a budget, so a benchmark always ends.
"""

from __future__ import annotations

import argparse
import re
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the oracle's XML reader lives in tests/oracle

from leadline.lab import Lab, Topology, practice_topology  # noqa: E402
from tests.oracle.nmapxml import HostStates, diff_states, read_states  # noqa: E402

LEADLINE = str(Path(sys.executable).parent / "leadline")
COURSE = "198.18.1.10"
KILL_GRACE = 5.0  # seconds a capped tool gets to exit after SIGINT before SIGKILL


@dataclass
class Run:
    """One execution of one tool."""

    tool: str
    wall: float  # seconds, from spawn to exit (the budget when capped)
    capped: bool  # stopped by the budget
    returncode: int | None
    peak_rss_kb: int  # ru_maxrss of the child
    xml: str  # its -oX file ("" when it wrote none)
    stdout: str
    stderr: str
    cpu: float = 0.0  # user + system seconds of the child and what it waited for, from wait4
    load: str = ""  # the 1-minute load average when the run ended (the machine may be shared)

    @property
    def shown_wall(self) -> str:
        return f">{self.wall:.1f}" if self.capped else f"{self.wall:.2f}"


@dataclass
class Comparison:
    """Port states of one run against the reference, for one address."""

    ports: int  # ports the run reported
    differences: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return self.ports > 0 and not self.differences


def arguments(
    description: str, budget: float, repeat: int = 1, extra: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """The options every benchmark takes, plus any a benchmark adds through ``extra``."""
    parser = argparse.ArgumentParser(description=description)
    if extra is not None:
        extra(parser)
    parser.add_argument("--budget", type=float, default=budget,
                        help=f"seconds each tool run may take before it is stopped (default {budget:g})")
    parser.add_argument("--repeat", type=int, default=repeat,
                        help=f"runs of each tool; the median counts (default {repeat})")
    parser.add_argument("--old-tree", type=Path, default=None, metavar="DIR",
                        help="also run the leadline of an unpacked older tree (git archive REV | tar -x -C DIR) "
                             "with this Python, alternately with the others, as the tool 'old'")
    options = parser.parse_args()
    if options.budget <= 0 or options.repeat < 1:
        parser.error("--budget must be positive and --repeat at least 1")
    return options


def leadline_commands(options: argparse.Namespace, argv: Sequence[str]) -> dict[str, list[str]]:
    """leadline's command line, and the older tree's beside it when --old-tree names one."""
    commands = {"leadline": [LEADLINE, *argv]}
    old_tree = getattr(options, "old_tree", None)
    if old_tree is not None:
        source = Path(old_tree).resolve() / "src"
        if not (source / "leadline").is_dir():
            raise SystemExit(f"--old-tree {old_tree}: no src/leadline there")
        commands["old"] = ["env", f"PYTHONPATH={source}", sys.executable, "-m", "leadline", *argv]
    return commands


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into an exception so the lab is still torn down."""
    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)


@contextmanager
def bench_lab(prefix: str, topology: Topology | None = None) -> Iterator[Lab]:
    """A lab of our own for the length of one benchmark; always removed afterwards."""
    if os.geteuid() != 0:
        raise SystemExit("the benchmarks build network namespaces: run them as root")
    _stop_on_sigterm()
    lab = Lab(prefix)
    lab.down()  # whatever a crashed earlier run left
    try:
        started = time.perf_counter()
        lab.up(topology or practice_topology())
        print(f"lab {prefix!r} up in {time.perf_counter() - started:.1f} s", flush=True)
        yield lab
    finally:
        lab.down()
        print(f"lab {prefix!r} removed", flush=True)


def timed_run(lab: Lab, tool: str, argv: Sequence[str], budget: float) -> Run:
    """Run argv (with -oX added) in the scanner namespace; time it and take its peak RSS.

    The wait uses a pidfd, so the exit is seen the moment it happens, and
    wait4 gives the child's own resource usage.
    """
    with tempfile.TemporaryDirectory(prefix="lli-bench-") as scratch:
        xml_path = Path(scratch) / "out.xml"
        out_path = Path(scratch) / "out.txt"
        err_path = Path(scratch) / "err.txt"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            started = time.perf_counter()
            child = lab.popen(lab.scanner, [*argv, "-oX", str(xml_path)],
                              stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            pidfd = os.pidfd_open(child.pid)
            try:
                ready, _, _ = select.select([pidfd], [], [], budget)
                capped = not ready
                if capped:
                    os.kill(child.pid, signal.SIGINT)
                    if not select.select([pidfd], [], [], KILL_GRACE)[0]:
                        os.kill(child.pid, signal.SIGKILL)
                _, status, usage = os.wait4(child.pid, 0)
                wall = budget if capped else time.perf_counter() - started
            finally:
                os.close(pidfd)
            child.returncode = os.waitstatus_to_exitcode(status)  # Popen must not reap it again
        xml = xml_path.read_text(errors="replace") if xml_path.exists() else ""
        return Run(tool, wall, capped, None if capped else child.returncode, usage.ru_maxrss, xml,
                   out_path.read_text(errors="replace"), err_path.read_text(errors="replace"),
                   usage.ru_utime + usage.ru_stime, load_average())


def load_average() -> str:
    """The 1-minute load average, as /proc/loadavg gives it."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def states(run: Run, address: str) -> HostStates | None:
    """The run's port states for one address, or None when it has none (capped, failed)."""
    if not run.xml:
        return None
    try:
        return read_states(run.xml).get(address)
    except Exception:  # a capped run's XML may be cut short
        return None


def compare(run: Run, reference: HostStates | None, address: str, with_reason: bool = True) -> Comparison:
    """How the run's port states differ from the reference's."""
    found = states(run, address)
    if found is None or reference is None:
        return Comparison(0, ["no result" if found is None else "no reference"])
    return Comparison(len(found.ports), diff_states(found, reference, with_reason))


def median_wall(runs: Sequence[Run]) -> tuple[float, bool]:
    """Median wall time and whether it is only a lower bound (some run was capped)."""
    return statistics.median(r.wall for r in runs), any(r.capped for r in runs)


def ratio_text(ours: Sequence[Run], theirs: Sequence[Run]) -> tuple[float, str]:
    """leadline/other as a number and as text that says when it is only a bound."""
    mine, mine_capped = median_wall(ours)
    other, other_capped = median_wall(theirs)
    value = mine / other
    if mine_capped and other_capped:
        return value, "unknown (both capped)"
    if other_capped:
        return value, f"<= {value:.4f} (the other tool was capped at the budget)"
    if mine_capped:
        return value, f">= {value:.3f} (leadline was capped at the budget)"
    return value, f"{value:.3f}"


def print_runs(title: str, rows: Sequence[tuple[Run, Comparison]]) -> None:
    """One line per run: tool, wall time, peak RSS, exit code, agreement with the reference."""
    print(f"\n== {title}")
    print(f"{'tool':<10} {'wall s':>9} {'cpu s':>7} {'load':>6} {'peak RSS MB':>12} {'exit':>5}  states")
    for run, comparison in rows:
        if comparison.same:
            verdict = f"same as reference ({comparison.ports} ports)"
        elif run.capped and comparison.ports == 0:
            verdict = "not compared: stopped by the budget before it finished"
        else:
            verdict = f"{len(comparison.differences)} differ: " + "; ".join(comparison.differences[:3])
        exit_text = "-" if run.returncode is None else str(run.returncode)
        print(f"{run.tool:<10} {run.shown_wall:>9} {run.cpu:>7.2f} {run.load:>6} "
              f"{run.peak_rss_kb / 1024:>12.1f} {exit_text:>5}  {verdict}")
        if run.returncode not in (0, None) and run.stderr.strip():
            print(f"{'':<10} stderr: {run.stderr.strip().splitlines()[-1]}")


def goal_verdict(ours: Sequence[Run], theirs: Sequence[Run], goal: float) -> str:
    """Whether leadline/other <= goal is shown, refuted, or open because a run was capped."""
    value, _ = ratio_text(ours, theirs)
    mine_capped, other_capped = median_wall(ours)[1], median_wall(theirs)[1]
    if value <= goal and not mine_capped:
        return "met"
    if other_capped and not mine_capped:
        return "not proven at this budget (the bound is above the goal; raise --budget)"
    return "NOT met"


def print_summary(ours: Sequence[Run], theirs: Sequence[Run], other_name: str, goal: float,
                  agree: bool) -> None:
    """The lines the README quotes: medians, the ratio, the goal and whether results agree."""
    mine, mine_capped = median_wall(ours)
    other, other_capped = median_wall(theirs)
    _, ratio = ratio_text(ours, theirs)
    print(f"\nmedian wall: leadline {'>' if mine_capped else ''}{mine:.2f} s, "
          f"{other_name} {'>' if other_capped else ''}{other:.2f} s")
    print(f"ratio leadline/{other_name}: {ratio}   goal <= {goal:g}: {goal_verdict(ours, theirs, goal)}")
    print(f"results: {'identical port states' if agree else 'DIFFERENT port states (see above)'}")


def print_old_summary(runs: dict[str, list[Run]], other_name: str) -> None:
    """With --old-tree: the older tree's medians beside the current code's, wall and CPU."""
    if "old" not in runs:
        return
    new, old, other = runs["leadline"], runs["old"], runs[other_name]
    for label, pick in (("wall", lambda r: r.wall), ("cpu", lambda r: r.cpu)):
        mine, before, theirs = (statistics.median(pick(r) for r in group) for group in (new, old, other))
        print(f"median {label}: leadline {mine:.2f} s, old {before:.2f} s, {other_name} {theirs:.2f} s; "
              f"new/old {mine / before:.3f}, old/{other_name} {before / theirs:.3f}")


def side_by_side(lab: Lab, commands: dict[str, list[str]], repeat: int,
                 budget: float) -> dict[str, list[Run]]:
    """Run every tool `repeat` times, interleaved, so drift in the machine hits all alike."""
    runs: dict[str, list[Run]] = {tool: [] for tool in commands}
    for round_number in range(repeat):
        for tool, argv in commands.items():
            run = timed_run(lab, tool, argv, budget)
            print(f"  round {round_number + 1}: {tool} {run.shown_wall} s, cpu {run.cpu:.2f} s, "
                  f"load {run.load}", flush=True)
            runs[tool].append(run)
    return runs


_NMAP_PROGRESS = re.compile(r"About (\d+(?:\.\d+)?)% done")


def projected_total(run: Run) -> float | None:
    """What a capped nmap run would have taken, from the last progress line it printed.

    Needs `--stats-every` on nmap's command line; None without a usable line.
    """
    found = _NMAP_PROGRESS.findall(run.stdout)
    if not found or float(found[-1]) <= 0:
        return None
    return run.wall / (float(found[-1]) / 100)


def impaired_benchmark(prefix: str, title: str, flags: list[str],
                       impair: Callable[[Lab], None], options: argparse.Namespace,
                       ratio_goal: float) -> tuple[dict[str, list[Run]], bool]:
    """Scan the course server clean (the reference), impair it, then run both tools.

    Under loss or a reset cap the honest answer is still the clean one, so
    both tools are compared with nmap's clean scan.  Returns the runs and
    whether every finished run agrees with the reference.
    """
    with bench_lab(prefix) as lab:
        clean = timed_run(lab, "nmap", ["nmap", *flags, COURSE], options.budget)
        impair(lab)
        runs = side_by_side(lab, {
            "leadline": [LEADLINE, *flags, COURSE],
            "nmap": ["nmap", *flags, "--stats-every", "10s", COURSE],
        }, options.repeat, options.budget)
    reference = states(clean, COURSE)
    print_runs("clean reference (before impairing)", [(clean, compare(clean, reference, COURSE))])
    rows = [(run, compare(run, reference, COURSE, with_reason=False))
            for tool in runs for run in runs[tool]]
    print_runs(f"{title}, {options.repeat} run(s) each", rows)
    for run in runs["nmap"]:
        if run.capped and (total := projected_total(run)) is not None:
            print(f"nmap was capped at {run.wall:g} s; its last progress line projects roughly "
                  f"{total:.0f} s in all (ratio then about {median_wall(runs['leadline'])[0] / total:.4f}; "
                  f"nmap's estimate is rough under loss)")
    agree = all(comparison.same for run, comparison in rows if not run.capped)
    print_summary(runs["leadline"], runs["nmap"], "nmap", ratio_goal, agree)
    return runs, agree
