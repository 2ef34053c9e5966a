"""IPv6 in the practice lab: addressing and its safety rules, a silent segment, ND discovery vs nmap.

The lab is built under its own prefix (the suite's + "jn") once for this module; its
hosts answer IPv6 inside fd18:4c11::/48 only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadline.engines.ndp import Ipv6Routes
from leadline.errors import LabError
from leadline.lab import Lab, builder, practice, practice_topology
from leadline.lab.topology import Host, Interface, Route, Topology
from tests.conftest import scan_in_lab
from tests.oracle.nmapxml import read_states
from tests.conftest import lab_prefix

PREFIX = lab_prefix("jn")
LEADLINE = str(Path(sys.executable).parent / "leadline")
ON_LINK = {
    practice.COURSE6: "02:4C:11:00:00:10",
    practice.IOT6: "B8:27:EB:4C:11:20",
    practice.WINDOWS6: "00:15:5D:4C:11:30",
    practice.FIREWALL6: "02:4C:11:00:00:40",
    practice.ROUTER1_6: "02:4C:11:00:00:01",
}


def _switch_counters(lab: Lab) -> dict[str, tuple[int, int]]:
    done = subprocess.run(["ip", "-n", lab.namespace("switch"), "-s", "-j", "link", "show"],
                          capture_output=True, text=True, timeout=10, check=True)
    return {link["ifname"]: (link["stats64"]["rx"]["packets"], link["stats64"]["tx"]["packets"])
            for link in json.loads(done.stdout) if link["ifname"] != "lo"}


@pytest.fixture(scope="module")
def lab6() -> Iterator[tuple[Lab, dict[str, tuple[int, int]]]]:
    """The practice lab, and its switch's frame counters one second after it came up."""
    if os.geteuid() != 0:
        pytest.fail("the IPv6 lab tests need root (network namespaces)", pytrace=False)
    lab = Lab(PREFIX)
    lab.down()
    try:
        lab.up(practice_topology())
        time.sleep(1.0)  # unsolicited reports and solicitations would go out in this second
        yield lab, _switch_counters(lab)
    finally:
        lab.down()


# -- topology rules ---------------------------------------------------------------------


def _one_host(interface: Interface, *routes: Route) -> Topology:
    return Topology("t", (Host("scanner", (interface,), routes=routes),))


def test_only_the_lab_ipv6_prefix_is_accepted() -> None:
    _one_host(Interface("lan", "198.18.9.2/24", address6="fd18:4c11:0:9::2/64"),
              Route("fd18:4c11::/48", via="fd18:4c11:0:9::1")).validate()
    for address6 in ("2001:db8::2/64", "fd18:4c12::2/64", "fe80::2/64", "::1/128"):
        with pytest.raises(LabError, match="outside the lab's IPv6 range fd18:4c11::/48"):
            _one_host(Interface("lan", "198.18.9.2/24", address6=address6)).validate()
    with pytest.raises(LabError, match="is not an IPv6 address"):
        _one_host(Interface("lan", "198.18.9.2/24", address6="198.18.9.3/24")).validate()


def test_ipv6_routes_stay_inside_the_lab() -> None:
    interface = Interface("lan", "198.18.9.2/24", address6="fd18:4c11:0:9::2/64")
    with pytest.raises(LabError, match="outside the lab's IPv6 range"):
        _one_host(interface, Route("::/1", via="fd18:4c11:0:9::1")).validate()
    with pytest.raises(LabError, match="an IPv6 route must name a prefix"):
        _one_host(interface, Route("default", via="fd18:4c11:0:9::1")).validate()
    with pytest.raises(LabError, match="is not an IPv4 address"):
        _one_host(interface, Route("198.18.0.0/15", via="fd18:4c11:0:9::1")).validate()


def test_ipv4_only_hosts_are_configured_as_before() -> None:
    """A host without IPv6 keeps IPv6 disabled and gets exactly the IPv4 setup it always had."""
    assert builder.base_sysctls(False, 64) == {
        "net.ipv6.conf.all.disable_ipv6": "1",
        "net.ipv6.conf.default.disable_ipv6": "1",
        "net.ipv4.ip_forward": "0",
        "net.ipv4.conf.all.rp_filter": "0",
        "net.ipv4.conf.default.rp_filter": "0",
        "net.ipv4.ip_default_ttl": "64",
        "net.ipv4.icmp_ratelimit": "0",
    }
    host = Host("old", (Interface("lan", "198.18.1.9/24", "02:4c:11:00:00:09"),),
                routes=(Route("198.18.0.0/15", via="198.18.1.1"),))
    assert builder.host_commands(host) == ["link set lo up", "addr add 198.18.1.9/24 dev eth0",
                                           "link set eth0 up", "route add 198.18.0.0/15 via 198.18.1.1"]


def test_practice_hosts_have_both_families() -> None:
    topology = practice_topology()
    course = topology.host("course")
    assert course.address == practice.COURSE and course.address6 == practice.COURSE6
    assert "addr add fd18:4c11:0:1::10/64 dev eth0" in builder.host_commands(course)
    values = builder.base_sysctls(True, 128, ipv6=True)
    assert values["net.ipv6.conf.all.disable_ipv6"] == "0"
    assert values["net.ipv6.conf.default.hop_limit"] == "128"
    assert values["net.ipv6.conf.default.accept_dad"] == "0"
    assert values["net.ipv6.conf.all.forwarding"] == "1"
    v6_rules = [r.spec for r in topology.host("firewall").firewall if r.family == 6]
    assert "-p tcp --dport 143 -j REJECT --reject-with icmp6-adm-prohibited" in v6_rules


def test_route_table_tells_on_link_from_routed() -> None:
    text = (
        "fd184c11000000010000000000000000 40 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
        "fd184c11000000000000000000000000 30 00000000000000000000000000000000 00 "
        "fd184c11000000010000000000000001 00000400 00000001 00000000 00000003     eth0\n"
        "fd184c11000000090000000000000000 40 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000400 00000001 00000000 00200201     eth1\n"
        "garbage line\n"
    )
    routes = Ipv6Routes(text, {"eth0": 1, "eth1": 1})
    on_link = routes.route_for("fd18:4c11:0:1::10")
    assert on_link is not None and on_link.on_link and on_link.ethernet and on_link.interface == "eth0"
    routed = routes.route_for("fd18:4c11:0:3::10")
    assert routed is not None and not routed.on_link
    assert routes.route_for("fd18:4c11:0:9::1") is None  # a reject route leads nowhere
    assert routes.route_for("2001:db8::1") is None


# -- the running lab ----------------------------------------------------------------------


@pytest.mark.lab
def test_segments_stay_silent_until_a_scan(lab6: tuple[Lab, dict[str, tuple[int, int]]]) -> None:
    """No DAD, router solicitation or MLD report crosses the switch: captures hold only scans."""
    _, counters = lab6
    assert counters and all(counts == (0, 0) for counts in counters.values()), counters


@pytest.mark.lab
def test_scanner_reaches_the_far_host_over_both_routers(lab6: tuple[Lab, dict[str, tuple[int, int]]]) -> None:
    lab, _ = lab6
    done = lab.run("scanner", ["ip", "-6", "route", "get", practice.FAR6], check=True)
    assert f"via {practice.ROUTER1_6}" in done.stdout
    hops = lab.run("router1", ["ip", "-6", "route", "get", practice.FAR6], check=True)
    assert f"via {practice.ROUTER2_6}" in hops.stdout
    # Nothing of the lab's IPv6 exists outside it.
    root = subprocess.run(["ip", "-6", "-o", "addr", "show"], capture_output=True, text=True, timeout=10)
    assert "fd18:4c11" not in root.stdout


@pytest.mark.lab
def test_nd_discovery_matches_nmap(lab6: tuple[Lab, dict[str, tuple[int, int]]]) -> None:
    lab, _ = lab6
    targets = [*ON_LINK, practice.NO_HOST6, practice.FAR6, practice.SCANNER6]
    script = ("import json, sys\nfrom leadline.engines.ndp import ndp_discover\n"
              "print(json.dumps([[r.address, r.up, r.reason.value, r.ttl, r.mac, r.latency]"
              " for r in ndp_discover(sys.argv[1:])]))")
    ours_run = scan_in_lab(lab, [sys.executable, "-c", script, *targets], timeout=60)
    assert ours_run.returncode == 0, ours_run.stderr
    ours = {row[0]: row for row in json.loads(ours_run.stdout)}
    assert sorted(ours) == sorted(targets)
    for address, mac in ON_LINK.items():
        assert ours[address][1:5] == [True, "nd-response", None, mac]
        assert 0 < ours[address][5] < 1
    assert ours[practice.FAR6][1:5] == [True, "echo-reply", 62, None]
    assert ours[practice.SCANNER6][1:3] == [True, "localhost-response"]
    assert ours[practice.NO_HOST6][1:3] == [False, "no-response"]

    theirs_run = scan_in_lab(lab, ["nmap", "-6", "-sn", "-n", "-oX", "-", *targets], timeout=60)
    assert theirs_run.returncode == 0, theirs_run.stderr
    theirs = read_states(theirs_run.stdout)
    assert sorted(theirs) == sorted(a for a in targets if a != practice.NO_HOST6)  # nmap omits down hosts
    for address, states in theirs.items():
        assert (states.status, states.status_reason, states.mac) == ("up", ours[address][2], ours[address][4])


@pytest.mark.lab
@pytest.mark.serial  # wall-clock bounds: another test beside it would stretch them
def test_nd_discovery_stops_when_asked(lab6: tuple[Lab, dict[str, tuple[int, int]]]) -> None:
    """A set stop event ends the sweep at once; silent hosts are then not reported."""
    lab, _ = lab6
    script = ("import json, threading, time\nfrom leadline.engines.ndp import ndp_discover\n"
              "stop = threading.Event(); stop.set(); t = time.monotonic()\n"
              f"rows = [r.address for r in ndp_discover([{practice.NO_HOST6!r}, {practice.SCANNER6!r}], stop=stop)]\n"
              "print(json.dumps([rows, time.monotonic() - t]))")
    done = scan_in_lab(lab, [sys.executable, "-c", script], timeout=30)
    assert done.returncode == 0, done.stderr
    rows, elapsed = json.loads(done.stdout)
    assert rows == [practice.SCANNER6] and elapsed < 0.5


@pytest.mark.lab
def test_ipv6_prefix_targets_expand_with_dash_6(lab6: tuple[Lab, dict[str, tuple[int, int]]]) -> None:
    lab, _ = lab6
    done = scan_in_lab(lab, [LEADLINE, "-6", "-sL", "-n", "-oX", "-", "fd18:4c11:0:1::/120"], timeout=30)
    assert done.returncode == 0, done.stderr
    listed = read_states(done.stdout)
    assert len(listed) == 256 and "fd18:4c11:0:1::ff" in listed
    refused = scan_in_lab(lab, [LEADLINE, "-sL", "-n", "fd18:4c11:0:1::/120"], timeout=30)
    assert "you have to use the -6 option" in refused.stdout + refused.stderr



def test_nd_discovery_refuses_ipv4_targets_in_one_line() -> None:
    from leadline.engines.ndp import ndp_discover
    from leadline.errors import UsageError

    with pytest.raises(UsageError, match="^'198.18.1.10' is not an IPv6 address"):
        list(ndp_discover([practice.COURSE6, practice.COURSE]))


@pytest.mark.lab
def test_ipv6_discovery_honours_p_probes_pcap_and_packet_trace(lab6: tuple[Lab, dict[str, tuple[int, int]]]) -> None:
    """-PS22 alone: the routed target gets one SYN (no echo request), traced and in the pcap."""
    lab, _ = lab6
    pcap = Path("/tmp") / f"leadline-nd-{os.getpid()}.pcap"
    try:
        done = scan_in_lab(lab, [LEADLINE, "-6", "-sn", "-n", "-PS22", "--packet-trace", "--pcap", str(pcap), practice.FAR6], timeout=60)
        assert done.returncode == 0, done.stderr
        sent = [line for line in done.stdout.splitlines() if line.startswith("SENT")]
        assert sent and all(f"> [{practice.FAR6}]:22 S " in line for line in sent), sent
        assert any(line.startswith("RCVD") and f"TCP [{practice.FAR6}]:22 >" in line for line in done.stdout.splitlines())
        assert "Host is up" in done.stdout
        from scapy.layers.inet6 import IPv6
        from scapy.layers.inet import TCP
        from scapy.utils import rdpcap

        packets = [IPv6(bytes(p)) for p in rdpcap(str(pcap))]
        assert packets[0].dst == practice.FAR6 and packets[0][TCP].dport == 22 and packets[0][TCP].flags == "S"
        assert any(p.src == practice.FAR6 for p in packets[1:])
    finally:
        pcap.unlink(missing_ok=True)


@pytest.mark.lab
def test_ipv6_discovery_honours_max_rate(lab6: tuple[Lab, dict[str, tuple[int, int]]]) -> None:
    """Five neighbour solicitations at --max-rate 5 take about a second; unpaced they take milliseconds."""
    lab, _ = lab6
    script = ("import json, sys, time\nfrom dataclasses import replace\nfrom leadline.config import TIMING_TEMPLATES\n"
              "from leadline.engines.ndp import ndp_discover\n"
              "timing = replace(TIMING_TEMPLATES[4], max_rate=float(sys.argv[1]) or None)\n"
              "t = time.monotonic(); up = sum(r.up for r in ndp_discover(sys.argv[2:], timing))\n"
              "print(json.dumps([up, time.monotonic() - t]))")
    times = {}
    for rate in ("5", "0"):
        done = scan_in_lab(lab, [sys.executable, "-c", script, rate, *ON_LINK], timeout=60)
        assert done.returncode == 0, done.stderr
        up, times[rate] = json.loads(done.stdout)
        assert up == len(ON_LINK)
    assert times["5"] >= 0.7 and times["0"] < 0.5
