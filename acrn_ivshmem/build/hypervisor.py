"""Build the ACRN hypervisor for a board and a scenario with ACRN's make.

:func:`build` runs the steps below in order and stops at the first one
that fails, raising a subclass of :class:`~acrn_ivshmem.errors.AcrnShmError`
with a one-line message:

1. :func:`plan_build`: read the ACRN version from the tree's ``VERSION``
   file, choose how make is told the inputs (``BOARD=``/``SCENARIO=``
   paths since ACRN 2.4, ``BOARD_FILE=``/``SCENARIO_FILE=`` in 2.2-2.3),
   check that the scenario's format fits the tree and work out the board
   and scenario names ACRN will use.
2. :func:`lint_inputs`: lint the scenario with its board; any error
   stops the build (:class:`LintFailed`).
3. :func:`check_prerequisites`: the tools and Python modules ACRN's make
   runs, all missing ones reported at once (:class:`MissingPrerequisites`).
   The Python checked is the ``python3`` make will find on its PATH.
4. :func:`check_build_dir`: a build folder that remembers another board
   or scenario (ACRN issue #7345) is refused before make
   (:class:`StaleBuildDir`); :func:`clean_build_dir` removes it.
5. :func:`run_make`: ACRN's make, its output parsed into
   :class:`BuildEvent` progress and written to ``<out>/acrn-shm-build.log``
   (:class:`MakeFailed` with the last error lines).
6. :func:`list_artefacts` and :func:`check_ivshmem_config`: the images
   exist, and the generated ``ivshmem_cfg.h`` lists exactly the
   scenario's hypervisor-provided regions (:class:`IvshmemMismatch`).

Facts used (ACRN ``projectacrn/acrn-hypervisor``): ``Makefile@v3.3``,
``hypervisor/scripts/makefile/config.mk@v2.4..v3.3`` (names, conflict
check, root-tag rewrite), ``Makefile@v2.3`` and
``hypervisor/scripts/makefile/{cfg_update,kconfig}.mk@v2.3``,
``misc/config_tools/xforms/ivshmem_cfg.h.xsl@v3.3`` and
``misc/acrn-config/scenario_config/ivshmem_cfg_h.py@v2.3``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

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
#: The images a successful hypervisor build leaves in ``<out>/hypervisor``.
ARTEFACTS = ("acrn.bin", "acrn.32.out")

_ERROR_LINES_KEPT = 10
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


class MissingPrerequisites(AcrnShmError):
    """Tools or Python modules ACRN's make needs are missing.

    ``missing`` lists every one, each with how to get it.
    """

    def __init__(self, missing: tuple[Prerequisite, ...]):
        super().__init__("missing build prerequisites: "
                         + "; ".join(p.text for p in missing))
        self.missing = missing


class StaleBuildDir(AcrnShmError):
    """make would refuse or misuse the build folder: it is configured for
    another board or scenario, or holds configuration make would not
    regenerate."""


class MakeFailed(AcrnShmError):
    """ACRN's make failed: its ``status``, the ``log_path`` with the full
    output and the last ``error_lines``."""

    def __init__(self, status: int, log_path: str,
                 error_lines: tuple[str, ...]):
        super().__init__(f"make failed with exit status {status}; full "
                         f"log: {log_path}")
        self.status = status
        self.log_path = log_path
        self.error_lines = error_lines


class ArtefactError(AcrnShmError):
    """make succeeded, but an image or the generated config is missing."""


class IvshmemMismatch(AcrnShmError):
    """The generated ``ivshmem_cfg.h`` differs from the scenario;
    ``differences`` has one line per difference."""

    def __init__(self, header: str, scenario: str,
                 differences: tuple[str, ...]):
        super().__init__(f"{header}: the generated IVSHMEM configuration "
                         f"differs from {scenario}: "
                         + "; ".join(differences))
        self.differences = differences


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

#: Debian package of each tool ACRN's make runs.
TOOL_PACKAGES = {
    "make": "make", "gcc": "gcc", "iasl": "acpica-tools",
    "xsltproc": "xsltproc", "xmllint": "libxml2-utils",
}


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
    values = _assignments(_read_text(path))
    major = values.get("MAJOR_VERSION", "")
    minor = values.get("MINOR_VERSION", "")
    if not (is_decimal(major) and is_decimal(minor)):
        raise InputError(f"{path}: expected MAJOR_VERSION and MINOR_VERSION "
                         "numbers")
    return AcrnVersion(int(major), int(minor),
                       values.get("EXTRA_VERSION", ""))


def _read_text(path: str) -> str:
    # A small text file of the ACRN tree or build folder; never blocks
    # on a FIFO or device (xmlio.read_input).
    return read_input(path, _MAX_TEXT_BYTES).decode("utf-8", "replace")


def _assignments(text: str) -> dict[str, str]:
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


@dataclass(frozen=True)
class Prerequisite:
    """A tool or Python module make needs that is missing or unfit.

    ``name`` (``iasl``, ``Python module elementpath``), ``problem``
    (what is wrong) and ``remedy`` (how to get it).
    """

    name: str
    problem: str
    remedy: str

    @property
    def text(self) -> str:
        """One line: name, problem and remedy."""
        return f"{self.name} {self.problem} ({self.remedy})"


# Runs in the Python make will use (any 3.x); prints
# {module: [version or "", error or null]}.
_MODULE_PROBE = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        module = importlib.import_module(name)
    except Exception as exc:
        found[name] = ["", "%s: %s" % (type(exc).__name__, exc)]
        continue
    version = getattr(module, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as dist_version
            version = dist_version(name.split(".")[0])
        except Exception:
            version = ""
    found[name] = [str(version), None]
print(json.dumps(found))
"""


def check_prerequisites(plan: BuildPlan,
                        environ: Mapping[str, str] | None = None) -> None:
    """Check every tool and module as make will see them; raise
    :class:`MissingPrerequisites` listing all that are missing."""
    environ = os.environ if environ is None else environ
    missing = [
        Prerequisite(tool, "is not on PATH",
                     f"install the Debian package {TOOL_PACKAGES[tool]}")
        for tool in plan.interface.tools
        if shutil.which(tool, path=plan.make_path) is None]
    if plan.python is None:
        missing.append(Prerequisite(
            "python3", "is not on PATH",
            f"install Python 3, or pass --python or set "
            f"{BUILD_PYTHON_VARIABLE}"))
    else:
        missing += _missing_modules(plan, environ)
    if missing:
        raise MissingPrerequisites(tuple(missing))


def _missing_modules(plan: BuildPlan,
                     environ: Mapping[str, str]) -> list[Prerequisite]:
    modules = plan.interface.python_modules
    try:
        probe = subprocess.run(
            [plan.python, "-c", _MODULE_PROBE,
             *(m.import_name for m in modules)],
            env=dict(environ, PATH=plan.make_path), capture_output=True,
            text=True, timeout=120, stdin=subprocess.DEVNULL)
        found = json.loads(probe.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return [Prerequisite(
            "python3", f"at {plan.python} does not run",
            "pass a working Python 3 with --python")]
    missing = []
    remedy = (f"pip install it in a venv and pass its bin/python3 with "
              f"--python or {BUILD_PYTHON_VARIABLE}")
    for module in modules:
        version, error = found.get(module.import_name, ["", "not checked"])
        what = f"Python module {module.name}"
        if error is not None:
            missing.append(Prerequisite(
                what, f"cannot be imported by {plan.python}",
                f"ACRN {plan.version} needs {quoted(module.spec)}; {remedy}"))
        elif not module.accepts(version):
            missing.append(Prerequisite(
                what, f"{version} in {plan.python} does not work",
                f"ACRN {plan.version} needs {quoted(module.spec)}; {remedy}"))
    return missing


def configured_for(plan: BuildPlan) -> tuple[str, str] | None:
    """The (board, scenario) the build folder remembers, or None."""
    record = os.path.join(plan.hv_dir, plan.interface.record)
    try:
        values = _assignments(_read_text(record))
    except InputError:
        return None
    board = values.get("CONFIG_BOARD", "")
    scenario = values.get("CONFIG_SCENARIO", "")
    if not (board or scenario):
        return None
    return board, scenario


def check_build_dir(plan: BuildPlan) -> None:
    """Raise :class:`StaleBuildDir` when make would refuse or misuse the
    existing build folder."""
    configured = configured_for(plan)
    record = os.path.join(plan.hv_dir, plan.interface.record)
    wanted = (plan.board_name, plan.scenario_name)
    if configured is not None and configured != wanted:
        # ACRN 2.2-2.3 do not compare; they rebuild the old configuration.
        outcome = ("stops on such a folder ('Configuration conflict "
                   "identified')" if plan.interface.regenerates else
                   "would build the old configuration again")
        raise StaleBuildDir(
            f"{plan.hv_dir} is configured for board {quoted(configured[0])} "
            f"and scenario {quoted(configured[1])} ({record}), not board "
            f"{quoted(wanted[0])} and scenario {quoted(wanted[1])}; ACRN "
            f"{plan.version} {outcome}: rerun with --clean to remove it, "
            "or choose another --out")
    if plan.interface.regenerates:
        _check_scenario_copy(plan)
        return
    result = os.path.join(plan.hv_dir, ".cfg_src_result")
    if not os.path.exists(result):
        return
    configured_at = os.path.getmtime(result)
    for path in (plan.scenario, plan.board):
        if os.path.getmtime(path) > configured_at:
            raise StaleBuildDir(
                f"{plan.hv_dir} holds configuration sources generated "
                f"before {path} last changed, and ACRN {plan.version} "
                "does not regenerate them in a used build folder "
                f"({result}): rerun with --clean")


def _check_scenario_copy(plan: BuildPlan) -> None:
    # make copies the scenario to .scenario.xml only when the scenario is
    # newer, so an older file of the same name would be silently ignored.
    copy = os.path.join(plan.hv_dir, ".scenario.xml")
    if not os.path.exists(copy) or (os.path.getmtime(plan.scenario)
                                    > os.path.getmtime(copy)):
        return
    try:
        copied = load_scenario(copy).model
    except AcrnShmError:  # unreadable, or not a scenario
        return
    if expected_regions(copied) != plan.expected_regions:
        raise StaleBuildDir(
            f"{copy}, ACRN's copy of the scenario, has other IVSHMEM "
            f"regions than {plan.scenario}, and make will not copy the "
            "scenario again because it is not newer: rerun with --clean")


# Files that show a folder is (part of) an ACRN hypervisor build.
_BUILD_MARKERS = ("configs", ".config", ".board.xml", ".scenario.xml",
                  "acrn.out", "acrn.bin", ".cfg_src_result", "include")


def clean_build_dir(plan: BuildPlan) -> bool:
    """Remove ``<out>/hypervisor``; False when there was none.

    Refuses (:class:`UsageError`) a non-empty folder that does not look
    like an ACRN build.
    """
    if not os.path.isdir(plan.hv_dir):
        return False
    entries = os.listdir(plan.hv_dir)
    if entries and not set(entries) & set(_BUILD_MARKERS):
        raise UsageError(f"refusing to remove {plan.hv_dir}: it does not "
                         "look like an ACRN build folder")
    shutil.rmtree(plan.hv_dir)
    return True


class Phase(str, Enum):
    """A step of ``acrn-shm build``, in the order they happen."""

    LINTING = "linting"
    CHECKING = "checking"
    CONFIGURING = "configuring"
    VALIDATING = "validating"
    GENERATING = "generating"
    COMPILING = "compiling"
    LINKING = "linking"
    VERIFYING = "verifying"
    DONE = "done"


_PHASE_ORDER = {phase: index for index, phase in enumerate(Phase)}


@dataclass(frozen=True)
class BuildEvent:
    """Progress: the ``phase``, seconds since the build started,
    objects compiled so far and what happens now (``detail``)."""

    phase: Phase
    elapsed: float
    objects: int = 0
    detail: str = ""


OnEvent = Callable[[BuildEvent], None]

_COMPILE = re.compile(
    r"^\s*\S*(?:cc|gcc|clang)(?=\s).*?\s-c\s.*?\s-o\s+(\S+\.o)(?:\s|$)")
_LINK = re.compile(r"\s-o\s+\S*?(acrn\.out)(?:\s|$)")
_OBJCOPY = re.compile(r"^\s*\S*objcopy\s.*\s(\S+)\s*$")
_FETCHED = re.compile(r"^(Board|Scenario|Scneario) XML is .*fetched from")
_GENERATED = re.compile(r"^(\S+) generated$")
_GENERATING = re.compile(r"^Generating (\S+?):?$")
_MESSAGES = (
    (re.compile(r"^Validating scenario configurations"), Phase.VALIDATING,
     "scenario"),
    (re.compile(r"^Board configurations for .* successfully"),
     Phase.GENERATING, "board configuration"),
    (re.compile(r"^Scenario configuration files were created"),
     Phase.GENERATING, "scenario configuration"),
    (re.compile(r"(?i)^(start to )?generate .*ACPI"), Phase.GENERATING,
     "ACPI tables"),
    (re.compile(r"^Start pre-build static check"), Phase.GENERATING,
     "pre-build check"),
    (re.compile(r"genld\.sh"), Phase.LINKING, "link script"),
)
_ERROR = re.compile(r"(?i)\berrors?\b|\*\*\*|^Traceback|\bnot found\b")


def classify_line(line: str) -> tuple[Phase, str, str | None] | None:
    """What a make output line shows: (phase, detail, object file or
    None), or None for a line that shows no progress."""
    line = line.rstrip()
    match = _COMPILE.match(line)
    if match:
        return Phase.COMPILING, match.group(1), match.group(1)
    match = _LINK.search(line)
    if match:
        return Phase.LINKING, match.group(1), None
    match = _OBJCOPY.match(line)
    if match:
        return Phase.LINKING, os.path.basename(match.group(1)), None
    match = _FETCHED.match(line)
    if match:
        return Phase.CONFIGURING, f"{match.group(1).lower()} XML", None
    match = _GENERATED.match(line) or _GENERATING.match(line)
    if match:
        return Phase.GENERATING, os.path.basename(match.group(1)), None
    for pattern, phase, detail in _MESSAGES:
        if pattern.search(line):
            return phase, detail, None
    return None


def is_error_line(line: str) -> bool:
    """True for a line that reports a failure (not a command echo)."""
    return bool(_ERROR.search(line)) and classify_line(line) is None


class ProgressTracker:
    """Folds make output lines into :class:`BuildEvent` values.

    The phase only moves forward; compiled objects are counted once and
    named relative to ``hv_dir``.
    """

    def __init__(self, started: float, clock: Callable[[], float],
                 hv_dir: str = ""):
        self.started = started
        self.clock = clock
        self.prefix = hv_dir.rstrip("/") + "/" if hv_dir else ""
        self.phase = Phase.CONFIGURING
        self.objects: set[str] = set()
        self.detail = ""

    def feed(self, line: str) -> BuildEvent | None:
        """The event ``line`` causes, or None when nothing changed."""
        seen = classify_line(line)
        if seen is None:
            return None
        phase, detail, obj = seen
        if obj is not None:
            obj = os.path.normpath(obj)
            if obj in self.objects:
                return None
            self.objects.add(obj)
            detail = obj.removeprefix(self.prefix)
        if _PHASE_ORDER[phase] > _PHASE_ORDER[self.phase]:
            self.phase = phase
        elif phase != self.phase:
            return None
        self.detail = detail
        return self.event()

    def event(self, detail: str | None = None) -> BuildEvent:
        """An event for now, in the current phase."""
        return BuildEvent(self.phase,
                          round(self.clock() - self.started, 3),
                          len(self.objects),
                          self.detail if detail is None else detail)


def last_error_lines(lines: list[str],
                     keep: int = _ERROR_LINES_KEPT) -> tuple[str, ...]:
    """The last ``keep`` distinct error lines, in output order."""
    found: dict[str, None] = {}
    for line in lines:
        line = line.rstrip()
        if is_error_line(line):
            found.pop(line, None)
            found[line] = None
    return tuple(found)[-keep:]


@dataclass(frozen=True)
class MakeRun:
    """A successful make: wall time in seconds, objects compiled."""

    seconds: float
    objects: int


def run_make(plan: BuildPlan, on_event: OnEvent | None = None,
             environ: Mapping[str, str] | None = None,
             started: float | None = None) -> MakeRun:
    """Run ACRN's make, log all output and report progress.

    ``started`` is the monotonic time events count from (default: now).
    Raises :class:`MakeFailed` when make fails.
    """
    environ = os.environ if environ is None else environ
    clock = time.monotonic
    started = clock() if started is None else started
    make_started = clock()
    tracker = ProgressTracker(started, clock, plan.hv_dir)
    emit = on_event or (lambda event: None)
    os.makedirs(plan.out, exist_ok=True)
    # Python block-buffers into a pipe; progress should arrive live.
    env = dict(environ, PATH=plan.make_path, PYTHONUNBUFFERED="1")
    recent: list[str] = []
    with open(plan.log_path, "w", encoding="utf-8") as log:
        log.write(f"# acrn-shm build: ACRN {plan.version} at "
                  f"{plan.acrn_src}\n# {' '.join(plan.command)}\n"
                  f"# PATH={plan.make_path}\n")
        emit(tracker.event(detail="make"))
        process = subprocess.Popen(
            plan.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, text=True,
            errors="replace", start_new_session=True)
        try:
            for line in process.stdout:
                log.write(line)
                recent.append(line)
                del recent[:-2000]
                event = tracker.feed(line)
                if event is not None:
                    emit(event)
            status = process.wait()
        except BaseException:
            # make runs in its own session: stop it and its children.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait()
            raise
        finally:
            process.stdout.close()
    if status != 0:
        raise MakeFailed(status, plan.log_path, last_error_lines(recent))
    return MakeRun(round(clock() - make_started, 3),
                   len(tracker.objects))


@dataclass(frozen=True)
class Artefact:
    """A built image: file name, absolute path and size in bytes."""

    name: str
    path: str
    size: int


def list_artefacts(plan: BuildPlan) -> tuple[Artefact, ...]:
    """The images in ``<out>/hypervisor``; raise :class:`ArtefactError`
    when one is missing."""
    artefacts = []
    for name in ARTEFACTS:
        path = os.path.join(plan.hv_dir, name)
        if not os.path.isfile(path):
            raise ArtefactError(f"{path}: missing although make succeeded")
        artefacts.append(Artefact(name, path, os.path.getsize(path)))
    return tuple(artefacts)


def ivshmem_header_path(plan: BuildPlan) -> str:
    """Where the build generated ``ivshmem_cfg.h``.

    ACRN 2.4 and later: ``configs/scenarios/<scenario>/``; 2.2-2.3 (with
    ``TARGET_DIR``): ``configs/scenarios/<scenario>/<board>/``.
    """
    folder = os.path.join(plan.hv_dir, "configs", "scenarios",
                          plan.scenario_name)
    for candidate in (os.path.join(folder, "ivshmem_cfg.h"),
                      os.path.join(folder, plan.board_name,
                                   "ivshmem_cfg.h")):
        if os.path.isfile(candidate):
            return candidate
    raise ArtefactError(f"{folder}: no ivshmem_cfg.h although make "
                        "succeeded")


_NAME_MACRO = re.compile(r'^\s*#define\s+(IVSHMEM_SHM_REGION_\d+)\s+"([^"]*)"',
                         re.M)
_REGIONS_MACRO = re.compile(r"^\s*#define\s+IVSHMEM_SHM_REGIONS\b(.*)$",
                            re.M)
_FIELD = re.compile(r'\.(name|size|region_id)\s*=\s*("[^"]*"|\w+)')


def parse_ivshmem_header(text: str) -> tuple[ShmRegion, ...]:
    """The regions of ``IVSHMEM_SHM_REGIONS`` in a generated header.

    Reads both the ACRN 2.x and 3.x layouts; no macro means no region.
    """
    names = dict(_NAME_MACRO.findall(text))
    match = _REGIONS_MACRO.search(text)
    if match is None:
        return ()
    body_lines = [match.group(1)]
    rest = text[match.end():].splitlines()[1:]
    previous = match.group(1)
    for line in rest:
        if not previous.rstrip().endswith("\\"):
            break
        body_lines.append(line)
        previous = line
    body = re.sub(r"/\*.*?\*/", "", "\n".join(body_lines), flags=re.S)
    regions = []
    for block in re.findall(r"\{(.*?)\}", body, re.S):
        fields = dict(_FIELD.findall(block))
        name = fields.get("name", "")
        name = name.strip('"') if name.startswith('"') else names.get(
            name, name)
        size = re.sub(r"[uUlL]+$", "", fields.get("size", "0"))
        region_id = fields.get("region_id")
        regions.append(ShmRegion(
            name, int(size, 0),
            int(region_id, 0) if region_id is not None else None))
    return tuple(regions)


def compare_regions(generated: tuple[ShmRegion, ...],
                    expected: tuple[ShmRegion, ...]) -> tuple[str, ...]:
    """What differs between the header's regions and the scenario's,
    one message per difference (names and sizes; region ids where the
    header has them)."""
    built = {region.name: region for region in generated}
    wanted = {region.name: region for region in expected}
    differences = []
    for name, region in wanted.items():
        got = built.get(name)
        if got is None:
            differences.append(f"{quoted(name)} ({region.size_text}) is "
                               "missing")
            continue
        if got.size != region.size:
            differences.append(f"{quoted(name)} is {got.size_text}, not "
                               f"{region.size_text}")
        if got.region_id is not None and got.region_id != region.region_id:
            differences.append(f"{quoted(name)} has region id "
                               f"{got.region_id}, "
                               f"not {region.region_id}")
    for name, region in built.items():
        if name not in wanted:
            differences.append(f"{quoted(name)} ({region.size_text}) is not a "
                               "hypervisor-provided region of the scenario")
    return tuple(differences)


def check_ivshmem_config(plan: BuildPlan) -> tuple[str, tuple[ShmRegion,
                                                              ...]]:
    """The header's path and regions, when they match the scenario;
    else raise :class:`IvshmemMismatch`."""
    header = ivshmem_header_path(plan)
    generated = parse_ivshmem_header(_read_text(header))
    differences = compare_regions(generated, plan.expected_regions)
    if differences:
        raise IvshmemMismatch(header, plan.request.scenario, differences)
    return header, generated


@dataclass(frozen=True)
class BuildResult:
    """A successful build: the plan, the lint result (warnings may be
    left), the images, the verified ``ivshmem_cfg.h`` and its regions,
    whether an old build folder was removed, the make run and the wall
    time of the whole build in seconds."""

    plan: BuildPlan
    lint: LintResult
    artefacts: tuple[Artefact, ...]
    ivshmem_header: str
    regions: tuple[ShmRegion, ...]
    cleaned: bool
    make: MakeRun
    seconds: float


def build(request: BuildRequest, on_event: OnEvent | None = None,
          environ: Mapping[str, str] | None = None,
          lint_config: LintConfig | None = None) -> BuildResult:
    """Lint, check, run ACRN's make and verify the result; see the
    module docstring for the steps and the exceptions they raise."""
    environ = os.environ if environ is None else environ
    clock = time.monotonic
    started = clock()
    emit = on_event or (lambda event: None)

    def step(phase: Phase, detail: str = "", objects: int = 0) -> None:
        emit(BuildEvent(phase, round(clock() - started, 3), objects,
                        detail))

    linter = Linter(lint_config)
    plan = plan_build(request, environ, linter)
    step(Phase.LINTING, request.scenario)
    lint_result = lint_inputs(plan, linter=linter)
    step(Phase.CHECKING, "prerequisites")
    check_prerequisites(plan, environ)
    cleaned = False
    if request.clean:
        step(Phase.CHECKING, f"removing {plan.hv_dir}")
        cleaned = clean_build_dir(plan)
    else:
        step(Phase.CHECKING, plan.hv_dir)
        check_build_dir(plan)
    make = run_make(plan, emit, environ, started)
    step(Phase.VERIFYING, "artefacts", make.objects)
    artefacts = list_artefacts(plan)
    step(Phase.VERIFYING, "ivshmem_cfg.h", make.objects)
    header, regions = check_ivshmem_config(plan)
    step(Phase.DONE, "", make.objects)
    return BuildResult(plan, lint_result, artefacts, header, regions,
                       cleaned, make, round(clock() - started, 3))
