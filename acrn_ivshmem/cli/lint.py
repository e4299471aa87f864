"""``acrn-shm lint``, ``rules`` and ``explain``: lint, fix, and the
rules' documentation."""

import os
import sys

from ..errors import AcrnShmError, UsageError, quoted
from .exits import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, fail, findings_status
from .spec import NO_CACHE, TABLE_OR_JSON, Argument, Command, Option

LINT_FORMATS = ("text", "json", "sarif", "github")


def run_lint(paths: list[str], board: str | None, output_format: str,
             select: list[str] | None, ignore: list[str] | None,
             config: str | None, no_cache: bool, fix: bool = False,
             diff: bool = False, skip_other_xml: bool = False,
             acrn_schema: bool = False, acrn_src: str | None = None,
             unsafe_fixes: bool = False) -> int:
    """Lint (and fix), print the report, and return the exit status.

    ``fix`` and ``diff`` take the safe fixes, and with ``unsafe_fixes``
    the unsafe ones too.

    With ``acrn_schema``, ACRN's own checks (ISM901-ISM904) run too,
    with the schemas of the tree ``acrn_src`` (default: ``$ACRN_SRC``).
    """
    from ..lint.config import load_config, parse_codes
    from ..lint.engine import is_acrn_xml, lint
    from ..lint.formats import FORMATS
    from ..record import replace

    formatter = FORMATS.get(output_format)
    if formatter is None:
        return fail(f"unknown output format {quoted(output_format)}; choose "
                    + ", ".join(FORMATS))
    if skip_other_xml:
        paths = [path for path in paths
                 if os.path.isdir(path) or is_acrn_xml(path)]
        if not paths:
            return EXIT_OK
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
        if acrn_src is not None and not acrn_schema:
            return fail("--acrn-src is only used with --acrn-schema")
        if acrn_schema:
            settings = replace(settings, acrn_src=_acrn_tree(acrn_src))
        result = lint(paths, board, settings)
        if diff:
            # The diff only; files that could not be read still say so.
            changed = bool(result.fixes) and _apply_fixes(
                result.fixes, write=False, unsafe=unsafe_fixes)
            for error in result.errors:
                fail(error)
            return (EXIT_USAGE if result.errors
                    else EXIT_FINDINGS if changed else EXIT_OK)
        if fix and result.fixes:
            _apply_fixes(result.fixes, write=True, unsafe=unsafe_fixes)
            result = lint(paths, board, settings)
    except AcrnShmError as exc:
        return fail(str(exc))
    if result.files or result.diagnostics or not result.errors:
        sys.stdout.write(formatter(result.diagnostics, result.files,
                                   unsafe_fixes=unsafe_fixes))
    for error in result.errors:
        fail(error)
    return EXIT_USAGE if result.errors else findings_status(
        result.diagnostics)


def _acrn_tree(acrn_src: str | None) -> str:
    """The ACRN tree of ``--acrn-schema``. Its schemas are read when a
    file needs them (not when every result is cached); a tree they
    cannot be built from stops the run with one error."""
    from ..lint import acrn_schema

    tree = acrn_schema.tree_path(acrn_src)
    acrn_schema.require_xmlschema()
    return tree


def _apply_fixes(fixes, write: bool, unsafe: bool = False) -> bool:
    """Apply the safe fixes (and with ``unsafe`` the unsafe ones) with
    :func:`~acrn_ivshmem.lint.fixes.fix_files`; list each on stderr.
    With ``write`` False, print a unified diff instead. Returns whether
    any file changed.
    """
    from ..lint.fixes import fix_files, wanted
    from .render import write_diff

    changed = False
    for fixed in fix_files(wanted(fixes, unsafe), write):
        changed = True
        for code, done in fixed.applied:
            sys.stderr.write(
                f"{'fixed' if write else 'would fix'}: {fixed.path}:"
                f"{done.loc.line}:{done.loc.column}: {code} "
                f"{quoted(done.old)} -> {quoted(done.new)}\n")
        if not write:
            write_diff(fixed.path, fixed.before, fixed.after)
    return changed


def print_rules(output_format: str) -> int:
    """Print the rule table (or JSON); return the exit status."""
    import json

    from ..rules import RULES, summary
    from .render import columns, plain_console

    rows = [(code, rule.NAME, rule.SEVERITY, summary(rule))
            for code, rule in RULES.items()]
    if output_format == "json":
        sys.stdout.write(json.dumps(
            [dict(zip(("code", "name", "severity", "summary"), row))
             for row in rows], indent=2) + "\n")
        return EXIT_OK
    if output_format != "text":
        return fail(f"unknown output format {quoted(output_format)}; choose "
                    "text, json")
    from rich.table import Table

    table = Table("code", "name", "severity", "summary",
                  title="acrn-shm rules")
    for row in rows:
        table.add_row(*row)
    plain_console(width=max(100, columns())).print(table)
    return EXIT_OK


def print_rule_doc(code: str, output_format: str = "text") -> int:
    """Print one rule's documentation; return the exit status."""
    from ..lint import rule_docs
    from ..rules import get

    render = {"text": rule_docs.text, "markdown": rule_docs.markdown}
    if output_format not in render:
        return fail(f"unknown output format {quoted(output_format)}; choose "
                    "text, markdown")
    try:
        rule = get(code)
    except UsageError as exc:
        return fail(str(exc))
    sys.stdout.write(render[output_format](rule))
    return EXIT_OK


#: ``acrn-shm lint``: the typer command and the quick parser are made
#: from this one declaration.
LINT = Command("lint", run_lint, (
    Argument("paths", "SCENARIO.xml|DIR...", variadic=True,
             help="Scenario or launch XMLs, or folders: each folder at or "
             "below DIR that holds XMLs is a board folder (one board XML "
             "plus scenarios)."),
    Option("board", ("--board", "-b"), metavar="BOARD.xml",
           help="Board XML (default: the one beside each scenario)."),
    Option("output_format", ("--output-format", "-f"), default="text",
           metavar="|".join(LINT_FORMATS), choices=LINT_FORMATS,
           help="How to print the findings."),
    Option("select", ("--select",), multiple=True, metavar="CODES",
           help="Only these codes or prefixes (comma-separated)."),
    Option("ignore", ("--ignore",), multiple=True, metavar="CODES",
           help="Skip these codes or prefixes (comma-separated)."),
    Option("config", ("--config",), metavar="PYPROJECT.toml",
           help="Read [tool.acrn-shm] from this file (default: the "
           "nearest pyproject.toml)."),
    NO_CACHE,
    Option("fix", ("--fix",), bool, False,
           help="Apply the safe fixes (listed on stderr), then report "
           "what is left."),
    Option("diff", ("--diff",), bool, False,
           help="Print the safe fixes as a unified diff; write nothing."),
    Option("unsafe_fixes", ("--unsafe-fixes",), bool, False,
           help="With --fix or --diff, take the unsafe fixes too (they may "
           "change what ACRN builds; see each rule's 'Fix safety')."),
    Option("skip_other_xml", ("--skip-other-xml",), bool, False,
           help="Skip files whose root element is not <acrn-config> (for "
           "pre-commit)."),
    Option("acrn_schema", ("--acrn-schema",), bool, False,
           help="Also run ACRN's own checks (ISM901-ISM904): the schema "
           "and data checks of an ACRN source tree, reported at lines of "
           "your file."),
    Option("acrn_src", ("--acrn-src",), metavar="DIR",
           help="The ACRN source tree for --acrn-schema (default: "
           "$ACRN_SRC)."),
), """Check IVSHMEM regions of ACRN scenarios against every rule.

Example: acrn-shm lint --board whl-ipc-i5.xml hybrid_rt.xml""")


def run_lsp(stdio: bool, no_cache: bool) -> int:
    """``acrn-shm lsp``: the language server on stdin and stdout
    (``stdio`` is what editors pass; it is the only way)."""
    from ..lsp import serve

    return serve(use_cache=not no_cache)


def complete_code(incomplete: str) -> list[str]:
    """For shell completion of a rule code, in the case typed so far
    (explain takes ism201 as well)."""
    from ..rules import RULES

    return [incomplete + code[len(incomplete):] for code in RULES
            if code.startswith(incomplete.upper())]


LSP = Command("lsp", run_lsp, (
    Option("stdio", ("--stdio",), bool, False,
           help="Talk over stdin and stdout (the only way; accepted "
           "because editors pass it)."),
    NO_CACHE,
), """Run the language server (LSP) on stdin and stdout for editors.

Example: acrn-shm lsp   (started by the editor; see docs/editors.md)""")

RULES = Command("rules", print_rules, (TABLE_OR_JSON,),
                """List every rule: code, name, default severity, summary.

Example: acrn-shm rules""")

EXPLAIN = Command("explain", print_rule_doc, (
    Argument("code", help="A rule code, e.g. ISM201.",
             complete=complete_code),
    Option("output_format", ("--output-format", "-f"), default="text",
           metavar="text|markdown", choices=("text", "markdown"),
           help="Plain text, or the Markdown page of docs/rules/."),
), """Print the documentation of one rule.

Example: acrn-shm explain ISM201""")
