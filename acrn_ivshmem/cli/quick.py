"""The quick path: the common command lines of ``lint``,
``add-region``, ``set-region`` and ``remove-region`` parsed without
loading typer."""

import functools

from .lint import LINT_FORMATS, run_lint
from .regions import run_region_edit


class QuickCommand:
    """What the quick parser knows of one command: the function that
    runs it (called with the parameters), its positional parameters
    (``variadic``: one or more of the last), its options (option string
    -> parameter), flags, repeatable and integer parameters, allowed
    values, and the defaults typer would give."""

    def __init__(self, run, positionals, values, flags=(), repeatable=(),
                 integers=(), choices=None, defaults=None,
                 variadic=False):
        self.run = run
        self.positionals = tuple(positionals)
        self.values = dict(values)
        self.flags = {flag: flag.lstrip("-").replace("-", "_")
                      for flag in flags}
        self.repeatable = tuple(repeatable)
        self.integers = tuple(integers)
        self.choices = dict(choices or {})
        self.defaults = dict(defaults or {})
        self.variadic = variadic


_BOARD = {"--board": "board", "-b": "board"}
_EDIT_FLAGS = ("--diff", "--dry-run", "--force")
_REGION_VALUES = {"--size": "size", "--vms": "vms", "--provider": "provider",
                  "--region-id": "region_id", "--vbdf": "vbdf", **_BOARD}
#: The commands the quick parser takes (the common, scripted ones).
QUICK_COMMANDS = {
    "lint": QuickCommand(
        run_lint, ["paths"], {**_BOARD, "--output-format": "output_format",
                    "-f": "output_format", "--select": "select",
                    "--ignore": "ignore", "--config": "config",
                    "--acrn-src": "acrn_src"},
        ["--no-cache", "--fix", "--diff", "--skip-other-xml",
         "--acrn-schema"],
        repeatable=["select", "ignore"],
        choices={"output_format": LINT_FORMATS},
        defaults={"output_format": "text"}, variadic=True),
    "add-region": QuickCommand(
        functools.partial(run_region_edit, "add-region"), ["scenario"],
        {"--name": "name", **_REGION_VALUES}, _EDIT_FLAGS,
        repeatable=["vbdf"], integers=["region_id"],
        defaults={"provider": "hv"}),
    "set-region": QuickCommand(
        functools.partial(run_region_edit, "set-region"),
        ["scenario", "name"], _REGION_VALUES, _EDIT_FLAGS,
        repeatable=["vbdf"], integers=["region_id"]),
    "remove-region": QuickCommand(
        functools.partial(run_region_edit, "remove-region"),
        ["scenario", "name"], _BOARD, _EDIT_FLAGS),
}


def parse_quick(command: QuickCommand, argv: list[str]) -> dict | None:
    """The parameters of ``command`` for common command lines, parsed as
    click would parse them, or None for anything else (help, an unknown
    or joined short option, a missing value or argument, a value click
    would refuse): typer then parses it and says what is wrong.

    Loading typer costs more than linting a scenario (argparse some
    10 ms more), so these commands are parsed here.
    """
    params: dict = dict.fromkeys(command.values.values())
    params.update(dict.fromkeys(command.flags.values(), False))
    params.update(command.defaults)
    positionals: list[str] = []
    index, only_positionals = 0, False
    while index < len(argv):
        arg = argv[index]
        index += 1
        if only_positionals or arg == "-" or not arg.startswith("-"):
            positionals.append(arg)
            continue
        if arg == "--":
            only_positionals = True
            continue
        name, equals, inline = (arg.partition("=") if arg.startswith("--")
                                else (arg, "", ""))
        if name in command.flags and not equals:
            params[command.flags[name]] = True
        elif name in command.values:
            if equals:
                value = inline
            elif index < len(argv):
                value = argv[index]  # click takes it even if it is "-x"
                index += 1
            else:
                return None
            key = command.values[name]
            if key in command.integers:
                try:
                    value = int(value)  # as click's INT converts
                except ValueError:
                    return None
            if key in command.repeatable:
                params[key] = [*(params[key] or []), value]
            else:
                params[key] = value
        else:
            return None
    if command.variadic:
        if not positionals:
            return None
        params[command.positionals[0]] = positionals
    elif len(positionals) != len(command.positionals):
        return None
    else:
        params.update(zip(command.positionals, positionals))
    if any(params[key] not in allowed
           for key, allowed in command.choices.items()):
        return None
    return params


def run_quick(name: str, argv: list[str]) -> int | None:
    """Run ``acrn-shm NAME ARGV`` without typer when :func:`parse_quick`
    takes ``argv``; None when it does not."""
    command = QUICK_COMMANDS[name]
    params = parse_quick(command, argv)
    return None if params is None else command.run(**params)
