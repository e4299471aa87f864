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
#: Fix safety classes, as ruff's: a safe fix keeps what the file means
#: (only its spelling changes) and ``lint --fix`` applies it; an unsafe
#: one may change what ACRN builds and needs ``--unsafe-fixes`` too.
SAFE, UNSAFE = "safe", "unsafe"
FIX_SAFETIES = (SAFE, UNSAFE)


class Loc(NamedTuple):
    """A 1-based line and column in a source file."""

    line: int
    column: int


class TextFix(NamedTuple):
    """A fix: replace the text ``old`` found at ``loc`` by ``new``.

    A line feed (``"\\n"``) in ``new`` starts a new line: it is written
    as the file's line end plus the indentation of the line ``loc`` is
    on (and left out when other text comes before ``loc`` there).
    ``safety`` is :data:`SAFE` or :data:`UNSAFE` (the default, so that a
    fix nobody classified is never applied by ``--fix`` alone); the
    rule's doc says why under "Fix safety".
    """

    loc: Loc
    old: str
    new: str
    safety: str = UNSAFE


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
    ``hint`` (how to fix it; may be empty) and ``fix`` (the safety
    class of the fix the rule offers, :data:`SAFE` or :data:`UNSAFE`;
    empty when it offers none). Ordered by path, line, column, code.
    """

    path: str
    line: int
    column: int
    code: str
    severity: str
    message: str
    hint: str = ""
    fix: str = ""

    def as_dict(self) -> dict[str, object]:
        """The diagnostic as a dict with exactly the public keys; ``fix``
        only when the rule offers a fix."""
        found: dict[str, object] = {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
        }
        if self.fix:
            found["fix"] = self.fix
        return found
