"""Apply the fixes that rules offer, as edits of the one text editor.

A fix names the text it expects at a line and column; it becomes an
:class:`~acrn_ivshmem.io.textedit.Edit` only if exactly that text is
there, so a fix never touches anything else and a stale fix is skipped
rather than misapplied. Of fixes that overlap, the first (in file
order) is applied; the next lint run offers the others again.

Each fix has a safety class (:data:`~acrn_ivshmem.diagnostics.SAFE` or
``UNSAFE``, as ruff's): ``lint --fix`` takes the safe ones,
``--unsafe-fixes`` adds the others (:func:`wanted`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from ..diagnostics import SAFE, TextFix
from ..io.textedit import Edit, apply_edits
from ..record import frozen

if TYPE_CHECKING:
    from .engine import PendingFix


def wanted(pending: Iterable[PendingFix], unsafe: bool
           ) -> list[PendingFix]:
    """The lint run's fixes to apply: the safe ones, and with ``unsafe``
    all of them."""
    return [item for item in pending if unsafe or item.fix.safety == SAFE]


def line_starts(data: bytes) -> list[int]:
    """Byte offset of the start of every line (1-based line i → [i-1])."""
    starts = [0]
    index = data.find(b"\n")
    while index >= 0:
        starts.append(index + 1)
        index = data.find(b"\n", index + 1)
    return starts


def apply_fixes(data: bytes, fixes: Iterable[TextFix]
                ) -> tuple[bytes, list[TextFix]]:
    """Apply ``fixes`` to ``data``; return the new bytes and those applied.

    Columns count characters; a fix on a line with non-ASCII text before
    it, an overlapping fix or one whose text is no longer there is
    skipped. The caller chooses which safety classes to pass.
    """
    starts = line_starts(data)
    found = []
    for fix in fixes:
        edit = fix_edit(data, starts, fix)
        if edit is not None:
            found.append((edit, fix))
    found.sort(key=lambda pair: pair[0][:2])
    applied: list[TextFix] = []
    edits: list[Edit] = []
    for edit, fix in found:
        if edits and edit.start < edits[-1].end:
            continue
        edits.append(edit)
        applied.append(fix)
    return apply_edits(data, edits), applied


def fix_edit(data: bytes, starts: list[int], fix: TextFix) -> Edit | None:
    """The edit ``fix`` makes of ``data`` (whose :func:`line_starts`
    are ``starts``), or None when its text is not at its place."""
    if not 1 <= fix.loc.line <= len(starts):
        return None
    begin = starts[fix.loc.line - 1]
    if not data[begin:begin + fix.loc.column - 1].isascii():
        return None
    offset = begin + fix.loc.column - 1
    old = fix.old.encode("utf-8")
    if data[offset:offset + len(old)] != old:
        return None
    return Edit(offset, offset + len(old),
                _new_bytes(data, begin, offset, fix.new))


def _new_bytes(data: bytes, line: int, offset: int, new: str) -> bytes:
    """``new`` as bytes, each line feed written as the line end and
    indentation of the line that starts at ``line`` (see TextFix)."""
    text = new.encode("utf-8")
    if b"\n" not in text:
        return text
    lead = data[line:offset]
    if lead.strip(b" \t"):
        return text.replace(b"\n", b"")
    end = data.find(b"\n", offset)
    newline = b"\r\n" if end > 0 and data[end - 1:end] == b"\r" else b"\n"
    return text.replace(b"\n", newline + lead)


@frozen
class FixedFile:
    """A file :func:`fix_files` changed: its bytes before and after, and
    each fix applied with its rule's code."""

    path: str
    before: bytes
    after: bytes
    applied: list[tuple[str, TextFix]]


def fix_files(pending: Iterable, write: bool) -> Iterator[FixedFile]:
    """Apply lint's pending fixes (each with ``path``, ``code`` and
    ``fix``, as :attr:`~acrn_ivshmem.lint.engine.LintResult.fixes` holds
    them) file by file: each file is locked, read and fixed in memory,
    and with ``write`` saved atomically (a file changed meanwhile is not
    overwritten). Yields each file that changed, once its lock is
    released."""
    from ..io.xmlio import locked, read_bytes, save_atomic

    by_path: dict[str, list] = {}
    for item in pending:
        by_path.setdefault(item.path, []).append(item)
    for path, items in by_path.items():
        codes = {item.fix: item.code for item in items}
        with locked(path):
            before = read_bytes(path)
            after, applied = apply_fixes(before, [item.fix for item in items])
            if not applied:
                continue
            if write:
                save_atomic(path, after, before)
        yield FixedFile(path, before, after,
                        [(codes[fix], fix) for fix in applied])
