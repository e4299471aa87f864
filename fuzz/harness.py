"""What acrn-shm does with one input, in memory, and what must hold.

Each method of :class:`Harness` makes the library calls of one command
of ``acrn_ivshmem/cli.py`` (``run_lint``, ``run_edit``, ``run_upgrade``)
on XML bytes instead of a file: no terminal, no lock, nothing written.
It raises :class:`Violation` where the command would misbehave:

- any exception other than :class:`AcrnShmError` (a traceback, or the
  CLI's "internal error" line) escapes as it is;
- an error message is not one line, or does not start with the name of
  one of the input files (``path:``);
- a diagnostic, hint, note or summary the CLI prints is not one line;
- an edit, fix or upgrade produces XML that acrn-shm cannot read back.

Used by the atheris target ``fuzz_acrn_shm.py`` and by
``tests/test_properties.py``; it needs neither atheris nor hypothesis.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from acrn_ivshmem import schema
from acrn_ivshmem.cli import _spec
from acrn_ivshmem.config import LintConfig
from acrn_ivshmem.edit import (
    EditResult, RegionSpec, add_region, remove_region, set_region,
)
from acrn_ivshmem.errors import AcrnShmError, UsageError
from acrn_ivshmem.formats import FORMATS
from acrn_ivshmem.fixes import apply_fixes
from acrn_ivshmem.lint import Linter, find_board_beside
from acrn_ivshmem.loader import from_document
from acrn_ivshmem.model import Board, LaunchConfig, Scenario
from acrn_ivshmem.upgrade import merge_regions, merged_assignments, upgrade
from acrn_ivshmem.xmlio import Document, parse_bytes, parse_file

#: The name the fuzzed bytes go by. Its folder does not exist, so
#: nothing is ever read from or written to it.
INPUT = "/nonexistent/acrn-shm-fuzz/input.xml"

_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_REGION_NAMES = re.compile(rb"(?:<NAME>|[hd][vm]:/)([^,<]{1,40})")
_VM_NAME = re.compile(rb"<name>([^<]{1,40})<")
_VM_IDS = re.compile(rb"<vm id=.(\d+)")

PROJECT = Path(__file__).resolve().parent.parent
#: Where real XMLs come from: never copied into the project.
SEED_FOLDERS = (PROJECT.parent / "shared" / "acrn-data",
                PROJECT / "scenario-xmls", PROJECT / "board-xmls")


class Violation(Exception):
    """acrn-shm would misbehave on this input (a fuzzing finding)."""


#: Findings known but not fixed yet: a message matching one of these
#: compiled patterns is not a violation. Give each entry an
#: xfail(strict=True) test in tests/test_properties.py, which starts
#: failing once the finding is fixed and the entry can go. None now.
KNOWN_ISSUES: tuple[re.Pattern, ...] = ()


def known_issue(message: str) -> bool:
    """True for a message that :data:`KNOWN_ISSUES` excuses."""
    return any(pattern.fullmatch(message) for pattern in KNOWN_ISSUES)


# -- the property ---------------------------------------------------------


def is_one_line(text: str) -> bool:
    """True when ``text`` prints as one line: not empty, and no control
    character but tab (none of \\n, \\r, \\v, \\f, \\x1c-\\x1e, \\x85;
    no terminal escape either), as :func:`acrn_ivshmem.errors.quoted`
    makes sure."""
    return bool(text) and _CONTROL.search(text) is None


def check_message(message: str, paths: Sequence[str] = (INPUT,)) -> None:
    """An error message must be one line starting with one of ``paths``."""
    if not is_one_line(message) and not known_issue(message):
        raise Violation(f"error message is not one line: {message!r}")
    if paths and not any(message.startswith(f"{p}:") for p in paths):
        raise Violation(f"error message does not start with "
                        f"{' or '.join(paths)}: {message!r}")


def check_printed(what: str, text: str) -> None:
    """Something the CLI prints as one line must be one."""
    if not is_one_line(text):
        raise Violation(f"{what} is not one line: {text!r}")


def read_back(what: str, data: bytes, path: str) -> Document:
    """Parse what acrn-shm produced; it must be readable XML."""
    try:
        return parse_bytes(data, path)
    except AcrnShmError as exc:
        raise Violation(f"{what} is not readable XML: {exc}") from None


# -- the input files ------------------------------------------------------


def real_xmls() -> list[Path]:
    """Every XML under :data:`SEED_FOLDERS`, sorted."""
    found: list[Path] = []
    for folder in SEED_FOLDERS:
        if folder.is_dir():
            found.extend(sorted(folder.rglob("*.xml")))
    return found


class Companions:
    """The real files an input is combined with: boards, launch XMLs
    (for fuzzed legacy scenarios), legacy scenarios (for fuzzed launch
    XMLs) and v3 scenarios (targets of ``upgrade --into``), each read
    and parsed once."""

    def __init__(self, paths: Sequence[Path] | None = None):
        self.boards: list[str] = []
        self.legacy: list[str] = []
        self.launches: list[str] = []
        self.v3: list[str] = []
        self.documents: dict[str, Document] = {}
        for path in real_xmls() if paths is None else paths:
            try:
                document = parse_file(str(path))
                model = from_document(document)
            except AcrnShmError:
                continue
            self.documents[str(path)] = document
            if isinstance(model, Board):
                self.boards.append(str(path))
            elif isinstance(model, LaunchConfig):
                self.launches.append(str(path))
            elif model.is_legacy:
                self.legacy.append(str(path))
            else:
                self.v3.append(str(path))
        self.beside = {path: find_board_beside(path, from_document(
            self.documents[path])) for path in self.v3}


def memoize_board_structure(companions: Companions) -> None:
    """Validate each companion board once, not on every lint.

    The lint command validates the board on every run (unless cached on
    disk); the boards here never change, so their findings are kept in
    memory. Every other document is validated every time, uncached.
    """
    original = schema.check_structure
    known = {}
    for path in companions.boards:
        document = companions.documents[path]
        known[document.data] = original(document, "board", False)

    def check_structure(document, kind, use_cache=True):
        findings = known.get(document.data) if kind == "board" else None
        if findings is not None:
            return list(findings)
        return original(document, kind, False)

    schema.check_structure = check_structure


# -- the commands ---------------------------------------------------------


class Harness:
    """Runs commands on in-memory inputs with one long-lived linter (the
    boards stay loaded, as in one ``lint`` run over many files).

    ``lint_before`` False skips the lint of the unedited input that the
    edit commands make (the same as the ``lint`` command on that input),
    and lints only what the edit produced.
    """

    def __init__(self, companions: Companions, use_cache: bool = False,
                 lint_before: bool = True):
        self.companions = companions
        self.linter = Linter(LintConfig(use_cache=use_cache))
        self.lint_before = lint_before

    def _paths(self, *paths: str | None) -> tuple[str, ...]:
        return tuple(p for p in paths if p is not None)

    def check_lint(self, result, paths: Sequence[str]) -> None:
        """The errors and the text and GitHub reports of a lint run:
        one line per error, per diagnostic and per hint."""
        for error in result.errors:
            check_message(error, paths)
        report = FORMATS["text"](result.diagnostics, result.files)
        lines = report[:-1].split("\n")
        if len(lines) != len(result.diagnostics) + sum(
                1 for d in result.diagnostics if d.hint) + 1:
            raise Violation(f"text report has extra lines: {report!r}")
        for line in lines:
            check_printed("text report line", line)
        # GitHub reads workflow commands line by line.
        annotations = FORMATS["github"](result.diagnostics, result.files)
        if "\r" in annotations or len(annotations.split(
                "\n")) != len(result.diagnostics) + 1:
            raise Violation(f"GitHub report has extra lines: "
                            f"{annotations!r}")

    def lint(self, data: bytes, board: str | None = None,
             output_format: str = "text", fix: bool = False) -> None:
        """``acrn-shm lint [--board B] [-f F] [--fix] INPUT``."""
        paths = self._paths(INPUT, board)
        try:
            self.linter.preload(parse_bytes(data, INPUT))
            result = self.linter.lint([INPUT], board)
            self.check_lint(result, paths)
            FORMATS[output_format](result.diagnostics, result.files)
            fixes = [p.fix for p in result.fixes if p.path == INPUT]
            if not fix or not fixes:
                return
            fixed, applied = apply_fixes(data, fixes)
            if not applied:
                return
            self.linter.preload(read_back("lint --fix output", fixed,
                                          INPUT))
            self.check_lint(self.linter.lint([INPUT], board), paths)
        except AcrnShmError as exc:
            check_message(str(exc), paths)

    def edit(self, data: bytes, change: Callable[[Document, Board | None],
                                                  EditResult],
             board: str | None = None, path: str = INPUT) -> None:
        """``run_edit``: parse, change, lint before and after."""
        paths = self._paths(path, board)
        try:
            document = parse_bytes(data, path)
            if not isinstance(from_document(document), Scenario):
                return  # "path: expected a scenario XML"
            board_model = None
            if board is not None:
                board_model = self.linter.load(board).model
            try:
                result = change(document, board_model)
            except UsageError as exc:
                message = str(exc)
                if not message.startswith(f"{path}:"):
                    message = f"{path}: {message}"
                check_message(message, paths)
                return
            if self.lint_before:
                self.linter.preload(document)
                self.check_lint(self.linter.lint([path], board), paths)
            self.linter.preload(read_back("edit output", result.data, path))
            self.check_lint(self.linter.lint([path], board), paths)
            check_printed("edit summary", result.summary)
            # Printed to stdout, which is strict UTF-8.
            result.summary.encode("utf-8")
        except AcrnShmError as exc:
            check_message(str(exc), paths)

    def add_region(self, data: bytes, options: dict,
                   board: str | None = None) -> None:
        """``acrn-shm add-region INPUT --name ... --vms ...``."""
        spec = _options_spec(options)
        if spec is not None:
            self.edit(data, lambda document, model: add_region(
                document, spec, model), board)

    def remove_region(self, data: bytes, name: str,
                      board: str | None = None) -> None:
        """``acrn-shm remove-region INPUT NAME``."""
        self.edit(data, lambda document, model: remove_region(
            document, name), board)

    def set_region(self, data: bytes, name: str, options: dict,
                   board: str | None = None) -> None:
        """``acrn-shm set-region INPUT NAME --size ... --vms ...``."""
        spec = _options_spec(dict(options, name=None))
        if spec is not None:
            self.edit(data, lambda document, model: set_region(
                document, name, spec, model), board)

    def upgrade(self, data: bytes, launches: Sequence[str] = (),
                board: str | None = None, scenario: str | None = None,
                into: str | None = None) -> None:
        """``acrn-shm upgrade INPUT [--launch L] [--board B] [--into V3]``.

        With ``scenario``, the input is a launch XML passed with
        ``--launch`` to the upgrade of that real legacy scenario.
        """
        documents = self.companions.documents
        legacy_path = scenario or INPUT
        launch_paths = [INPUT] if scenario else list(launches)
        paths = self._paths(legacy_path, *launch_paths, board)
        try:
            # upgrade() only reads its documents: the companions' are
            # parsed once (and their positions found once).
            document = (documents[scenario] if scenario
                        else parse_bytes(data, INPUT))
            model = from_document(document)
            if not isinstance(model, Scenario) or not model.is_legacy:
                return  # "path: not a legacy (ACRN v2.x) scenario"
            launch_documents = ([parse_bytes(data, INPUT)] if scenario
                                else [documents[p] for p in launches])
            result = upgrade(document, launch_documents, board=documents[
                board] if board else None)
        except AcrnShmError as exc:
            check_message(str(exc), paths)
            return
        for note in result.notes:
            check_printed("upgrade note", note)
        converted = read_back("upgrade output", result.data, INPUT)
        try:
            model = from_document(converted)
        except AcrnShmError as exc:
            raise Violation(f"upgrade output is no ACRN XML: {exc}") from None
        if not isinstance(model, Scenario) or model.is_legacy:
            raise Violation("upgrade output is not a v3 scenario")
        result.data.decode("utf-8")  # printed to stdout
        if into is None:
            return

        def merge(target, _board_model):
            rows = merged_assignments(target, result)
            return EditResult(merge_regions(target, result),
                              f"merged {len(rows)} region member(s) from "
                              f"{legacy_path}", ())

        self.edit(documents[into].data, merge,
                  self.companions.beside.get(into), path=into)


def _options_spec(options: dict) -> RegionSpec | None:
    """The CLI's RegionSpec from option values, or None after checking
    its usage error (printed without a file name)."""
    try:
        return _spec(options.get("name"), options.get("size"),
                     options.get("vms"), options.get("provider"),
                     options.get("region_id"), options.get("vbdf"))
    except AcrnShmError as exc:
        check_message(str(exc), ())
        return None


def names_in(data: bytes) -> tuple[list[str], list[str], list[str]]:
    """Region names, VM names and VM ids that ``data`` seems to hold, for
    picking edit options (a quick look, no parse)."""
    def shown(texts) -> list[str]:
        return [text.decode("utf-8", "replace").strip() for text in texts
                if text.strip()]
    names = (_VM_NAME.search(vm) for vm in data.split(b"<vm ")[1:])
    return (shown(_REGION_NAMES.findall(data)),
            shown(match.group(1) for match in names if match),
            shown(_VM_IDS.findall(data)))


def fsdecode(raw: bytes) -> str:
    """Bytes as they reach a command-line option: no NUL, undecodable
    bytes as surrogates (what Python makes of ``sys.argv``)."""
    return os.fsdecode(raw.replace(b"\0", b""))
