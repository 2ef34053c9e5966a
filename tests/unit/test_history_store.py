"""The history store (SQLite here; PostgreSQL in tests/lab/test_history_lab.py) and the readers it imports from."""

from __future__ import annotations

import io
import json
import multiprocessing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from leadline.errors import StoreError
from leadline.history import schema
from leadline.history.sources import open_file, open_run
from leadline.history.store import open_store
from leadline.model import HostStatus, PortState
from leadline.output.json import JsonOutput, host_to_json
from leadline.output.xml import XmlOutput

from .history_samples import RUN, STATS, rich_host, simple_host


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/scans.db"


def test_a_host_reads_back_equal_field_for_field(db: str) -> None:
    store = open_store(db)
    run_id = store.begin_run(RUN, targets="198.18.3.0/24")
    hosts = [rich_host(), simple_host("198.18.1.10"), simple_host("198.18.1.50", status=HostStatus.DOWN)]
    for h in hosts:
        store.add_host(run_id, h)
    store.end_run(run_id, STATS)
    assert list(store.hosts(run_id)) == hosts
    info, stats = store.run_info(run_id)
    assert info == RUN and stats == STATS
    assert store.run(run_id).status == "complete"
    store.close()


def test_a_run_not_ended_stays_running_and_an_error_exit_is_interrupted(db: str) -> None:
    store = open_store(db)
    first = store.begin_run(RUN)
    store.add_host(first, simple_host("198.18.1.10"))
    second = store.begin_run(RUN)
    store.end_run(second, replace(STATS, exit="error"))
    assert [r.status for r in store.runs()] == ["running", "interrupted"]
    assert [h.address for h in store.hosts(first)] == ["198.18.1.10"]


def test_current_view_takes_each_address_latest_observation(db: str) -> None:
    store = open_store(db)
    old = store.begin_run(RUN, targets="t")
    store.add_hosts(old, [simple_host("198.18.1.10", open_ports=(22,)), simple_host("198.18.1.20")])
    store.end_run(old, STATS)
    new = store.begin_run(RUN, targets="t")
    store.add_hosts(new, [simple_host("198.18.1.10", open_ports=(22, 80), closed=(443,))])
    store.end_run(new, STATS)
    current = {h.address: (run, h) for run, h in store.current()}
    assert current["198.18.1.10"][0] == new and current["198.18.1.20"][0] == old
    assert [p.port for p in current["198.18.1.10"][1].ports if p.state is PortState.OPEN] == [22, 80]
    assert [run for run, _ in store.history("198.18.1.10")] == [old, new]
    assert store.previous_run(new) == old and store.previous_run(old) is None
    assert [r for r, _ in store.current(since=RUN.start_time + 1)] == []


def test_a_newer_schema_is_refused_and_an_older_one_migrated(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    open_store(db).close()
    step = ("CREATE TABLE notes (run_id BIGINT, text TEXT)",)
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, step))
    monkeypatch.setattr("leadline.history.store.MIGRATIONS", (*schema.MIGRATIONS,))
    monkeypatch.setattr("leadline.history.store.SCHEMA_VERSION", 2)
    store = open_store(db)
    assert store._version() == 2
    store.db.execute("INSERT INTO notes VALUES (1, 'x')")
    store.close()
    monkeypatch.setattr("leadline.history.store.SCHEMA_VERSION", 1)
    with pytest.raises(StoreError, match="newer than this leadline"):
        open_store(db)


def _open_when_released(url: str, start: Any) -> None:
    start.wait()
    open_store(url).close()


def test_processes_opening_one_new_database_at_once_all_get_it(tmp_path: Path) -> None:
    # A scan creating its --db file while `db list` (or a test) opens it: the schema is created once.
    context = multiprocessing.get_context("fork")
    for round_ in range(8):
        url = f"sqlite:///{tmp_path}/race{round_}.db"
        start = context.Event()
        workers = [context.Process(target=_open_when_released, args=(url, start)) for _ in range(4)]
        for worker in workers:
            worker.start()
        start.set()
        for worker in workers:
            worker.join(30)
        assert [w.exitcode for w in workers] == [0, 0, 0, 0]
        store = open_store(url)
        assert store._version() == schema.SCHEMA_VERSION
        store.close()


def test_bad_urls_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unsupported database URL"):
        open_store("mysql://x@y/z")
    with pytest.raises(StoreError, match="sqlite:///relative.db"):
        open_store("sqlite://x.db")
    with pytest.raises(StoreError, match="no run 7"):
        open_store(f"sqlite:///{tmp_path}/a.db").run(7)


def _xml_of(hosts: list, verbosity: int = 0) -> bytes:
    out = io.StringIO()
    sink = XmlOutput(out)
    sink.begin(replace(RUN, verbosity=verbosity))
    for h in hosts:
        sink.host(h)
    sink.end(STATS)
    return out.getvalue().encode()


def test_our_xml_reads_back_with_folded_ports_unfolded(tmp_path: Path) -> None:
    closed = tuple(range(100, 160))
    hosts = [simple_host("198.18.1.10", open_ports=(22, 80), closed=closed), rich_host()]
    path = tmp_path / "scan.xml"
    path.write_bytes(_xml_of(hosts))
    loaded = open_file(str(path))
    assert loaded.scanner == "leadline" and loaded.run.args == RUN.args
    back = list(loaded.hosts())
    assert loaded.stats is not None and (loaded.stats.hosts_up, loaded.stats.elapsed) == (2, 10.0)
    assert [(p.port, p.state, p.reason) for p in back[0].ports] == [(p.port, p.state, p.reason) for p in hosts[0].ports]
    far = back[1]
    http = next(p for p in far.ports if p.port == 80)
    assert http.detail is not None and http.detail.product == "nginx" and http.detail.cpe
    title, nested, empty = http.scripts[0].elements
    assert title.value is not None and title.value.startswith("<script>alert(1)</script> ? ? &")  # XML has no NUL
    assert nested.children[0].value == "x" and empty.children == () and empty.value is None
    assert next(p for p in far.ports if p.port == 22).evidence == ("SYN -> SYN/ACK", "RST")


NMAP_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap -O --traceroute 198.18.3.10" start="1764000000" version="7.93" xmloutputversion="1.05">
<scaninfo type="syn" protocol="tcp" numservices="1000" services="1-1000"/>
<verbose level="0"/><debugging level="0"/>
<host starttime="1764000001" endtime="1764000009"><status state="up" reason="reset" reason_ttl="62"/>
<address addr="198.18.3.10" addrtype="ipv4"/>
<hostnames><hostname name="far.lab" type="PTR"/></hostnames>
<ports><extraports state="closed" count="998">
<extrareasons reason="reset" count="998" proto="tcp" ports="1-21,23-79,81-1000"/>
</extraports>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack" reason_ttl="62"/><service name="ssh" method="table" conf="3"/></port>
<port protocol="tcp" portid="80"><state state="open" reason="syn-ack" reason_ttl="62"/><service name="http" product="nginx" method="probed" conf="10"><cpe>cpe:/a:igor_sysoev:nginx</cpe></service><script id="http-title" output="&lt;script&gt;"><elem key="title">&lt;script&gt;</elem></script></port>
</ports>
<os><portused state="open" proto="tcp" portid="22"/>
<osmatch name="Linux 4.15 - 5.8" accuracy="100" line="1"><osclass type="general purpose" vendor="Linux" osfamily="Linux" osgen="5.X" accuracy="100"><cpe>cpe:/o:linux:linux_kernel:5</cpe></osclass></osmatch>
</os>
<uptime seconds="4242" lastboot="x"/>
<distance value="3"/>
<trace port="80" proto="tcp"><hop ttl="1" ipaddr="198.18.1.1" rtt="0.40"/><hop ttl="2" ipaddr="198.18.2.2" rtt="0.50"/><hop ttl="3" ipaddr="198.18.3.10" rtt="0.60"/></trace>
<times srtt="600" rttvar="300" to="100000"/>
</host>
<runstats><finished time="1764000010" timestr="x" summary="done" elapsed="10.00" exit="success"/><hosts up="1" down="0" total="1"/></runstats>
</nmaprun>
"""


def test_nmap_xml_with_os_and_trace_is_read_and_stored(tmp_path: Path, db: str) -> None:
    path = tmp_path / "nmap.xml"
    path.write_text(NMAP_XML)
    loaded = open_file(str(path))
    hosts = list(loaded.hosts())
    (far,) = hosts
    assert loaded.scanner == "nmap" and len(far.ports) == 1000
    assert far.os is not None and far.os.matches[0].classes[0].generation == "5.X"
    assert far.trace is not None and [h.address for h in far.trace.hops] == ["198.18.1.1", "198.18.2.2", "198.18.3.10"]
    assert far.trace.hops[0].rtt == pytest.approx(0.0004)
    assert (far.distance, far.uptime, far.latency) == (3, 4242.0, 0.0006)
    store = open_store(db)
    run_id = store.begin_run(loaded.run, source=str(path), scanner="nmap")
    store.add_hosts(run_id, hosts)
    assert list(store.hosts(run_id)) == hosts


_HOST = NMAP_XML[NMAP_XML.index("<host "):NMAP_XML.index("<runstats>")]
_ODD_HOSTS = [
    _HOST.replace("<ports>", "<!-- </ports> --><ports>"),  # a comment: its group is parsed as written
    _HOST.replace("<os>", "<os><_os n='0'/>"),  # a name of the file's own that looks like a reference
    _HOST.replace("</ports>", "</ports\n>"),  # an end tag the cut does not find: parsed as written
    _HOST.replace('<port protocol="tcp" portid="22">', '<port protocol="tcp" portid="22"/><port protocol="tcp" portid="23">'),
    _HOST.replace("<ports>", "<ports/><ports>"),  # two: the first counts
    _HOST.replace("198.18.3.10", "198.18.3.11").replace('reason_ttl="62"', 'reason_ttl="61"'),
]


@pytest.mark.parametrize("odd", _ODD_HOSTS)
def test_repeated_ports_and_os_elements_read_as_each_host_alone(tmp_path: Path, odd: str) -> None:
    import xml.etree.ElementTree as ET

    from leadline.history.nmapxml import host_from_element

    chunks = [_HOST] * 64 + [odd, _HOST, odd] + [_HOST] * 70
    head, tail = NMAP_XML.split(_HOST)
    path = tmp_path / "many.xml"
    path.write_text(head + "".join(chunks) + tail)
    got = list(open_file(str(path)).hosts())
    assert got == [host_from_element(ET.fromstring(c)) for c in chunks]
    assert got[0].ports is got[63].ports and got[0].os is got[63].os  # parsed once, shared


@pytest.mark.parametrize("text, message", [
    ("<nmaprun><host><status state='up'/>", "not well-formed"),
    ("<html></html>", "not nmap XML"),
    ("plain text", "neither XML nor"),
    ("{\"hosts\": 3}", "no 'hosts' list"),
    ("{\"hosts\": [{\"nope\": 1}]}", "host 1 is not"),
])
def test_broken_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad"
    path.write_text(text)
    with pytest.raises(StoreError, match=message):
        list(open_file(str(path)).hosts())


def test_our_json_reads_back_to_the_same_json(tmp_path: Path) -> None:
    out = io.StringIO()
    sink = JsonOutput(out)
    sink.begin(RUN)
    hosts = [rich_host(), simple_host("198.18.1.10")]
    for h in hosts:
        sink.host(h)
    sink.end(STATS)
    path = tmp_path / "scan.json"
    path.write_text(out.getvalue())
    loaded = open_run(str(path))
    assert [host_to_json(h) for h in loaded.hosts()] == json.loads(out.getvalue())["hosts"]
    assert loaded.stats == STATS and loaded.run.args == RUN.args
