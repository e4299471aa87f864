"""The quick path: the common command lines of ``lint``,
``add-region``, ``set-region`` and ``remove-region`` parsed without
loading typer."""

import importlib

from .spec import Argument, Command


class QuickCommand:
    """What the quick parser knows of one command, read from its
    :class:`~.spec.Command`: the function that runs it (called with the
    parameters), its positional parameters (``variadic``: one or more of
    the last), its options (option string -> parameter), flags (the
    same), repeatable and integer parameters, allowed values, and the
    defaults typer would give."""

    def __init__(self, command: Command):
        options = [p for p in command.params if not isinstance(p, Argument)]
        arguments = [p for p in command.params if isinstance(p, Argument)]
        # What this parser does not do, typer would do differently.
        if command.extra_args or any(p.optional for p in arguments) or any(
                p.required or p.parser or p.kind not in (str, int, bool)
                for p in options):
            raise ValueError(f"{command.name}: the quick parser takes no "
                             "optional argument, required option, option "
                             "parser, float or extra arguments")
        self.spec = command
        self.run = command.run
        self.positionals = tuple(p.param for p in arguments)
        self.variadic = any(p.variadic for p in arguments)
        self.values = {name: p.param for p in options if not p.is_flag
                       for name in p.names}
        self.flags = {name: p.param for p in options if p.is_flag
                      for name in p.names}
        self.repeatable = tuple(p.param for p in options if p.multiple)
        self.integers = tuple(p.param for p in options if p.kind is int)
        self.choices = {p.param: p.choices for p in options
                        if p.choices is not None}
        self.defaults = {p.param: p.default for p in options
                         if p.default not in (None, False)}


#: The commands the quick parser takes (the common, scripted ones): the
#: module of ``cli/`` that declares each, and the declaration's name
#: there (only the module of the command run is imported).
QUICK_COMMANDS = {
    "lint": ("lint", "LINT"),
    "add-region": ("regions", "ADD_REGION"),
    "set-region": ("regions", "SET_REGION"),
    "remove-region": ("regions", "REMOVE_REGION"),
}


def quick_command(name: str) -> QuickCommand:
    """What the quick parser knows of the command ``name`` (one of
    :data:`QUICK_COMMANDS`)."""
    module, declaration = QUICK_COMMANDS[name]
    return QuickCommand(getattr(
        importlib.import_module(f"{__package__}.{module}"), declaration))


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
    command = quick_command(name)
    params = parse_quick(command, argv)
    return None if params is None else command.run(**params)
