"""Positions of the language server: acrn-shm's 1-based character
columns against LSP's 0-based UTF-16 units, and LSP's line ends."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from acrn_ivshmem.io.xmlio import parse_bytes
from acrn_ivshmem.lsp.text import Pos, Text, utf16_length

# Text with line ends of each kind, astral and other non-ASCII letters,
# and characters str.splitlines() breaks at but LSP does not.
TEXT = st.lists(st.sampled_from(
    ["a", "<", "é", "中", "\U0001F600", "\U00010348", "\n", "\r", "\r\n",
     "\u2028", "\x85", "\x0c"]), max_size=40).map("".join)


def test_lines_end_only_where_lsp_ends_them():
    text = Text("a\u2028b\x85c\x0cd\r\ne\rf\ng")
    assert text.line_count == 4
    assert [text.line(i) for i in range(4)] == [
        "a\u2028b\x85c\x0cd", "e", "f", "g"]
    assert text.line(4) == ""


def test_astral_characters_take_two_units():
    text = Text("x\U0001F600é<b>\n")
    assert text.from_loc(1, 4) == Pos(0, 4)
    assert text.to_loc(Pos(0, 4)) == (1, 4)
    # A position inside the surrogate pair counts the whole character.
    assert text.to_loc(Pos(0, 2)) == (1, 3)


@given(TEXT, st.data())
def test_positions_round_trip(source, data):
    text = Text(source)
    offset = data.draw(st.integers(0, len(source)))
    pos = text.pos_at(offset)
    if source[offset - 1:offset + 1] != "\r\n":
        assert text.offset(pos) == offset
    assert pos.character == utf16_length(
        source[text.starts[pos.line]:offset])
    line, column = text.to_loc(pos)
    assert text.from_loc(line, column) == text.pos_at(text.offset(pos))


@given(st.lists(st.sampled_from(
    ["é", "\U0001F600", "中", "\u2028", "x", "\t", "\r\n", "\n", "\r"]),
    max_size=12))
def test_expat_columns_become_lsp_positions(pieces):
    # Whatever precedes an element, acrn-shm's column (expat's) maps to
    # the UTF-16 offset an editor uses.
    before = "".join(pieces)
    source = f"<a><!--{before}--><b>1</b></a>"
    document = parse_bytes(source.encode(), "t.xml")
    loc = document.loc(document.root.find("b"))
    text = Text(source)
    pos = text.from_loc(loc.line, loc.column)
    assert text.source[text.offset(pos):].startswith("<b>1")


@given(TEXT, TEXT, st.data())
def test_apply_replaces_the_range(source, new, data):
    text = Text(source)
    first = data.draw(st.integers(0, len(source)))
    last = data.draw(st.integers(first, len(source)))
    start, end = text.pos_at(first), text.pos_at(last)
    changed = text.apply(start, end, new)
    begin, stop = text.offset(start), text.offset(end)
    assert changed.source == source[:begin] + new + source[stop:]
    assert changed.starts == Text(changed.source).starts
