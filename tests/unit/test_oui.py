"""MAC vendor lookup: the system's IEEE registry, and short names as nmap prints them."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadline.detect.oui import DEFAULT_REGISTRY, VendorRegistry, short_vendor_name, vendor_for

REGISTRY_SAMPLE = """\
OUI/MA-L                                                    Organization
company_id                                                  Organization
                                                            Address

00-15-5D   (hex)\t\tMicrosoft Corporation
00155D     (base 16)\t\tMicrosoft Corporation
\t\t\t\tOne Microsoft Way
\t\t\t\tRedmond  WA  98052
\t\t\t\tUS

F4-BD-9E   (hex)\t\tCisco Systems, Inc
F4BD9E     (base 16)\t\tCisco Systems, Inc

a0-b1-c2   (hex)\t\tExample Networks Co., Ltd.
"""


@pytest.mark.parametrize(
    ("organisation", "short"),
    [
        ("Microsoft Corporation", "Microsoft"),
        ("Raspberry Pi Foundation", "Raspberry Pi Foundation"),
        ("Cisco Systems, Inc", "Cisco Systems"),
        ("Apple, Inc.", "Apple"),
        ("Huawei Technologies Co.,Ltd", "Huawei Technologies"),
        ("TP-LINK TECHNOLOGIES CO.,LTD.", "TP-LINK TECHNOLOGIES"),
        ("Dell Inc.", "Dell"),
        ("Intel Corporate", "Intel Corporate"),
        ("  Spaced   Name  GmbH ", "Spaced Name"),
        ("Inc", "Inc"),  # never shortened to nothing
    ],
)
def test_short_names_drop_legal_forms(organisation: str, short: str) -> None:
    assert short_vendor_name(organisation) == short


def test_lookup_from_a_registry_file_accepts_any_mac_spelling(tmp_path: Path) -> None:
    path = tmp_path / "oui.txt"
    path.write_text(REGISTRY_SAMPLE)
    registry = VendorRegistry(path)
    assert registry.lookup("00:15:5d:4c:11:30") == "Microsoft"
    assert registry.lookup("00-15-5D-4C-11-30") == "Microsoft"
    assert registry.lookup("F4BD9E000001") == "Cisco Systems"
    assert registry.lookup("a0:b1:c2:00:00:01") == "Example Networks"
    assert registry.lookup("02:4c:11:00:00:01") is None  # not assigned
    assert registry.lookup("00:15") is None  # too short to hold an OUI


def test_a_registry_with_crlf_line_ends_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "oui.txt"
    path.write_bytes(REGISTRY_SAMPLE.replace("\n", "\r\n").encode())  # as the IEEE publishes it
    registry = VendorRegistry(path)
    assert registry.lookup("00:15:5d:4c:11:30") == "Microsoft"
    assert registry.lookup("a0:b1:c2:00:00:01") == "Example Networks"


def test_registry_is_read_lazily_once(tmp_path: Path) -> None:
    path = tmp_path / "oui.txt"
    path.write_text(REGISTRY_SAMPLE)
    registry = VendorRegistry(path)
    path.unlink()  # nothing was read yet: a lookup now finds no file
    assert registry.lookup("00:15:5d:4c:11:30") is None
    path.write_text(REGISTRY_SAMPLE)
    assert registry.lookup("00:15:5d:4c:11:30") is None  # the (empty) table is cached


def test_missing_registry_gives_none(tmp_path: Path) -> None:
    assert VendorRegistry(tmp_path / "absent.txt").lookup("b8:27:eb:4c:11:20") is None


def test_system_registry_names_the_lab_vendors() -> None:
    assert DEFAULT_REGISTRY.exists(), "Debian's ieee-data package provides the registry"
    assert vendor_for("b8:27:eb:4c:11:20") == "Raspberry Pi Foundation"
    assert vendor_for("00:15:5D:4C:11:30") == "Microsoft"
    assert vendor_for("02:4c:11:00:00:01") is None  # locally administered: no vendor
