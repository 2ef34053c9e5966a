"""leadline local's pure pieces: naming, selection, the terminal view, the JSON and XML files."""

from __future__ import annotations

import json
import subprocess
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from leadline.core.ports import compact, parse_port_spec
from leadline.errors import InputFileError
from leadline.local.files import read_json, to_json, to_xml
from leadline.local.model import Exposure, LocalSocket, Owner, Snapshot
from leadline.local.naming import with_services
from leadline.local.render import endpoint, fold, format_listing, program_lines
from leadline.local.selection import Selection, port_sets, select
from leadline.services import ServiceTable

OWNERS = {
    812: Owner(812, "dnsmasq", "dnsmasq", ("/usr/sbin/dnsmasq", "-k"), 1_700_000_000.0),
    610: Owner(610, "sshd", "root", ("sshd: /usr/sbin/sshd -D",), 1_700_000_100.0),
    900: Owner(900, "ssh", "alice", ("ssh", "host"), 1_700_000_200.0),
}
SOCKETS = (
    LocalSocket("udp", 4, "UNCONN", "127.0.0.1", 53, pid=812, fd=4),
    LocalSocket("tcp", 4, "LISTEN", "127.0.0.1", 53, pid=812, fd=5),
    LocalSocket("udp", 6, "UNCONN", "::1", 53, pid=812, fd=6),
    LocalSocket("tcp", 6, "LISTEN", "::1", 53, pid=812, fd=7),
    LocalSocket("tcp", 4, "LISTEN", "0.0.0.0", 22, pid=610, fd=3),
    LocalSocket("tcp", 4, "ESTAB", "198.18.1.2", 22, "198.18.1.9", 50412, pid=610, fd=9),
    LocalSocket("tcp", 4, "ESTAB", "198.18.1.2", 41000, "198.18.1.10", 22, pid=900, fd=3),
    LocalSocket("tcp", 4, "TIME-WAIT", "198.18.1.2", 41001, "198.18.1.10", 80),
)
SNAPSHOT = Snapshot(SOCKETS, OWNERS, True, 1_700_001_000.0)


def _named() -> list[LocalSocket]:
    return with_services(SOCKETS, ServiceTable.shipped())


def test_listeners_are_named_by_their_port_connections_by_the_servers_end() -> None:
    named = {(s.local_port, s.remote_port): s.service for s in _named()}
    assert named[(53, None)] == "domain" and named[(22, None)] == "ssh"
    assert named[(22, 50412)] == "ssh"  # we serve 22: named after our end
    assert named[(41000, 22)] == "ssh" and named[(41001, 80)] == "http"  # we are the client


@pytest.mark.parametrize(("selection", "expected"), [
    (Selection(listening=True), {53, 22}),
    (Selection(established=True), {22, 41000}),
    (Selection(listening=True, established=True), {53, 22, 41000}),
    (Selection(families=frozenset({6})), {53}),
    (Selection(process="dns*"), {53}),
    (Selection(process="900"), {41000}),
    (Selection(ports=port_sets(parse_port_spec("80", ServiceTable.shipped(), {"tcp", "udp"}))), {41001}),
    (Selection(ports=port_sets(parse_port_spec("U:domain", ServiceTable.shipped(), {"tcp", "udp"}))), {53}),
])
def test_selection(selection: Selection, expected: set[int]) -> None:
    assert {s.local_port for s in select(SOCKETS, selection, OWNERS)} == expected


def test_udp_port_filter_keeps_udp_only() -> None:
    chosen = select(SOCKETS, Selection(ports=port_sets(parse_port_spec("U:53", ServiceTable.shipped(), {"tcp", "udp"}))), OWNERS)
    assert {s.protocol for s in chosen} == {"udp"} and len(chosen) == 2


def test_endpoints_are_written_as_ss_writes_them() -> None:
    assert endpoint("127.0.0.1", 53, 4) == "127.0.0.1:53"
    assert endpoint("::1", 53, 6) == "[::1]:53"
    assert endpoint(None, None, 4) == "0.0.0.0:*" and endpoint(None, None, 6) == "[::]:*"


def test_one_line_per_program_with_what_it_holds() -> None:
    lines = program_lines(_named(), OWNERS)
    assert "dnsmasq (pid 812): 53/tcp, 53/udp on 127.0.0.1 and ::1" in lines
    assert "sshd (pid 610): 22/tcp on 0.0.0.0; 1 connection" in lines
    assert "ssh (pid 900): no listening socket; 1 connection" in lines
    assert "owner not visible: no listening socket; 1 connection" in lines


def test_runs_of_ports_fold() -> None:
    many = [LocalSocket("tcp", 4, "LISTEN", "127.0.0.1", port, pid=1) for port in range(20000, 25000)]
    many += [LocalSocket("udp", 4, "UNCONN", "127.0.0.1", port, pid=1) for port in (7, 9)]
    assert program_lines(many, {1: Owner(1, "holder", "root", (), None)}) == [
        "holder (pid 1): 20000-24999/tcp, 7,9/udp on 127.0.0.1"]
    many.append(LocalSocket("udp", 6, "UNCONN", "::", 9, pid=1))
    assert program_lines(many, {1: Owner(1, "holder", "root", (), None)}) == [
        "holder (pid 1): 20000-24999/tcp, 7/udp on 127.0.0.1; 9/udp on 127.0.0.1 and ::"]


def test_listing_has_the_tables_and_the_program_lines() -> None:
    text = format_listing(SNAPSHOT, _named())
    lines = text.splitlines()
    assert lines[0] == "leadline local: 5 listening, 3 connected or closing"
    assert lines[2].split() == ["Netid", "State", "Local", "Address:Port", "Peer", "Address:Port", "Service", "Process"]
    assert "tcp    LISTEN  0.0.0.0:22          0.0.0.0:*          ssh      sshd (pid 610, root)" in lines
    assert any(line.split()[:4] == ["tcp", "TIME-WAIT", "198.18.1.2:41001", "198.18.1.10:80"] and line.endswith("-")
               for line in lines)


def test_the_not_root_note_is_one_line_under_the_title() -> None:
    snapshot = Snapshot(SOCKETS, {}, False, 0.0, "not root: owners hidden")
    assert format_listing(snapshot, SOCKETS).splitlines()[1] == "not root: owners hidden"


def _schema() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(files("leadline").joinpath("data", "local.schema.json").read_text())
    return loaded


def test_json_validates_against_the_shipped_schema(tmp_path: Path) -> None:
    labelled = [s._replace(exposure=Exposure("filtered", "dropped (no-response)", "iptables", "-A INPUT -j DROP"))
                if s.listening else s for s in _named()]
    text = to_json(SNAPSHOT, labelled, "leadline local --exposure", "0.1.0",
                   {"from": "llx-1", "address": "198.19.252.1", "method": "leadline -sS"})
    document = json.loads(text)
    jsonschema.validate(document, _schema())
    assert len(document["sockets"]) == len(SOCKETS) and [p["pid"] for p in document["processes"]] == [610, 812, 900]
    path = tmp_path / "a.json"
    path.write_text(text)
    assert read_json(str(path)) == document


def test_the_schema_rejects_what_we_never_write() -> None:
    document = json.loads(to_json(SNAPSHOT, _named(), "x", "0.1.0"))
    document["sockets"][0]["state"] = "LISTENING"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, _schema())


def test_xml_is_valid_against_the_dtd_even_with_odd_command_lines(tmp_path: Path) -> None:
    owners = dict(OWNERS)
    owners[812] = Owner(812, "dns<&>", None, ('--opt="x"', "tab\there", "bell\x07", "\udcff"), None)
    labelled = [s._replace(exposure=Exposure("local-only", "bound to 127.0.0.1")) if s.listening else s for s in _named()]
    path = tmp_path / "l.xml"
    path.write_text(to_xml(Snapshot(SOCKETS, owners, False, 1.0, 'note "quoted"'), labelled, "leadline local -oX l.xml",
                           "0.1.0", {"from": "llx-1", "address": "198.19.252.1", "method": "m"}), encoding="utf-8")
    dtd = str(files("leadline").joinpath("data", "local.dtd"))
    checked = subprocess.run(["xmllint", "--noout", "--dtdvalid", dtd, str(path)], capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0, checked.stderr
    assert path.read_text(encoding="utf-8").count("<socket ") == len(SOCKETS)


@pytest.mark.parametrize(("content", "why"), [("{", "is not JSON"), ('{"kind": "scan"}', "is not a 'leadline local -oJ' file")])
def test_reading_something_else_is_one_clear_error(tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(InputFileError, match=why):
        read_json(str(path))


@pytest.mark.parametrize("ports", [[], [80], [22, 21, 23, 23], [1, 3, 5], [65535, 0, 1, 65534], list(range(20000, 25000)) + [25001]])
def test_folded_port_runs_read_as_the_core_writes_them(ports: list[int]) -> None:
    assert fold(ports) == compact(ports)
