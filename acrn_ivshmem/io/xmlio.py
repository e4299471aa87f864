"""Safe XML loading that remembers where every element came from.

This is the only module that parses XML. It refuses DTDs and entity
declarations outright (no expansion, no network, no file access), caps
the input size, and records for every element the line and column of
its start tag and of its text, and the span of lines it covers. The
tree comes from lxml; positions, on first use, from expat's pass, or
(start tags and text of ASCII UTF-8 documents, what lint needs) from
the bytes, found where expat would put them.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import fcntl
import grp
import os
import pwd
import re
import stat
import threading
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator
from itertools import accumulate
from itertools import count as count_from
from operator import add
from typing import NamedTuple
from xml.parsers import expat

from lxml import etree

from ..diagnostics import Loc
from ..errors import ConcurrentEditError, InputError, located, quoted

#: Largest input accepted, in bytes. Real board XMLs stay below 1 MiB.
MAX_BYTES = 16 * 1024 * 1024
#: Most elements, attributes and comments together in one file: 14
#: times the 7,036 of the largest real ACRN XML (v3.3
#: generic_board.xml, 290 KB; a 1 MB board would hold some 25,000).
#: Memory and time grow with their number, so a file with more is
#: refused before it is parsed.
MAX_NODES = 100_000
#: Most attributes on one element (ACRN's own files have up to 7): the
#: structure check takes time that grows with their square.
MAX_ATTRIBUTES = 100

_BOM = b"\xef\xbb\xbf"
# How a document in a wide encoding starts (with or without a byte
# order mark), longest first.
_WIDE_STARTS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"),
    (b"\x00<\x00?", "utf-16-be"), (b"<\x00?\x00", "utf-16-le"),
)
_DECLARED_ENCODING = re.compile(
    rb"""<\?xml\s[^>]*?\bencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']""")


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
    order), ``node_bound``. Use :meth:`pos` and :meth:`loc` to locate
    an element. Positions are found on first use: :meth:`loc` and :meth:`text_loc`
    from the bytes themselves where that is exact (:class:`_StartTags`),
    everything else from a second pass with expat.
    """

    def __init__(self, path: str, data: bytes, root: etree._Element,
                 node_bound: int | None = None):
        self.path = path
        self.data = data
        self.root = root
        #: At least the number of elements, attributes and comments
        #: (None: unknown).
        self.node_bound = node_bound
        self._table: _Positions | None = None
        self._index: dict | None = None
        self._elements: list | None = None
        self._starts: _StartTags | None | bool = False  # False: not yet
        self._comments: list[Comment] = []
        #: The kinds of document (``loader.refuse_much_to_read``) this
        #: one is known to be small enough for.
        self.small_enough: set[str] = set()

    def _element_index(self) -> dict:
        # lxml hands out the same proxy while a reference lives, so
        # keeping the element list keeps the identity-keyed map valid.
        if self._index is None:
            elements = list(self.root.iter(etree.Element))
            self._elements = elements
            self._index = dict(zip(elements, count_from()))
        return self._index

    def _quick(self) -> _StartTags | None:
        # The start tags found in the bytes, or None where only expat's
        # pass is known to give its answer.
        if self._starts is False:
            self._starts = _StartTags.find(self.data,
                                           len(self._element_index()))
        return self._starts

    def _positions(self) -> tuple[_Positions, dict]:
        if self._table is None:
            table, comment_marks = _scan_positions(self.data, self.path)
            index = self._element_index()
            elements = self._elements
            if len(elements) != table.count:
                raise InputError(located(
                    self.path, None, None,
                    "could not match element positions; is it XML 1.0?"))
            self._comments = [
                Comment(text, loc,
                        elements[index] if index < len(elements) else None)
                for text, loc, index in comment_marks
            ]
            self._table = table
        return self._table, self._index

    @property
    def comments(self) -> list[Comment]:
        """Every comment, with the element that follows it."""
        if self._table is None:
            quick = self._quick()
            if quick is not None and not quick.has_comments:
                return []
        self._positions()
        return self._comments

    def pos(self, element: etree._Element) -> ElementPos:
        """The source position of ``element``."""
        table, index = self._positions()
        return table.pos(index[element])

    def loc(self, element: etree._Element) -> Loc:
        """The line and column of ``element``'s start tag."""
        quick = self._quick()
        if quick is not None:
            return quick.start(self._index[element])
        table, index = self._positions()
        return table.start(index[element])

    def loc_or_root(self, element: etree._Element | None) -> Loc:
        """The location of ``element``, or of the root if it is unknown."""
        index = self._element_index()
        found = index.get(element) if element is not None else None
        return self.loc(self.root if found is None else element)

    def text_loc(self, element: etree._Element) -> Loc:
        """Where ``element``'s text starts (its start tag if it has none)."""
        quick = self._quick()
        if quick is not None:
            text = quick.text(self._index[element])
            if text is not False:
                return text or quick.start(self._index[element])
        table, index = self._positions()
        number = index[element]
        return table.text(number) or table.start(number)

    def start_bytes(self) -> Iterator[tuple[int, int]]:
        """The byte offset of every element's start tag and of its
        parent's (-1 for the root), in document order."""
        record = self._positions()[0].record
        fields = _Positions.FIELDS
        starts = record[2::fields]
        parents = record[8::fields]
        for start, parent in zip(starts, parents):
            yield start, record[parent + 2] if parent >= 0 else -1


def escape(text: str) -> str:
    """``text`` with ``&``, ``<`` and ``>`` escaped, for element text (as
    ``xml.sax.saxutils.escape``, whose module imports ``urllib.request``
    and so ``http``, ``email`` and ``ssl``: 35 ms)."""
    return (text.replace("&", "&amp;").replace(">", "&gt;")
            .replace("<", "&lt;"))


def read_bytes(path: str) -> bytes:
    """Read the XML file at ``path``: :func:`read_input` with
    :data:`MAX_BYTES`."""
    return read_input(path, MAX_BYTES)


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
    text = _refuse_doctype(data, path)
    # Each element and comment has a "<" and each attribute a "=":
    # counted in the bytes (any encoding where they are one byte, or two
    # or four) and in the text (any other), they bound their numbers at
    # C speed.
    equals = max(data.count(b"="), text.count("="))
    bound = max(data.count(b"<"), text.count("<")) + equals
    _refuse_many_nodes(data, bound, path)
    del text
    root = _parse_tree(data, path)
    if equals > MAX_ATTRIBUTES:
        _refuse_many_attributes(root, path)
    return Document(path, data, root, bound)


def source_encoding(data: bytes) -> str:
    """The Python codec name of the encoding XML ``data`` is in.

    A byte order mark or the first four bytes tell UTF-16 and UTF-32
    apart (as in XML 1.0 appendix F); otherwise the XML declaration's
    ``encoding`` counts, and without one UTF-8. Raises
    :class:`InputError` (naming no file) for an encoding Python does
    not know.
    """
    for start, codec in _WIDE_STARTS:
        if data.startswith(start):
            return codec
    match = _DECLARED_ENCODING.match(data, 3 if data.startswith(_BOM)
                                     else 0)
    if match is None:
        return "utf-8"
    name = match.group(1).decode("ascii")
    try:
        codec = codecs.lookup(name).name
        # Python also knows codecs that are no text encodings (uu, hex,
        # base64, zlib, rot13: LookupError), one that always fails
        # ("undefined") and one without errors="replace" ("idna").
        "".encode(codec)
        b"<".decode(codec, "replace")
    except (LookupError, UnicodeError):
        raise InputError(f"unsupported encoding {quoted(name)}") from None
    return codec


def _prolog_text(data: bytes) -> str:
    # The document as text for a look at its prolog, whatever its
    # encoding (an unknown one is read as UTF-8; parsing reports it).
    try:
        encoding = source_encoding(data)
    except InputError:
        encoding = "utf-8"
    return data.decode(encoding, "replace").lstrip("\ufeff")


_PROLOG_SPACE = re.compile(r"[ \t\r\n]*")
_DOCTYPE_STOPS = re.compile(r"[\"'\[>]")
_SUBSET_STOPS = re.compile(r"<!--|<\?|[\"'\]]")
_START_TAG = re.compile(
    r"<([^\s/>\"'=]+)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)(/?)>")
_DEFAULT_NAMESPACE = re.compile(r"(?:^|\s)xmlns\s*=")


def _walk_prolog(text: str) -> tuple[int | None, int | None]:
    """Where the root element starts in ``text``, and where a DOCTYPE does.

    Skips the XML declaration, comments, processing instructions and a
    DOCTYPE declaration (its internal subset too, quoted literals,
    comments and PIs included) without expanding anything. The first
    value is None when the prolog does not end (the file is cut short).
    """
    offset = 0
    doctype = None
    while True:
        offset = _PROLOG_SPACE.match(text, offset).end()
        if text.startswith("<!--", offset):
            end = text.find("-->", offset + 4)
            close = 3
        elif text.startswith("<?", offset):
            end = text.find("?>", offset + 2)
            close = 2
        elif text[offset:offset + 9].upper() == "<!DOCTYPE":
            doctype = offset if doctype is None else doctype
            end = _doctype_end(text, offset + 9)
            close = 1
        else:
            return offset, doctype
        if end < 0:
            return None, doctype
        offset = end + close


def _doctype_end(text: str, offset: int) -> int:
    # The offset of the ">" that closes a DOCTYPE declaration, or -1.
    in_subset = False
    while True:
        stop = (_SUBSET_STOPS if in_subset else _DOCTYPE_STOPS).search(
            text, offset)
        if stop is None:
            return -1
        token = stop.group()
        if token in ("\"", "'"):
            end = text.find(token, stop.end())
            offset = end + 1
        elif token == "<!--":
            end = text.find("-->", stop.end())
            offset = end + 3
        elif token == "<?":
            end = text.find("?>", stop.end())
            offset = end + 2
        elif token == "[":
            in_subset = True
            offset = stop.end()
            continue
        elif token == "]":
            in_subset = False
            offset = stop.end()
            continue
        else:  # ">" outside the internal subset
            return stop.start()
        if end < 0:
            return -1


def root_name(data: bytes) -> str | None:
    """The root element's name in XML ``data``, found without parsing.

    Reads through the prolog as written (no DTD is loaded and no entity
    is expanded, however the document declares them) up to the root's
    start tag. A name in a default namespace (``xmlns="..."`` on the
    root) is given as ``{}name``; a prefixed name as written. None when
    the bytes end or break before a whole start tag.
    """
    text = _prolog_text(data)
    offset, _doctype = _walk_prolog(text)
    if offset is None:
        return None
    tag = _START_TAG.match(text, offset)
    if tag is None:
        return None
    name = tag.group(1)
    if _DEFAULT_NAMESPACE.search(tag.group(2)):
        return "{}" + name
    return name


def _refuse_doctype(data: bytes, path: str) -> str:
    # Look through the prolog (declaration, comments, PIs) before lxml
    # sees the bytes: libxml2 starts expanding entities as it parses.
    # In UTF-16, UTF-32 or UTF-7 the bytes of "<!DOCTYPE" differ, so
    # such a file is read as text in its own encoding for the look.
    # Returns that text.
    try:
        source_encoding(data)
    except InputError as exc:
        raise InputError(located(path, 1, 1, str(exc))) from None
    text = _prolog_text(data)
    _root, offset = _walk_prolog(text)
    if offset is not None:
        line = text.count("\n", 0, offset) + 1
        column = offset - text.rfind("\n", 0, offset)
        raise InputError(located(
            path, line, column,
            "a DOCTYPE declaration is not allowed (acrn-shm reads no DTDs "
            "or entities)"))
    return text


class _TooMany(Exception):
    pass


def _refuse_many_nodes(data: bytes, bound: int, path: str) -> None:
    # Refuse a file of more than MAX_NODES elements, attributes and
    # comments before lxml builds a tree of them. Only a file over the
    # ``bound`` of their number (see parse_bytes) is counted exactly, by
    # expat, up to the limit: the cost of a refusal does not grow with
    # the file.
    if bound <= MAX_NODES:
        return
    left = [MAX_NODES]

    def start_element(_name, attributes):
        # ordered_attributes: [name, value, name, value, ...]
        left[0] -= 1 + len(attributes) // 2
        if left[0] < 0:
            raise _TooMany

    def comment(_text):
        left[0] -= 1
        if left[0] < 0:
            raise _TooMany

    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.ordered_attributes = True
    parser.StartElementHandler = start_element
    parser.CommentHandler = comment
    try:
        # What expat cannot read (not well-formed, or in an encoding it
        # does not know) is refused as the positions pass would.
        _expat_parse(parser, data, path)
    except _TooMany:
        raise InputError(located(
            path, None, None,
            f"more than {MAX_NODES} elements, attributes and comments; the "
            f"limit is {MAX_NODES} (real ACRN XMLs have up to some 7,000)"
        )) from None


def _refuse_many_attributes(root: etree._Element, path: str) -> None:
    # XPath runs in C: one pass over the tree.
    found = root.xpath("(//*[count(@*) > $most])[1]", most=MAX_ATTRIBUTES)
    if found:
        element = found[0]
        raise InputError(located(
            path, element.sourceline, None,
            f"<{element.tag}> has {len(element.attrib)} attributes; the "
            f"limit is {MAX_ATTRIBUTES} on one element (real ACRN XMLs "
            "have up to 7)"))


class _Positions:
    # Where each element is, in document order, as flat integer arrays
    # (36 bytes an element; ElementPos objects are made on demand).
    # ``record`` holds FIELDS numbers an element: the line, column and
    # byte offset of its start tag, of its end tag, the line and column
    # of its text (0, 0 when it has none) and where its parent's
    # numbers start (-1 for the root). Columns are expat's, counted
    # from 0; ``bom`` is subtracted from those of line 1. Every number
    # fits in 32 bits: no file is over MAX_BYTES.
    FIELDS = 9

    def __init__(self, record: array, bom: int):
        self.record = record
        self.bom = bom
        self.count = len(record) // self.FIELDS

    def _loc(self, line: int, column: int) -> Loc:
        return Loc(line, column + 1 - (self.bom if line == 1 else 0))

    def start(self, index: int) -> Loc:
        base = index * self.FIELDS
        return self._loc(self.record[base], self.record[base + 1])

    def text(self, index: int) -> Loc | None:
        base = index * self.FIELDS
        line = self.record[base + 6]
        return self._loc(line, self.record[base + 7]) if line else None

    def pos(self, index: int) -> ElementPos:
        base = index * self.FIELDS
        line, column, byte, end_line, end_column, end_byte = (
            self.record[base:base + 6])
        return ElementPos(
            self._loc(line, column), self.text(index),
            self._loc(end_line, end_column), end_line, byte, end_byte)


class _StartTags:
    # Where each start tag and its text begin, found in the bytes
    # without a parser: in a document that lxml has read, every "<"
    # outside comments, CDATA sections and processing instructions
    # starts a tag (XML allows none in text or attribute values). Used
    # only where the answer is expat's (tests/test_xmlio_positions.py
    # compares them): ASCII text in UTF-8 (a byte order mark allowed)
    # or US-ASCII, where a byte is a column and expat accepts whatever
    # lxml did. Anything else, and a start tag count that does not
    # match lxml's, is left to the expat pass.

    def __init__(self, data: bytes, offsets: array, lines: array,
                 has_comments: bool):
        self.data = data
        self.offsets = offsets
        # The byte offset each line starts at (after the byte order
        # mark on line 1; expat counts it as a column, acrn-shm not).
        self.lines = lines
        self.has_comments = has_comments

    @classmethod
    def find(cls, data: bytes, count: int) -> _StartTags | None:
        """The start tags of ``data``, if they can be found exactly and
        there are ``count`` of them (lxml's elements); else None."""
        bom = len(_BOM) if data.startswith(_BOM) else 0
        if not data[bom:].isascii() or b"\0" in data:
            return None
        declared = _DECLARED_ENCODING.match(data, bom)
        if declared is not None and declared.group(1).upper() not in (
                (b"UTF-8",) if bom else (b"UTF-8", b"US-ASCII")):
            return None  # expat may know the name in another way
        offsets = [match.start() for match in _TAG_OPEN.finditer(data)]
        if len(offsets) != count:
            # A "<" in a comment, CDATA section or processing
            # instruction: step over those.
            offsets = [match.start() for match in _MARKUP.finditer(data)
                       if match.end() - match.start() == 1]
            if len(offsets) != count:
                return None
        if b"\r" in data:
            # Expat ends a line at CR LF, CR or LF: the same length.
            data = data.replace(b"\r\n", b" \n").replace(b"\r", b"\n")
        lines = data.split(b"\n")
        starts = array("i", (bom,))
        starts.extend(map(add, accumulate(map(len, lines[:-1])),
                          count_from(1)))
        # Arrays: 4 bytes a number (a list of ints takes 36).
        return cls(data, array("i", offsets), starts, b"<!--" in data)

    def _loc(self, offset: int) -> Loc:
        line = bisect_right(self.lines, offset)
        return Loc(line, offset - self.lines[line - 1] + 1)

    def start(self, index: int) -> Loc:
        """Where element ``index``'s start tag starts."""
        return self._loc(self.offsets[index])

    def text(self, index: int) -> Loc | None | bool:
        """Where element ``index``'s text starts; None if it has none;
        False when a comment, CDATA section or processing instruction
        comes first (expat's pass knows then)."""
        data = self.data
        end = _TAG_END.match(data, self.offsets[index]).end()
        if data[end - 2:end] == b"/>":
            return None
        if data[end:end + 1] != b"<":
            return self._loc(end)
        return False if data[end + 1:end + 2] in (b"!", b"?") else None


# A "<" that starts no end tag, comment, CDATA section, processing
# instruction or declaration: a start tag's, unless it stands in one
# of those (then the count is more than lxml's).
_TAG_OPEN = re.compile(rb"<(?![/!?])")
# A start tag's "<", or markup that may hold a "<" of no tag.
_MARKUP = re.compile(
    rb"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<(?![/!?])", re.S)
# A whole start tag (">" may stand in attribute values).
_TAG_END = re.compile(rb"<[^>\"']*(?:(?:\"[^\"]*\"|'[^']*')[^>\"']*)*>")


def _scan_positions(data: bytes, path: str
                    ) -> tuple[_Positions, list[tuple[str, Loc, int]]]:
    # One expat pass: element positions in document order, comments
    # with the index of the element that follows them. Any DTD stops it.
    # The handlers run once an element or piece of text, so they do as
    # little as they can: no objects but the integers they store.
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.ordered_attributes = True  # a list is quicker to make
    fields = _Positions.FIELDS
    record = array("i")
    extend = record.extend
    stack: list[int] = []
    push, pop = stack.append, stack.pop
    # The element whose text comes next if text comes before its first
    # child or its end tag (-1: none).
    awaiting = -1
    comment_marks: list[tuple[str, Loc, int]] = []
    bom = _bom_width(data)

    def here() -> Loc:
        line = parser.CurrentLineNumber
        return Loc(line, _column(line, parser.CurrentColumnNumber, bom))

    def refuse(what: str):
        loc = here()
        raise InputError(located(
            path, loc.line, loc.column,
            f"{what} is not allowed (acrn-shm reads no DTDs or entities)"))

    # Text is only wanted right after a start tag: the handler is set
    # there and taken away once it has run or the element has ended, so
    # the other pieces of text (indentation, mostly) cost no call.
    def start_element(_name, _attrs):
        nonlocal awaiting
        parent = stack[-1] if stack else -1
        awaiting = len(record)
        push(awaiting)
        extend((parser.CurrentLineNumber, parser.CurrentColumnNumber,
                parser.CurrentByteIndex, 0, 0, 0, 0, 0, parent))
        parser.CharacterDataHandler = character_data

    def end_element(_name):
        nonlocal awaiting
        awaiting = -1
        parser.CharacterDataHandler = None
        base = pop()
        record[base + 3] = parser.CurrentLineNumber
        record[base + 4] = parser.CurrentColumnNumber
        record[base + 5] = parser.CurrentByteIndex

    def character_data(_data):
        nonlocal awaiting
        record[awaiting + 6] = parser.CurrentLineNumber
        record[awaiting + 7] = parser.CurrentColumnNumber
        awaiting = -1
        parser.CharacterDataHandler = None

    def comment(text):
        comment_marks.append((text, here(), len(record) // fields))

    parser.StartElementHandler = start_element
    parser.EndElementHandler = end_element
    parser.CommentHandler = comment
    parser.StartDoctypeDeclHandler = (
        lambda *_args: refuse("a DOCTYPE declaration"))
    parser.EntityDeclHandler = (
        lambda *_args: refuse("an entity declaration"))
    parser.ExternalEntityRefHandler = (
        lambda *_args: refuse("an external entity"))
    _expat_parse(parser, data, path)
    return _Positions(record, bom), comment_marks


def _bom_width(data: bytes) -> int:
    # Expat counts a byte order mark as a column of line 1.
    return 1 if data.startswith((_BOM, b"\xff\xfe", b"\xfe\xff")) else 0


def _column(line: int, offset: int, bom: int) -> int:
    # The 1-based column of expat's 0-based ``offset`` on ``line``.
    return offset + 1 - bom if line == 1 else offset + 1


def _expat_parse(parser, data: bytes, path: str) -> None:
    # Run ``parser`` over all of ``data``; its errors become InputError.
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise InputError(located(
            path, exc.lineno,
            _column(exc.lineno, exc.offset, _bom_width(data)),
            f"not well-formed XML: {expat.ErrorString(exc.code)}"
        )) from None
    except ValueError as exc:
        # pyexpat refuses multi-byte encodings other than UTF-8 and
        # UTF-16 (Shift_JIS, EUC-JP, GB2312, Big5, UTF-7), which lxml reads.
        raise InputError(located(
            path, 1, 1, f"unsupported encoding: {exc}")) from None


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


# --- Reading input files --------------------------------------------------

# What a file that is not a regular one is, for messages.
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def read_input(path: str, limit: int) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit``.

    Every file acrn-shm reads goes through :func:`open_input`, so a
    FIFO, socket, device or folder is refused at once instead of
    blocking a read. Problems become a one-line :class:`InputError`
    naming the file: missing, a symbolic link loop, not a regular file,
    bigger than ``limit`` bytes, unreadable.
    """
    fd = open_input(path)
    try:
        size = os.fstat(fd).st_size
        if size <= limit:
            data = _read_up_to(fd, limit + 1)
            size = len(data)
    except OSError as exc:
        raise InputError(located(path, None, None,
                                 f"cannot read: {_reason(exc)}")) from None
    finally:
        os.close(fd)
    if size > limit:
        raise InputError(located(
            path, None, None,
            f"file is {size} bytes; the limit is {limit} bytes"))
    return data


def open_input(path: str) -> int:
    """A read-only descriptor of the regular file at ``path``.

    A symbolic link is followed. Anything but a regular file (FIFO,
    socket, device, folder) is refused from its status before it is
    opened, so that opening it can neither block nor touch a device;
    the descriptor is opened with ``O_NONBLOCK`` and checked again, in
    case the name was swapped meanwhile. Raises :class:`InputError`
    (one line naming ``path``).
    """
    return _open_regular(path, path, follow=True)


def _open_regular(path: str, shown: str, follow: bool) -> int:
    # ``shown`` names the file in messages (the user's name for it).
    try:
        info = os.stat(path, follow_symlinks=follow)
    except OSError as exc:
        raise InputError(located(shown, None, None,
                                 _open_problem(path, exc))) from None
    _require_regular(shown, info.st_mode)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags if follow else flags | os.O_NOFOLLOW)
    except OSError as exc:
        raise InputError(located(shown, None, None,
                                 _open_problem(path, exc))) from None
    try:
        _require_regular(shown, os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_problem(path: str, exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        if os.path.islink(path):
            return "is a symbolic link to a missing file"
        return "no such file"
    if exc.errno == errno.ELOOP:
        return "is a symbolic link loop (or too many links in a row)"
    return f"cannot read: {_reason(exc)}"


def _require_regular(path: str, mode: int, suffix: str = "") -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)),
                "a special file")
    what = "a file" if kind == "a folder" else "a regular file"
    raise InputError(located(path, None, None,
                             f"is {kind}, not {what}{suffix}"))


def _read_up_to(fd: int, size: int) -> bytes:
    pieces = []
    while size > 0:
        piece = os.read(fd, min(size, 1 << 20))
        if not piece:
            break
        pieces.append(piece)
        size -= len(piece)
    return b"".join(pieces)


# --- Crash-safe, concurrency-safe writing --------------------------------

#: Tests only, never set in normal use: a function that
#: :func:`save_atomic` calls with each step's number (see there), so
#: that a test can kill or delay the writer at that step. While it is
#: set, the temporary file is written in :data:`TEST_CHUNKS` pieces,
#: one step each.
step_hook: Callable[[int], None] | None = None

#: Pieces :func:`save_atomic` writes the temporary file in while
#: :data:`step_hook` is set.
TEST_CHUNKS = 200

#: Suffix of the temporary files ``.<name>.<8 hex digits>.tmp`` written
#: by :func:`save_atomic`. A writer killed before its rename leaves one
#: behind; :func:`locked` removes those of its file.
TEMP_SUFFIX = ".tmp"

_POLL_FIRST = 0.005
_POLL_MAX = 0.05

# The locks this thread holds, by the real path of the locked file:
# the descriptors whose flock makes the lock (see locked()).
_held = threading.local()


def _held_locks() -> dict[str, list[int]]:
    if not hasattr(_held, "locks"):
        _held.locks = {}
    return _held.locks


@contextlib.contextmanager
def locked(path: str, timeout: float = 10.0) -> Iterator[None]:
    """Exclusive advisory lock for editing ``path``; yields nothing.

    Takes ``fcntl.flock`` on the file itself (symbolic links resolved),
    opened read-only: no lock file is made, so nothing stays beside the
    file, and a lock never outlives its holder (the kernel drops it when
    the process ends, even when it is killed) or keeps another user out
    for good. Anything but a regular file is refused before any lock
    (:func:`open_input`). :func:`save_atomic` replaces the file by a new
    one (a new inode): inside this block it keeps its flock on the new
    file until the block ends, and a waiter that wakes up on the old
    file sees that the name now means another file and locks that.

    Waits up to ``timeout`` seconds, polling, then raises
    :class:`ConcurrentEditError` naming the holding process and its
    user where ``/proc/locks`` tells them. Not re-entrant: locking the
    same file twice, even in one process, waits for the first lock.
    Only processes that use this lock are kept out; plain editors are
    not (:func:`save_atomic` notices their changes instead). Once it
    holds the lock, removes the temporary files of ``path`` that killed
    writers left behind (those no live writer holds).
    """
    fd, target = _lock(path, timeout)
    fds = [fd]
    held = _held_locks()
    held[target] = fds
    try:
        _remove_stale_temps(path)
        yield
    finally:
        del held[target]
        # Closing the descriptors releases the lock.
        for fd in fds:
            os.close(fd)


def _lock(path: str, timeout: float) -> tuple[int, str]:
    # A descriptor of the file ``path`` names holding its flock, and
    # the file's real path, which still names the file locked.
    deadline = time.monotonic() + timeout
    pause = _POLL_FIRST
    while True:
        fd = open_input(path)
        target = os.path.realpath(path)
        try:
            while not _try_flock(path, fd):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    _give_up(path, fd)
                    break
                time.sleep(min(pause, remaining))
                pause = min(pause * 2, _POLL_MAX)
            if _names(target, fd):
                return fd, target
        except BaseException:
            os.close(fd)
            raise
        # Replaced while this process waited: lock the file it names now.
        os.close(fd)


def _try_flock(path: str, fd: int) -> bool:
    # Whether this took the flock of ``fd``; False while another holds it.
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
            return False
        # For example ENOLCK on a network file system.
        raise InputError(located(
            path, None, None,
            f"cannot lock it for editing: {_reason(exc)}")) from None
    return True


def _give_up(path: str, fd: int) -> None:
    # Raises ConcurrentEditError naming the holder, unless the lock was
    # released while the holder was looked up: then takes it, returns.
    holder = ""
    for _attempt in range(3):
        holder = _holder(fd)
        if holder:
            break
        if _try_flock(path, fd):
            return
    raise ConcurrentEditError(located(
        path, None, None,
        f"another acrn-shm edit holds the lock{holder}; try again"))


def _names(path: str, fd: int) -> bool:
    # Whether ``path`` still names the file open as ``fd``.
    try:
        now = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    opened = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)


def _holder(fd: int) -> str:
    # " (process N of user U)" for the process /proc/locks names as the
    # holder of the flock on the file open as ``fd``; "" if unknown.
    info = os.fstat(fd)
    key = (f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:"
           f"{info.st_ino}")
    try:
        with open("/proc/locks", encoding="ascii",
                  errors="replace") as stream:
            table = stream.read()
    except OSError:
        return ""
    for line in table.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 1234 fd:00:5678 0 EOF"; waiters
        # have "->" after the number.
        fields = line.split()
        if (len(fields) > 5 and fields[1] == "FLOCK"
                and fields[5] == key and fields[4].isdecimal()):
            pid = int(fields[4])
            try:
                uid = os.stat(f"/proc/{pid}").st_uid
            except OSError:
                return ""
            return f" (process {pid} of user {_user_name(uid)})"
    return ""


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _temp_beside(path: str, folder: str, name: str) -> tuple[int, str]:
    # ``.<name>.<8 hex digits>.tmp`` in the file's folder, so that the
    # rename is atomic. The writer holds a flock on it until the rename:
    # _remove_stale_temps only removes temporary files nobody holds.
    for _attempt in range(100):
        temp = os.path.join(
            folder, f".{name}.{os.urandom(4).hex()}{TEMP_SUFFIX}")
        try:
            fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL
                         | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _not_written(
                path, "cannot create a temporary file beside it", exc
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # A cleanup may have taken the new file for a dead writer's
            # and removed it just before the flock.
            mine = (os.stat(temp, follow_symlinks=False).st_ino
                    == os.fstat(fd).st_ino)
        except OSError as exc:
            # No flock on this file system (ENOLCK): no cleanup can
            # lock it either, so it is safe from removal.
            mine = exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK,
                                     errno.ENOENT)
        if mine:
            return fd, temp
        os.close(fd)
    raise InputError(located(
        path, None, None,
        "cannot create a temporary file beside it; nothing written"))


def _remove_stale_temps(path: str) -> None:
    # Called by locked() with the edit lock held. A writer killed
    # between creating its temporary file and the rename leaves the
    # file behind; remove those of ``path`` (exact name pattern, regular
    # files only) that no live writer holds. Best effort.
    folder, name = os.path.split(os.path.realpath(path))
    pattern = re.compile(re.escape(f".{name}.") + "[0-9a-f]{8}"
                         + re.escape(TEMP_SUFFIX))
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if not pattern.fullmatch(entry):
            continue
        temp = os.path.join(folder, entry)
        try:
            fd = os.open(temp, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                         | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                # Fails while the writer lives (or without flock).
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.unlink(temp)
        except OSError:
            pass
        finally:
            os.close(fd)


def save_new(path: str, data: bytes, mode: int | None = None) -> None:
    """Write a new file ``path`` atomically, with ``mode`` (by default
    0o666 less the umask).

    Refuses to replace an existing file or symbolic link (use
    :func:`save_atomic`).
    """
    folder = os.path.dirname(os.path.abspath(path))
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, temp = _temp_beside(path, folder, os.path.basename(path))
    try:
        try:
            _write_all(fd, data)
            os.fchmod(fd, mode)
            os.fsync(fd)
            # link() fails if the name exists, unlike rename().
            os.link(temp, path)
        finally:
            os.close(fd)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, FileExistsError):
            raise InputError(located(
                path, None, None, "already exists; nothing written")) from None
        if isinstance(exc, OSError):
            raise _not_written(path, "cannot write", exc) from None
        raise
    with contextlib.suppress(OSError):
        os.unlink(temp)
    _sync_folder(path, folder)


def save_output(path: str, data: bytes, new_mode: int | None = None
                ) -> None:
    """Write an output file (a converted scenario, a launch script, a
    picture).

    A new file is created with ``new_mode`` (by default 0o666 less the
    umask; see :func:`save_new`). An existing one is replaced
    atomically as :func:`save_atomic` does, keeping its owner, group
    and mode, but never through a symbolic link: a link at ``path`` is
    refused, nothing written, and so is anything but a regular file.
    """
    try:
        os.lstat(path)
    except FileNotFoundError:
        save_new(path, data, new_mode)
        return
    except OSError as exc:
        raise _not_written(path, "cannot read", exc) from None
    # Not resolved: the final name itself is checked and replaced.
    _replace(path, os.path.abspath(path), data, None)


def save_atomic(path: str, data: bytes, expected: bytes | None) -> None:
    """Replace the file ``path`` with ``data`` atomically.

    Writes a temporary file ``.<name>.<8 hex digits>.tmp`` in the same
    folder (holding a flock on it), gives it the owner, group and mode
    the file has just then, fsyncs it, renames it over the file with
    ``os.replace`` and fsyncs the folder. Readers and a crash at any
    moment see either the old or the new bytes in full. A symbolic link
    is followed: its target is replaced and the link kept. Hard links to
    the old file keep the old bytes.

    Refuses (:class:`InputError`, nothing written) a file that is not a
    regular one, one the user may not write in place (write-protected,
    say; :func:`os.access` decides, so root may), and one whose owner or
    group the new file cannot be given (a user who may write a file of
    another user: only root can give the new file back). Owner, group
    and mode are read again just before the rename, so that a ``chmod``
    or ``chown`` made meanwhile is kept.

    If ``expected`` is not None and the file's current bytes differ from
    it, raises :class:`ConcurrentEditError` and writes nothing. The
    check is made before writing and again just before the rename. On
    any error the temporary file is removed; only a killed process
    leaves it behind, and the next :func:`locked` on the file removes
    it. Call this inside :func:`locked` so that concurrent edits do not
    interleave; the lock then moves to the new file.

    The steps :data:`step_hook` sees: 1 start, 2 the file checked, 3
    the temporary file created, 4 to 203 each piece written, 204 owner
    and group given, 205 mode set, 206 fsync, 207 checked again, 208
    renamed, 209 folder synced.
    """
    _replace(path, os.path.realpath(path), data, expected)


def _replace(path: str, target: str, data: bytes,
             expected: bytes | None) -> None:
    # save_atomic and save_output: replace ``target`` (the file itself,
    # never a symbolic link), named ``path`` in messages.
    step = _Steps()
    step()
    folder, name = os.path.split(target)
    _replaceable(path, target, expected)
    step()
    fd, temp = _temp_beside(path, folder, name)
    try:
        step()
        _write_data(fd, data, step)
        info = _replaceable(path, target, None)
        _give_owner(path, fd, info)
        step()
        # After fchown, which may clear set-user-ID and similar bits.
        os.fchmod(fd, stat.S_IMODE(info.st_mode))
        step()
        os.fsync(fd)
        step()
        # Check again just before the rename: the file may have been
        # changed by another program while the temporary file was
        # written, or given another owner or mode.
        now = _replaceable(path, target, expected)
        if _kept(now) != _kept(info):
            _give_owner(path, fd, now)
            os.fchmod(fd, stat.S_IMODE(now.st_mode))
            os.fsync(fd)
        step()
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise _not_written(path, "cannot write", exc) from None
        raise
    # Until the rename the flock marked the temporary file as a live
    # writer's; now it locks the new file for the edit lock's holder.
    lock = _held_locks().get(target)
    if lock is not None:
        lock.append(fd)
    else:
        os.close(fd)
    step()
    _sync_folder(path, folder)
    step()


class _Steps:
    # Counts the steps of one save and calls step_hook with each.

    def __init__(self) -> None:
        self.count = 0
        self.hook = step_hook

    def __call__(self) -> None:
        self.count += 1
        if self.hook is not None:
            self.hook(self.count)


def _write_data(fd: int, data: bytes, step: _Steps) -> None:
    if step.hook is None:
        _write_all(fd, data)
        return
    size = len(data)
    for index in range(TEST_CHUNKS):
        _write_all(fd, data[size * index // TEST_CHUNKS:
                            size * (index + 1) // TEST_CHUNKS])
        step()


def _replaceable(path: str, target: str,
                 expected: bytes | None) -> os.stat_result:
    # The status of ``target`` if it may be replaced; else raises.
    try:
        info = os.stat(target, follow_symlinks=False)
    except FileNotFoundError:
        if expected is not None:
            raise _changed(path) from None
        raise InputError(located(
            path, None, None, "no such file; nothing written")) from None
    except OSError as exc:
        raise _not_written(path, "cannot read", exc) from None
    _require_regular(path, info.st_mode, "; nothing written")
    if not _writable(target):
        raise InputError(located(
            path, None, None,
            f"is not writable for you (mode {stat.S_IMODE(info.st_mode):04o}"
            f", owner {_user_name(info.st_uid)}); nothing written"))
    if expected is not None and _current(path, target, expected) != expected:
        raise _changed(path)
    return info


def _writable(path: str) -> bool:
    if os.access in os.supports_effective_ids:
        return os.access(path, os.W_OK, effective_ids=True)
    return os.access(path, os.W_OK)  # pragma: no cover - not Linux


def _kept(info: os.stat_result) -> tuple[int, int, int]:
    # What a replacement keeps of the file it replaces.
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


def _give_owner(path: str, fd: int, info: os.stat_result) -> None:
    # The new file belongs to its writer; give it the old file's owner
    # and group. Only root may give a file away (others may choose one
    # of their own groups): otherwise the edit would change the owner.
    done = os.fstat(fd)
    if (done.st_uid, done.st_gid) == (info.st_uid, info.st_gid):
        return
    try:
        os.fchown(fd, info.st_uid, info.st_gid)
    except PermissionError:
        raise InputError(located(
            path, None, None,
            f"belongs to {_user_name(info.st_uid)}:"
            f"{_group_name(info.st_gid)}, and a file you write cannot be "
            "given to them; nothing written")) from None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _changed(path: str) -> ConcurrentEditError:
    return ConcurrentEditError(located(
        path, None, None,
        "changed on disk since it was read; nothing written"))


def _not_written(path: str, what: str, exc: OSError) -> InputError:
    return InputError(located(
        path, None, None, f"{what}: {_reason(exc)}; nothing written"))


def _current(path: str, target: str, expected: bytes) -> bytes:
    # One byte more than expected is enough to tell a longer file apart.
    try:
        fd = _open_regular(target, path, follow=False)
    except InputError:
        if not os.path.lexists(target):
            raise _changed(path) from None
        raise
    try:
        return _read_up_to(fd, len(expected) + 1)
    except OSError as exc:
        raise _not_written(path, "cannot read", exc) from None
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _sync_folder(path: str, folder: str) -> None:
    # Makes the rename itself durable. Some file systems cannot fsync a
    # folder (EINVAL); the data is in place either way.
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOTSUP):
            return
        raise InputError(located(
            path, None, None,
            f"saved, but cannot sync its folder to disk: {_reason(exc)}"
        )) from None
