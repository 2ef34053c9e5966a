"""The probe-file parser, the matcher's substitutions and bound, and the probe order — from byte literals."""

from __future__ import annotations

import os
import time

import pytest

from leadline.detect.service import PortProbing, ProbeFileError, find_match, load_database, parse_probes, probe_order
from leadline.detect.service.database import NMAP_PROBES
from leadline.detect.service.probes import unescape

SMALL = r"""
Exclude T:9100-9102,U:7
Probe TCP NULL q||
totalwaitms 6000
tcpwrappedms 3000
match ssh m|^SSH-([\d.]+)-OpenSSH_([\w.]+)\r?\n| p/OpenSSH/ v/$2/ i/protocol $1/ cpe:/a:openbsd:openssh:$2/a
match ftp m=^220 \(vsFTPd ([^)]+)\)= p|vsftpd| v/$1/ o/Unix/
match mssql m|^\x04\x01(..)|s p/SQL Server/ v/9.00.$I(1,">")/
match wide m|^W((?:.\0)+)\0\0|s p/Wide/ v/$P(1)/
match sub m|^V(\d+)_(\d+)| p/Sub/ v/$SUBST(1,"_",".").$2/ h/$2/ d/router/
softmatch ftp m|^220[ -]|
Probe TCP GetRequest q|GET / HTTP/1.0\r\n\r\n|
rarity 1
ports 80,8080
sslports 443
match http m|^HTTP/1\.[01] \d+ .*\r\nServer: nginx/([\d.]+)|si p/nginx/ v/$1/
softmatch http m|^HTTP/1\.[01] |
Probe TCP Rare q|rare\n|
rarity 8
ports 5555
fallback GetRequest
match ftp m|^220 Rare FTP ([\d.]+)| p/RareFTP/ v/$1/
Probe TCP Middle q|middle\n|
rarity 5
match other m|^other| p/Other/
Probe UDP DNS q|\x00\x06\x01\x00|
rarity 1
ports 53
match domain m|^\x00\x06\x81|
"""


@pytest.fixture(scope="module")
def db():
    return parse_probes(SMALL, "small")


def test_parse_probes_fields(db) -> None:
    names = [p.name for p in db.probes]
    assert names == ["NULL", "GetRequest", "Rare", "Middle", "DNS"]
    null, get, rare = db.probes[0], db.probes[1], db.probes[2]
    assert null.is_null and null.wait_ms() == 6000 and null.wrapped_ms() == 3000
    assert get.payload == b"GET / HTTP/1.0\r\n\r\n" and get.ports == {80, 8080} and get.sslports == {443}
    assert rare.rarity == 8 and rare.fallback == ("GetRequest",) and rare.wait_ms() == 5000
    ssh = null.matches[0]
    assert ssh.fields == {"p": "OpenSSH", "v": "$2", "i": "protocol $1"} and ssh.cpe == ("cpe:/a:openbsd:openssh:$2",)
    ftp = null.matches[1]
    assert ftp.fields["p"] == "vsftpd" and ftp.pattern == r"^220 \(vsFTPd ([^)]+)\)"
    assert db.excluded("tcp", 9101) and not db.excluded("udp", 9101) and db.excluded("udp", 7)
    assert get.matches[0].flags == "si"


def test_unescape() -> None:
    assert unescape(r"\0\x41\r\n\t\\q") == b"\x00A\r\n\t\\q"


@pytest.mark.parametrize("text", [
    "match x m|^a| p/x/",  # before any Probe
    "Probe TCP X q|abc",  # unclosed
    "Probe TCP X q|a|\nmatch x m|^a| z/x/",  # unknown field
    "Probe TCP X q|a|\nports 1-99999",
    "Probe TCP X q|a|\nrarity high",
])
def test_parse_errors_name_the_line(text: str) -> None:
    with pytest.raises(ProbeFileError, match=r"^line \d+:"):
        parse_probes(text)


def test_substitutions(db) -> None:
    null = db.probes[0].matches
    m = find_match(null, b"SSH-2.0-OpenSSH_9.2p1\r\n").match
    assert (m.service, m.product, m.version, m.extrainfo, m.cpe) == ("ssh", "OpenSSH", "9.2p1", "protocol 2.0",
                                                                      ("cpe:/a:openbsd:openssh:9.2p1",))
    assert find_match(null, b"\x04\x01\x01\x02").match.version == "9.00.258"
    assert find_match(null, b"Wa\0b\0c\0\0\0").match.version == "abc"
    sub = find_match(null, b"V1_2_3").match
    assert (sub.version, sub.hostname, sub.devicetype) == ("1.2", "2", "router")


def test_subst_replaces_every_occurrence() -> None:
    db = parse_probes('Probe TCP NULL q||\nmatch x m|^v=(\\S+)| v/$SUBST(1,"_",".")/\n')
    assert find_match(db.probes[0].matches, b"v=1_2_3").match.version == "1.2.3"


def test_first_hard_match_wins_and_softmatch_is_kept(db) -> None:
    null = db.probes[0].matches
    assert find_match(null, b"220 (vsFTPd 3.0.3)\r\n").match.product == "vsftpd"
    soft = find_match(null, b"220 someone's ftp\r\n").match
    assert soft.soft and soft.service == "ftp" and soft.product is None


def test_case_and_dotall_flags(db) -> None:
    get = db.probes[1].matches
    found = find_match(get, b"http/1.1 200 OK\r\nDate: x\r\nSERVER: NGINX/1.22.1\r\n").match
    assert found.product == "nginx" and found.version == "1.22.1"


def test_a_catastrophic_pattern_is_abandoned_within_its_budget() -> None:
    db = parse_probes("Probe TCP NULL q||\nmatch bomb m|^(a+)+$| p/Bomb/\nmatch ok m|^a| p/Fine/\n")
    t0 = time.monotonic()
    outcome = find_match(db.probes[0].matches, b"a" * 40 + b"!", budget=0.05)
    assert time.monotonic() - t0 < 1.0
    assert outcome.abandoned and "bomb" in outcome.abandoned[0]
    assert outcome.match is not None and outcome.match.product == "Fine"


def test_probe_order_null_then_listed_then_by_rarity(db) -> None:
    assert [p.name for p in probe_order(db, "tcp", 80, 7)] == ["NULL", "GetRequest", "Middle"]
    assert [p.name for p in probe_order(db, "tcp", 5555, 7)] == ["NULL", "Rare", "GetRequest", "Middle"]
    assert [p.name for p in probe_order(db, "tcp", 22, 0)] == ["NULL"]
    assert [p.name for p in probe_order(db, "tcp", 22, 9)] == ["NULL", "GetRequest", "Rare", "Middle"]
    assert [p.name for p in probe_order(db, "tcp", 443, 0, tls=True)] == ["NULL", "GetRequest"]
    assert [p.name for p in probe_order(db, "udp", 53, 7)] == ["DNS"]


def _converse(db, port: int, replies: dict[str, bytes], intensity: int = 7) -> tuple[PortProbing, list[str]]:
    policy = PortProbing(db, "tcp", port, intensity)
    sent = []
    while (probe := policy.next_probe()) is not None:
        sent.append(probe.name)
        data = replies.get(probe.name, b"")
        policy.feed(probe, data)
        policy.end_probe(probe, data, None)
    return policy, sent


def test_a_banner_settles_the_port_at_once(db) -> None:
    policy, sent = _converse(db, 22, {"NULL": b"SSH-2.0-OpenSSH_9.2p1\r\n"})
    assert sent == ["NULL"] and policy.result().product == "OpenSSH"


def test_silent_banner_moves_on_and_fallback_matches_count(db) -> None:
    policy, sent = _converse(db, 5555, {"Rare": b"HTTP/1.0 200 OK\r\nServer: nginx/1.0\r\n\r\n"})
    assert sent == ["NULL", "Rare"]
    assert policy.result().product == "nginx"  # GetRequest's line, through Rare's fallback


def test_softmatch_narrows_later_probes(db) -> None:
    # The FTP softmatch keeps only probes with a hard ftp line (Rare); Middle is skipped below intensity 9.
    policy, sent = _converse(db, 21, {"NULL": b"220 hello\r\n"}, intensity=9)
    assert sent == ["NULL", "GetRequest", "Rare", "Middle"]
    policy, sent = _converse(db, 21, {"NULL": b"220 hello\r\n"}, intensity=8)
    assert sent == ["NULL", "Rare"]
    result = policy.result()
    assert result.name == "ftp" and result.product is None and result.method == "probed"


def test_connection_closed_at_once_is_tcpwrapped(db) -> None:
    policy = PortProbing(db, "tcp", 22, 7)
    probe = policy.next_probe()
    policy.end_probe(probe, b"", 0.01)
    assert policy.next_probe() is None
    assert policy.result().name == "tcpwrapped"
    late = PortProbing(db, "tcp", 22, 7)
    probe = late.next_probe()
    late.end_probe(probe, b"", 4.0)  # after tcpwrappedms: just a quiet service
    assert not late.wrapped


def test_ssl_answer_asks_for_tls_and_ssl_names_split() -> None:
    db = parse_probes("Probe TCP NULL q||\nmatch ssl m|^\\x16\\x03|\nmatch ssl/http m|^HTTPS| p/Web/\n")
    policy = PortProbing(db, "tcp", 443, 7)
    probe = policy.next_probe()
    assert policy.feed(probe, b"\x16\x03\x03") and policy.wants_tls
    inner = PortProbing(db, "tcp", 443, 7)
    inner.feed(inner.next_probe(), b"HTTPS")
    r = inner.result()
    assert (r.name, r.tunnel, r.product) == ("http", "ssl", "Web")


def test_shipped_database_covers_forty_services() -> None:
    db = load_database("leadline")
    products = {(m.service, m.fields.get("p")) for p in db.probes for m in p.matches}
    assert len(products) >= 40
    assert all(m.regex() is not None for p in db.probes for m in p.matches)
    null = db.probe("TCP", "NULL").matches
    assert find_match(null, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").match.version == "9.2p1 Debian 2+deb12u3"
    get = db.probe("TCP", "GetRequest").matches
    assert find_match(get, b"HTTP/1.1 200 OK\r\nServer: TornadoServer/6.0.3\r\n\r\n").match.product == "Tornado httpd"


def test_bad_versiondb_is_one_clear_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="cannot read the version database"):
        load_database(str(tmp_path / "missing"))
    bad = tmp_path / "bad"
    bad.write_text("Probe TCP X q|a|\nfoo bar\n")
    with pytest.raises(ValueError, match="line 2: unknown directive 'foo'"):
        load_database(str(bad))


@pytest.mark.skipif(not os.path.exists(NMAP_PROBES), reason="nmap's probe file is not installed")
def test_nmap_database_parses_and_compiles() -> None:
    db = load_database("nmap")
    assert len(db.probes) > 100
    null = db.probe("TCP", "NULL")
    assert null is not None and len(null.matches) > 1000
    assert find_match(null.matches, b"220 (vsFTPd 3.0.3)\r\n").match.product == "vsftpd"
