"""Safe loading: hostile and odd inputs, and exact source positions."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from acrn_ivshmem.errors import InputError
from acrn_ivshmem.model.loader import load
from acrn_ivshmem.io.xmlio import (
    MAX_BYTES, Loc, escape, parse_bytes, parse_file, root_name,
)
from acrn_ivshmem.model.loader import load

DATA = Path(__file__).parent / "test_xmlio"


@pytest.mark.parametrize("name, message", [
    ("billion_laughs.xml", "billion_laughs.xml:2:1: a DOCTYPE declaration "
     "is not allowed (acrn-shm reads no DTDs or entities)"),
    ("external_entity.xml", "external_entity.xml:2:1: a DOCTYPE "
     "declaration is not allowed (acrn-shm reads no DTDs or entities)"),
    ("network_entity.xml", "network_entity.xml:2:1: a DOCTYPE declaration "
     "is not allowed (acrn-shm reads no DTDs or entities)"),
    ("external_dtd.xml", "external_dtd.xml:2:1: a DOCTYPE declaration is "
     "not allowed (acrn-shm reads no DTDs or entities)"),
    ("undefined_entity.xml", "undefined_entity.xml:3:13: not well-formed "
     "XML: Entity 'nope' not defined"),
    ("nul.xml", "nul.xml:3:7: not well-formed XML: Invalid character: Char "
     "0x0 out of allowed range"),
    ("bad_utf8.xml", "bad_utf8.xml:3:21: not well-formed XML: Invalid bytes "
     "in character encoding"),
])
def test_hostile_input_is_refused_with_one_line(name, message):
    start = time.perf_counter()
    with pytest.raises(InputError) as caught:
        parse_file(name)
    assert time.perf_counter() - start < 1.0
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


DOCTYPE = ("a DOCTYPE declaration is not allowed (acrn-shm reads no DTDs "
           "or entities)")
# Billion laughs: libxml2 would parse it and stop at its expansion limit.
_LAUGH = "<!DOCTYPE acrn-config [<!ENTITY a0 'lol'>%s]>%s" % (
    "".join(f"<!ENTITY a{n} '{f'&a{n - 1};' * 10}'>" for n in range(1, 10)),
    "<acrn-config>&a9;</acrn-config>")


@pytest.mark.parametrize("data, where", [
    (b"<!-- c -->\n" + _LAUGH.encode(), "2:1"),
    (b"\xef\xbb\xbf" + _LAUGH.encode(), "1:1"),
    (b"\xff\xfe" + _LAUGH.encode("utf-16-le"), "1:1"),
    (('<?xml version="1.0" encoding="UTF-16BE"?>\n' + _LAUGH)
     .encode("utf-16-be"), "2:1"),
    (('<?xml version="1.0" encoding="UTF-32"?>\n' + _LAUGH)
     .encode("utf-32"), "2:1"),
    # UTF-7 spells '<!' as '+ADwAIQ-': no "<!DOCTYPE" bytes at all.
    (b'<?xml version="1.0" encoding="UTF-7"?>'
     + _LAUGH.replace("<!DOCTYPE", "+ADwAIQ-DOCTYPE").encode(), "1:39"),
], ids=["after-comment", "utf8-bom", "utf16-bom", "utf16be", "utf32",
        "utf7"])
def test_doctype_is_refused_before_lxml_in_any_encoding(data, where):
    # After lxml, the message would be its entity amplification error.
    with pytest.raises(InputError) as caught:
        parse_bytes(data, "x.xml")
    assert str(caught.value) == f"x.xml:{where}: {DOCTYPE}"


def test_utf7_lone_surrogate_is_refused_on_one_line():
    # Found by fuzzing: UTF-7 decodes "+3JI-" to a lone surrogate, which
    # broke the DOCTYPE look with a UnicodeEncodeError.
    document = parse_bytes(b'<?xml version="1.0" encoding="UTF-7"?>\n'
                           b"<acrn-config>+3JI-</acrn-config>", "x.xml")
    with pytest.raises(InputError) as caught:
        document.loc(document.root)
    assert str(caught.value) == ("x.xml:1:1: unsupported encoding: "
                                 "multi-byte encodings are not supported")


@pytest.mark.parametrize("name", [
    # Python knows the last five, but as bytes-to-bytes or str-to-str
    # codecs (found by fuzzing: "uu" gave a LookupError).
    "x-nope", "uu", "base64", "hex", "zlib", "rot13", "undefined", "idna"])
def test_unknown_encoding_is_refused(name):
    with pytest.raises(InputError) as caught:
        parse_bytes(b'<?xml version="1.0" encoding="%s"?>\n<a/>'
                    % name.encode(), "x.xml")
    assert str(caught.value) == f"x.xml:1:1: unsupported encoding '{name}'"


@pytest.fixture(autouse=True)
def in_data_folder(monkeypatch):
    monkeypatch.chdir(DATA)


def test_no_entity_is_ever_expanded():
    # lxml on its own would expand internal entities; the loader refuses
    # before any expansion and never opens a file or a socket.
    data = (DATA / "billion_laughs.xml").read_bytes()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InputError):
        parse_bytes(data, "x.xml")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert after - before < 50 * 1024  # KB


@pytest.mark.parametrize("name", ["bom.xml", "latin1.xml", "crlf.xml"])
def test_odd_but_valid_encodings_load(name):
    document = parse_file(name)
    vm = document.root.find("vm")
    assert document.loc(vm) == (Loc(7, 3) if name == "crlf.xml"
                                else Loc(3, 3))


@pytest.mark.parametrize("bom, codec", [
    (b"", "utf-8"), (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"),
], ids=["none", "utf8", "utf16le", "utf16be"])
def test_a_byte_order_mark_is_not_a_column(bom, codec):
    document = parse_bytes(
        bom + "<acrn-config><vm>x</vm>\n<hv/></acrn-config>".encode(codec))
    root = document.root
    assert document.loc(root) == Loc(1, 1)
    assert document.loc(root[0]) == Loc(1, 14)
    assert document.text_loc(root[0]) == Loc(1, 18)
    assert document.loc(root[1]) == Loc(2, 1)


def test_latin1_text_is_decoded():
    document = parse_file("latin1.xml")
    assert document.root.findtext("vm/name") == "r\u00e9gion"


def test_crlf_positions_and_comment_target():
    document = parse_file("crlf.xml")
    root = document.root
    vm = root.find("vm")
    assert document.loc(root) == Loc(2, 1)
    assert document.loc(root.find("hv/FEATURES")) == Loc(4, 5)
    assert document.loc(vm) == Loc(7, 3)
    assert document.text_loc(vm.find("name")) == Loc(8, 11)
    assert document.pos(vm).end_line == 9
    (comment,) = document.comments
    assert comment.text == " acrn-shm: ignore ISM201 "
    assert comment.loc == Loc(6, 3)
    assert comment.next_element is vm


def test_too_big_is_refused(tmp_path):
    big = tmp_path / "big.xml"
    with open(big, "wb") as stream:
        stream.write(b"<acrn-config>")
        stream.write(b" " * MAX_BYTES)
        stream.write(b"</acrn-config>")
    with pytest.raises(InputError) as caught:
        parse_file(str(big))
    assert str(caught.value) == (
        f"{big}: file is {MAX_BYTES + 27} bytes; the limit is {MAX_BYTES} "
        f"bytes")


def test_deep_nesting_is_refused_quickly():
    data = b"<acrn-config>" + b"<a>" * 10_000 + b"</a>" * 10_000 + \
        b"</acrn-config>"
    start = time.perf_counter()
    with pytest.raises(InputError) as caught:
        parse_bytes(data, "deep.xml")
    assert time.perf_counter() - start < 1.0
    assert str(caught.value).startswith("deep.xml:1:")
    assert "Excessive depth" in str(caught.value)


@pytest.mark.parametrize("data, message", [
    (b"", "empty.xml: file is empty"),
    (b"  \n", "empty.xml: file is empty"),
    (b"<acrn-config>", "empty.xml:1:14: not well-formed XML: Premature end "
     "of data in tag acrn-config line 1"),
    (b"just text", "empty.xml:1:1: not well-formed XML: Start tag expected,"
     " '<' not found"),
])
def test_empty_and_truncated(data, message):
    with pytest.raises(InputError) as caught:
        parse_bytes(data, "empty.xml")
    assert str(caught.value) == message


def test_missing_file_and_folder():
    with pytest.raises(InputError) as caught:
        parse_file("nothing_here.xml")
    assert str(caught.value) == "nothing_here.xml: no such file"
    with pytest.raises(InputError) as caught:
        parse_file(".")
    assert str(caught.value) == ".: is a folder, not a file"


@pytest.mark.parametrize("data, message", [
    (b"<scenario/>", "x.xml:1:1: root element is <scenario>; expected "
     "<acrn-config> (an ACRN board, scenario or launch XML)"),
    (b"<acrn-config><foo/></acrn-config>", "x.xml:1:1: <acrn-config> holds "
     "no <hv> or <vm> (scenario), no <user_vm> (launch XML) and no "
     "<BIOS_INFO>/<PCI_DEVICE> (board)"),
])
def test_unrecognised_documents(tmp_path, data, message):
    path = tmp_path / "x.xml"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        load(str(path))
    assert str(caught.value) == message.replace("x.xml", str(path))


def test_element_and_text_positions_in_a_real_scenario(acrn_data):
    path = acrn_data / "v3.3" / "whl-ipc-i5" / "hybrid_rt.xml"
    document = parse_file(str(path))
    region = document.root.find("hv/FEATURES/IVSHMEM/IVSHMEM_REGION")
    assert document.loc(region) == Loc(28, 9)
    assert document.text_loc(region.find("NAME")) == Loc(29, 17)
    assert document.pos(region).end_line == 42
    lines = path.read_bytes().splitlines()
    for element in document.root.iter(etree.Element):
        loc = document.loc(element)
        line = lines[loc.line - 1]
        assert line[loc.column - 1:].startswith(b"<" + element.tag.encode())


@pytest.mark.parametrize("encoding", ["Shift_JIS", "EUC-JP", "GB2312",
                                      "Big5", "UTF-7"])
def test_multi_byte_encoding_is_refused_not_a_crash(encoding):
    # Found by fuzzing: lxml reads these, but the expat pass that finds
    # positions raised ValueError ("internal error" on the command line).
    data = (f'<?xml version="1.0" encoding="{encoding}"?>\n'
            "<acrn-config/>\n").encode()
    document = parse_bytes(data, "x.xml")
    with pytest.raises(InputError) as caught:
        document.loc(document.root)
    assert str(caught.value) == ("x.xml:1:1: unsupported encoding: "
                                 "multi-byte encodings are not supported")


# --- The root's name, found without parsing (lint --skip-other-xml) -------

@pytest.mark.parametrize("data, name", [
    (b"<project/>", "project"),
    (b"\xef\xbb\xbf<?xml version='1.0'?>\n<!-- a -> b -->\n<acrn-config>",
     "acrn-config"),
    # A DTD bomb is stepped over, never expanded.
    ((Path(__file__).parent / "test_xmlio" / "billion_laughs.xml")
     .read_bytes(), "acrn-config"),
    # Quoted literals, comments and PIs in the internal subset may hold
    # the characters that end it.
    (b"<!DOCTYPE r SYSTEM 'a>b' [<!ENTITY x \"]>\"><!-- ]> --><?p ]>?>]>"
     b"\n<r a='>'>", "r"),
    (b"<acrn-config xmlns='urn:x'/>", "{}acrn-config"),
    (b"<a:acrn-config xmlns:a='urn:x'/>", "a:acrn-config"),
    ("<?xml version='1.0' encoding='utf-16'?><board/>".encode("utf-16"),
     "board"),
    # Cut short before a whole start tag: unknown.
    (b"<acrn-config", None), (b"", None), (b"<!DOCTYPE r [", None),
    (b"<!-- never closed", None), (b"text", None),
])
def test_root_name_reads_only_the_prolog(data, name):
    assert root_name(data) == name


_SUBSET_PIECES = st.sampled_from([
    "<!ENTITY a \"&b;&b;&b;&b;&b;&b;&b;&b;\">", "<!ENTITY b 'x]>'>",
    "<!-- ]> ' \" -->", "<?pi ]> ' ?>", "<!ELEMENT r ANY>", "%p;", "\n",
    "<!ATTLIST r a CDATA \"]>\">",
])


@given(st.lists(_SUBSET_PIECES, max_size=30),
       st.sampled_from(["acrn-config", "project", "lolz"]))
def test_root_name_steps_over_any_internal_subset(pieces, name):
    data = (f"<?xml version='1.0'?>\n<!DOCTYPE {name} [" + "".join(pieces)
            + f"]>\n<{name}>&a;</{name}>\n").encode()
    assert root_name(data) == name


@given(st.text())
def test_escape_is_saxutils_escape(text):
    from xml.sax.saxutils import escape as sax_escape

    assert escape(text) == sax_escape(text)
