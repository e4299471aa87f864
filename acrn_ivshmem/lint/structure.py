"""ISM001's structure check, in milliseconds: the parsed tree against a
compact description of acrn-shm's own XSDs.

The XSDs in ``schemas/`` stay the one source of truth. On first use,
:func:`description` reads the XSD of a kind of document with lxml and
keeps only what the check needs: for each complex type, its model
(``all`` or ``sequence``), whether it has open content, its element
particles, attributes and simple content; for each simple type, its
whitespace handling and facets. Any XSD construct outside that small
set raises :class:`UnsupportedSchema`, so an XSD edit the check cannot
follow fails at once instead of being checked wrongly.

:func:`check` then walks the element tree the loader already parsed.
Its findings (line, column, message) are those the XSD 1.1 validator
xmlschema gives for the same file (``schema.check_structure_xsd``,
kept as the oracle; ``tests/test_structure_equivalence.py`` compares
the two over every real ACRN XML, every test fixture and mutated
copies of them): the same reasons, worded the same way, in the same
order. How xmlschema walks a content model, and so which errors it
reports, was established by comparing with it, child sequence by
child sequence:

- open content (``xs:openContent mode="interleave"`` with a skipped
  ``xs:any``) never fails: an undeclared child, or a second copy of an
  element allowed once, is taken by the wildcard and not checked;
- in a closed model, the first child that does not fit is reported
  (with the required elements still missing, if any); after it, only
  children whose names the model does not declare are reported, one
  finding each; a model that ends with required elements missing is
  "not complete";
- every child whose name the closed model declares is checked against
  its declaration, wherever it stands.

Attributes in the XML Schema instance namespace (``xsi:``) are not
modelled beyond ``xsi:nil`` (no element here is nillable) and unknown
``xsi:`` names on elements without ``xs:anyAttribute``: the values of
``xsi:type``, ``xsi:nil`` and ``xsi:schemaLocation`` are not checked.
No ACRN XML uses them.
"""

from __future__ import annotations

import functools
import re
from operator import attrgetter
from typing import NamedTuple

from lxml import etree

_XS = "{http://www.w3.org/2001/XMLSchema}"
_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
_SPACES = re.compile(r"\s+")


class UnsupportedSchema(ValueError):
    """An XSD uses a construct the fast structure check does not model."""


class SimpleType(NamedTuple):
    """A simple type: ``base`` (``string``, ``token`` or
    ``nonNegativeInteger``) and its facets."""

    base: str
    enumeration: tuple[str, ...] = ()
    pattern: str | None = None
    min_length: int | None = None


class Attribute(NamedTuple):
    """A declared attribute."""

    name: str
    type: SimpleType
    required: bool


class Particle(NamedTuple):
    """An element of a content model; ``most`` is None for unbounded."""

    name: str
    type: str
    least: int
    most: int | None


class ComplexType(NamedTuple):
    """A complex type, or (``simple`` set, no particles) an element of a
    simple type or with simple content."""

    model: str
    open: bool
    particles: tuple[Particle, ...]
    attributes: tuple[Attribute, ...]
    any_attribute: bool
    simple: SimpleType | None


class Description(NamedTuple):
    """What the check needs of one XSD: the root element's name and
    type, and every type by name (anonymous ones by a made-up name)."""

    root: str
    root_type: str
    types: dict[str, ComplexType]


_BUILTINS = {f"xs:{name}": SimpleType(name)
             for name in ("string", "token", "nonNegativeInteger")}


def describe(xsd: bytes) -> Description:
    """The :class:`Description` of the XSD text ``xsd``."""
    tree = etree.fromstring(xsd)
    simple = dict(_BUILTINS)
    for node in tree.iterchildren(_XS + "simpleType"):
        simple[node.get("name")] = _simple_type(node, simple)
    types: dict[str, ComplexType] = {}
    for name, node in _simple_types_as_elements(simple):
        types[name] = node
    roots = []
    for node in tree:
        if not isinstance(node.tag, str) or node.tag == _XS + "simpleType":
            continue
        if node.tag == _XS + "complexType":
            types[node.get("name")] = _complex_type(node, simple, types)
        elif node.tag == _XS + "element":
            name = "#" + node.get("name")
            types[name] = _complex_type(_only(node, "complexType"), simple,
                                        types)
            roots.append((node.get("name"), name))
        elif node.tag != _XS + "annotation":
            raise UnsupportedSchema(f"top-level <{_local(node.tag)}>")
    if len(roots) != 1:
        raise UnsupportedSchema("not exactly one global element")
    for complex_type in types.values():
        for particle in complex_type.particles:
            if particle.type not in types:
                raise UnsupportedSchema(f"unknown type {particle.type!r}")
    return Description(roots[0][0], roots[0][1], types)


def _simple_types_as_elements(simple):
    # An element of a simple type: no attributes, the value checked.
    for name, simple_type in simple.items():
        yield name, ComplexType("simple", False, (), (), False, simple_type)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(node) -> list:
    return [child for child in node if isinstance(child.tag, str)
            and child.tag != _XS + "annotation"]


def _only(node, name: str):
    children = _children(node)
    if len(children) != 1 or children[0].tag != _XS + name:
        raise UnsupportedSchema(f"<{_local(node.tag)}> must hold one "
                                f"<xs:{name}>")
    return children[0]


def _simple_type(node, simple: dict) -> SimpleType:
    restriction = _only(node, "restriction")
    base = _BUILTINS.get(restriction.get("base"))
    if base is None:
        raise UnsupportedSchema(
            f"restriction of {restriction.get('base')!r}")
    enumeration, pattern, min_length = [], None, None
    for facet in _children(restriction):
        name, value = _local(facet.tag), facet.get("value")
        if name == "enumeration":
            enumeration.append(value)
        elif name == "pattern" and pattern is None and re.fullmatch(
                r"[\w\[\]\-]+[+*?]?", value):
            pattern = value  # the same in XSD and Python regexes
        elif name == "minLength" and min_length is None:
            min_length = int(value)
        else:
            raise UnsupportedSchema(f"facet <xs:{name}> {value!r}")
    if sum(map(bool, (enumeration, pattern, min_length))) > 1:
        raise UnsupportedSchema("more than one kind of facet")
    return SimpleType(base.base, tuple(enumeration), pattern, min_length)


def _attributes(nodes, simple: dict) -> tuple[tuple[Attribute, ...], bool]:
    attributes, any_attribute = [], False
    for node in nodes:
        if node.tag == _XS + "anyAttribute":
            if node.get("processContents") != "skip":
                raise UnsupportedSchema("xs:anyAttribute not skipped")
            any_attribute = True
        elif node.tag == _XS + "attribute":
            if node.get("type") not in simple or set(node.attrib) - {
                    "name", "type", "use"}:
                raise UnsupportedSchema(f"attribute {node.get('name')!r}")
            attributes.append(Attribute(node.get("name"),
                                        simple[node.get("type")],
                                        node.get("use") == "required"))
        else:
            raise UnsupportedSchema(f"<{_local(node.tag)}> in a type")
    return tuple(attributes), any_attribute


def _complex_type(node, simple: dict, types: dict) -> ComplexType:
    parts = _children(node)
    if parts and parts[0].tag == _XS + "simpleContent":
        extension = _only(parts[0], "extension")
        base = simple.get(extension.get("base"))
        if len(parts) != 1 or base is None:
            raise UnsupportedSchema("simple content")
        attributes, any_attribute = _attributes(_children(extension), simple)
        return ComplexType("simple", False, (), attributes, any_attribute,
                           base)
    is_open = False
    if parts and parts[0].tag == _XS + "openContent":
        wildcard = _only(parts.pop(0), "any")
        if (parts[0].getprevious().get("mode") != "interleave"
                or dict(wildcard.attrib) != {"processContents": "skip"}):
            raise UnsupportedSchema("open content other than interleaved "
                                    "skipped xs:any")
        is_open = True
    if not parts or parts[0].tag not in (_XS + "all", _XS + "sequence"):
        raise UnsupportedSchema("a complex type without xs:all or "
                                "xs:sequence")
    group = parts.pop(0)
    particles = tuple(_particle(element, types)
                      for element in _children(group))
    model = _local(group.tag)
    if set(group.attrib) or (is_open and any(p.least for p in particles)):
        raise UnsupportedSchema("a group with occurrences or an open one "
                                "with required elements")
    if model == "sequence" and any(p.least for p in particles[1:]):
        raise UnsupportedSchema("a sequence with a required element after "
                                "the first")
    attributes, any_attribute = _attributes(parts, simple)
    return ComplexType(model, is_open, particles, attributes, any_attribute,
                       None)


def _particle(node, types: dict) -> Particle:
    if node.tag != _XS + "element" or set(node.attrib) - {
            "name", "type", "minOccurs", "maxOccurs"} or len(node):
        raise UnsupportedSchema(f"particle <{_local(node.tag)}>")
    least = int(node.get("minOccurs", "1"))
    most = node.get("maxOccurs", "1")
    if least not in (0, 1) or most not in ("1", "unbounded"):
        raise UnsupportedSchema(f"occurrences of {node.get('name')!r}")
    return Particle(node.get("name"), node.get("type"), least,
                    None if most == "unbounded" else 1)


@functools.cache
def description(kind: str) -> Description:
    """The :class:`Description` of the XSD used for ``kind``."""
    from ..model.loader import schema_text

    return describe(schema_text(kind))


# --- The check -----------------------------------------------------------

class Error(NamedTuple):
    """A finding: the element to locate it at, and its message."""

    element: etree._Element
    message: str


def check(root: etree._Element, kind: str) -> list[Error]:
    """Every structure error of the document whose root is ``root``, a
    document of ``kind``, in xmlschema's order."""
    return _Walk(description(kind), root).errors


class _Walk:
    """One walk of a tree against a :class:`Description`."""

    def __init__(self, described: Description, root: etree._Element):
        self.types = described.types
        self.errors: list[Error] = []
        self._element(root, self.types[described.root_type])

    def _add(self, element, message: str, child=None) -> None:
        if child is None:
            where = f"<{element.tag}>"
        else:
            where = f"<{child.tag}> in <{element.tag}>"
            element = child
        self.errors.append(Error(element, f"{where}: {message}"))

    def _element(self, element, declared: ComplexType) -> None:
        attrib = element.attrib
        if attrib or declared.attributes:
            self._attributes(element, attrib, declared)
            if _XSI_NIL in attrib:
                self._add(element, "element is not nillable")
        children = list(element)  # lxml makes each child's proxy once
        if declared.simple is not None:
            if children:
                self._add(element,
                          "a simple content element can't have child "
                          "elements")
            reason = _value_error(declared.simple, element.text or "")[1]
            if reason:
                self._add(element, reason)
            return
        if (element.text and element.text.strip()) or any(
                map(str.strip, filter(None, map(_TAIL, children)))):
            self._add(element,
                      "character data between child elements not allowed")
        if declared.open:
            self._open_children(children, declared)
        else:
            self._closed_children(element, children, declared)

    def _attributes(self, element, attrib, declared: ComplexType) -> None:
        for attribute in declared.attributes:
            if attribute.required and attribute.name not in attrib:
                self._add(element,
                          f"missing required attribute {attribute.name!r}")
        by_name = _by_name(declared.attributes)
        for name, value in attrib.items():
            attribute = by_name.get(name)
            if attribute is None:
                if declared.any_attribute or name in _XSI_KNOWN:
                    continue
                if name.startswith(_XSI):
                    self._add(element, f"{name!r} is not an attribute of "
                              "the XSI namespace")
                else:
                    self._add(element,
                              f"{name!r} attribute not allowed for element")
                continue
            shown, reason = _value_error(attribute.type, value)
            if reason:
                self._add(element, f"attribute {name}={shown!r}: {reason}")

    def _open_children(self, children: list, declared: ComplexType) -> None:
        # Each declared element while it may still occur; anything else,
        # a later copy of an element allowed once included, goes to the
        # wildcard, unchecked.
        particles = _by_name(declared.particles)
        seen: dict[str, int] = {}
        for child in children:
            particle = particles.get(child.tag)
            if particle is None:
                continue
            count = seen.get(particle.name, 0)
            if particle.most is not None and count >= particle.most:
                continue
            seen[particle.name] = count + 1
            self._element(child, self.types[particle.type])

    def _closed_children(self, element, children: list,
                         declared: ComplexType) -> None:
        particles = declared.particles
        by_name = _by_name(particles)
        counts = dict.fromkeys(by_name, 0)
        errors: list[tuple[int, list[str] | None]] = []
        alive = True
        position = 0  # a sequence's current particle
        for index, child in enumerate(children):
            particle = by_name.get(child.tag)
            if alive:
                if declared.model == "all":
                    fits = (particle is not None and (
                        particle.most is None
                        or counts[particle.name] < particle.most))
                else:
                    fits, position = _sequence_step(particles, counts,
                                                    position, child.tag)
                if fits:
                    counts[particle.name] += 1
                else:
                    alive = False
                    missing = self._missing(declared, counts, position)
                    errors.append((index, missing or None))
            elif particle is None:
                errors.append((index, None))
            if particle is not None:
                self._element(child, self.types[particle.type])
        if alive:
            missing = self._missing(declared, counts, position)
            if missing:
                errors.append((len(children), missing))
        for index, expected in errors:
            self._children_error(element, index, expected)

    @staticmethod
    def _missing(declared: ComplexType, counts: dict, position: int
                 ) -> list[str]:
        if declared.model == "sequence":
            # Only the first particle of a sequence may be required.
            first = declared.particles[0] if declared.particles else None
            if (position == 0 and first is not None and first.least
                    and not counts[first.name]):
                return [first.name]
            return []
        missing = [p.name for p in declared.particles
                   if counts[p.name] < p.least]
        # Once any element of an xs:all has been seen, xmlschema names
        # only the first one missing.
        return missing[:1] if any(counts.values()) else missing

    def _children_error(self, element, index: int,
                        expected: list[str] | None) -> None:
        if index >= len(element):
            reason = f"the content of element {element.tag!r} is not complete"
            child = None
        else:
            child = element[index]
            reason = (f"unexpected child with tag "
                      f"{_prefixed(child, element)!r} at position {index + 1}")
        if expected:
            tags = (repr(expected[0]) if len(expected) == 1 else
                    "(" + " | ".join(map(repr, expected)) + ")")
            reason += f". Tag {tags} expected"
        self._add(element, reason, child)


@functools.cache
def _by_name(items: tuple) -> dict:
    # A description's particles or attributes by name, made once.
    return {item.name: item for item in items}


_XSI_NIL = _XSI + "nil"
_TAIL = attrgetter("tail")
_XSI_KNOWN = frozenset(_XSI + name for name in (
    "type", "nil", "schemaLocation", "noNamespaceSchemaLocation"))


def _sequence_step(particles, counts: dict, position: int, tag: str
                   ) -> tuple[bool, int]:
    """Whether ``tag`` fits a sequence at ``position``, and the position
    after it: particles already satisfied are skipped; a required one
    not yet seen stops the search."""
    while position < len(particles):
        particle = particles[position]
        if particle.name == tag and (particle.most is None
                                     or counts[tag] < particle.most):
            if particle.most is not None and counts[tag] + 1 >= particle.most:
                return True, position + 1
            return True, position
        if counts[particle.name] < particle.least:
            return False, position
        position += 1
    return False, position


def _prefixed(element, parent) -> str:
    """``element``'s tag as xmlschema names it in a message about
    ``parent``'s children: with the first prefix bound to its namespace
    in the declarations in force when the message is made (those of
    ``parent`` and its ancestors, then those on ``parent``'s last
    child, which xmlschema has visited last), else in ``{uri}`` form."""
    tag = element.tag
    if tag[:1] != "{":
        return tag
    namespace, local = tag[1:].split("}", 1)
    bound: dict[str, str] = {}
    for holder in (*reversed([parent, *parent.iterancestors()]),
                   parent[len(parent) - 1]):
        bound.update(_declared(holder))
    prefixes = [prefix for prefix, uri in bound.items() if uri == namespace]
    if prefixes and prefixes[0]:
        return f"{prefixes[0]}:{local}"
    if len(prefixes) > 1:
        return f"{prefixes[1]}:{local}"
    return tag


def _declared(element) -> dict[str, str]:
    """The namespace declarations on ``element`` itself."""
    above = element.getparent()
    inherited = above.nsmap if above is not None else {}
    return {prefix or "": uri for prefix, uri in element.nsmap.items()
            if inherited.get(prefix) != uri}


def _value_error(simple: SimpleType, raw: str) -> tuple[str, str | None]:
    """The value as xmlschema shows it, and why ``raw`` is not a value
    of ``simple`` (None when it is)."""
    if simple.base == "string":
        value = raw
    else:
        value = _SPACES.sub(" ", raw).strip()
    if simple.base == "nonNegativeInteger":
        try:
            number = int(value)
        except ValueError as exc:
            return value, str(exc)
        if number < 0:
            return str(number), "value must be non negative"
        return value, None
    if simple.enumeration and value not in simple.enumeration:
        return value, f"value must be one of {list(simple.enumeration)!r}"
    if simple.pattern is not None and not re.fullmatch(simple.pattern,
                                                       value):
        return value, (f"value doesn't match any pattern of "
                       f"{[simple.pattern]!r}")
    if simple.min_length is not None and len(value) < simple.min_length:
        return value, (f"value length cannot be lesser than "
                       f"{simple.min_length!r}")
    return value, None
