"""The one byte-level text editor: replacements over a file's original bytes.

An :class:`Edit` replaces the bytes ``[start, end)`` of the original by
``new``; ``start == end`` inserts. :func:`apply_edits` applies a set of
them in one pass: every offset refers to the original bytes, so the
order the edits are given in does not matter, bytes outside them stay
byte for byte, and two edits that claim one byte are refused
(:class:`OverlappingEdits`). Insertions at one point are the exception
to order: they go in the order given.

Lint fixes (``lint/fixes.py``), region edits (``edit/regions.py``) and
the upgrade merge (``upgrade/scenario.py``) all edit through this
module; :func:`tag_end` is their one way to find where a tag ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from ..errors import AcrnShmError, InputError

__all__ = ["Edit", "OverlappingEdits", "apply_edits", "ordered", "tag_end"]

#: The rest of a tag after its '<', up to its '>' (quotes skipped).
_TAG = re.compile(rb"""[^>"']*(?:(?:"[^"]*"|'[^']*')[^>"']*)*>""")


class Edit(NamedTuple):
    """Replace bytes ``[start, end)`` of the original by ``new``."""

    start: int
    end: int
    new: bytes


class OverlappingEdits(AcrnShmError):
    """Two edits claim the same bytes of the original."""


def ordered(edits: Iterable[Edit]) -> list[Edit]:
    """``edits`` in file order, checked.

    Raises :class:`OverlappingEdits` when two of them share a byte (an
    insertion strictly inside a replaced range counts), or one has a
    negative or reversed range. Insertions at one point keep their
    given order (the sort is stable).
    """
    result = sorted(edits, key=lambda edit: (edit.start, edit.end))
    done = 0
    previous: Edit | None = None
    for edit in result:
        if not 0 <= edit.start <= edit.end:
            raise OverlappingEdits(
                f"edit of bytes {edit.start}-{edit.end} is no range")
        if edit.start < done:
            raise OverlappingEdits(
                f"edits overlap: bytes {previous.start}-{previous.end} and "
                f"{edit.start}-{edit.end}")
        done, previous = edit.end, edit
    return result


def apply_edits(data: bytes, edits: Iterable[Edit]) -> bytes:
    """``data`` with every edit applied (see :func:`ordered`).

    An edit past the end of ``data`` is refused like an overlap.
    """
    pieces = []
    done = 0
    for edit in ordered(edits):
        if edit.end > len(data):
            raise OverlappingEdits(
                f"edit of bytes {edit.start}-{edit.end} is past the end "
                f"({len(data)} bytes)")
        pieces += [data[done:edit.start], edit.new]
        done = edit.end
    pieces.append(data[done:])
    return b"".join(pieces)


def tag_end(data: bytes, start: int) -> int:
    """The offset of the ``>`` that closes the tag whose ``<`` is at
    ``start``, skipping quoted attribute values.

    An empty-element tag ends ``/>``: ``data[tag_end(...) - 1]`` is
    ``/`` then. Raises :class:`InputError` when the tag never closes.
    """
    match = _TAG.match(data, start + 1)
    if match is None:
        raise InputError("unterminated tag in the document")
    return match.end() - 1
