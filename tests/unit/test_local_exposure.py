"""The outside view's decisions, without a network: labels, targets, firewall rules, the safety net."""

from __future__ import annotations

import pytest

from leadline.local.exposure import ProbeView, classify_tcp, classify_udp, target_of
from leadline.local.firewall import Rules, find_rule, read_rules
from leadline.local.model import LocalSocket
from leadline.local.probe import ExposureError, check_target

VIEW = ProbeView("llx-1", ("198.19.252.1",))


@pytest.mark.parametrize(("state", "reason", "expected"), [
    ("open", "syn-ack", ("exposed", "syn-ack")),
    ("closed", "reset", ("filtered", "rejected (reset)")),
    ("filtered", "no-response", ("filtered", "dropped (no-response)")),
    ("filtered", "port-unreach", ("filtered", "rejected (port-unreach)")),
    ("filtered", "admin-prohibited", ("filtered", "rejected (admin-prohibited)")),
])
def test_tcp_labels(state: str, reason: str, expected: tuple[str, str]) -> None:
    assert classify_tcp(state, reason) == expected


@pytest.mark.parametrize(("outcome", "label"), [
    ("reply", "exposed"), ("delivered", "exposed"), ("dropped", "filtered"), ("ECONNREFUSED", "filtered"),
    ("EHOSTUNREACH", "filtered"),
])
def test_udp_labels(outcome: str, label: str) -> None:
    assert classify_udp(outcome)[0] == label


def _listener(address: str, protocol: str = "tcp") -> LocalSocket:
    return LocalSocket(protocol, 6 if ":" in address else 4, "LISTEN" if protocol == "tcp" else "UNCONN", address, 80)


@pytest.mark.parametrize(("address", "expected"), [
    ("0.0.0.0", "198.19.252.1"),
    ("198.19.252.1", "198.19.252.1"),
    ("::ffff:198.19.252.1", "198.19.252.1"),
    ("127.0.0.53", ("local-only", "bound to 127.0.0.53")),
    ("::1", ("local-only", "bound to ::1")),
    ("::ffff:127.0.0.1", ("local-only", "bound to ::ffff:127.0.0.1")),
    ("2001:db8::1", ("untested", "IPv6 only; the probe link speaks IPv4")),
    ("10.1.2.3", ("untested", "bound to 10.1.2.3, which the probe link does not reach")),
])
def test_what_gets_probed(address: str, expected: object) -> None:
    assert target_of(_listener(address), VIEW) == expected


def test_nothing_outside_the_lab_range_or_the_link_is_ever_probed() -> None:
    assert check_target("198.19.252.1", ["198.19.252.1"]) == "198.19.252.1"
    for address, allowed in (("127.0.0.1", ["127.0.0.1"]), ("10.0.0.1", ["10.0.0.1"]), ("198.18.1.10", ["198.19.252.1"])):
        with pytest.raises(ExposureError, match="refusing to probe"):
            check_target(address, allowed)


IPTABLES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 3306 -j DROP
-A INPUT -p tcp -m multiport --dports 6000:6010,6379 -j REJECT --reject-with icmp-port-unreachable
-A INPUT -p udp -m udp --dport 161 -j DROP
COMMIT"""
NFT = """table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport { 80, 8000-8100 } drop
		udp dport 5353 reject
	}
}"""


def _rules(ipt: str = IPTABLES, nft: str = NFT) -> Rules:
    outputs = {"iptables-save": ipt, "ip6tables-save": "", "nft": nft}
    return read_rules(lambda argv: outputs[argv[0]])


@pytest.mark.parametrize(("protocol", "port", "family", "needle"), [
    ("tcp", 3306, "iptables", "--dport 3306 -j DROP"),
    ("tcp", 6379, "iptables", "--dports 6000:6010,6379 -j REJECT"),
    ("tcp", 6005, "iptables", "--dports 6000:6010,6379 -j REJECT"),
    ("udp", 161, "iptables", "--dport 161 -j DROP"),
    ("tcp", 8050, "nftables", "tcp dport { 80, 8000-8100 } drop"),
    ("udp", 5353, "nftables", "udp dport 5353 reject"),
])
def test_the_rule_that_stops_a_probe_is_named(protocol: str, port: int, family: str, needle: str) -> None:
    rule = find_rule(_rules(), protocol, port)
    assert rule is not None and rule.family == family and needle in rule.text


def test_no_rule_is_named_when_none_covers_the_port_unless_the_policy_drops() -> None:
    assert find_rule(_rules(), "udp", 3306) is None
    assert find_rule(_rules(), "tcp", 161) is None
    dropping = _rules(IPTABLES.replace(":INPUT ACCEPT", ":INPUT DROP"), "")
    rule = find_rule(dropping, "tcp", 22)
    assert rule is not None and rule.text.startswith(":INPUT DROP")
    assert find_rule(_rules("", ""), "tcp", 22) is None
