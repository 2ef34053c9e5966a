"""The exception tree.

Every error a user can cause carries a one-line message that names what
is wrong; the CLI prints ``leadline: <message>`` and exits non-zero, and
never shows a traceback for these.
"""

from __future__ import annotations

__all__ = [
    "InputFileError",
    "LabError",
    "LeadlineError",
    "PortSpecError",
    "PrivilegeError",
    "StoreError",
    "TargetSpecError",
    "UsageError",
]


class LeadlineError(Exception):
    """Base of every error leadline raises on purpose."""

    exit_code = 1


class UsageError(LeadlineError):
    """A bad flag, flag value or combination of flags."""

    exit_code = 2


class TargetSpecError(UsageError):
    """A target specification that cannot be parsed."""


class PortSpecError(UsageError):
    """A port specification that cannot be parsed."""


class InputFileError(UsageError):
    """A file named on the command line (``-iL``, ``--excludefile``) cannot be read."""


class PrivilegeError(LeadlineError):
    """The operation needs root (raw sockets, namespaces) and we are not root."""

    exit_code = 1


class LabError(LeadlineError):
    """The practice lab could not be built, inspected or removed."""


class StoreError(LeadlineError):
    """The scan history (``--save``, ``leadline db``, ``diff``, ``report``) cannot be read or written."""

    exit_code = 2
