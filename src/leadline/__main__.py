"""``python -m leadline``: the command line."""

from leadline.cli.command import entry

__all__ = ["entry"]

entry()
