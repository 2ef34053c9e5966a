"""``python -m leadline``: the command line."""

from leadline.cli.main import entry

__all__ = ["entry"]

entry()
