"""Code actions: the rules' fixes and "ignore this code here".

A fix replaces the text a rule names at a place; it is offered only
while exactly that text is still there. Safe fixes (by the class each
fix carries, as for ``lint --fix``) are preferred quick fixes and make
up "fix all"; unsafe ones are offered titled "Unsafe fix" and left out
of it, as ``lint --fix`` leaves them without ``--unsafe-fixes``.
"Ignore" inserts ``<!-- acrn-shm: ignore CODE -->`` before the
innermost element holding the finding, on a line of its own with the
element's indentation when the element starts its line.
"""

from __future__ import annotations

import re

from lsprotocol import types

from .diagnostics import SOURCE
from .engine import SAFE, Document, TextFix, enclosing_start
from .text import Pos, Text, lsp_range

_NEWLINE = re.compile(r"\r\n|\r|\n")
FIX_ALL = types.CodeActionKind.SourceFixAll.value + ".acrn-shm"


def fix_edit(text: Text, fix: TextFix) -> types.TextEdit | None:
    """The edit of ``fix``, or None when its text is no longer there."""
    start = text.from_loc(fix.loc.line, fix.loc.column)
    first = text.offset(start)
    if (text.to_loc(start) != (fix.loc.line, fix.loc.column)
            or text.source[first:first + len(fix.old)] != fix.old):
        return None
    end = text.pos_at(first + len(fix.old))
    return types.TextEdit(range=lsp_range(start, end), new_text=fix.new)


def _workspace_edit(uri: str, edits: list[types.TextEdit],
                    version: int | None) -> types.WorkspaceEdit:
    return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(
            uri=uri, version=version),
        edits=edits)])


def _overlaps(a: types.Range, b: types.Range) -> bool:
    def key(position: types.Position) -> tuple[int, int]:
        return position.line, position.character
    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)


def fixes(uri: str, version: int | None, text: Text,
          found: list[tuple[str, TextFix]], wanted: types.Range,
          diagnostics: list[types.Diagnostic]
          ) -> list[types.CodeAction]:
    """A quick fix per fix whose text lies in ``wanted``."""
    actions = []
    for code, fix in found:
        edit = fix_edit(text, fix)
        if edit is None or not _overlaps(edit.range, wanted):
            continue
        safe = fix.safety == SAFE
        title = (f"{'Fix' if safe else 'Unsafe fix'} {code}: replace "
                 f"'{fix.old}' with '{fix.new}'")
        related = [d for d in diagnostics
                   if d.code == code and _overlaps(d.range, edit.range)]
        actions.append(types.CodeAction(
            title=title, kind=types.CodeActionKind.QuickFix,
            diagnostics=related or None, is_preferred=safe,
            edit=_workspace_edit(uri, [edit], version)))
    return actions


def fix_all(uri: str, version: int | None, text: Text,
            found: list[tuple[str, TextFix]]) -> list[types.CodeAction]:
    """One action applying every safe fix (none when there is none)."""
    edits: list[types.TextEdit] = []
    for code, fix in sorted(found, key=lambda item: item[1].loc):
        edit = fix_edit(text, fix) if fix.safety == SAFE else None
        if edit is None or any(_overlaps(edit.range, e.range)
                               for e in edits):
            continue
        edits.append(edit)
    if not edits:
        return []
    return [types.CodeAction(
        title=f"Fix all acrn-shm safe fixes ({len(edits)})", kind=FIX_ALL,
        edit=_workspace_edit(uri, edits, version))]


def ignores(uri: str, version: int | None, text: Text,
            document: Document | None,
            diagnostics: list[types.Diagnostic]) -> list[types.CodeAction]:
    """An "ignore CODE here" action per acrn-shm diagnostic given."""
    if document is None:
        return []
    actions = []
    done = set()
    for diagnostic in diagnostics:
        code = diagnostic.code
        if diagnostic.source != SOURCE or not isinstance(code, str):
            continue
        start = Pos(diagnostic.range.start.line,
                    diagnostic.range.start.character)
        where = enclosing_start(document, *text.to_loc(start))
        if where is None or (code, where) in done:
            continue
        done.add((code, where))
        actions.append(types.CodeAction(
            title=f"Ignore {code} here (acrn-shm: ignore comment)",
            kind=types.CodeActionKind.QuickFix, diagnostics=[diagnostic],
            edit=_workspace_edit(uri, [_comment(text, where, code)],
                                 version)))
    return actions


def _comment(text: Text, where: tuple[int, int],
             code: str) -> types.TextEdit:
    comment = f"<!-- acrn-shm: ignore {code} -->"
    at = text.from_loc(*where)
    line = text.line(at.line)
    before = line[:text.offset(at) - text.starts[at.line]]
    if before.strip():
        return types.TextEdit(range=lsp_range(at, at), new_text=comment)
    newline = _NEWLINE.search(text.source)
    start = Pos(at.line, 0)
    return types.TextEdit(range=lsp_range(start, start),
                          new_text=before + comment
                          + (newline.group() if newline else "\n"))
