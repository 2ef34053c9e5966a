"""Shards: a keyed bijection of the host index range, cut into N disjoint parts that cover it."""

from __future__ import annotations

import pytest

from leadline.config import ScanConfig
from leadline.core.shards import KeyedPermutation, Shard, parse_shard, shard_stream
from leadline.engines.fake import CLOSED, OPEN, FakeHost
from leadline.errors import UsageError
from leadline.options import parse_args
from leadline.pipeline import Scan
from tests.unit.fakeengines import FakeEngines, ScriptedHost
from tests.unit.test_pipeline import Recorder


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, 255, 256, 1000, 4097])
@pytest.mark.parametrize("seed", [0, 1, 12345, (1 << 62) + 7])
def test_the_permutation_is_a_bijection_of_the_range(size: int, seed: int) -> None:
    permutation = KeyedPermutation(size, seed)
    assert sorted(permutation(i) for i in range(size)) == list(range(size))


def test_the_seed_changes_the_permutation() -> None:
    a, b = KeyedPermutation(1000, 1), KeyedPermutation(1000, 2)
    assert [a(i) for i in range(1000)] != [b(i) for i in range(1000)]
    assert [a(i) for i in range(1000)] != list(range(1000))  # it does shuffle


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 13])
@pytest.mark.parametrize("seed", [0, 7, 99991])
@pytest.mark.parametrize("size", [1, 10, 254, 1024, 3001])
def test_shards_are_disjoint_and_complete(count: int, seed: int, size: int) -> None:
    parts = [list(Shard(i, count, seed).members(size)) for i in range(1, count + 1)]
    every = [index for part in parts for index in part]
    assert sorted(every) == list(range(size))  # complete, and no index twice
    if size >= 100 * count:  # balanced within a few percent of size/count
        for part in parts:
            assert abs(len(part) - size / count) < 0.2 * size / count


def test_shard_stream_is_lazy_over_a_slash_8() -> None:
    """The first members of a /8's shard come without walking, or holding, the range."""
    size = 1 << 24
    items = iter(range(size))
    first = list(zip(range(5), shard_stream(items, Shard(2, 3, 11), size)))
    assert len(first) == 5
    assert next(items) < 1000  # only a few items were read


def test_a_stream_longer_than_its_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than its bound"):
        list(shard_stream(range(10), Shard(1, 1, 0), 5))


@pytest.mark.parametrize(("text", "seed", "message"), [
    ("1/3", None, "--shards needs --seed"),
    ("0/3", 1, "I must be from 1 to N"),
    ("4/3", 1, "I must be from 1 to N"),
    ("1/0", 1, "I must be from 1 to N"),
    ("a/3", 1, "--shards takes I/N"),
    ("3", 1, "--shards takes I/N"),
])
def test_bad_shard_specs_say_what_is_wrong(text: str, seed: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_shard(text, seed)


def test_the_command_line_takes_shards_and_seed() -> None:
    config = parse_args(["--shards", "2/3", "--seed", "42", "198.18.5.0/24"]).config
    assert config.shard == (2, 3, 42)
    with pytest.raises(UsageError, match="--shards needs --seed"):
        parse_args(["--shards", "2/3", "198.18.5.0/24"])


def test_the_union_of_shard_runs_is_the_full_run_over_the_fake_network() -> None:
    hosts = {f"198.18.5.{n}": ScriptedHost(FakeHost(ports={22: OPEN}, default=CLOSED), up=n % 3 != 0)
             for n in range(1, 41)}

    def scan(shard: tuple[int, int, int] | None) -> dict[str, object]:
        config = ScanConfig(targets=("198.18.5.1-40",), exclude=("198.18.5.7",), ports="22,80", privileged=True,
                            dns="never", shard=shard)
        sink = Recorder()
        Scan(config, sink, warn=lambda _: None, engines=FakeEngines(hosts)).run()
        addresses = [h.address for h in sink.hosts]
        assert len(addresses) == len(set(addresses))
        return {h.address: (h.status, tuple((p.port, p.state) for p in h.ports)) for h in sink.hosts}

    full = scan(None)
    parts = [scan((i, 3, 2024)) for i in (1, 2, 3)]
    assert all(parts)
    union: dict[str, object] = {}
    for part in parts:
        assert not set(part) & set(union)
        union.update(part)
    assert union == full and len(full) == 39
