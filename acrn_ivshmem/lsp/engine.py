"""Everything the language server takes from the rest of acrn-shm.

The other modules of this package import acrn-shm only through here:
the lint engine (:class:`~acrn_ivshmem.lint.engine.Linter`, the board found as
``lint`` finds it), ``[tool.acrn-shm]`` configuration, the parser, the
model, the rules and their documentation. A move of those modules
changes this file alone.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..diagnostics import SAFE, TextFix
from ..errors import AcrnShmError
from ..io.xmlio import Document, parse_bytes, root_name, source_encoding
from ..lint import rule_docs
from ..lint.config import LintConfig, load_config
from ..lint.engine import Linter, find_board_beside
from ..model.loader import load
from ..model.syntax import (
    FIRST_IVSHMEM_DEVICE, Bdf, Board, LaunchConfig, Region, Scenario, Vm,
    VmKind, is_decimal, parse_vbdf,
)
from ..rules import RULES
from ..rules._vbdfs import VbdfUse, vbdf_uses
from ..rules.region_id import MAXIMUM as MAX_REGION_ID
from ..rules.region_size import ALLOWED as ALLOWED_SIZES

__all__ = [
    "ALLOWED_SIZES", "FIRST_IVSHMEM_DEVICE", "MAX_REGION_ID", "RULES",
    "Bdf", "Board", "Document", "LaunchConfig", "LintConfig", "Linted",
    "Problem", "Region", "SAFE", "Scenario", "TextFix", "VbdfUse", "Vm",
    "VmKind", "Workspace", "encode", "is_decimal", "parse_vbdf",
    "rule_markdown", "rule_page", "vbdf_uses",
]

#: The structure check's code; it is the slow one (``schema.py``).
STRUCTURE = "ISM001"
#: Device numbers of the VBDFs acrn-shm assigns, as ``add-region`` does.
AUTO_DEVICES = range(FIRST_IVSHMEM_DEVICE, 0x1F)
_LOCATED = re.compile(r"^(?P<line>\d+)(?::(?P<column>\d+))?: (?P<text>.*)$",
                      re.DOTALL)


@dataclass(frozen=True)
class Problem:
    """Why a document could not be linted: a place (1-based, None when
    unknown) and the one-line message ``acrn-shm lint`` prints."""

    line: int | None
    column: int | None
    message: str


@dataclass(frozen=True)
class Finding:
    """One lint finding of the document, as ``acrn-shm lint`` reports it."""

    line: int
    column: int
    code: str
    severity: str
    message: str
    hint: str


@dataclass
class Linted:
    """What linting one version of a document gave.

    ``findings`` and ``fixes`` (code, fix) concern this document only;
    ``problem`` is set when it could not be linted (not well-formed, no
    ACRN XML); ``document``, ``model`` and ``board`` are None then.
    ``other`` is True for an XML whose root is not ``<acrn-config>``.
    """

    findings: list[Finding] = field(default_factory=list)
    fixes: list[tuple[str, TextFix]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    document: Document | None = None
    model: Scenario | Board | LaunchConfig | None = None
    board: Board | None = None
    other: bool = False


def encode(source: str) -> bytes:
    """The bytes a file holding ``source`` would have: in the encoding its
    XML declaration names (UTF-8 without one). Raises ``ValueError``
    naming the first character that encoding cannot hold."""
    head = source[:200].encode("utf-8", "replace")
    try:
        codec = source_encoding(head)
    except AcrnShmError:
        codec = "utf-8"
    if codec.startswith(("utf-16", "utf-32")):
        # The editor dropped the byte order mark; the codec writes one.
        codec = codec.rsplit("-", 1)[0] if codec.endswith(
            ("-be", "-le")) else codec
    try:
        return source.encode(codec)
    except UnicodeEncodeError as exc:
        raise ValueError(exc.start, f"character {source[exc.start]!r} "
                         f"cannot be written in {codec}") from None


def located_problem(path: str, message: str) -> Problem:
    """Split ``path:line:column: text`` (an acrn-shm error) into a
    :class:`Problem`; a message about another file stays whole."""
    prefix = path + ":"
    if message.startswith(prefix):
        rest = message[len(prefix):]
        match = _LOCATED.match(rest)
        if match:
            column = match.group("column")
            return Problem(int(match.group("line")),
                           int(column) if column else None,
                           match.group("text"))
        return Problem(None, None, rest.strip())
    return Problem(None, None, message)


class Workspace:
    """Lints editor buffers as ``acrn-shm lint`` lints files.

    Boards are read from disk once and again only when they change
    (size or time stamp); configuration is read per folder the same way.
    """

    def __init__(self, use_cache: bool = True):
        self.use_cache = use_cache
        self._boards: dict[str, tuple[tuple, object]] = {}
        self._configs: dict[str, tuple[tuple, object]] = {}

    def config_for(self, path: str) -> LintConfig | Problem:
        """``[tool.acrn-shm]`` of the nearest pyproject.toml above
        ``path`` (defaults without one), or the problem reading it."""
        folder = os.path.dirname(os.path.abspath(path))
        stamp = _stamps(_pyprojects(folder))
        cached = self._configs.get(folder)
        if cached is None or cached[0] != stamp:
            try:
                value: object = load_config(None, folder)
                if not self.use_cache:
                    value = replace(value, use_cache=False)
            except AcrnShmError as exc:
                value = Problem(None, None, str(exc))
            cached = (stamp, value)
            self._configs[folder] = cached
        return cached[1]  # type: ignore[return-value]

    def lint(self, path: str, data: bytes, config: LintConfig,
             structure: bool = True) -> Linted:
        """Lint ``data`` as the file ``path``; ``structure`` False skips
        the structure check (ISM001), the slow part."""
        if root_name(data) not in (None, "acrn-config"):
            return Linted(other=True)
        if not structure:
            config = replace(config, ignore=config.ignore + (STRUCTURE,))
        try:
            document = parse_bytes(data, path)
            linter = Linter(config)
            linter.preload(document)
            model = linter.load(path).model
        except AcrnShmError as exc:
            return Linted(problems=[located_problem(path, str(exc))])
        board = None
        if isinstance(model, Scenario):
            board = self._preload_board(linter, path, model)
        result = linter.lint([path])
        key = os.path.normpath(path)
        return Linted(
            findings=[Finding(d.line, d.column, d.code, d.severity,
                              d.message, d.hint)
                      for d in result.diagnostics
                      if os.path.normpath(d.path) == key],
            fixes=[(p.code, p.fix) for p in result.fixes
                   if os.path.normpath(p.path) == key],
            problems=[located_problem(path, e) for e in result.errors],
            document=document, model=model, board=board)

    def _preload_board(self, linter: Linter, path: str,
                       scenario: Scenario) -> Board | None:
        board_path = find_board_beside(path, scenario)
        if board_path is None:
            return None
        stamp = _stamps([board_path])
        cached = self._boards.get(board_path)
        if cached is None or cached[0] != stamp:
            try:
                cached = (stamp, load(board_path))
            except AcrnShmError:
                # The engine loads it again and reports the problem.
                cached = (stamp, None)
            self._boards[board_path] = cached
        loaded = cached[1]
        if loaded is None:
            return None
        linter.preload(loaded.document)
        model = loaded.model
        return model if isinstance(model, Board) else None


def rule_markdown(code: str) -> str | None:
    """The rule's documentation page (Markdown), or None."""
    rule = RULES.get(code)
    return rule_docs.markdown(rule) if rule is not None else None


def rule_page(code: str, base: str | None) -> str | None:
    """The address of the rule's page: ``base`` with ``{code}`` filled
    in (or the page name appended), else the page installed with
    acrn-shm (``docs/rules/`` of a source tree) as a file URI; None
    when there is neither."""
    rule = RULES.get(code)
    if rule is None:
        return None
    name = rule_docs.page_name(rule)
    if base:
        return (base.replace("{code}", code) if "{code}" in base
                else base.rstrip("/") + "/" + name)
    here = Path(__file__).resolve().parents[1]
    for page in (here / "rule_pages" / name,  # installed
                 here.parent / "docs" / "rules" / name):  # source tree
        if page.is_file():
            return page.as_uri()
    return None


def _pyprojects(folder: str) -> list[str]:
    found = []
    while True:
        found.append(os.path.join(folder, "pyproject.toml"))
        parent = os.path.dirname(folder)
        if parent == folder:
            return found
        folder = parent


def _stamps(paths: list[str]) -> tuple:
    stamps = []
    for path in paths:
        try:
            info = os.stat(path)
            stamps.append((path, info.st_size, info.st_mtime_ns))
        except OSError:
            continue
    return tuple(stamps)


def element_ends(document: Document) -> dict[tuple[int, int], tuple]:
    """Each element's start (line, column) -> the start of its end tag
    (the start tag again for ``<a/>``), both 1-based."""
    ends = {}
    for element in document.root.iter():
        if isinstance(element.tag, str):
            pos = document.pos(element)
            ends[tuple(pos.start)] = tuple(pos.end)
    return ends


def enclosing_start(document: Document, line: int,
                    column: int) -> tuple[int, int] | None:
    """The start of the innermost element holding 1-based ``line`` and
    ``column``, from its start tag to its end tag's ``<`` (the span a
    suppression comment before the element covers)."""
    point = (line, column)
    best = None
    for start, end in element_ends(document).items():
        if start <= point <= end and (best is None or start > best):
            best = start
    return best
