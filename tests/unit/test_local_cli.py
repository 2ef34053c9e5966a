"""leadline local's command line: bad input is one line and a non-zero exit; --who and --diff in words."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from leadline.cli.local import local_main
from leadline.cli.main import main
from leadline.errors import UsageError
from leadline.local.diff import diff_listings, format_diff
from leadline.local.model import LocalSocket, Owner
from leadline.local.who import (
    Holder,
    SharingOptions,
    WhoAnswer,
    format_who,
    parse_who,
    trial_bind,
)


@pytest.mark.parametrize(("argv", "message"), [
    (["-p", "99999"], "ports must be between 0 and 65535"),
    (["-p", "nosuchservice"], "nosuchservice"),
    (["--who", "http"], "--who: 'http' is not PORT or PORT/udp"),
    (["--who", "53/sctp"], "is not PORT or PORT/udp"),
    (["-4", "-6"], "-4 and -6 together"),
    (["--from", "llt-scanner"], "--from goes with --exposure"),
    (["--bogus"], "unrecognized arguments"),
    (["--diff", "/nonexistent/a.json", "/nonexistent/b.json"], "cannot read '/nonexistent/a.json'"),
])
def test_bad_input_is_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = local_main(argv)
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("leadline: ") and message in err and err.count("\n") == 1


def test_the_main_command_routes_local(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "--who", "x"]) == 2
    assert "--who" in capsys.readouterr().err


def test_parse_who() -> None:
    assert parse_who("80") == (80, "tcp") and parse_who("53/UDP") == (53, "udp") and parse_who("22/tcp") == (22, "tcp")
    with pytest.raises(UsageError):
        parse_who("70000")


def test_a_trial_bind_reports_what_a_second_program_gets() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert trial_bind("tcp", "127.0.0.1", port) == "EADDRINUSE"
        assert trial_bind("tcp", "0.0.0.0", port) == "EADDRINUSE"
    assert trial_bind("tcp", "127.0.0.1", port) == "free"


def _holder(address: str, options: SharingOptions | None, protocol: str = "tcp") -> Holder:
    state = "LISTEN" if protocol == "tcp" else "UNCONN"
    item = LocalSocket(protocol, 6 if ":" in address else 4, state, address, 80, pid=77, fd=3)
    return Holder(item, Owner(77, "apache2", "root", ("/usr/sbin/apache2", "-k", "start"), 1000.0), options)


def test_who_explains_a_wildcard_listener_without_sharing() -> None:
    answer = WhoAnswer(80, "tcp", (_holder("0.0.0.0", SharingOptions(True, False, None)),),
                       (("0.0.0.0", "EADDRINUSE"), ("::", "EADDRINUSE")))
    text = format_who(answer, now=1000.0 + 3 * 3600)
    assert "apache2 (pid 77, user root, running since 1970-01-01 00:16:40 UTC (3 h)): 0.0.0.0:80 LISTEN" in text
    assert "a wildcard bind: it covers every address; SO_REUSEADDR on, SO_REUSEPORT off" in text
    assert "SO_REUSEADDR does not help" in text
    assert "A second program binding 0.0.0.0:80/tcp fails now with EADDRINUSE" in text
    assert "command: /usr/sbin/apache2 -k start" in text


@pytest.mark.parametrize(("address", "options", "protocol", "needle"), [
    ("::", SharingOptions(False, False, False), "tcp", "(IPv4 as well: IPV6_V6ONLY is off)"),
    ("127.0.0.1", SharingOptions(False, True, None), "tcp", "same user that also sets SO_REUSEPORT"),
    ("127.0.0.1", SharingOptions(True, False, None), "udp", "also sets SO_REUSEADDR can bind it too"),
    ("127.0.0.1", None, "tcp", "cannot be read (needs root)"),
])
def test_who_reasons(address: str, options: SharingOptions | None, protocol: str, needle: str) -> None:
    answer = WhoAnswer(80, protocol, (_holder(address, options, protocol),), ())
    assert needle in format_who(answer, now=2000.0)


def _document(sockets: list[dict[str, object]]) -> dict[str, object]:
    return {"kind": "local", "processes": [{"pid": 5, "name": "nginx"}, {"pid": 6, "name": "nginx"}], "sockets": sockets}


def _entry(port: int, pid: int, label: str | None = None, rule: str | None = None) -> dict[str, object]:
    seen = None if label is None else {"label": label, "detail": "d", "rule_family": "iptables" if rule else None, "rule": rule}
    return {"protocol": "tcp", "local_address": "0.0.0.0", "local_port": port, "state": "LISTEN", "pid": pid, "exposure": seen}


def test_diff_shows_new_gone_and_changed_listeners(tmp_path: Path) -> None:
    before = _document([_entry(80, 5, "exposed"), _entry(443, 5, "exposed"), _entry(22, 5, "exposed")])
    after = _document([_entry(80, 6, "filtered", "-A INPUT -p tcp --dport 80 -j DROP"), _entry(22, 6, "exposed"),
                       _entry(8080, 6, "exposed")])
    changes, same = diff_listings(before, after)
    text = format_diff(changes, same, ("a.json", "b.json"))
    assert text.splitlines() == [
        "--- a.json", "+++ b.json",
        "~ 80/tcp on 0.0.0.0: nginx (pid 5) exposed (d) -> nginx (pid 6) filtered (d) [iptables: -A INPUT -p tcp --dport 80 -j DROP]",
        "- 443/tcp on 0.0.0.0: gone (was nginx (pid 5) exposed (d))",
        "+ 8080/tcp on 0.0.0.0: new, nginx (pid 6) exposed (d)",
        "1 listener unchanged",
    ]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(before))
    b.write_text(json.dumps(after))
    assert local_main(["--diff", str(a), str(b)]) == 1
    assert local_main(["--diff", str(a), str(a)]) == 0
