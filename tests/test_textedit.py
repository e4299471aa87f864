"""The one text editor (acrn_ivshmem/io/textedit.py): edits over the
original bytes, overlaps refused, order of the edits irrelevant, and the
one "find the end of this tag" that region edits and the upgrade merge
share."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acrn_ivshmem.errors import AcrnShmError, InputError
from acrn_ivshmem.io.textedit import (
    Edit, OverlappingEdits, apply_edits, ordered, tag_end,
)

DATA = b"<a x='>'>\n  <b/>\n</a>\n"


def test_edits_refer_to_the_original_bytes():
    # The second edit's offsets are those of DATA, not of the result of
    # the first: a longer replacement before it moves nothing.
    assert apply_edits(DATA, [Edit(5, 8, b'"quoted>"'),
                              Edit(12, 16, b"<c></c>")]) == (
        b'<a x="quoted>">\n  <c></c>\n</a>\n')


def test_no_edits_give_the_same_bytes():
    assert apply_edits(DATA, []) == DATA


def test_insertions_at_one_point_keep_their_order():
    assert apply_edits(b"ab", [Edit(1, 1, b"1"), Edit(1, 1, b"2")]) == \
        b"a12b"
    # An insertion where a replacement starts goes before it, and one
    # where it ends goes after it, whatever order they are given in.
    assert apply_edits(b"abcd", [Edit(1, 3, b"X"), Edit(3, 3, b">"),
                                 Edit(1, 1, b"<")]) == b"a<X>d"


@pytest.mark.parametrize("edits, message", [
    ([Edit(2, 6, b""), Edit(5, 8, b"x")],
     "edits overlap: bytes 2-6 and 5-8"),
    ([Edit(2, 6, b"x"), Edit(2, 6, b"y")],
     "edits overlap: bytes 2-6 and 2-6"),
    # An insertion strictly inside a replaced range.
    ([Edit(4, 4, b"x"), Edit(2, 6, b"")],
     "edits overlap: bytes 2-6 and 4-4"),
    # Against the widest range so far, not only the one before.
    ([Edit(0, 10, b""), Edit(1, 2, b""), Edit(3, 4, b"")],
     "edits overlap: bytes 0-10 and 1-2"),
    ([Edit(5, 4, b"")], "edit of bytes 5-4 is no range"),
    ([Edit(-1, 2, b"")], "edit of bytes -1-2 is no range"),
    ([Edit(20, 30, b"")], "edit of bytes 20-30 is past the end (22 bytes)"),
])
def test_overlapping_edits_are_refused_with_one_error(edits, message):
    with pytest.raises(OverlappingEdits) as caught:
        apply_edits(DATA, edits)
    assert str(caught.value) == message
    assert isinstance(caught.value, AcrnShmError)


def test_ordered_sorts_by_range():
    edits = [Edit(5, 6, b"b"), Edit(1, 2, b"a"), Edit(5, 5, b"i")]
    assert ordered(edits) == [Edit(1, 2, b"a"), Edit(5, 5, b"i"),
                              Edit(5, 6, b"b")]


@pytest.mark.parametrize("data, start, end", [
    (b"<a>", 0, 2),
    (b"<a/>", 0, 3),
    (b"<a x='>' y=\">\"/>", 0, 15),
    (b"  <b c='1'\n   d=\"2\">", 2, 19),
])
def test_tag_end(data, start, end):
    assert tag_end(data, start) == end
    assert data[end:end + 1] == b">"


def test_an_unterminated_tag_is_an_input_error():
    with pytest.raises(InputError, match="^unterminated tag in the "
                       "document$"):
        tag_end(b"<a x='>", 0)


# --------------------------------------------------------------------------
# Properties


@st.composite
def data_and_edits(draw):
    """Bytes, and a non-overlapping set of edits over them (no two
    insertions at one point, the one case where order counts)."""
    data = draw(st.binary(max_size=60))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    edits = []
    last_insert = None
    for start, end in zip(cuts[::2], cuts[1::2]):
        if start == end:
            if start == last_insert:
                continue
            last_insert = start
        edits.append(Edit(start, end, draw(st.binary(max_size=8))))
    return data, edits


@settings(max_examples=300, deadline=None)
@given(case=data_and_edits(), seed=st.randoms(use_true_random=False))
def test_any_order_of_non_overlapping_edits_gives_the_same_bytes(case,
                                                                 seed):
    data, edits = case
    shuffled = list(edits)
    seed.shuffle(shuffled)
    assert apply_edits(data, shuffled) == apply_edits(data, edits)


@settings(max_examples=300, deadline=None)
@given(case=data_and_edits())
def test_untouched_bytes_stay_byte_for_byte(case):
    data, edits = case
    result = apply_edits(data, edits)
    # Walk the result: every gap between edits is the original's bytes,
    # every edit's place holds its new bytes.
    at = 0
    done = 0
    for edit in ordered(edits):
        gap = data[done:edit.start]
        assert result[at:at + len(gap)] == gap
        at += len(gap)
        assert result[at:at + len(edit.new)] == edit.new
        at += len(edit.new)
        done = edit.end
    assert result[at:] == data[done:]
    assert len(result) == len(data) + sum(
        len(e.new) - (e.end - e.start) for e in edits)


@settings(max_examples=200, deadline=None)
@given(case=data_and_edits(), extra=st.data())
def test_an_edit_across_another_is_refused(case, extra):
    data, edits = case
    replaced = [e for e in edits if e.end > e.start]
    if not replaced:
        return
    target = extra.draw(st.sampled_from(replaced))
    inside = extra.draw(st.integers(target.start, target.end - 1))
    clash = Edit(inside, extra.draw(st.integers(inside + 1, target.end)),
                 b"!")
    with pytest.raises(OverlappingEdits):
        apply_edits(data, edits + [clash])
