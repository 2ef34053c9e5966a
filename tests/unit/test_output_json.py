"""JSON output: one valid document, streamed, with the fields docs/json-schema.md promises."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from leadline.model import Hostname, PortResult, PortState, Reason
from leadline.output.json import JsonOutput
from tests.unit.test_output_samples import down_host, lab_ports, render, run_info, stats, up_host

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "json-schema.md"

TOP_KEYS = {"scanner", "schema", "version", "args", "start", "scaninfo", "verbosity", "debugging", "ping_only", "list_only",
            "hosts", "runstats"}
HOST_KEYS = {"address", "family", "status", "reason", "reason_ttl", "hostnames", "latency", "mac", "mac_vendor",
             "start_time", "end_time", "other_addresses", "timed_out", "interrupted", "warnings", "ports", "scripts",
             "distance", "trace", "through"}
PORT_KEYS = {"port", "protocol", "state", "reason", "reason_ttl", "service", "evidence", "version", "scripts"}
STATS_KEYS = {"end", "elapsed", "hosts_up", "hosts_down", "hosts_total", "exit", "summary", "error_message"}


def test_document_parses_and_carries_every_port() -> None:
    ports = (
        PortResult(53, "udp", PortState.OPEN_FILTERED, Reason.NO_RESPONSE, service="domain"),
        *lab_ports(),
        PortResult(22, "udp", PortState.CLOSED, Reason.PORT_UNREACH, 64, evidence=("UDP -> ICMP port unreachable (ttl 64)",)),
    )
    host = up_host(ports, hostnames=(Hostname("iot.lab", "user"),))
    doc = json.loads(render(JsonOutput, run_info(verbosity=1), [host, down_host()], stats(up=1, down=1)))
    assert set(doc) == TOP_KEYS
    assert doc["scanner"] == "leadline" and doc["schema"] == 1 and doc["version"] == "0.1.0"
    assert doc["scaninfo"] == [{"scan_type": "connect", "protocol": "tcp", "numservices": 101, "services": "1-100,8000"}]
    first, second = doc["hosts"]
    assert set(first) == HOST_KEYS and set(second) == HOST_KEYS
    assert first["status"] == "up" and first["reason"] == "arp-response" and first["latency"] == 0.00032
    assert first["hostnames"] == [{"name": "iot.lab", "type": "user"}]
    assert second == {**second, "address": "198.18.201.9", "status": "down", "reason": "no-response", "ports": []}
    assert len(first["ports"]) == 103  # nothing folded
    assert all(set(p) == PORT_KEYS for p in first["ports"])
    assert [(p["port"], p["protocol"]) for p in first["ports"][-2:]] == [(22, "udp"), (53, "udp")]
    assert first["ports"][-2] == {"port": 22, "protocol": "udp", "state": "closed", "reason": "port-unreach", "reason_ttl": 64,
                                  "service": None, "evidence": ["UDP -> ICMP port unreachable (ttl 64)"], "version": None,
                                  "scripts": []}
    assert set(doc["runstats"]) == STATS_KEYS
    assert doc["runstats"]["hosts_total"] == 2 and doc["runstats"]["exit"] == "success"


def test_hosts_stream_one_per_line_before_the_run_ends() -> None:
    stream = io.StringIO()
    sink = JsonOutput(stream)
    sink.begin(run_info())
    sink.host(up_host(lab_ports((22, 23))))
    sink.host(up_host(lab_ports((80,)), address="198.18.201.3"))
    partial = stream.getvalue().splitlines()
    assert partial[0].endswith('"hosts": [')
    assert json.loads(partial[1])["address"] == "198.18.201.2"
    assert json.loads(partial[2].removeprefix(","))["address"] == "198.18.201.3"


def test_interrupted_run_is_still_one_valid_document() -> None:
    stream = io.StringIO()
    sink = JsonOutput(stream)
    sink.begin(run_info())
    sink.host(up_host())
    sink.end(stats(exit="error", error="interrupted by the user"))
    sink.host(up_host(address="198.18.201.3"))  # after end: ignored
    doc = json.loads(stream.getvalue())
    assert [h["address"] for h in doc["hosts"]] == ["198.18.201.2"]
    assert doc["runstats"]["exit"] == "error" and doc["runstats"]["error_message"] == "interrupted by the user"


def test_empty_run_is_valid() -> None:
    doc = json.loads(render(JsonOutput, run_info(ping_only=True), [], stats(up=0, down=0)))
    assert doc["hosts"] == [] and doc["scaninfo"] == [] and doc["ping_only"] is True


def test_schema_document_names_every_key() -> None:
    documented = set(re.findall(r"`([a-z_]+)`", SCHEMA_DOC.read_text(encoding="utf-8")))
    missing = (TOP_KEYS | HOST_KEYS | PORT_KEYS | STATS_KEYS | {"scan_type", "numservices", "services"}) - documented
    assert not missing
