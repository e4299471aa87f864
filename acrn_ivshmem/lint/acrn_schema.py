"""ACRN's own scenario checks, from an ACRN source tree (ISM901-ISM904).

``lint --acrn-schema`` checks a scenario the way ACRN's
``scenario_config/validator.py`` of the named tree does, reading that
tree's ``misc/config_tools/schema/``: the syntax against ``config.xsd``
(with its XIncludes, split by VM type as ACRN does, on a copy of the
scenario given ACRN's default values) and the data checks, the
``xs:assert`` rules of ``datachecks.xsd``, over the scenario and its
board. Each finding is placed at the line and column of the element in
the user's own file; ACRN's XPath stays available in
:attr:`AcrnFinding.xpath`. No schema file is copied into acrn-shm.

The syntax check first walks a compact description of the split
``config.xsd`` (:mod:`.acrn_structure`), which tells a valid scenario
valid in milliseconds; only where it cannot does xmlschema build the
schema and check (and word every finding). Both the description and
xmlschema's schema are cached like the structure check's (pickled, only
loaded from the user's own files), keyed by the bytes of every ``.xsd``
file under the tree's schema folder; results are cached by those and
the scenario's and board's bytes, and each data check's outcome by the
part of the tree it can read (:func:`_names`), so that an edit re-runs
only the checks that read what changed.
"""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
import json
import os
import re
import sys
from typing import NamedTuple

from lxml import etree

from . import schema as structure
from ..errors import SourceTreeError, UsageError, located
from ..diagnostics import Loc
from ..io.xmlio import Document

_XS = "http://www.w3.org/2001/XMLSchema"
_ACRN = "https://projectacrn.org"
_NS = {"xs": _XS}
_CACHE_FORMAT = "acrn-3"
#: Where an ACRN tree keeps its schemas.
SCHEMA_DIR = os.path.join("misc", "config_tools", "schema")
#: ACRN's severities and the codes they are reported with.
CODES = {"critical": "ISM901", "error": "ISM902", "warning": "ISM903"}
SKIPPED_CODE = "ISM904"
_VM_KINDS = (("pre-launched", "PreLaunched", "PRE_LAUNCHED_VM"),
             ("service-vm", "Service", "SERVICE_VM"),
             ("post-launched", "PostLaunched", "POST_LAUNCHED_VM"))


class AcrnFinding(NamedTuple):
    """One finding of ACRN's checks: the ``code``, ACRN's ``severity``
    (critical, error, warning), ACRN's ``xpath`` of the element (as
    ACRN's validator prints it), ``message`` (ACRN's text), and where:
    ``in_board`` (the element is the board's) and ``loc``."""

    code: str
    severity: str
    xpath: str
    message: str
    loc: Loc
    in_board: bool = False


def tree_path(acrn_src: str | None) -> str:
    """The ACRN tree to read: ``acrn_src``, else ``$ACRN_SRC``.

    Raises :class:`UsageError` when neither names one, and
    :class:`SourceTreeError` when it is no ACRN tree with schemas.
    """
    acrn_src = acrn_src or os.environ.get("ACRN_SRC")
    if not acrn_src:
        raise UsageError("--acrn-schema needs an ACRN source tree: pass "
                         "--acrn-src DIR or set ACRN_SRC")
    if not os.path.isdir(acrn_src):
        raise SourceTreeError(located(acrn_src, None, None,
                                      "no such folder"))
    for name in ("config.xsd", "datachecks.xsd"):
        if not os.path.isfile(os.path.join(acrn_src, SCHEMA_DIR, name)):
            raise SourceTreeError(located(
                acrn_src, None, None,
                f"not an ACRN v3 source tree (no {SCHEMA_DIR}/{name})"))
    return acrn_src


def require_xmlschema() -> None:
    """Raise :class:`UsageError` when xmlschema or elementpath is missing."""
    import importlib.util

    for name in ("xmlschema", "elementpath"):
        if importlib.util.find_spec(name) is None:
            raise UsageError(f"--acrn-schema needs the Python package "
                             f"{name}: pip install {name}")


@functools.cache
def _tree_key(schema_dir: str) -> str:
    # Every .xsd file below the schema folder: its name and its bytes.
    digest = hashlib.sha256(_CACHE_FORMAT.encode())
    digest.update(structure._validator_stamp())
    digest.update(sys.version.encode())
    for folder, folders, files in os.walk(schema_dir):
        folders.sort()
        for name in sorted(files):
            if not name.endswith(".xsd"):
                continue
            path = os.path.join(folder, name)
            with open(path, "rb") as stream:
                data = stream.read()
            for part in (os.path.relpath(path, schema_dir).encode(), data):
                digest.update(len(part).to_bytes(8, "little"))
                digest.update(part)
    return digest.hexdigest()


def _read_xsd(path: str) -> etree._ElementTree:
    """An XSD of the tree with its XIncludes done, or SourceTreeError."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False,
                             no_network=True)
    try:
        tree = etree.parse(path, parser)
        tree.xinclude()
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        reason = re.sub(r", line \d+, column \d+$", "", exc.msg)
        raise SourceTreeError(located(
            path, line, column, f"cannot read this ACRN schema: {reason}")
        ) from None
    except (OSError, etree.XIncludeError) as exc:
        raise SourceTreeError(located(
            path, None, None, f"cannot read this ACRN schema: {exc}")
        ) from None
    return tree


# --- ACRN's schema split by VM type -------------------------------------

def _applies(node, indicator: str) -> bool:
    annotation = node.find("xs:annotation", _NS)
    if annotation is None:
        return True
    vms = annotation.get(f"{{{_ACRN}}}applicable-vms")
    return vms is None or indicator in vms


def _named_type(xsd, name: str):
    for kind in ("complexType", "simpleType"):
        for node in xsd.getroot().iter(f"{{{_XS}}}{kind}"):
            if node.get("name") == name:
                return node
    return None


def _slice_type(xsd, node, indicator, prefix, in_place=False,
                force_copy=False) -> list:
    """ACRN's slice of one type for one VM kind: the element
    declarations and enumeration values that do not apply to it are
    dropped. Returns the new global types to add (the copy of ``node``
    last, when it changed or ``force_copy``)."""
    new_nodes: list = []
    target = node if in_place else copy.deepcopy(node)
    if not in_place and node.get("name") is not None:
        target.set("name", prefix + node.get("name"))
    changed = False
    group = target.find("xs:all", _NS)
    if group is not None:
        changed = _slice_elements(xsd, group, indicator, prefix, new_nodes)
    restriction = target.find("xs:restriction", _NS)
    if restriction is not None:
        changed = False
        for value in restriction.findall("xs:enumeration", _NS):
            if not _applies(value, indicator):
                restriction.remove(value)
                changed = True
    if not in_place and (changed or force_copy):
        new_nodes.append(target)
    return new_nodes


def _slice_elements(xsd, group, indicator, prefix, new_nodes) -> bool:
    changed = False
    for element in group.findall("xs:element", _NS):
        if not _applies(element, indicator):
            group.remove(element)
            changed = True
            continue
        inline = element.find("xs:complexType", _NS)
        if inline is not None:
            found = _slice_type(xsd, inline, indicator, prefix,
                                in_place=True)
            if inline.find(f".//{{{_XS}}}element") is not None:
                new_nodes.extend(found)
            else:
                group.remove(element)
            continue
        type_name = element.get("type")
        if not type_name or _named_type(xsd, type_name) is None:
            continue
        if _named_type(xsd, prefix + type_name) is not None:
            element.set("type", prefix + type_name)
            changed = True
            continue
        found = _slice_type(xsd, _named_type(xsd, type_name), indicator,
                            prefix)
        if not found:
            continue
        last = found[-1]
        if (last.tag == f"{{{_XS}}}simpleType"
                or last.find(f".//{{{_XS}}}element") is not None):
            new_nodes.extend(found)
            element.set("type", prefix + type_name)
            changed = True
        else:
            group.remove(element)
    return changed


def _slice_by_vm_kind(xsd) -> None:
    vm_type = _named_type(xsd, "VMConfigType")
    if vm_type is None:
        return
    for indicator, prefix, _ in _VM_KINDS:
        for node in _slice_type(xsd, vm_type, indicator, prefix,
                                force_copy=True):
            xsd.getroot().append(node)
    config = _named_type(xsd, "ACRNConfigType")
    if config is None:
        return
    for element in config.iter(f"{{{_XS}}}element"):
        if element.get("name") != "vm":
            continue
        for alternative in element.iter(f"{{{_XS}}}alternative"):
            test = alternative.get("test") or ""
            for _, prefix, load_order in _VM_KINDS:
                if load_order in test:
                    alternative.set("type", prefix + "VMConfigType")
                    break


# --- ACRN's default values ----------------------------------------------

def _defaults(expression: str) -> list[str] | None:
    """The values of an ``acrn:defaults`` list, read without running it:
    only ``[hex(i) for i in range(...)]`` and ``[f'..{i:fmt}..' for i in
    range(...)]`` are understood (what ACRN's schemas hold); anything
    else gives None, as a failing expression does in ACRN."""
    try:
        tree = ast.parse(expression, mode="eval").body
        if not (isinstance(tree, ast.ListComp) and len(tree.generators) == 1):
            return None
        loop = tree.generators[0]
        call = loop.iter
        if (loop.ifs or not isinstance(loop.target, ast.Name)
                or not isinstance(call, ast.Call)
                or getattr(call.func, "id", None) != "range"
                or not all(isinstance(a, ast.Constant)
                           and type(a.value) is int for a in call.args)):
            return None
        name = loop.target.id
        numbers = range(*(a.value for a in call.args))
        if len(numbers) > 4096:
            return None
        return [_value(tree.elt, name, n) for n in numbers]
    except (SyntaxError, ValueError, TypeError):
        return None


def _value(node, name: str, number: int) -> str:
    if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "hex"
            and len(node.args) == 1
            and getattr(node.args[0], "id", None) == name):
        return hex(number)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for part in node.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                parts.append(part.value)
            elif (isinstance(part, ast.FormattedValue)
                  and getattr(part.value, "id", None) == name
                  and part.conversion == -1):
                spec = ""
                if part.format_spec is not None:
                    if not all(isinstance(p, ast.Constant)
                               for p in part.format_spec.values):
                        raise ValueError("computed format")
                    spec = "".join(p.value for p in part.format_spec.values)
                parts.append(format(number, spec))
            else:
                raise ValueError("unknown part")
        return "".join(parts)
    raise ValueError("unknown expression")


@functools.cache
def _alternative(test: str):
    # An xs:alternative's test, parsed once (as elementpath.select would
    # parse it for each element).
    from elementpath import XPath2Parser

    return XPath2Parser().parse(test)


def _alternative_holds(test: str, node) -> bool:
    from .acrn_structure import alternative_holds

    holds = alternative_holds(test, node)
    if holds is None:
        # Not the one form acrn_structure reads without elementpath.
        from elementpath import XPathContext

        holds = bool(_alternative(test).get_results(XPathContext(node)))
    return holds


class _Populator:
    """Adds ACRN's default values to a scenario, as ACRN's validator does
    before it checks the syntax: a missing required element that has a
    default value (or child elements) is added, an empty one gets its
    default value."""

    def __init__(self, xsd):
        self.xsd = xsd
        self.document = None
        self._types: dict = {}

    def run(self, root) -> None:
        self.document = root
        for node in self.xsd.getroot().iter(f"{{{_XS}}}element"):
            if node.get("name") == root.tag:
                self._node(node, root)
                break

    def _type(self, tag: str, declaration, xml_node):
        chosen = declaration
        if xml_node is not None:
            for alternative in declaration.findall("xs:alternative", _NS):
                if _alternative_holds(alternative.get("test"), xml_node):
                    chosen = alternative
                    break
        found = chosen.find(tag, _NS)
        if found is None and chosen.get("type"):
            key = (tag, chosen.get("type"))
            if key not in self._types:
                self._types[key] = next(
                    (n for n in self.xsd.getroot().iter(
                        f"{{{_XS}}}{tag[3:]}")
                     if n.get("name") == chosen.get("type")), None)
            found = self._types[key]
        return found

    def _complex(self, declaration, xml_node=None):
        return self._type("xs:complexType", declaration, xml_node)

    def _node(self, declaration, xml_node) -> None:
        complex_type = self._complex(declaration, xml_node)
        if complex_type is None:
            return
        sequence = complex_type.find("xs:sequence", _NS)
        if sequence is not None:
            self._sequence(sequence, xml_node)
        group = complex_type.find("xs:all", _NS)
        if group is not None:
            self._all(group, xml_node)

    def _sequence(self, sequence, xml_node) -> None:
        children = list(enumerate(list(xml_node)))
        for declaration in sequence.findall("xs:element", _NS):
            name = declaration.get("name")
            if not children or children[0][1].tag != name:
                if declaration.get("minOccurs") != "0":
                    # The original position, as ACRN inserts it.
                    index = children[0][0] if children else None
                    self._add(declaration, xml_node, index)
                continue
            while children and children[0][1].tag == name:
                self._visit(declaration, xml_node, children.pop(0)[1])

    def _all(self, group, xml_node) -> None:
        for declaration in group.findall("xs:element", _NS):
            name = declaration.get("name")
            if not name:
                continue
            found = xml_node.findall(name)
            if not found:
                if declaration.get("minOccurs") != "0":
                    self._add(declaration, xml_node, None)
                continue
            for child in found:
                self._visit(declaration, xml_node, child)

    def _visit(self, declaration, parent, child) -> None:
        if self._complex(declaration, child) is None and not child.text:
            value = self._default(declaration, parent)
            if value is not None:
                child.text = value
        self._node(declaration, child)

    def _add(self, declaration, parent, index) -> None:
        value = self._default(declaration, parent)
        if self._complex(declaration) is None and value is None:
            return
        node = parent.makeelement(declaration.get("name"), {})
        node.text = value
        if index is None:
            parent.append(node)
        else:
            parent.insert(index, node)
        self._node(declaration, node)

    def _default(self, declaration, parent) -> str | None:
        value = declaration.get("default")
        if value is not None:
            return value
        annotation = declaration.find("xs:annotation", _NS)
        if annotation is None:
            return None
        values = annotation.get(f"{{{_ACRN}}}defaults")
        among = annotation.get(f"{{{_ACRN}}}unique-among")
        if values is None or among is None:
            return None
        candidates = _defaults(values)
        if candidates is None:
            return None
        import elementpath

        try:
            taken = {str(v) for v in elementpath.select(
                self.document, among, variables={"parent": parent})}
        except Exception:  # noqa: BLE001 - ACRN gives no default then
            return None
        free = sorted(set(candidates) - taken)
        return free[0] if free else None


# --- The built schema and checks ----------------------------------------

class _Check(NamedTuple):
    test: str
    severity: str
    report_on: str
    text: str


class Built(NamedTuple):
    """What a tree's schemas give: the split XSD (bytes: for the default
    values, and for xmlschema), its :class:`~.acrn_structure.Model`
    (None when the split XSD uses a construct the model lacks), the
    data checks, the names each check's expressions hold and those of
    all of them (see :func:`_names`)."""

    xsd: bytes
    model: object
    checks: tuple[_Check, ...]
    names: tuple[frozenset[str] | None, ...]
    all_names: frozenset[str] | None


def _build(schema_dir: str) -> Built:
    from . import acrn_structure
    from .structure import UnsupportedSchema

    xsd = _read_xsd(os.path.join(schema_dir, "config.xsd"))
    _slice_by_vm_kind(xsd)
    try:
        model = acrn_structure.describe(xsd)
    except UnsupportedSchema:
        model = None
    checks = []
    datachecks = _read_xsd(os.path.join(schema_dir, "datachecks.xsd"))
    for node in datachecks.getroot().iter(f"{{{_XS}}}assert"):
        annotation = node.find("xs:annotation", _NS)
        text = ""
        severity, report_on = "error", ""
        if annotation is not None:
            severity = annotation.get(f"{{{_ACRN}}}severity") or "error"
            report_on = annotation.get(f"{{{_ACRN}}}report-on") or ""
            doc = annotation.find("xs:documentation", _NS)
            text = doc.text or "" if doc is not None else ""
        checks.append(_Check(node.get("test") or "true()", severity,
                             report_on, text))
    checks = tuple(checks)
    return Built(etree.tostring(xsd), model, checks,
                 tuple(_names((entry,)) for entry in checks),
                 _names(checks))


def _build_xmlschema(schema_dir: str, xsd: bytes):
    import xmlschema

    try:
        # From text: a schema built on lxml elements cannot be pickled.
        return xmlschema.XMLSchema11(
            etree.tostring(etree.fromstring(xsd), encoding="unicode"))
    except (xmlschema.XMLSchemaException, ValueError) as exc:
        raise SourceTreeError(located(
            os.path.join(schema_dir, "config.xsd"), None, None,
            f"xmlschema cannot build this ACRN schema: "
            f"{str(exc).splitlines()[0]}")) from None


@functools.cache
def built(acrn_src: str, use_cache: bool = True) -> Built:
    """The schemas of the tree at ``acrn_src``, built or from the cache."""
    schema_dir = os.path.join(acrn_src, SCHEMA_DIR)
    if not use_cache:
        return _build(schema_dir)
    return _cached_pickle(
        f"acrn-schema-{_tree_key(schema_dir)}.pickle", Built,
        lambda: _build(schema_dir))


@functools.cache
def syntax_schema(acrn_src: str, use_cache: bool = True):
    """The xmlschema schema of the tree's split ``config.xsd``, built or
    from the cache: the syntax check where :func:`built`'s model cannot
    tell a scenario valid (and the tests' oracle)."""
    import xmlschema

    schema_dir = os.path.join(acrn_src, SCHEMA_DIR)
    xsd = built(acrn_src, use_cache).xsd
    if not use_cache:
        return _build_xmlschema(schema_dir, xsd)
    return _cached_pickle(
        f"acrn-xmlschema-{_tree_key(schema_dir)}.pickle",
        xmlschema.XMLSchema11, lambda: _build_xmlschema(schema_dir, xsd))


def _cached_pickle(name: str, kind: type, make):
    """The object of type ``kind`` pickled in the cache folder as
    ``name`` (only loaded from the user's own files), else ``make()``,
    stored there."""
    import pickle

    path = os.path.join(structure.cache_dir(), name)
    loaded = structure._load_own_pickle(path)
    if isinstance(loaded, kind):
        return loaded
    result = make()
    try:
        data = pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - caching is only for speed
        return result
    structure._store_bytes(path, data)
    return result


@functools.cache
def _parser():
    from .acrn_xpath import AcrnXPathParser

    return AcrnXPathParser()


@functools.cache
def _compiled(test: str):
    return _parser().parse(test)


# --- Checking a scenario ------------------------------------------------

def _copy(document: Document) -> tuple:
    """A copy of the document's root without blank text between
    elements (as ACRN reads it), and a map from each copied node to its
    original."""
    root = copy.deepcopy(document.root)
    originals = dict(zip(root.iter(), document.root.iter()))
    for node in root.iter():
        if len(node) and node.text is not None and not node.text.strip():
            node.text = None
        if node.tail is not None and not node.tail.strip():
            node.tail = None
    return root, originals


def check(acrn_src: str, scenario: Document, board: Document | None,
          use_cache: bool = True) -> list[AcrnFinding]:
    """ACRN's syntax and data checks of ``scenario`` (with ``board``).

    Without a board only the syntax is checked (ACRN's data checks read
    the board). Raises :class:`SourceTreeError` for an unusable tree.
    """
    require_xmlschema()
    if os.environ.get("ACRN_SHM_NO_CACHE"):
        use_cache = False
    schema_dir = os.path.join(acrn_src, SCHEMA_DIR)
    key = result_path = None
    if use_cache:
        digest = hashlib.sha256(_tree_key(schema_dir).encode())
        for part in (scenario.data, board.data if board else b"-"):
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
        key = digest.hexdigest()
        result_path = os.path.join(structure.cache_dir(),
                                   f"acrn-result-{key}.json")
        try:
            with open(result_path, encoding="utf-8") as stream:
                return [AcrnFinding(code, severity, xpath, message,
                                    Loc(line, column), in_board)
                        for code, severity, xpath, message, line, column,
                        in_board in json.load(stream)]
        except (OSError, ValueError, TypeError):
            pass
    findings = _check(acrn_src, use_cache, scenario, board,
                      _tree_key(os.path.join(acrn_src, SCHEMA_DIR))
                      if use_cache else None)
    if result_path is not None:
        structure._store(result_path, [
            [f.code, f.severity, f.xpath, f.message, f.loc.line,
             f.loc.column, f.in_board] for f in findings])
    return findings


class _Where:
    """Finds the source position of copied elements."""

    def __init__(self, scenario: Document, board: Document | None):
        self.documents = (scenario, board)
        self.originals: dict = {}

    def add(self, originals: dict, in_board: bool) -> None:
        for node, original in originals.items():
            self.originals[node] = (original, in_board)

    def loc(self, node) -> tuple[Loc, bool]:
        # An element ACRN added (a default value) is placed at the
        # nearest element of the user's file that holds it.
        while node is not None and node not in self.originals:
            node = node.getparent()
        if node is None:
            scenario = self.documents[0]
            return scenario.loc(scenario.root), False
        original, in_board = self.originals[node]
        document = self.documents[1 if in_board else 0]
        return document.loc_or_root(original), in_board


def _check(acrn_src: str, use_cache: bool, scenario: Document,
           board: Document | None, cache_key: str | None = None
           ) -> list[AcrnFinding]:
    schema = built(acrn_src, use_cache)
    where = _Where(scenario, board)
    scenario.loc(scenario.root)  # positions of the original elements
    root, originals = _copy(scenario)
    where.add(originals, False)
    xsd = etree.fromstring(schema.xsd).getroottree()
    _Populator(xsd).run(root)
    findings = []
    if schema.model is None or not _certainly_valid(schema.model, root):
        findings.extend(_syntax(syntax_schema(acrn_src, use_cache), root,
                                where))
    if board is not None:
        findings.extend(_data(schema, root, board, where, cache_key))
    return findings


def _certainly_valid(model, root) -> bool:
    from .acrn_structure import is_valid

    return is_valid(model, root)


def _syntax(schema, root, where: _Where):
    import xmlschema

    for error in schema.iter_errors(root.getroottree()):
        node = error.elem
        index = getattr(error, "index", None)
        if (isinstance(error, xmlschema.XMLSchemaChildrenValidationError)
                and node is not None and index is not None
                and index < len(node)):
            node = node[index]
        loc, in_board = where.loc(node)
        yield AcrnFinding(CODES["critical"], "critical", error.path or "",
                          error.reason or str(error.message), loc, in_board)


def _data(schema: Built, root, board: Document, where: _Where,
          cache_key: str | None):
    parents = {child: parent for parent in root.iter() for child in parent}
    board_root, originals = _copy(board)
    where.add(originals, True)
    if schema.all_names is not None:
        _prune(board_root, schema.all_names)
    root.extend(list(board_root))
    below = _tags_below(root)
    for index, entry in enumerate(schema.checks):
        # Each check runs on the part of the tree it can reach (see
        # _prune): some tens of elements instead of hundreds; and its
        # outcome is cached by that part's bytes, which an edit
        # elsewhere leaves alone.
        names = schema.names[index]
        path = None
        if cache_key is not None:
            digest = hashlib.sha256(f"{cache_key} {index} ".encode())
            if names is None:
                digest.update(etree.tostring(root))
            else:
                _digest(root, names, below, digest)
            path = os.path.join(structure.cache_dir(),
                                f"acrn-check-{digest.hexdigest()}.json")
        outcome = _cached_outcome(path)
        view, back = root, {}
        if names is not None and (outcome is None or outcome):
            view = _projection(root, names, below, back)
        if outcome is None:
            outcome = _outcome(entry, view)
            if path is not None:
                structure._store(path, outcome)
        nodes = list(view.iter()) if outcome else []
        for code, severity, message, at in outcome:
            node = back.get(nodes[at], nodes[at]) if at >= 0 else root
            loc, in_board = where.loc(node)
            xpath = _xpath(node, parents) if at >= 0 else ""
            yield AcrnFinding(code, severity, xpath, message, loc, in_board)


def _cached_outcome(path: str | None) -> list | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as stream:
            outcome = json.load(stream)
    except (OSError, ValueError):
        return None
    return outcome if isinstance(outcome, list) else None


def _outcome(entry: _Check, view) -> list:
    """What one check finds in ``view``: ``[code, severity, message,
    index]`` items, the index in ``view.iter()`` of the element reported
    on (-1: the document itself)."""
    from elementpath import XPathContext, get_node_tree
    from elementpath.exceptions import ElementPathError

    from .acrn_xpath import Unsupported

    tree = get_node_tree(view)
    try:
        token = _compiled(entry.test)
        if token.boolean_value(list(token.select(XPathContext(tree)))):
            return []
        variables = _counter_example(token, XPathContext(tree))
        nodes = [node for node in _select(tree, entry.report_on, variables)
                 if _is_element(node)]
        message = _describe(tree, entry.text, variables)
    except Unsupported as exc:
        return [[SKIPPED_CODE, "info", f"ACRN check not evaluated: {exc}: "
                 f"{' '.join(entry.test.split())}", -1]]
    except ElementPathError as exc:
        return [[SKIPPED_CODE, "info", f"ACRN check not evaluated: {exc}",
                 -1]]
    code = CODES.get(entry.severity, CODES["error"])
    if not nodes:
        return [[code, entry.severity, message, -1]]
    order = {node: number for number, node in enumerate(view.iter())}
    return [[code, entry.severity, message, order[node]] for node in nodes]


@functools.cache
def _expressions(checks: tuple[_Check, ...]) -> tuple:
    found = []
    for entry in checks:
        found.append(entry.test)
        if entry.report_on:
            found.append(entry.report_on)
        found.extend(e[1:-1] for e in re.findall(r"{[^{}]*}", entry.text))
    return tuple(found)


@functools.cache
def _names(checks: tuple[_Check, ...]) -> frozenset[str] | None:
    """Every name the checks' expressions mention, or None when one
    could reach an element without naming it (a wildcard, a kind test)."""
    from elementpath.exceptions import ElementPathError

    names = set()
    for expression in _expressions(checks):
        try:
            token = _compiled(expression)
        except ElementPathError:
            return None
        for part in token.iter():
            if part.symbol == "(name)":
                names.add(part.value)
            elif part.symbol == "number-of-clos-id-needed":
                names.add("POLICY")  # what acrn_xpath reads
            elif part.label in ("wildcard symbol", "kind test") and (
                    part.symbol != "text"):
                return None
    return frozenset(names)


def _tags_below(root) -> dict:
    """Each element's tag and the tags of every element below it."""
    below: dict = {}

    def visit(node) -> frozenset:
        tags = {node.tag}
        for child in node:
            if isinstance(child.tag, str):
                tags |= visit(child)
        below[node] = frozen = frozenset(tags)
        return frozen

    visit(root)
    return below


def _projection(root, names: frozenset[str], below: dict, back: dict):
    """A copy of ``root`` with only what ``_prune`` keeps (the root
    itself is never kept whole: every check names it); ``back`` maps
    each copied element to its original. ``below`` is
    :func:`_tags_below` of ``root``: only branches holding a named
    element are walked."""
    def project(node):
        if node.tag in names:
            new = copy.deepcopy(node)
            back.update(zip(new.iter(), node.iter()))
            return new
        new = node.makeelement(node.tag, node.attrib)
        new.text = node.text
        new.extend(project(child) for child in node
                   if isinstance(child.tag, str) and below[child] & names)
        back[new] = node
        return new

    top = root.makeelement(root.tag, root.attrib)
    top.extend(project(child) for child in root
               if isinstance(child.tag, str) and below[child] & names)
    back[top] = root
    return top


def _digest(node, names: frozenset[str], below: dict, digest) -> None:
    """Feed ``digest`` what :func:`_projection` would copy of ``node``'s
    children, without copying: equal digests, equal projections."""
    for child in node:
        if not isinstance(child.tag, str) or not below[child] & names:
            continue
        if child.tag in names:
            piece = b"W" + etree.tostring(child)
        else:
            piece = b"P" + repr((child.tag, sorted(child.attrib.items()),
                                 child.text)).encode()
        digest.update(len(piece).to_bytes(8, "little"))
        digest.update(piece)
        if child.tag not in names:
            _digest(child, names, below, digest)
            digest.update(b"E")


def _prune(root, names: frozenset[str]) -> None:
    """Drop the board elements no check can reach: those that neither
    are named, nor lie inside a named one, nor hold one. The checks
    then walk some hundreds of elements instead of thousands."""
    def keep(node) -> bool:
        if node.tag in names:
            return True
        kept = False
        for child in list(node):
            if not isinstance(child.tag, str):
                continue
            if keep(child):
                kept = True
            else:
                node.remove(child)
        return kept

    for child in list(root):
        if isinstance(child.tag, str) and not keep(child):
            root.remove(child)


def _is_element(node) -> bool:
    return isinstance(node, etree._Element) and isinstance(node.tag, str)


def _select(root, expression: str, variables: dict):
    import elementpath

    if not expression:
        return []
    result = elementpath.select(root, expression, variables=variables,
                                parser=type(_parser()))
    return result if isinstance(result, list) else [result]


def _xpath(node, parents: dict) -> str:
    """ACRN's path of ``node``: tags from the root, with ``[n]`` where
    the parent has several children of that tag."""
    parts = []
    while node is not None:
        part = node.tag
        parent = parents.get(node)
        if parent is not None:
            same = parent.findall(node.tag)
            if len(same) > 1:
                part += f"[{same.index(node) + 1}]"
        parts.insert(0, part)
        node = parent
    return "/" + "/".join(parts)


def _counter_example(token, context) -> dict:
    """The variables of the first binding for which an ``every`` fails
    (or a ``some`` holds), through nested quantifiers: what ACRN's
    messages and report-on paths are evaluated with."""
    found: dict = {}
    _witness(token, context, found)
    return found


def _witness(token, context, found: dict) -> bool | None:
    if token.symbol not in ("every", "some"):
        for child in token:
            if child.symbol in ("every", "some", "or", "and", "(", "not",
                                "if"):
                _witness(child, context, found)
        return None
    some = token.symbol == "some"
    names = [token[k][0].value for k in range(0, len(token) - 1, 2)]
    selectors = [token[k].select for k in range(1, len(token) - 1, 2)]
    for values in copy.copy(context).iter_product(selectors, names):
        private = copy.copy(context)
        private.variables = {**context.variables, **dict(zip(names, values))}
        holds = token.boolean_value(list(token[-1].select(private)))
        if holds == some:
            inner: dict = {}
            _witness(token[-1], private, inner)
            found.update(zip(names, values))
            found.update(inner)
            return holds
    return not some


def _describe(root, text: str, variables: dict) -> str:
    """ACRN's message: each ``{expression}`` of the text replaced by its
    value."""
    for expression in set(re.findall(r"{[^{}]*}", text)):
        result = _select_value(root, expression[1:-1], variables)
        text = text.replace(expression, result)
    return text


def _select_value(root, expression: str, variables: dict) -> str:
    import elementpath

    result = elementpath.select(root, expression, variables=variables,
                                parser=type(_parser()))
    if not isinstance(result, list):
        return str(result)
    if len(result) == 1:
        return _shown(result[0])
    if result:
        return "[" + ", ".join(map(_shown, result)) + "]"
    return "{unknown}"


def _shown(item) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, etree._Element):
        return str(item.text)
    return str(item)
