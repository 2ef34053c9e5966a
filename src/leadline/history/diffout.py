"""A ``RunDiff`` written out: ndiff's text layout, ndiff's XML (``--xml``), or JSON (``-oJ``).

The text is ndiff's: a ``-``/``+`` pair of banner lines when the runs'
banners differ, then per changed host a blank line, `` ADDRESS:`` (or
``-``/``+`` when the host is in one run only), ``-Host is up.`` /
``+Host is down.``, ``Not shown:`` lines, the port table with a mark
column, and the OS lines; so a reader used to ndiff reads it at once.
What a target sent (service names, versions, script output) has its
control characters written as ``\\xHH``, so a diff printed on a terminal
cannot be used to move the cursor or retitle the window.

The XML follows ndiff's ``<nmapdiff>`` document, so tools that read
ndiff's XML read ours; the JSON is ours (below, ``diff_to_json``).
"""

from __future__ import annotations

import json
import re
from typing import Any, TextIO

from leadline.history.diff import HostDiff, HostView, PortDiff, PortView, RunDiff
from leadline.model import RunInfo
from leadline.output.formatting import ctime_string
from leadline.output.xml import element

__all__ = ["diff_to_json", "write_json", "write_text", "write_xml"]

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _safe(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()) & 0xFF:02x}", text)


def _banner(run: RunInfo, scanner: str) -> str:
    name = "Nmap" if scanner == "nmap" else scanner
    parts = [name]
    if run.version:
        parts.append(run.version)
    parts.append("scan")
    if run.start_time:
        parts.append(f"initiated {ctime_string(run.start_time)}")
    if run.args:
        parts.append(f"as: {run.args}")
    return _safe(" ".join(parts))


def _table(rows: list[list[str]]) -> list[str]:
    """ndiff's table: a one-character mark glued to left-justified columns separated by one space."""
    widths: list[int] = []
    for row in rows:
        for i, cell in enumerate(row):
            if i == len(widths):
                widths.append(len(cell))
            else:
                widths[i] = max(widths[i], len(cell))
    lines = []
    for row in rows:
        cells = [row[0]] + [cell.ljust(widths[i + 1]) for i, cell in enumerate(row[1:])]
        lines.append((cells[0] + " ".join(cells[1:])).rstrip())
    return lines


def _columns(p: PortDiff, view: PortView | None) -> list[str]:
    return [f"{p.port}/{p.protocol}", view.state if view else "unknown", _safe(view.service or "") if view else "",
            _safe(view.version or "") if view else ""]


def _script_lines(mark: str, view: PortView | None) -> list[str]:
    out = []
    for sid, output in view.scripts if view else ():
        lines = output.split("\n") or [""]
        for n, line in enumerate(lines):
            lead = "|_" if n == len(lines) - 1 else "|"
            out.append(f"{mark}{lead} {_safe(sid) + ': ' if n == 0 else ''}{_safe(line)}".rstrip())
    return out


def _host_name(v: HostView) -> str:
    names = ", ".join(_safe(n) for n in v.names)
    return f"{names} ({v.address})" if names else v.address


def _port_rows(h: HostDiff) -> tuple[list[list[str]], list[str]]:
    mark = "+" if h.a is None else "-" if h.b is None else " "
    rows = [[mark, "PORT", "STATE", "SERVICE", "VERSION"]]
    scripts: list[str] = []
    for p in h.ports:
        a_cols, b_cols = _columns(p, p.a), _columns(p, p.b)
        if a_cols == b_cols:
            rows.append([" ", *a_cols])
        else:
            if p.a is not None:
                rows.append(["-", *a_cols])
            if p.b is not None:
                rows.append(["+", *b_cols])
        if (p.a.scripts if p.a else ()) != (p.b.scripts if p.b else ()):
            scripts += _script_lines("-", p.a) + _script_lines("+", p.b)
    return rows, scripts


def host_text(h: HostDiff) -> list[str]:
    a, b = h.a, h.b
    lines = []
    if h.names_changed:
        lines += [f"-{_host_name(a)}:"] if a else []
        lines += [f"+{_host_name(b)}:"] if b else []
    else:
        lines.append(f" {_host_name(a or b)}:")  # type: ignore[arg-type]
    if h.status_changed:
        lines += [f"-Host is {a.status}."] if a else []
        lines += [f"+Host is {b.status}."] if b else []
    if h.not_shown_changed:
        for mark, v in (("-", a), ("+", b)):
            if v is not None and v.not_shown:
                lines.append(f"{mark}Not shown: " + ", ".join(f"{c} {s} ports" for c, s in v.not_shown))
    rows, scripts = _port_rows(h)
    if len(rows) > 1:
        lines += _table(rows)
        lines += scripts
    if h.os_changed:
        a_os, b_os = (a.os if a else ()), (b.os if b else ())
        lines.append(" OS details:" if a_os and b_os else "-OS details:" if a_os else "+OS details:")
        lines += [f"-  {_safe(n)}" for n in a_os if n not in b_os]
        lines += [f"+  {_safe(n)}" for n in b_os if n not in a_os]
        lines += [f"   {_safe(n)}" for n in a_os if n in b_os]
    if h.scripts_changed:
        lines.append("Host script results:")
        for mark, v in (("-", a), ("+", b)):
            lines += [f"{mark}|_ {_safe(sid)}: {_safe(out)}" for sid, out in (v.scripts if v else ())]
    return lines


def write_text(d: RunDiff, out: TextIO) -> None:
    a_banner, b_banner = _banner(d.a_run, d.a_scanner), _banner(d.b_run, d.b_scanner)
    if a_banner != b_banner:
        out.write(f"-{a_banner}\n+{b_banner}\n")
    for h in d.hosts:
        if h.changed:
            out.write("\n" + "".join(line + "\n" for line in host_text(h)))


# -- ndiff's XML -------------------------------------------------------------------------------

def _nmaprun(run: RunInfo, scanner: str) -> str:
    return element("nmaprun", {"scanner": scanner, "args": run.args or None, "start": int(run.start_time) or None,
                               "version": run.version or None})


def _service_xml(v: PortView) -> str:
    attrs: dict[str, object] = {"name": v.service, "product": v.version}
    return element("service", attrs) if any(attrs.values()) else ""


def _port_xml(p: PortDiff, v: PortView | None) -> str:
    state = element("state", {"state": v.state}) if v else ""
    return (element("port", {"portid": p.port, "protocol": p.protocol}, empty=False) + state
            + (_service_xml(v) if v else "") + "</port>")


def _status_xml(v: HostView | None) -> str:
    return element("status", {"state": v.status}) if v else ""


def _whole_host_xml(v: HostView) -> str:
    addr = element("address", {"addrtype": "ipv6" if ":" in v.address else "ipv4", "addr": v.address})
    names = "".join(element("hostname", {"name": n}) for n in v.names)
    ports = "".join(_port_xml(PortDiff(k[0], k[1], pv, None), pv) for k, pv in sorted(v.ports.items()))
    return (f"<host>{_status_xml(v)}{addr}" + (f"<hostnames>{names}</hostnames>" if names else "")
            + (f"<ports>{ports}</ports>" if ports else "") + "</host>")


def _host_xml(h: HostDiff) -> str:
    if h.a is None or h.b is None:
        side = "a" if h.a is not None else "b"
        return f"<hostdiff><{side}>{_whole_host_xml(h.a or h.b)}</{side}></hostdiff>"  # type: ignore[arg-type]
    parts = ["<hostdiff><host>"]
    if h.status_changed:
        parts.append(f"<a>{_status_xml(h.a)}</a><b>{_status_xml(h.b)}</b>")
    parts.append(element("address", {"addrtype": "ipv6" if ":" in h.address else "ipv4", "addr": h.address}))
    ports = []
    for p in h.ports:
        if p.a is not None and p.b is not None and p.a.state == p.b.state:
            svc = f"<a>{_service_xml(p.a)}</a><b>{_service_xml(p.b)}</b>"
            ports.append("<portdiff>" + element("port", {"portid": p.port, "protocol": p.protocol}, empty=False)
                         + element("state", {"state": p.a.state}) + svc + "</port></portdiff>")
        else:
            ports.append(f"<portdiff><a>{_port_xml(p, p.a)}</a><b>{_port_xml(p, p.b)}</b></portdiff>")
    if ports:
        parts.append("<ports>" + "".join(ports) + "</ports>")
    if h.os_changed:
        a_os = "".join(element("osmatch", {"name": n}) for n in h.a.os)
        b_os = "".join(element("osmatch", {"name": n}) for n in h.b.os)
        parts.append(f"<os><a>{a_os}</a><b>{b_os}</b></os>")
    parts.append("</host></hostdiff>")
    return "".join(parts)


def write_xml(d: RunDiff, out: TextIO) -> None:
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n<nmapdiff version="1"><scandiff>')
    a_run, b_run = _nmaprun(d.a_run, d.a_scanner), _nmaprun(d.b_run, d.b_scanner)
    if a_run != b_run:
        out.write(f"<a>{a_run}</a><b>{b_run}</b>")
    for h in d.hosts:
        if h.changed:
            out.write("\n" + _host_xml(h))
    out.write("\n</scandiff></nmapdiff>\n")


# -- JSON --------------------------------------------------------------------------------------

def _view_json(v: PortView | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"state": v.state, "service": v.service, "version": v.version,
            "scripts": [{"id": i, "output": o} for i, o in v.scripts]}


def diff_to_json(d: RunDiff) -> dict[str, Any]:
    """``{"a": run, "b": run, "changed": bool, "hosts": [...]}``, only changed hosts listed."""
    def host(h: HostDiff) -> dict[str, Any]:
        def side(v: HostView | None) -> dict[str, Any] | None:
            return None if v is None else {"status": v.status, "names": list(v.names),
                                           "not_shown": [[c, s] for c, s in v.not_shown], "os": list(v.os)}
        return {"address": h.address, "a": side(h.a), "b": side(h.b),
                "ports": [{"protocol": p.protocol, "port": p.port, "a": _view_json(p.a), "b": _view_json(p.b)}
                          for p in h.ports]}

    def run(name: str, info: RunInfo, scanner: str) -> dict[str, Any]:
        return {"source": name, "scanner": scanner, "version": info.version, "args": info.args,
                "start": info.start_time}

    return {"a": run(d.a_name, d.a_run, d.a_scanner), "b": run(d.b_name, d.b_run, d.b_scanner),
            "changed": d.changed, "hosts": [host(h) for h in d.hosts if h.changed]}


def write_json(d: RunDiff, out: TextIO) -> None:
    out.write(json.dumps(diff_to_json(d), indent=1, ensure_ascii=True) + "\n")



