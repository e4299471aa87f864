"""``acrn-shm launch-script`` and ``check-launch``."""

import os
import sys

from ..errors import AcrnShmError, escaped, quoted
from .exits import EXIT_FINDINGS, EXIT_OK, fail, findings_status
from .lint import LINT_FORMATS
from .spec import LAUNCH_XMLS, Argument, Command, Option


def run_launch_script(scenario: str, board: str, vm: list[str] | None,
                      all_vms: bool, out_dir: str | None,
                      acrn_version: str | None, ivshmem_args: bool,
                      launch: list[str] | None) -> int:
    """Write (or print) launch scripts for the VMs ``vm`` (default: every
    post-launched VM); lint the inputs first."""
    import shlex

    from ..emit.launch import gated_scripts, parse_version
    from ..emit.launch_script import ivshmem_args as raw_args
    from ..io.xmlio import save_output
    from ..lint.config import load_config
    from ..lint.engine import Linter
    from ..lint.formats import text
    from ..upgrade.launch_inputs import load_for_launch

    vms, launches = vm or [], launch or []
    if vms and all_vms:
        return fail("give --vm NAME or --all, not both")
    try:
        linter = Linter(load_config(None))
        inputs = load_for_launch(scenario, board, launches, linter)
        version = parse_version(acrn_version or (
            "2.7" if inputs.legacy else "3.3"))
        gate = gated_scripts(inputs, linter, scenario, board, launches,
                             vms or None, version)
        if gate.errors:
            sys.stderr.write(text(gate.errors, gate.files, fix_summary=False))
            sys.stderr.write(f"acrn-shm: {escaped(scenario)} has errors; "
                             "no launch script written\n")
            return EXIT_FINDINGS
        if gate.clashes:
            sys.stderr.write(text(gate.clashes, 1, fix_summary=False))
            sys.stderr.write("acrn-shm: slot clashes; no launch script "
                             "written\n")
            return EXIT_FINDINGS
        scripts = gate.scripts
        if ivshmem_args:
            for script in scripts:
                line = shlex.join(raw_args(script.plan))
                sys.stdout.write(line + "\n" if len(scripts) == 1
                                 else f"{script.vm_name}: {line}\n")
            return EXIT_OK
        if out_dir is None:
            if len(scripts) > 1:
                return fail(f"{scenario} has {len(scripts)} post-launched "
                            "VMs: give -o DIR, or --vm NAME")
            sys.stdout.write(scripts[0].text)
            return EXIT_OK
        os.makedirs(out_dir, exist_ok=True)
        for script in scripts:
            target = os.path.join(out_dir, script.file_name)
            data = script.text.encode("utf-8")
            save_output(target, data, new_mode=0o755)
            sys.stderr.write(f"wrote {target} ({script.vm_name})\n")
    except AcrnShmError as exc:
        return fail(str(exc))
    return EXIT_OK


def run_check_launch(script: str, scenario: str, vm: str | None,
                     launch: list[str] | None, output_format: str) -> int:
    """Compare a launch script with the scenario; lint-style report."""
    from ..emit.launch import check_script
    from ..lint.config import load_config
    from ..lint.engine import Linter
    from ..lint.formats import FORMATS
    from ..upgrade.launch_inputs import load_for_launch

    formatter = FORMATS.get(output_format)
    if formatter is None:
        return fail(f"unknown output format {quoted(output_format)}; choose "
                    + ", ".join(FORMATS))
    try:
        settings = load_config(None)
        inputs = load_for_launch(scenario, None, launch or [],
                                 Linter(settings))
        found = check_script(script, inputs, vm, settings)
    except AcrnShmError as exc:
        return fail(str(exc))
    sys.stdout.write(formatter(found, 1))
    return findings_status(found)


LAUNCH_SCRIPT = Command("launch-script", run_launch_script, (
    Argument("scenario", "SCENARIO.xml"),
    Option("board", ("--board",), metavar="BOARD.xml", required=True,
           help="The board XML (APIC ids of the VM's pCPUs)."),
    Option("vm", ("--vm",), multiple=True, metavar="NAME",
           help="Only this post-launched VM (repeatable)."),
    Option("all_vms", ("--all",), bool, False,
           help="Every post-launched VM (the default)."),
    Option("out_dir", ("--output-dir", "-o"), metavar="DIR",
           help="Write launch_user_vm_id<N>.sh files here (default: print "
           "the one script)."),
    Option("acrn_version", ("--acrn-version",), metavar="X.Y",
           help="acrn-dm to write for: 3.3 and later pass the region id "
           "(default 3.3; 2.7 for legacy scenarios)."),
    Option("ivshmem_args", ("--ivshmem-args",), bool, False,
           help="Print only the raw acrn-dm ivshmem arguments."),
    LAUNCH_XMLS,
), """Write acrn-dm launch scripts for post-launched VMs.

Example: acrn-shm launch-script hybrid_rt.xml --board whl-ipc-i5.xml
--vm POST_STD_VM1 -o scripts/""")

CHECK_LAUNCH = Command("check-launch", run_check_launch, (
    Argument("script", "SCRIPT.sh"),
    Option("scenario", ("--scenario",), metavar="SCENARIO.xml",
           required=True, help="The scenario the script should follow."),
    Option("vm", ("--vm",), metavar="NAME",
           help="The VM the script starts (default: from its header, else "
           "acrn-dm's last argument)."),
    LAUNCH_XMLS,
    Option("output_format", ("--output-format", "-f"), default="text",
           metavar="|".join(LINT_FORMATS), choices=LINT_FORMATS,
           help="Report format."),
), """Report where a launch script's ivshmem devices drift from the
scenario.

Example: acrn-shm check-launch launch_user_vm_id1.sh --scenario
hybrid_rt.xml""")
