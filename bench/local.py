"""``leadline local`` against ``ss`` on a namespace holding 10,000 sockets.

The benchmark makes its own namespace (prefix "lclb"), starts one process
there that holds 4,000 TCP listeners, 4,000 UDP sockets and 1,000
loopback connections (both ends: 2,000 sockets), then runs, alternately
and the same number of times, ``leadline local --listening`` against
``ss -tulpn`` and ``leadline local`` against ``ss -tuapn``.  Both tools
write to a file; the listing sizes are compared so a fast wrong answer
cannot win.  Prints each run, the median, min and max, and the ratio of
medians (goal: under 2), with each side's quartiles and CPU time (user +
system: less disturbed than wall time by other work on a shared machine).  The namespace and the process are removed at
the end, also on an error or Ctrl-C.  Run as root from the repository root:

    .venv/bin/python bench/local.py [--repeat 7] [--sockets 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LEADLINE = str(Path(sys.executable).parent / "leadline")
GOAL = 2.0
NS = f"lclb-{os.getpid()}"

_HOLDER = r'''
import resource, socket, sys, time
listeners, datagrams, pairs = (int(v) for v in sys.argv[1:4])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
for i in range(listeners):
    s = socket.socket(); s.bind(("127.0.0.1", 10000 + i)); s.listen(8); held.append(s)
for i in range(datagrams):
    u = socket.socket(socket.AF_INET6 if i % 2 else socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("::1" if i % 2 else "127.0.0.1", 10000 + i)); held.append(u)
server = socket.socket(); server.bind(("127.0.0.1", 9999)); server.listen(pairs + 8); held.append(server)
for _ in range(pairs):
    held.append(socket.create_connection(("127.0.0.1", 9999))); held.append(server.accept()[0])
print(len(held), flush=True)
time.sleep(float(sys.argv[4]))
'''


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _timed(argv: list[str], out: Path) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run."""
    with open(out, "w") as handle:
        cpu = _cpu()
        start = time.perf_counter()
        done = subprocess.run(["ip", "netns", "exec", NS, *argv], stdout=handle, stderr=subprocess.PIPE, text=True,
                              timeout=120, check=False)
        wall = time.perf_counter() - start
        cpu = _cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {done.stderr.strip()}")
    return wall, cpu


def _count_ours(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.startswith(("tcp ", "udp ")))


def _count_ss(path: Path) -> int:
    return len(path.read_text().splitlines()) - 1


def _summary(name: str, walls: list[float], cpus: list[float]) -> str:
    quartiles = statistics.quantiles(walls, n=4)
    return (f"{name:<28} median {statistics.median(walls) * 1000:6.1f} ms  "
            f"min {min(walls) * 1000:6.1f}  quartiles {quartiles[0] * 1000:6.1f}-{quartiles[2] * 1000:6.1f}  "
            f"max {max(walls) * 1000:6.1f}  cpu median {statistics.median(cpus) * 1000:6.1f}")


def _compare(ours: list[str], theirs: list[str], repeat: int, scratch: Path) -> tuple[float, bool]:
    walls: dict[str, list[float]] = {" ".join(ours): [], " ".join(theirs): []}
    cpus: dict[str, list[float]] = {" ".join(ours): [], " ".join(theirs): []}
    counts = {}
    for _ in range(repeat):
        for argv, counter in ((ours, _count_ours), (theirs, _count_ss)):
            path = scratch / ("ours" if argv is ours else "theirs")
            wall, cpu = _timed(argv, path)
            walls[" ".join(argv)].append(wall)
            cpus[" ".join(argv)].append(cpu)
            counts[" ".join(argv)] = counter(path)
    for name, values in walls.items():
        print(_summary(name.replace(LEADLINE, "leadline"), values, cpus[name]), f"  {counts[name]} sockets")
    ratio = statistics.median(walls[" ".join(ours)]) / statistics.median(walls[" ".join(theirs)])
    same = counts[" ".join(ours)] == counts[" ".join(theirs)]
    print(f"ratio {ratio:.2f} (goal < {GOAL:g}){'' if same else '   DIFFERENT COUNTS'}\n")
    return ratio, same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--sockets", type=int, default=10000, help="total sockets held (default 10000)")
    options = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/local.py needs root (it makes a network namespace)")
    # Stale or missing bytecode would be compiled again on every run where PYTHONDONTWRITEBYTECODE is set.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(__file__).resolve().parents[1] / "src" / "leadline")],
                   check=True)
    pairs = options.sockets // 10
    listeners = (options.sockets - 2 * pairs - 1) // 2  # the 1: the connections' listener
    datagrams = options.sockets - 2 * pairs - 1 - listeners
    subprocess.run(["ip", "netns", "add", NS], check=True)
    holder = None
    try:
        subprocess.run(["ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up"], check=True)
        holder = subprocess.Popen(["ip", "netns", "exec", NS, sys.executable, "-c", _HOLDER, str(listeners),
                                   str(datagrams), str(pairs), "900"], stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None
        held = int(holder.stdout.readline())
        print(f"namespace {NS}: {held} sockets held by pid {holder.pid} "
              f"({listeners} TCP listening, {datagrams} UDP, {pairs} connections); {options.repeat} runs each\n")
        results = []
        with tempfile.TemporaryDirectory() as scratch:
            results.append(_compare([LEADLINE, "local", "--listening"], ["ss", "-tulpn"], options.repeat, Path(scratch)))
            results.append(_compare([LEADLINE, "local"], ["ss", "-tuapn"], options.repeat, Path(scratch)))
        print(json.dumps({"listening_ratio": round(results[0][0], 3), "all_ratio": round(results[1][0], 3)}))
        return 0 if all(ratio < GOAL and same for ratio, same in results) else 1
    finally:
        if holder is not None:
            holder.kill()
            holder.wait(timeout=10)
            if holder.stdout is not None:
                holder.stdout.close()
        subprocess.run(["ip", "netns", "del", NS], check=False)


if __name__ == "__main__":
    raise SystemExit(main())
