"""The fast structure check (``structure.py``) finds exactly what the
xmlschema-based check (``schema.check_structure_xsd``, the oracle)
finds: the same code, line, column and message, in the same order, on
every real ACRN XML, every test fixture, and mutated copies of them
(elements dropped, duplicated, renamed, moved, given children, bad
values), chosen by a seeded random walk and by hypothesis."""

from __future__ import annotations

import copy
import importlib.metadata
import itertools
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from acrn_ivshmem.lint import schema, structure
from acrn_ivshmem.errors import AcrnShmError
from acrn_ivshmem.model.loader import from_document, kind_of, schema_text
from acrn_ivshmem.io.xmlio import parse_bytes, parse_file

from conftest import ACRN_DATA, TESTS

XSI = "http://www.w3.org/2001/XMLSchema-instance"


def load(data: bytes, path: str = "x.xml"):
    """(document, kind) of ``data``, or None when acrn-shm refuses it
    before the structure check (not XML, not ACRN, too much to read)."""
    try:
        document = parse_bytes(data, path)
        kind = kind_of(document)
        from_document(document)
    except AcrnShmError:
        return None
    return document, kind


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, bytes]]:
    """(name, bytes) of every ACRN XML of ../shared/acrn-data and of the
    tests' data that acrn-shm reads."""
    found = []
    for path in sorted([*ACRN_DATA.rglob("*.xml"), *TESTS.rglob("*.xml")]):
        data = path.read_bytes()
        if load(data, str(path)) is not None:
            found.append((str(path.relative_to(TESTS.parent.parent)), data))
    return found


def assert_same(data: bytes, label: str = "") -> int:
    """Assert that both checks agree on ``data``; the number of findings
    (0 when acrn-shm refuses the file before checking it)."""
    loaded = load(data)
    if loaded is None:
        return 0
    document, kind = loaded
    fast = schema.check_structure(document, kind)
    oracle = schema.check_structure_xsd(document, kind, use_cache=True)
    assert (normalized(fast, document.root)
            == normalized(oracle, document.root)), (
        label, data.decode("utf-8", "replace"))
    return len(oracle)


_PREFIXED = re.compile(r"'([A-Za-z_][\w.-]*):([A-Za-z_][\w.-]*)'")
_SHOWN_VALUE = re.compile(r"(attribute [^=]+=)'((?:[^'\\]|\\.)*)'")
#: xmlschema 3.x shows an attribute's value as written (4.x: as read,
#: "-1" for "-\u0661"): under the lowest allowed xmlschema, shown values
#: are left out of the comparison.
OLD_XMLSCHEMA = int(importlib.metadata.version("xmlschema").split(".")[0]) < 4
_ESCAPE = r"(?:\\[ntr]|\\x[0-9a-f]{2}|\\u[0-9a-f]{4}|\s)"


def normalized(findings, root) -> list:
    """``findings`` with the two spellings xmlschema chooses by state it
    keeps between documents, not by the document, made one: a namespaced
    tag in a message as ``{uri}local`` (xmlschema writes ``prefix:local``
    or ``{uri}local`` depending on the namespace maps of the documents it
    saw before), and a shown attribute value without the Unicode blanks
    around it (xmlschema 3.3 shows a newline there where 4.x shows
    nothing; U+0085 too, in one CI run of 4.3). acrn-shm's own message
    is 4.x's whatever xmlschema is installed: lint no longer uses it."""
    prefixes = {prefix: uri for element in root.iter()
                for prefix, uri in (element.nsmap or {}).items() if prefix}

    def clark(match):
        uri = prefixes.get(match.group(1))
        return f"'{{{uri}}}{match.group(2)}'" if uri else match.group(0)

    def unblank(match):
        if OLD_XMLSCHEMA:
            return f"{match.group(1)}'...'"
        value = re.sub(rf"^(?:{_ESCAPE})+|(?:{_ESCAPE})+$", "",
                       match.group(2))
        return f"{match.group(1)}'{value}'"

    return [(finding.loc, _SHOWN_VALUE.sub(
        unblank, _PREFIXED.sub(clark, finding.message)), finding.hint)
        for finding in findings]


def test_every_real_file_and_fixture(corpus):
    kinds = set()
    findings = 0
    for name, data in corpus:
        findings += assert_same(data, name)
        kinds.add(load(data)[1])
    assert kinds == {"board", "launch", "legacy", "v3"}
    assert len(corpus) > 200 and findings >= 5


# --- Mutations -------------------------------------------------------------

#: Names a mutation gives an element: declared ones (in the right place
#: or not), undeclared ones, namespaced ones.
NAMES = ("NAME", "PROVIDED_BY", "IVSHMEM_SIZE", "IVSHMEM_REGION_ID",
         "IVSHMEM_VMS", "IVSHMEM_VM", "VM_NAME", "VBDF", "IVSHMEM_REGION",
         "IVSHMEM", "IVSHMEM_ENABLED", "FEATURES", "hv", "vm", "name",
         "load_order", "vm_type", "vuart_connections", "vuart_connection",
         "type", "endpoint", "vm_name", "vbdf", "bus", "device", "devices",
         "PCI_DEVICE", "user_vm", "uos", "shm_regions", "shm_region", "x",
         "{urn:m}q", "{urn:m}NAME")
TEXTS = ("", " ", "x", "y", " n ", "Y", "2", "-1", "SERVICE_VM",
         " SERVICE_VM", "POST_STD_VM", "pci", "legacy", "a\u00a0b")
ATTRIBUTES = ("id", "board", "type", "address", "q", "{urn:m}id",
              f"{{{XSI}}}nil", f"{{{XSI}}}foo", f"{{{XSI}}}schemaLocation")
VALUES = ("", " ", "0", " 7 ", "+3", "-2", "-0", "1_0", "1.5", "x",
          "0x1f", "0X1F", "0x", " 0x1", "\u0663", "1 2")


def mutate(root: etree._Element, rng: random.Random, steps: int) -> None:
    """Apply ``steps`` random mutations to the tree under ``root``."""
    for _ in range(steps):
        elements = list(root.iter(etree.Element))
        element = rng.choice(elements)
        parent = element.getparent()
        operation = rng.randrange(9)
        if operation == 0 and parent is not None:
            parent.remove(element)
        elif operation == 1 and parent is not None:
            parent.insert(parent.index(element) + rng.randrange(2),
                          copy.deepcopy(element))
        elif operation == 2:
            element.tag = rng.choice(NAMES)
        elif operation == 3 and parent is not None and len(parent) > 1:
            parent.remove(element)
            parent.insert(rng.randrange(len(parent) + 1), element)
        elif operation == 4:
            element.text = rng.choice(TEXTS)
        elif operation == 5:
            element.set(rng.choice(ATTRIBUTES), rng.choice(VALUES))
        elif operation == 6:
            etree.SubElement(element, rng.choice(NAMES)).text = "1"
        elif operation == 7 and len(element):
            element[rng.randrange(len(element))].tail = rng.choice(
                ("x", "\n  ", "\u2003"))
        elif operation == 8 and element.attrib:
            del element.attrib[rng.choice(list(element.attrib))]


def test_mutated_copies_of_every_file(corpus):
    rng = random.Random(16)
    compared = findings = 0
    for name, data in corpus:
        for number in range(8):
            root = etree.fromstring(data)
            mutate(root, rng, 1 + number % 3)
            count = assert_same(etree.tostring(root), f"{name} #{number}")
            compared += load(etree.tostring(root)) is not None
            findings += count
    assert compared > 1000 and findings > 300


@pytest.fixture(scope="module")
def samples(corpus) -> list[bytes]:
    """One real file of each kind, and the smallest fixture of each."""
    by_kind: dict[str, list[bytes]] = {}
    for name, data in corpus:
        by_kind.setdefault(load(data)[1], []).append(data)
    return [data for kind in sorted(by_kind)
            for data in (by_kind[kind][0], min(by_kind[kind], key=len))]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hypothesis_mutations(samples, data):
    root = etree.fromstring(data.draw(st.sampled_from(samples)))
    seed = data.draw(st.integers(0, 2**32 - 1))
    mutate(root, random.Random(seed), data.draw(st.integers(1, 6)))
    assert_same(etree.tostring(root))


@settings(max_examples=300, deadline=None)
@given(value=st.text(st.characters(codec="utf-8",
                                   exclude_categories=("Cs", "Cc")),
                     max_size=12)
       | st.from_regex(r"\s*[+-]?[0-9\u0660-\u0669_]{0,5}\s*",
                       fullmatch=True),
       where=st.sampled_from(["id", "address", "board", "load_order",
                              "type", "IVSHMEM_ENABLED", "vm_type"]))
def test_hypothesis_values(value, where):
    # Each value where the XSDs restrict one: an integer, a pattern, a
    # length, enumerations of xs:string and of xs:token.
    try:
        root = _with_value(value, where)
    except ValueError:  # not an XML character
        assume(False)
    assert_same(etree.tostring(root))


def _with_value(value: str, where: str) -> etree._Element:
    if where in ("id", "load_order", "type"):
        root = etree.fromstring(
            b"<acrn-config><hv><vuart_connections><vuart_connection>"
            b"<type/></vuart_connection></vuart_connections></hv>"
            b"<vm id='0'><load_order/></vm></acrn-config>")
        if where == "id":
            root.find("vm").set("id", value)
        else:
            root.find(f".//{where}").text = value
    elif where in ("IVSHMEM_ENABLED", "vm_type"):
        root = etree.fromstring(
            b"<acrn-config><hv><FEATURES><IVSHMEM><IVSHMEM_ENABLED/>"
            b"</IVSHMEM></FEATURES></hv><vm id='0'><vm_type>SOS_VM"
            b"</vm_type></vm></acrn-config>")
        root.find(f".//{where}").text = value
    else:
        root = etree.fromstring(
            b"<acrn-config board='b'><devices><bus type='p'/></devices>"
            b"</acrn-config>")
        (root if where == "board" else root.find(".//bus")).set(
            where, value)
    return root


# --- Content models, child sequence by child sequence ----------------------

def closed_models():
    """(kind, path to the parent, names) of every closed content model
    of acrn-shm's XSDs: its declared children and one undeclared."""
    return [
        ("v3", "hv/FEATURES/IVSHMEM/IVSHMEM_REGION",
         ("NAME", "PROVIDED_BY", "IVSHMEM_SIZE", "IVSHMEM_VMS", "x")),
        ("v3", "hv/FEATURES/IVSHMEM/IVSHMEM_REGION/IVSHMEM_VMS/IVSHMEM_VM",
         ("VM_NAME", "VBDF", "x")),
        ("v3", "hv/FEATURES/IVSHMEM", ("IVSHMEM_REGION", "x")),
        ("legacy", "hv/FEATURES/IVSHMEM",
         ("IVSHMEM_ENABLED", "IVSHMEM_REGION", "x")),
        ("launch", "user_vm/shm_regions", ("shm_region", "x")),
    ]


@pytest.mark.parametrize("kind, path, names", closed_models(),
                         ids=[f"{m[0]}-{m[1].rsplit('/', 1)[-1]}"
                              for m in closed_models()])
def test_every_short_child_sequence(kind, path, names):
    top = {"v3": "<vm id='0'><load_order>SERVICE_VM</load_order></vm>",
           "legacy": "<vm id='0'><vm_type>SOS_VM</vm_type></vm>",
           "launch": ""}[kind]
    longest = 4 if len(names) <= 3 else 3
    for length in range(longest + 1):
        for sequence in itertools.product(names, repeat=length):
            root = etree.fromstring(f"<acrn-config>{top}</acrn-config>")
            parent = root
            for step in path.split("/"):
                parent = etree.SubElement(parent, step)
                if step == "user_vm":
                    parent.set("id", "1")
            for name in sequence:
                etree.SubElement(parent, name).text = "1"
            assert_same(etree.tostring(root), " ".join(sequence))


# --- The description ---------------------------------------------------------

def test_the_description_is_read_from_the_xsds():
    described = structure.description("v3")
    region = described.types["IvshmemRegion"]
    assert (region.model, region.open) == ("all", False)
    assert [(p.name, p.least, p.most) for p in region.particles] == [
        ("NAME", 1, 1), ("PROVIDED_BY", 0, 1), ("IVSHMEM_SIZE", 0, 1),
        ("IVSHMEM_REGION_ID", 0, 1), ("IVSHMEM_VMS", 1, 1)]
    vm = described.types["Vm"]
    assert vm.open and [(a.name, a.type.base, a.required)
                        for a in vm.attributes] == [
        ("id", "nonNegativeInteger", False)]
    assert described.types["LoadOrder"].simple.enumeration == (
        "PRE_LAUNCHED_VM", "SERVICE_VM", "POST_LAUNCHED_VM")
    for kind in ("legacy", "launch", "board"):
        assert structure.describe(schema_text(kind)) == (
            structure.description(kind))


XS = 'xmlns:xs="http://www.w3.org/2001/XMLSchema"'


@pytest.mark.parametrize("body, problem", [
    ('<xs:element name="r"><xs:complexType><xs:choice/></xs:complexType>'
     '</xs:element>', "a complex type without xs:all or xs:sequence"),
    ('<xs:element name="r"><xs:complexType><xs:sequence><xs:element '
     'name="a" type="xs:string" minOccurs="0"/><xs:element name="b" '
     'type="xs:string"/></xs:sequence></xs:complexType></xs:element>',
     "a sequence with a required element after the first"),
    ('<xs:element name="r"><xs:complexType><xs:sequence><xs:element '
     'name="a" type="xs:string" maxOccurs="2"/></xs:sequence>'
     '</xs:complexType></xs:element>', "occurrences of 'a'"),
    ('<xs:simpleType name="S"><xs:restriction base="xs:string">'
     '<xs:maxLength value="3"/></xs:restriction></xs:simpleType>',
     "facet <xs:maxLength> '3'"),
    ('<xs:simpleType name="S"><xs:restriction base="xs:string">'
     '<xs:pattern value="\\d{2}"/></xs:restriction></xs:simpleType>',
     "facet <xs:pattern> '\\\\d{2}'"),
    ('<xs:element name="r"><xs:complexType><xs:all><xs:element name="a" '
     'type="xs:string"/></xs:all><xs:attribute name="i" type="xs:int"/>'
     '</xs:complexType></xs:element>', "attribute 'i'"),
    ('<xs:group name="g"/>', "top-level <group>"),
])
def test_constructs_the_check_does_not_model_are_refused(body, problem):
    with pytest.raises(structure.UnsupportedSchema) as caught:
        structure.describe(f"<xs:schema {XS}>{body}</xs:schema>".encode())
    assert str(caught.value) == problem


def test_lint_imports_no_xmlschema(tmp_path):
    pair = ACRN_DATA / "v3.3" / "whl-ipc-i5"
    code = (
        "import sys\n"
        "from acrn_ivshmem.cli import main\n"
        f"sys.argv = ['acrn-shm', 'lint', '--board', "
        f"{str(pair / 'whl-ipc-i5.xml')!r}, {str(pair / 'hybrid_rt.xml')!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    status = exc.code\n"
        "loaded = sorted(name for name in sys.modules\n"
        "                if name.split('.')[0] in ('xmlschema', 'elementpath'))\n"
        "print(status, loaded)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, cwd=tmp_path, timeout=60, check=True)
    assert done.stdout.splitlines()[-1] == "0 []"
