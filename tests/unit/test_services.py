"""The services table: parsing, look-ups, top ports, wildcards, caching, and the shipped table's builder."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from leadline.services import NMAP_SERVICES_PATH, ServiceTable

SAMPLE = """\
# a comment line
tcpmux     1/tcp   0.001995  # TCP Port Service Multiplexer
echo       7/tcp   0.004855
echo       7/udp   0.024679
ssh       22/tcp   0.182286  # Secure Shell Login
telnet    23/tcp   0.221265
http      80/tcp   0.484143  # World Wide Web HTTP
www-alias 80/tcp   0.000001  # a second entry for a port does not rename it
https    443/tcp   0.208669
http-alt 8008/tcp  0.000001
http-alt 8080/tcp  0.000001
nofreq   9999/tcp
broken   notaport/tcp 0.5
toolarge 70000/tcp 0.5
"""


@pytest.fixture(scope="module")
def sample() -> ServiceTable:
    return ServiceTable.parse(SAMPLE)


def test_names_and_frequencies(sample: ServiceTable) -> None:
    assert sample.name(22, "tcp") == "ssh"
    assert sample.name(7, "udp") == "echo"
    assert sample.name(22, "udp") is None
    assert sample.name(80, "tcp") == "http"
    assert sample.frequency(80, "tcp") == pytest.approx(0.484143)
    assert sample.frequency(9999, "tcp") == 0.0
    assert sample.name(9999, "tcp") == "nofreq"
    assert sample.frequency(12345, "tcp") == 0.0


def test_malformed_lines_are_skipped(sample: ServiceTable) -> None:
    assert sample.ports("tcp") == [1, 7, 22, 23, 80, 443, 8008, 8080, 9999]


def test_top_orders_by_descending_frequency_then_port(sample: ServiceTable) -> None:
    assert sample.top(4, "tcp") == [80, 23, 443, 22]
    assert sample.top(100, "tcp")[-3:] == [8008, 8080, 9999]
    assert sample.top(0, "tcp") == []
    assert sample.top(5, "udp") == [7]
    assert sample.top(5, "sctp") == []


@pytest.mark.parametrize(
    ("pattern", "ports"),
    [("http", [80]), ("http*", [80, 443, 8008, 8080]), ("http-???", [8008, 8080]), ("?cho", [7]), ("*", [1, 7, 22, 23, 80, 443, 8008, 8080, 9999]),
     ("HTTP", []), ("htt", []), ("http.", [])],
)
def test_ports_named_uses_nmap_wildcards(sample: ServiceTable, pattern: str, ports: list[int]) -> None:
    assert sample.ports_named(pattern, "tcp") == ports


def test_load_is_cached_per_path(tmp_path: Path) -> None:
    path = tmp_path / "services"
    path.write_text(SAMPLE)
    first = ServiceTable.load(str(path))
    path.write_text("other 5/tcp 0.9\n")
    assert ServiceTable.load(str(path)) is first
    assert ServiceTable.load() is ServiceTable.load()


def test_default_load_prefers_nmaps_table() -> None:
    table = ServiceTable.load()
    expected = NMAP_SERVICES_PATH if os.path.exists(NMAP_SERVICES_PATH) else "leadline-services"
    assert table.source == expected


def test_nmaps_table_top_ports_follow_its_frequencies() -> None:
    table = ServiceTable.load(NMAP_SERVICES_PATH)
    top = table.top(1000, "tcp")
    assert len(top) == len(set(top)) == 1000
    frequencies = [table.frequency(port, "tcp") for port in top]
    assert frequencies == sorted(frequencies, reverse=True)
    cutoff = frequencies[-1]
    outside = set(table.ports("tcp")) - set(top)
    assert all(table.frequency(port, "tcp") <= cutoff for port in outside)
    assert top[:3] == [80, 23, 443]


def test_shipped_table_loads_and_covers_the_default_lists() -> None:
    table = ServiceTable.shipped()
    assert table.source == "leadline-services"
    assert table.name(80, "tcp") == "http"
    assert table.name(22, "tcp") == "ssh"
    assert table.name(53, "udp") == "domain"
    assert len(table.top(1000, "tcp")) == 1000
    assert len(table.top(1000, "udp")) == 1000
    assert table.top(3, "tcp") == [80, 23, 443]


def load_builder() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "scripts" / "build_services.py"
    spec = importlib.util.spec_from_file_location("build_services", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_services", module)
    spec.loader.exec_module(module)
    return module


def test_builder_ranks_ports_and_takes_names_from_the_system_list() -> None:
    builder = load_builder()
    system = builder.read_system_services("http 80/tcp www # web\nssh 22/tcp\ndomain 53/udp\nnntp 119/tcp\ngit 9418/tcp\n")
    table = ServiceTable.parse(builder.render(builder.build_table(system)))
    assert table.name(80, "tcp") == "http"
    assert table.name(9418, "tcp") == "git"
    assert table.name(3306, "tcp") == "mysql"  # named by the builder's own list
    assert table.top(3, "tcp") == list(builder.unique_in_order(builder.TCP_RANKING))[:3]
    ranked = builder.unique_in_order(builder.TCP_RANKING)
    unranked_low_port = next(port for port in range(1024, 0, -1) if port not in ranked and (port, "tcp") not in system)
    assert table.name(unranked_low_port, "tcp") is not None
    assert table.frequency(ranked[-1], "tcp") > table.frequency(9418, "tcp") > table.frequency(unranked_low_port, "tcp") > 0
    assert set(range(1, 1025)) <= set(table.ports("tcp"))


def test_builder_rankings_have_no_duplicates() -> None:
    builder = load_builder()
    assert len(set(builder.TCP_RANKING)) == len(builder.TCP_RANKING)
    assert len(set(builder.UDP_RANKING)) == len(builder.UDP_RANKING)
    assert all(0 < port <= 65535 for port in builder.TCP_RANKING + builder.UDP_RANKING)


def test_parse_skips_what_nmap_skips_and_keeps_the_first_name() -> None:
    text = (
        "a 1/tcp 0.5 # comment\n#c 2/tcp\nb  3/udp\nc 99999/tcp 0.1\nd 4/tcp notanumber\n"
        " e 5/tcp 0.2\nf\t6/tcp\t0.3\ng 7/tcp#comment\nh 1/tcp 0.9\nnoport\n"
    )
    table = ServiceTable.parse(text)
    assert [(p, table.name(p, "tcp"), table.frequency(p, "tcp")) for p in table.ports("tcp")] == [
        (1, "a", 0.5), (4, "d", 0.0), (5, "e", 0.2), (6, "f", 0.3), (7, "g", 0.0)]
    assert table.name(3, "udp") == "b" and 2 not in table.ports("tcp")
