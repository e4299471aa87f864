"""What a rule yields: a place, a message, a hint and maybe a fix."""

from __future__ import annotations

from typing import NamedTuple

from ..io.xmlio import Loc


class TextFix(NamedTuple):
    """A safe fix: replace the text ``old`` found at ``loc`` by ``new``.

    A line feed (``"\\n"``) in ``new`` starts a new line: it is written
    as the file's line end plus the indentation of the line ``loc`` is
    on (and left out when other text comes before ``loc`` there).
    """

    loc: Loc
    old: str
    new: str


class Finding(NamedTuple):
    """A rule's finding; the engine adds path, code and severity."""

    loc: Loc
    message: str
    hint: str = ""
    fix: TextFix | None = None
