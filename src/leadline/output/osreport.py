"""OS detection's part of a host's report, in nmap's words: normal lines, XML elements, JSON.

Normal output, in nmap's order after the MAC address: a warning when no
open and closed port were found, ``Device type``/``Running``/``OS CPE``
from the classes, then ``OS details`` (perfect matches), or ``Aggressive
OS guesses`` and ``No exact OS matches`` with the fingerprint, then
``Uptime guess`` (-v), ``Network Distance``, ``TCP Sequence Prediction``
and ``IP ID Sequence Generation`` (-v).  leadline adds one line of its
own, labelled as a hint: what the initial TTL alone suggests.
"""

from __future__ import annotations

import math
import time
from typing import Any

from leadline.model import HostResult, OsClass, OsResult

__all__ = ["os_json", "os_normal_lines", "os_xml_lines"]

_SUBMIT = "https://nmap.org/submit/"
_MAX_MEMBERS = 8


def _pct(accuracy: int) -> str:
    return f"{accuracy}%"


def _class_lines(os: OsResult) -> list[str]:
    """Device type / Running / OS CPE, as nmap folds the classes into families."""
    types: list[str] = []
    cpes: list[str] = []
    families: dict[str, tuple[list[str], int]] = {}
    if not os.classes:
        return []
    best = os.classes[0].accuracy
    for index, cls in enumerate(os.classes):
        if (not os.show_guesses and index >= os.class_perfect) or cls.accuracy <= best - 10 \
                or (cls.accuracy < 100 and index > 9):
            break
        if cls.device_type and cls.device_type not in types:
            types.append(cls.device_type)
        cpes.extend(c for c in cls.cpe if c not in cpes)
        family = cls.family if cls.vendor == cls.family else f"{cls.vendor} {cls.family}"
        gens, acc = families.setdefault(family, ([], cls.accuracy))
        if cls.generation and cls.generation not in gens:
            gens.append(cls.generation)
    if not families or len(families) > _MAX_MEMBERS or len(types) > _MAX_MEMBERS or len(cpes) > _MAX_MEMBERS:
        return []
    running = []
    for number, (family, (gens, acc)) in enumerate(families.items()):
        text = family + (" " + "|".join(gens) if gens else "")
        if number >= os.class_perfect:
            text += f" ({acc}%)"
        running.append(text)
    lines = ["Device type: " + "|".join(types),
             f"Running{' (JUST GUESSING)' if os.class_perfect == 0 else ''}: " + ", ".join(running)]
    if cpes:
        lines.append("OS CPE: " + " ".join(cpes))
    return lines


def _match_lines(os: OsResult, verbosity: int) -> list[str]:
    lines: list[str] = []
    if os.too_many:
        return ["Too many fingerprints match this host to give specific OS details"]
    if os.perfect:
        lines.append("OS details: " + ", ".join(m.name for m in os.matches[:os.perfect]))
        if verbosity > 1 and os.fingerprint:
            lines += ["TCP/IP fingerprint:", os.fingerprint]
        return lines
    if os.matches and os.show_guesses:
        lines.append("Aggressive OS guesses: " + ", ".join(f"{m.name} ({_pct(m.accuracy)})" for m in os.matches[:10]))
    if not os.matches:
        if os.not_ideal:
            lines += [f"OS fingerprint not ideal because: {os.not_ideal}", "No OS matches for host"]
            if verbosity > 1 and os.fingerprint:
                lines += ["TCP/IP fingerprint:", os.fingerprint]
        else:
            lines.append(f"No OS matches for host (If you know what OS is running on it, see {_SUBMIT} ).")
            if os.fingerprint:
                lines += ["TCP/IP fingerprint:", os.fingerprint]
        return lines
    if os.not_ideal:
        lines.append("No exact OS matches for host (test conditions non-ideal).")
        if verbosity > 1 and os.fingerprint:
            lines += ["TCP/IP fingerprint:", os.fingerprint]
    else:
        lines.append(f"No exact OS matches for host (If you know what OS is running on it, see {_SUBMIT} ).")
        if os.fingerprint:
            lines += ["TCP/IP fingerprint:", os.fingerprint]
    return lines


def os_normal_lines(host: HostResult, verbosity: int) -> list[str]:
    """The OS block of one host (empty when OS detection did not run on it)."""
    os = host.os
    if os is None:
        return []
    lines: list[str] = []
    if os.unreliable and not os.too_many:
        lines.append("Warning: OSScan results may be unreliable because we could not find at least 1 open "
                     "and 1 closed port")
    lines += _class_lines(os)
    lines += _match_lines(os, verbosity)
    if os.ttl_hint:
        lines.append(f"OS hint from the initial TTL (leadline, not a match): {os.ttl_hint}")
    seq = os.sequences
    if seq is not None and seq.lastboot is not None and verbosity:
        days = (time.time() - seq.lastboot) / 86400
        lines.append(f"Uptime guess: {days:.3f} days (since {time.ctime(seq.lastboot)})")
    if host.distance is not None:
        lines.append(f"Network Distance: {host.distance} hop{'' if host.distance == 1 else 's'}")
    if seq is not None and verbosity:
        if seq.tcp_index is not None and len(seq.tcp_values) > 3:
            lines.append(f"TCP Sequence Prediction: Difficulty={seq.tcp_index} ({seq.tcp_difficulty})")
        if seq.ipid_class is not None and len(seq.ipid_values) > 2:
            lines.append(f"IP ID Sequence Generation: {seq.ipid_class}")
    return lines


def _escape(text: str) -> str:
    """XML escaping for attribute values and text (newlines kept as character references, as nmap writes)."""
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;", "\n": "&#xa;", "\r": "&#xd;",
            "\t": "&#9;"}


def _attrs(pairs: dict[str, Any]) -> str:
    return "".join(f' {k}="{_escape(str(v))}"' for k, v in pairs.items() if v is not None)


def _osclass_xml(cls: OsClass, accuracy: int) -> str:
    attrs = _attrs({"type": cls.device_type, "vendor": cls.vendor, "osfamily": cls.family,
                    "osgen": cls.generation, "accuracy": accuracy})
    if not cls.cpe:
        return f"<osclass{attrs}/>"
    return f"<osclass{attrs}>" + "".join(f"<cpe>{_escape(c)}</cpe>" for c in cls.cpe) + "</osclass>"


def os_xml_lines(host: HostResult) -> list[str]:
    """``<os>`` (portused, osmatch/osclass, osfingerprint), ``<uptime>``, ``<distance>``, the sequences."""
    os = host.os
    if os is None:
        return []
    lines = ["<os>"]
    for port in os.ports_used:
        lines.append(f"<portused{_attrs({'state': str(port.state), 'proto': port.protocol, 'portid': port.port})}/>")
    shown = os.matches[:os.perfect] if os.perfect else os.matches[:10]
    if not os.too_many:
        for match in shown:
            lines.append(f"<osmatch{_attrs({'name': match.name, 'accuracy': match.accuracy, 'line': match.line})}>")
            lines.extend(_osclass_xml(c, match.accuracy) for c in match.classes)
            lines.append("</osmatch>")
    if os.fingerprint:
        lines.append(f"<osfingerprint{_attrs({'fingerprint': os.fingerprint})}/>")
    lines.append("</os>")
    seq = os.sequences
    if seq is not None and seq.lastboot is not None:
        lines.append(f"<uptime{_attrs({'seconds': int(time.time() - seq.lastboot), 'lastboot': time.ctime(seq.lastboot)})}/>")
    if host.distance is not None:
        lines.append(f"<distance value=\"{host.distance}\"/>")
    if seq is not None:
        if seq.tcp_index is not None and len(seq.tcp_values) > 3:
            lines.append(f"<tcpsequence{_attrs({'index': seq.tcp_index, 'difficulty': seq.tcp_difficulty, 'values': ','.join(f'{v:X}' for v in seq.tcp_values)})}/>")
        if seq.ipid_class is not None and len(seq.ipid_values) > 2:
            lines.append(f"<ipidsequence{_attrs({'class': seq.ipid_class, 'values': ','.join(f'{v:X}' for v in seq.ipid_values)})}/>")
            values = ",".join(f"{v:X}" for v in seq.ts_values) if seq.ts_class != "none returned (unsupported)" else None
            lines.append(f"<tcptssequence{_attrs({'class': seq.ts_class, 'values': values})}/>")
    return lines


def os_json(host: HostResult) -> dict[str, Any] | None:
    """The OS result as JSON (leadline's schema), None when OS detection did not run."""
    os = host.os
    if os is None:
        return None
    seq = os.sequences
    return {
        "matches": [{"name": m.name, "accuracy": m.accuracy, "line": m.line,
                     "classes": [{"vendor": c.vendor, "family": c.family, "generation": c.generation,
                                  "type": c.device_type, "cpe": list(c.cpe)} for c in m.classes]}
                    for m in os.matches],
        "perfect": os.perfect,
        "fingerprint": os.fingerprint,
        "ports_used": [{"port": p.port, "protocol": p.protocol, "state": str(p.state)} for p in os.ports_used],
        "distance": host.distance,
        "ttl_hint": os.ttl_hint,
        "tcp_sequence": None if seq is None or seq.tcp_index is None else
        {"index": seq.tcp_index, "difficulty": seq.tcp_difficulty},
        "ipid_sequence": None if seq is None else seq.ipid_class,
        "tcp_ts_sequence": None if seq is None else seq.ts_class,
        "uptime": None if seq is None or seq.lastboot is None else max(0.0, math.floor(time.time() - seq.lastboot)),
    }
