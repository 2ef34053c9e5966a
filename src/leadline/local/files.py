"""``-oJ`` and ``-oX`` files of a local listing, and reading a JSON file back (for ``--diff``).

Both layouts are documented in docs/local.md; the JSON is described by
``leadline/data/local.schema.json`` (JSON Schema 2020-12) and the XML by
``leadline/data/local.dtd``.  Keys are only added within a schema version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from leadline.errors import InputFileError
from leadline.local.model import Exposure, LocalSocket, Owner, Snapshot
from leadline.local.render import sort_key

__all__ = ["SCHEMA_VERSION", "ExposureInfo", "read_json", "to_json", "to_xml"]

SCHEMA_VERSION = 1
ExposureInfo = dict[str, str]  # "from", "address", "method": how the outside view was taken


def _exposure_dict(seen: Exposure | None) -> dict[str, Any] | None:
    if seen is None:
        return None
    return {"label": seen.label, "detail": seen.detail, "rule_family": seen.rule_family, "rule": seen.rule}


def _socket_dict(item: LocalSocket) -> dict[str, Any]:
    return {"protocol": item.protocol, "family": item.family, "state": item.state,
            "local_address": item.local_address, "local_port": item.local_port,
            "remote_address": item.remote_address, "remote_port": item.remote_port,
            "service": item.service, "pid": item.pid, "fd": item.fd, "exposure": _exposure_dict(item.exposure)}


def _owner_dict(owner: Owner) -> dict[str, Any]:
    return {"pid": owner.pid, "name": owner.name, "user": owner.user, "cmdline": list(owner.cmdline),
            "started": owner.started}


def _pids(items: Sequence[LocalSocket], snapshot: Snapshot) -> list[int]:
    return sorted({item.pid for item in items if item.pid is not None and item.pid in snapshot.owners})


def to_json(snapshot: Snapshot, items: Sequence[LocalSocket], args: str, version: str,
            exposure: ExposureInfo | None = None) -> str:
    """The JSON document of a listing (one object, one socket per line)."""
    ordered = sorted(items, key=sort_key)
    head = {"scanner": "leadline", "kind": "local", "schema": SCHEMA_VERSION, "version": version, "args": args,
            "time": round(snapshot.taken, 3), "privileged": snapshot.privileged, "note": snapshot.note,
            "exposure": exposure,
            "processes": [_owner_dict(snapshot.owners[pid]) for pid in _pids(ordered, snapshot)]}
    text = json.dumps(head)[:-1] + ', "sockets": [\n'
    text += ",\n".join(json.dumps(_socket_dict(item)) for item in ordered)
    return text + "\n]}\n"


# Characters XML 1.0 cannot carry (a command line may hold any byte but NUL).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\t": "&#9;", "\r": "&#13;"})


def _quote(value: object) -> str:
    """An XML attribute value, quoted (xml.sax's quoteattr would pull in urllib at start-up)."""
    return '"' + _NOT_XML.sub("\ufffd", str(value)).translate(_ESCAPES) + '"'


def _attrs(pairs: dict[str, object]) -> str:
    return "".join(f" {key}={_quote(value)}" for key, value in pairs.items() if value is not None)


def _xml_socket(item: LocalSocket) -> str:
    attrs = _attrs({"protocol": item.protocol, "family": item.family, "state": item.state,
                    "localaddr": item.local_address, "localport": item.local_port,
                    "remoteaddr": item.remote_address, "remoteport": item.remote_port,
                    "service": item.service, "pid": item.pid, "fd": item.fd})
    seen = item.exposure
    if seen is None:
        return f"<socket{attrs}/>"
    inner = _attrs({"label": seen.label, "detail": seen.detail, "rulefamily": seen.rule_family, "rule": seen.rule})
    return f"<socket{attrs}><exposure{inner}/></socket>"


def to_xml(snapshot: Snapshot, items: Sequence[LocalSocket], args: str, version: str,
           exposure: ExposureInfo | None = None) -> str:
    """The XML document of a listing; valid against leadline/data/local.dtd."""
    ordered = sorted(items, key=sort_key)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<!DOCTYPE leadlinelocal SYSTEM "local.dtd">',
             f"<leadlinelocal{_attrs({'version': version, 'args': args, 'time': round(snapshot.taken, 3), 'privileged': 'yes' if snapshot.privileged else 'no', 'schema': SCHEMA_VERSION})}>"]
    if snapshot.note:
        lines.append(f"<note{_attrs({'text': snapshot.note})}/>")
    if exposure:
        lines.append(f"<outside{_attrs({'from': exposure.get('from'), 'address': exposure.get('address'), 'method': exposure.get('method')})}/>")
    for pid in _pids(ordered, snapshot):
        owner = snapshot.owners[pid]
        args_xml = "".join(f"<arg{_attrs({'value': arg})}/>" for arg in owner.cmdline)
        started = None if owner.started is None else round(owner.started, 3)
        lines.append(f"<process{_attrs({'pid': pid, 'name': owner.name, 'user': owner.user, 'started': started})}>{args_xml}</process>")
    lines += [_xml_socket(item) for item in ordered]
    lines.append("</leadlinelocal>")
    return "\n".join(lines) + "\n"


def read_json(path: str) -> dict[str, Any]:
    """A JSON file that ``leadline local -oJ`` wrote; a clear one-line error for anything else."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as e:
        raise InputFileError(f"cannot read '{path}': {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InputFileError(f"'{path}' is not JSON: {e}") from None
    if not isinstance(document, dict) or document.get("kind") != "local" or not isinstance(document.get("sockets"), list):
        raise InputFileError(f"'{path}' is not a 'leadline local -oJ' file")
    return document
