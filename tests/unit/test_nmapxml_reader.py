"""The oracle tests' nmap-XML reader: folded ports are expanded, and every count is checked.

A reader that trusted ``<extraports>`` blindly would fill in a port the
scanner never reported, and an oracle comparison would pass without it.
"""

from __future__ import annotations

import re

import pytest

from tests.oracle.nmapxml import FoldError, diff_states, expand_ports, read_states


def document(ports: str, services: str = "1-10") -> str:
    """A one-host nmaprun with ``ports`` as the body of its <ports> element."""
    return f"""<?xml version="1.0"?>
<nmaprun scanner="nmap" args="nmap -p {services} 198.18.1.10">
<scaninfo type="syn" protocol="tcp" numservices="10" services="{services}"/>
<host><status state="up" reason="user-set" reason_ttl="0"/>
<address addr="198.18.1.10" addrtype="ipv4"/>
<address addr="02:4c:11:00:00:10" addrtype="mac"/>
<ports>{ports}</ports>
</host>
</nmaprun>"""


OPEN_22 = '<port protocol="tcp" portid="2"><state state="open" reason="syn-ack" reason_ttl="64"/></port>'
# nmap 7.80 on (and leadline) name each reason's ports: 2 open, 1 and 3-6 closed, 7-10 filtered.
NAMED = OPEN_22 + (
    '<extraports state="closed" count="5">'
    '<extrareasons reason="reset" count="5" proto="tcp" ports="1,3-6"/></extraports>'
    '<extraports state="filtered" count="4">'
    '<extrareasons reason="no-response" count="3" proto="tcp" ports="7-9"/>'
    '<extrareasons reason="host-unreach" count="1" proto="tcp" ports="10"/></extraports>'
)


def test_expand_ports() -> None:
    assert expand_ports("1,3-5,,9") == [1, 3, 4, 5, 9]
    assert expand_ports("") == []


def test_named_folds_expand_to_one_state_per_port() -> None:
    host = read_states(document(NAMED))["198.18.1.10"]
    assert (host.status, host.status_reason, host.mac) == ("up", "user-set", "02:4c:11:00:00:10")
    assert len(host.ports) == 10
    assert host.ports[("tcp", 2)] == ("open", "syn-ack")
    assert host.ports[("tcp", 1)] == host.ports[("tcp", 6)] == ("closed", "reset")
    assert host.ports[("tcp", 9)] == ("filtered", "no-response")
    assert host.ports[("tcp", 10)] == ("filtered", "host-unreach")


def test_a_port_nobody_reported_stays_missing_and_shows_in_the_diff() -> None:
    # Port 6 is neither listed nor folded: the old reader filled it in from <scaninfo>.
    ours = read_states(document(NAMED.replace('count="5"', 'count="4"').replace("1,3-6", "1,3-5")))["198.18.1.10"]
    theirs = read_states(document(NAMED))["198.18.1.10"]
    assert ("tcp", 6) not in ours.ports and len(ours.ports) == 9
    assert diff_states(ours, theirs) == ["6/tcp: leadline=None nmap=('closed', 'reset')"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (NAMED.replace('state="closed" count="5"', 'state="closed" count="6"'), "extraports 'closed' count=6 but folds 5"),
        (NAMED.replace('state="filtered" count="4"', 'state="filtered" count="3"'), "extraports 'filtered' count=3 but folds 4"),
        (NAMED.replace('reason="reset" count="5"', 'reason="reset" count="4"'), "extrareasons 'reset' count=4 but names 5"),
        (NAMED.replace('ports="1,3-6"', 'ports="1-2,4-6"'), "port 2/tcp folded into 'closed' is reported twice"),
        (NAMED.replace('ports="10"', 'ports="9"'), "port 9/tcp folded into 'filtered' is reported twice"),
        (NAMED.replace(' count="5">', ">"), "<extraports> has no count"),
        (OPEN_22 + OPEN_22, "port 2/tcp listed twice"),
    ],
    ids=["extraports-too-many", "extraports-too-few", "extrareasons-count", "folds-a-listed-port",
         "folds-a-port-twice", "no-count", "listed-twice"],
)
def test_a_count_that_disagrees_with_the_folded_ports_fails(body: str, message: str) -> None:
    with pytest.raises(FoldError, match="^" + re.escape(f"host 198.18.1.10: {message}")):
        read_states(document(body))


UNNAMED = OPEN_22 + '<extraports state="closed" count="{count}"><extrareasons reason="reset" count="{count}"/></extraports>'


def test_one_unnamed_fold_covers_the_scanned_ports_not_listed() -> None:
    host = read_states(document(UNNAMED.format(count=9)))["198.18.1.10"]
    assert len(host.ports) == 10
    assert host.ports[("tcp", 2)] == ("open", "syn-ack")
    assert {host.ports[("tcp", p)] for p in (1, *range(3, 11))} == {("closed", "reset")}


@pytest.mark.parametrize("count", [8, 10])
def test_an_unnamed_fold_whose_count_is_not_the_unlisted_ports_fails(count: int) -> None:
    with pytest.raises(FoldError, match=f"count={count} but 9 scanned ports are not listed"):
        read_states(document(UNNAMED.format(count=count)))


def test_two_unnamed_folds_cannot_be_told_apart() -> None:
    body = (OPEN_22 + '<extraports state="closed" count="5"><extrareasons reason="reset" count="5"/></extraports>'
            '<extraports state="filtered" count="4"><extrareasons reason="no-response" count="4"/></extraports>')
    with pytest.raises(FoldError, match="2 <extraports> and some name no ports"):
        read_states(document(body))


def test_a_host_without_ports_has_none() -> None:
    text = document("").replace("<ports></ports>", "")
    assert read_states(text)["198.18.1.10"].ports == {}
