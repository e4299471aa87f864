"""What a rule yields: a place, a message and a hint."""

from __future__ import annotations

from typing import NamedTuple

from ..xmlio import Loc


class Finding(NamedTuple):
    """A rule's finding; the engine adds path, code and severity."""

    loc: Loc
    message: str
    hint: str = ""
