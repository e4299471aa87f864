"""Diagnostics: what rules find and what a lint run reports.

The bottom of the package, beside :mod:`acrn_ivshmem.errors`: a
:class:`Loc` in a file, a rule's :class:`Finding` (with an optional
:class:`TextFix`), and the :class:`Diagnostic` the engine makes of it
(path, code and configured severity added). Plain sortable data.
"""

from __future__ import annotations

from typing import NamedTuple

from .record import frozen

SEVERITIES = ("error", "warning", "info")


class Loc(NamedTuple):
    """A 1-based line and column in a source file."""

    line: int
    column: int


class TextFix(NamedTuple):
    """A safe fix: replace the text ``old`` found at ``loc`` by ``new``.

    A line feed (``"\\n"``) in ``new`` starts a new line: it is written
    as the file's line end plus the indentation of the line ``loc`` is
    on (and left out when other text comes before ``loc`` there).
    """

    loc: Loc
    old: str
    new: str


class Finding(NamedTuple):
    """A rule's finding; the engine adds path, code and severity."""

    loc: Loc
    message: str
    hint: str = ""
    fix: TextFix | None = None


@frozen(order=True)
class Diagnostic:
    """One finding at one place of one file.

    Attributes: ``path`` (as given by the user), ``line`` and ``column``
    (1-based), ``code`` (``ISMnnn``), ``severity`` (error, warning or
    info), ``message`` (quotes the bad value, says what is allowed) and
    ``hint`` (how to fix it; may be empty). Ordered by path, line,
    column, code.
    """

    path: str
    line: int
    column: int
    code: str
    severity: str
    message: str
    hint: str = ""

    def as_dict(self) -> dict[str, object]:
        """The diagnostic as a dict with exactly the public keys."""
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
        }
