"""The Internet checksum against RFC 1071's worked example, and RFC 1624's incremental update."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from leadline.core.packet.checksum import internet_checksum, ones_complement_sum, pseudo_header, update_checksum


def test_rfc1071_worked_example() -> None:
    # RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum (with end-around carry) to ddf2.
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_complement_sum(data) == 0x2DDF0
    assert internet_checksum(data) == ~0xDDF2 & 0xFFFF


def test_odd_length_is_padded_with_a_zero_byte() -> None:
    assert internet_checksum(b"\x12\x34\x56") == internet_checksum(b"\x12\x34\x56\x00")


def test_pseudo_headers_have_rfc_layouts() -> None:
    v4 = pseudo_header(bytes(4), bytes([1, 2, 3, 4]), 6, 20)
    assert v4 == bytes(4) + bytes([1, 2, 3, 4]) + b"\x00\x06\x00\x14"
    v6 = pseudo_header(bytes(16), bytes(16), 58, 70000)
    assert len(v6) == 40 and v6[32:] == struct.pack("!I", 70000) + b"\x00\x00\x00\x3a"


@given(st.binary(min_size=2, max_size=64).filter(lambda b: len(b) % 2 == 0))
def test_data_with_its_checksum_appended_sums_to_zero(data: bytes) -> None:
    assert internet_checksum(data + struct.pack("!H", internet_checksum(data))) == 0


@given(st.binary(min_size=2, max_size=64).filter(lambda b: len(b) % 2 == 0), st.data())
def test_incremental_update_equals_recomputation(data: bytes, draw: st.DataObject) -> None:
    index = draw.draw(st.integers(0, len(data) // 2 - 1))
    new_word = draw.draw(st.integers(0, 0xFFFF))
    old_word = struct.unpack_from("!H", data, index * 2)[0]
    changed = bytearray(data)
    struct.pack_into("!H", changed, index * 2, new_word)
    updated = update_checksum(internet_checksum(data), old_word, new_word)
    # RFC 1624: the result may differ from a recomputation only as +0 vs -0, both valid.
    assert updated == internet_checksum(changed) or {updated, internet_checksum(changed)} == {0, 0xFFFF}
    assert internet_checksum(bytes(changed) + struct.pack("!H", updated)) in (0, 0xFFFF) or len(changed) == 0
