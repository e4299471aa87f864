"""Commands declared once: their arguments, options and help as plain
records, from which :mod:`.app` makes the typer command and :mod:`.quick`
the parser of the quick path (which must not load typer).

A command module declares a :class:`Command` (``LINT`` in
:mod:`.lint`, the region edits in :mod:`.regions`); its ``run`` is
called with one keyword per parameter, as typer would call it.
"""

from __future__ import annotations

from collections.abc import Callable

from ..record import frozen, replace


@frozen
class Argument:
    """A positional parameter: ``variadic`` takes one or more words; an
    ``optional`` one may be left out (None)."""

    param: str
    metavar: str | None = None
    help: str | None = None
    variadic: bool = False
    optional: bool = False
    #: Shell completion: a function ``(ctx, incomplete) -> [str]``.
    complete: Callable | None = None


@frozen
class Option:
    """An option: its spellings (``names``), the parameter it fills, the
    value's type (``bool`` for a flag), the default (None: no value),
    whether it repeats (a list), the values it allows (also offered for
    completion), its help, whether it must be given, and a function
    that reads its text (``parser``) when ``kind`` alone does not."""

    param: str
    names: tuple[str, ...]
    kind: type = str
    default: object = None
    multiple: bool = False
    metavar: str | None = None
    help: str | None = None
    choices: tuple[str, ...] | None = None
    complete: Callable | None = None
    required: bool = False
    parser: Callable | None = None

    @property
    def is_flag(self) -> bool:
        """True for an option that takes no value."""
        return self.kind is bool


@frozen
class Command:
    """One command: its name, its parameters in the order of the help,
    its help text (summary, details, an example) and ``run``, called with
    the parameters by keyword; it returns the exit status. With
    ``extra_args``, the words no parameter took go to ``run`` as
    ``args`` (a list); ``context_settings`` are click's."""

    name: str
    run: Callable[..., int]
    params: tuple
    help: str
    extra_args: bool = False
    context_settings: dict | None = None


def size_option(text: str) -> int:
    """Read a ``--size`` value: MB, or a number with a binary unit
    (``512M``, ``1G``)."""
    from ..units import parse_size_mb

    return parse_size_mb(text, "--size")


def with_default(option: Option, default: object) -> Option:
    """``option`` with another default (the same option elsewhere)."""
    return replace(option, default=default)


#: ``--no-cache`` of the commands that lint.
NO_CACHE = Option("no_cache", ("--no-cache",), bool, False,
                  help="Do not read or write the result cache.")
#: ``-f text|json`` of the commands that print a table.
TABLE_OR_JSON = Option("output_format", ("--output-format", "-f"),
                       default="text", metavar="text|json",
                       choices=("text", "json"), help="A table, or JSON.")
#: ``--launch`` of the commands that read a legacy scenario's launch XMLs.
LAUNCH_XMLS = Option("launch", ("--launch",), multiple=True,
                     metavar="LAUNCH.xml",
                     help="v2.x launch XML of a legacy scenario "
                     "(repeatable).")
