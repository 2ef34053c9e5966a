"""Fixtures for tests against real kernels: the practice lab, shared by the whole suite.

The lab uses the prefix "llt" (or LEADLINE_TEST_LAB's), so it never touches a
user's "ll" lab.  Two test sessions on one machine share it: each holds a
shared lock while it runs, and only the last one out removes the lab.  Sessions
testing different versions of the topology set different prefixes, so neither
rebuilds the other's lab under it.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.lab import Lab, practice_topology

PRACTICE_PREFIX = os.environ.get("LEADLINE_TEST_LAB", "llt")


def lab_prefix(tag: str) -> str:
    """The prefix of a test module's own lab: derived from the suite's, so two suites never share one."""
    return f"{PRACTICE_PREFIX}{tag}"


LOCK_PATH = Path("/run/leadline-lab") / f"{PRACTICE_PREFIX}.lock"
LOCK_WAIT = 60.0


def _lock(handle: int, mode: int) -> None:
    """flock with a bounded wait, so a stuck session cannot hang another."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                pytest.fail(f"another test session holds {LOCK_PATH} for over {LOCK_WAIT:g} s",
                            pytrace=False)
            time.sleep(0.1)


@pytest.fixture(scope="session")
def practice_lab() -> Iterator[Lab]:
    """The standard practice network (docs/lab.md), built once per session."""
    if os.geteuid() != 0:
        pytest.fail("the lab tests need root (network namespaces): run the suite as root",
                    pytrace=False)
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o600)
    lab = Lab(PRACTICE_PREFIX)
    try:
        _lock(handle, fcntl.LOCK_EX)
        try:
            lab.up(practice_topology())  # reuses a healthy lab, rebuilds anything else
        finally:
            _lock(handle, fcntl.LOCK_SH)
        yield lab
    finally:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            lab.down()
        except BlockingIOError:
            pass  # another session still uses the lab; it removes it when done
        finally:
            os.close(handle)


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
