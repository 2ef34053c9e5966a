"""The Service scan phase over a scripted network, and how every output renders what it found."""

from __future__ import annotations

import io
import json
import re

import pytest

from leadline.config import ScanConfig
from leadline.engines.fake import CLOSED as PORT_CLOSED, OPEN, FakeHost
from leadline.model import (
    HostResult, HostStatus, PortResult, PortState, Reason, RunInfo, RunStats, ScriptElement, ScriptResult,
    ServiceDetail,
)
from leadline.options import parse_args
from leadline.output.grepable import GrepableOutput
from leadline.output.json import JsonOutput
from leadline.output.normal import NormalOutput
from leadline.output.xml import XmlOutput
from leadline.pipeline import Scan
from leadline.scantypes import ScanType
from tests.unit.fakeengines import CLOSED, FakeEngines, ScriptedHost
from tests.unit.test_pipeline import Recorder

ADDRESS = "198.18.5.1"


def _ssh(payload: bytes) -> bytes | None:
    return b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n" if payload == b"" else None


def _http(payload: bytes) -> bytes | None:
    if payload.startswith(b"GET "):
        return b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n\r\n<html>"
    return None


def _scan(**fields: object) -> tuple[Recorder, FakeEngines]:
    ports = FakeHost(ports={22: OPEN, 80: OPEN, 81: OPEN, 5555: OPEN, 23: PORT_CLOSED}, default=PORT_CLOSED)
    services = {(22, "tcp"): _ssh, (80, "tcp"): _http, (81, "tcp"): lambda p: CLOSED}
    engines = FakeEngines({ADDRESS: ScriptedHost(ports, services=services)})
    config = ScanConfig(**{"privileged": True, "dns": "never", "targets": (ADDRESS,), "ports": "22,23,80,81,5555",
                           "scan_types": (ScanType.SYN,), "versiondb": "leadline", **fields})  # type: ignore[arg-type]
    sink = Recorder()
    Scan(config, sink, warn=lambda w: None, engines=engines).run()
    return sink, engines


def test_service_scan_sets_detail_and_name() -> None:
    sink, engines = _scan(version_detection=True)
    assert "Service scan" in sink.tasks
    assert sink.run is not None and sink.run.service_scan
    ports = {p.port: p for p in sink.hosts[0].ports}
    ssh, http, wrapped = ports[22].detail, ports[80].detail, ports[81].detail
    assert ssh is not None and (ssh.name, ssh.product, ssh.version, ssh.method, ssh.confidence) == \
        ("ssh", "OpenSSH", "9.2p1 Debian 2+deb12u3", "probed", 10)
    assert http is not None and (http.product, http.version) == ("nginx", "1.22.1") and ports[80].service == "http"
    assert wrapped is not None and wrapped.name == "tcpwrapped" and ports[81].service == "tcpwrapped"
    assert ports[5555].detail is None  # silent to every probe: the table's name stays
    assert ports[23].detail is None and all(a == ADDRESS and p != 23 for a, p, _ in engines.service_probes)
    probes_to_22 = [name for _, p, name in engines.service_probes if p == 22]
    assert probes_to_22 == ["NULL"]  # the banner settled it


def test_no_service_scan_without_sv() -> None:
    sink, engines = _scan()
    assert "Service scan" not in sink.tasks and engines.calls["detect_services"] == 0
    assert all(p.detail is None for p in sink.hosts[0].ports)


def test_intensity_zero_sends_only_null_and_listed_probes() -> None:
    _, engines = _scan(version_detection=True, version_intensity=0)
    assert [n for _, p, n in engines.service_probes if p == 5555] == ["NULL"]


@pytest.mark.parametrize("argv, sv, intensity, scripts", [
    (["-sV", "x"], True, 7, ()),
    (["-A", "x"], True, 7, ("default",)),
    (["-sV", "--version-light", "x"], True, 2, ()),
    (["-sV", "--version-all", "x"], True, 9, ()),
    (["-sV", "--version-intensity", "4", "x"], True, 4, ()),
])
def test_options(argv: list[str], sv: bool, intensity: int, scripts: tuple[str, ...]) -> None:
    c = parse_args(argv).config
    assert (c.version_detection, c.version_intensity, c.scripts) == (sv, intensity, scripts)


HOSTILE = "\x1b[31mred\x1b]0;title\x07\x9b2J\u202eevil\r\x00"
DETAIL = ServiceDetail("http", "nginx", "1.22.1", "Debian", "web1", "Linux", None, None, "probed", 10,
                       ("cpe:/a:igor_sysoev:nginx:1.22.1", "cpe:/o:linux:linux_kernel"))


def _host() -> HostResult:
    scripts = (ScriptResult("http-title", "Welcome " + HOSTILE),
               ScriptResult("ssh-hostkey", "\n  256 aa:bb (ECDSA)\n  256 cc:dd (ED25519)",
                            (ScriptElement(None, children=(ScriptElement("bits", "256"), ScriptElement("type", "ecdsa"))),)))
    ports = (PortResult(22, "tcp", PortState.OPEN, Reason.SYN_ACK, 64, "ssh",
                        detail=ServiceDetail("ssh", "OpenSSH", "9.2p1", "protocol 2.0", None, "Linux", method="probed",
                                             confidence=10), scripts=scripts[1:]),
             PortResult(80, "tcp", PortState.OPEN, Reason.SYN_ACK, 64, "http", detail=DETAIL, scripts=scripts[:1]),
             PortResult(443, "tcp", PortState.OPEN, Reason.SYN_ACK, 64, "http",
                        detail=ServiceDetail("http", "Evil " + HOSTILE, tunnel="ssl", method="probed", confidence=10)))
    return HostResult(ADDRESS, 4, HostStatus.UP, Reason.ECHO_REPLY, ports=ports, latency=0.001,
                      scripts=(ScriptResult("host-thing", "one\ntwo"),), start_time=1.0, end_time=2.0)


RUN = RunInfo("leadline -sV x", 1.0, "0", service_scan=True)
STATS = RunStats(2.0, 1.0, 1, 0, 1)


def _render(cls: type, **kw: object) -> str:
    buf = io.StringIO()
    sink = cls(buf, **kw)
    sink.begin(RUN)
    sink.host(_host())
    sink.end(STATS)
    return buf.getvalue()


def test_normal_output_layout_and_escaping() -> None:
    text = _render(NormalOutput)
    lines = text.splitlines()
    table = lines.index(next(line for line in lines if line.startswith("PORT")))
    assert lines[table] == "PORT    STATE SERVICE  VERSION"
    assert lines[table + 1] == "22/tcp  open  ssh      OpenSSH 9.2p1 (protocol 2.0)"
    assert lines[table + 2:table + 5] == ["| ssh-hostkey: ", "|   256 aa:bb (ECDSA)", "|_  256 cc:dd (ED25519)"]
    assert lines[table + 5] == "80/tcp  open  http     nginx 1.22.1 (Debian)"
    assert lines[table + 6].startswith("|_http-title: Welcome \\x1b[31mred")
    assert lines[table + 7].startswith("443/tcp open  ssl/http Evil \\x1b")
    assert "Service Info: Host: web1; OS: Linux; CPE: cpe:/o:linux:linux_kernel" in lines
    assert lines[lines.index("Host script results:") + 1:][:2] == ["| host-thing: one", "|_two"]
    assert "Service detection performed. Please report any incorrect results at https://nmap.org/submit/ ." in lines
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", text)


def test_grepable_output_fields() -> None:
    text = _render(GrepableOutput)
    assert "22/open/tcp//ssh//OpenSSH 9.2p1 (protocol 2.0)/" in text
    assert "443/open/tcp//ssl|http//Evil \\x1b" in text
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", text)


def test_xml_service_and_script_elements() -> None:
    from xml.etree import ElementTree

    text = _render(XmlOutput)
    root = ElementTree.fromstring(text)
    ports = {p.get("portid"): p for p in root.iter("port")}
    svc = ports["80"].find("service")
    assert svc is not None and svc.attrib == {"name": "http", "product": "nginx", "version": "1.22.1",
                                              "extrainfo": "Debian", "hostname": "web1", "ostype": "Linux",
                                              "method": "probed", "conf": "10"}
    assert [c.text for c in svc.findall("cpe")] == list(DETAIL.cpe)
    assert ports["443"].find("service").get("tunnel") == "ssl"
    script = ports["22"].find("script")
    assert script.get("id") == "ssh-hostkey" and script.find("table/elem[@key='bits']").text == "256"
    assert root.find("host/hostscript/script").get("id") == "host-thing"


def test_json_output_carries_version_and_scripts() -> None:
    doc = json.loads(_render(JsonOutput))
    port = next(p for p in doc["hosts"][0]["ports"] if p["port"] == 80)
    assert port["version"]["product"] == "nginx" and port["version"]["cpe"][0].startswith("cpe:/a")
    assert port["scripts"][0]["id"] == "http-title" and HOSTILE in port["scripts"][0]["output"]
    ssh = next(p for p in doc["hosts"][0]["ports"] if p["port"] == 22)
    assert ssh["scripts"][0]["elements"][0]["children"][0] == {"key": "bits", "value": "256"}
    assert doc["hosts"][0]["scripts"][0]["output"] == "one\ntwo"


def test_xml_is_valid_against_nmaps_dtd(tmp_path) -> None:
    import subprocess

    path = tmp_path / "out.xml"
    path.write_text(_render(XmlOutput, stylesheet=None))
    checked = subprocess.run(["xmllint", "--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd", str(path)],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_json_is_valid_against_the_schema() -> None:
    import importlib.resources

    import jsonschema

    schema = json.loads(importlib.resources.files("leadline").joinpath("data", "json-schema.json").read_text())
    jsonschema.validate(json.loads(_render(JsonOutput)), schema)


def test_a_bad_versiondb_fails_before_any_output(tmp_path) -> None:
    from leadline.errors import UsageError

    sink = Recorder()
    config = ScanConfig(privileged=True, targets=(ADDRESS,), version_detection=True,
                        versiondb=str(tmp_path / "nope"))
    with pytest.raises(UsageError, match="cannot read the version database"):
        Scan(config, sink, warn=lambda w: None, engines=FakeEngines({}))
    assert sink.run is None

