"""What a rule yields: a place, a message, a hint and maybe a fix."""

from __future__ import annotations

from typing import NamedTuple

from ..xmlio import Loc


class TextFix(NamedTuple):
    """A safe fix: replace the text ``old`` found at ``loc`` by ``new``."""

    loc: Loc
    old: str
    new: str


class Finding(NamedTuple):
    """A rule's finding; the engine adds path, code and severity."""

    loc: Loc
    message: str
    hint: str = ""
    fix: TextFix | None = None
