"""The reply cookie: deterministic per secret, attempt recoverable, forgeries rejected."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from leadline.core.cookie import ATTEMPT_MODULUS, EPHEMERAL_PORTS, ReplyCookie

US, THEM = bytes([198, 18, 1, 2]), bytes([198, 18, 1, 10])


def test_same_secret_same_values_other_secret_other_values() -> None:
    a, b = ReplyCookie(b"secret-a"), ReplyCookie(b"secret-b")
    assert a.values(US, THEM, 6, 80) == ReplyCookie(b"secret-a").values(US, THEM, 6, 80)
    assert a.values(US, THEM, 6, 80) != b.values(US, THEM, 6, 80)
    assert a.values(US, THEM, 6, 80) != a.values(US, THEM, 6, 81)
    assert a.values(US, THEM, 6, 80) != a.values(US, THEM, 17, 80)


@given(st.binary(min_size=1, max_size=80), st.integers(0, 0xFFFF), st.integers(0, 1000))
def test_attempt_round_trips_through_sequence_and_port(secret: bytes, port: int, attempt: int) -> None:
    cookie = ReplyCookie(secret)
    values = cookie.values(US, THEM, 6, port)
    assert cookie.attempt_from_sequence(values, cookie.sequence(values, attempt)) == attempt % ATTEMPT_MODULUS
    sport = cookie.source_port(values, attempt)
    assert EPHEMERAL_PORTS[0] <= sport <= EPHEMERAL_PORTS[1]
    assert cookie.attempt_from_port(values, sport) == attempt % ATTEMPT_MODULUS
    assert cookie.attempt_from_icmp_sequence(values, cookie.icmp_sequence(values, attempt)) == attempt % ATTEMPT_MODULUS


@given(st.integers(0, 0xFFFFFFFF))
def test_a_random_sequence_rarely_passes(guess: int) -> None:
    cookie = ReplyCookie(b"k")
    values = cookie.values(US, THEM, 6, 443)
    attempt = cookie.attempt_from_sequence(values, guess)
    # Only the 256 encoded values pass; each really is one of ours.
    assert attempt is None or cookie.sequence(values, attempt) == guess


def test_forged_sequence_pass_rate_is_tiny() -> None:
    cookie = ReplyCookie(b"k")
    values = cookie.values(US, THEM, 6, 443)
    passed = sum(cookie.attempt_from_sequence(values, (values.seq_base + 1 + i * 7919) & 0xFFFFFFFF) is not None for i in range(20000))
    assert passed == 0


def test_fixed_source_port_carries_no_attempt() -> None:
    cookie = ReplyCookie(b"k", source_port=53)
    values = cookie.values(US, THEM, 6, 80)
    assert {cookie.source_port(values, a) for a in range(5)} == {53}
    assert cookie.attempt_from_port(values, 53) is None
    assert cookie.port_is_ours(values, 53) and not cookie.port_is_ours(values, 54)


def test_ports_outside_the_range_are_not_ours() -> None:
    cookie = ReplyCookie(b"k")
    values = cookie.values(US, THEM, 17, 53)
    assert cookie.attempt_from_port(values, 1024) is None
    assert cookie.attempt_from_port(values, 65535) is None


def test_empty_secret_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="secret"):
        ReplyCookie(b"")
