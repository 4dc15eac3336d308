"""Exceptions with messages that say what to fix, and their CLI exit codes."""

from __future__ import annotations


class VdriftError(Exception):
    """Base class: every error the toolkit raises on purpose.

    The message is written for the user and says what to fix.
    """

    exit_code = 1


class InputError(VdriftError):
    """A file, mapping, parameter or option that cannot be used as given."""

    exit_code = 2


class StoreError(VdriftError):
    """The store cannot be opened or written (locked, newer schema, missing)."""

    exit_code = 3


class NotApplicable(VdriftError):
    """An analysis does not apply to the data given (e.g. an empty window)."""

    exit_code = 4
