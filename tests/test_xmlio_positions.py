"""Start tag and text positions found in the bytes (``Document.loc`` and
``Document.text_loc``, xmlio's ``_StartTags``) equal expat's pass (the
way every position was found before, still behind ``Document.pos``):
on every XML of ../shared/acrn-data and of the tests, on real files
with comments, processing instructions, CDATA sections, line ends and
blanks put in, and on documents hypothesis builds. Where expat refuses
a file that lxml read, both ways refuse it with the same line."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from acrn_ivshmem.errors import InputError
from acrn_ivshmem.io.xmlio import parse_bytes

from conftest import ACRN_DATA, TESTS


def expat_way(data: bytes):
    """Every element's (start, text) location and the comments, from
    expat's pass; or the message of the InputError it raises."""
    document = parse_bytes(data, "x.xml")
    try:
        places = [(pos.start, pos.text or pos.start) for pos in map(
            document.pos, document.root.iter())]
    except InputError as exc:
        return str(exc)
    return places, _comments(document)


def bytes_way(data: bytes):
    """The same from ``loc``, ``text_loc`` and ``comments`` of a fresh
    document, and whether the bytes gave them (not expat's pass)."""
    document = parse_bytes(data, "x.xml")
    try:
        places = [(document.loc(element), document.text_loc(element))
                  for element in document.root.iter()]
    except InputError as exc:
        return str(exc), False
    # Whether expat's pass was needed for a position or the comments.
    quick = document._table is None
    found = places, _comments(document)
    return found, quick and document._table is None


def _comments(document):
    elements = list(document.root.iter())
    return [(comment.text, comment.loc,
             None if comment.next_element is None
             else elements.index(comment.next_element))
            for comment in document.comments]


def assert_same(data: bytes, label: str = "") -> bool | None:
    """Assert both ways agree on ``data``; whether the bytes gave the
    positions (None when lxml refuses ``data``)."""
    try:
        parse_bytes(data, "x.xml")
    except InputError:
        return None
    found, quick = bytes_way(data)
    assert found == expat_way(data), (label, data)
    return quick


def readable(path) -> bytes | None:
    data = path.read_bytes()
    try:
        parse_bytes(data, str(path))
    except InputError:
        return None
    return data


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, bytes]]:
    """(name, bytes) of every XML of ../shared/acrn-data and of the
    tests that lxml reads."""
    found = []
    for path in sorted([*ACRN_DATA.rglob("*.xml"), *TESTS.rglob("*.xml")]):
        data = readable(path)
        if data is not None:
            found.append((str(path), data))
    return found


def test_every_real_file_and_fixture(corpus):
    quick = [name for name, data in corpus if assert_same(data, name)]
    slow = [name for name, data in corpus if name not in quick]
    assert len(corpus) > 200
    # Every real ACRN XML is ASCII UTF-8: the bytes give its positions.
    assert not [name for name in slow if name.startswith(str(ACRN_DATA))]
    # The fixtures in UTF-16, Latin-1 and the like go through expat.
    assert slow and len(quick) > 150


# --- Real files with markup put in ---------------------------------------

INSERTS = [
    b"<!-- a comment -->", b"<!-- <vm> in a comment -->", b"<?pi x?>",
    b"<?pi <b>?>", b"<![CDATA[x<y>]]>", b"<![CDATA[]]>", b"\r\n", b"\r",
    b"\n", b"\t", b" ", b"&amp;", b"&#60;", b"text", b"]]&gt;",
    b"<!-- acrn-shm: ignore ISM201 -->", "\u00e9".encode(),
]
_SMALL = ("v3.3/whl-ipc-i5/hybrid_rt.xml", "v3.3/whl-ipc-i5/shared.xml")


def mutated(data: bytes, rng: random.Random, count: int) -> bytes:
    """``data`` with ``count`` random pieces put before a ``<`` or after
    a ``>``, and some of its blanks changed."""
    marks = [index for index, byte in enumerate(data) if byte in b"<>"]
    pieces = []
    last = 0
    for mark in sorted(rng.sample(marks, min(count, len(marks)))):
        at = mark + 1 if data[mark] == ord(">") else mark
        pieces += [data[last:at], rng.choice(INSERTS)]
        last = at
    pieces.append(data[last:])
    result = b"".join(pieces)
    if rng.random() < 0.3:
        result = result.replace(b"\n", rng.choice([b"\r\n", b"\r"]))
    if rng.random() < 0.3:
        result = result.replace(b'" ', b'"\r\n\t ', 3)
    return result


@pytest.mark.skipif(not ACRN_DATA.is_dir(), reason="no ../shared/acrn-data")
@pytest.mark.parametrize("name", _SMALL)
def test_seeded_mutations_of_real_files(name):
    data = (ACRN_DATA / name).read_bytes()
    rng = random.Random(16)
    outcomes = set()
    for _ in range(150):
        outcomes.add(assert_same(mutated(data, rng, rng.randint(1, 8))))
    # Some were read from the bytes, some by expat.
    assert {True, False} <= outcomes


@pytest.mark.skipif(not ACRN_DATA.is_dir(), reason="no ../shared/acrn-data")
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_SMALL), st.integers(0, 2**32), st.integers(1, 12))
def test_hypothesis_mutations_of_real_files(name, seed, count):
    data = (ACRN_DATA / name).read_bytes()
    assume(assert_same(mutated(data, random.Random(seed), count))
           is not None)


# --- Documents hypothesis builds ------------------------------------------

NAMES = st.sampled_from(["a", "vm", "b-c", "x.y", "p:q", "_z"])
BLANK = st.sampled_from([" ", "\n", "\r\n", "\r", "\t", "\n  "])
VALUE = st.text(alphabet="ab >'/=\t\r\n&;", max_size=6).map(
    lambda text: text.replace("&", "&amp;"))
CONTENT = st.sampled_from([
    "", "x", " ", "\n", "\r\n", "\r", "&lt;", "&#x41;", "<!--c-->",
    "<!--<a>-->", "<?p?>", "<?p <x>?>", "<![CDATA[<a>]]>", "<![CDATA[]]>",
    "\u00e9", "y\r\nz",
])


@st.composite
def element(draw, depth=0):
    name = draw(NAMES)
    attributes = "".join(
        f"{draw(BLANK)}{key}{draw(st.sampled_from(['=', ' = ']))}"
        f"{quote}{value.replace(quote, '')}{quote}"
        for key, quote, value in draw(st.lists(st.tuples(
            st.sampled_from(["k", "id", "xmlns:p"]),
            st.sampled_from(["'", '"']), VALUE), max_size=3,
            unique_by=lambda item: item[0])))
    if "p:" in name and "xmlns:p" not in attributes:
        attributes += ' xmlns:p="u"'
    end = draw(st.sampled_from(["", " ", "\r\n"]))
    children = draw(st.lists(element(depth + 1), max_size=3)) \
        if depth < 3 else []
    if not children and draw(st.booleans()):
        return f"<{name}{attributes}{end}/>"
    inside = draw(CONTENT) + "".join(
        child + draw(CONTENT) for child in children)
    return f"<{name}{attributes}{end}>{inside}</{name}{end}>"


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["", "\ufeff"]),
       st.sampled_from(["", '<?xml version="1.0"?>',
                        "<?xml version='1.0' encoding='UTF-8'?>\n",
                        '<?xml version="1.0" encoding="US-ASCII"?>\r\n',
                        '<?xml version="1.0" encoding="utf8"?>',
                        '<?xml version="1.0" encoding="ISO-8859-1"?>']),
       st.sampled_from(["", "<!--c-->\n", "<?p?>"]), element(),
       st.sampled_from(["", "\n", "<!--e-->"]))
def test_built_documents(bom, declaration, before, root, after):
    text = bom + declaration + before + root + after
    assert_same(text.encode("utf-8"))
