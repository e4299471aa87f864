"""The typer application of ``acrn-shm``, made from the commands the
command modules declare (:mod:`.spec`): typer is imported here and in
:mod:`.channel` only, and only when the quick path (:mod:`.quick`) did
not take the command line."""

import sys

from .. import __version__
from . import channel
from .build import BUILD
from .exits import EXIT_OK
from .launch import CHECK_LAUNCH, LAUNCH_SCRIPT
from .lint import EXPLAIN, LINT, LSP, RULES
from .qemu import (
    GUEST, HOST_PREP, IVSHMEM_SERVER, LIBVIRT_XML, QEMU_ARGS, QEMU_TRY,
)
from .regions import ADD_REGION, GRAPH, REGIONS, REMOVE_REGION, SET_REGION
from .spec import Argument, Command, Option
from .upgrade import UPGRADE

#: Every command, in the order of ``acrn-shm --help`` (the channel group
#: comes last).
COMMANDS = (LINT, ADD_REGION, REMOVE_REGION, SET_REGION, UPGRADE,
            LAUNCH_SCRIPT, CHECK_LAUNCH, QEMU_ARGS, LIBVIRT_XML, HOST_PREP,
            GUEST, QEMU_TRY, IVSHMEM_SERVER, BUILD, GRAPH, REGIONS, LSP,
            RULES, EXPLAIN)


def choices(values):
    """Shell completion offering ``values``."""
    def complete(incomplete: str) -> list[str]:
        return [value for value in values if value.startswith(incomplete)]
    return complete


def typer_option(option: Option):
    """The typer option of a declared :class:`~.spec.Option`."""
    import typer

    return typer.Option(
        *option.names, metavar=option.metavar, help=option.help,
        parser=option.parser, autocompletion=option.complete or (
            choices(option.choices) if option.choices else None))


def _annotation(param):
    """The annotated type typer reads a declared parameter from."""
    from typing import Annotated, Optional

    import typer

    if isinstance(param, Argument):
        kind = list[str] if param.variadic else str
        return Annotated[Optional[kind] if param.optional else kind,
                         typer.Argument(metavar=param.metavar,
                                        help=param.help,
                                        autocompletion=param.complete)]
    kind = list[param.kind] if param.multiple else param.kind
    if param.default is None and not param.required:
        kind = Optional[kind]
    return Annotated[kind, typer_option(param)]


def _default(param):
    """The default typer sees: none for what must be given."""
    import inspect

    if isinstance(param, Argument):
        return None if param.optional else inspect.Parameter.empty
    return inspect.Parameter.empty if param.required else param.default


def add_command(app, command: Command) -> None:
    """Add the typer command made from ``command`` to ``app``."""
    import inspect

    import typer

    def run(**params) -> None:
        if command.extra_args:
            params["args"] = list(params.pop("ctx").args)
        raise typer.Exit(command.run(**params))

    keyword = inspect.Parameter.KEYWORD_ONLY
    run.__signature__ = inspect.Signature([
        *([inspect.Parameter("ctx", keyword, annotation=typer.Context)]
          if command.extra_args else []),
        *(inspect.Parameter(
            param.param, keyword,
            default=_default(param),
            annotation=_annotation(param))
          for param in command.params)])
    run.__doc__ = command.help
    run.__name__ = command.name.replace("-", "_")
    app.command(command.name,
                context_settings=command.context_settings)(run)


def build_app():
    """The typer application with every command."""
    from typing import Annotated, Optional

    import typer

    app = typer.Typer(
        name="acrn-shm",
        help="Inter-VM shared memory (IVSHMEM) for ACRN and QEMU: lint "
        "board and scenario XMLs.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    def version_callback(value: bool) -> None:
        if value:
            sys.stdout.write(f"acrn-shm {__version__}\n")
            raise typer.Exit(EXIT_OK)

    @app.callback()
    def root(
        version: Annotated[bool, typer.Option(
            "--version", callback=version_callback, is_eager=True,
            help="Print the version and exit.")] = False,
    ) -> None:
        """Inter-VM shared memory (IVSHMEM) for ACRN and QEMU."""

    for command in COMMANDS:
        add_command(app, command)

    group = typer.Typer(
        name="channel", no_args_is_help=True, rich_markup_mode=None,
        help=channel.HELP,
        context_settings={"help_option_names": ["-h", "--help"]})
    for command in channel.COMMANDS:
        add_command(group, command)
    app.add_typer(group, name="channel")
    return app
