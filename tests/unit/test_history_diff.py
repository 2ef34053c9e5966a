"""``leadline diff``: ndiff's rules and layouts over the result model (tests/lab/test_history_lab.py checks against ndiff)."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from dataclasses import replace

from leadline.history.diff import changed_ports, diff_runs
from leadline.history.diffout import write_json, write_text, write_xml
from leadline.history.sources import Loaded
from leadline.model import HostResult, HostStatus, OsMatch, OsResult, PortResult, PortState, Reason, ServiceDetail

from .history_samples import HOSTILE, RUN, STATS, simple_host


def _loaded(name: str, hosts: list[HostResult], start: float = RUN.start_time) -> Loaded:
    run = replace(RUN, start_time=start)
    return Loaded(name, "leadline", iter(hosts), lambda: run, lambda: STATS)


def _closed_many(address: str, open_ports: tuple[int, ...], state: PortState = PortState.CLOSED) -> HostResult:
    ports = [PortResult(p, "tcp", PortState.OPEN, Reason.SYN_ACK, 64, "http") for p in open_ports]
    ports += [PortResult(p, "tcp", state, Reason.RESET if state is PortState.CLOSED else Reason.NO_RESPONSE, 64)
              for p in range(1000, 1100) if p not in open_ports]
    return replace(simple_host(address), ports=tuple(sorted(ports, key=lambda p: p.port)))


def test_equal_runs_have_no_changes_and_no_host_lines() -> None:
    hosts = [simple_host("198.18.1.10"), simple_host("198.18.1.20")]
    d = diff_runs(_loaded("a", hosts), _loaded("b", list(hosts)))
    assert not d.changed
    out = io.StringIO()
    write_text(d, out)
    assert out.getvalue() == ""


def test_ports_opened_and_closed_hosts_gone_and_new_in_ndiffs_layout() -> None:
    a = [_closed_many("198.18.1.10", (1010,)), simple_host("198.18.1.20")]
    b = [_closed_many("198.18.1.10", (1010, 1020)), simple_host("198.18.1.30")]
    d = diff_runs(_loaded("a", a), _loaded("b", b, start=RUN.start_time + 60))
    assert sorted(changed_ports(d)) == [
        ("198.18.1.10", "tcp", 1020, None, "open"),  # folded (closed) before: ndiff shows only the new row
        ("198.18.1.20", "tcp", 22, "open", None), ("198.18.1.20", "tcp", 80, "closed", None),
        ("198.18.1.20", "tcp", 443, "closed", None),
        ("198.18.1.30", "tcp", 22, None, "open"), ("198.18.1.30", "tcp", 80, None, "closed"),
        ("198.18.1.30", "tcp", 443, None, "closed")]
    out = io.StringIO()
    write_text(d, out)
    text = out.getvalue()
    assert text.startswith("-leadline 0.1.0 scan initiated ")
    assert "\n 198.18.1.10:\n-Not shown: 99 closed ports\n+Not shown: 98 closed ports\n PORT     STATE SERVICE VERSION\n" \
           "+1020/tcp open  http\n" in text
    assert "\n-198.18.1.20:\n-Host is up.\n-PORT    STATE  SERVICE VERSION\n-22/tcp  open   ssh\n" in text
    assert "\n+198.18.1.30:\n+Host is up.\n+PORT    STATE  SERVICE VERSION\n" in text


def test_a_firewall_that_filters_folded_ports_changes_only_the_not_shown_line() -> None:
    a = [_closed_many("198.18.1.10", (1010,))]
    b = [_closed_many("198.18.1.10", (1010,), PortState.FILTERED)]
    d = diff_runs(_loaded("a", a), _loaded("b", b))
    assert list(changed_ports(d)) == [] and d.changed and d.hosts[0].not_shown_changed


def test_service_version_os_and_status_changes() -> None:
    old = ServiceDetail("ssh", "OpenSSH", "9.2p1", method="probed", confidence=10)
    a_host = replace(simple_host("198.18.1.10"), os=OsResult((OsMatch("Linux 5.X", 100),)))
    a_host = replace(a_host, ports=(replace(a_host.ports[0], detail=old), *a_host.ports[1:]))
    b_host = replace(a_host, ports=(replace(a_host.ports[0], detail=replace(old, version="9.6p1")), *a_host.ports[1:]),
                     os=OsResult((OsMatch("Linux 6.X", 97),)))
    down = simple_host("198.18.1.20", status=HostStatus.DOWN)
    d = diff_runs(_loaded("a", [a_host, simple_host("198.18.1.20")]), _loaded("b", [b_host, down]))
    out = io.StringIO()
    write_text(d, out)
    text = out.getvalue()
    assert "-22/tcp open  ssh     OpenSSH 9.2p1\n+22/tcp open  ssh     OpenSSH 9.6p1\n" in text
    assert " OS details:\n-  Linux 5.X\n+  Linux 6.X\n" in text
    assert " 198.18.1.20:\n-Host is up.\n+Host is down.\n" in text


def test_xml_is_ndiffs_document_and_json_lists_changes() -> None:
    a = [simple_host("198.18.1.10", open_ports=(22,))]
    b = [simple_host("198.18.1.10", open_ports=(22, 80), closed=(443,))]
    d = diff_runs(_loaded("a", a), _loaded("b", b))
    out = io.StringIO()
    write_xml(d, out)
    root = ET.fromstring(out.getvalue())
    assert root.tag == "nmapdiff"
    (portdiff,) = root.iter("portdiff")
    a_state = portdiff.find("a/port/state")
    b_state = portdiff.find("b/port/state")
    assert a_state is not None and b_state is not None
    assert (a_state.get("state"), b_state.get("state")) == ("closed", "open")
    out = io.StringIO()
    write_json(d, out)
    doc = json.loads(out.getvalue())
    assert doc["changed"] and doc["hosts"][0]["ports"][0]["b"]["state"] == "open"


def test_what_a_target_sent_cannot_drive_the_terminal() -> None:
    detail = ServiceDetail("http", "evil\x1b]0;owned\x07", HOSTILE, method="probed", confidence=10)
    host = simple_host("198.18.1.10")
    b_host = replace(host, ports=(replace(host.ports[0], detail=detail), *host.ports[1:]))
    out = io.StringIO()
    write_text(diff_runs(_loaded("a", [host]), _loaded("b", [b_host])), out)
    assert "\x1b" not in out.getvalue() and "\\x1b]0;owned\\x07" in out.getvalue()
