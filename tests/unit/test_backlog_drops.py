"""The receive backlog's drop counter (/proc/net/softnet_stat) is read as a delta over every CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadline.engines.packetio import BacklogDrops


def _softnet(drops: list[int]) -> str:
    return "".join(f"0125f69f {d:08x} 0000000d 00000000 00000000\n" for d in drops)


def test_drops_are_summed_over_cpus_and_reported_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stat = tmp_path / "softnet_stat"
    stat.write_text(_softnet([5, 7]))
    monkeypatch.setattr(BacklogDrops, "_PATH", str(stat))
    backlog = BacklogDrops()
    assert backlog.since_last() == 0
    stat.write_text(_softnet([5 + 0x10, 7 + 3]))
    assert backlog.since_last() == 19
    assert backlog.since_last() == 0
    backlog.close()


def test_an_unreadable_or_odd_counter_reports_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BacklogDrops, "_PATH", str(tmp_path / "missing"))
    assert BacklogDrops().since_last() == 0
    odd = tmp_path / "odd"
    odd.write_text("garbage zz\n\n1\n")
    monkeypatch.setattr(BacklogDrops, "_PATH", str(odd))
    assert BacklogDrops().since_last() == 0


def test_the_real_counter_reads() -> None:
    backlog = BacklogDrops()
    assert backlog.since_last() >= 0
    backlog.close()
