"""Shards, resume and the Dask cluster against real kernels, in a lab of three "machines".

The lab (``cluster_topology``): the scanner namespace (Dask scheduler and
leadline's coordinator), two worker namespaces ``wa`` and ``wb`` with their
own addresses and routes, a router, and a target answering for
198.19.64.0/23; the rest of 198.19.64.0/22 is routed to the target, which
drops it (hosts down).  Every scan runs inside a lab namespace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.lab import Lab
from leadline.lab.topology import cluster_topology
from tests.conftest import PRACTICE_PREFIX

pytestmark = pytest.mark.lab

BIN = Path(sys.executable).parent
LEADLINE = str(BIN / "leadline")
DASK = str(BIN / "dask")
RANGE = "198.19.64.0/22"  # 512 answering, 512 silent
SCHEDULER = "tcp://198.18.82.10:8786"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.fail("the lab tests need root (network namespaces)", pytrace=False)
    lab = Lab(f"{PRACTICE_PREFIX[:7]}k")  # not "c": that is the router chain's (tests/lab/chainlab.py)
    lab.down()
    lab.up(cluster_topology())
    try:
        yield lab
    finally:
        lab.down()


def hosts(path: Path) -> dict[str, tuple[object, ...]]:
    """Address -> (state, reason, ports) of every <host>; fails on an address written twice."""
    root = ET.parse(path).getroot()
    found: dict[str, tuple[object, ...]] = {}
    for host in root.iter("host"):
        address = host.find("address")
        status = host.find("status")
        assert address is not None and status is not None
        addr = address.get("addr", "")
        assert addr not in found, f"{addr} written twice"
        ports = tuple(sorted((p.get("portid"), p.find("state").get("state"))  # type: ignore[union-attr]
                             for p in host.iter("port")))
        found[addr] = (status.get("state"), status.get("reason"), ports)
    return found


def workers(path: Path) -> set[str]:
    return {h.get("comment", "").removeprefix("scanned by ") for h in ET.parse(path).getroot().iter("host")}


def scan(lab: Lab, argv: list[str], out: Path, timeout: float = 120) -> dict[str, tuple[object, ...]]:
    done = lab.run(lab.scanner, [LEADLINE, *argv, "-oX", str(out)], timeout=timeout)
    assert done.returncode == 0, done.stderr
    return hosts(out)


SWEEP = ["-sn", "-n", "-v", RANGE]
PORTS = ["-sS", "-Pn", "-n", "-p", "22,80,443", "198.19.64.0/24"]


def test_the_union_of_three_shards_is_the_full_run(lab: Lab, tmp_path: Path) -> None:
    full = scan(lab, SWEEP, tmp_path / "full.xml")
    assert len(full) == 1024 and sum(h[0] == "up" for h in full.values()) == 512
    union: dict[str, tuple[object, ...]] = {}
    for i in (1, 2, 3):
        part = scan(lab, [*SWEEP, "--shards", f"{i}/3", "--seed", "7"], tmp_path / f"s{i}.xml")
        assert 250 < len(part) < 430  # about a third each
        assert not set(part) & set(union), "a host in two shards"
        union.update(part)
    assert union == full


def interrupted_then_resumed(lab: Lab, tmp_path: Path, signum: int, kind: str) -> dict[str, tuple[object, ...]]:
    out = tmp_path / f"run.{kind}"
    flag = "-oX" if kind == "xml" else "-oJ"
    argv = [LEADLINE, "-sS", "-Pn", "-n", "-p", "1-60", "--max-rate", "3000", "--max-hostgroup", "8",
            "198.19.64.0/24", flag, str(out)]
    child = lab.popen(lab.scanner, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    deadline = time.monotonic() + 30
    marker = "<host" if kind == "xml" else '"address"'
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count(marker) < 40):
        time.sleep(0.05)
    os.kill(child.pid, signum)
    child.wait(timeout=30)
    written = out.read_text().count(marker)
    assert 40 <= written < 256, f"the interrupt came too late or too early ({written} hosts)"
    resumed = lab.run(lab.scanner, [LEADLINE, "--resume", str(out)], timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    return _read(out, kind)


def _read(path: Path, kind: str) -> dict[str, tuple[object, ...]]:
    if kind == "xml":
        return hosts(path)
    from leadline.output.resumed import read_json_run

    run = read_json_run(path.read_text())
    assert run.finished
    found: dict[str, tuple[object, ...]] = {}
    for h in run.hosts:
        assert h.address not in found
        found[h.address] = (str(h.status), str(h.status_reason),
                            tuple(sorted((str(p.port), str(p.state)) for p in h.ports if str(p.state) != "closed")))
    return found


@pytest.mark.parametrize("kind", ["xml", "json"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_run_resumed_equals_an_uninterrupted_one(lab: Lab, tmp_path: Path, signum: int,
                                                                kind: str) -> None:
    flag = "-oX" if kind == "xml" else "-oJ"
    out = tmp_path / f"full.{kind}"
    done = lab.run(lab.scanner, [LEADLINE, "-sS", "-Pn", "-n", "-p", "1-60", "198.19.64.0/24", flag, str(out)],
                   timeout=120)
    assert done.returncode == 0, done.stderr
    full = _read(out, kind)
    assert len(full) == 256
    assert interrupted_then_resumed(lab, tmp_path, signum, kind) == full


def test_local_cluster_of_two_equals_one_process(lab: Lab, tmp_path: Path) -> None:
    for argv in (SWEEP, PORTS):
        one = scan(lab, argv, tmp_path / "one.xml")
        two = scan(lab, [*argv, "--cluster", "local:2"], tmp_path / "two.xml")
        assert two == one
        assert len(workers(tmp_path / "two.xml")) == 2  # both workers scanned, and the report says who


def started_in(lab: Lab, host: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as f:  # the child keeps its own copy of the descriptor
        return lab.popen(host, argv, stdout=f, stderr=subprocess.STDOUT)


def start_cluster(lab: Lab, tmp_path: Path) -> tuple[subprocess.Popen[bytes], dict[str, subprocess.Popen[bytes]]]:
    scheduler = started_in(lab, "scanner", [DASK, "scheduler", "--host", "198.18.82.10", "--port", "8786",
                                            "--no-dashboard"], tmp_path / "scheduler.log")
    time.sleep(2)
    started = {name: started_in(lab, name, [DASK, "worker", SCHEDULER, "--nthreads", "1", "--no-nanny",
                                            "--no-dashboard", "--resources", "rawsock=1", "--host", address],
                                tmp_path / f"{name}.log")
               for name, address in (("wa", "198.18.82.11"), ("wb", "198.18.82.12"))}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = "".join((tmp_path / f"{n}.log").read_text(errors="replace") for n in ("wa", "wb"))
        if text.count("Registered to") >= 2:
            break
        time.sleep(0.2)
    return scheduler, started


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for p in processes:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)


def test_workers_on_two_machines_give_the_same_result_and_survive_losing_one(lab: Lab, tmp_path: Path) -> None:
    scheduler, started = start_cluster(lab, tmp_path)
    try:
        one = scan(lab, SWEEP, tmp_path / "one.xml")
        two = scan(lab, [*SWEEP, "--cluster", SCHEDULER], tmp_path / "two.xml")
        assert two == one
        assert {w.split(":")[1] for w in workers(tmp_path / "two.xml")} == {"//198.18.82.11", "//198.18.82.12"}

        slow = ["-sS", "-Pn", "-n", "-p", "1-40", "--max-rate", "2500", "198.19.64.0/23"]
        reference = scan(lab, slow, tmp_path / "ref.xml", timeout=180)
        out = tmp_path / "killed.xml"
        coordinator = lab.popen(lab.scanner, [LEADLINE, *slow, "--cluster", SCHEDULER, "-oX", str(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(3)
        assert started["wb"].poll() is None and coordinator.poll() is None  # killed mid-scan
        started["wb"].kill()  # a machine lost mid-scan: its task goes to the other worker
        _, err = coordinator.communicate(timeout=240)
        assert coordinator.returncode == 0, err.decode(errors="replace")
        assert hosts(out) == reference  # nothing lost, nothing twice (hosts() fails on a repeat)
        assert len(reference) == 512
        by = [h.get("comment", "") for h in ET.parse(out).getroot().iter("host")]
        assert sum("198.18.82.11" in c for c in by) > len(by) // 2  # wa took over wb's unfinished task
    finally:
        stop([*started.values(), scheduler])
