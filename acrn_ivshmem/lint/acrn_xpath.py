"""The XPath 2.0 dialect of ACRN's data checks, for ``lint --acrn-schema``.

ACRN's ``checks/*.xsd`` asserts call a few functions that are not
XPath's own: ``bitwise-and(a, b)`` (of two hexadecimal or decimal
numbers), ``bits-of(n)`` (the positions of the set bits),
``has(seq, s)`` (whether an item's value is ``s``),
``duplicate-values(seq)`` (each value met more than once, once) and
``number-of-clos-id-needed(root)`` (cache CLOS IDs the RDT set-up
needs). This module is a parser with those functions, written from
their documented meaning. The last one is only known for a scenario
without RDT cache policies (0); for any other it raises
:class:`Unsupported`, and the check that uses it is reported as not
evaluated.

elementpath allows one parser class per module, hence a module of its
own.
"""

from __future__ import annotations

from decimal import Decimal

from elementpath import XPath2Parser


class Unsupported(Exception):
    """A function acrn-shm cannot evaluate for this scenario."""


class AcrnXPathParser(XPath2Parser):
    """XPath 2.0 with the functions ACRN's data checks use."""


_method = AcrnXPathParser.method
_function = AcrnXPathParser.function


def _text(value):
    # A node's text, or the value itself.
    elem = getattr(value, "elem", None)
    if elem is not None:
        return elem.text
    return getattr(value, "text", value)


def _integer(value) -> int:
    value = _text(value)
    if isinstance(value, bool):
        raise TypeError(f"invalid type {type(value)!r} for integer")
    if isinstance(value, int):
        return value
    if isinstance(value, (float, Decimal)):
        return int(value)
    text = str(value) if value is not None else ""
    if text.startswith("0x"):
        return int(text, 16)
    raise TypeError(f"invalid type {type(value)!r} for integer")


@_method(_function("bitwise-and", nargs=2))
def evaluate(self, context=None):  # noqa: F811 - elementpath binds by name
    try:
        return (_integer(self.get_argument(context, 0))
                & _integer(self.get_argument(context, 1)))
    except ValueError as err:
        raise self.error("FORG0001", err) from None
    except TypeError as err:
        raise self.error("XPTY0004", err) from None


@_method(_function("bits-of", nargs=1))
def evaluate(self, context=None):  # noqa: F811 - elementpath binds by name
    try:
        value = _integer(self.get_argument(context))
    except TypeError as err:
        raise self.error("XPTY0004", err) from None
    return [bit for bit in range(value.bit_length()) if value >> bit & 1]


@_method(_function("has", nargs=2))
def evaluate(self, context=None):  # noqa: F811 - elementpath binds by name
    wanted = self.get_argument(context, index=1, cls=str)
    return any(self.data_value(item) == wanted
               for item in self[0].select(context))


@_method(_function("duplicate-values", nargs=1))
def evaluate(self, context=None):  # noqa: F811 - elementpath binds by name
    seen, repeated = [], []
    for item in self[0].select(context):
        value = self.data_value(item)
        if value in seen:
            if value not in repeated:
                repeated.append(value)
        else:
            seen.append(value)
    return repeated


@_method(_function("number-of-clos-id-needed", nargs=1))
def evaluate(self, context=None):  # noqa: F811 - elementpath binds by name
    node = self.get_argument(context, index=0)
    elem = getattr(node, "elem", node)
    if elem is None or not hasattr(elem, "iter"):
        return 0
    if any(True for _ in elem.iter("POLICY")):
        raise Unsupported("acrn-shm does not compute the CLOS IDs an RDT "
                          "cache policy needs")
    return 0
