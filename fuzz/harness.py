"""What acrn-shm does with one input, in memory, and what must hold.

Each method of :class:`Harness` makes the library calls of one command
of ``acrn_ivshmem/cli/`` (``run_lint``, ``run_edit``, ``run_upgrade``,
``run_launch_script``, ``run_check_launch``) on the bytes of a file
instead of the file: no terminal, no lock, nothing written. It raises
:class:`Violation` where the command would misbehave:

- any exception other than :class:`AcrnShmError` (a traceback, or the
  CLI's "internal error" line) escapes as it is;
- an error message is not one line, or does not start with the name of
  one of the input files (``path:``);
- a diagnostic, hint, note or summary the CLI prints is not one line;
- an edit, fix or upgrade produces XML that acrn-shm cannot read back;
- a launch script is not the same twice, or has text from an input
  anywhere but in a vetted shell word or single quotes, or its
  ``dm_params`` words are not the planned ones
  (:func:`check_launch_script`);
- a finding of ``check-launch`` is outside the script.

Used by the atheris target ``fuzz_acrn_shm.py`` and by
``tests/test_properties.py``; it needs neither atheris nor hypothesis.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from acrn_ivshmem.cli.regions import region_spec
from acrn_ivshmem.diagnostics import UNSAFE, Diagnostic
from acrn_ivshmem.edit.regions import (
    EditResult, RegionSpec, add_region, remove_region, set_region,
)
from acrn_ivshmem.emit.launch import (
    Script, check_parsed, clash_diagnostics, write_scripts,
)
from acrn_ivshmem.emit.launch_script import HELPERS, ivshmem_args
from acrn_ivshmem.errors import AcrnShmError, UsageError
from acrn_ivshmem.io.xmlio import Document, parse_bytes, parse_file
from acrn_ivshmem.lint import schema
from acrn_ivshmem.lint.config import LintConfig
from acrn_ivshmem.lint.engine import Linter, find_board_beside
from acrn_ivshmem.lint.fixes import apply_fixes
from acrn_ivshmem.lint.formats import FORMATS
from acrn_ivshmem.model.loader import from_document
from acrn_ivshmem.model.script_reader import script_from_bytes
from acrn_ivshmem.model.syntax import (
    VM_NAME, Board, LaunchConfig, LaunchInputs, Scenario,
)
from acrn_ivshmem.plan.acrn_dm import word_text
from acrn_ivshmem.upgrade.launch_inputs import load_for_launch
from acrn_ivshmem.upgrade.merge import merge_regions, merged_assignments
from acrn_ivshmem.upgrade.scenario import upgrade

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


def report_lines(diagnostics: Sequence[Diagnostic]) -> int:
    """The lines of a text report: one per diagnostic and per hint, the
    summary, and one counting hidden unsafe fixes when there are any."""
    return (len(diagnostics) + sum(1 for d in diagnostics if d.hint) + 1
            + any(d.fix == UNSAFE for d in diagnostics))


def check_report(diagnostics: Sequence[Diagnostic]) -> None:
    """The text report: see :func:`report_lines`."""
    report = FORMATS["text"](diagnostics, 1)
    lines = report[:-1].split("\n") if report else []
    if diagnostics and len(lines) != report_lines(diagnostics):
        raise Violation(f"text report has extra lines: {report!r}")
    for line in lines:
        check_printed("text report line", line)


def read_back(what: str, data: bytes, path: str) -> Document:
    """Parse what acrn-shm produced; it must be readable XML."""
    try:
        return parse_bytes(data, path)
    except AcrnShmError as exc:
        raise Violation(f"{what} is not readable XML: {exc}") from None


# -- launch scripts: where input text may be ------------------------------

# Written independently of emit/launch_script.py: what a launch script
# may hold. Input text may only be a shell word no shell reads
# specially, or single-quoted ('...' pieces joined by "'"); the only
# expansions are ${mac} and ${dir_*}, in double quotes with shell words.
_CHAR = r"[A-Za-z0-9_@%+=:,./-]"
_SAFE = rf"{_CHAR}+"
_PIECE = "'[^']*'|\"'\""
_QUOTED = rf"(?:{_PIECE})+"
_REF = r"\$\{(?:mac|dir_[A-Za-z0-9_]+)\}"
_SPLICED = rf'"{_CHAR}*{_REF}(?:{_CHAR}|{_REF})*"'
_WORD = re.compile(rf"{_SAFE}|{_QUOTED}|{_SPLICED}")
_HELPER_ARG = re.compile(rf"{_SAFE}|{_SPLICED}")
_HELPER_NAMES = ("add_cpus", "add_virtual_device", "add_passthrough_device",
                 "add_interrupt_storm_monitor", "add_logger_settings")
_HELPER_CALL = re.compile(rf"\$\(({'|'.join(_HELPER_NAMES)}) (.*)\)")
_INIT = re.compile(
    r"probe_modules|mac=\$\(cat /sys/class/net/e\*/address\)|"
    r"mac=\$\{mac:0:17\}|"
    rf"(dir_[A-Za-z0-9_]+)=\$\(mount_partition (?!-){_SAFE}\)")
_DEINIT = re.compile(r'unmount_partition "\$\{(dir_[A-Za-z0-9_]+)\}"')
_DIRECTIVES = ("# shellcheck disable=SC2207",
               "# shellcheck disable=SC1003,SC2016,SC2207")


def _words(line: str, pattern: re.Pattern) -> list[str] | None:
    """The words of ``line``, tokens of ``pattern`` one space apart,
    unquoted; None when some text is not such a token."""
    words: list[str] = []
    index = 0
    while True:
        match = pattern.match(line, index)
        if match is None:
            return None
        token = match.group()
        if re.fullmatch(_QUOTED, token):
            words.append("".join(piece[1:-1] if piece[0] == "'" else "'"
                                 for piece in re.findall(_PIECE, token)))
        elif token.startswith('"'):
            words.append(token[1:-1])
        else:
            words.append(token)
        index = match.end()
        if index == len(line):
            return words
        if line[index] != " ":
            return None
        index += 1


def check_launch_script(script: Script) -> None:
    """The text of a launch script, line by line, against the shape
    below and the plan it was written from."""
    lines = script.text.split("\n")
    plan = script.plan
    problem = None

    def expect(condition: bool, what: str) -> None:
        nonlocal problem
        if not condition and problem is None:
            problem = what

    helpers = HELPERS.rstrip("\n").split("\n")
    expect(lines[:2] == ["#!/bin/bash",
                         f"# Launch script for VM name: {plan.vm_name}"]
           and VM_NAME.fullmatch(plan.vm_name) is not None, "header")
    expect(re.fullmatch(r"# Written by acrn-shm for ACRN \d+\.\d+ from "
                        r"[\x20-\x7e]*\.", lines[2]) is not None, "source")
    expect(lines[3:4 + len(helpers)] == [
        "# Run it as root in the Service VM.", *helpers], "helpers")
    rest = lines[4 + len(helpers):]
    expect(rest[:3] == ["", "# ---- VM description " + "-" * 56, ""],
           "description")
    expect(re.fullmatch(rf"vm_type={_SAFE}", rest[3]) is not None
           and re.fullmatch(rf"scheduler=(?:{_SAFE}|'')", rest[4])
           is not None and rest[5] in ("own_pcpu=y", "own_pcpu=n"),
           "VM description")
    expect(rest[6:9] == ["", "# ---- Initializing " + "-" * 58, ""],
           "initialising")
    index = 9
    folders = set()
    while index < len(rest) and rest[index]:
        init = _INIT.fullmatch(rest[index])
        expect(init is not None, f"init line {rest[index]!r}")
        if init and init.group(1):
            folders.add(init.group(1))
        index += 1
    index += 1
    if rest[index:index + 1] == ["# Native CPU_ID    APIC_ID"]:
        index += 1
        while rest[index].startswith("# "):
            expect(re.fullmatch(r"# \d+ +\d+", rest[index]) is not None,
                   "CPU table")
            index += 1
        index += 1
    expect(rest[index] == "# Helpers print several words each: split "
           "them on purpose.", "array comment")
    index += 1
    if rest[index] == "# Quoted words hold shell syntax that must not " \
            "expand.":
        index += 1
    expect(rest[index] in _DIRECTIVES and rest[index + 1] == "dm_params=(",
           "array start")
    index += 2
    for param in plan.params:
        line = rest[index] if index < len(rest) else ""
        index += 1
        expect(line.startswith("    "), "array line indentation")
        call = _HELPER_CALL.fullmatch(line[4:])
        if param.helper is None:
            words = _words(line[4:], _WORD)
        else:
            expect(call is not None and call.group(1) == param.helper,
                   f"helper call {line!r}")
            words = _words(call.group(2), _HELPER_ARG) if call else None
        expect(words == [word_text(word) for word in param.words],
               f"array line {line!r} for {param.words!r}")
        for folder in re.findall(r"\$\{(dir_[A-Za-z0-9_]+)\}", line):
            expect(folder in folders, f"{folder} is not set")
        if "${mac}" in line:
            expect("mac=${mac:0:17}" in rest, "mac is not set")
    expect(rest[index:index + 4] == [
        ")", "",
        'echo "Launch device model with parameters: ${dm_params[*]}"',
        'acrn-dm "${dm_params[@]}"'], "acrn-dm call")
    tail = rest[index + 4:]
    if plan.deinit:
        expect(tail[:3] == ["", "# ---- Deinitializing " + "-" * 56, ""]
               and tail[-1] == "", "deinitialising")
        for line in tail[3:-1]:
            deinit = _DEINIT.fullmatch(line)
            expect(deinit is not None and deinit.group(1) in folders,
                   f"deinit line {line!r}")
    else:
        expect(tail == [""], "end")
    if problem is not None:
        raise Violation(f"launch script for {plan.vm_name!r}: {problem}")


# -- the input files ------------------------------------------------------


def real_xmls() -> list[Path]:
    """Every XML under :data:`SEED_FOLDERS`, sorted."""
    found: list[Path] = []
    for folder in SEED_FOLDERS:
        if folder.is_dir():
            found.extend(sorted(folder.rglob("*.xml")))
    return found


def real_scripts() -> list[Path]:
    """The launch scripts of the tests (goldens and hand-written ones)."""
    tests = PROJECT / "tests"
    return sorted([*(tests / "test_launch_script" / "golden").rglob("*.sh"),
                   *(tests / "test_check_launch").glob("*.sh")])


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
        known[document.data] = original(document, "board")

    def check_structure(document, kind):
        findings = known.get(document.data) if kind == "board" else None
        if findings is not None:
            return list(findings)
        return original(document, kind)

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
        self._launch_inputs: dict[str, LaunchInputs] = {}

    def _paths(self, *paths: str | None) -> tuple[str, ...]:
        return tuple(p for p in paths if p is not None)

    def check_lint(self, result, paths: Sequence[str]) -> None:
        """The errors and the text and GitHub reports of a lint run:
        one line per error, per diagnostic and per hint."""
        for error in result.errors:
            check_message(error, paths)
        report = FORMATS["text"](result.diagnostics, result.files)
        lines = report[:-1].split("\n")
        if len(lines) != report_lines(result.diagnostics):
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

    def launch_script(self, data: bytes, board: str | None = None,
                      vm: str | None = None,
                      acrn_version: tuple[int, int] = (3, 3),
                      launches: Sequence[str] = (),
                      scenario: str | None = None) -> None:
        """``acrn-shm launch-script INPUT [--launch L] --board B [--vm V]
        --acrn-version X.Y``, without the lint the CLI makes first: the
        scripts must be safe when lint findings are silenced too.

        With ``scenario``, the input is a launch XML given with
        ``--launch`` to that real legacy scenario.
        """
        scenario_path = scenario or INPUT
        launch_paths = [INPUT] if scenario else list(launches)
        paths = self._paths(scenario_path, *launch_paths, board)
        try:
            self.linter.preload(parse_bytes(data, INPUT))
            inputs = load_for_launch(scenario_path, board, launch_paths,
                                     self.linter)
            scripts = write_scripts(inputs, [vm] if vm else None,
                                    acrn_version, "input.xml")
        except AcrnShmError as exc:
            check_message(str(exc), paths)
            return
        check_report(clash_diagnostics(scenario_path, scripts,
                                       inputs.legacy))
        again = write_scripts(inputs, [vm] if vm else None, acrn_version,
                              "input.xml")
        if [script.text for script in again] != [
                script.text for script in scripts]:
            raise Violation("launch scripts differ from one run to the "
                            "next")
        for script in scripts:
            check_launch_script(script)
            script.text.encode("utf-8")  # written as UTF-8
            for arg in ivshmem_args(script.plan):
                if not re.fullmatch(_SAFE, arg):
                    raise Violation(f"--ivshmem-args word {arg!r}")

    def launch_inputs(self, scenario: str) -> LaunchInputs:
        """The inputs of a real scenario, read once."""
        if scenario not in self._launch_inputs:
            self._launch_inputs[scenario] = load_for_launch(
                scenario, None, (), self.linter)
        return self._launch_inputs[scenario]

    def check_launch(self, data: bytes, scenario: str,
                     vm: str | None = None,
                     config: LintConfig | None = None) -> None:
        """``acrn-shm check-launch INPUT --scenario S [--vm V]``: the
        script reader takes any bytes; findings are in the script."""
        paths = (INPUT, scenario)
        try:
            script = script_from_bytes(data, INPUT)
            found = check_parsed(script, self.launch_inputs(scenario), vm,
                                 config)
        except AcrnShmError as exc:
            check_message(str(exc), paths)
            return
        lines = data.decode("utf-8", "replace").count("\n") + 1
        for diagnostic in found:
            if not (diagnostic.path == INPUT
                    and 1 <= diagnostic.line <= lines
                    and diagnostic.column >= 1):
                raise Violation(f"finding outside the script: {diagnostic}")
        check_report(found)
        FORMATS["json"](found, 1)


def _options_spec(options: dict) -> RegionSpec | None:
    """The CLI's RegionSpec from option values, or None after checking
    its usage error (printed without a file name)."""
    try:
        return region_spec(options.get("name"), options.get("size"),
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


def split(data: bytes, commands: int, header: int = 64
          ) -> tuple[int, bytes, bytes]:
    """The command index (byte 0, when there are ``commands``), the
    option bytes (as many as the next byte says, modulo ``header``) and
    the file of a fuzz input."""
    command = data[0] % commands if commands and data else 0
    data = data[1:] if commands else data
    length = data[0] % header if data else 0
    return command, data[1:1 + length], data[1 + length:]


def pick(fdp, values):
    """One of ``values``, as the option bytes of ``fdp`` choose."""
    return values[fdp.ConsumeIntInRange(0, len(values) - 1)]


def fsdecode(raw: bytes) -> str:
    """Bytes as they reach a command-line option: no NUL, undecodable
    bytes as surrogates (what Python makes of ``sys.argv``)."""
    return os.fsdecode(raw.replace(b"\0", b""))
