"""The fast validity walk of ACRN's ``config.xsd`` (``acrn_structure.py``)
against xmlschema, its oracle.

The walk may call a valid scenario "maybe invalid" (xmlschema then
decides, at the old cost), never an invalid one valid. So: on every
v3.3 scenario of ``../shared/acrn-data`` the walk says valid (else the
fast path would never be taken), on seeded random mutations of them
(values, elements dropped, repeated, moved, renamed, given text,
children or attributes) the walk never says valid where xmlschema finds
an error, and ``lint --acrn-schema``'s findings with the walk equal
those with xmlschema alone, on each scenario and on the mutated copy
``test_acrn_schema`` compares with ACRN's validator. The synthetic tree
of ``tests/test_acrn_schema`` covers the constructs the model refuses.
"""

from __future__ import annotations

import copy
import os
import random
import shutil
from pathlib import Path

import pytest
from conftest import ACRN_DATA
from lxml import etree

from acrn_ivshmem.io.xmlio import parse_file
from acrn_ivshmem.lint import acrn_schema, acrn_structure
from acrn_ivshmem.lint.structure import UnsupportedSchema
from test_acrn_schema import mutated

# Read at import: the autouse fixture clears ACRN* variables per test.
ACRN_SRC = os.environ.get("ACRN_SRC")
TREE = Path(__file__).parent / "test_acrn_schema" / "tree"

real_tree = pytest.mark.skipif(
    not ACRN_SRC, reason="set ACRN_SRC to an ACRN v3 source tree to "
    "compare the walk with xmlschema on ACRN's own config.xsd")


def _scenarios() -> list[Path]:
    folder = ACRN_DATA / "v3.3"
    if not folder.is_dir():
        return []
    return [scenario for board in sorted(folder.iterdir()) if board.is_dir()
            for scenario in sorted(board.glob("*.xml"))
            if scenario.stem != board.name and "launch" not in scenario.name]


@pytest.fixture(scope="module")
def schemas():
    """(built, xmlschema schema, split XSD tree) of ACRN_SRC, uncached."""
    built = acrn_schema.built(ACRN_SRC, False)
    assert built.model is not None, "the walk should model ACRN v3.3"
    return (built, acrn_schema.syntax_schema(ACRN_SRC, False),
            etree.fromstring(built.xsd).getroottree())


def _populated(root, xsd):
    # What both checks see: ACRN's copy, given its default values.
    document = type("Document", (), {"root": root})()
    copied, _ = acrn_schema._copy(document)
    acrn_schema._Populator(xsd).run(copied)
    return copied


def _verdicts(schemas, root) -> tuple[bool, list]:
    built, schema, xsd = schemas
    copied = _populated(root, xsd)
    errors = [(e.path, e.reason) for e in schema.iter_errors(
        copy.deepcopy(copied).getroottree())]
    return acrn_structure.is_valid(built.model, copied), errors


#: Values a user might write, valid somewhere and not elsewhere.
VALUES = ["", "0", "1", "-1", "+1", "01", " 2", "2 ", "4", "512", "3",
          "65535", "99999999999", "0x1F", "0X10", "0x", "0xg", "y", "n",
          "Y", "a_b", "a-b", "a b", "é", "x" * 30, "ttyS0", "/dev/ttyS1",
          "None", "SERVICE_VM", "RTVM", "00:0a.0", "0:1f.7", "release",
          "\n", "Performance"]


def _mutate(root, rng: random.Random) -> str:
    """One random change to ``root`` (in place); what it was."""
    elements = [e for e in root.iter() if e is not root]
    node = rng.choice(elements)
    parent = node.getparent()
    leaves = [e for e in elements if not len(e)]
    kind = rng.choice(["value", "value", "value", "drop", "repeat", "move",
                       "rename", "text", "child", "attribute", "comment",
                       "load_order"])
    if kind == "value":
        leaf = rng.choice(leaves)
        leaf.text = rng.choice(VALUES + [e.text for e in leaves if e.text])
    elif kind == "drop":
        parent.remove(node)
    elif kind == "repeat":
        node.addnext(copy.deepcopy(node))
    elif kind == "move":
        parent.append(node)
    elif kind == "rename":
        node.tag = rng.choice(elements).tag
    elif kind == "text":
        node.text = rng.choice(["x", "  ", "\n"])
    elif kind == "child":
        etree.SubElement(rng.choice(leaves), rng.choice(elements).tag)
    elif kind == "attribute":
        name = rng.choice(["id", "board", "x",
                           "{http://www.w3.org/2001/XMLSchema-instance}nil"])
        node.set(name, rng.choice(["0", "true", "a"]))
    elif kind == "comment":
        node.append(etree.Comment(" note "))
    else:
        for found in root.iter("load_order"):
            found.text = rng.choice(["SERVICE_VM", "PRE_LAUNCHED_VM",
                                     "POST_LAUNCHED_VM", "OTHER"])
            break
    return kind


@real_tree
@pytest.mark.parametrize("path", _scenarios(), ids=lambda p: (
    f"{p.parent.name}/{p.name}"))
def test_the_walk_is_never_looser_than_xmlschema(path, schemas):
    root = etree.parse(str(path)).getroot()
    valid, errors = _verdicts(schemas, root)
    assert errors == [] and valid, "a shipped scenario takes the fast path"
    rng = random.Random(path.name)
    false_alarms = []
    for _ in range(12):
        changed = copy.deepcopy(root)
        kinds = [_mutate(changed, rng) for _ in range(rng.randint(1, 2))]
        valid, errors = _verdicts(schemas, changed)
        assert not (valid and errors), (kinds, errors)
        if not valid and not errors:
            false_alarms.append(kinds)
    # Stricter is allowed, but these seeded changes never need it.
    assert false_alarms == []


@real_tree
@pytest.mark.parametrize("kind", ["shipped", "mutated"])
@pytest.mark.parametrize("path", _scenarios(), ids=lambda p: (
    f"{p.parent.name}/{p.name}"))
def test_findings_with_the_walk_equal_xmlschemas(path, kind, tmp_path,
                                                 monkeypatch):
    board_path = path.parent / f"{path.parent.name}.xml"
    scenario = tmp_path / path.name
    data = path.read_bytes()
    scenario.write_bytes(mutated(data) if kind == "mutated" else data)
    board = parse_file(str(board_path))
    fast = acrn_schema.check(ACRN_SRC, parse_file(str(scenario)), board,
                             use_cache=False)
    monkeypatch.setattr(acrn_schema, "_certainly_valid", lambda *a: False)
    slow = acrn_schema.check(ACRN_SRC, parse_file(str(scenario)), board,
                             use_cache=False)
    assert fast == slow
    assert bool([f for f in fast if f.code == "ISM901"]) == (
        kind == "mutated")


@real_tree
def test_patterns_match_what_xmlschema_matches(schemas):
    # Each named simple type of ACRN's schema, on every value of the
    # v3.3 scenarios and the values above: never looser than xmlschema,
    # and as strict on the values the scenarios hold.
    built, schema, _ = schemas
    walk = acrn_structure._Walk(built.model, "acrn-config")
    shipped = {node.text or "" for path in _scenarios()
               for node in etree.parse(str(path)).iter() if not len(node)}
    for name in built.model.simple:
        if name.startswith("#"):
            continue
        for value in sorted(shipped | set(VALUES)):
            if walk.value(name, value):
                assert schema.types[name].is_valid(value), (name, value)


def test_the_synthetic_tree_is_modelled():
    built = acrn_schema._build(str(TREE / acrn_schema.SCHEMA_DIR))
    assert built.model is not None
    # Its <hv> has an xs:assert: the walk leaves it to xmlschema.
    root = etree.fromstring(b"<acrn-config><hv/></acrn-config>")
    assert not acrn_structure.is_valid(built.model, root)


SCHEMA = ('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">{}'
          '<xs:element name="r" type="T"/></xs:schema>')


@pytest.mark.parametrize("body", [
    '<xs:complexType name="T"><xs:choice><xs:element name="a"/>'
    '</xs:choice></xs:complexType>',
    '<xs:complexType name="T"><xs:sequence><xs:any/></xs:sequence>'
    '</xs:complexType>',
    '<xs:complexType name="T" mixed="true"/>',
    '<xs:simpleType name="T"><xs:restriction base="xs:decimal"/>'
    '</xs:simpleType>',
    '<xs:simpleType name="T"><xs:restriction base="xs:string">'
    '<xs:pattern value="\\p{L}+"/></xs:restriction></xs:simpleType>',
    '<xs:simpleType name="T"><xs:restriction base="xs:string">'
    '<xs:pattern value="[^a]"/></xs:restriction></xs:simpleType>',
    '<xs:simpleType name="T"><xs:restriction base="xs:string">'
    '<xs:maxLength value="3"/></xs:restriction></xs:simpleType>',
    '<xs:complexType name="T"><xs:all><xs:element name="a" '
    'fixed="1"/></xs:all></xs:complexType>',
])
def test_constructs_outside_the_model_are_refused(body):
    with pytest.raises(UnsupportedSchema):
        acrn_structure.describe(etree.fromstring(SCHEMA.format(body)))


@pytest.mark.parametrize(("pattern", "value", "matches"), [
    ("\\w{1,3}", "a_1", True),
    ("\\w{1,3}", "a-1", False),
    ("\\w", "é", False),  # xmlschema takes it; the walk asks xmlschema
    ("[a-z\\-]+", "a-b", True),
    ("a.c", "a\rc", False),
    ("a$", "a$", True),  # no anchors in XSD
    ("[*]{0}", "", True),
    ("0[Xx][0-9A-Fa-f]+|0", "0x1F", True),
    ("0[Xx][0-9A-Fa-f]+|0", "00", False),
])
def test_patterns_are_translated_to_a_subset(pattern, value, matches):
    import re

    assert bool(re.fullmatch(acrn_structure._pattern(pattern),
                             value)) == matches


def test_a_tree_the_model_refuses_is_checked_by_xmlschema(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(TREE, tree)
    types = tree / acrn_schema.SCHEMA_DIR / "types.xsd"
    types.write_text(types.read_text(encoding="utf-8").replace(
        "<xs:restriction base=\"xs:string\">",
        "<xs:restriction base=\"xs:normalizedString\">", 1),
        encoding="utf-8")
    folder = TREE.parent
    built = acrn_schema._build(str(tree / acrn_schema.SCHEMA_DIR))
    assert built.model is None
    found = [acrn_schema.check(str(where), parse_file(str(
        folder / "broken.xml")), parse_file(str(folder / "board.xml")),
        use_cache=False) for where in (tree, TREE)]
    assert found[0] == found[1]
    assert [f.code for f in found[0]].count("ISM901") == 3


@pytest.mark.parametrize("xml", [
    "<vm><load_order>SERVICE_VM</load_order></vm>",
    "<vm><os><load_order>SERVICE_VM</load_order></os></vm>",
    "<vm><load_order>POST_LAUNCHED_VM</load_order>"
    "<load_order>SERVICE_VM</load_order></vm>",
    "<vm><load_order> SERVICE_VM</load_order></vm>",
    "<vm><load_order/></vm>",
    "<vm><load_order>SERVICE<!-- x -->_VM</load_order></vm>",
    "<vm><load_order>SERVICE<b>_VM</b></load_order></vm>",
    "<vm>SERVICE_VM</vm>",
])
@pytest.mark.parametrize("test", [
    ".//load_order = 'SERVICE_VM'", ".//load_order = ''",
    "load_order = 'SERVICE_VM'"])
def test_alternatives_are_read_as_elementpath_reads_them(xml, test):
    # The default values and the walk pick a VM's type without
    # elementpath where they can; never differently.
    from elementpath import XPath2Parser, XPathContext

    node = etree.fromstring(xml)
    expected = bool(XPath2Parser().parse(test).get_results(
        XPathContext(node)))
    holds = acrn_structure.alternative_holds(test, node)
    assert holds in (None, expected)
    assert acrn_schema._alternative_holds(test, node) == expected
    if test.startswith(".//") and "<b>" not in xml and "<!--" not in xml:
        assert holds is not None
