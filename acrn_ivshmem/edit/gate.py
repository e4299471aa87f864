"""Which lint errors an edit adds: the gate before an edit is written.

Findings before and after the edit are compared by what they are about:
their file, their code and the element they point at, never their
message, whose text may hold a position, a count or a line number that
an edit elsewhere changes (ISM202 numbers the hypervisor regions,
ISM206 and ISM212 name the line of an earlier region). An element is
the same before and after when its start tag lies outside the bytes the
edit replaced; every element the edit wrote is new.

:func:`gate_edit` makes an edit in memory and lints the file before and
after it (what ``add-region``, ``set-region`` and ``remove-region`` do
before they write); :func:`added_errors` is the comparison.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from lxml import etree

from ..diagnostics import Diagnostic
from ..errors import UsageError
from ..io.xmlio import Document, Loc, parse_bytes
from ..lint.config import LintConfig
from ..lint.engine import Linter, find_board_beside
from ..model.resolved import load_board, load_scenario
from ..model.syntax import Board
from ..record import frozen
from .regions import EditResult

__all__ = ["GatedEdit", "added_errors", "changed_ranges", "gate_edit"]

#: ``(start, end, length of the new bytes)`` of each replaced range.
Changes = Sequence[tuple[int, int, int]]


@frozen
class GatedEdit:
    """An edit made in memory and linted: ``result`` (the new bytes,
    summary and replaced ranges) and ``added``, the errors the edit
    would add (none written yet)."""

    result: EditResult
    added: list[Diagnostic]


def gate_edit(path: str, data: bytes, board: str | None,
              change: Callable[[Document, Board | None], EditResult],
              config: LintConfig | None = None) -> GatedEdit:
    """Edit the scenario ``path`` (its bytes ``data``) with
    ``change(document, board model)`` and lint it before and after.

    ``board`` is the board XML, or None for the one beside the
    scenario; ``config`` what lint reports and how severe (default:
    every rule at its own severity). Writes nothing: hold
    :func:`acrn_ivshmem.io.xmlio.locked` around reading ``data``, this
    call and the write. Raises
    :class:`UsageError` (one line naming the file) for a file that is
    not a scenario, a board that is not a board, an edit that cannot be
    made, or a file lint cannot check.
    """
    document = parse_bytes(data, path)
    scenario = load_scenario(
        document, refusal="{path}: expected a scenario XML").model
    board_path = board or find_board_beside(path, scenario)
    # One linter: it keeps the board, read once for all checks.
    linter = Linter(config)
    board_model = None
    if board_path is not None:
        board_model = load_board(
            board_path, via=linter.load,
            refusal="{path}: --board expects a board XML").model
    try:
        result = change(document, board_model)
    except UsageError as exc:
        message = str(exc)
        if not message.startswith(f"{path}:"):
            raise UsageError(f"{path}: {message}") from None
        raise
    linter.preload(document)
    old = linter.lint([path], board_path)
    edited = parse_bytes(result.data, path)
    linter.preload(edited)
    new = linter.lint([path], board_path)
    if old.errors or new.errors:  # e.g. too much to check
        raise UsageError((old.errors or new.errors)[0])
    return GatedEdit(result, added_errors(document, edited, old.diagnostics,
                                          new.diagnostics, result.changes))


def added_errors(before: Document, after: Document,
                 old: Sequence[Diagnostic], new: Sequence[Diagnostic],
                 changes: Changes | None = None) -> list[Diagnostic]:
    """The error findings of ``new`` that ``old`` has no match for.

    ``old`` and ``new`` are what lint found before and after the edit
    that turned ``before`` into ``after``; ``changes`` are the byte
    ranges it replaced (see :class:`~acrn_ivshmem.edit.regions.EditResult`),
    found by comparing the bytes when None. Findings in other files
    (the board) match by their place.
    """
    if changes is None:
        changes = changed_ranges(before.data, after.data)
    was = Counter(_keys(before, old, None))
    errors = [d for d in new if d.severity == "error"]
    found = []
    for diagnostic, key in zip(errors, _keys(after, errors, changes)):
        if was[key]:
            was[key] -= 1
        else:
            found.append(diagnostic)
    return found


def changed_ranges(old: bytes, new: bytes) -> list[tuple[int, int, int]]:
    """One range covering every difference of ``old`` and ``new``."""
    if old == new:
        return []
    limit = min(len(old), len(new))
    head = 0
    while head < limit and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < limit - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    return [(head, len(old) - tail, len(new) - head - tail)]


def _keys(document: Document, diagnostics: Sequence[Diagnostic],
          changes: Changes | None) -> list[tuple]:
    """What each finding is about: file, code and element.

    With ``changes``, elements are named by where they start in the
    file before the edit (``("new", offset)`` when the edit wrote them).
    """
    here = [Loc(d.line, d.column) for d in diagnostics
            if d.path == document.path]
    starts = _element_starts(document, here)
    keys = []
    for diagnostic in diagnostics:
        if diagnostic.path != document.path:
            keys.append((diagnostic.path, diagnostic.code, diagnostic.line,
                         diagnostic.column))
            continue
        start = starts[Loc(diagnostic.line, diagnostic.column)]
        if start is not None and changes is not None:
            start = _before_edit(start, changes)
        keys.append((diagnostic.path, diagnostic.code, start))
    return keys


def _element_starts(document: Document,
                    locs: list[Loc]) -> dict[Loc, int | None]:
    """For each place, the byte offset of the innermost element whose
    start tag to end tag spans it (None outside the root)."""
    elements = list(document.root.iter(etree.Element))
    found: dict[Loc, int | None] = {}
    stack = []
    index = 0
    for loc in sorted(set(locs)):
        while index < len(elements):
            pos = document.pos(elements[index])
            if pos.start > loc:
                break
            while stack and stack[-1].end < pos.start:
                stack.pop()
            stack.append(pos)
            index += 1
        while stack and stack[-1].end < loc:
            stack.pop()
        found[loc] = stack[-1].start_byte if stack else None
    return found


def _before_edit(offset: int, changes: Changes):
    """Where the byte at ``offset`` of the edited file was before, or
    ``("new", offset)`` for a byte the edit wrote."""
    shift = 0
    for start, end, length in sorted(changes):
        if offset < start + shift:
            break
        if offset < start + shift + length:
            return ("new", offset)
        shift += length - (end - start)
    return offset - shift
