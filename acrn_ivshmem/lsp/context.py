"""What the cursor is on, read from the text as typed.

Hover and completion must work while the document is half-typed and not
well-formed, so this looks at the characters around the cursor rather
than at a parse tree: the element whose text (or start or end tag name)
holds the cursor, its value, and the values of its neighbours in the
same ``IVSHMEM_VM`` or ``IVSHMEM_REGION``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_START_TAG = re.compile(r"<([A-Za-z_][\w.-]*)(?:\s[^<>]*)?>")
_TAG_NAME = re.compile(r"</?([A-Za-z_][\w.-]*)")
_CODE = re.compile(r"ISM\d{3}")


class Context(NamedTuple):
    """The element at the cursor.

    ``tag`` is its name; ``value`` its text as typed (between the start
    tag and the next ``<`` or line end) and ``start``/``end`` the
    string indexes of that text; ``on_tag`` tells whether the cursor is
    on the tag name rather than in the text.
    """

    tag: str
    value: str
    start: int
    end: int
    on_tag: bool


def element_at(source: str, offset: int) -> Context | None:
    """The element whose text or tag name holds ``offset``, or None."""
    opening = source.rfind("<", 0, offset)
    if opening < 0:
        return None
    closing = source.find(">", opening, offset)
    if closing < 0:  # inside a tag: only its name counts
        name = _TAG_NAME.match(source, opening)
        if name is None or not name.start(1) <= offset <= name.end(1):
            return None
        tag = name.group(1)
        if source.startswith("</", opening):
            return _content_before(source, opening, tag, on_tag=True)
        match = _START_TAG.match(source, opening)
        if match is None:
            return None
        return _content_after(source, match.end(), tag, on_tag=True)
    match = _START_TAG.match(source, opening)
    if match is None or match.end() != closing + 1 or source[
            closing - 1] == "/":
        return None
    return _content_after(source, match.end(), match.group(1),
                          on_tag=False)


def _content_after(source: str, start: int, tag: str,
                   on_tag: bool) -> Context:
    end = start
    limit = len(source)
    while end < limit and source[end] not in "<\r\n":
        end += 1
    return Context(tag, source[start:end], start, end, on_tag)


def _content_before(source: str, end: int, tag: str,
                    on_tag: bool) -> Context | None:
    opening = source.rfind(f"<{tag}", 0, end)
    if opening < 0:
        return None
    match = _START_TAG.match(source, opening)
    if match is None or match.group(1) != tag:
        return None
    start = match.end()
    if "<" in source[start:end]:
        return None
    return Context(tag, source[start:end], start, end, on_tag)


def sibling_value(source: str, offset: int, parent: str,
                  tag: str) -> str | None:
    """The stripped text of ``<tag>`` inside the ``<parent>`` element
    around ``offset``, or None."""
    begin = source.rfind(f"<{parent}>", 0, offset)
    if begin < 0 or source.rfind(f"</{parent}>", begin, offset) >= 0:
        return None
    end = source.find(f"</{parent}>", offset)
    scope = source[begin:end if end >= 0 else len(source)]
    match = re.search(rf"<{tag}>([^<]*)</{tag}>", scope)
    return match.group(1).strip() if match else None


def code_at(source: str, offset: int) -> tuple[str, int, int] | None:
    """The rule code (``ISMnnn``) under ``offset`` and its span."""
    start = end = offset
    while start > 0 and offset - start < 8 and _is_word(source[start - 1]):
        start -= 1
    while end < len(source) and end - offset < 8 and _is_word(source[end]):
        end += 1
    if _CODE.fullmatch(source, start, end):
        return source[start:end], start, end
    return None


def _is_word(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_")
