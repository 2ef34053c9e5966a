"""The FTP bounce control connection from server transcripts (vsftpd 3.0.3's words, recorded in the lab)."""

from __future__ import annotations

import pytest

from leadline.core.ftpbounce import BounceControl, BounceRefused, Phase, PortVerdict, escape, parse_server, port_command

LOGIN = [b"220 (vsFTPd 3.0.3)\r\n", b"331 Please specify the password.\r\n", b"230 Login successful.\r\n"]


def _logged_in(first: bool = True) -> BounceControl:
    control = BounceControl("anonymous", "-wwwuser@", "198.18.1.10", deadline=2.0, first=first)
    sent = []
    for line in LOGIN:
        assert control.receive(line, 0.0) == []
        sent.append(control.outgoing())
    assert sent == [b"USER anonymous\r\n", b"PASS -wwwuser@\r\n", b""]
    assert control.ready
    return control


def _bounce(control: BounceControl, port: int, *chunks: bytes, now: float = 1.0) -> list[PortVerdict]:
    control.start(port, now)
    assert control.outgoing() == port_command("198.18.1.10", port)
    found: list[PortVerdict] = []
    for chunk in chunks:
        found += control.receive(chunk, now)
    return found


def test_open_closed_and_the_commands_in_order() -> None:
    control = _logged_in()
    assert _bounce(control, 50007, b"200 PORT command successful. Consider using PASV.\r\n") == []
    assert control.outgoing() == b"LIST\r\n"
    found = control.receive(b"150 Here comes the directory listing.\r\n226 Directory send OK.\r\n", 1.1)
    assert [(v.port, v.state) for v in found] == [(50007, "open")]
    found = _bounce(control, 50010, b"200 PORT command successful.\r\n", b"425 Failed to establish connection.\r\n")
    assert [(v.port, v.state) for v in found] == [(50010, "closed")]
    assert port_command("198.18.1.10", 50010) == b"PORT 198,18,1,10,195,90\r\n"


def test_replies_split_anywhere_and_multiline() -> None:
    control = _logged_in()
    stream = b"200 PORT ok\r\n150-Here\r\n comes\r\n150 the listing\r\n226 OK\r\n"
    control.start(50008, 1.0)
    control.outgoing()
    found = []
    for i in range(len(stream)):
        found += control.receive(stream[i:i + 1], 1.0)
    assert [(v.port, v.state) for v in found] == [(50008, "open")]


def test_a_late_or_doubled_reply_is_ignored() -> None:
    control = _logged_in()
    found = _bounce(control, 50010, b"200 PORT ok\r\n425 Failed to establish connection.\r\n")
    assert [v.state for v in found] == ["closed"]
    assert control.receive(b"425 Failed to establish connection.\r\n226 late\r\n", 2.0) == []
    assert control.ready


def test_a_dropped_port_is_filtered_after_the_deadline_and_the_connection_given_up() -> None:
    control = _logged_in()
    _bounce(control, 50000, b"200 PORT ok\r\n", now=10.0)
    assert control.expire(11.0) == []
    found = control.expire(12.5)
    assert [(v.port, v.state) for v in found] == [(50000, "filtered")]
    assert control.phase is Phase.DEAD


def test_a_hang_up_hands_back_the_port_in_flight() -> None:
    control = _logged_in()
    _bounce(control, 1022, b"200 PORT ok\r\n")
    assert control.closed() == 1022


def test_refusals_are_one_escaped_line() -> None:
    control = _logged_in()
    control.start(50007, 0.0)
    with pytest.raises(BounceRefused) as caught:
        control.receive(b"500 Illegal PORT command.\x1b[31m\r\n", 0.0)
    assert "500 Illegal PORT command.\\x1b[31m" in str(caught.value) and "\n" not in str(caught.value)
    bad = BounceControl("anonymous", "x", "198.18.1.10", 2.0)
    bad.receive(LOGIN[0], 0.0)
    with pytest.raises(BounceRefused, match="refused our login: 530"):
        bad.receive(b"530 This FTP server is anonymous only.\r\n", 0.0)


def test_after_a_port_went_through_a_5xx_is_one_closed_port() -> None:
    control = _logged_in(first=False)
    found = _bounce(control, 50007, b"501 no\r\n")
    assert [v.state for v in found] == ["closed"]


def test_server_spec_and_escaping() -> None:
    assert parse_server("198.18.1.76") == ("anonymous", "-wwwuser@", "198.18.1.76", 21)
    assert parse_server("bob:pw@ftp.lab:2121") == ("bob", "pw", "ftp.lab", 2121)
    with pytest.raises(BounceRefused):
        parse_server("x:99999")
    assert escape(b"a\x00b\\") == "a\\x00b\\x5c"
    assert escape("x" * 300).endswith("...")


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_any_server_bytes_give_verdicts_or_a_refusal_never_a_crash(chunks: list[bytes]) -> None:
    control = _logged_in()
    control.start(50007, 0.0)
    control.outgoing()
    try:
        for chunk in chunks:
            for verdict in control.receive(chunk, 0.5):
                assert verdict.port == 50007 and verdict.state in ("open", "closed", "filtered")
                assert all(0x20 <= ord(c) < 0x7F for c in verdict.reply)
    except BounceRefused as refused:
        assert "\n" not in str(refused) and "\r" not in str(refused)
