"""Fixtures for tests against real kernels: the practice lab, shared by the whole suite.

The lab uses the prefix "llt" (or LEADLINE_TEST_LAB's), so it never touches a
user's "ll" lab.  Two test sessions on one machine share it: each holds a
shared lock while it runs, and only the last one out removes the lab.  Sessions
testing different versions of the topology set different prefixes, so neither
rebuilds the other's lab under it.

Running the suite on several workers (``make test``: pytest-xdist, ``-n``;
the scheduler is ours, ``pytest_xdist_make_scheduler`` below).  Most lab time
is waiting (timeouts, silent ports, daemons starting), so workers overlap the
waits.  Two rules keep that safe; a new lab test follows them
(docs/design.md, "Tests"):

* a lab or oracle module (anything under tests/lab/ or tests/oracle/) runs
  whole on one worker, in file order, so its module-scoped fixtures (a lab of
  its own, fixed namespace names) are built once and never twice at the same
  time; modules sharing one lab are listed in ``SHARED_LABS`` and run as one
  group; unit tests are dealt out one by one;
* a test that measures time or floods (a wall-clock bound, a rate, a
  ratio), or changes the shared practice lab (firewall rules, sysctls, a
  listener on one of its hosts), or needs the lab quiet (the idle scan's
  zombie), is marked ``@pytest.mark.serial``: it runs
  while no other test of the session runs (an exclusive lock that every
  other test holds shared).

``make test`` runs the suite in two phases: ``-m 'not serial'`` on the
workers, then ``-m serial`` in one process, so no serial test waits for the
workers to drain (the lock above then only matters to a plain ``pytest -n``).
The first phase sets LEADLINE_TEST_KEEP_LAB so the second reuses the
practice lab instead of building it again.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from leadline.lab import Lab, practice_topology

PRACTICE_PREFIX = os.environ.get("LEADLINE_TEST_LAB", "llt")


def lab_prefix(tag: str) -> str:
    """The prefix of a test module's own lab: derived from the suite's, so two suites never share one."""
    return f"{PRACTICE_PREFIX}{tag}"


LOCK_PATH = Path("/run/leadline-lab") / f"{PRACTICE_PREFIX}.lock"
BUILD_LOCK_PATH = LOCK_PATH.with_suffix(".build.lock")
# A session waits this long for another to finish building the lab; under a
# loaded machine a build takes minutes, and several workers wait for one.
LOCK_WAIT = 600.0


def _lock(handle: int, mode: int, path: Path = LOCK_PATH, wait: float = LOCK_WAIT) -> None:
    """flock with a bounded wait, so a stuck session cannot hang another."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                pytest.fail(f"another test session holds {path} for over {wait:g} s", pytrace=False)
            time.sleep(0.1)


# --- Several workers: groups and the serial lock (see the module docstring) ---

def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "serial: measures time, floods or changes the practice lab; runs while no other test runs")
    if _is_controller(config) and _xdist_on(config):
        config.stash[_SERIAL_DIR] = tempfile.mkdtemp(prefix="leadline-suite-")


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def _xdist_on(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and config.pluginmanager.hasplugin("xdist")


_SERIAL_DIR = pytest.StashKey[str]()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """The controller tells each worker where the session's serial lock lives."""
    node.workerinput["leadline_serial_dir"] = node.config.stash[_SERIAL_DIR]


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SERIAL_DIR in config.stash:
        shutil.rmtree(config.stash[_SERIAL_DIR], ignore_errors=True)


# Modules that share one lab of fixed names (or one session-scoped lab) run in
# one group, on one worker, one after the other.
SHARED_LABS = {
    "tests/lab/test_traceroute_chain.py": "chain",  # tests/lab/chainlab.py's session-scoped chain
    "tests/oracle/test_traceroute_vs_nmap.py": "chain",
}


# Groups that take the longest (seconds of test time, measured on the 2-core machine) are dealt out
# first, so the run does not end with one worker finishing a long module while the others idle.
# A module not listed here starts in file order after these; the order only changes the wall time.
LONG_GROUPS = {
    "tests/lab/test_history_lab.py": 170,
    "tests/lab/test_cluster_lab.py": 140,
    "tests/lab/test_scripts_lab.py": 100,
    "tests/oracle/test_aggressive_vs_nmap.py": 95,
    "tests/lab/test_service_lab.py": 80,
    "tests/oracle/test_raw_vs_nmap.py": 75,
    "tests/lab/test_os_lab.py": 65,
    "tests/lab/test_raw_cli.py": 60,
    "tests/oracle/test_discovery_vs_nmap.py": 60,
    "lab:chain": 50,
    "tests/lab/test_udp_lab.py": 45,
    "tests/lab/test_connect_engine.py": 40,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long groups first (a stable sort: a module's tests keep their order)."""
    items.sort(key=lambda item: -LONG_GROUPS.get(suite_group(item.nodeid), 0))


def suite_group(nodeid: str) -> str:
    """The unit of work a worker takes whole: a shared lab's group, a lab or oracle module, or one test."""
    path = nodeid.split("::")[0]
    if path in SHARED_LABS:
        return f"lab:{SHARED_LABS[path]}"
    if path.startswith(("tests/lab/", "tests/oracle/")):
        return path
    return nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Deal work out by suite_group.

    Decided from node ids in the controller, which sees no marks: xdist's own
    loadgroup tags node ids with xdist_group marks, which pytest 9.2 no
    longer lets it do, so it would silently put nothing together.
    """
    from xdist.scheduler import LoadScopeScheduling

    class SuiteScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return suite_group(nodeid)

    return SuiteScheduling(config, log)


_FILE_SECONDS = pytest.StashKey[dict[str, float]]()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add up each file's setup, call and teardown time (in the controller under xdist)."""
    config = _CONFIG[0] if _CONFIG else None
    if config is not None:
        totals = config.stash.setdefault(_FILE_SECONDS, {})
        path = report.nodeid.split("::")[0]
        totals[path] = totals.get(path, 0.0) + report.duration


_CONFIG: list[pytest.Config] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    _CONFIG[:] = [session.config]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The ten files that cost the most test time: where a slower suite comes from."""
    totals = config.stash.get(_FILE_SECONDS, {})
    if not totals or hasattr(config, "workerinput"):
        return
    terminalreporter.write_sep("=", "test time per file (setup + call + teardown, summed over workers)")
    for path, seconds in sorted(totals.items(), key=lambda kv: -kv[1])[:10]:
        terminalreporter.write_line(f"{seconds:8.1f}s  {path}")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # outside pytest-timeout: the wait is not the test's time
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    """Under xdist, a serial test holds the session's lock exclusively, every other test shared.

    A waiting serial test holds the gate, so tests arriving later wait
    behind it instead of starving it with shared locks of their own.
    """
    folder = getattr(item.config, "workerinput", {}).get("leadline_serial_dir")
    if folder is None:
        yield
        return
    mode = fcntl.LOCK_EX if item.get_closest_marker("serial") else fcntl.LOCK_SH
    gate = os.open(Path(folder) / "gate", os.O_RDWR | os.O_CREAT, 0o600)
    handle = os.open(Path(folder) / "serial", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(handle, mode)
        finally:
            os.close(gate)
        yield
    finally:
        os.close(handle)


@pytest.fixture(scope="session")
def practice_lab() -> Iterator[Lab]:
    """The standard practice network (docs/lab.md), built once for all sessions using it.

    Two locks: the build lock, held exclusively only while the lab is built
    or removed, and the users lock, held shared by every session for as long
    as it runs.  A session arriving while others run waits only for a build
    in progress, never for them to finish; the last one out (the users lock
    free) removes the lab.
    """
    if os.geteuid() != 0:
        pytest.fail("the lab tests need root (network namespaces): run the suite as root",
                    pytrace=False)
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    build = os.open(BUILD_LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o600)
    users = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o600)
    lab = Lab(PRACTICE_PREFIX)
    try:
        _lock(build, fcntl.LOCK_EX, BUILD_LOCK_PATH)
        try:
            lab.up(practice_topology())  # reuses a healthy lab, rebuilds anything else
            _lock(users, fcntl.LOCK_SH)  # only a remover holding the build lock takes it exclusively
        finally:
            fcntl.flock(build, fcntl.LOCK_UN)
        yield lab
    finally:
        try:
            _lock(build, fcntl.LOCK_EX, BUILD_LOCK_PATH)
            fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not os.environ.get("LEADLINE_TEST_KEEP_LAB"):  # `make test`'s first phase leaves it to the second
                lab.down()
        except BlockingIOError:
            pass  # another session still uses the lab; it removes it when done
        finally:
            os.close(users)
            os.close(build)


def scan_in_lab(lab: Lab, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a command (nmap, leadline, ...) in the lab's scanner namespace, output captured."""
    return lab.run(lab.scanner, argv, timeout=timeout)


# A probe run inside a lab namespace.  Input: JSON list of probes; output:
# JSON list of outcomes, in order.  Probes run at once, so silent ports cost
# one timeout in all.
#   ["tcp", addr, port, timeout]  -> "open" | errno name ("ECONNREFUSED", ...) | "timeout"
#   ["udp", addr, port, timeout]  -> "reply" | errno name | "timeout"
#   ["icmp", addr, ttl, timeout]  -> ["reply", src, ttl] | ["time-exceeded", src, ttl]
#                                   | ["unreachable", src, code] | ["timeout"]
_PROBE_SCRIPT = r'''
import errno, json, os, select, socket, struct, sys, time
from concurrent.futures import ThreadPoolExecutor

def tcp(addr, port, timeout):
    s = socket.socket(); s.settimeout(timeout)
    try:
        code = s.connect_ex((addr, port))
    except socket.timeout:
        return "timeout"
    finally:
        s.close()
    if code == 0: return "open"
    if code in (errno.EAGAIN, errno.EINPROGRESS): return "timeout"
    return errno.errorcode.get(code, str(code))

def udp(addr, port, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(timeout)
    try:
        s.connect((addr, port)); s.send(b"leadline-lab\n"); s.recv(2048); return "reply"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    finally:
        s.close()

def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF); total += total >> 16
    return ~total & 0xFFFF

def icmp(addr, ttl, timeout, ident):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
    header = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"leadline"
    s.sendto(header[:2] + struct.pack("!H", checksum(header)) + header[4:], (addr, 0))
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([s], [], [], left)[0]: break
            data, (src, _) = s.recvfrom(4096)
            ihl = (data[0] & 15) * 4; kind, code = data[ihl], data[ihl + 1]
            if kind == 0 and struct.unpack("!H", data[ihl + 4:ihl + 6])[0] == ident:
                return ["reply", src, data[8]]
            if kind in (3, 11):
                inner = data[ihl + 8:]; inner_ihl = (inner[0] & 15) * 4
                if struct.unpack("!H", inner[inner_ihl + 4:inner_ihl + 6])[0] == ident:
                    return ["time-exceeded", src, data[8]] if kind == 11 else ["unreachable", src, code]
        return ["timeout"]
    finally:
        s.close()

probes = json.loads(sys.argv[1])
def one(item):
    index, (kind, addr, arg, timeout) = item
    if kind == "tcp": return tcp(addr, arg, timeout)
    if kind == "udp": return udp(addr, arg, timeout)
    return icmp(addr, arg, timeout, (os.getpid() + index * 7919) & 0xFFFF)
with ThreadPoolExecutor(max_workers=64) as pool:
    print(json.dumps(list(pool.map(one, enumerate(probes)))))
'''


def probe_in_lab(lab: Lab, probes: list[tuple[str, str, int, float]],
                 host: str | None = None) -> list[object]:
    """Send small socket probes from a lab host (the scanner by default); outcomes in order."""
    done = lab.run(host or lab.scanner, [sys.executable, "-c", _PROBE_SCRIPT, json.dumps(probes)],
                   timeout=30)
    assert done.returncode == 0, done.stderr
    outcomes: list[object] = json.loads(done.stdout)
    return outcomes


def _world_runnable(path: str) -> bool:
    """Whether any user may run ``path``: every directory above it searchable, the file executable."""
    import stat

    real = Path(os.path.realpath(path))
    try:
        return all(p.stat().st_mode & stat.S_IXOTH for p in (real, *real.parents))
    except OSError:
        return False


@pytest.fixture(scope="session")
def unprivileged_leadline() -> Iterator[list[str]]:
    """A command line that runs leadline as user nobody, wherever the checkout lives.

    A clone in a private directory (mode 0700, as under /root or from mktemp -d)
    cannot be read by nobody, so the package is copied to a world-readable
    directory and run by the system interpreter (leadline needs nothing
    beyond the standard library at run time).
    """
    import shutil

    import leadline

    readable = Path(tempfile.mkdtemp(prefix="leadline-unpriv-"))
    try:
        shutil.copytree(Path(leadline.__file__).parent, readable / "leadline",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for path in (readable, *readable.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        python = next(p for p in (os.path.realpath(sys.executable), "/usr/bin/python3") if _world_runnable(p))
        yield ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
               "env", f"PYTHONPATH={readable}", "PYTHONDONTWRITEBYTECODE=1", python, "-m", "leadline"]
    finally:
        shutil.rmtree(readable, ignore_errors=True)
