"""The error of a bad combination of options, found before any file is read."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """A mistake in the options (not in the data), reported in one line; the command line
    ends with exit status 2 on it."""
