"""Plan an ACRN hypervisor build: the tree's version and how its make is
driven, the checks of the request, board and scenario before make runs,
the regions the build must generate, and linting the inputs.

:func:`plan_build` gives the :class:`BuildPlan` every later step
(:mod:`.prereqs`, :mod:`.builddir`, :mod:`.make`, :mod:`.verify`) works
from; :func:`lint_inputs` stops the build on a lint error
(:class:`LintFailed`).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import AcrnShmError, InputError, UsageError, located, quoted
from ..io.xmlio import read_input
from ..lint.config import LintConfig
from ..lint.engine import Linter, LintResult
from ..model.loader import Loaded
from ..model.resolved import load_board, load_scenario
from ..model.syntax import Scenario, is_decimal
from ..units import MIB

#: Environment variable naming the Python that runs ACRN's make.
BUILD_PYTHON_VARIABLE = "ACRN_SHM_BUILD_PYTHON"
#: The full make output goes to this file in the output folder.
LOG_NAME = "acrn-shm-build.log"
# Largest VERSION file, build record or generated header read.
_MAX_TEXT_BYTES = 4 * 1024 * 1024
# Variables acrn-shm sets itself; extra make arguments may not set them.
_OWN_VARIABLES = {
    "BOARD": "--board", "SCENARIO": "--scenario", "BOARD_FILE": "--board",
    "SCENARIO_FILE": "--scenario", "O": "--out", "HV_OBJDIR": "--out",
    "TARGET_DIR": "--out", "RELEASE": "--release",
}
_UNSAFE_PATH = re.compile(r"[\s#$]")
# ACRN's make puts the board and scenario names into makefiles it
# includes and into shell commands: only these characters are inert.
_NAME = re.compile(r"[A-Za-z0-9_.+-]+")


class LintFailed(AcrnShmError):
    """The scenario or board has lint errors; ``result`` has them all."""

    def __init__(self, message: str, result: LintResult):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True, order=True)
class AcrnVersion:
    """An ACRN release as its ``VERSION`` file gives it."""

    major: int
    minor: int
    extra: str = ""

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}{self.extra}"


@dataclass(frozen=True)
class PythonModule:
    """A module ACRN's build scripts import, with the versions that work.

    ``minimum`` and ``below`` are version tuples (inclusive, exclusive)
    or None for no bound.
    """

    name: str
    import_name: str
    minimum: tuple[int, ...] | None = None
    below: tuple[int, ...] | None = None

    @property
    def spec(self) -> str:
        """The pip requirement, e.g. ``elementpath>=2.5,<3``."""
        bounds = []
        if self.minimum is not None:
            bounds.append(">=" + ".".join(map(str, self.minimum)))
        if self.below is not None:
            bounds.append("<" + ".".join(map(str, self.below)))
        return self.name + ",".join(bounds)

    def accepts(self, version: str) -> bool:
        """True when ``version`` (text) lies within the bounds."""
        found = version_tuple(version)
        if found is None:
            return self.minimum is None and self.below is None
        if self.minimum is not None and found < self.minimum:
            return False
        return self.below is None or found < self.below


_LXML = PythonModule("lxml", "lxml.etree")
_XMLSCHEMA = PythonModule("xmlschema", "xmlschema")
_KCONFIGLIB = PythonModule("kconfiglib", "kconfiglib")
_DEFUSEDXML = PythonModule("defusedxml", "defusedxml")
# Measured with ACRN v3.3: newer releases break its validator
# (elementpath has no TypedElement any more).
_V3_MODULES = (_DEFUSEDXML, PythonModule("elementpath", "elementpath",
                                         (2, 5), (3,)),
               _LXML, PythonModule("xmlschema", "xmlschema", (1, 10), (2,)))

@dataclass(frozen=True)
class Interface:
    """How one range of ACRN releases is driven.

    Attributes: ``board_variable``/``scenario_variable`` (the make
    variables taking the XML paths), ``scenario_format`` (``legacy`` or
    ``v3``), ``scenario_name_from`` (``attribute``: the scenario root's
    ``scenario=``; ``file name``: the file's base name), ``record`` (the
    file in ``<out>/hypervisor`` that remembers the board and scenario),
    ``regenerates`` (False when a used build folder never regenerates its
    configuration sources), ``tools`` and ``python_modules`` (what make
    needs).
    """

    board_variable: str
    scenario_variable: str
    scenario_format: str
    scenario_name_from: str
    record: str
    regenerates: bool
    tools: tuple[str, ...]
    python_modules: tuple[PythonModule, ...]


def interface_for(version: AcrnVersion) -> Interface:
    """The interface of ACRN ``version``; 2.2 and later are supported."""
    if (version.major, version.minor) < (2, 2):
        raise UsageError(f"ACRN {version} is not supported; acrn-shm "
                         "builds ACRN 2.2 and later")
    if version.major >= 3:
        return Interface("BOARD", "SCENARIO", "v3", "file name",
                         "configs/config.mk", True,
                         ("make", "gcc", "iasl", "xsltproc", "xmllint"),
                         _V3_MODULES)
    if version.minor <= 3:
        return Interface("BOARD_FILE", "SCENARIO_FILE", "legacy",
                         "attribute", ".config", False,
                         ("make", "gcc", "iasl"), (_KCONFIGLIB,))
    tools = ("make", "gcc", "iasl", "xmllint") + (
        ("xsltproc",) if version.minor >= 5 else ())
    modules = ((_KCONFIGLIB, _LXML, _XMLSCHEMA) if version.minor <= 5
               else (_DEFUSEDXML, _LXML, _XMLSCHEMA))
    return Interface("BOARD", "SCENARIO", "legacy", "attribute",
                     "configs/config.mk", True, tools, modules)


def read_version(acrn_src: str) -> AcrnVersion:
    """The release of the ACRN tree at ``acrn_src`` (its VERSION file)."""
    path = os.path.join(acrn_src, "VERSION")
    if not os.path.isdir(acrn_src):
        raise InputError(f"{acrn_src}: no such folder")
    if not os.path.lexists(path):
        raise InputError(f"{acrn_src}: not an ACRN source tree (no VERSION "
                         "file)")
    values = assignments(read_text(path))
    major = values.get("MAJOR_VERSION", "")
    minor = values.get("MINOR_VERSION", "")
    if not (is_decimal(major) and is_decimal(minor)):
        raise InputError(f"{path}: expected MAJOR_VERSION and MINOR_VERSION "
                         "numbers")
    return AcrnVersion(int(major), int(minor),
                       values.get("EXTRA_VERSION", ""))


def read_text(path: str) -> str:
    """A small text file of the ACRN tree or build folder, read without
    ever blocking on a FIFO or device
    (:func:`~acrn_ivshmem.io.xmlio.read_input`)."""
    return read_input(path, _MAX_TEXT_BYTES).decode("utf-8", "replace")


def assignments(text: str) -> dict[str, str]:
    """``KEY=value`` lines (make or Kconfig style), quotes removed."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        key = key.strip().removesuffix(":")
        if sep and key and not key.startswith("#"):
            values[key] = value.strip().strip('"')
    return values


def version_tuple(text: str) -> tuple[int, ...] | None:
    """The leading ``1.2.3`` numbers of a version text, or None."""
    match = re.match(r"\d+(?:\.\d+)*", text.strip())
    if match is None:
        return None
    return tuple(int(part) for part in match.group().split("."))


@dataclass(frozen=True)
class BuildRequest:
    """What to build; the options of ``acrn-shm build``.

    ``out`` is ACRN's ``O=`` (default: ``<acrn_src>/build``); ``python``
    the interpreter for ACRN's make (default: the environment variable
    ``ACRN_SHM_BUILD_PYTHON``, else ``python3`` on PATH); ``make_args``
    extra arguments for make.
    """

    acrn_src: str
    board: str
    scenario: str
    out: str | None = None
    release: bool = False
    jobs: int | None = None
    python: str | None = None
    clean: bool = False
    make_args: tuple[str, ...] = ()


@dataclass(frozen=True, order=True)
class ShmRegion:
    """A hypervisor-provided region as ``ivshmem_cfg.h`` lists it.

    ``name`` includes ``hv:/``; ``size`` is in bytes; ``region_id`` is
    None where the format has none (before ACRN 3.3).
    """

    name: str
    size: int
    region_id: int | None = None

    @property
    def size_text(self) -> str:
        """The size in MB when whole, else in bytes."""
        if self.size % MIB == 0:
            return f"{self.size // MIB} MB"
        return f"{self.size} bytes"


@dataclass(frozen=True)
class BuildPlan:
    """Everything decided before make runs; see :func:`plan_build`.

    Paths are absolute. ``hv_dir`` is ``<out>/hypervisor``;
    ``make_path`` the PATH make runs with; ``python`` the ``python3``
    make will find there (None when there is none); ``command`` the make
    command line; ``expected_regions`` the scenario's hypervisor-provided
    regions.
    """

    request: BuildRequest
    acrn_src: str
    board: str
    scenario: str
    version: AcrnVersion
    interface: Interface
    board_name: str
    scenario_name: str
    out: str
    hv_dir: str
    log_path: str
    make_path: str
    python: str | None
    command: tuple[str, ...]
    expected_regions: tuple[ShmRegion, ...]


def plan_build(request: BuildRequest,
               environ: Mapping[str, str] | None = None,
               linter: Linter | None = None) -> BuildPlan:
    """Check the request against the tree and decide how to run make.

    The board and scenario are read through ``linter``, so that
    :func:`lint_inputs` with the same linter does not read them again.
    """
    environ = os.environ if environ is None else environ
    linter = linter or Linter()
    acrn_src = os.path.abspath(request.acrn_src)
    board = os.path.abspath(request.board)
    scenario = os.path.abspath(request.scenario)
    out = os.path.abspath(request.out or os.path.join(acrn_src, "build"))
    for option, path in (("--acrn-src", acrn_src), ("--board", board),
                         ("--scenario", scenario), ("--out", out)):
        if _UNSAFE_PATH.search(path):
            raise UsageError(f"{option} {path}: make cannot take a path "
                             "with blanks, '#' or '$'; move or link it")
    _check_make_args(request.make_args)
    if request.jobs is not None and request.jobs < 1:
        raise UsageError(f"--jobs {request.jobs}: expected 1 or more")
    version = read_version(acrn_src)
    interface = interface_for(version)
    if not os.path.isfile(os.path.join(acrn_src, "Makefile")):
        raise InputError(f"{acrn_src}: not an ACRN source tree (no "
                         "Makefile)")
    board_loaded = load_board(
        request.board, via=linter.load,
        refusal="{path}: --board expects a board XML")
    scenario_loaded = load_scenario(
        request.scenario, via=linter.load,
        refusal="{path}: --scenario expects a scenario XML")
    model = scenario_loaded.model
    _check_format(request.scenario, model, version, interface, acrn_src)
    if interface.scenario_format == "v3":
        _check_root_line(request.scenario, scenario_loaded)
    board_name = board_loaded.model.name
    if not board_name:
        raise InputError(located(
            request.board, board_loaded.model.loc.line, 1,
            "the root has no board=\"...\" attribute; ACRN names the "
            "board after it"))
    scenario_name = _scenario_name(request.scenario, scenario, interface,
                                   scenario_loaded, version)
    for path, loaded, what, name in (
            (request.board, board_loaded, "board", board_name),
            (request.scenario, scenario_loaded, "scenario", scenario_name)):
        if not _NAME.fullmatch(name):
            raise InputError(located(
                path, loaded.document.root.sourceline or 1, 1,
                f"ACRN would name the {what} {quoted(name)}, which its make "
                "would expand in makefiles and shell commands; use only "
                "letters, digits and _ . + -"))
    make_path, python = _make_path(request.python, environ)
    hv_dir = os.path.join(out, "hypervisor")
    command = _command(interface, acrn_src, board, scenario, out, hv_dir,
                       request, shutil.which("make", path=make_path))
    return BuildPlan(
        request=request, acrn_src=acrn_src, board=board, scenario=scenario,
        version=version, interface=interface, board_name=board_name,
        scenario_name=scenario_name, out=out, hv_dir=hv_dir,
        log_path=os.path.join(out, LOG_NAME), make_path=make_path,
        python=python, command=command,
        expected_regions=expected_regions(model))


def _check_make_args(args: tuple[str, ...]) -> None:
    for arg in args:
        variable = arg.partition("=")[0].strip()
        if "=" in arg and variable in _OWN_VARIABLES:
            raise UsageError(
                f"make argument {quoted(arg)}: acrn-shm sets {variable} "
                f"itself; use {_OWN_VARIABLES[variable]}")


def _check_format(path: str, model: Scenario, version: AcrnVersion,
                  interface: Interface, acrn_src: str) -> None:
    if interface.scenario_format == "v3" and model.is_legacy:
        raise UsageError(
            f"{path} is a legacy (ACRN v2.x) scenario, but {acrn_src} is "
            f"ACRN {version}, which reads only the v3 format; convert it "
            f"with 'acrn-shm upgrade {path} -o NEW.xml'")
    if interface.scenario_format == "legacy" and not model.is_legacy:
        raise UsageError(
            f"{path} is an ACRN v3 scenario, but {acrn_src} is ACRN "
            f"{version}, which reads only the legacy v2.x format; build it "
            "with an ACRN 3.x tree ('acrn-shm upgrade' converts only from "
            "v2.x to v3)")


def _check_root_line(path: str, loaded: Loaded) -> None:
    # config.mk@v3.3 rewrites every line holding "<acrn-config" with sed,
    # replacing it from there to the end of the line.
    root_line = loaded.document.root.sourceline
    text = loaded.document.data.decode("utf-8", "replace")
    for number, line in enumerate(text.splitlines(), 1):
        column = line.find("<acrn-config")
        if column < 0:
            continue
        whole_tag = re.fullmatch(r"<acrn-config(\s[^>]*)?>\s*",
                                 line[column:])
        if number == root_line and whole_tag:
            continue
        raise InputError(located(
            path, number, column + 1,
            "ACRN 3.x's build replaces the rest of every line holding "
            "'<acrn-config' with its own root tag (hypervisor/scripts/"
            "makefile/config.mk); put the <acrn-config> start tag alone on "
            "its line and nowhere else"))


def _scenario_name(given: str, scenario: str, interface: Interface,
                   loaded: Loaded, version: AcrnVersion) -> str:
    if interface.scenario_name_from == "attribute":
        name = loaded.document.root.get("scenario")
        if not name:
            raise InputError(located(
                given, loaded.document.root.sourceline or 1, 1,
                f"the root has no scenario=\"...\" attribute; ACRN "
                f"{version} names the scenario after it"))
        return name
    stem = os.path.basename(scenario).removesuffix(".xml")
    # config.mk@v3.3: a file called scenario.xml is named after its folder.
    if not stem.replace("scenario", ""):
        return os.path.basename(os.path.dirname(scenario))
    return stem


def _make_path(python: str | None,
               environ: Mapping[str, str]) -> tuple[str, str | None]:
    """The PATH for make, and the ``python3`` make will find on it."""
    path = environ.get("PATH", os.defpath)
    option = "--python"
    if python is None and environ.get(BUILD_PYTHON_VARIABLE):
        python = environ[BUILD_PYTHON_VARIABLE]
        option = BUILD_PYTHON_VARIABLE
    if python is None:
        return path, shutil.which("python3", path=path)
    chosen = os.path.abspath(python)
    if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
        raise UsageError(f"{option} {python}: no such executable")
    folder = os.path.dirname(chosen)
    found = shutil.which("python3", path=folder)
    if found is None or not os.path.samefile(found, chosen):
        raise UsageError(
            f"{option} {python}: ACRN's make runs 'python3', and "
            f"{os.path.join(folder, 'python3')} is "
            f"{'missing' if found is None else 'another interpreter'}; "
            "pass a python3 such as VENV/bin/python3")
    return folder + os.pathsep + path, found


def _command(interface: Interface, acrn_src: str, board: str,
             scenario: str, out: str, hv_dir: str, request: BuildRequest,
             make: str | None) -> tuple[str, ...]:
    command = [make or "make", "-C", acrn_src, "hypervisor",
               f"{interface.board_variable}={board}",
               f"{interface.scenario_variable}={scenario}", f"O={out}",
               f"RELEASE={'y' if request.release else 'n'}"]
    if interface.board_variable == "BOARD_FILE":
        # Without TARGET_DIR, ACRN 2.2-2.3 overwrite the tree's sources.
        command.append(f"TARGET_DIR={os.path.join(hv_dir, 'configs')}")
    if request.jobs is not None:
        command += ["-j", str(request.jobs)]
    return tuple(command) + tuple(request.make_args)


def expected_regions(scenario: Scenario) -> tuple[ShmRegion, ...]:
    """The hypervisor-provided regions ACRN should generate, in order.

    A legacy scenario has none unless ``IVSHMEM_ENABLED`` is ``y``.
    Sizes and region ids are the scenario's resolved facts (a missing v3
    size is ACRN's default of 2 MB, a missing region id 0; a region id
    that is no number is None, compared with none). A region whose size
    is no number is left out: ACRN cannot build it, and lint (ISM201,
    ISM103), which runs before make, stops the build on it.
    """
    if scenario.is_legacy and (scenario.ivshmem_enabled is None or
                               scenario.ivshmem_enabled.text.strip() != "y"):
        return ()
    regions = []
    for facts in scenario.resolved.regions:
        region = facts.syntax
        if facts.provider != "hv" or region.name is None or region.malformed:
            continue
        if facts.size_mb is None:
            continue
        regions.append(ShmRegion(
            "hv:/" + region.name.text.strip(), facts.size_mb * MIB,
            None if scenario.is_legacy else facts.region_id))
    return tuple(regions)


def lint_inputs(plan: BuildPlan, config: LintConfig | None = None,
                linter: Linter | None = None) -> LintResult:
    """Lint the scenario with the board (with ``linter``, which may have
    read them already, else a new one of ``config``); raise
    :class:`LintFailed` on any error finding or unreadable input."""
    request = plan.request
    linter = linter or Linter(config)
    result = linter.lint([request.scenario], request.board)
    errors = sum(d.severity == "error" for d in result.diagnostics)
    if result.errors:
        raise LintFailed(f"{result.errors[0]}; nothing was built", result)
    if errors:
        raise LintFailed(
            f"lint found {errors} error{'s' if errors > 1 else ''} in "
            f"{request.scenario}; fix {'them' if errors > 1 else 'it'} "
            "before building", result)
    return result
