"""``acrn-shm launch-script`` and ``check-launch``."""

import os
import sys

from ..errors import AcrnShmError, escaped, quoted
from .exits import EXIT_FINDINGS, EXIT_OK, fail


def run_launch_script(scenario: str, board: str, vms: list[str],
                      all_vms: bool, out_dir: str | None,
                      acrn_version: str | None, ivshmem_args: bool,
                      launches: list[str]) -> int:
    """Write (or print) launch scripts; lint the inputs first."""
    import shlex

    from ..emit.launch import gated_scripts, parse_version
    from ..emit.launch_script import ivshmem_args as raw_args
    from ..io.xmlio import save_output
    from ..lint.engine import Linter
    from ..lint.formats import text
    from ..upgrade.launch_inputs import load_for_launch

    if vms and all_vms:
        return fail("give --vm NAME or --all, not both")
    try:
        linter = Linter()
        inputs = load_for_launch(scenario, board, launches, linter)
        version = parse_version(acrn_version or (
            "2.7" if inputs.legacy else "3.3"))
        gate = gated_scripts(inputs, linter, scenario, board, launches,
                             vms or None, version)
        if gate.errors:
            sys.stderr.write(text(gate.errors, gate.files))
            sys.stderr.write(f"acrn-shm: {escaped(scenario)} has errors; "
                             "no launch script written\n")
            return EXIT_FINDINGS
        if gate.clashes:
            sys.stderr.write(text(gate.clashes, 1))
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
                     launches: list[str], output_format: str) -> int:
    """Compare a launch script with the scenario; lint-style report."""
    from ..emit.launch import check_script
    from ..lint.config import load_config
    from ..lint.formats import FORMATS
    from ..upgrade.launch_inputs import load_for_launch

    formatter = FORMATS.get(output_format)
    if formatter is None:
        return fail(f"unknown output format {quoted(output_format)}; choose "
                     + ", ".join(FORMATS))
    try:
        inputs = load_for_launch(scenario, None, launches)
        found = check_script(script, inputs, vm, load_config(None))
    except AcrnShmError as exc:
        return fail(str(exc))
    sys.stdout.write(formatter(found, 1))
    return (EXIT_FINDINGS if any(d.severity == "error" for d in found)
            else EXIT_OK)
