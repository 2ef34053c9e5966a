"""Normal output against nmap's own text for the same scans."""

from __future__ import annotations

import io

import pytest

from leadline.model import Hostname, HostResult, HostStatus, PortResult, PortState, Reason
from leadline.output.normal import NormalOutput
from tests.unit.test_output_samples import (
    NMAP_VERBOSE_REASON_FILE,
    START,
    as_leadline,
    down_host,
    lab_ports,
    render,
    run_info,
    stats,
    up_host,
    utc,
    verbose_run_events,
)

__all__ = ["utc"]
pytestmark = pytest.mark.usefixtures("utc")


def test_verbose_reason_file_matches_nmap_line_by_line() -> None:
    stream = io.StringIO()
    verbose_run_events(NormalOutput(stream, reason=True, verbosity=1, file_header=True))
    assert stream.getvalue() == as_leadline(NMAP_VERBOSE_REASON_FILE)


def test_terminal_run_has_starting_line_task_lines_and_done_line() -> None:
    stream = io.StringIO()
    verbose_run_events(NormalOutput(stream, reason=True, verbosity=1))
    lines = stream.getvalue().splitlines()
    assert lines[0] == "Starting leadline 0.1.0 at 2026-11-22 05:05 UTC"
    assert lines[1] == "leadline scan report for 198.18.201.9 [host down, received no-response]"
    assert lines[2] == "Initiating Connect Scan at 05:06"
    assert lines[3] == "Completed Connect Scan at 05:06, 2.00s elapsed (101 total ports)"
    assert lines[-1] == "leadline done: 2 IP addresses (1 host up) scanned in 15.46 seconds"


def test_task_lines_stay_off_the_terminal_without_verbosity() -> None:
    stream = io.StringIO()
    sink = NormalOutput(stream)
    sink.begin(run_info())
    sink.task_begin("Connect Scan", START, "198.18.201.2 [101 ports]")
    sink.task_end("Connect Scan", START + 1)
    assert stream.getvalue() == "Starting leadline 0.1.0 at 2026-11-22 05:05 UTC\n"


def test_small_scan_lists_every_port_after_a_blank_line() -> None:
    # nmap -sT -p 75-85 198.18.201.2
    expected = """\
leadline scan report for 198.18.201.2
Host is up (0.000089s latency).

PORT   STATE    SERVICE
75/tcp closed   svc75
76/tcp closed   svc76
77/tcp closed   svc77
78/tcp closed   svc78
79/tcp closed   svc79
80/tcp open     http
81/tcp filtered hosts2-ns
82/tcp closed   svc82
83/tcp closed   svc83
84/tcp closed   svc84
85/tcp closed   svc85
MAC Address: 06:8A:CE:DF:55:04 (Unknown)

"""
    out = render(NormalOutput, run_info(), [up_host(lab_ports(range(75, 86)), latency=0.000089)], None)
    assert out.split("\n", 1)[1] == expected


def test_unknown_service_reads_unknown() -> None:
    port = PortResult(60999, "tcp", PortState.CLOSED, Reason.CONN_REFUSED)
    out = render(NormalOutput, run_info(), [up_host((port,))], None)
    assert "60999/tcp closed unknown\n" in out


def test_all_ports_ignored_with_two_reasons() -> None:
    # nmap -sT -Pn -p 1-100 198.18.201.9 (an address nobody answers for)
    ports = tuple(
        PortResult(n, "tcp", PortState.FILTERED, Reason.HOST_UNREACH if n % 10 == 4 else Reason.NO_RESPONSE)
        for n in range(1, 101)
    )
    host = up_host(ports, address="198.18.201.9", latency=0.055, reason=Reason.USER_SET, mac=None)
    out = render(NormalOutput, run_info(), [host], None)
    assert out.splitlines()[1:] == [
        "leadline scan report for 198.18.201.9",
        "Host is up (0.055s latency).",
        "All 100 scanned ports on 198.18.201.9 are in ignored states.",
        "Not shown: 90 filtered tcp ports (no-response), 10 filtered tcp ports (host-unreach)",
        "",
    ]


def test_open_only_folds_every_other_state_and_hides_hosts_without_open_ports() -> None:
    # nmap -sT --open -p 1-100,8000 198.18.201.2 (nmap also adds a line about
    # --defeat-rst-ratelimit, which leadline does not implement)
    closed_only = up_host(lab_ports(range(1, 10)), address="198.18.201.3")
    out = render(NormalOutput, run_info(), [up_host(latency=0.00017), closed_only], None, open_only=True)
    assert out.splitlines()[1:] == [
        "leadline scan report for 198.18.201.2",
        "Host is up (0.00017s latency).",
        "Not shown: 97 closed tcp ports (conn-refused), 1 filtered tcp port (no-response)",
        "PORT     STATE SERVICE",
        "22/tcp   open  ssh",
        "80/tcp   open  http",
        "8000/tcp open  http-alt",
        "MAC Address: 06:8A:CE:DF:55:04 (Unknown)",
        "",
    ]


def test_ping_scan_verbose_matches_nmap() -> None:
    # nmap -v -sn 198.18.201.1-3 (the .nmap file)
    hosts = [
        up_host((), address="198.18.201.1", latency=None, reason=Reason.LOCALHOST, mac=None),
        up_host((), latency=0.000009),
        down_host("198.18.201.3"),
    ]
    out = render(NormalOutput, run_info("leadline -v -sn 198.18.201.1-3", verbosity=1, ping_only=True), hosts,
                 stats(up=2, down=1, elapsed=27.26), verbosity=1, file_header=True)
    assert out.splitlines()[1:] == [
        "leadline scan report for 198.18.201.1",
        "Host is up.",
        "leadline scan report for 198.18.201.2",
        "Host is up (0.0000090s latency).",
        "MAC Address: 06:8A:CE:DF:55:04 (Unknown)",
        "leadline scan report for 198.18.201.3 [host down]",
        "# leadline done at Sun Nov 22 05:06:02 2026 -- 3 IP addresses (2 hosts up) scanned in 27.26 seconds",
    ]


def test_down_hosts_are_silent_without_verbosity() -> None:
    out = render(NormalOutput, run_info(ping_only=True), [down_host()], stats(up=0, down=1))
    assert "198.18.201.9" not in out
    assert out.endswith("leadline done: 1 IP address (0 hosts up) scanned in 15.46 seconds\n")


def test_double_verbose_shows_reasons_scan_time_and_more_ports() -> None:
    # nmap -vv -sT -p 1-30,80: 27 closed ports stay listed (the limit is 50 at -vv)
    out = render(NormalOutput, run_info(verbosity=2), [up_host(lab_ports([*range(1, 31), 80]), latency=0.00016)],
                 None, verbosity=2)
    lines = out.splitlines()
    assert lines[2] == "Host is up, received arp-response (0.00016s latency)."
    assert lines[3] == "Scanned at 2026-11-22 05:06:00 UTC for 2s"
    assert lines[4] == ""
    assert lines[5] == "PORT   STATE  SERVICE REASON"
    assert lines[6] == "1/tcp  closed svc1    conn-refused"
    assert "22/tcp open   ssh     syn-ack" in lines
    assert len([line for line in lines if "/tcp" in line]) == 31


def test_reason_shows_ttl_when_the_scan_saw_one() -> None:
    ports = (
        PortResult(22, "tcp", PortState.OPEN, Reason.SYN_ACK, 64, "ssh"),
        PortResult(53, "udp", PortState.OPEN_FILTERED, Reason.NO_RESPONSE, None, "domain"),
    )
    host = HostResult("198.18.1.10", 4, HostStatus.UP, Reason.ECHO_REPLY, 64, latency=0.0021, ports=ports)
    out = render(NormalOutput, run_info(), [host], None, reason=True)
    assert out.splitlines()[1:] == [
        "leadline scan report for 198.18.1.10",
        "Host is up, received echo-reply ttl 64 (0.0021s latency).",
        "",
        "PORT   STATE         SERVICE REASON",
        "22/tcp open          ssh     syn-ack ttl 64",
        "53/udp open|filtered domain  no-response",
        "",
    ]


def test_names_other_addresses_and_rdns() -> None:
    host = up_host(
        (PortResult(80, "tcp", PortState.OPEN, Reason.SYN_ACK, service="http"),),
        address="198.18.1.10",
        mac=None,
        latency=0.16,
        hostnames=(Hostname("course.lab", "user"), Hostname("srv10.lab", "PTR")),
        other_addresses=("198.18.1.11", "198.18.1.12"),
    )
    lines = render(NormalOutput, run_info(), [host], None).splitlines()
    assert lines[1:5] == [
        "leadline scan report for course.lab (198.18.1.10)",
        "Host is up (0.16s latency).",
        "Other addresses for course.lab (not scanned): 198.18.1.11 198.18.1.12",
        "rDNS record for 198.18.1.10: srv10.lab",
    ]


def test_ptr_name_alone_names_the_report_without_rdns_line() -> None:
    host = up_host((), mac=None, hostnames=(Hostname("srv.lab", "PTR"),))
    out = render(NormalOutput, run_info(ping_only=True), [host], None)
    assert "leadline scan report for srv.lab (198.18.201.2)\n" in out
    assert "rDNS" not in out


def test_explain_evidence_sits_under_its_port_row() -> None:
    port = PortResult(22, "tcp", PortState.OPEN, Reason.SYN_ACK, 64, "ssh",
                      evidence=("SYN -> SYN/ACK (ttl 64, 0.21 ms)", "RST sent to close"))
    closed = PortResult(23, "tcp", PortState.CLOSED, Reason.RESET, 64, "telnet", evidence=("SYN -> RST/ACK (ttl 64)",))
    lines = render(NormalOutput, run_info(), [up_host((port, closed), mac=None)], None).splitlines()
    table = lines[lines.index("PORT   STATE  SERVICE") + 1:]
    assert table[:5] == [
        "22/tcp open   ssh",
        "|  SYN -> SYN/ACK (ttl 64, 0.21 ms)",
        "|_ RST sent to close",
        "23/tcp closed telnet",
        "|_ SYN -> RST/ACK (ttl 64)",
    ]


def test_timed_out_host_and_warnings() -> None:
    host = up_host(timed_out=True, warnings=("198.18.201.2 giving up on port because retransmission cap hit (0).",))
    lines = render(NormalOutput, run_info(), [host], None).splitlines()
    assert lines[1:] == [
        "Warning: 198.18.201.2 giving up on port because retransmission cap hit (0).",
        "Skipping host 198.18.201.2 due to host timeout",
    ]


def test_interrupted_run_still_writes_its_done_line() -> None:
    out = render(NormalOutput, run_info(), [up_host()], stats(exit="error", error="interrupted by the user"),
                 file_header=True)
    assert out.splitlines()[-2:] == [
        "# QUITTING! interrupted by the user",
        "# leadline done at Sun Nov 22 05:06:02 2026 -- 1 IP address (1 host up) scanned in 15.46 seconds",
    ]


class CountingStream(io.StringIO):
    """A real stream that remembers how often it was flushed."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_each_host_is_flushed_when_it_arrives() -> None:
    stream = CountingStream()
    sink = NormalOutput(stream)
    sink.begin(run_info())
    before = stream.flushes
    sink.host(up_host())
    assert stream.flushes == before + 1
    assert "22/tcp" in stream.getvalue()


def test_verbose_scan_lines_name_hosts_and_ports_as_nmap_does() -> None:
    from leadline.output.formatting import named_address, scanning_text

    assert scanning_text([named_address(None, "198.18.1.10")], 1000) == "198.18.1.10 [1000 ports]"
    assert scanning_text([named_address("localhost", "127.0.0.1")], 1) == "localhost (127.0.0.1) [1 port]"
    assert scanning_text(["198.18.1.10", "198.18.1.20"], 3000) == "2 hosts [3000 ports/host]"
