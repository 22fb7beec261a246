"""The errors memenv raises on purpose: failures a user can fix, with a message that says how.

Every class derives from `MemenvError` and from the builtin a caller would catch without
knowing memenv (`ValueError`, `FileNotFoundError`, `TypeError`), so library code keeps the
usual Python contract while the ``memenv`` command line prints any `MemenvError` as one line,
``memenv CMD: error: ...``, and exits 2. Anything else that escapes a command is a bug and keeps
its traceback.

Messages name the bad value or file and say what to do about it.
"""

from __future__ import annotations


class MemenvError(Exception):
    """Base class: an anticipated failure with a message written for the user."""


class UsageError(MemenvError, ValueError):
    """An argument or setting outside what is allowed (the message shows the bad value)."""


class ArgumentTypeError(MemenvError, TypeError):
    """An argument of the wrong type (the message shows the type that was given)."""


class MissingFileError(MemenvError, FileNotFoundError):
    """A file or folder the call needs does not exist."""


class CorruptFileError(MemenvError, ValueError):
    """A file exists but is truncated, damaged or not in the format expected."""


class UnsafeFileError(CorruptFileError):
    """A file whose loading would run code it carries (a pickle of arbitrary objects).

    memenv refuses such files rather than trusting whoever wrote them: run directories and
    data folders are shared between people and machines.
    """
