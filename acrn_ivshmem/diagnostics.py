"""Diagnostics: what a lint run reports, as plain sortable data."""

from __future__ import annotations

from .record import frozen

SEVERITIES = ("error", "warning", "info")


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
