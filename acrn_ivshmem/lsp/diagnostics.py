"""Lint findings as LSP diagnostics.

Each finding keeps its code, severity and message (the hint follows on a
second line, as ``acrn-shm lint`` prints it). acrn-shm reports a point;
the range runs from it over the token there: a whole tag when the point
is a ``<``, else the text up to the next ``<`` or the line's end, so
that editors underline something.
"""

from __future__ import annotations

from lsprotocol import types

from .engine import Finding, Linted, Problem, rule_page
from .text import Pos, Text, lsp_range, utf16_length

SOURCE = "acrn-shm"
SEVERITIES = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
}


def to_range(text: Text, line: int | None, column: int | None
             ) -> types.Range:
    """The range from acrn-shm's 1-based point over the token there."""
    start = text.from_loc(line or 1, column or 1)
    content = text.line(start.line)
    first = text.offset(start) - text.starts[start.line]
    if content[first:first + 1] == "<":
        close = content.find(">", first)
        last = close + 1 if close >= 0 else len(content)
    else:
        close = content.find("<", first)
        last = len(content[:close if close >= 0 else len(content)]
                   .rstrip())
    if last <= first:
        last = min(first + 1, len(content))
    end = Pos(start.line,
              start.character + utf16_length(content[first:last]))
    return lsp_range(start, end)


def finding(text: Text, found: Finding,
            docs_base: str | None) -> types.Diagnostic:
    """The LSP diagnostic of one finding."""
    page = rule_page(found.code, docs_base)
    message = found.message + (f"\nhint: {found.hint}" if found.hint
                               else "")
    return types.Diagnostic(
        range=to_range(text, found.line, found.column),
        message=message,
        severity=SEVERITIES[found.severity],
        code=found.code,
        code_description=(types.CodeDescription(href=page)
                          if page else None),
        source=SOURCE,
    )


def problem(text: Text, found: Problem) -> types.Diagnostic:
    """The one diagnostic of a document that could not be linted."""
    return types.Diagnostic(
        range=to_range(text, found.line, found.column),
        message=found.message,
        severity=types.DiagnosticSeverity.Error,
        source=SOURCE,
    )


def of(text: Text, linted: Linted,
       docs_base: str | None) -> list[types.Diagnostic]:
    """Every diagnostic of a lint result, in acrn-shm's order."""
    return ([problem(text, p) for p in linted.problems]
            + [finding(text, f, docs_base) for f in linted.findings])
