"""Each built-in script against canned byte exchanges: nmap's output layout, escaping, caps, no network."""

from __future__ import annotations

import base64
import hashlib
import struct
import subprocess
from pathlib import Path

import pytest

from leadline.detect.scripts import available_scripts, clean, parse_script_args, select_scripts
from leadline.detect.scripts.select import selection
from leadline.detect.scripts.base import ScriptError
from leadline.detect.scripts.http import http_methods, http_robots, http_server_header, http_title
from leadline.detect.scripts.misc import banner, banner_text, dns_nsid, dns_query, ftp_anon, memcached_info, redis_info, smtp_commands
from leadline.detect.scripts.ssh import ssh2_enum_algos, ssh_hostkey
from leadline.errors import UsageError
from tests.unit.fakeengines import Service
from tests.unit.scripthelp import ADDRESS, context, http_service, ssh_service

PAGE = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n\r\n<html><head><TITLE>Jupyter Notebook</TITLE>"


# -- escaping and selection -------------------------------------------------
def test_clean_escapes_controls_and_invalid_utf8_but_keeps_text() -> None:
    assert clean(b"220 FTP\r\n") == "220 FTP\\x0D\\x0A"
    assert clean("\x1b[2J\x1b]0;pwned\x07caf\u00e9") == "\\x1B[2J\\x1B]0;pwned\\x07caf\u00e9"
    assert clean(b"\xff\xfeok") == "\\xff\\xfeok"
    assert clean("\u009b31m") == "\\x9B31m"  # the 8-bit CSI
    assert clean("a" * 10, limit=4) == "aaaa..."


def test_selection_by_name_category_pattern_and_expression() -> None:
    scripts = available_scripts()
    names = lambda expr: {s.name for s in select_scripts([expr], scripts)}  # noqa: E731
    assert names("default") == {"http-title", "http-robots.txt", "http-methods", "ssh-hostkey", "ssl-cert",
                                "ftp-anon", "smtp-commands", "dns-nsid"}
    assert names("http-*") == {"http-title", "http-server-header", "http-robots.txt", "http-methods"}
    assert names("http-* and not default") == {"http-server-header"}
    assert names("ssh-hostkey,banner") == {"ssh-hostkey", "banner"}
    assert names("(default or version) and http-*") == names("http-*")
    assert names("all") == {s.name for s in scripts}
    chosen, named = selection(["default", "http-* and not intrusive", "ssh2-enum-algos or banner"], scripts)
    assert named == {"http-title", "http-server-header", "http-robots.txt", "http-methods", "ssh2-enum-algos", "banner"}
    assert {s.name for s in chosen} - named == {"ssh-hostkey", "ssl-cert", "ftp-anon", "smtp-commands", "dns-nsid"}
    with pytest.raises(UsageError, match="'nosuch' did not match a category, filename, or directory"):
        select_scripts(["nosuch"], scripts)
    with pytest.raises(UsageError):
        select_scripts(["default and"], scripts)


def test_script_args_take_quotes_and_bare_keys() -> None:
    assert parse_script_args('ssh_hostkey=sha256,http-title.url=/a,b="x,y",flag') == {
        "ssh_hostkey": "sha256", "http-title.url": "/a", "b": "x,y", "flag": "1"}
    with pytest.raises(UsageError):
        parse_script_args('a="open')


# -- HTTP -----------------------------------------------------------------
def test_http_title_shows_the_title() -> None:
    result = http_title(context({80: http_service({"GET /": PAGE})}, 80, "http"))
    assert result is not None and result.output == "Jupyter Notebook"
    assert [(e.key, e.value) for e in result.elements] == [("title", "Jupyter Notebook")]


def test_http_title_without_title_names_the_content_type_and_cuts_long_titles() -> None:
    bare = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello"
    assert http_title(context({80: http_service({"GET /": bare})}, 80)).output == \
        "Site doesn't have a title (text/plain)."  # type: ignore[union-attr]
    long = b"HTTP/1.1 200 OK\r\n\r\n<title>" + b"x" * 70 + b"</title>"
    assert http_title(context({80: http_service({"GET /": long})}, 80)).output == "x" * 62 + "..."  # type: ignore[union-attr]


def test_http_title_escapes_terminal_sequences_from_the_page() -> None:
    page = b"HTTP/1.1 200 OK\r\n\r\n<title>\x1b[31mred\x1b]0;owned\x07\xff</title>"
    out = http_title(context({80: http_service({"GET /": page})}, 80)).output  # type: ignore[union-attr]
    assert "\x1b" not in out and "\x07" not in out and out == "\\x1B[31mred\\x1B]0;owned\\x07\\xff"


def test_http_title_never_follows_a_redirect_to_another_host() -> None:
    log: list[tuple[str, int, bool]] = []
    moved = b"HTTP/1.1 302 Found\r\nLocation: http://198.51.100.7/login\r\n\r\n"
    result = http_title(context({80: http_service({"GET /": moved})}, 80, log=log))
    assert result is not None and result.output == "Did not follow redirect to http://198.51.100.7/login"
    assert {a for a, _, _ in log} == {ADDRESS} and len(log) == 1


def test_http_title_follows_a_redirect_on_the_same_host_and_port() -> None:
    moved = b"HTTP/1.1 302 Found\r\nLocation: /tree?\r\n\r\n"
    page = b"HTTP/1.1 200 OK\r\n\r\n<title>Home</title>"
    result = http_title(context({8888: http_service({"GET /": moved, "GET /tree": page})}, 8888, "http"))
    assert result is not None and result.output == "Home\nRequested resource was /tree?"


def test_http_server_header_lists_distinct_values_sorted() -> None:
    one = context({80: http_service({"GET /": PAGE})}, 80)
    assert http_server_header(one).output == "nginx/1.22.1"  # type: ignore[union-attr]

    def two(sent: bytes) -> bytes:
        if not sent.endswith(b"\r\n\r\n"):
            return b""
        return b"HTTP/1.1 200 OK\r\nServer: " + (b"B/2" if b"Host:" in sent else b"A/1") + b"\r\n\r\n"
    assert http_server_header(context({80: Service(two)}, 80)).output == "\n  A/1\n  B/2"  # type: ignore[union-attr]


def test_http_robots_and_methods() -> None:
    robots = b"HTTP/1.1 200 OK\r\n\r\nUser-agent: *\nDisallow: /admin/\nDisallow: /private # x\nAllow: /\n"
    options = b"HTTP/1.1 200 OK\r\nAllow: GET, HEAD, POST, OPTIONS, TRACE\r\n\r\n"
    svc = {80: http_service({"GET /robots.txt": robots, "OPTIONS /": options})}
    assert http_robots(context(svc, 80)).output == "2 disallowed entries \n/admin/ /private # x"  # type: ignore[union-attr]
    many = b"HTTP/1.1 200 OK\r\n\r\n" + b"".join(b"Disallow: /dir%02d/\n" % i for i in range(20)) + b"Disallow: /dir01/\n"
    out = http_robots(context({80: http_service({"GET /robots.txt": many})}, 80)).output  # type: ignore[union-attr]
    assert out.split("\n")[:3] == ["20 disallowed entries (15 shown)", "/dir00/ /dir01/ /dir02/ /dir03/ /dir04/ /dir05/ /dir06/ ",
                                    "/dir07/ /dir08/ /dir09/ /dir10/ /dir11/ /dir12/ /dir13/ /dir14/"]
    assert http_methods(context(svc, 80)).output == "\n  Potentially risky methods: TRACE"  # type: ignore[union-attr]
    out = http_methods(context(svc, 80, verbosity=1)).output  # type: ignore[union-attr]
    assert out == "\n  Supported Methods: GET HEAD POST OPTIONS TRACE\n  Potentially risky methods: TRACE"
    # No Allow header (nginx answers OPTIONS with 405): each safe method is tried against an invented one
    refused = b"HTTP/1.1 405 Not Allowed\r\n\r\n"
    static = {80: http_service({"GET /": PAGE, "HEAD /": PAGE}, default=refused)}
    assert http_methods(context(static, 80, verbosity=1)).output == "\n  Supported Methods: GET HEAD"  # type: ignore[union-attr]
    assert http_methods(context(static, 80)) is None


def test_http_reads_are_capped() -> None:
    huge = b"HTTP/1.1 200 OK\r\n\r\n<title>" + b"A" * 10_000_000
    result = http_title(context({80: http_service({"GET /": huge})}, 80))
    assert result is not None and result.output == "Site doesn't have a title."


# -- SSH ------------------------------------------------------------------
def _ssh_keygen(tmp_path: Path, kind: str) -> tuple[bytes, str]:
    """A host key made by ssh-keygen, and ssh-keygen's own MD5 fingerprint line for it (the oracle)."""
    key = tmp_path / f"key_{kind}"
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(key)], check=True)
    blob = base64.b64decode(key.with_suffix(".pub").read_text().split()[1])
    line = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", str(key)], check=True, capture_output=True,
                          text=True).stdout.split()
    return blob, f"{line[0]} {line[1].removeprefix('MD5:')} {line[-1]}"


def test_ssh_hostkey_prints_each_key_as_ssh_keygen_fingerprints_it(tmp_path: Path) -> None:
    ed, ed_line = _ssh_keygen(tmp_path, "ed25519")
    ec, ec_line = _ssh_keygen(tmp_path, "ecdsa")
    log: list[tuple[str, int, bool]] = []
    ctx = context({22: ssh_service({"ecdsa-sha2-nistp256": ec, "ssh-ed25519": ed})}, 22, "ssh", log=log)
    result = ssh_hostkey(ctx)
    assert result is not None and result.output == f"\n  {ec_line}\n  {ed_line}"
    assert len(log) == 6  # one connection per key type nmap asks for
    sha = ssh_hostkey(context({22: ssh_service({"ssh-ed25519": ed})}, 22, args={"ssh_hostkey": "sha256"}))
    expected = base64.b64encode(hashlib.sha256(ed).digest()).decode().rstrip("=")
    assert sha is not None and sha.output == f"\n  256 SHA256:{expected} (ED25519)"


def test_ssh_hostkey_reads_rsa_bits_from_the_modulus(tmp_path: Path) -> None:
    rsa, rsa_line = _ssh_keygen(tmp_path, "rsa")
    result = ssh_hostkey(context({22: ssh_service({"ssh-rsa": rsa})}, 22))
    assert result is not None and result.output == f"\n  {rsa_line}"


def test_ssh2_enum_algos_counts_and_lists() -> None:
    ctx = context({22: ssh_service({"ssh-ed25519": b""})}, 22, verbosity=1)
    out = ssh2_enum_algos(ctx).output  # type: ignore[union-attr]
    assert out.startswith("\n  kex_algorithms: (2)\n      curve25519-sha256\n      diffie-hellman-group14-sha256\n"
                          "  server_host_key_algorithms: (1)\n      ssh-ed25519\n")
    assert "  compression_algorithms: (2)\n      none\n      zlib@openssh.com" in out


def test_ssh_scripts_call_garbage_a_protocol_error() -> None:
    ctx = context({22: Service(lambda sent: b"HTTP/1.1 400 Bad Request\r\n\r\n")}, 22)
    with pytest.raises(ScriptError):
        ssh2_enum_algos(ctx)
    assert ssh_hostkey(ctx) is None


# -- line protocols -------------------------------------------------------
def test_banner_escapes_like_nmap() -> None:
    svc = {21: Service(lambda sent: b"220 FTP version 1.0\r\n", closes=False)}
    assert banner(context(svc, 21)).output == "220 FTP version 1.0"  # type: ignore[union-attr]
    assert banner_text(b"\x1b[31m caf\xc3\xa9\r\n") == "\\x1B[31m caf\\xC3\\xA9"
    long = banner_text(b"x" * 500, verbosity=1)
    assert [len(line) for line in long.split("\n")] == [63, 71, 0] and long.endswith("...\n")  # nmap ends a full last line so


def _dialogue(script: list[tuple[bytes, bytes]], greeting: bytes) -> Service:
    """A line server: after each command prefix in ``script`` was sent, its reply follows."""
    def respond(sent: bytes) -> bytes:
        out = greeting
        for command, reply in script:
            if command not in sent:
                break
            out += reply
        return out
    return Service(respond, closes=False)


def test_ftp_anon_logs_in_and_lists_over_the_targets_data_port_only() -> None:
    control = _dialogue([(b"USER anonymous\r\n", b"331 Please specify the password.\r\n"),
                         (b"PASS ", b"230 Login successful.\r\n"),
                         (b"PASV\r\n", b"227 Entering Passive Mode (203,0,113,9,117,48).\r\n"),
                         (b"LIST\r\n", b"150 Here comes the directory listing.\r\n")], b"220 (vsFTPd 3.0.3)\r\n")
    data = Service(lambda sent: b"drwxr-xr-x    2 0        0            4096 Jan 01 00:00 pub\r\n")
    log: list[tuple[str, int, bool]] = []
    result = ftp_anon(context({21: control, 117 * 256 + 48: data}, 21, "ftp", log=log))
    assert result is not None
    assert result.output == ("Anonymous FTP login allowed (FTP code 230)\n"
                             "drwxr-xr-x    2 0        0            4096 Jan 01 00:00 pub")
    assert [(a, p) for a, p, _ in log] == [(ADDRESS, 21), (ADDRESS, 30000)]  # never 203.0.113.9


def test_smtp_commands_joins_the_ehlo_reply() -> None:
    svc = _dialogue([(b"EHLO ", b"250-mail.lab\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n")],
                    b"220 mail.lab ESMTP Postfix\r\n")
    assert smtp_commands(context({25: svc}, 25, "smtp")).output == \
        "mail.lab, PIPELINING, SIZE 10240000, 8BITMIME"  # type: ignore[union-attr]


def test_redis_info_and_a_refusal() -> None:
    body = b"# Server\r\nredis_version:7.0.15\r\nos:Linux 6.1.0 x86_64\r\narch_bits:64\r\nprocess_id:42\r\nrole:master\r\n"
    clients = b"id=3 addr=198.18.7.1:40000 fd=8\nid=4 addr=198.18.7.1:40002 fd=9\nid=5 addr=10.0.0.2:5 fd=1\n"
    svc = _dialogue([(b"INFO", b"$%d\r\n%s\r\n" % (len(body), body)),
                     (b"bind", b"*2\r\n$4\r\nbind\r\n$11\r\n198.18.7.10\r\n"),
                     (b"LIST", b"$%d\r\n%s\r\n" % (len(clients), clients))], b"")
    out = redis_info(context({6379: svc}, 6379, "redis")).output  # type: ignore[union-attr]
    assert out == ("\n  Version: 7.0.15\n  Operating System: Linux 6.1.0 x86_64\n  Architecture: 64 bits\n"
                   "  Process ID: 42\n  Role: master\n  Bind addresses: \n    198.18.7.10\n"
                   "  Client connections: \n    10.0.0.2\n    198.18.7.1")
    denied = Service(lambda sent: b"-DENIED Redis is running in protected mode\r\n")
    with pytest.raises(ScriptError, match="Redis refused: DENIED"):
        redis_info(context({6379: denied}, 6379))


def test_memcached_info() -> None:
    stats = b"STAT pid 7\r\nSTAT uptime 12\r\nSTAT time 1764575000\r\nSTAT pointer_size 64\r\nEND\r\n"
    settings = b"STAT maxconns 1024\r\nSTAT tcpport 11211\r\nSTAT udpport 0\r\nSTAT auth_enabled_sasl no\r\nEND\r\n"
    svc = _dialogue([(b"stats\r\n", stats), (b"stats settings\r\n", settings)], b"")
    out = memcached_info(context({11211: svc}, 11211)).output  # type: ignore[union-attr]
    assert out == ("\n  Process ID: 7\n  Uptime: 12 seconds\n  Server time: 2025-12-01T07:43:20\n  Architecture: 64 bit"
                   "\n  Maximum connections: 1024\n  TCP Port: 11211\n  UDP Port: 0\n  Authentication: no")


def _dns_answer(query: bytes, txt: bytes | None, nsid: bytes | None) -> bytes:
    qid, qd = query[:2], query[12:]
    end = qd.index(b"\x00") + 5
    answers, add = b"", b""
    if txt is not None:
        answers = b"\xc0\x0c" + struct.pack(">HHIH", 16, 3, 0, len(txt) + 1) + bytes([len(txt)]) + txt
    if nsid is not None:
        option = struct.pack(">HH", 3, len(nsid)) + nsid
        add = b"\x00" + struct.pack(">HHIH", 41, 4096, 0, len(option)) + option
    header = qid + struct.pack(">HHHHH", 0x8400, 1, 1 if answers else 0, 0, 1 if add else 0)
    return header + qd[:end] + answers + add


def test_dns_nsid_reads_nsid_and_chaos_txt() -> None:
    def answer(q: bytes) -> bytes:
        if b"\x00\x00\x29" in q:  # the OPT record: an NSID query
            return _dns_answer(q, None, b"ns1\x1b")
        return _dns_answer(q, b"dnsmasq-2.89" if b"version" in q else b"lab-ns", None)
    out = dns_nsid(context({}, 53, "domain", proto="udp", udp={53: answer})).output  # type: ignore[union-attr]
    assert out == "\n  NSID: ns1\\x1B\n  id.server: lab-ns\n  bind.version: dnsmasq-2.89"
    assert dns_query("id.server", 16, 3)[12:] == b"\x02id\x06server\x00\x00\x10\x00\x03"


def test_options_sc_script_args_and_timeout() -> None:
    from leadline.options import parse_args

    config = parse_args(["-sC", "--script", "http-* and not intrusive", "--script-args", "a=1",
                         "--script-args", "b=2,a=3", "--script-timeout", "1m", "x"]).config
    assert config.scripts == ("default", "http-* and not intrusive")
    assert config.script_args == (("a", "3"), ("b", "2")) and config.script_timeout == 60.0
    assert parse_args(["-sSC", "x"]).config.scripts == ("default",)


def test_version_detection_brings_the_version_category_as_nmap() -> None:
    """-A and -sV -sC run http-server-header (category "version") as nmap does; -sC alone does not."""
    from types import SimpleNamespace
    from typing import cast

    from leadline.options import parse_args
    from leadline.pipeline.plan import ScanPlan
    from leadline.pipeline.scripts import ScriptScan

    def chosen(*argv: str) -> set[str]:
        phase = ScriptScan()
        assert phase.wanted(cast(ScanPlan, SimpleNamespace(config=parse_args([*argv, ADDRESS]).config)))
        return {s.name for s in phase.scripts}

    assert "http-server-header" in chosen("-A") and "http-server-header" in chosen("-sV", "-sC")
    assert "http-server-header" not in chosen("-sC")
    assert "http-title" in chosen("-sC")
