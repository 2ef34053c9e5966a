"""``--resume FILE``: continue an interrupted run from the hosts its XML or JSON output already holds.

As nmap's ``--resume``, the option stands alone: the command line is
read back from the file, so the resumed run scans exactly what the first
one would have, minus the hosts it finished.
"""

from __future__ import annotations

import os
import shlex

from leadline.errors import UsageError
from leadline.options import Parsed, parse_args
from leadline.output.checkpoint import Checkpoint, read_checkpoint

__all__ = ["resume"]


def resume(argv: list[str], parsed: Parsed) -> tuple[Parsed, Checkpoint]:
    """The original run's parsed command line and its checkpoint. Raises UsageError with one line."""
    path = parsed.config.resume
    assert path is not None
    if len(argv) != 2:
        raise UsageError("--resume FILE takes no other options or targets: the command line is read from FILE")
    try:
        checkpoint = read_checkpoint(path)
    except OSError as e:
        raise UsageError(f"cannot resume from '{path}': {e.strerror or e}") from None
    except ValueError as e:
        raise UsageError(f"cannot resume from '{path}': {e}") from None
    words = shlex.split(checkpoint.args)
    if not words or words[0] != "leadline":
        raise UsageError(f"cannot resume from '{path}': it was not written by leadline ({checkpoint.args[:60]!r})")
    original = parse_args(words[1:])
    outputs = {o for o in (original.config.output.xml, original.config.output.json) if o and o != "-"}
    if os.path.realpath(path) not in {os.path.realpath(o) for o in outputs}:
        raise UsageError(f"cannot resume from '{path}': the run that wrote it wrote its XML/JSON to "
                         f"{', '.join(sorted(outputs)) or 'standard output'}; run --resume from the same directory")
    return original, checkpoint
