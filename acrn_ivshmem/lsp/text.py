"""An editor's text and its positions, counted the way LSP counts them.

LSP positions are a 0-based line and a 0-based offset in UTF-16 code
units; acrn-shm's findings (from expat) are a 1-based line and a 1-based
column in characters (code points), so an emoji before a finding is one
column for acrn-shm and two units for LSP. Lines end at ``\\r\\n``,
``\\r`` or ``\\n`` for both, and for nothing else: ``str.splitlines``
also breaks at U+2028 and friends, which XML 1.0 and LSP do not, so it is
not used here.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import NamedTuple

_LINE_END = re.compile(r"\r\n|\r|\n")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


class Pos(NamedTuple):
    """An LSP position: 0-based line, 0-based UTF-16 offset."""

    line: int
    character: int


def utf16_length(text: str) -> int:
    """How many UTF-16 code units ``text`` takes."""
    return len(text) + len(_ASTRAL.findall(text))


def chars_for_units(text: str, units: int) -> int:
    """How many characters of ``text`` its first ``units`` UTF-16 units
    hold (a position inside a surrogate pair counts the whole pair)."""
    if not _ASTRAL.search(text):
        return min(units, len(text))
    count = 0
    for index, char in enumerate(text):
        if count >= units:
            return index
        count += 2 if ord(char) > 0xFFFF else 1
    return len(text)


class Text:
    """One version of a document's text, with its line starts."""

    def __init__(self, source: str):
        self.source = source
        self.starts = [0] + [match.end()
                             for match in _LINE_END.finditer(source)]

    @property
    def line_count(self) -> int:
        """The number of lines (an empty last line counts)."""
        return len(self.starts)

    def line(self, index: int) -> str:
        """Line ``index`` (0-based) without its line end; '' past the end."""
        if not 0 <= index < len(self.starts):
            return ""
        start = self.starts[index]
        end = (self.starts[index + 1] if index + 1 < len(self.starts)
               else len(self.source))
        return self.source[start:end].rstrip("\r\n")

    def offset(self, pos: Pos) -> int:
        """The string index of an LSP position (clamped into the text)."""
        if pos.line < 0:
            return 0
        if pos.line >= len(self.starts):
            return len(self.source)
        line = self.line(pos.line)
        return self.starts[pos.line] + chars_for_units(
            line, max(pos.character, 0))

    def pos_at(self, offset: int) -> Pos:
        """The LSP position of string index ``offset``."""
        offset = max(0, min(offset, len(self.source)))
        line = bisect_right(self.starts, offset) - 1
        text = self.source[self.starts[line]:offset]
        return Pos(line, utf16_length(text))

    def from_loc(self, line: int, column: int) -> Pos:
        """The LSP position of acrn-shm's 1-based ``line`` and ``column``
        (characters), clamped to the line's end."""
        index = min(max(line, 1), len(self.starts)) - 1
        text = self.line(index)
        return Pos(index, utf16_length(text[:max(column, 1) - 1]))

    def to_loc(self, pos: Pos) -> tuple[int, int]:
        """acrn-shm's 1-based line and character column of ``pos``."""
        offset = self.offset(pos)
        line = bisect_right(self.starts, offset) - 1
        return line + 1, offset - self.starts[line] + 1

    def apply(self, start: Pos, end: Pos, new: str) -> Text:
        """The text with ``start``..``end`` replaced by ``new``."""
        first, last = self.offset(start), self.offset(end)
        if last < first:
            first, last = last, first
        return Text(self.source[:first] + new + self.source[last:])



def lsp_range(start: Pos, end: Pos):
    """An lsprotocol ``Range`` from two positions."""
    from lsprotocol import types

    return types.Range(
        start=types.Position(line=start.line, character=start.character),
        end=types.Position(line=end.line, character=end.character))
