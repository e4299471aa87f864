"""The ``acrn-shm`` command line (the only module that uses typer/rich).

Exit status: 0 clean, 1 error findings, 2 usage or input error.
"""


import os
import sys
from . import __version__
from .errors import AcrnShmError, UsageError

LINT_FORMATS = ("text", "json", "sarif", "github")


def run_lint(paths: list[str], board: str | None, output_format: str,
             select: list[str] | None, ignore: list[str] | None,
             config: str | None, no_cache: bool) -> int:
    """Lint, print the report, and return the exit status."""
    from dataclasses import replace

    from .config import load_config, parse_codes
    from .formats import FORMATS
    from .lint import lint

    formatter = FORMATS.get(output_format)
    if formatter is None:
        return _fail(f"unknown output format '{output_format}'; choose "
                     + ", ".join(FORMATS))
    try:
        settings = load_config(config)
        if select:
            settings = replace(settings, select=parse_codes(
                ",".join(select), "--select"))
        if ignore:
            settings = replace(settings, ignore=settings.ignore
                               + parse_codes(",".join(ignore), "--ignore"))
        if no_cache:
            settings = replace(settings, use_cache=False)
        result = lint(paths, board, settings)
    except AcrnShmError as exc:
        return _fail(str(exc))
    if result.files or result.diagnostics or not result.errors:
        sys.stdout.write(formatter(result.diagnostics, result.files))
    for error in result.errors:
        sys.stderr.write(f"acrn-shm: error: {error}\n")
    return result.exit_code


def _fail(message: str) -> int:
    sys.stderr.write(f"acrn-shm: error: {message}\n")
    return 2


def build_app():
    """The typer application with every command."""
    from typing import Annotated, Optional

    import typer

    app = typer.Typer(
        name="acrn-shm",
        help="Inter-VM shared memory (IVSHMEM) for ACRN and QEMU: lint "
        "board and scenario XMLs.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    def version_callback(value: bool) -> None:
        if value:
            sys.stdout.write(f"acrn-shm {__version__}\n")
            raise typer.Exit(0)

    @app.callback()
    def root(
        version: Annotated[bool, typer.Option(
            "--version", callback=version_callback, is_eager=True,
            help="Print the version and exit.")] = False,
    ) -> None:
        """Inter-VM shared memory (IVSHMEM) for ACRN and QEMU."""

    @app.command()
    def lint(
        paths: Annotated[list[str], typer.Argument(
            metavar="SCENARIO.xml|DIR...",
            help="Scenario or launch XMLs, or folders holding one board "
            "XML plus scenarios.")],
        board: Annotated[Optional[str], typer.Option(
            "--board", "-b", metavar="BOARD.xml",
            help="Board XML (default: the one beside each scenario).")
        ] = None,
        output_format: Annotated[str, typer.Option(
            "--output-format", "-f", metavar="|".join(LINT_FORMATS),
            help="How to print the findings.")] = "text",
        select: Annotated[Optional[list[str]], typer.Option(
            "--select", metavar="CODES",
            help="Only these codes or prefixes (comma-separated).")] = None,
        ignore: Annotated[Optional[list[str]], typer.Option(
            "--ignore", metavar="CODES",
            help="Skip these codes or prefixes (comma-separated).")] = None,
        config: Annotated[Optional[str], typer.Option(
            "--config", metavar="PYPROJECT.toml",
            help="Read [tool.acrn-shm] from this file (default: the "
            "nearest pyproject.toml).")] = None,
        no_cache: Annotated[bool, typer.Option(
            "--no-cache",
            help="Do not read or write the result cache.")] = False,
    ) -> None:
        """Check IVSHMEM regions of ACRN scenarios against every rule.

        Example: acrn-shm lint --board whl-ipc-i5.xml hybrid_rt.xml
        """
        raise typer.Exit(run_lint(paths, board, output_format, select,
                                  ignore, config, no_cache))

    @app.command("rules")
    def list_rules(
        output_format: Annotated[str, typer.Option(
            "--output-format", "-f", metavar="text|json",
            help="A table, or JSON.")] = "text",
    ) -> None:
        """List every rule: code, name, default severity, summary.

        Example: acrn-shm rules
        """
        raise typer.Exit(print_rules(output_format))

    @app.command()
    def explain(
        code: Annotated[str, typer.Argument(
            help="A rule code, e.g. ISM201.")],
    ) -> None:
        """Print the documentation of one rule.

        Example: acrn-shm explain ISM201
        """
        raise typer.Exit(print_rule_doc(code))

    return app


def print_rules(output_format: str) -> int:
    """Print the rule table (or JSON); return the exit status."""
    import json

    from .rules import RULES, summary

    rows = [(code, rule.NAME, rule.SEVERITY, summary(rule))
            for code, rule in RULES.items()]
    if output_format == "json":
        sys.stdout.write(json.dumps(
            [dict(zip(("code", "name", "severity", "summary"), row))
             for row in rows], indent=2) + "\n")
        return 0
    if output_format != "text":
        return _fail(f"unknown output format '{output_format}'; choose "
                     "text, json")
    from rich.console import Console
    from rich.table import Table

    table = Table("code", "name", "severity", "summary",
                  title="acrn-shm rules")
    for row in rows:
        table.add_row(*row)
    Console(width=max(100, _columns())).print(table)
    return 0


def print_rule_doc(code: str) -> int:
    """Print one rule's documentation; return the exit status."""
    from .rules import get

    try:
        rule = get(code)
    except UsageError as exc:
        return _fail(str(exc))
    doc = (rule.__doc__ or "").strip()
    sys.stdout.write(f"{doc}\n\nDefault severity: {rule.SEVERITY}\n")
    return 0


class _NotFast(Exception):
    """The quick parser cannot take these arguments; typer will."""


def fast_lint_parser():
    """An argparse twin of ``lint`` for the common case (no typer import).

    Loading typer costs more than linting a scenario, so plain ``lint``
    calls are parsed here; anything it does not accept goes to typer.
    """
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            raise _NotFast(message)

    parser = Parser(prog="acrn-shm lint", add_help=False)
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--board", "-b")
    parser.add_argument("--output-format", "-f", default="text",
                        choices=LINT_FORMATS)
    parser.add_argument("--select", action="append")
    parser.add_argument("--ignore", action="append")
    parser.add_argument("--config")
    parser.add_argument("--no-cache", action="store_true")
    return parser


def _fast_lint(argv: list[str]) -> int | None:
    if any(arg in ("-h", "--help") for arg in argv):
        return None
    try:
        args = fast_lint_parser().parse_args(argv)
    except _NotFast:
        return None
    return run_lint(args.paths, args.board, args.output_format, args.select,
                    args.ignore, args.config, args.no_cache)


def _columns() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def main() -> None:
    """Entry point of the ``acrn-shm`` command."""
    try:
        if sys.argv[1:2] == ["lint"]:
            status = _fast_lint(sys.argv[2:])
            if status is not None:
                sys.exit(status)
        build_app()(prog_name="acrn-shm")
    except AcrnShmError as exc:
        sys.stderr.write(f"acrn-shm: error: {exc}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - never a traceback for users
        if os.environ.get("ACRN_SHM_DEBUG"):
            raise
        sys.stderr.write(
            f"acrn-shm: internal error: {type(exc).__name__}: {exc} "
            "(set ACRN_SHM_DEBUG=1 for a traceback)\n")
        sys.exit(2)
