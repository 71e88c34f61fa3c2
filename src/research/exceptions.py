"""The package's own errors: one base class, so a command can turn any of them into one line.

Every error a user can cause (a bad file, a bad option, an output that would overwrite one of
the inputs, a folder that cannot be written) derives from :class:`ResearchError`; its message is
one line naming the file, column, rows or option, ready to print after ``error:``.

The two kinds the base layer raises itself:

==================  ==============================================================================
``InputError``      a bad option or parameter value (also a ``ValueError``, so existing handlers
                    of ``ValueError`` keep catching it)
``OutputError``     an output that cannot or must not be written: over one of the command's own
                    inputs, over a file the command did not create, into a read-only folder,
                    under a path whose folder is a file, onto a full disk (also an ``OSError``)
==================  ==============================================================================
"""

from __future__ import annotations

__all__ = ["InputError", "OutputError", "ResearchError"]


class ResearchError(Exception):
    """Base of every error the package raises on purpose; ``str(err)`` is one line."""


class InputError(ResearchError, ValueError):
    """A bad option, parameter or value, named in the message."""


class OutputError(ResearchError, OSError):
    """An output that cannot or must not be written; the message names the path and why."""
