"""-oJ and its schema agree: documents from several kinds of scan validate, and the checker bites."""

from __future__ import annotations

import json

import pytest

from leadline.model import HostResult, HostStatus, PortResult, PortState, Reason
from leadline.output.json import JsonOutput, host_to_json
from tests.schema_check import load_schema, schema_errors
from tests.unit.test_output_samples import down_host, lab_ports, render, run_info, stats, up_host


def _list_host(address: str) -> HostResult:
    return HostResult(address=address, family=4, status=HostStatus.UNKNOWN, status_reason=Reason.USER_SET)


SCANS = {
    "connect-with-arp": (run_info(), [up_host(status_reason_ttl=0), down_host()]),
    "unknown-service": (run_info(), [up_host((PortResult(1, "tcp", PortState.CLOSED, Reason.RESET, 64, "unknown"),
                                              PortResult(2, "tcp", PortState.OPEN, Reason.SYN_ACK, 64, None)),
                                             reason=Reason.ECHO_REPLY, status_reason_ttl=63, mac=None)]),
    "ping-sweep": (run_info(ping_only=True), [up_host((), status_reason_ttl=0), down_host()]),
    "list": (run_info("leadline -sL -n 198.18.1.0/30"), [_list_host(f"198.18.1.{i}") for i in range(4)]),
    "interrupted": (run_info(), [up_host(lab_ports((22, 80)), interrupted=True)]),
}


@pytest.mark.parametrize("name", sorted(SCANS))
def test_json_of_each_kind_of_scan_validates(name: str) -> None:
    run, hosts = SCANS[name]
    end = stats(up=sum(h.is_up for h in hosts), down=sum(h.status is HostStatus.DOWN for h in hosts),
                exit="error" if name == "interrupted" else "success")
    doc = json.loads(render(JsonOutput, run, hosts, end))
    assert schema_errors(doc, load_schema()) == []


def test_arp_reply_has_no_ttl_and_unknown_service_is_null() -> None:
    doc = host_to_json(up_host((PortResult(1, "tcp", PortState.CLOSED, Reason.RESET, 64, "unknown"),), status_reason_ttl=0))
    assert doc["reason"] == "arp-response" and doc["reason_ttl"] is None
    assert doc["ports"][0]["service"] is None and doc["ports"][0]["reason_ttl"] == 64


def test_interrupted_host_is_marked() -> None:
    assert host_to_json(up_host(interrupted=True))["interrupted"] is True
    assert host_to_json(up_host())["interrupted"] is False


@pytest.mark.parametrize("breakage, needle", [
    (lambda d: d["hosts"][0].update(reason_ttl=0), "reason_ttl"),
    (lambda d: d["hosts"][0]["ports"][0].update(service="unknown"), "service"),
    (lambda d: d["hosts"][0].pop("interrupted"), "interrupted"),
    (lambda d: d["hosts"][0].update(extra=1), "extra"),
    (lambda d: d["runstats"].update(exit="maybe"), "exit"),
])
def test_the_checker_catches_disagreement(breakage: object, needle: str) -> None:
    doc = json.loads(render(JsonOutput, run_info(), [up_host()], stats()))
    breakage(doc)  # type: ignore[operator]
    errors = schema_errors(doc, load_schema())
    assert errors and needle in " ".join(errors)
