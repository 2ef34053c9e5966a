"""The Python API as a newcomer uses it: help shows the real signature, lists work, misuse is one line.

Every scan here is a list scan without DNS (-sL -n), which sends nothing.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import pydoc
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import leadline
from leadline.api import config_from


def test_help_shows_parameters_and_return_type() -> None:
    text = pydoc.render_doc(leadline.scan, renderer=pydoc.plaintext)
    assert "scan(targets: 'str | Iterable[str]', options: 'Options' = ''" in text
    assert "-> 'ScanReport'" in text and "max_retries=2" in text
    sig = inspect.signature(leadline.scan)
    assert list(sig.parameters)[:2] == ["targets", "options"] and sig.return_annotation == "ScanReport"
    assert list(inspect.signature(leadline.scan_async).parameters)[:2] == ["targets", "options"]


def test_options_as_a_list() -> None:
    report = leadline.scan(["198.18.1.0/30"], ["-sL", "-n"])
    assert [h.address for h in report.hosts] == [f"198.18.1.{i}" for i in range(4)]


def test_output_options_write_their_files(tmp_path: Path) -> None:
    xml_path, json_path = tmp_path / "out.xml", tmp_path / "out.json"
    leadline.scan("198.18.1.0/31", ["-sL", "-n", "-oX", str(xml_path), "-oJ", str(json_path)])
    assert len(ET.parse(xml_path).getroot().findall("host")) == 2
    assert [h["address"] for h in json.loads(json_path.read_text())["hosts"]] == ["198.18.1.0", "198.18.1.1"]


def test_overrides_reach_timing_fields() -> None:
    assert config_from("x", "-sT", max_retries=2).timing.max_retries == 2
    assert config_from("x", "-sT", reason=True).reason is True


@pytest.mark.parametrize("call, needle", [
    (lambda: leadline.scan("198.18.1.1", "-sL -n", max_retrie=2), "unknown keyword argument 'max_retrie'"),
    (lambda: leadline.scan("198.18.1.1", "-sL -n", max_retries="2"), "max_retries='2': expected int"),
    (lambda: leadline.scan("198.18.1.1", 5), "options must be a string or a list of strings"),  # type: ignore[arg-type]
    (lambda: leadline.scan(["198.18.1.1", 5], "-sL -n"), "targets must be"),  # type: ignore[list-item]
    (lambda: leadline.scan("198.18.1.1", "-sL -n -oX -"), "cannot write to standard output"),
    (lambda: leadline.scan("198.18.1.1", "-sL -n -oX /nonexistent/dir/x.xml"), "cannot write output file"),
    (lambda: leadline.scan("198.18.1.1", '-sL -n "'), "No closing quotation"),
    (lambda: leadline.scan("198.18.1.1", "-sL -n --stats-every 1s"), "command line"),
    (lambda: asyncio.run(leadline.scan_async("198.18.1.1", ["-sL", "-n"], bogus=1)), "unknown keyword argument"),
])
def test_misuse_is_one_line_leadline_error(call: object, needle: str) -> None:
    with pytest.raises(leadline.LeadlineError) as caught:
        call()  # type: ignore[operator]
    message = str(caught.value)
    assert needle in message and "\n" not in message


def test_scan_async_returns_the_same_report() -> None:
    report = asyncio.run(leadline.scan_async("198.18.1.0/31", ["-sL", "-n"]))
    assert [h.address for h in report.hosts] == ["198.18.1.0", "198.18.1.1"]


def test_option_warnings_reach_the_report_and_the_callback() -> None:
    heard: list[str] = []
    report = leadline.scan("198.18.1.1", ["-sL", "-n"], warn=heard.append)
    assert report.warnings == () and heard == []
    config_warnings = leadline.api._configured("x", ["-sT", "--scanflags", "SYN"], {})[1]
    assert config_warnings and config_warnings[0].startswith("You have specified some options that require raw")
