"""Launch scripts for post-launched VMs, and drift checks against them.

Both start from :class:`~acrn_ivshmem.model.syntax.LaunchInputs`, which
:func:`acrn_ivshmem.upgrade.launch_inputs.load_for_launch` reads (a
legacy scenario converted to v3 in memory first):
:func:`write_scripts` plans and renders one script per post-launched
VM, and :func:`check_script` compares an existing script with the
scenario using the ISM51x rules.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..diagnostics import Diagnostic, Finding
from ..errors import UsageError, located, quoted
from ..io.xmlio import Document, Loc
from ..lint.engine import LintConfig, Linter, run_rules
from ..model.script_reader import read_script
from ..model.syntax import LaunchInputs, LaunchScript, Scenario, VmKind
from ..plan.acrn_dm import Plan, UnsafeValue, plan, settings_of
from .launch_script import render, script_name

__all__ = ["LaunchGate", "Script", "check_parsed", "check_script",
           "gated_scripts", "parse_version", "write_scripts"]

_VERSION = re.compile(r"(\d+)\.(\d+)")


@dataclass(frozen=True)
class Script:
    """One rendered launch script."""

    vm_name: str
    file_name: str
    text: str
    plan: Plan


@dataclass(frozen=True)
class LaunchGate:
    """What launch-script may write: ``scripts``, when the inputs have
    no lint ``errors`` and the scripts no slot ``clashes`` (ISM501);
    otherwise no scripts. ``files`` is the number of files linted."""

    scripts: tuple[Script, ...]
    errors: tuple[Diagnostic, ...]
    clashes: tuple[Diagnostic, ...]
    files: int


def gated_scripts(inputs: LaunchInputs, linter: Linter, scenario_path: str,
                  board_path: str, launch_paths: Sequence[str],
                  vm_names: Sequence[str] | None,
                  acrn_version: tuple[int, int]) -> LaunchGate:
    """Lint the inputs, then plan and render the scripts of ``vm_names``
    (None: every post-launched VM), as ``acrn-shm launch-script`` does.

    ``inputs`` come from
    :func:`acrn_ivshmem.upgrade.launch_inputs.load_for_launch` with the
    same ``linter``, whose configuration also decides which slot clashes
    are errors that stop the scripts. Writes nothing. Raises
    :class:`UsageError` for an input lint cannot read.
    """
    checked = linter.lint([scenario_path, *launch_paths], board_path)
    if checked.errors:
        raise UsageError(checked.errors[0])
    errors = tuple(d for d in checked.diagnostics if d.severity == "error")
    if errors:
        return LaunchGate((), errors, (), checked.files)
    source = " + ".join(os.path.basename(path) for path in (
        scenario_path, *launch_paths, board_path))
    scripts = write_scripts(inputs, vm_names, acrn_version, source)
    clashes = tuple(
        d for d in clash_diagnostics(scenario_path, scripts, inputs.legacy,
                                     linter.config, inputs.scenario)
        if d.severity == "error")
    return LaunchGate(() if clashes else tuple(scripts), (), clashes,
                      checked.files)


def parse_version(text: str) -> tuple[int, int]:
    """``"3.3"`` -> ``(3, 3)``; anything else is a UsageError."""
    match = _VERSION.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"--acrn-version {quoted(text)} is not MAJOR.MINOR, "
                         "e.g. 3.3")
    return int(match.group(1)), int(match.group(2))


def _offset(scenario: Scenario, vm_name: str) -> int:
    """The VM's id minus the Service VM's id (ACRN's script number)."""
    service = next((vm.id for vm in scenario.vms
                    if vm.kind is VmKind.SERVICE and vm.id is not None),
                   None)
    vm = scenario.vm_named(vm_name)
    if service is None:
        raise UsageError(f"{scenario.path}: no Service VM, so no VM can be "
                         "post-launched")
    return (vm.id if vm is not None and vm.id is not None else 0) - service


def write_scripts(inputs: LaunchInputs, vm_names: Sequence[str] | None,
                  acrn_version: tuple[int, int], source: str
                  ) -> list[Script]:
    """Plan and render the scripts of ``vm_names`` (None: every VM)."""
    scenario = inputs.scenario
    names = list(vm_names) if vm_names else [
        name for name, _settings in scenario.dm_settings]
    if not names:
        raise UsageError(f"{scenario.path}: no post-launched VM, so no "
                         "launch script")
    version_text = "%d.%d" % acrn_version
    scripts = []
    for name in names:
        try:
            planned = plan(scenario, name, inputs.board, acrn_version)
        except UnsafeValue as exc:
            raise _at_origin(exc, inputs, name) from None
        scripts.append(Script(
            name, script_name(_offset(scenario, name)),
            render(planned, source, version_text), planned))
    return scripts


def _at_origin(error: UnsafeValue, inputs: LaunchInputs,
               vm_name: str) -> UsageError:
    """``error`` located at the value in the file it came from.

    plan() knows the lines of region values only; other values are
    found by their text, in the elements of the VM (a converted legacy
    scenario has no lines of its own: its values are in the legacy
    scenario and its launch XMLs).
    """
    if not inputs.legacy and error.loc is not None:
        return error
    for document in inputs.sources:
        found = _find_text(document, vm_name, error.text)
        if found is not None:
            return UsageError(located(document.path, found.line,
                                      found.column, error.message))
    if inputs.legacy:
        return UsageError(located(
            inputs.sources[-1].path, None, None,
            f"{error.message} (in its conversion to v3)"))
    return error


def _find_text(document: Document, vm_name: str, text: str) -> Loc | None:
    """Where ``text`` is in the element text of VM ``vm_name`` (a v3 or
    legacy ``<vm>``, a launch XML's ``<user_vm>`` or ``<uos>``), else
    anywhere in ``document``: a whole element text first, else a part
    of one."""
    if not text:
        return None
    vms = [vm for vm in document.root
           if vm.tag in ("vm", "user_vm", "uos")]
    named = [vm for vm in vms
             if vm_name in ((vm.findtext("name") or "").strip(),
                            (vm.findtext("vm_name") or "").strip())]
    for whole in (True, False):
        for vm in [*(named or vms), document.root]:
            for element in vm.iter("*"):
                value = element.text or ""
                if whole and value.strip() != text:
                    continue
                offset = value.find(text)
                if offset >= 0:
                    return _text_loc(document, element, offset)
    return None


def _text_loc(document: Document, element, offset: int) -> Loc:
    """The location of character ``offset`` of ``element``'s text."""
    value = element.text or ""
    loc = document.text_loc(element)
    newlines = value.count("\n", 0, offset)
    if newlines:
        return Loc(loc.line + newlines,
                   offset - value.rindex("\n", 0, offset))
    return Loc(loc.line, loc.column + offset)


def clash_diagnostics(scenario_path: str, scripts: Sequence[Script],
                      legacy: bool, config: LintConfig | None = None,
                      scenario: Scenario | None = None) -> list[Diagnostic]:
    """ISM501 diagnostics for the slot clashes of planned scripts, with
    the severity ``config`` gives ISM501 (none when it is not selected)
    and without those the inline suppressions of ``scenario`` (the v3
    scenario planned) cover."""
    found = []
    for script in scripts:
        for clash in script.plan.clashes:
            # Converted legacy files have no useful positions.
            loc = (clash.loc if clash.loc and not legacy else Loc(1, 1))
            found.append(("ISM501", Finding(
                loc, f"VM {quoted(script.vm_name)}: {clash.message}",
                clash.hint)))
    suppressions = (scenario.suppressions
                    if scenario is not None and not legacy else ())
    return sorted(run_rules(config or LintConfig(), scenario_path,
                            found=found,
                            suppressions=suppressions).diagnostics)


def check_script(script_path: str, inputs: LaunchInputs,
                 vm_name: str | None,
                 config: LintConfig | None = None) -> list[Diagnostic]:
    """Compare a launch script with the scenario (ISM511-ISM516), with
    the codes and severities of ``config`` and the script's inline
    suppressions (``# acrn-shm: ignore CODE``) as lint has them."""
    return check_parsed(read_script(script_path), inputs, vm_name, config)


def check_parsed(script: LaunchScript, inputs: LaunchInputs,
                 vm_name: str | None,
                 config: LintConfig | None = None) -> list[Diagnostic]:
    """:func:`check_script` on a script already read."""
    config = config or LintConfig()
    script_path = script.path
    name = vm_name or script.vm_name
    if not name:
        header = "no '# Launch script for VM name:' header"
        if script.dm_call is None:
            raise UsageError(f"{script_path}: {header} and no acrn-dm "
                             "call; say which VM with --vm")
        argument = ("acrn-dm has no argument" if script.dm_argument is None
                    else f"acrn-dm's last argument "
                    f"{quoted(script.dm_argument)} is not a VM name")
        raise UsageError(located(
            script_path, script.dm_call.line, script.dm_call.column,
            f"{header}, and {argument}; say which VM with --vm"))
    settings_of(inputs.scenario, name)
    return sorted(run_rules(config, script_path, "script",
                            (script, inputs.scenario, name),
                            suppressions=script.suppressions).diagnostics)
