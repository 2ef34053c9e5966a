"""The service engine's real sockets, on loopback ports these tests open themselves: TCP, TLS, UDP, deadlines."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from leadline.detect.service import parse_probes
from leadline.engines.service import ServiceOptions, ServiceTarget, detect_services
from leadline.model import ServiceDetail

DB = parse_probes(r"""
Probe TCP NULL q||
match ssh m|^SSH-([\d.]+)-OpenSSH_([\w.]+)\r\n| p/OpenSSH/ v/$2/ i/protocol $1/
match bomb m|^(a+)+$| p/Bomb/
Probe TCP GetRequest q|GET / HTTP/1.0\r\n\r\n|
rarity 1
match http m|^HTTP/1\.0 200 OK\r\nServer: tiny/([\d.]+)| p/tiny/ v/$1/
Probe TCP TLSHello q|\x16\x03\x01\x00\x35\x01\x00\x00\x31\x03\x03leadlineleadlineleadlineleadline\x00\x00\x0a\xc0\x2f\xc0\x2b\x00\x9c\x00\x2f\x00\xff\x01\x00|
rarity 1
match ssl m|^\x16\x03|
match ssl m|^\x15\x03|
Probe UDP Ping q|ping|
rarity 1
match echo m|^pong ([\d.]+)| p/pinger/ v/$1/
""")


def _tcp_server(handle: Callable[[socket.socket], None], wrap: ssl.SSLContext | None = None) -> Iterator[int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    done = threading.Event()

    def loop() -> None:
        while not done.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            if wrap is not None:
                try:
                    conn = wrap.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    conn.close()
                    continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield srv.getsockname()[1]
    done.set()
    thread.join()
    srv.close()


def _banner(data: bytes) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        with conn:
            conn.sendall(data)
            conn.settimeout(3)
            try:
                conn.recv(100)
            except OSError:
                pass
    return handle


def _http(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(3)
        try:
            if conn.recv(100).startswith(b"GET"):
                conn.sendall(b"HTTP/1.0 200 OK\r\nServer: tiny/2.1\r\n\r\nhi")
        except OSError:
            pass


def _run(targets: list[ServiceTarget], **kw: object) -> tuple[dict[int, ServiceDetail | None], list[str], float]:
    found: dict[int, ServiceDetail | None] = {}
    logs: list[str] = []
    options = ServiceOptions(**{"null_wait": 0.3, **kw})  # type: ignore[arg-type]
    t0 = time.monotonic()
    detect_services(DB, targets, options, on_result=lambda t, d: found.__setitem__(t.port, d),
                    stop=threading.Event(), log=logs.append)
    return found, logs, time.monotonic() - t0


@pytest.fixture
def ssh_port() -> Iterator[int]:
    yield from _tcp_server(_banner(b"SSH-2.0-OpenSSH_9.2p1\r\n"))


@pytest.fixture
def http_port() -> Iterator[int]:
    yield from _tcp_server(_http)


@pytest.fixture
def closing_port() -> Iterator[int]:
    yield from _tcp_server(lambda conn: conn.close())


@pytest.fixture
def bomb_port() -> Iterator[int]:
    yield from _tcp_server(_banner(b"a" * 40 + b"!"))


@pytest.fixture
def tls_port(tmp_path: Path) -> Iterator[int]:
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=test"], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    yield from _tcp_server(_http, wrap=ctx)


def test_banner_http_and_tcpwrapped_at_once(ssh_port: int, http_port: int, closing_port: int) -> None:
    found, _, elapsed = _run([ServiceTarget("127.0.0.1", p, "tcp") for p in (ssh_port, http_port, closing_port)])
    assert (found[ssh_port].product, found[ssh_port].version) == ("OpenSSH", "9.2p1")
    assert (found[http_port].name, found[http_port].product, found[http_port].version) == ("http", "tiny", "2.1")
    assert found[closing_port].name == "tcpwrapped"
    assert elapsed < 3.0  # concurrent: one NULL wait, not one per port


def test_tls_is_recognised_and_probed_inside(tls_port: int) -> None:
    found, _, _ = _run([ServiceTarget("127.0.0.1", tls_port, "tcp")])
    detail = found[tls_port]
    assert detail is not None and (detail.name, detail.tunnel, detail.product) == ("http", "ssl", "tiny")


def test_a_regex_bomb_is_abandoned_and_logged(bomb_port: int) -> None:
    found, logs, elapsed = _run([ServiceTarget("127.0.0.1", bomb_port, "tcp")])
    assert elapsed < 10
    assert any("gave up on pattern" in line and "bomb" in line for line in logs)


def test_udp_probe_and_answer() -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(3)
    port = srv.getsockname()[1]

    def answer() -> None:
        try:
            data, peer = srv.recvfrom(100)
            if data == b"ping":
                srv.sendto(b"pong 1.5", peer)
        except OSError:
            pass

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    found, _, _ = _run([ServiceTarget("127.0.0.1", port, "udp")])
    thread.join()
    srv.close()
    assert (found[port].name, found[port].product, found[port].version) == ("echo", "pinger", "1.5")


def test_a_port_deadline_ends_a_silent_conversation() -> None:
    gen = _tcp_server(_banner(b""))
    port = next(gen)
    found, _, elapsed = _run([ServiceTarget("127.0.0.1", port, "tcp")], port_deadline=1.0)
    next(gen, None)
    assert found[port] is None and elapsed < 2.5


ORDER_DB = parse_probes(r"""
Probe TCP NULL q||
Probe TCP Slow q|A\n|
rarity 1
match first m|^alpha| p/First/
Probe TCP Fast q|B\n|
rarity 1
match second m|^beta| p/Second/
""")


def _order_server(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(3)
        try:
            asked = conn.recv(10)
            if asked == b"A\n":
                time.sleep(0.5)
                conn.sendall(b"alpha")
            elif asked == b"B\n":
                conn.sendall(b"beta")
            conn.recv(10)
        except OSError:
            pass


def test_probes_in_flight_together_are_read_in_order() -> None:
    gen = _tcp_server(_order_server)
    port = next(gen)
    found: dict[int, ServiceDetail | None] = {}
    detect_services(ORDER_DB, [ServiceTarget("127.0.0.1", port, "tcp")], ServiceOptions(null_wait=0.2),
                    on_result=lambda t, d: found.__setitem__(t.port, d), stop=threading.Event())
    next(gen, None)
    assert found[port] is not None and found[port].product == "First"  # Fast answered sooner, but Slow comes first
