"""The lint engine: find the files, load them, run every rule.

:func:`run_rules` is the one place rules run: every command that checks
something (lint, the edit gate, launch-script, check-launch, upgrade's
self-check and merge, the language server) calls it, directly or
through :class:`Linter`, so that ``[tool.acrn-shm]`` select, ignore and
severity and inline suppressions mean the same everywhere.

:func:`lint` takes scenario XMLs, launch XMLs, board XMLs and folders:
a folder laid out like ACRN's ``misc/config_tools/data/<board>/`` (one
board XML plus scenarios), or a tree of them such as ``data/`` itself
(:func:`xml_folders`), and returns every diagnostic in one pass. Input
errors of one file or folder do not stop the others; they are returned
separately.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import NamedTuple

from ..diagnostics import SEVERITIES, Diagnostic, Finding, TextFix
from ..errors import (
    AcrnShmError, InputError, SourceTreeError, UsageError, located,
)
from ..io.xmlio import Document, open_input, read_bytes, root_name
from ..model.loader import Loaded, from_document, load
from ..model.syntax import (
    Board, LaunchConfig, Scenario, Suppression, Suppressions,
)
from ..rules import RULES
from . import schema
from .config import LintConfig

_BOARD_MARKERS = (b"<BIOS_INFO", b"<PCI_DEVICE", b"<CPU_PROCESSOR_INFO",
                  b"<BASE_BOARD_INFO")
#: Rules about elements that the structure check (ISM001) may report
#: too; at an element ISM001 reports, their finding is dropped.
_STRUCTURE_CODES = frozenset(("ISM003", "ISM213", "ISM214", "ISM215"))


class PendingFix(NamedTuple):
    """A fix offered by rule ``code`` for the file at ``path`` (its
    safety class is ``fix.safety``)."""

    path: str
    code: str
    fix: TextFix


class LintResult(NamedTuple):
    """Diagnostics (sorted), input errors (one line each), the number of
    files linted (files that could not be read are not counted) and the
    fixes the rules offer, safe and unsafe."""

    diagnostics: tuple[Diagnostic, ...]
    errors: tuple[str, ...]
    files: int
    fixes: tuple[PendingFix, ...] = ()


class Checked(NamedTuple):
    """What :func:`run_rules` found: diagnostics, in the order the
    findings came, and the fixes they offer."""

    diagnostics: list[Diagnostic]
    fixes: list[PendingFix]


def run_rules(config: LintConfig, path: str, target: str | None = None,
              args: tuple = (), found: Iterable[tuple[str, Finding]] = (),
              suppressions: tuple[Suppression, ...] = (),
              severities: tuple[str, ...] = SEVERITIES) -> Checked:
    """Run the rules of ``target`` that ``config`` enables on ``args``
    and make their findings diagnostics of the file ``path``.

    ``args`` are what the rules' ``check()`` takes: ``(scenario,
    board)`` for ``scenario``, ``(launch, scenario)`` for ``launch``,
    ``(script, scenario, vm_name)`` for ``script``. ``found`` holds
    ``(code, finding)`` pairs of checks that are no rule's ``check()``
    (the structure check ISM001, ACRN's checks, the slot clashes of
    planned scripts); they go first. A code ``config`` does not select
    is dropped, so is a finding a suppression covers, and each
    diagnostic gets the configured severity. Where ISM001 reports an
    element, the other structure codes' findings there are dropped.
    Only codes whose configured severity is one of ``severities`` run
    and are reported (``("error",)``: what stops a command).
    """
    found = list(found)
    if target is not None:
        for code, rule in _enabled_rules(config, target, severities):
            found.extend((code, finding) for finding in rule.check(*args))
    silenced = Suppressions(suppressions)
    diagnostics, fixes = [], []
    for code, finding in _one_per_element(config, found):
        if (not config.enabled(code) or silenced.covers(code, finding.loc)
                or config.severity_of(code) not in severities):
            continue
        diagnostics.append(Diagnostic(
            path, finding.loc.line, finding.loc.column, code,
            config.severity_of(code), finding.message, finding.hint,
            "" if finding.fix is None else finding.fix.safety))
        if finding.fix is not None:
            fixes.append(PendingFix(path, code, finding.fix))
    return Checked(diagnostics, fixes)


@functools.lru_cache(maxsize=64)
def _enabled_rules(config: LintConfig, target: str,
                   severities: tuple[str, ...]
                   ) -> tuple[tuple[str, ModuleType], ...]:
    # (code, rule) of the enabled rules of ``target`` at one of
    # ``severities``, worked out once for a configuration, not for
    # every file.
    return tuple((code, rule) for code, rule in RULES.items()
                 if rule.TARGET == target and config.enabled(code)
                 and config.severity_of(code) in severities)


def _one_per_element(config: LintConfig, found: list[tuple[str, Finding]]
                     ) -> list[tuple[str, Finding]]:
    # One finding per misplaced element: ISM001's, when it is on.
    if not config.enabled("ISM001"):
        return found
    reported = {f.loc for code, f in found if code == "ISM001"}
    if not reported:
        return found
    return [(code, f) for code, f in found
            if code not in _STRUCTURE_CODES or f.loc not in reported]


class _Job(NamedTuple):
    path: str
    board_path: str | None


class XmlFolder(NamedTuple):
    """A folder that holds XML files: its path and the files' names."""

    path: str
    names: tuple[str, ...]


def xml_folders(top: str) -> Iterator[XmlFolder | InputError]:
    """Every folder at or below ``top`` that holds ``.xml`` files.

    This is how ``lint`` reads a folder argument: a board folder
    (``<board>.xml`` plus scenarios, as in ACRN's
    ``misc/config_tools/data/<board>/``), a folder of such folders
    (``data/`` itself), or deeper trees. Every folder is a board folder
    of its own, whatever its depth, and a folder that holds XML files
    is searched below too. Names that start with ``.`` (hidden files
    and folders, ACRN's build copies ``.scenario.xml``) are skipped,
    except ``top`` itself. Symbolic links to folders are followed, but
    each real folder is visited once, so a link loop ends. The order is
    stable: depth first, names sorted by code point, a folder's own
    files before its subfolders. A folder that cannot be listed yields
    an :class:`InputError` (and the walk goes on); folders without XML
    files yield nothing.
    """
    seen: set[tuple[int, int]] = set()
    pending = [top]
    while pending:
        folder = pending.pop()
        try:
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield InputError(located(
                folder, None, None,
                f"cannot read this folder: {exc.strerror or exc}"))
            continue
        names, below = [], []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if _is_folder(entry):
                below.append(os.path.join(folder, entry.name))
            elif entry.name.endswith(".xml"):
                names.append(entry.name)
        if names:
            yield XmlFolder(folder, tuple(names))
        pending.extend(reversed(below))


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return stat.S_ISDIR(entry.stat().st_mode)
    except OSError:
        return False  # a broken link: no folder


class Linter:
    """Lints files with one configuration, loading each file once."""

    def __init__(self, config: LintConfig | None = None):
        self.config = config or LintConfig()
        self._loaded: dict[str, Loaded | AcrnShmError] = {}
        self._board_findings: dict[str, list[Finding]] = {}
        self._fixes: list[PendingFix] = []
        self._boards = BoardFinder()

    def preload(self, document: Document) -> None:
        """Lint ``document`` in place of the file at its path (for edits).

        Raises :class:`AcrnShmError` if it is no ACRN XML.
        """
        key = os.path.normpath(document.path)
        self._loaded[key] = Loaded(from_document(document), document)

    def load(self, path: str) -> Loaded:
        """Load ``path`` once; raise the same error again on later calls."""
        key = os.path.normpath(path)
        if key not in self._loaded:
            try:
                self._loaded[key] = load(path)
            except AcrnShmError as exc:
                self._loaded[key] = exc
        loaded = self._loaded[key]
        if isinstance(loaded, AcrnShmError):
            raise loaded
        return loaded

    def _forget(self, path: str) -> None:
        # Boards are shared by many scenarios; other files are done with.
        key = os.path.normpath(path)
        if not isinstance(getattr(self._loaded.get(key), "model", None),
                          Board):
            self._loaded.pop(key, None)

    def lint(self, paths: list[str],
             board_path: str | None = None) -> LintResult:
        """Lint ``paths`` (files or folders), with ``board_path`` if given.

        A folder is a tree: see :func:`xml_folders`.
        """
        self._fixes = []
        self._boards = BoardFinder()
        errors: list[str] = []
        if board_path is not None:
            try:
                board = self.load(board_path)
            except AcrnShmError as exc:
                return LintResult((), (str(exc),), 0)
            if not isinstance(board.model, Board):
                raise UsageError(
                    f"{board_path}: --board expects a board XML, but this "
                    f"is a {_what(board.model)}")
        diagnostics: list[Diagnostic] = []
        checked_boards: set[str] = set()
        linted = 0
        for jobs in self._jobs(paths, board_path, errors):
            # A folder at a time: its files are loaded, linted, forgotten.
            for job in jobs:
                try:
                    diagnostics.extend(self._lint_one(job, checked_boards))
                    linted += 1
                except SourceTreeError:
                    raise  # every file would fail the same way
                except AcrnShmError as exc:
                    errors.append(str(exc))
                self._forget(job.path)
        return LintResult(tuple(sorted(set(diagnostics))), tuple(errors),
                          linted, tuple(self._fixes))

    def _jobs(self, paths: list[str], board_path: str | None,
              errors: list[str]) -> Iterator[list[_Job]]:
        # The jobs of each file, and of each folder of each tree, in
        # order; problems with a path or folder go to ``errors``.
        for path in paths:
            if not os.path.isdir(path):
                yield [_Job(path, board_path)]
                continue
            found = False
            for folder in xml_folders(path):
                if isinstance(folder, AcrnShmError):
                    errors.append(str(folder))
                    continue
                found = True
                files = [os.path.normpath(os.path.join(folder.path, name))
                         for name in folder.names]
                try:
                    jobs = self._folder_jobs(folder.path, files, board_path)
                except AcrnShmError as exc:
                    errors.append(str(exc))
                else:
                    yield jobs
                # The folder is done: drop its files, boards too (not
                # the --board, which every folder uses).
                for file in files:
                    if board_path is None or file != os.path.normpath(
                            board_path):
                        self._loaded.pop(file, None)
            if not found:
                errors.append(located(
                    path, None, None,
                    "no .xml file in this folder or in any folder below "
                    "it"))

    def _folder_jobs(self, folder: str, files: list[str],
                     board_path: str | None) -> list[_Job]:
        boards = []
        for file in files:
            try:
                if isinstance(self.load(file).model, Board):
                    boards.append(file)
            except AcrnShmError:
                pass  # reported when its job runs
        if board_path is None and boards:
            board_path = _choose_board(folder, boards)
        return [_Job(file, board_path) for file in files]

    def _lint_one(self, job: _Job,
                  checked_boards: set[str]) -> list[Diagnostic]:
        loaded = self.load(job.path)
        model = loaded.model
        if isinstance(model, Board):
            return self._board_structure(job.path, checked_boards)
        kind = "launch" if isinstance(model, LaunchConfig) else model.format
        found: list[tuple[str, Finding]] = []
        if self.config.enabled("ISM001"):
            found = [("ISM001", finding) for finding in
                     schema.check_structure(loaded.document, kind)]
        extra: list[Diagnostic] = []
        if isinstance(model, Scenario):
            board = None
            board_path = job.board_path or self._boards.find(job.path,
                                                             model)
            if board_path is not None:
                board = self._board(board_path)
                extra = self._board_structure(board_path, checked_boards)
            own = self._run(job.path, "scenario", (model, board), found,
                            model.suppressions)
            extra += self._acrn_checks(job.path, loaded.document,
                                       board_path)
        else:
            scenario = self._launch_scenario(job.path, model)
            own = self._run(job.path, "launch", (model, scenario), found,
                            model.suppressions)
        return own + extra

    def _acrn_checks(self, path: str, document: Document,
                     board_path: str | None) -> list[Diagnostic]:
        # ACRN's own checks (--acrn-schema): the scenario's findings, and
        # those ACRN places in the board, reported in the board XML.
        if self.config.acrn_src is None or not any(
                self.config.enabled(code) for code, rule in RULES.items()
                if rule.TARGET == "acrn"):
            return []
        from . import acrn_schema

        board = self.load(board_path).document if board_path else None
        found = acrn_schema.check(self.config.acrn_src, document, board,
                                  self.config.use_cache)
        result = self._run(
            path, None, (), [(f.code, Finding(f.loc, f.message))
                             for f in found if not f.in_board],
            self.load(path).model.suppressions)
        if board_path is not None:
            result += self._run(
                board_path, None, (), [(f.code, Finding(f.loc, f.message))
                                       for f in found if f.in_board], ())
        return result

    def _board(self, path: str) -> Board:
        model = self.load(path).model
        if not isinstance(model, Board):
            raise UsageError(f"{path}: expected a board XML, found a "
                             f"{_what(model)}")
        return model

    def _board_structure(self, path: str,
                         checked: set[str]) -> list[Diagnostic]:
        key = os.path.normpath(path)
        if key in checked or not self.config.enabled("ISM001"):
            return []
        checked.add(key)
        if key not in self._board_findings:  # once, for every lint()
            self._board_findings[key] = schema.check_structure(
                self.load(path).document, "board")
        findings = self._board_findings[key]
        return self._run(path, None, (), [("ISM001", f) for f in findings],
                         ())

    def _launch_scenario(self, path: str,
                         launch: LaunchConfig) -> Scenario | None:
        if not launch.scenario_name:
            return None
        candidate = os.path.join(os.path.dirname(path),
                                 launch.scenario_name + ".xml")
        if not os.path.isfile(candidate):
            return None
        try:
            model = self.load(candidate).model
        except AcrnShmError:
            return None
        return model if isinstance(model, Scenario) else None

    def _run(self, path: str, target: str | None, args: tuple,
             found: list[tuple[str, Finding]],
             suppressions: tuple[Suppression, ...]) -> list[Diagnostic]:
        # The engine's one step (run_rules); the fixes are kept for
        # the LintResult.
        checked = run_rules(self.config, path, target, args, found,
                            suppressions)
        self._fixes.extend(checked.fixes)
        return checked.diagnostics


def lint(paths: list[str], board_path: str | None = None,
         config: LintConfig | None = None) -> LintResult:
    """Lint ``paths`` with ``config``; see :class:`Linter`."""
    return Linter(config).lint(paths, board_path)


def _what(model) -> str:
    if isinstance(model, Board):
        return "board XML"
    if isinstance(model, LaunchConfig):
        return "launch XML"
    return f"{model.format} scenario XML"


def _choose_board(folder: str, boards: list[str]) -> str:
    if len(boards) == 1:
        return boards[0]
    own = os.path.basename(os.path.abspath(folder)) + ".xml"
    named = os.path.normpath(os.path.join(folder, own))
    if named in boards:
        return named
    raise UsageError(
        f"{folder}: holds {len(boards)} board XMLs ("
        + ", ".join(os.path.basename(b) for b in boards)
        + f"), so its files were not linted; name the board to use {own}"
        " or pass it with --board")


def find_board_beside(scenario_path: str,
                      scenario: Scenario) -> str | None:
    """The board XML in the scenario's folder, or None.

    Tries ``<board>.xml`` (from a legacy scenario's ``board`` attribute)
    and ``<folder name>.xml`` first, then any XML whose first kilobytes
    hold a board section such as ``<BIOS_INFO>``. Only regular files
    are read; anything else named ``*.xml`` there (a FIFO, a socket, a
    device, a folder) is passed over without being opened.
    """
    return BoardFinder().find(scenario_path, scenario)


class BoardFinder:
    """:func:`find_board_beside` for many scenarios: each folder is
    listed once and each file looked at once, so that N scenarios in a
    folder cost N steps, not N times the folder's size. Answers what
    the folders held when first looked at: use one for one run."""

    def __init__(self) -> None:
        self._names: dict[str, tuple[list[str], set[str]] | None] = {}
        self._looks: dict[str, bool] = {}
        # The first two boards of each folder in name order (one may be
        # the scenario asking), and how far the names were looked at.
        self._first: dict[str, tuple[list[str], int]] = {}

    def find(self, scenario_path: str, scenario: Scenario) -> str | None:
        """The board XML in the scenario's folder, or None (see
        :func:`find_board_beside`)."""
        folder = os.path.dirname(scenario_path) or "."
        listing = self._listing(folder)
        if listing is None:
            return None
        names, present = listing
        own = os.path.basename(scenario_path)
        preferred = []
        if scenario.board_name:
            preferred.append(scenario.board_name + ".xml")
        preferred.append(os.path.basename(os.path.abspath(folder)) + ".xml")
        for name in preferred:
            if name != own and name in present and self._board(folder, name):
                return os.path.join(folder, name)
        boards, seen = self._first.get(folder, ([], 0))
        while len(boards) < 2 and seen < len(names):
            if self._board(folder, names[seen]):
                boards.append(names[seen])
            seen += 1
        self._first[folder] = boards, seen
        for name in boards:
            if name != own:
                return os.path.join(folder, name)
        return None

    def _listing(self, folder: str) -> tuple[list[str], set[str]] | None:
        if folder not in self._names:
            try:
                names = sorted(n for n in os.listdir(folder)
                               if n.endswith(".xml"))
                self._names[folder] = names, set(names)
            except OSError:
                self._names[folder] = None
        return self._names[folder]

    def _board(self, folder: str, name: str) -> bool:
        candidate = os.path.join(folder, name)
        if candidate not in self._looks:
            self._looks[candidate] = _looks_like_board(candidate)
        return self._looks[candidate]


def is_acrn_xml(path: str) -> bool:
    """Whether ``path`` is an XML whose root element is ``<acrn-config>``.

    For ``lint --skip-other-xml`` (the pre-commit hook, which is given
    every staged XML). Looks only through the prolog to the root's start
    tag (:func:`xmlio.root_name`): no DTD is loaded and no entity is
    expanded, whatever the XML library's limits are. A file that cannot
    be read that far counts as ACRN's, so that lint reports the problem.
    """
    try:
        name = root_name(read_bytes(path))
    except AcrnShmError:
        return True
    return name is None or name == "acrn-config"


def _looks_like_board(path: str) -> bool:
    # Only a regular file is opened (a FIFO beside the scenario would
    # block the read for good) and only its first 8 KiB are read.
    try:
        fd = open_input(path)
    except InputError:
        return False
    try:
        head = os.read(fd, 8192)
    except OSError:
        return False
    finally:
        os.close(fd)
    return b"<acrn-config" in head and any(
        marker in head for marker in _BOARD_MARKERS)
