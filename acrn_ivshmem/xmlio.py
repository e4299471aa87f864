"""Safe XML loading that remembers where every element came from.

This is the only module that parses XML. It refuses DTDs and entity
declarations outright (no expansion, no network, no file access), caps
the input size, and records for every element the line and column of
its start tag and of its text, and the span of lines it covers. The
positions come from a first pass with expat, the tree from lxml.
"""

from __future__ import annotations

import os
from typing import NamedTuple
from xml.parsers import expat

from lxml import etree

from .errors import InputError, located

#: Largest input accepted, in bytes. Real board XMLs stay below 1 MiB.
MAX_BYTES = 16 * 1024 * 1024


class Loc(NamedTuple):
    """A 1-based line and column in a source file."""

    line: int
    column: int


class ElementPos(NamedTuple):
    """Where an element sits in the source.

    Attributes: ``start`` (the ``<`` of the start tag), ``text`` (the
    first character of the element's own text, or None), ``end`` (the
    ``<`` of the end tag; the start tag's ``<`` for ``<a/>``), ``end_line``
    (the line of the end tag), ``start_byte`` and ``end_byte`` (byte
    offsets of the start tag's ``<`` and of the end tag's ``<``; equal
    for an empty-element tag).
    """

    start: Loc
    text: Loc | None
    end: Loc
    end_line: int
    start_byte: int
    end_byte: int


class Comment(NamedTuple):
    """An XML comment, and the element that follows it (None at the end)."""

    text: str
    loc: Loc
    next_element: etree._Element | None


class Document:
    """A parsed XML file: its bytes, its lxml tree and source positions.

    Attributes: ``path`` (as given), ``data`` (the raw bytes), ``root``
    (the lxml root element), ``comments`` (every comment in document
    order). Use :meth:`pos` and :meth:`loc` to locate an element.
    Positions come from a second pass with expat, made on first use.
    """

    def __init__(self, path: str, data: bytes, root: etree._Element):
        self.path = path
        self.data = data
        self.root = root
        self._elements: list | None = None
        self._elem2pos: dict | None = None
        self._comments: list[Comment] = []

    def _positions(self) -> dict:
        if self._elem2pos is None:
            positions, comment_marks = _scan_positions(self.data, self.path)
            # lxml hands out the same proxy while a reference lives, so
            # keeping the element list keeps the identity-keyed map valid.
            elements = list(self.root.iter(etree.Element))
            if len(elements) != len(positions):
                raise InputError(located(
                    self.path, None, None,
                    "could not match element positions; is it XML 1.0?"))
            self._comments = [
                Comment(text, loc,
                        elements[index] if index < len(elements) else None)
                for text, loc, index in comment_marks
            ]
            self._elements = elements
            self._elem2pos = dict(zip(elements, positions))
        return self._elem2pos

    @property
    def comments(self) -> list[Comment]:
        """Every comment, with the element that follows it."""
        self._positions()
        return self._comments

    def pos(self, element: etree._Element) -> ElementPos:
        """The source position of ``element``."""
        return self._positions()[element]

    def loc(self, element: etree._Element) -> Loc:
        """The line and column of ``element``'s start tag."""
        return self._positions()[element].start

    def loc_or_root(self, element: etree._Element | None) -> Loc:
        """The location of ``element``, or of the root if it is unknown."""
        positions = self._positions()
        pos = positions.get(element) if element is not None else None
        return pos.start if pos else positions[self.root].start

    def text_loc(self, element: etree._Element) -> Loc:
        """Where ``element``'s text starts (its start tag if it has none)."""
        pos = self._positions()[element]
        return pos.text or pos.start


def read_bytes(path: str) -> bytes:
    """Read ``path`` with a size cap; problems become :class:`InputError`."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise InputError(located(path, None, None, "no such file")) from None
    except OSError as exc:
        raise InputError(
            located(path, None, None, f"cannot read: {exc.strerror}")
        ) from None
    if os.path.isdir(path):
        raise InputError(
            located(path, None, None, "is a folder, not an XML file"))
    if size > MAX_BYTES:
        raise InputError(located(
            path, None, None,
            f"file is {size} bytes; the limit is {MAX_BYTES} bytes"))
    try:
        with open(path, "rb") as stream:
            return stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(
            located(path, None, None, f"cannot read: {exc.strerror}")
        ) from None


def parse_file(path: str) -> Document:
    """Read and parse ``path`` safely; see :func:`parse_bytes`."""
    return parse_bytes(read_bytes(path), path)


def parse_bytes(data: bytes, path: str = "<bytes>") -> Document:
    """Parse XML ``data`` (named ``path`` in messages) into a Document.

    Raises :class:`InputError` with ``path:line:column:`` for XML that is
    not well-formed, has a DTD or entity declarations, or is too big.
    """
    if len(data) > MAX_BYTES:
        raise InputError(located(
            path, None, None,
            f"file is {len(data)} bytes; the limit is {MAX_BYTES} bytes"))
    if not data.strip():
        raise InputError(located(path, None, None, "file is empty"))
    _refuse_doctype(data, path)
    root = _parse_tree(data, path)
    return Document(path, data, root)


def _refuse_doctype(data: bytes, path: str) -> None:
    # Look through the prolog (declaration, comments, PIs) before lxml
    # sees the bytes: libxml2 starts expanding entities as it parses.
    offset = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    while True:
        while offset < len(data) and data[offset] in b" \t\r\n":
            offset += 1
        if data.startswith(b"<?", offset):
            end = data.find(b"?>", offset)
        elif data.startswith(b"<!--", offset):
            end = data.find(b"-->", offset)
        else:
            break
        if end < 0:
            return
        offset = end + 2
    if data[offset:offset + 9].upper() == b"<!DOCTYPE":
        line = data.count(b"\n", 0, offset) + 1
        column = offset - data.rfind(b"\n", 0, offset)
        raise InputError(located(
            path, line, column,
            "a DOCTYPE declaration is not allowed (acrn-shm reads no DTDs "
            "or entities)"))


def _scan_positions(data: bytes, path: str):
    # One expat pass: element positions in document order, comments
    # with the index of the element that follows them. Any DTD stops it.
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    starts: list[tuple[int, int, int]] = []
    texts: dict[int, Loc] = {}
    ends: dict[int, tuple[int, int, int]] = {}
    stack: list[int] = []
    has_child: list[bool] = []
    comment_marks: list[tuple[str, Loc, int]] = []

    def here() -> Loc:
        return Loc(parser.CurrentLineNumber, parser.CurrentColumnNumber + 1)

    def refuse(what: str):
        loc = here()
        raise InputError(located(
            path, loc.line, loc.column,
            f"{what} is not allowed (acrn-shm reads no DTDs or entities)"))

    def start_element(_name, _attrs):
        if has_child:
            has_child[-1] = True
        stack.append(len(starts))
        has_child.append(False)
        starts.append((parser.CurrentLineNumber,
                       parser.CurrentColumnNumber + 1,
                       parser.CurrentByteIndex))

    def end_element(_name):
        index = stack.pop()
        has_child.pop()
        ends[index] = (parser.CurrentLineNumber,
                       parser.CurrentColumnNumber + 1,
                       parser.CurrentByteIndex)

    def character_data(_data):
        if stack and not has_child[-1] and stack[-1] not in texts:
            texts[stack[-1]] = here()

    def comment(text):
        comment_marks.append((text, here(), len(starts)))

    parser.StartElementHandler = start_element
    parser.EndElementHandler = end_element
    parser.CharacterDataHandler = character_data
    parser.CommentHandler = comment
    parser.StartDoctypeDeclHandler = (
        lambda *_args: refuse("a DOCTYPE declaration"))
    parser.EntityDeclHandler = (
        lambda *_args: refuse("an entity declaration"))
    parser.ExternalEntityRefHandler = (
        lambda *_args: refuse("an external entity"))
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise InputError(located(
            path, exc.lineno, exc.offset + 1,
            f"not well-formed XML: {expat.ErrorString(exc.code)}"
        )) from None
    positions = []
    for index, (line, column, byte) in enumerate(starts):
        end_line, end_column, end_byte = ends[index]
        positions.append(ElementPos(
            Loc(line, column), texts.get(index), Loc(end_line, end_column),
            end_line, byte, end_byte))
    return positions, comment_marks


def _parse_tree(data: bytes, path: str) -> etree._Element:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False,
        dtd_validation=False, huge_tree=False, remove_blank_text=False,
        # Comments and PIs inside a value would split its text; the
        # expat pass keeps the comments that matter (suppressions).
        remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (None, None)
        message = " ".join((exc.msg or "syntax error").split(", line ")[0]
                           .split()).rstrip(".")
        raise InputError(located(
            path, line, column, f"not well-formed XML: {message}")) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        where = data.find(b"<!DOCTYPE")
        line = data.count(b"\n", 0, where) + 1 if where >= 0 else 1
        column = where - data.rfind(b"\n", 0, where) if where >= 0 else 1
        raise InputError(located(
            path, line, column,
            "a DOCTYPE declaration is not allowed (acrn-shm reads no DTDs "
            "or entities)"))
    return root
