"""How a host numbers the IP identification field, read from a few samples.

Both OS detection (the TI, CI and II tests) and the idle scan (is this host
a usable zombie?) ask the same question of a short run of IP IDs, so the
answer lives here once, as a pure function of the samples.

The classes and their thresholds are nmap's, so fingerprints and zombie
verdicts agree with it:

* ``ZERO``: every sample is 0 (Linux for most DF packets).
* ``RANDOM``: some step exceeds 20,000 (with three or more samples).
* ``CONSTANT``: every step is 0 but the value is not.
* ``RANDOM_INCREMENTS``: some step exceeds 1,000 and is not a small
  multiple of 256 (a multiple of 256 counts only from 25,600 up).
* ``BROKEN_INCREMENTAL``: every step is a multiple of 256 up to 5,120 —
  a counter stored little-endian (old Windows), so +1 reads as +256.
* ``INCREMENTAL_BY_2``: every step is even (checked before +1, as nmap does).
* ``INCREMENTAL``: every step is below 10.
* ``UNKNOWN``: too few samples, or none of the above.

Steps are taken modulo the field's size (2**16 for IPv4, 2**32 for the
IPv6 fragment header's identification), so a counter wrapping between two
samples still reads as a small step.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

__all__ = ["IpidClass", "classify_ipids", "ipid_steps", "is_zombie_class"]


class IpidClass(enum.Enum):
    """A host's IP ID sequence class; the value is the code nmap's fingerprints print for TI/CI/II."""

    ZERO = "Z"
    RANDOM = "RD"
    RANDOM_INCREMENTS = "RI"
    BROKEN_INCREMENTAL = "BI"
    INCREMENTAL = "I"
    INCREMENTAL_BY_2 = "I2"
    CONSTANT = "C"
    UNKNOWN = "U"

    @property
    def description(self) -> str:
        """The words nmap's reports use ("IP ID Sequence Generation: ...")."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    IpidClass.ZERO: "All zeros",
    IpidClass.RANDOM: "Randomized",
    IpidClass.RANDOM_INCREMENTS: "Random positive increments",
    IpidClass.BROKEN_INCREMENTAL: "Broken little-endian incremental",
    IpidClass.INCREMENTAL: "Incremental",
    IpidClass.INCREMENTAL_BY_2: "Incrementing by 2",
    IpidClass.CONSTANT: "Constant",
    IpidClass.UNKNOWN: "Busy server or unknown class",
}

_RANDOM_STEP = 20000
_INCREMENT_LIMIT = 1000
_BROKEN_LIMIT = 5120
_BROKEN_MULTIPLE_FLOOR = 25600
_SMALL_STEP = 9


def ipid_steps(ipids: Sequence[int], bits: int = 16) -> list[int]:
    """The differences between consecutive samples, modulo 2**bits."""
    modulus = 1 << bits
    return [(later - earlier) % modulus for earlier, later in zip(ipids, ipids[1:])]


def classify_ipids(ipids: Sequence[int], bits: int = 16, localhost: bool = False) -> IpidClass:
    """The sequence class of IP IDs sampled in order (answers to our probes only).

    ``localhost``: the samples came from a scan of this machine, where each
    probe's own RST also takes an ID, so steps above one are reduced by one
    (by 256 when a multiple of 256) before classifying, as nmap does.
    """
    if len(ipids) < 2:
        return IpidClass.UNKNOWN
    steps = ipid_steps(ipids, bits)
    if len(ipids) > 2 and any(step > _RANDOM_STEP for step in steps):
        return IpidClass.RANDOM
    if not any(ipids):
        return IpidClass.ZERO
    if localhost and all(step >= 2 for step in steps):
        steps = [step - 256 if step % 256 == 0 else step - 1 for step in steps]
    return _classify_steps(steps)


def _classify_steps(steps: Sequence[int]) -> IpidClass:
    if all(step == 0 for step in steps):
        return IpidClass.CONSTANT
    if any(step > _INCREMENT_LIMIT and (step % 256 != 0 or step >= _BROKEN_MULTIPLE_FLOOR)
           for step in steps):
        return IpidClass.RANDOM_INCREMENTS
    if all(step % 256 == 0 and step <= _BROKEN_LIMIT for step in steps):
        return IpidClass.BROKEN_INCREMENTAL
    if all(step % 2 == 0 for step in steps):
        return IpidClass.INCREMENTAL_BY_2
    if all(step <= _SMALL_STEP for step in steps):
        return IpidClass.INCREMENTAL
    return IpidClass.UNKNOWN


def is_zombie_class(kind: IpidClass) -> bool:
    """Whether an idle scan can read a host's counter: one shared, predictable increment."""
    return kind in (IpidClass.INCREMENTAL, IpidClass.INCREMENTAL_BY_2, IpidClass.BROKEN_INCREMENTAL)
