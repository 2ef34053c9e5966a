"""The scan history against real scans of the practice lab, a real PostgreSQL, ndiff and Chromium.

- a scan saved to SQLite and to a PostgreSQL server (Debian's, started here
  in a temporary directory as the postgres user, stopped at the end) reads
  back equal to the scan's own JSON;
- ``db import`` of nmap's XML of the lab equals our scan of the same
  targets in ``db hosts``;
- an interrupted ``--save`` scan keeps its finished hosts;
- ``leadline diff`` reports the same host and port changes as ``ndiff`` on
  pairs of scans made before and after firewall rules and daemons changed;
- the report opens in headless Chromium with no network, with no console
  error, with one map node per scanner, router and host, and a hostile
  HTTP title shown as text (screenshots in build/test-artefacts/).

Every scan runs in the lab's scanner namespace; the lab's prefix is
LEADLINE_TEST_LAB's, and the firewall rules and daemons changed here are
taken back at the end.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leadline.lab import Lab
from leadline.lab.practice import COURSE, FAR, FIREWALL, IOT, ROUTER1, ROUTER2
from tests.conftest import probe_in_lab, scan_in_lab
from tests.lab.chromium import open_page

pytestmark = [pytest.mark.lab]

LEADLINE = str(Path(sys.executable).parent / "leadline")
PORTS = "1-200,7001,7002,8080,50000-50010"
TARGETS = [COURSE, IOT, FIREWALL, FAR]
ARTEFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artefacts"
TAG = "history"
TITLE = "<script>alert(1)</script>"


def leadline(lab: Lab, *argv: str, timeout: float = 120, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    done = scan_in_lab(lab, [LEADLINE, *argv], timeout=timeout)
    assert done.returncode in ok, done.stderr
    return done


def local(*argv: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    """leadline db/diff/report: no packets, so they run here."""
    done = subprocess.run([LEADLINE, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode in ok, done.stderr
    return done


def nmap(lab: Lab, *argv: str) -> None:
    done = scan_in_lab(lab, ["nmap", *argv], timeout=180)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL server of its own: initdb and pg_ctl as the postgres user, a Unix socket only."""
    base = Path(tempfile.mkdtemp(prefix="leadline-pg-"))
    data, sock = base / "data", base / "sock"
    for d in (base, data, sock):
        d.mkdir(exist_ok=True)
        shutil.chown(d, "postgres", "postgres")
    base.chmod(0o755)
    port = 40000 + os.getpid() % 20000
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_postgres, "initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, capture_output=True, timeout=120)
    options = f"-k {sock} -c listen_addresses='' -p {port} -c fsync=off"
    subprocess.run([*as_postgres, "pg_ctl", "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "-t", "60",
                    "start"], check=True, capture_output=True, timeout=90)
    try:
        yield f"postgresql://postgres@/postgres?host={sock}&port={port}"
    finally:
        subprocess.run([*as_postgres, "pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True,
                       timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    return tmp_path


# -- the store ---------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_saved_scan_reads_back_equal_to_its_own_json(practice_lab: Lab, work: Path, backend: str,
                                                      request: pytest.FixtureRequest) -> None:
    url = f"sqlite:///{work}/scans.db" if backend == "sqlite" else request.getfixturevalue("postgres")
    if backend == "postgresql":
        local("db", "list", "--db", url)  # the schema is created on first use
    before = json.loads(local("db", "list", "--db", url, "-oJ", "-").stdout)
    leadline(practice_lab, "-sS", "-sV", "-p", "22,80,50007,50008,50009", "-n", "--db", url, "-oJ", str(work / "own.json"),
             *TARGETS)
    runs = json.loads(local("db", "list", "--db", url, "-oJ", "-").stdout)
    (run,) = runs[len(before):]
    assert run["status"] == "complete" and run["hosts_up"] == 4
    local("db", "export", str(run["id"]), "--db", url, "-oJ", str(work / "back.json"))
    own, back = json.loads((work / "own.json").read_text()), json.loads((work / "back.json").read_text())
    assert back["hosts"] == own["hosts"] and back["runstats"] == own["runstats"]
    assert {k: v for k, v in back.items() if k not in ("hosts", "runstats")} == \
           {k: v for k, v in own.items() if k not in ("hosts", "runstats")}


def _current(url: str) -> dict[str, list[tuple[str, int, str]]]:
    doc = json.loads(local("db", "hosts", "--db", url, "--state", "all", "-oJ", "-").stdout)
    return {h["address"]: sorted((p["protocol"], p["port"], p["state"]) for p in h["ports"]) for h in doc}


def test_nmaps_xml_imported_equals_our_scan_in_db_hosts(practice_lab: Lab, work: Path) -> None:
    nmap(practice_lab, "-sS", "-p", PORTS, "-n", "-oX", str(work / "nmap.xml"), *TARGETS)
    ours, theirs = f"sqlite:///{work}/ours.db", f"sqlite:///{work}/theirs.db"
    leadline(practice_lab, "-sS", "-p", PORTS, "-n", "--db", ours, *TARGETS)
    out = local("db", "import", str(work / "nmap.xml"), "--db", theirs).stdout
    assert "run 1, 4 hosts (nmap)" in out
    mine, nmaps = _current(ours), _current(theirs)
    assert sorted(mine) == sorted(TARGETS) and mine == nmaps
    assert all(len(ports) == 214 for ports in nmaps.values())  # folded ports unfolded from <extrareasons ports>


def test_an_interrupted_saved_scan_keeps_its_finished_hosts(practice_lab: Lab, work: Path) -> None:
    from leadline.history.store import open_store

    url = f"sqlite:///{work}/scans.db"
    proc = practice_lab.popen(practice_lab.scanner, [LEADLINE, "-sT", "-p-", "-n", "--max-hostgroup", "1", "--db", url,
                                                     "-oJ", str(work / "own.json"), *TARGETS],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if (work / "scans.db").exists():
                store = open_store(url)
                runs = store.runs()
                stored = len(list(store.hosts(runs[0].id))) if runs else 0
                store.close()
                if stored:
                    break
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    store = open_store(url)
    (run,) = store.runs()
    assert run.status == "interrupted"
    kept = list(store.hosts(run.id))
    own = json.loads((work / "own.json").read_text())
    assert 1 <= len(kept) < len(TARGETS)
    assert [h.address for h in kept] == [h["address"] for h in own["hosts"]]
    finished = [h for h in kept if not h.interrupted]
    assert finished and all(len(h.ports) == 65535 for h in finished)


# -- diff against ndiff ------------------------------------------------------------------------

Change = tuple[str, str, int, str | None, str | None]


def _diff_sets(xml_text: str) -> tuple[set[tuple[str, str | None, str | None]], set[Change]]:
    """Host and port changes in an <nmapdiff> document, ndiff's or ours."""
    root = ET.fromstring(xml_text)
    hosts: set[tuple[str, str | None, str | None]] = set()
    ports: set[Change] = set()

    def state(port: ET.Element | None) -> str | None:
        s = port.find("state") if port is not None else None
        return s.get("state") if s is not None else None

    for hd in root.iter("hostdiff"):
        for side in ("a", "b"):
            whole = hd.find(f"{side}/host")
            if whole is None:
                continue
            addr = whole.find("address").get("addr")  # type: ignore[union-attr]
            st = whole.find("status").get("state")  # type: ignore[union-attr]
            hosts.add((addr, st, None) if side == "a" else (addr, None, st))  # type: ignore[arg-type]
            for p in whole.iter("port"):
                key = (addr, p.get("protocol"), int(p.get("portid") or 0))
                ports.add((*key, state(p), None) if side == "a" else (*key, None, state(p)))  # type: ignore[arg-type]
        host = hd.find("host")
        if host is None:
            continue
        addr = host.find("address").get("addr")  # type: ignore[union-attr]
        a, b = host.find("a/status"), host.find("b/status")
        if a is not None or b is not None:
            hosts.add((addr, a.get("state") if a is not None else None, b.get("state") if b is not None else None))  # type: ignore[arg-type]
        for pd in host.iter("portdiff"):
            same = pd.find("port")
            if same is not None:
                key = (addr, same.get("protocol"), int(same.get("portid") or 0))
                ports.add((*key, state(same), state(same)))  # type: ignore[arg-type]
            else:
                pa, pb = pd.find("a/port"), pd.find("b/port")
                p0 = pa if pa is not None else pb
                key = (addr, p0.get("protocol"), int(p0.get("portid") or 0))  # type: ignore[union-attr]
                ports.add((*key, state(pa), state(pb)))  # type: ignore[arg-type]
    return hosts, ports


@pytest.fixture
def changing_lab(practice_lab: Lab) -> Iterator[Lab]:
    """Our own daemons and firewall rules, taken back whatever happens."""
    yield practice_lab
    for host in ("course", "iot", "far"):
        practice_lab.clear_rules(host, TAG)


def _listen(lab: Lab, host: str, port: int) -> subprocess.Popen[bytes]:
    proc = lab.popen(host, ["socat", f"TCP-LISTEN:{port},reuseaddr,fork", "SYSTEM:true"], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    address = {"course": COURSE, "iot": IOT}[host]
    deadline = time.monotonic() + 10
    while probe_in_lab(lab, [("tcp", address, port, 1.0)]) != ["open"]:
        assert time.monotonic() < deadline, f"socat on {host}:{port} never listened"
        time.sleep(0.1)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=10)


def _scan_both(lab: Lab, work: Path, name: str) -> None:
    leadline(lab, "-sS", "-p", PORTS, "-n", "-oX", str(work / f"{name}.leadline.xml"), *TARGETS)
    nmap(lab, "-sS", "-p", PORTS, "-n", "-oX", str(work / f"{name}.nmap.xml"), *TARGETS)


@pytest.mark.serial  # opens ports and adds firewall rules on the shared practice lab: no other test may scan it meanwhile
def test_diff_reports_what_ndiff_reports(changing_lab: Lab, work: Path) -> None:
    lab = changing_lab
    echo = _listen(lab, "course", 7001)
    try:
        _scan_both(lab, work, "a")  # baseline: course 7001 open
        lab.add_rule("course", "INPUT", ["-p", "tcp", "--dport", "50008", "-j", "DROP"], TAG)  # http: filtered
        lab.add_rule("iot", "INPUT", ["-p", "tcp", "--dport", "80", "-j", "REJECT", "--reject-with", "tcp-reset"], TAG)
        _scan_both(lab, work, "b")
    finally:
        _stop(echo)
    extra = _listen(lab, "iot", 7002)
    try:
        _scan_both(lab, work, "c")  # 7001 closed on course, 7002 open on iot
        lab.add_rule("far", "INPUT", ["-j", "DROP"], TAG)  # far goes silent: down
        _scan_both(lab, work, "d")
    finally:
        _stop(extra)
    checked = 0
    for before, after in (("a", "b"), ("b", "c"), ("c", "d"), ("d", "a"), ("a", "c")):
        for scanner in ("leadline", "nmap"):
            a, b = str(work / f"{before}.{scanner}.xml"), str(work / f"{after}.{scanner}.xml")
            theirs = subprocess.run(["ndiff", "--xml", a, b], capture_output=True, text=True, timeout=60)
            ours = local("diff", "--xml", a, b, ok=(0, 1))
            assert ours.returncode == theirs.returncode == 1, (before, after, scanner, theirs.stderr)
            assert _diff_sets(ours.stdout) == _diff_sets(theirs.stdout), (before, after, scanner)
            text = local("diff", a, b, ok=(1,)).stdout
            ndiff_text = subprocess.run(["ndiff", a, b], capture_output=True, text=True, timeout=60).stdout
            assert _port_lines(text) == _port_lines(ndiff_text), (before, after, scanner)
            checked += 1
    hosts, ports = _diff_sets(local("diff", "--xml", str(work / "a.leadline.xml"), str(work / "d.leadline.xml"),
                                    ok=(1,)).stdout)
    assert (FAR, "up", None) in hosts and (COURSE, "tcp", 7001, "open", None) in ports  # closed, folded
    assert (IOT, "tcp", 7002, None, "open") in ports and (COURSE, "tcp", 50008, "open", "filtered") in ports
    assert checked == 10
    same = local("diff", str(work / "a.leadline.xml"), str(work / "a.leadline.xml"), ok=(0,))
    assert same.stdout == ""


def _port_lines(text: str) -> list[str]:
    """The +/- port rows of a text diff, spacing ignored (column widths depend on the longest cell)."""
    return sorted(" ".join(line.split()) for line in text.splitlines() if line[:1] in "+-" and "/tcp" in line)


# -- the report in Chromium --------------------------------------------------------------------

_HOSTILE_SERVER = """
import http.server, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    server_version, sys_version = sys.argv[3], ""
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer((sys.argv[1], 8080), lambda *a: Handler(*a, directory=sys.argv[2])).serve_forever()
"""


@pytest.fixture
def hostile_title(practice_lab: Lab, work: Path) -> Iterator[str]:
    """A web server on the far host whose page title and Server header are a script element.

    The title is written as HTML shows it (``&lt;script&gt;…``, which a
    browser displays as ``<script>alert(1)</script>``; nmap and leadline
    report the raw text between the tags, entities and all); the Server
    header carries the raw ``<script>alert(1)</script>`` itself.
    """
    site = work / "site"
    site.mkdir()
    (site / "index.html").write_text(f"<html><head><title>{html.escape(TITLE)}</title></head><body>hi</body></html>")
    site.chmod(0o755)
    proc = practice_lab.popen("far", [sys.executable, "-c", _HOSTILE_SERVER, FAR, str(site), TITLE],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while probe_in_lab(practice_lab, [("tcp", FAR, 8080, 1.0)]) != ["open"]:
        assert time.monotonic() < deadline, "the hostile web server never listened"
        time.sleep(0.1)
    yield FAR
    proc.terminate()
    proc.wait(timeout=10)


_CHECKS = {
    "nodes": "document.querySelectorAll('#map .node').length",
    "ids": "Array.from(document.querySelectorAll('#map .node')).map(n => n.getAttribute('data-id'))",
    "routers": "Array.from(document.querySelectorAll('#map .node.router')).map(n => n.getAttribute('data-id'))",
    "title_as_text": f"document.body.innerText.includes({json.dumps(TITLE)})",
    "escaped_title_as_text": f"document.body.innerText.includes({json.dumps(html.escape(TITLE, quote=False))})",
    "injected": "document.querySelectorAll('body script:not(#hosts-data)').length",
    "scripts": "document.scripts.length",
    "rows": "document.querySelectorAll('#table tbody tr').length",
}


def _open_report(html: Path, shot: str) -> dict[str, Any]:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page = open_page(html.resolve().as_uri(), _CHECKS, screenshot=str(ARTEFACTS / shot))
    assert page.errors == [], page.errors
    assert page.requests == [html.resolve().as_uri()], page.requests  # nothing else was even asked for
    assert (ARTEFACTS / shot).stat().st_size > 10_000
    return page.values


def _up_and_routers(xml_path: Path) -> tuple[set[str], set[str]]:
    up, routers = set(), set()
    for host in ET.parse(xml_path).getroot().iter("host"):
        status = host.find("status")
        addr = host.find("address").get("addr")  # type: ignore[union-attr]
        if status is None or status.get("state") != "up":
            continue
        up.add(addr)
        for hop in host.iter("hop"):
            if hop.get("ipaddr") and hop.get("ipaddr") != addr:
                routers.add(hop.get("ipaddr"))
    return up, routers  # type: ignore[return-value]


@pytest.mark.serial  # opens ports and adds firewall rules on the shared practice lab: no other test may scan it meanwhile
def test_report_of_nmaps_traceroute_of_the_lab_in_chromium(practice_lab: Lab, work: Path, hostile_title: str) -> None:
    xml_path = work / "traced.xml"
    nmap(practice_lab, "-sS", "-n", "-p", "22,80,8080,50007,50008", "--traceroute", "--script", "http-title,http-server-header",
         "-oX", str(xml_path), "198.18.1.0/24", "198.18.3.0/24")
    up, routers = _up_and_routers(xml_path)
    assert {ROUTER1, ROUTER2} <= routers and {COURSE, FAR} <= up
    local("report", str(xml_path), "-o", str(work / "traced.html"))
    values = _open_report(work / "traced.html", "history-report-nmap-traceroute.png")
    assert values["nodes"] == 1 + len(up | routers)
    assert set(values["ids"]) == {"scanner"} | up | routers
    assert {ROUTER1, ROUTER2} <= set(values["routers"])
    assert values["title_as_text"] is True and values["escaped_title_as_text"] is True
    assert values["scripts"] == 2 and values["injected"] == 1  # the report's own script, nothing a target sent


def _trace_of(lab: Lab, address: str) -> list[list[Any]]:
    """The route to a host from the scanner, by ICMP echo with growing TTLs.

    A router sends ICMP errors to one destination at about one a second once
    a burst of six is spent (Linux's icmp_ratelimit), and the scan before the
    trace may have spent it on unreachables: a silent hop gets a second try,
    which comes a second later, when the router has a token again.
    """
    hops: list[list[Any]] = []
    for ttl in range(1, 6):
        answer: object = None
        for _ in range(2):
            (answer,) = probe_in_lab(lab, [("icmp", address, ttl, 1.0)])
            if isinstance(answer, list) and answer[0] != "timeout":
                break
        if not isinstance(answer, list) or answer[0] == "timeout":
            hops.append([ttl, None, None, None])
            continue
        hops.append([ttl, answer[1], None, None])
        if answer[0] == "reply":
            break
    return hops


@pytest.mark.serial  # opens ports and adds firewall rules on the shared practice lab: no other test may scan it meanwhile
def test_report_of_our_scan_with_routes_we_traced_in_chromium(practice_lab: Lab, work: Path, hostile_title: str) -> None:
    own = work / "own.json"
    leadline(practice_lab, "-sS", "-n", "-p", "22,80,8080,50007,50008", "--script", "http-title,http-server-header", "-oJ", str(own),
             "198.18.1.1,10,20,40", "198.18.3.0/24")
    doc = json.loads(own.read_text())
    up = {h["address"] for h in doc["hosts"] if h["status"] == "up"}
    routers: set[str] = set()
    for h in doc["hosts"]:
        if h["status"] == "up":
            hops = _trace_of(practice_lab, h["address"])
            h["trace"] = {"protocol": "icmp", "port": None, "hops": hops}
            h["distance"] = len(hops)
            routers |= {hop[1] for hop in hops if hop[1] and hop[1] != h["address"]}
    assert {ROUTER1, ROUTER2} <= routers and FAR in up
    traced = work / "traced.json"
    traced.write_text(json.dumps(doc))
    local("report", str(traced), "-o", str(work / "own.html"))
    values = _open_report(work / "own.html", "history-report-leadline.png")
    assert values["nodes"] == 1 + len(up | routers)
    assert set(values["ids"]) == {"scanner"} | up | routers
    assert values["title_as_text"] is True and values["escaped_title_as_text"] is True
    assert values["scripts"] == 2 and values["injected"] == 1 and values["rows"] >= len(up)

