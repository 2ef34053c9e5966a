"""MQTT's broker version, as nmap's -sV learns it: a version step after the probes (sans-I/O).

nmap's probe file names an MQTT broker "mqtt" and no more; nmap's ``-sV``
then runs its version-category script mqtt-subscribe, which connects,
subscribes to ``$SYS/#`` and ``#``, and, when the broker publishes
``$SYS/broker/version``, makes that text the port's service name
("mosquitto version 2.0.11").  This module holds the bytes of that
exchange (MQTT 3.1.1, OASIS standard, sections 2-3) and reads the answer;
the engine carries it.  Unlike the script, which listens for five seconds
or a hundred messages, the exchange stops at the version message.

Packets are a type byte, a variable-length "remaining length" and a body;
strings are a 16-bit length and UTF-8 bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = ["MQTT_PORTS", "MQTT_SERVICES", "VERSION_TOPIC", "MqttVersionReader", "connect_packet",
           "subscribe_packet", "wants_mqtt_version"]

MQTT_PORTS = frozenset({1883, 8883})
MQTT_SERVICES = frozenset({"mqtt", "secure-mqtt"})
VERSION_TOPIC = "$SYS/broker/version"
MAX_PACKET = 64 * 1024  # a larger packet ends the reading: it cannot be a version string worth reporting

_CONNECT, _CONNACK, _PUBLISH, _SUBSCRIBE = 1, 2, 3, 8


def wants_mqtt_version(port: int, protocol: str, service: str | None, intensity: int) -> bool:
    """nmap's rule for mqtt-subscribe under -sV: TCP port 1883/8883 or an mqtt service, intensity 7 or more."""
    return protocol == "tcp" and intensity >= 7 and (port in MQTT_PORTS or service in MQTT_SERVICES)


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + _remaining_length(len(body)) + body


def connect_packet(client_id: str, keepalive: int = 30) -> bytes:
    """CONNECT, protocol "MQTT" level 4 (3.1.1), clean session, no credentials."""
    return _packet(_CONNECT, 0, _string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", keepalive) + _string(client_id))


def subscribe_packet(topics: tuple[str, ...] = ("$SYS/#", "#"), packet_id: int = 1) -> bytes:
    """SUBSCRIBE (its fixed-header flags are 0b0010 by the standard), each filter at QoS 0."""
    body = struct.pack("!H", packet_id) + b"".join(_string(t) + b"\x00" for t in topics)
    return _packet(_SUBSCRIBE, 0x2, body)


@dataclass
class MqttVersionReader:
    """Fed the broker's bytes; ``version`` once the version topic arrived, ``refused`` if CONNACK said no."""

    buffer: bytearray = field(default_factory=bytearray)
    version: str | None = None
    refused: bool = False
    broken: bool = False  # not MQTT, or a packet too large: stop reading

    @property
    def done(self) -> bool:
        return self.version is not None or self.refused or self.broken

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while not self.done:
            parsed = self._next()
            if parsed is None:
                return
            kind, flags, body = parsed
            if kind == _CONNACK:
                self.refused = len(body) < 2 or body[1] != 0
            elif kind == _PUBLISH:
                self._publish(flags, body)

    def _next(self) -> tuple[int, int, bytes] | None:
        """The next whole packet (type, flags, body), or None until more bytes come."""
        length, shift, i = 0, 0, 1
        while True:
            if i >= len(self.buffer):
                return None
            byte = self.buffer[i]
            length |= (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                break
            shift += 7
            if shift > 21:
                self.broken = True
                return None
        if length > MAX_PACKET:
            self.broken = True
            return None
        if len(self.buffer) < i + length:
            return None
        first, body = self.buffer[0], bytes(self.buffer[i:i + length])
        del self.buffer[:i + length]
        return first >> 4, first & 0x0F, body

    def _publish(self, flags: int, body: bytes) -> None:
        if len(body) < 2:
            self.broken = True
            return
        size = struct.unpack_from("!H", body)[0]
        topic = body[2:2 + size].decode("utf-8", "replace")
        start = 2 + size + (2 if (flags >> 1) & 3 else 0)  # QoS 1 and 2 carry a packet id
        if topic == VERSION_TOPIC:
            self.version = body[start:start + 256].decode("utf-8", "replace").strip()
