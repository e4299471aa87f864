"""Frozen record classes, made without ``exec``.

:func:`frozen` does what ``@dataclass(frozen=True)`` (optionally with
``order=True``) does for the plain classes of the model: an
``__init__`` taking the annotated fields in order (positional or by
name, with the class-level defaults), ``__repr__``, ``__eq__`` and
``__hash__`` over the fields, the order comparisons, ``__match_args__``,
a ``__post_init__`` called after ``__init__``,
and assignment refused with :class:`FrozenInstanceError` (an
``AttributeError``, as dataclasses' is). ``dataclasses.fields``,
``replace`` and ``asdict`` work on them too: ``__dataclass_fields__``
is made, with the ``dataclasses`` module, when first asked for;
:func:`replace` copies one without importing that module.

Why: the dataclasses module generates each method's source and
compiles it, some 0.7 ms a class; the 23 classes on the lint path cost
more than the whole lint work. These cost some 20 microseconds each.
"""

from __future__ import annotations

from operator import attrgetter

__all__ = ["FrozenInstanceError", "frozen", "replace"]


class FrozenInstanceError(AttributeError):
    """Assigning to, or deleting, a field of a frozen record."""


class _DataclassFields:
    # ``__dataclass_fields__`` on first use: those of a real dataclass of
    # the same fields and defaults.
    def __get__(self, instance, owner):
        import dataclasses

        specs = []
        for name in owner.__match_args__:
            if name in owner.__record_defaults__:
                specs.append((name, owner.__annotations__[name],
                              dataclasses.field(
                                  default=owner.__record_defaults__[name])))
            else:
                specs.append((name, owner.__annotations__[name]))
        shadow = dataclasses.make_dataclass(owner.__name__, specs,
                                            frozen=True)
        fields = shadow.__dataclass_fields__
        type.__setattr__(owner, "__dataclass_fields__", fields)
        return fields


def frozen(cls=None, /, *, order: bool = False):
    """Make ``cls`` a frozen record of its annotated fields (see the
    module's documentation); ``order`` adds ``<``, ``<=``, ``>``, ``>=``
    comparing the fields in order."""
    def wrap(cls):
        return _make(cls, order)
    return wrap if cls is None else wrap(cls)


def replace(record, /, **changes):
    """A copy of ``record`` with ``changes`` (``dataclasses.replace``
    without importing dataclasses)."""
    values = {name: getattr(record, name) for name in record.__match_args__}
    values.update(changes)
    return type(record)(**values)


def _make(cls, order: bool):
    names = tuple(cls.__dict__.get("__annotations__", {}))
    known = frozenset(names)
    defaults = {name: cls.__dict__[name] for name in names
                if name in cls.__dict__}
    title = cls.__name__
    if len(names) == 1:
        single = attrgetter(names[0])

        def values(item):
            return (single(item),)
    else:
        values = attrgetter(*names) if names else (lambda item: ())

    count = len(names)
    post_init = cls.__dict__.get("__post_init__")

    def __init__(self, *args, **kwargs):
        if not kwargs and len(args) == count and post_init is None:
            self.__dict__.update(zip(names, args))  # the quick, usual case
            return
        if len(args) > count:
            raise TypeError(f"{title}.__init__() takes {len(names) + 1} "
                            f"positional arguments but {len(args) + 1} "
                            "were given")
        given = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in known:
                raise TypeError(f"{title}.__init__() got an unexpected "
                                f"keyword argument {key!r}")
            if key in given:
                raise TypeError(f"{title}.__init__() got multiple values "
                                f"for argument {key!r}")
            given[key] = value
        state = self.__dict__
        for name in names:
            if name in given:
                state[name] = given[name]
            elif name in defaults:
                state[name] = defaults[name]
            else:
                raise TypeError(f"{title}.__init__() missing required "
                                f"argument: {name!r}")
        if post_init is not None:
            post_init(self)

    def __repr__(self):
        shown = ", ".join(f"{name}={value!r}"
                          for name, value in zip(names, values(self)))
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    def __hash__(self):
        return hash(values(self))

    def __setattr__(self, name, value):
        if type(self) is cls or name in known:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self, name):
        if type(self) is cls or name in known:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    methods = {"__init__": __init__, "__repr__": __repr__, "__eq__": __eq__,
               "__hash__": __hash__, "__setattr__": __setattr__,
               "__delattr__": __delattr__}
    if order:
        def comparison(name, test):
            def compare(self, other):
                if other.__class__ is self.__class__:
                    return test(values(self), values(other))
                return NotImplemented
            compare.__name__ = name
            return compare

        methods["__lt__"] = comparison("__lt__", lambda a, b: a < b)
        methods["__le__"] = comparison("__le__", lambda a, b: a <= b)
        methods["__gt__"] = comparison("__gt__", lambda a, b: a > b)
        methods["__ge__"] = comparison("__ge__", lambda a, b: a >= b)
    for name, method in methods.items():
        method.__qualname__ = f"{cls.__qualname__}.{name}"
        setattr(cls, name, method)
    cls.__match_args__ = names
    cls.__record_defaults__ = defaults
    cls.__dataclass_fields__ = _DataclassFields()
    return cls
