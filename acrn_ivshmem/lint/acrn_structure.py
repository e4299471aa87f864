"""A fast first pass of ACRN's syntax check (ISM901), without xmlschema.

``lint --acrn-schema`` checks a scenario against the split ``config.xsd``
of an ACRN tree (see :mod:`.acrn_schema`). Building that XSD 1.1 schema
with xmlschema takes about a second, and importing and unpickling it
most of the rest of a run; yet nearly every scenario a user lints is
valid. :func:`describe` turns the split XSD into a :class:`Model` of
plain tuples and dicts (pickled in milliseconds), and :func:`is_valid`
walks a scenario against it and answers True only where xmlschema
certainly reports nothing. Where it answers False, the caller asks
xmlschema, whose findings (reasons, paths, order) stay the only ones
reported: the walk never words a finding itself.

So the walk may be stricter than xmlschema, never looser. It accepts a
value only on the safe side of each rule: an integer written as plain
digits, a pattern translated to a Python regex that matches a subset of
what xmlschema's matches (``\\w`` as ASCII letters, digits and ``_``,
``\\d`` as ASCII digits), an enumeration value written exactly as listed, an element's
text only when blank where the model allows no text, no attributes in a
namespace (``xsi:``), no type with an ``xs:assert``. Any XSD construct
outside that set raises :class:`UnsupportedSchema` from
:func:`describe`, and the caller uses xmlschema alone.
``tests/test_acrn_structure.py`` compares the answer with xmlschema's
over every v3.3 scenario and mutated copies.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from lxml import etree

from .structure import UnsupportedSchema

_XS = "{http://www.w3.org/2001/XMLSchema}"
_BUILTIN = {"xs:string": "string", "xs:integer": "integer"}
_INTEGER = re.compile(r"-?[0-9]+")
_ALTERNATIVE = re.compile(r"\s*\.//([A-Za-z_][\w.-]*)\s*=\s*'([^']*)'\s*")
_NAME = re.compile(r"[A-Za-z_][\w.-]*")


class Model(NamedTuple):
    """ACRN's split ``config.xsd``, as :func:`is_valid` reads it.

    ``simple`` maps a simple type's key to ``("atomic", base, steps)``
    (``base`` ``string`` or ``integer``; each step a tuple of
    ``(enumeration or None, compiled patterns or None, least, most)``)
    or ``("union", member keys)``. ``complex`` maps a complex type's key
    to ``(model, particles, attributes, required, asserts)``: ``model``
    ``all`` or ``sequence``, each particle ``(name, type, least, most,
    has_default)``, ``attributes`` a dict from name to simple type key.
    A type reference is ``("simple", key)``, ``("complex", key)``,
    ``("any",)`` or ``("alt", ((tag, value, type), ...), default)``.
    ``root`` is the global element's name, type and unique constraints
    (``(selector, field)`` pairs)."""

    root: tuple
    simple: dict
    complex: dict


def describe(xsd) -> Model:
    """The :class:`Model` of the split XSD ``xsd`` (an lxml tree or
    root), or :class:`UnsupportedSchema`."""
    root = xsd.getroot() if hasattr(xsd, "getroot") else xsd
    return _Describer(root).model()


class _Describer:
    def __init__(self, root):
        self.root = root
        self.simple: dict = {}
        self.complex: dict = {}
        self.named_simple = {}
        self.named_complex = {}
        self.anonymous = 0
        if root.get("targetNamespace") is not None:
            raise UnsupportedSchema("a target namespace")
        for node in _children(root):
            name = node.get("name")
            if node.tag == _XS + "simpleType":
                self.named_simple[name] = node
            elif node.tag == _XS + "complexType":
                self.named_complex[name] = node
            elif node.tag not in (_XS + "element", _XS + "annotation"):
                raise UnsupportedSchema(f"top-level <{_local(node.tag)}>")

    def model(self) -> Model:
        elements = [n for n in _children(self.root)
                    if n.tag == _XS + "element"]
        if len(elements) != 1:
            raise UnsupportedSchema("not exactly one global element")
        element = elements[0]
        unique = []
        for node in _children(element):
            if node.tag == _XS + "unique":
                unique.append(self._unique(node))
        particle = self._particle(element, top=True)
        # Every named type is described, used or not (the split schema
        # is checked whole, as xmlschema builds it whole).
        for name in self.named_simple:
            self._simple_ref(name)
        for name in self.named_complex:
            self._complex_ref(name)
        return Model((particle[0], particle[1], tuple(unique)),
                     self.simple, self.complex)

    def _unique(self, node) -> tuple:
        parts = [n for n in _children(node) if n.tag != _XS + "annotation"]
        if ([p.tag for p in parts] != [_XS + "selector", _XS + "field"]
                or not all(_NAME.fullmatch(p.get("xpath") or "")
                           for p in parts)):
            raise UnsupportedSchema("an xs:unique other than child/child")
        return parts[0].get("xpath"), parts[1].get("xpath")

    def _particle(self, node, top=False) -> tuple:
        allowed = {"name", "type", "minOccurs", "maxOccurs", "default"}
        _only_attributes(node, allowed)
        name = node.get("name")
        if not name:
            raise UnsupportedSchema("an element without a name")
        least = int(node.get("minOccurs", "1"))
        most = node.get("maxOccurs", "1")
        most = None if most == "unbounded" else int(most)
        inline = [n for n in _children(node) if n.tag != _XS + "annotation"]
        alternatives = []
        type_ref = None
        for child in inline:
            if child.tag == _XS + "complexType":
                type_ref = ("complex", self._complex(child))
            elif child.tag == _XS + "simpleType":
                type_ref = ("simple", self._simple(child))
            elif child.tag == _XS + "alternative":
                alternatives.append(self._alternative(child))
            elif not (top and child.tag == _XS + "unique"):
                raise UnsupportedSchema(f"<{_local(child.tag)}> in an "
                                        "element")
        if node.get("type") is not None:
            if type_ref is not None:
                raise UnsupportedSchema("an element with two types")
            type_ref = self._type_ref(node.get("type"))
        if type_ref is None:
            type_ref = ("any",)
        if alternatives:
            type_ref = ("alt", tuple(alternatives), type_ref)
        return (name, type_ref, least, most, node.get("default") is not None)

    def _alternative(self, node) -> tuple:
        _only_attributes(node, {"test", "type"})
        match = _ALTERNATIVE.fullmatch(node.get("test") or "")
        if match is None or node.get("type") is None or len(node):
            raise UnsupportedSchema("an xs:alternative other than "
                                    ".//name = 'value' with a type")
        return (match.group(1), match.group(2),
                self._type_ref(node.get("type")))

    def _type_ref(self, name: str) -> tuple:
        if name in _BUILTIN:
            return ("simple", name)
        if name in self.named_simple:
            return ("simple", self._simple_ref(name))
        if name in self.named_complex:
            return ("complex", self._complex_ref(name))
        raise UnsupportedSchema(f"type {name!r}")

    def _simple_ref(self, name: str) -> str:
        if name in _BUILTIN:
            return name
        if name not in self.named_simple:
            raise UnsupportedSchema(f"simple type {name!r}")
        if name not in self.simple:
            self.simple[name] = None  # a loop in the derivation
            self.simple[name] = self._simple_body(self.named_simple[name])
        elif self.simple[name] is None:
            raise UnsupportedSchema(f"simple type {name!r} derives from "
                                    "itself")
        return name

    def _complex_ref(self, name: str) -> str:
        if name not in self.complex:
            self.complex[name] = None
            self.complex[name] = self._complex_body(self.named_complex[name])
        return name

    def _simple(self, node) -> str:
        self.anonymous += 1
        key = f"#simple{self.anonymous}"
        self.simple[key] = self._simple_body(node)
        return key

    def _complex(self, node) -> str:
        self.anonymous += 1
        key = f"#complex{self.anonymous}"
        self.complex[key] = self._complex_body(node)
        return key

    def _simple_body(self, node) -> tuple:
        _only_attributes(node, {"name"})
        parts = [n for n in _children(node) if n.tag != _XS + "annotation"]
        if len(parts) != 1:
            raise UnsupportedSchema("a simple type of several parts")
        part = parts[0]
        if part.tag == _XS + "union":
            _only_attributes(part, {"memberTypes"})
            if [n for n in _children(part) if n.tag != _XS + "annotation"]:
                raise UnsupportedSchema("an inline union member")
            members = (part.get("memberTypes") or "").split()
            if not members:
                raise UnsupportedSchema("an empty union")
            return ("union", tuple(self._simple_ref(m) for m in members))
        if part.tag != _XS + "restriction":
            raise UnsupportedSchema(f"<{_local(part.tag)}> in a simple type")
        _only_attributes(part, {"base"})
        base_key = self._simple_ref(part.get("base") or "")
        if base_key in _BUILTIN:
            base, steps = _BUILTIN[base_key], ()
        else:
            inherited = self.simple[base_key]
            if inherited[0] != "atomic":
                raise UnsupportedSchema("a restriction of a union")
            _, base, steps = inherited
        return ("atomic", base, steps + (_facets(part, base),))

    def _complex_body(self, node) -> tuple:
        _only_attributes(node, {"name"})
        model, particles = "sequence", ()
        attributes: dict = {}
        required = set()
        asserts = False
        for child in _children(node):
            if child.tag in (_XS + "all", _XS + "sequence"):
                _only_attributes(child, set())
                model = _local(child.tag)
                particles = tuple(self._group(child))
            elif child.tag == _XS + "attribute":
                _only_attributes(child, {"name", "type", "use"})
                if [n for n in _children(child)
                        if n.tag != _XS + "annotation"]:
                    raise UnsupportedSchema("an inline attribute type")
                use = child.get("use", "optional")
                if use not in ("optional", "required") or not child.get(
                        "name"):
                    raise UnsupportedSchema("an attribute use")
                attributes[child.get("name")] = self._simple_ref(
                    child.get("type") or "xs:string")
                if use == "required":
                    required.add(child.get("name"))
            elif child.tag == _XS + "assert":
                asserts = True
            elif child.tag != _XS + "annotation":
                raise UnsupportedSchema(f"<{_local(child.tag)}> in a "
                                        "complex type")
        names = [p[0] for p in particles]
        if model == "sequence" and any(a == b for a, b in zip(names,
                                                             names[1:])):
            raise UnsupportedSchema("a sequence naming one element twice "
                                    "in a row")
        if model == "all" and len(set(names)) != len(names):
            raise UnsupportedSchema("an xs:all naming one element twice")
        return (model, particles, attributes, frozenset(required), asserts)

    def _group(self, node):
        for child in _children(node):
            if child.tag == _XS + "element":
                yield self._particle(child)
            elif child.tag != _XS + "annotation":
                raise UnsupportedSchema(f"<{_local(child.tag)}> in a model "
                                        "group")


def _facets(node, base: str) -> tuple:
    enumeration, patterns = [], []
    least = most = None
    for child in _children(node):
        tag = _local(child.tag)
        value = child.get("value")
        if tag == "annotation":
            continue
        if value is None or [n for n in _children(child)
                             if n.tag != _XS + "annotation"]:
            raise UnsupportedSchema(f"an xs:{tag} facet")
        if tag == "enumeration":
            enumeration.append(value)
        elif tag == "pattern":
            patterns.append(_pattern(value))
        elif tag in ("minInclusive", "maxInclusive") and base == "integer":
            if not _INTEGER.fullmatch(value):
                raise UnsupportedSchema(f"an xs:{tag} of {value!r}")
            if tag == "minInclusive":
                least = int(value)
            else:
                most = int(value)
        else:
            raise UnsupportedSchema(f"an xs:{tag} facet on {base}")
    if base == "integer" and any(not _INTEGER.fullmatch(v)
                                 for v in enumeration):
        raise UnsupportedSchema("an integer enumeration not in digits")
    # One step's patterns are alternatives: one must match.
    pattern = (re.compile("|".join(f"(?:{p})" for p in patterns))
               if patterns else None)
    return (frozenset(enumeration) if enumeration else None, pattern,
            least, most)


#: XSD regex escapes that mean the same in Python (outside classes).
_SAME_ESCAPES = set("nrt\\|.?*+(){}-[]^$")


def _pattern(xsd: str) -> str:
    """An XSD pattern as a Python regex matching a subset of what
    xmlschema matches (``\\w`` and ``\\d`` only as ASCII), or
    :class:`UnsupportedSchema`."""
    out = []
    index = 0
    while index < len(xsd):
        char = xsd[index]
        if char == "\\":
            escaped = _escape(xsd, index)
            out.append(escaped)
            index += 2
        elif char == "[":
            end, text = _class(xsd, index)
            out.append(text)
            index = end
        elif char == "(":
            if xsd.startswith("(?", index):
                raise UnsupportedSchema(f"pattern {xsd!r}")
            out.append(char)
            index += 1
        elif char == ".":
            out.append("[^\\n\\r]")
            index += 1
        elif char in "^$":
            out.append("\\" + char)  # no anchors in XSD
            index += 1
        elif char == "{":
            end = xsd.find("}", index)
            if end < 0 or not re.fullmatch(r"\{[0-9]+(,[0-9]*)?\}",
                                           xsd[index:end + 1]):
                raise UnsupportedSchema(f"pattern {xsd!r}")
            out.append(xsd[index:end + 1])
            index = end + 1
        elif char in "|)?*+":
            out.append(char)
            index += 1
        elif char in "]}":
            raise UnsupportedSchema(f"pattern {xsd!r}")
        else:
            out.append(re.escape(char))
            index += 1
    text = "".join(out)
    try:
        re.compile(text)
    except re.error:
        raise UnsupportedSchema(f"pattern {xsd!r}") from None
    return text


def _escape(xsd: str, index: int, in_class: bool = False) -> str:
    if index + 1 >= len(xsd):
        raise UnsupportedSchema(f"pattern {xsd!r}")
    char = xsd[index + 1]
    if char == "d":
        return "0-9" if in_class else "[0-9]"
    if char == "w":
        # elementpath, which xmlschema's patterns run on, reads \w as
        # Python's (with '_'); ASCII letters, digits and '_' are in it.
        return "A-Za-z0-9_" if in_class else "[A-Za-z0-9_]"
    if char in _SAME_ESCAPES:
        return "\\" + char
    raise UnsupportedSchema(f"pattern {xsd!r}")


def _class(xsd: str, index: int) -> tuple[int, str]:
    """A character class at ``index``: where it ends, and the Python
    text. Negated classes and subtractions are not modelled."""
    out = ["["]
    index += 1
    if xsd.startswith("^", index):
        raise UnsupportedSchema(f"pattern {xsd!r}")
    first = True
    while index < len(xsd):
        char = xsd[index]
        if char == "]" and not first:
            out.append("]")
            return index + 1, "".join(out)
        if char == "\\":
            out.append(_escape(xsd, index, in_class=True))
            index += 2
        elif char == "[" or (char == "-" and xsd.startswith("-[", index)):
            raise UnsupportedSchema(f"pattern {xsd!r}")
        elif char in "&|~" and xsd.startswith(char * 2, index):
            raise UnsupportedSchema(f"pattern {xsd!r}")
        else:
            # '-' makes a range, or is itself at either end, in both.
            out.append(char if char == "-" else re.escape(char))
            index += 1
        first = False
    raise UnsupportedSchema(f"pattern {xsd!r}")


def _children(node) -> list:
    return [n for n in node if isinstance(n.tag, str)]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _only_attributes(node, allowed: set) -> None:
    for name in node.attrib:
        if name.startswith("{"):
            continue  # acrn:... annotations and the like
        if name not in allowed:
            raise UnsupportedSchema(f"attribute {name!r} of "
                                    f"<{_local(node.tag)}>")


# --- The walk -----------------------------------------------------------

def is_valid(model: Model, root) -> bool:
    """True when xmlschema certainly finds no error in ``root`` (an lxml
    element) against the schema ``model`` describes; False when it may."""
    name, type_ref, unique = model.root
    if root.tag != name:
        return False
    for selector, field in unique:
        seen = set()
        for node in root.iterchildren(selector):
            fields = list(node.iterchildren(field))
            if len(fields) > 1:
                return False
            if fields:
                key = _identity(fields[0])
                if key is None or key in seen:
                    return False
                seen.add(key)
    return _Walk(model, name).element(root, type_ref, False)


def alternative_holds(test: str, node) -> bool | None:
    """Whether the ``xs:alternative`` test ``test`` holds for ``node``,
    when it has the one form ACRN's schema uses (``.//name = 'value'``)
    and each element it compares holds text alone; else None."""
    match = _ALTERNATIVE.fullmatch(test)
    if match is None:
        return None
    return _holds(node, match.group(1), match.group(2))


def _holds(node, tag: str, value: str) -> bool | None:
    # XPath's general comparison: some descendant's string value equals.
    for found in node.iterdescendants(tag):
        if len(found):
            return None  # a string value of several texts
        if (found.text or "") == value:
            return True
    return False


def _identity(node) -> str | None:
    # A key two equal field values always share (xmlschema compares
    # typed values: whitespace and an integer's spelling may not count).
    if len(node):
        return None
    text = " ".join((node.text or "").split())
    return str(int(text)) if _INTEGER.fullmatch(text) else text


class _Walk:
    def __init__(self, model: Model, global_name: str):
        self.simple = model.simple
        self.complex = model.complex
        self.global_name = global_name

    def element(self, node, type_ref, has_default) -> bool:
        kind = type_ref[0]
        if kind == "alt":
            type_ref = self._alternative(node, type_ref)
            if type_ref is None:
                return False
            kind = type_ref[0]
        if kind == "simple":
            if len(node) or node.attrib:
                return False
            text = node.text or ""
            if not text and has_default:
                return False
            return self.value(type_ref[1], text)
        if kind == "any":
            # xs:anyType, validated laxly: only a global element inside
            # would be checked.
            return not any(isinstance(n.tag, str) and (
                n.tag == self.global_name or n.tag.startswith("{")
                or any(k.startswith("{") for k in n.attrib))
                for n in node.iter())
        model, particles, attributes, required, asserts = self.complex[
            type_ref[1]]
        if asserts:
            return False
        for key, value in node.attrib.items():
            if key not in attributes or not self.value(attributes[key],
                                                        value):
                return False
        if any(name not in node.attrib for name in required):
            return False
        if node.text is not None and node.text.strip():
            return False
        children = []
        for child in node:
            if child.tail is not None and child.tail.strip():
                return False
            if isinstance(child.tag, str):
                children.append(child)
            elif not isinstance(child, etree._Comment):
                return False
        if model == "all":
            declared = {p[0]: p for p in particles}
            counts: dict = {}
            for child in children:
                particle = declared.get(child.tag)
                if particle is None:
                    return False
                counts[child.tag] = counts.get(child.tag, 0) + 1
                if particle[3] is not None and counts[child.tag] > particle[3]:
                    return False
                if not self.element(child, particle[1], particle[4]):
                    return False
            return all(counts.get(p[0], 0) >= p[2] for p in particles)
        position = 0
        for particle in particles:
            count = 0
            while (position < len(children)
                   and children[position].tag == particle[0]
                   and (particle[3] is None or count < particle[3])):
                if not self.element(children[position], particle[1],
                                    particle[4]):
                    return False
                position += 1
                count += 1
            if count < particle[2]:
                return False
        return position == len(children)

    def _alternative(self, node, type_ref):
        _, alternatives, default = type_ref
        for tag, value, chosen in alternatives:
            holds = _holds(node, tag, value)
            if holds is None:
                return None
            if holds:
                return chosen
        return default

    def value(self, key: str, text: str) -> bool:
        if key in _BUILTIN:
            return _BUILTIN[key] == "string" or bool(_INTEGER.fullmatch(text))
        described = self.simple[key]
        if described[0] == "union":
            return any(self.value(member, text) for member in described[1])
        _, base, steps = described
        if base == "integer":
            if not _INTEGER.fullmatch(text):
                return False
            number = int(text)
        for enumeration, pattern, least, most in steps:
            if enumeration is not None and text not in enumeration:
                return False
            if pattern is not None and not pattern.fullmatch(text):
                return False
            if least is not None and number < least:
                return False
            if most is not None and number > most:
                return False
        return True
