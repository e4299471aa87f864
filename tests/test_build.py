"""The build driver against fake ACRN trees (no compiler, ~ms per make).

``tests/test_build/fake-acrn-v3.3`` and ``fake-acrn-v2.3`` are
Makefiles with ACRN's variables and output lines that check their
arguments and write a build folder like ACRN's, including an
``ivshmem_cfg.h`` derived from the scenario (``fake_acrn_gen.py``).
Each test runs them with a PATH of stand-in tools and a Python whose
only third-party modules are version stubs, so what the prerequisite
check finds is fixed by the test. The real build is in
``test_build_real.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import PROJECT, run_acrn_shm

from acrn_ivshmem.build.builddir import StaleBuildDir, clean_build_dir
from acrn_ivshmem.build.hypervisor import build
from acrn_ivshmem.build.make import (
    BuildEvent, MakeFailed, Phase, ProgressTracker, classify_line,
    last_error_lines,
)
from acrn_ivshmem.build.plan import (
    LOG_NAME, AcrnVersion, BuildRequest, LintFailed, ShmRegion,
    expected_regions, interface_for, lint_inputs, plan_build, read_version,
)
from acrn_ivshmem.build.prereqs import (
    MissingPrerequisites, check_prerequisites,
)
from acrn_ivshmem.build.verify import (
    ArtefactError, IvshmemMismatch, compare_regions, parse_ivshmem_header,
)
from acrn_ivshmem.units import MIB
from acrn_ivshmem.cli import exit_status
from acrn_ivshmem.errors import InputError, UsageError
from acrn_ivshmem.lint.engine import Linter
from acrn_ivshmem.model.loader import load

DATA = Path(__file__).parent / "test_build"
FAKE_V3 = DATA / "fake-acrn-v3.3"
FAKE_V2 = DATA / "fake-acrn-v2.3"
BOARD = PROJECT / "board-xmls" / "demo-nuc.xml"
V3 = PROJECT / "scenario-xmls" / "hybrid_rt_v3.xml"
LEGACY = PROJECT / "scenario-xmls" / "hybrid_rt.xml"
TWO_REGIONS = DATA / "hybrid_rt_two.xml"
GOOD_MODULES = {"elementpath": "2.5.3", "xmlschema": "1.11.3",
                "lxml": "5.2.1", "defusedxml": "0.7.1",
                "kconfiglib": "14.1.0"}


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def _tools(folder: Path, names=("gcc", "iasl", "xsltproc", "xmllint"),
           python=True) -> Path:
    """``folder`` with make, stand-ins for ``names`` and a python3."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("GNU make is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "make").symlink_to(make)
    for name in names:
        _script(folder / name, "exit 0")
    if python:
        # -S: no site-packages, so only the stubs on PYTHONPATH are there.
        _script(folder / "python3", f'exec "{sys.executable}" -S "$@"')
    return folder


def _stubs(folder: Path, versions: dict[str, str]) -> Path:
    """Importable stand-ins for ACRN's Python modules, with versions."""
    for name, version in versions.items():
        package = folder / name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(f"__version__ = '{version}'\n")
        if name == "lxml":
            (package / "etree.py").write_text(
                f"__version__ = '{version}'\n")
    return folder


@pytest.fixture
def environ(tmp_path) -> dict[str, str]:
    """A PATH with every tool ACRN needs and fitting Python modules."""
    tools = _tools(tmp_path / "bin")
    site = _stubs(tmp_path / "site", GOOD_MODULES)
    return {"PATH": f"{tools}:/usr/bin:/bin", "PYTHONPATH": str(site),
            "HOME": str(tmp_path / "home")}


def _request(tree=FAKE_V3, scenario=V3, out=None, **options):
    return BuildRequest(str(tree), str(BOARD), str(scenario),
                        out=str(out) if out else None, **options)


def _phases(events) -> list[Phase]:
    phases: list[Phase] = []
    for event in events:
        if not phases or phases[-1] != event.phase:
            phases.append(event.phase)
    return phases


# --- the tree: version and interface -----------------------------------------

def test_version_of_the_fake_trees():
    assert read_version(str(FAKE_V3)) == AcrnVersion(3, 3, "")
    assert str(read_version(str(FAKE_V2))) == "2.3"


def test_version_errors(tmp_path):
    with pytest.raises(InputError) as missing:
        read_version(str(tmp_path / "nothing"))
    assert str(missing.value) == f"{tmp_path}/nothing: no such folder"
    with pytest.raises(InputError) as no_file:
        read_version(str(tmp_path))
    assert str(no_file.value) == (
        f"{tmp_path}: not an ACRN source tree (no VERSION file)")
    # "²" is a digit to str.isdigit but not to int().
    for text in ("MAJOR_VERSION=two\n",
                 "MAJOR_VERSION=\u00b2\nMINOR_VERSION=3\n"):
        (tmp_path / "VERSION").write_text(text)
        with pytest.raises(InputError) as bad:
            read_version(str(tmp_path))
        assert str(bad.value) == (f"{tmp_path}/VERSION: expected "
                                  "MAJOR_VERSION and MINOR_VERSION numbers")


def test_old_acrn_is_refused(tmp_path):
    (tmp_path / "VERSION").write_text(
        "MAJOR_VERSION=2\nMINOR_VERSION=1\nEXTRA_VERSION=-unstable\n")
    with pytest.raises(UsageError) as refused:
        plan_build(_request(tree=tmp_path))
    assert str(refused.value) == (
        "ACRN 2.1-unstable is not supported; acrn-shm builds ACRN 2.2 "
        "and later")


@pytest.mark.parametrize("version, variables, fmt, tools, modules", [
    ((2, 2), ("BOARD_FILE", "SCENARIO_FILE"), "legacy",
     ("make", "gcc", "iasl"), ["kconfiglib"]),
    ((2, 4), ("BOARD", "SCENARIO"), "legacy",
     ("make", "gcc", "iasl", "xmllint"),
     ["kconfiglib", "lxml", "xmlschema"]),
    ((2, 7), ("BOARD", "SCENARIO"), "legacy",
     ("make", "gcc", "iasl", "xmllint", "xsltproc"),
     ["defusedxml", "lxml", "xmlschema"]),
    ((3, 0), ("BOARD", "SCENARIO"), "v3",
     ("make", "gcc", "iasl", "xsltproc", "xmllint"),
     ["defusedxml", "elementpath>=2.5,<3", "lxml", "xmlschema>=1.10,<2"]),
])
def test_interface_by_version(version, variables, fmt, tools, modules):
    interface = interface_for(AcrnVersion(*version))
    assert (interface.board_variable,
            interface.scenario_variable) == variables
    assert interface.scenario_format == fmt
    assert interface.tools == tools
    assert [m.spec for m in interface.python_modules] == modules


# --- planning: command line, names, refusals ---------------------------------

def test_v3_command_line(tmp_path, environ):
    plan = plan_build(_request(out=tmp_path / "out", release=True, jobs=2,
                               make_args=("V=1",)), environ)
    assert plan.command == (
        str(tmp_path / "bin" / "make"), "-C", str(FAKE_V3), "hypervisor",
        f"BOARD={BOARD}", f"SCENARIO={V3}", f"O={tmp_path}/out",
        "RELEASE=y", "-j", "2", "V=1")
    assert (plan.board_name, plan.scenario_name) == ("demo-nuc",
                                                     "hybrid_rt_v3")
    assert plan.log_path == f"{tmp_path}/out/{LOG_NAME}"
    assert plan.python == f"{tmp_path}/bin/python3"


def test_planning_and_linting_read_each_file_once(tmp_path, environ,
                                                 monkeypatch):
    import acrn_ivshmem.lint.engine

    read = []
    real_load = acrn_ivshmem.lint.engine.load
    monkeypatch.setattr(acrn_ivshmem.lint.engine, "load",
                        lambda path: read.append(path) or real_load(path))
    linter = Linter()
    plan = plan_build(_request(out=tmp_path / "out"), environ, linter)
    assert lint_inputs(plan, linter=linter).diagnostics == ()
    assert sorted(read) == sorted([str(BOARD), str(V3)])


def test_v2_3_command_line_keeps_sources_in_the_build(tmp_path, environ):
    plan = plan_build(_request(FAKE_V2, LEGACY, tmp_path / "out"), environ)
    assert plan.command == (
        str(tmp_path / "bin" / "make"), "-C", str(FAKE_V2), "hypervisor",
        f"BOARD_FILE={BOARD}", f"SCENARIO_FILE={LEGACY}",
        f"O={tmp_path}/out", "RELEASE=n",
        f"TARGET_DIR={tmp_path}/out/hypervisor/configs")
    assert plan.scenario_name == "hybrid_rt"


def test_relative_and_default_output_folders(tmp_path, monkeypatch,
                                             environ):
    monkeypatch.chdir(tmp_path)
    assert plan_build(_request(out="rel"), environ).out == f"{tmp_path}/rel"
    assert plan_build(_request(), environ).hv_dir == (
        f"{FAKE_V3}/build/hypervisor")


def test_scenario_called_scenario_xml_is_named_after_its_folder(
        tmp_path, environ):
    folder = tmp_path / "my_setup"
    folder.mkdir()
    shutil.copy(V3, folder / "scenario.xml")
    plan = plan_build(_request(scenario=folder / "scenario.xml"), environ)
    assert plan.scenario_name == "my_setup"


def test_legacy_scenario_on_a_v3_tree_names_upgrade(environ):
    with pytest.raises(UsageError) as mismatch:
        plan_build(_request(FAKE_V3, LEGACY), environ)
    assert str(mismatch.value) == (
        f"{LEGACY} is a legacy (ACRN v2.x) scenario, but {FAKE_V3} is ACRN "
        f"3.3, which reads only the v3 format; convert it with 'acrn-shm "
        f"upgrade {LEGACY} -o NEW.xml'")


def test_v3_scenario_on_a_v2_tree_is_refused(environ):
    with pytest.raises(UsageError) as mismatch:
        plan_build(_request(FAKE_V2, V3), environ)
    assert str(mismatch.value) == (
        f"{V3} is an ACRN v3 scenario, but {FAKE_V2} is ACRN 2.3, which "
        "reads only the legacy v2.x format; build it with an ACRN 3.x tree "
        "('acrn-shm upgrade' converts only from v2.x to v3)")


def test_root_tag_must_be_alone_on_its_line(tmp_path, environ):
    scenario = tmp_path / "split.xml"
    scenario.write_text(V3.read_text().replace(
        "<acrn-config>", '<acrn-config\n    board="demo-nuc">'))
    with pytest.raises(InputError) as refused:
        plan_build(_request(scenario=scenario), environ)
    assert str(refused.value) == (
        f"{scenario}:4:1: ACRN 3.x's build replaces the rest of every line "
        "holding '<acrn-config' with its own root tag (hypervisor/scripts/"
        "makefile/config.mk); put the <acrn-config> start tag alone on its "
        "line and nowhere else")


def test_names_come_from_root_attributes(tmp_path, environ):
    board = tmp_path / "board.xml"
    board.write_text(BOARD.read_text().replace(' board="demo-nuc"', ""))
    with pytest.raises(InputError) as no_board:
        plan_build(BuildRequest(str(FAKE_V3), str(board), str(V3)), environ)
    assert str(no_board.value) == (
        f"{board}:4:1: the root has no board=\"...\" attribute; ACRN names "
        "the board after it")
    legacy = tmp_path / "legacy.xml"
    legacy.write_text(LEGACY.read_text().replace(
        ' scenario="hybrid_rt"', ""))
    with pytest.raises(InputError) as no_scenario:
        plan_build(_request(FAKE_V2, legacy), environ)
    assert str(no_scenario.value) == (
        f"{legacy}:4:1: the root has no scenario=\"...\" attribute; ACRN "
        "2.3 names the scenario after it")


@pytest.mark.parametrize("arg, option", [
    ("O=/elsewhere", "--out"), ("RELEASE=y", "--release"),
    ("BOARD=nuc", "--board"), ("SCENARIO_FILE=x.xml", "--scenario"),
])
def test_extra_make_arguments_may_not_replace_options(arg, option,
                                                      environ):
    with pytest.raises(UsageError) as refused:
        plan_build(_request(make_args=(arg,)), environ)
    variable = arg.partition("=")[0]
    assert str(refused.value) == (f"make argument '{arg}': acrn-shm sets "
                                  f"{variable} itself; use {option}")


def test_paths_make_cannot_take(tmp_path, environ):
    with pytest.raises(UsageError) as refused:
        plan_build(_request(out=tmp_path / "my build"), environ)
    assert str(refused.value) == (
        f"--out {tmp_path}/my build: make cannot take a path with blanks, "
        "'#' or '$'; move or link it")


def test_jobs_must_be_positive(environ):
    with pytest.raises(UsageError) as refused:
        plan_build(_request(jobs=0), environ)
    assert str(refused.value) == "--jobs 0: expected 1 or more"


# --- the Python make runs ----------------------------------------------------

def test_python_option_goes_first_on_make_path(tmp_path, environ):
    venv = _tools(tmp_path / "venv" / "bin", names=())
    plan = plan_build(_request(python=str(venv / "python3")), environ)
    assert plan.python == str(venv / "python3")
    assert plan.make_path == f"{venv}:{environ['PATH']}"


def test_python_from_the_environment(tmp_path, environ):
    venv = _tools(tmp_path / "venv" / "bin", names=())
    plan = plan_build(_request(), dict(
        environ, ACRN_SHM_BUILD_PYTHON=str(venv / "python3")))
    assert plan.python == str(venv / "python3")


def test_python_option_errors(tmp_path, environ):
    with pytest.raises(UsageError) as missing:
        plan_build(_request(python="/nonexistent/python3"), environ)
    assert str(missing.value) == (
        "--python /nonexistent/python3: no such executable")
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    _script(lonely / "mypython", "exit 0")
    with pytest.raises(UsageError) as no_python3:
        plan_build(_request(python=str(lonely / "mypython")), environ)
    assert str(no_python3.value) == (
        f"--python {lonely}/mypython: ACRN's make runs 'python3', and "
        f"{lonely}/python3 is missing; pass a python3 such as "
        "VENV/bin/python3")
    _script(lonely / "python3", "exit 0")
    with pytest.raises(UsageError) as other:
        plan_build(_request(python=str(lonely / "mypython")), environ)
    assert str(other.value).endswith(
        f"{lonely}/python3 is another interpreter; pass a python3 such as "
        "VENV/bin/python3")


# --- prerequisites -----------------------------------------------------------

def test_every_missing_prerequisite_at_once(tmp_path):
    bare = _tools(tmp_path / "bare", names=())
    site = _stubs(tmp_path / "site", {"elementpath": "4.4.0",
                                      "xmlschema": "3.4.0",
                                      "lxml": "5.2.1"})
    environ = {"PATH": str(bare), "PYTHONPATH": str(site)}
    with pytest.raises(MissingPrerequisites) as missing:
        build(_request(out=tmp_path / "out"), environ=environ)
    python = f"{bare}/python3"
    remedy = ("pip install it in a venv and pass its bin/python3 with "
              "--python or ACRN_SHM_BUILD_PYTHON")
    expected = [
        "gcc is not on PATH (install the Debian package gcc)",
        "iasl is not on PATH (install the Debian package acpica-tools)",
        "xsltproc is not on PATH (install the Debian package xsltproc)",
        "xmllint is not on PATH (install the Debian package libxml2-utils)",
        f"Python module defusedxml cannot be imported by {python} "
        f"(ACRN 3.3 needs 'defusedxml'; {remedy})",
        f"Python module elementpath 4.4.0 in {python} does not work "
        f"(ACRN 3.3 needs 'elementpath>=2.5,<3'; {remedy})",
        f"Python module xmlschema 3.4.0 in {python} does not work "
        f"(ACRN 3.3 needs 'xmlschema>=1.10,<2'; {remedy})",
    ]
    assert [p.text for p in missing.value.missing] == expected
    assert str(missing.value) == ("missing build prerequisites: "
                                  + "; ".join(expected))
    assert exit_status(missing.value) == 2
    assert not (tmp_path / "out").exists()


def test_no_python3_at_all(tmp_path):
    bare = _tools(tmp_path / "bare", python=False)
    plan = plan_build(_request(FAKE_V2, LEGACY), {"PATH": str(bare)})
    with pytest.raises(MissingPrerequisites) as missing:
        check_prerequisites(plan, {"PATH": str(bare)})
    assert [p.text for p in missing.value.missing] == [
        "python3 is not on PATH (install Python 3, or pass --python or set "
        "ACRN_SHM_BUILD_PYTHON)"]


def test_v2_3_needs_kconfiglib_only(tmp_path, environ):
    site = _stubs(tmp_path / "other-site", {})
    environ = dict(environ, PYTHONPATH=str(site))
    plan = plan_build(_request(FAKE_V2, LEGACY), environ)
    with pytest.raises(MissingPrerequisites) as missing:
        check_prerequisites(plan, environ)
    assert [p.name for p in missing.value.missing] == [
        "Python module kconfiglib"]


# --- lint gate ---------------------------------------------------------------

def test_lint_error_stops_before_make(tmp_path, environ):
    scenario = tmp_path / "bad.xml"
    scenario.write_text(V3.read_text().replace(
        "<IVSHMEM_SIZE>2</IVSHMEM_SIZE>", "<IVSHMEM_SIZE>3</IVSHMEM_SIZE>"))
    events = []
    with pytest.raises(LintFailed) as failed:
        build(_request(scenario=scenario, out=tmp_path / "out"),
              events.append, environ)
    assert str(failed.value) == (f"lint found 1 error in {scenario}; fix it "
                                 "before building")
    assert [(d.code, d.line) for d in failed.value.result.diagnostics
            if d.severity == "error"] == [("ISM201", 22)]
    assert exit_status(failed.value) == 1
    assert _phases(events) == [Phase.LINTING]
    assert not (tmp_path / "out").exists()


# --- successful builds -------------------------------------------------------

def test_v3_build(tmp_path, environ):
    events = []
    result = build(_request(out=tmp_path / "out"), events.append, environ)
    hv = tmp_path / "out" / "hypervisor"
    assert _phases(events) == [
        Phase.LINTING, Phase.CHECKING, Phase.CONFIGURING, Phase.VALIDATING,
        Phase.GENERATING, Phase.COMPILING, Phase.LINKING, Phase.VERIFYING,
        Phase.DONE]
    assert [(e.objects, e.detail) for e in events
            if e.phase == Phase.COMPILING] == [
        (1, "lib/string.o"), (2, "arch/x86/cpu.o"),
        (3, "dm/vpci/ivshmem.o")]
    assert [e.detail for e in events if e.phase == Phase.GENERATING] == [
        "config.mk", "board configuration", "ivshmem_cfg.h",
        "pre-build check"]
    assert events[-1].objects == 3
    times = [e.elapsed for e in events]
    assert times == sorted(times)
    assert [(a.name, a.path, a.size) for a in result.artefacts] == [
        ("acrn.bin", f"{hv}/acrn.bin", 24),
        ("acrn.32.out", f"{hv}/acrn.32.out", 30)]
    assert (hv / "acrn.bin").read_text() == "fake acrn.bin RELEASE=n\n"
    assert result.ivshmem_header == (
        f"{hv}/configs/scenarios/hybrid_rt_v3/ivshmem_cfg.h")
    assert result.regions == (ShmRegion("hv:/shm_region_0", 2 * MIB, 0),)
    assert (result.cleaned, result.make.objects) == (False, 3)
    log = (tmp_path / "out" / LOG_NAME).read_text().splitlines()
    assert log[:3] == [
        f"# acrn-shm build: ACRN 3.3 at {FAKE_V3}",
        "# " + " ".join(result.plan.command),
        f"# PATH={environ['PATH']}"]
    assert f"fake: python3={tmp_path}/bin/python3" in log
    assert "- SCENARIO = hybrid_rt_v3" in log


def test_release_jobs_and_extra_arguments_reach_make(tmp_path, environ):
    result = build(_request(scenario=TWO_REGIONS, out=tmp_path / "out",
                            release=True, jobs=2, make_args=("V=1",)),
                   environ=environ)
    hv = tmp_path / "out" / "hypervisor"
    assert (hv / "acrn.bin").read_text() == "fake acrn.bin RELEASE=y\n"
    flags = next(line for line in (tmp_path / "out" / LOG_NAME)
                 .read_text().splitlines() if line.startswith("fake: MAKE"))
    assert re.search(r"(^| )-j2( |$)", flags.partition("=")[2])
    assert " V=1" in flags
    assert result.regions == (ShmRegion("hv:/shm_region_0", 2 * MIB, 0),
                              ShmRegion("hv:/shm_region_1", 4 * MIB, 0))


def test_v2_3_build(tmp_path, environ):
    events = []
    result = build(_request(FAKE_V2, LEGACY, tmp_path / "out"),
                   events.append, environ)
    hv = tmp_path / "out" / "hypervisor"
    assert _phases(events) == [
        Phase.LINTING, Phase.CHECKING, Phase.CONFIGURING, Phase.GENERATING,
        Phase.COMPILING, Phase.LINKING, Phase.VERIFYING, Phase.DONE]
    assert result.ivshmem_header == (
        f"{hv}/configs/scenarios/hybrid_rt/demo-nuc/ivshmem_cfg.h")
    assert result.regions == (ShmRegion("hv:/shm_region_0", 2 * MIB),)
    assert (hv / ".config").read_text().splitlines()[:2] == [
        'CONFIG_BOARD="demo-nuc"', 'CONFIG_SCENARIO="hybrid_rt"']
    assert [a.size for a in result.artefacts] == [24, 30]


# --- stale build folders -----------------------------------------------------

def test_folder_of_another_scenario_is_refused_then_cleaned(tmp_path,
                                                            environ):
    out = tmp_path / "out"
    build(_request(out=out), environ=environ)
    log_before = (out / LOG_NAME).read_text()
    with pytest.raises(StaleBuildDir) as stale:
        build(_request(scenario=TWO_REGIONS, out=out), environ=environ)
    hv = out / "hypervisor"
    assert str(stale.value) == (
        f"{hv} is configured for board 'demo-nuc' and scenario "
        f"'hybrid_rt_v3' ({hv}/configs/config.mk), not board 'demo-nuc' and "
        "scenario 'hybrid_rt_two'; ACRN 3.3 stops on such a folder "
        "('Configuration conflict identified'): rerun with --clean to "
        "remove it, or choose another --out")
    assert (out / LOG_NAME).read_text() == log_before
    result = build(_request(scenario=TWO_REGIONS, out=out, clean=True),
                   environ=environ)
    assert result.cleaned is True
    assert not (hv / "configs" / "scenarios" / "hybrid_rt_v3").exists()
    assert len(result.regions) == 2


def test_v2_3_folder_is_stale_after_the_scenario_changes(tmp_path,
                                                         environ):
    scenario = tmp_path / "hybrid_rt.xml"
    shutil.copy(LEGACY, scenario)
    out = tmp_path / "out"
    build(_request(FAKE_V2, scenario, out), environ=environ)
    build(_request(FAKE_V2, scenario, out), environ=environ)
    result_file = out / "hypervisor" / ".cfg_src_result"
    later = os.path.getmtime(result_file) + 10
    os.utime(scenario, (later, later))
    with pytest.raises(StaleBuildDir) as stale:
        build(_request(FAKE_V2, scenario, out), environ=environ)
    assert str(stale.value) == (
        f"{out}/hypervisor holds configuration sources generated before "
        f"{scenario} last changed, and ACRN 2.3 does not regenerate them in "
        f"a used build folder ({result_file}): rerun with --clean")
    assert build(_request(FAKE_V2, scenario, out, clean=True),
                 environ=environ).cleaned is True


def test_v2_3_folder_of_another_scenario(tmp_path, environ):
    out = tmp_path / "out"
    build(_request(FAKE_V2, LEGACY, out), environ=environ)
    other = PROJECT / "scenario-xmls" / "dm_land_legacy.xml"
    with pytest.raises(StaleBuildDir) as stale:
        build(_request(FAKE_V2, other, out), environ=environ)
    assert str(stale.value) == (
        f"{out}/hypervisor is configured for board 'demo-nuc' and scenario "
        f"'hybrid_rt' ({out}/hypervisor/.config), not board 'demo-nuc' and "
        "scenario 'dm_land_legacy'; ACRN 2.3 would build the old "
        "configuration again: rerun with --clean to remove it, or choose "
        "another --out")


def test_older_scenario_of_the_same_name_is_stale(tmp_path, environ):
    first, second = tmp_path / "a" / "s.xml", tmp_path / "b" / "s.xml"
    first.parent.mkdir()
    second.parent.mkdir()
    shutil.copy(TWO_REGIONS, first)
    shutil.copy(V3, second)
    os.utime(second, (1_000_000_000, 1_000_000_000))
    out = tmp_path / "out"
    build(_request(scenario=first, out=out), environ=environ)
    with pytest.raises(StaleBuildDir) as stale:
        build(_request(scenario=second, out=out), environ=environ)
    assert str(stale.value) == (
        f"{out}/hypervisor/.scenario.xml, ACRN's copy of the scenario, has "
        f"other IVSHMEM regions than {second}, and make will not copy the "
        "scenario again because it is not newer: rerun with --clean")
    second.touch()
    assert len(build(_request(scenario=second, out=out),
                     environ=environ).regions) == 1


def test_clean_refuses_a_folder_that_is_no_build(tmp_path, environ):
    notes = tmp_path / "out" / "hypervisor"
    notes.mkdir(parents=True)
    (notes / "notes.txt").write_text("mine\n")
    plan = plan_build(_request(out=tmp_path / "out", clean=True), environ)
    with pytest.raises(UsageError) as refused:
        clean_build_dir(plan)
    assert str(refused.value) == (f"refusing to remove {notes}: it does not "
                                  "look like an ACRN build folder")
    assert (notes / "notes.txt").exists()


# --- failures of make and of its results -------------------------------------

def test_make_failure_keeps_the_error_lines(tmp_path, environ):
    with pytest.raises(MakeFailed) as failed:
        build(_request(out=tmp_path / "out",
                       make_args=("FAKE_FAIL=compile",)), environ=environ)
    log = tmp_path / "out" / LOG_NAME
    hv = tmp_path / "out" / "hypervisor"
    assert str(failed.value) == (f"make failed with exit status 2; full "
                                 f"log: {log}")
    assert failed.value.status == 2
    assert failed.value.log_path == str(log)
    assert failed.value.error_lines[:3] == (
        "dm/vpci/ivshmem.c:38:1: error: excess elements in array "
        "initializer [-Werror]",
        "cc1: all warnings being treated as errors",
        f"make[1]: *** [scripts/makefile/rules.mk:6: {hv}/dm/vpci/"
        "ivshmem.o] Error 1")
    # make's own line, with the Makefile line it counts for the recipe
    assert re.fullmatch(r"make: \*\*\* \[Makefile:\d+: hypervisor\] Error 1",
                        failed.value.error_lines[3])
    assert len(failed.value.error_lines) == 4
    assert "Validating scenario configurations..." in log.read_text()


def test_v2_3_make_failure(tmp_path, environ):
    with pytest.raises(MakeFailed) as failed:
        build(_request(FAKE_V2, LEGACY, tmp_path / "out",
                       make_args=("FAKE_FAIL=compile",)), environ=environ)
    assert failed.value.error_lines[0] == (
        "arch/x86/cpu.c:12:5: error: 'CONFIG_MAX_PCPU_NUM' undeclared")
    assert len(failed.value.error_lines) == 2


def test_validator_failure(tmp_path, environ):
    with pytest.raises(MakeFailed) as failed:
        build(_request(out=tmp_path / "out",
                       make_args=("FAKE_FAIL=validate",)), environ=environ)
    assert failed.value.error_lines[0] == (
        "ERROR: fake validator: hybrid_rt_v3 is inconsistent")


def test_generated_ivshmem_config_that_lost_a_region(tmp_path, environ):
    with pytest.raises(IvshmemMismatch) as mismatch:
        build(_request(scenario=TWO_REGIONS, out=tmp_path / "out",
                       make_args=("FAKE_IVSHMEM=drop-last",)),
              environ=environ)
    header = (tmp_path / "out" / "hypervisor" / "configs" / "scenarios"
              / "hybrid_rt_two" / "ivshmem_cfg.h")
    assert str(mismatch.value) == (
        f"{header}: the generated IVSHMEM configuration differs from "
        f"{TWO_REGIONS}: 'hv:/shm_region_1' (4 MB) is missing")
    assert exit_status(mismatch.value) == 1


def test_missing_image(tmp_path, environ):
    with pytest.raises(ArtefactError) as missing:
        build(_request(out=tmp_path / "out", make_args=("FAKE_NO_BIN=y",)),
              environ=environ)
    assert str(missing.value) == (f"{tmp_path}/out/hypervisor/acrn.bin: "
                                  "missing although make succeeded")


# --- ivshmem_cfg.h -----------------------------------------------------------

# Laid out like ACRN 3.3's ivshmem_cfg.h.xsl output.
V3_HEADER = """#ifndef IVSHMEM_CFG_H
#define IVSHMEM_CFG_H
#define IVSHMEM_SHM_REGION_0          "hv:/shm_region_0"
#define IVSHMEM_SHM_REGION_1          "hv:/ring"
#define IVSHMEM_SHM_SIZE              0x600000UL
#define IVSHMEM_SHM_REGIONS            \\
{ \\
.name = IVSHMEM_SHM_REGION_0, \\
.region_id = 0, \\
.size = 0x200000UL, \\
}, \\
{ \\
.name = IVSHMEM_SHM_REGION_1, \\
.region_id = 7, \\
.size = 0x400000UL, \\
},

#endif /* IVSHMEM_CFG_H */
"""
# Laid out like ACRN 2.2's ivshmem_cfg_h.py output.
V2_HEADER = """#define IVSHMEM_SHM_REGION_0\t"hv:/shm_region_0"
#define IVSHMEM_SHM_REGIONS \\
\t{ \\
\t\t.name = IVSHMEM_SHM_REGION_0, \\
\t\t.size = 0x200000UL,\t\t/* 2M */ \\
\t},
#define NOT_A_REGION { .name = "x", .size = 1 }
"""


def test_parse_both_header_layouts():
    assert parse_ivshmem_header(V3_HEADER) == (
        ShmRegion("hv:/shm_region_0", 2 * MIB, 0),
        ShmRegion("hv:/ring", 4 * MIB, 7))
    assert parse_ivshmem_header(V2_HEADER) == (
        ShmRegion("hv:/shm_region_0", 2 * MIB, None),)
    assert parse_ivshmem_header("#define IVSHMEM_SHM_REGIONS\n") == ()
    assert parse_ivshmem_header("#ifndef IVSHMEM_CFG_H\n#endif\n") == ()


def test_compare_regions_names_every_difference():
    generated = (ShmRegion("hv:/a", 2 * MIB, 0), ShmRegion("hv:/b", 4 * MIB,
                                                           3),
                 ShmRegion("hv:/extra", 8 * MIB, 0))
    wanted = (ShmRegion("hv:/a", 4 * MIB, 0), ShmRegion("hv:/b", 4 * MIB, 1),
              ShmRegion("hv:/gone", 2 * MIB, 0))
    assert compare_regions(generated, wanted) == (
        "'hv:/a' is 2 MB, not 4 MB",
        "'hv:/b' has region id 3, not 1",
        "'hv:/gone' (2 MB) is missing",
        "'hv:/extra' (8 MB) is not a hypervisor-provided region of the "
        "scenario")
    assert compare_regions(wanted, wanted) == ()
    assert compare_regions((ShmRegion("hv:/a", 4 * MIB),),
                           (ShmRegion("hv:/a", 4 * MIB, 5),)) == ()


def test_expected_regions_skip_device_model_and_disabled(tmp_path):
    dm_v3 = load(str(PROJECT / "scenario-xmls" / "dm_land_v3.xml")).model
    assert expected_regions(dm_v3) == (ShmRegion("hv:/hv_log", 2 * MIB, 2),)
    dm_legacy = PROJECT / "scenario-xmls" / "dm_land_legacy.xml"
    assert expected_regions(load(str(dm_legacy)).model) == ()
    disabled = tmp_path / "disabled.xml"
    disabled.write_text(LEGACY.read_text().replace(
        "<IVSHMEM_ENABLED>y<", "<IVSHMEM_ENABLED>n<"))
    assert expected_regions(load(str(disabled)).model) == ()
    assert expected_regions(load(str(LEGACY)).model) == (
        ShmRegion("hv:/shm_region_0", 2 * MIB),)
    # Sizes and ids int() cannot read: no region (lint reports them).
    odd = tmp_path / "odd.xml"
    odd.write_text((PROJECT / "scenario-xmls" / "dm_land_v3.xml").read_text(
        encoding="utf-8").replace("<IVSHMEM_REGION_ID>2<",
                                  "<IVSHMEM_REGION_ID>\u00b2<"),
                   encoding="utf-8")
    assert expected_regions(load(str(odd)).model) == (
        ShmRegion("hv:/hv_log", 2 * MIB, None),)


# --- make output -------------------------------------------------------------

@pytest.mark.parametrize("line, seen", [
    ("cc  -I/a/include -c lib/string.c -o /b/hypervisor/lib/string.o -MMD "
     "-MT /b/hypervisor/lib/string.o", (Phase.COMPILING,
                                        "/b/hypervisor/lib/string.o",
                                        "/b/hypervisor/lib/string.o")),
    ("x86_64-linux-gnu-gcc -c a.S -o a.o", (Phase.COMPILING, "a.o", "a.o")),
    ("cc -Wl,-Map=/b/acrn.map -o /b/acrn.out -Wl,--gc-sections",
     (Phase.LINKING, "acrn.out", None)),
    ("objcopy -O binary /b/acrn.out /b/acrn.bin",
     (Phase.LINKING, "acrn.bin", None)),
    ("Scneario XML is configuration fetched from /x/sdc.xml",
     (Phase.CONFIGURING, "scneario XML", None)),
    ("Validating scenario configurations...",
     (Phase.VALIDATING, "scenario", None)),
    ("/b/configs/allocation.xml generated",
     (Phase.GENERATING, "allocation.xml", None)),
    ("Generating pci_dev.c:", (Phase.GENERATING, "pci_dev.c", None)),
    ("start to generate ACPI ASL code for VM0",
     (Phase.GENERATING, "ACPI tables", None)),
    ("cc main.c static_checks.c -o /b/hv_prebuild_check.out", None),
    ("xmllint: not found", None),
    ("  return element.find(xpath, namespaces=cls.xpath_ns)", None),
])
def test_classify_make_lines(line, seen):
    assert classify_line(line) == seen


def test_progress_moves_forward_only():
    ticks = iter([1.5, 2.0])
    tracker = ProgressTracker(1.0, lambda: next(ticks), "/b")
    assert tracker.feed("cc -c x.c -o /b/x.o") == BuildEvent(
        Phase.COMPILING, 0.5, 1, "x.o")
    assert tracker.feed("cc -c x.c -o /b/x.o") is None
    assert tracker.feed("Generating vm_configurations.c:") is None
    assert tracker.feed("cc -c y.c -o /b/sub//y.o") == BuildEvent(
        Phase.COMPILING, 1.0, 2, "sub/y.o")


def test_last_error_lines():
    lines = ["cc -Wno-error=address -c a.c -o a.o",
             "a.c:1:1: error: first",
             "make[1]: *** [x] Error 1",
             "a.c:1:1: error: first",
             "FutureWarning: nothing",
             "Traceback (most recent call last):"]
    assert last_error_lines(lines) == (
        "make[1]: *** [x] Error 1", "a.c:1:1: error: first",
        "Traceback (most recent call last):")
    assert last_error_lines(lines, keep=1) == (
        "Traceback (most recent call last):",)


# --- the command line ------------------------------------------------

def _cli_environ(tmp_path: Path) -> dict[str, str]:
    """PATH with the tools; python3 sees stub modules, acrn-shm not."""
    tools = _tools(tmp_path / "bin", python=False)
    site = _stubs(tmp_path / "site", GOOD_MODULES)
    _script(tools / "python3",
            f'PYTHONPATH="{site}" exec "{sys.executable}" -S "$@"')
    return {"PATH": f"{tools}:/usr/bin:/bin"}


def test_cli_build_success(tmp_path):
    out = tmp_path / "out"
    result = run_acrn_shm(
        ["build", "--acrn-src", str(FAKE_V3), "--board", str(BOARD),
         "--scenario", str(V3), "--out", str(out)], tmp_path,
        **_cli_environ(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        f"acrn.bin: {(out / 'hypervisor' / 'acrn.bin').stat().st_size} "
        f"bytes ({out}/hypervisor/acrn.bin)",
        f"acrn.32.out: "
        f"{(out / 'hypervisor' / 'acrn.32.out').stat().st_size} bytes "
        f"({out}/hypervisor/acrn.32.out)"]
    assert lines[2].startswith("verified hv:/shm_region_0: 2097152 bytes "
                               f"in {out}/hypervisor/configs/")
    assert lines[3].startswith("built in ")
    assert lines[3].endswith(f"; log: {out}/acrn-shm-build.log")


def test_cli_build_legacy_scenario_names_upgrade(tmp_path):
    result = run_acrn_shm(
        ["build", "--acrn-src", str(FAKE_V3), "--board", str(BOARD),
         "--scenario", str(LEGACY), "--out", str(tmp_path / "out")],
        tmp_path, **_cli_environ(tmp_path))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("acrn-shm: error: ")
    assert "acrn-shm upgrade" in result.stderr
    assert result.stderr.count("\n") == 1


def test_cli_build_missing_tools(tmp_path):
    tools = _tools(tmp_path / "bin", names=("gcc",), python=False)
    result = run_acrn_shm(
        ["build", "--acrn-src", str(FAKE_V3), "--board", str(BOARD),
         "--scenario", str(V3), "--out", str(tmp_path / "out")],
        tmp_path, PATH=f"{tools}")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "acrn-shm: error: missing before make can run:\n"
        "  - iasl is not on PATH (install the Debian package "
        "acpica-tools)\n"
        "  - xsltproc is not on PATH (install the Debian package "
        "xsltproc)\n"
        "  - xmllint is not on PATH (install the Debian package "
        "libxml2-utils)\n"
        "  - python3 is not on PATH (install Python 3, or pass --python "
        "or set ACRN_SHM_BUILD_PYTHON)\n")
