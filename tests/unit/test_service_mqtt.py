"""-sV's MQTT version step: the packets from byte literals, the reader fed in pieces, and the engine against
a broker on a loopback port this test opens."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from leadline.detect.service import parse_probes
from leadline.detect.service.mqtt import MqttVersionReader, connect_packet, subscribe_packet, wants_mqtt_version
from leadline.engines.service import ServiceOptions, ServiceTarget, detect_services
from leadline.model import ServiceDetail

CONNACK = b"\x20\x02\x00\x00"
SUBACK = b"\x90\x04\x00\x01\x00\x00"


def publish(topic: str, payload: bytes, qos: int = 0) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic.encode() + (b"\x00\x07" if qos else b"") + payload
    return bytes([0x30 | qos << 1 | 1, len(body)]) + body


def test_connect_and_subscribe_bytes() -> None:
    assert connect_packet("ab") == b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x1e\x00\x02ab"
    assert subscribe_packet() == b"\x82\x0f\x00\x01\x00\x06$SYS/#\x00\x00\x01#\x00"


def test_the_version_topic_read_across_pieces_and_among_others() -> None:
    stream = CONNACK + SUBACK + publish("$SYS/broker/uptime", b"5 seconds") \
        + publish("$SYS/broker/version", b"mosquitto version 2.0.11", qos=1)
    reader = MqttVersionReader()
    for i in range(len(stream)):
        reader.feed(stream[i:i + 1])
    assert reader.version == "mosquitto version 2.0.11" and reader.done


@pytest.mark.parametrize("stream, refused, broken", [
    (b"\x20\x02\x00\x05", True, False),  # not authorised
    (b"\x30\xff\xff\xff\xff\x7f", False, True),  # a remaining length of more than four bytes
    (b"\x30\xff\xff\x7f", False, True),  # two megabytes announced
    (b"\x30\x01\x00", False, True),  # a PUBLISH too short for its topic length
])
def test_refusals_and_garbage_end_the_reading(stream: bytes, refused: bool, broken: bool) -> None:
    reader = MqttVersionReader()
    reader.feed(stream)
    assert (reader.refused, reader.broken, reader.version) == (refused, broken, None) and reader.done


def test_which_ports_get_the_step() -> None:
    assert wants_mqtt_version(1883, "tcp", None, 7)
    assert wants_mqtt_version(4000, "tcp", "mqtt", 7)
    assert not wants_mqtt_version(1883, "tcp", "mqtt", 6)  # --version-intensity below 7, as nmap's rule
    assert not wants_mqtt_version(1883, "udp", None, 9)
    assert not wants_mqtt_version(4000, "tcp", "http", 9)


@pytest.fixture
def broker() -> Iterator[tuple[int, list[bytes]]]:
    """A broker that answers CONNECT and SUBSCRIBE as Mosquitto does, the version published as retained."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    heard: list[bytes] = []
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                first = conn.recv(4096)
                heard.append(first)
                if first.startswith(b"\x10"):
                    conn.sendall(CONNACK + SUBACK + publish("$SYS/broker/version", b"mosquitto version 2.0.11"))
                    conn.recv(100)
            except OSError:
                pass

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield srv.getsockname()[1], heard
    stop.set()
    thread.join()
    srv.close()


def test_the_engine_names_the_broker_by_its_published_version(broker: tuple[int, list[bytes]]) -> None:
    port, heard = broker
    db = parse_probes("Probe TCP NULL q||\nProbe TCP MQTTConnect q|\\x10\\x0c\\0\\x04MQTT\\x04\\0\\0\\0\\0\\0|\n"
                      "rarity 1\nmatch mqtt m|^\\x20\\x02\\0\\0|\n")
    found: dict[int, ServiceDetail | None] = {}
    t0 = time.monotonic()
    detect_services(db, [ServiceTarget("127.0.0.1", port, "tcp")], ServiceOptions(null_wait=0.3),
                    on_result=lambda t, d: found.__setitem__(t.port, d), stop=threading.Event())
    assert time.monotonic() - t0 < 3.0  # the step stops at the version, not after the script's five seconds
    detail = found[port]
    assert detail is not None and detail.name == "mosquitto version 2.0.11" and detail.product is None
    assert any(h.startswith(b"\x10") and b"$SYS/#" in h for h in heard)  # CONNECT and SUBSCRIBE in one write


def test_intensity_below_seven_keeps_the_probe_files_name(broker: tuple[int, list[bytes]]) -> None:
    port, _ = broker
    db = parse_probes("Probe TCP NULL q||\nProbe TCP MQTTConnect q|\\x10\\x0c\\0\\x04MQTT\\x04\\0\\0\\0\\0\\0|\n"
                      "rarity 1\nmatch mqtt m|^\\x20\\x02\\0\\0|\n")
    found: dict[int, ServiceDetail | None] = {}
    detect_services(db, [ServiceTarget("127.0.0.1", port, "tcp")], ServiceOptions(null_wait=0.3, intensity=2),
                    on_result=lambda t, d: found.__setitem__(t.port, d), stop=threading.Event())
    detail = found[port]
    assert detail is not None and detail.name == "mqtt"
