"""The ``acrn-shm`` command line (the only module that uses typer/rich).

Exit status: 0 clean, 1 error findings, 2 usage or input error, 130
interrupted; see :data:`EXIT_OK` and the three after it.
"""


import functools
import os
import sys

from . import __version__
from .errors import AcrnShmError, UsageError, escaped, quoted

#: The exit status of every command, decided here and nowhere else in
#: the package (the guest tool, which runs alone in a guest, uses the
#: same numbers): done, with no error finding (warnings and infos
#: allowed); error findings (lint, the edit gate, launch-script's
#: checks, a failed trial, a build that made or checked something
#: wrong); bad usage or an input that cannot be read; interrupted
#: (128 + SIGINT).
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

LINT_FORMATS = ("text", "json", "sarif", "github")


def run_lint(paths: list[str], board: str | None, output_format: str,
             select: list[str] | None, ignore: list[str] | None,
             config: str | None, no_cache: bool, fix: bool = False,
             diff: bool = False, skip_other_xml: bool = False,
             acrn_schema: bool = False, acrn_src: str | None = None,
             unsafe_fixes: bool = False) -> int:
    """Lint (and fix), print the report, and return the exit status.

    ``fix`` and ``diff`` take the safe fixes, and with ``unsafe_fixes``
    the unsafe ones too.

    With ``acrn_schema``, ACRN's own checks (ISM901-ISM904) run too,
    with the schemas of the tree ``acrn_src`` (default: ``$ACRN_SRC``).
    """
    from .lint.config import load_config, parse_codes
    from .lint.engine import is_acrn_xml, lint
    from .lint.formats import FORMATS
    from .record import replace

    formatter = FORMATS.get(output_format)
    if formatter is None:
        return _fail(f"unknown output format {quoted(output_format)}; choose "
                     + ", ".join(FORMATS))
    if skip_other_xml:
        paths = [path for path in paths
                 if os.path.isdir(path) or is_acrn_xml(path)]
        if not paths:
            return EXIT_OK
    try:
        settings = load_config(config)
        if select:
            settings = replace(settings, select=parse_codes(
                ",".join(select), "--select"))
        if ignore:
            settings = replace(settings, ignore=settings.ignore
                               + parse_codes(",".join(ignore), "--ignore"))
        if no_cache:
            settings = replace(settings, use_cache=False)
        if acrn_src is not None and not acrn_schema:
            return _fail("--acrn-src is only used with --acrn-schema")
        if acrn_schema:
            settings = replace(settings, acrn_src=_acrn_tree(acrn_src))
        result = lint(paths, board, settings)
        if diff:
            # The diff only; files that could not be read still say so.
            changed = bool(result.fixes) and _apply_fixes(
                result.fixes, write=False, unsafe=unsafe_fixes)
            for error in result.errors:
                _fail(error)
            return (EXIT_USAGE if result.errors
                    else EXIT_FINDINGS if changed else EXIT_OK)
        if fix and result.fixes:
            _apply_fixes(result.fixes, write=True, unsafe=unsafe_fixes)
            result = lint(paths, board, settings)
    except AcrnShmError as exc:
        return _fail(str(exc))
    if result.files or result.diagnostics or not result.errors:
        sys.stdout.write(formatter(result.diagnostics, result.files,
                                   unsafe_fixes=unsafe_fixes))
    for error in result.errors:
        _fail(error)
    return result.exit_code


def _acrn_tree(acrn_src: str | None) -> str:
    """The ACRN tree of ``--acrn-schema``. Its schemas are read when a
    file needs them (not when every result is cached); a tree they
    cannot be built from stops the run with one error."""
    from .lint import acrn_schema

    tree = acrn_schema.tree_path(acrn_src)
    acrn_schema.require_xmlschema()
    return tree


def _apply_fixes(fixes, write: bool, unsafe: bool = False) -> bool:
    """Apply the safe fixes (and with ``unsafe`` the unsafe ones) file by
    file (locked, atomic); list each on stderr.

    With ``write`` False, print a unified diff instead. Returns whether
    any file changed.
    """
    from .io.xmlio import locked, read_bytes, save_atomic
    from .lint.fixes import apply_fixes, wanted

    by_path: dict[str, list] = {}
    for pending in wanted(fixes, unsafe):
        by_path.setdefault(pending.path, []).append(pending)
    changed = False
    for path, pending in by_path.items():
        codes = {p.fix: p.code for p in pending}
        with locked(path):
            before = read_bytes(path)
            after, applied = apply_fixes(before, [p.fix for p in pending])
            if not applied:
                continue
            changed = True
            if write:
                save_atomic(path, after, before)
        for done in applied:
            sys.stderr.write(
                f"{'fixed' if write else 'would fix'}: {path}:"
                f"{done.loc.line}:{done.loc.column}: {codes[done]} "
                f"{quoted(done.old)} -> {quoted(done.new)}\n")
        if not write:
            _write_diff(path, before, after)
    return changed


def _write_diff(path: str, before: bytes, after: bytes) -> None:
    import difflib

    sys.stdout.writelines(difflib.unified_diff(
        before.decode("utf-8", "replace").splitlines(True),
        after.decode("utf-8", "replace").splitlines(True),
        fromfile=f"a/{path}", tofile=f"b/{path}"))


def run_edit(path: str, board: str | None, change, diff: bool,
             dry_run: bool, force: bool) -> int:
    """Edit ``path`` with ``change(document, board_model)``, gated by lint.

    The file is locked, read, edited in memory and linted before and
    after. An edit that adds an error writes nothing and exits 1 unless
    ``force``; ``diff`` prints a unified diff and writes nothing, with
    the status the edit would have; ``dry_run`` writes nothing.
    """
    from .edit.gate import gate_edit
    from .io.xmlio import locked, read_bytes, save_atomic
    from .lint.config import load_config
    from .lint.formats import text

    try:
        with locked(path):
            before = read_bytes(path)
            gated = gate_edit(path, before, board, change,
                              load_config(None))
            result, added = gated.result, gated.added
            if diff:
                _write_diff(path, before, result.data)
            if added:
                sys.stderr.write(text(added, 1))
                if not force:
                    sys.stderr.write(
                        f"acrn-shm: {path}: the edit adds {len(added)} "
                        "error(s); nothing written (--force writes "
                        "anyway)\n")
                    return EXIT_FINDINGS
            if dry_run:
                sys.stdout.write(f"dry run, nothing written: "
                                 f"{result.summary}\n")
            if dry_run or diff:
                return EXIT_OK
            save_atomic(path, result.data, before)
    except AcrnShmError as exc:
        return _fail(str(exc))
    sys.stdout.write(f"{path}: {result.summary}\n")
    return EXIT_OK


def run_upgrade(legacy: str, output: str | None, launches: list[str],
                into: str | None, board: str | None, force: bool) -> int:
    """Upgrade ``legacy``; write, merge or print; show what was assigned."""
    from .io.xmlio import open_input, parse_file, save_output
    from .lint.config import load_config
    from .lint.engine import find_board_beside
    from .model.resolved import load_scenario
    from .upgrade.scenario import merge_regions, merged_assignments, upgrade

    try:
        if into is not None:
            # Refused before the work (and its notes), not after it.
            os.close(open_input(into))
        document = parse_file(legacy)
        model = load_scenario(
            document, fmt="legacy", refusal="{path}: not a legacy (ACRN "
            "v2.x) scenario; nothing to upgrade").model
        board_path = board or find_board_beside(legacy, model)
        board_document = parse_file(board_path) if board_path else None
        settings = load_config(None)
        result = upgrade(document, [parse_file(p) for p in launches],
                         board=board_document, config=settings)
    except AcrnShmError as exc:
        return _fail(str(exc))
    for note in result.notes:
        sys.stderr.write(f"note: {note}\n")
    if into is not None:
        def merge(target, _board_model):
            from .edit.regions import EditResult

            rows = merged_assignments(target, result)
            _print_assignments(rows)
            return EditResult(merge_regions(target, result, settings),
                              f"merged {len(rows)} region member(s) from "
                              f"{legacy}", ())
        return run_edit(into, None, merge, False, False, force)
    _print_assignments(result.assignments)
    if output is None:
        sys.stdout.write(result.data.decode("utf-8"))
        return EXIT_OK
    try:
        save_output(output, result.data)
    except AcrnShmError as exc:
        return _fail(str(exc))
    sys.stderr.write(f"wrote {output}\n")
    return EXIT_OK


def run_launch_script(scenario: str, board: str, vms: list[str],
                      all_vms: bool, out_dir: str | None,
                      acrn_version: str | None, ivshmem_args: bool,
                      launches: list[str]) -> int:
    """Write (or print) launch scripts; lint the inputs first."""
    import shlex

    from .emit.launch import gated_scripts, parse_version
    from .emit.launch_script import ivshmem_args as raw_args
    from .io.xmlio import save_output
    from .lint.config import load_config
    from .lint.engine import Linter
    from .lint.formats import text
    from .upgrade.launch_inputs import load_for_launch

    if vms and all_vms:
        return _fail("give --vm NAME or --all, not both")
    try:
        linter = Linter(load_config(None))
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
                return _fail(f"{scenario} has {len(scripts)} post-launched "
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
        return _fail(str(exc))
    return EXIT_OK


def run_check_launch(script: str, scenario: str, vm: str | None,
                     launches: list[str], output_format: str) -> int:
    """Compare a launch script with the scenario; lint-style report."""
    from .emit.launch import check_script
    from .lint.config import load_config
    from .lint.engine import Linter
    from .lint.formats import FORMATS
    from .upgrade.launch_inputs import load_for_launch

    formatter = FORMATS.get(output_format)
    if formatter is None:
        return _fail(f"unknown output format {quoted(output_format)}; choose "
                     + ", ".join(FORMATS))
    try:
        settings = load_config(None)
        inputs = load_for_launch(scenario, None, launches, Linter(settings))
        found = check_script(script, inputs, vm, settings)
    except AcrnShmError as exc:
        return _fail(str(exc))
    sys.stdout.write(formatter(found, 1))
    return (EXIT_FINDINGS if any(d.severity == "error" for d in found)
            else EXIT_OK)


def _qemu_plan(options: dict):
    """Build the QEMU plan from the shared qemu-args/host-prep options."""
    from .plan.qemu import Doorbell, plan_from_file, standalone_plan

    scenario, name = options["scenario"], options["name"]
    if (scenario is None) == (name is None):
        raise UsageError("give --scenario S.xml --vm NAME, or --name N "
                         "--size MB")
    if not options["doorbell"] and (options["socket"] is not None
                                    or options["vectors"] is not None):
        raise UsageError("--socket and --vectors need --doorbell")
    doorbell = None
    if options["doorbell"]:
        if options["socket"] is None:
            raise UsageError("--doorbell needs --socket PATH (the "
                             "ivshmem-server socket)")
        doorbell = Doorbell(options["socket"], options["vectors"] or 1)
    if scenario is not None:
        if options["vm"] is None:
            raise UsageError("--scenario needs --vm NAME")
        if options["addr"] or options["size"]:
            raise UsageError("--addr and --size are for --name; a "
                             "scenario gives them")
        return plan_from_file(scenario, options["vm"], options["shm_dir"],
                              master=options["master"],
                              hugepages=options["hugepages"],
                              region=options["region"], doorbell=doorbell)
    if options["region"] is not None or options["vm"] is not None:
        raise UsageError("--vm and --region are for --scenario")
    return standalone_plan(name, options["size"], options["shm_dir"],
                           doorbell=doorbell, master=options["master"],
                           addr=options["addr"],
                           hugepages=options["hugepages"])


def run_qemu(what: str, options: dict, check: bool = False,
             mode: str = "660") -> int:
    """qemu-args, libvirt-xml or host-prep from the shared options."""
    from .emit.libvirt_xml import libvirt_xml
    from .host.prep import host_prep

    try:
        plan = _qemu_plan(options)
        if what == "qemu-args":
            output, warnings = plan.command_line() + "\n", plan.warnings
        elif what == "libvirt-xml":
            xml = libvirt_xml(plan)
            output, warnings = xml.text, xml.warnings
        else:
            try:
                file_mode = int(mode, 8)
            except ValueError:
                raise UsageError(f"--mode {quoted(mode)} is not an octal file "
                                 "mode such as 660") from None
            report = host_prep(plan, create=not check, mode=file_mode)
            for item in report.items:
                sys.stdout.write(f"{item.status.value}: {item.subject}: "
                                 f"{item.message}\n")
            if report.commands:
                sys.stdout.write("run as root:\n")
                for command in report.commands:
                    sys.stdout.write(f"  {command}\n")
            for warning in plan.warnings:
                sys.stderr.write(f"acrn-shm: warning: {escaped(warning)}\n")
            return EXIT_OK if report.ready else EXIT_FINDINGS
    except AcrnShmError as exc:
        return _fail(str(exc))
    for warning in warnings:
        sys.stderr.write(f"acrn-shm: warning: {escaped(warning)}\n")
    sys.stdout.write(output)
    return EXIT_OK


def run_qemu_try(options: dict) -> int:
    """Boot two guests on a region with a live status line; report what
    crossed (0), what did not (1), or why they cannot boot (2)."""
    from .host import qemu_lab, qemu_try

    try:
        if not options["timeout"] > 0:
            raise UsageError(f"--timeout {options['timeout']:g}: give "
                             "seconds, more than 0")
        tools = qemu_lab.find_tools(options["kernel"], options["accel"])
        work = qemu_try.make_work_dir(options["keep"])
        try:
            trial = qemu_try.plan_trial(
                work, scenario=options["scenario"], region=options["region"],
                vms=tuple(filter(None, (options["vms"] or "").split(","))),
                name=options["name"], size_mb=options["size"],
                plain=options["plain"])
        except AcrnShmError:
            if options["keep"] is None:
                os.rmdir(work)
            raise
    except AcrnShmError as exc:
        return _fail(str(exc))
    for warning in trial.warnings:
        sys.stderr.write(f"acrn-shm: warning: {escaped(warning)}\n")
    sys.stdout.write(qemu_try.describe(trial, tools))
    sys.stdout.flush()
    status = _plain_console(stderr=True).status("starting QEMU")

    def on_event(event) -> None:
        status.update("   ".join(f"{label}: {stage}"
                                 for label, stage in event.stages)
                      + f"   [{event.elapsed:.0f} s]")

    try:
        with status:
            result = qemu_try.run_trial(trial, tools, on_event,
                                        options["timeout"])
    except AcrnShmError as exc:
        return _fail(str(exc))
    sys.stdout.write(qemu_try.render(result, options["keep"] is not None))
    if result.passed and options["keep"] is None:
        qemu_try.remove_work(trial)
    return EXIT_OK if result.passed else EXIT_FINDINGS


def run_ivshmem_server(socket: str, size: int, vectors: int,
                       shm: str | None, mem_dir: str | None = None,
                       pidfile: str | None = None) -> int:
    """Serve until a signal; say on stderr when it listens, and log
    warnings (a peer dropped, fds run out) there as ``acrn-shm:``
    lines."""
    import logging

    from .runtime.ivshmem_server import log, run

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("acrn-shm: %(message)s"))
    handler.setLevel(logging.WARNING)
    log.addHandler(handler)

    def ready(_server) -> None:
        sys.stderr.write(f"acrn-shm: ivshmem server listening on "
                         f"{escaped(socket)} ({size} MB, {vectors} "
                         "vector(s))\n")
        sys.stderr.flush()

    try:
        run(socket, size, vectors, shm, ready, shm_dir=mem_dir,
            pidfile=pidfile)
    except AcrnShmError as exc:
        return _fail(str(exc))
    finally:
        log.removeHandler(handler)
    return EXIT_OK


def run_graph(scenario: str, output: str | None,
              output_format: str | None) -> int:
    """Draw ``scenario`` into ``output`` (or stdout); the exit status."""
    from .emit import graph

    try:
        if output is not None:
            fmt = graph.write_graph(scenario, output, output_format)
            sys.stdout.write(f"wrote {output} ({fmt})\n")
        else:
            data = graph.graph_data(scenario, output_format or "dot")
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
    except AcrnShmError as exc:
        return _fail(str(exc))
    return EXIT_OK


def run_build(request) -> int:
    """Drive ACRN's make with a live status line; report the outcome."""

    from .build import hypervisor as acrn_build
    from .lint.config import load_config
    from .lint.formats import text

    console = _plain_console(stderr=True)
    status = console.status("starting")

    def on_event(event) -> None:
        objects = f", {event.objects} objects" if event.objects else ""
        detail = f": {escaped(event.detail)}" if event.detail else ""
        status.update(f"{event.phase.value}{objects}{detail} "
                      f"[{event.elapsed:.0f} s]")

    try:
        with status:
            result = acrn_build.build(request, on_event,
                                      lint_config=load_config(None))
    except acrn_build.LintFailed as exc:
        sys.stderr.write(text(exc.result.diagnostics, exc.result.files))
        sys.stderr.write(f"acrn-shm: {escaped(str(exc))}\n")
        return EXIT_FINDINGS
    except acrn_build.MakeFailed as exc:
        for line in exc.error_lines:
            sys.stderr.write(f"  {line}\n")
        sys.stderr.write(f"acrn-shm: {escaped(str(exc))}\n")
        return EXIT_FINDINGS
    except acrn_build.MissingPrerequisites as exc:
        sys.stderr.write("acrn-shm: error: missing before make can run:\n")
        for missing in exc.missing:
            sys.stderr.write(f"  - {missing.text}\n")
        return EXIT_USAGE
    except AcrnShmError as exc:
        code = exit_status(exc)
        prefix = "acrn-shm: error: " if code == EXIT_USAGE else "acrn-shm: "
        sys.stderr.write(f"{prefix}{escaped(str(exc))}\n")
        return code
    warnings = result.lint.diagnostics
    if warnings:
        sys.stderr.write(text(warnings, result.lint.files))
    for artefact in result.artefacts:
        sys.stdout.write(f"{artefact.name}: {artefact.size} bytes "
                         f"({artefact.path})\n")
    for region in result.regions:
        sys.stdout.write(f"verified {region.name}: {region.size} bytes in "
                         f"{result.ivshmem_header}\n")
    sys.stdout.write(f"built in {result.seconds:.1f} s "
                     f"({result.make.objects} objects compiled); log: "
                     f"{result.plan.log_path}\n")
    return EXIT_OK


def exit_status(error: AcrnShmError) -> int:
    """The exit status of ``error``: :data:`EXIT_FINDINGS` when a build
    found its inputs, its make run or what it made wrong (lint errors,
    make failed, an image or ``ivshmem_cfg.h`` missing or different),
    else :data:`EXIT_USAGE`."""
    from .build.hypervisor import (
        ArtefactError, IvshmemMismatch, LintFailed, MakeFailed,
    )

    if isinstance(error, (LintFailed, MakeFailed, ArtefactError,
                          IvshmemMismatch)):
        return EXIT_FINDINGS
    return EXIT_USAGE


def run_region_edit(command: str, scenario: str, name: str | None = None,
                    size: str | None = None, vms: str | None = None,
                    provider: str | None = None,
                    region_id: int | None = None,
                    vbdf: list[str] | None = None, board: str | None = None,
                    diff: bool = False, dry_run: bool = False,
                    force: bool = False) -> int:
    """``add-region``, ``set-region`` or ``remove-region`` (``command``)
    on ``scenario``; return the exit status. ``size`` is text such as
    ``8`` (MB) or ``512M`` (:func:`~acrn_ivshmem.units.parse_size_mb`).
    """
    from .edit.regions import add_region, remove_region, set_region
    from .units import parse_size_mb

    if command == "remove-region":
        def change(document, board_model):
            return remove_region(document, name)
    else:
        try:
            spec = _spec(name if command == "add-region" else None,
                         None if size is None else parse_size_mb(
                             size, "--size"), vms, provider, region_id,
                         vbdf)
        except AcrnShmError as exc:
            return _fail(str(exc))
        if command == "add-region":
            def change(document, board_model):
                return add_region(document, spec, board_model)
        else:
            def change(document, board_model):
                return set_region(document, name, spec, board_model)
    return run_edit(scenario, board, change, diff, dry_run, force)


def _print_assignments(rows) -> None:
    # To stderr: stdout may carry the converted XML.
    from rich.table import Table

    table = Table("region", "provider", "MB", "VM", "VM id", "VBDF",
                  "from", title="IVSHMEM regions converted")
    for row in rows:
        table.add_row(*map(escaped, (
            row.region, row.provider, str(row.size), row.vm_name,
            "-" if row.vm_id is None else str(row.vm_id), row.vbdf,
            row.source)))
    _plain_console(stderr=True, width=max(100, _columns())).print(table)


def _spec(name=None, size=None, vms=None, provider=None, region_id=None,
          vbdf=None):
    from .edit.regions import RegionSpec

    pairs = []
    for item in vbdf or ():
        vm, sep, value = item.partition("=")
        if not sep or not vm or not value:
            raise UsageError(f"--vbdf {quoted(item)}: expected VM=bb:dd.f")
        pairs.append((vm.strip(), value.strip()))
    return RegionSpec(
        name=name, size=size,
        vms=tuple(v.strip() for v in vms.split(",") if v.strip())
        if vms is not None else None,
        provider=provider, region_id=region_id, vbdfs=tuple(pairs))


def print_regions(path: str, output_format: str) -> int:
    """Print the regions of a scenario as a table or JSON."""
    import json

    from .edit.regions import region_rows
    from .model.resolved import load_scenario

    try:
        scenario = load_scenario(
            path, refusal="{path}: expected a scenario XML").model
    except AcrnShmError as exc:
        return _fail(str(exc))
    rows = region_rows(scenario)
    if output_format == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return EXIT_OK
    if output_format != "text":
        return _fail(f"unknown output format {quoted(output_format)}; choose "
                     "text, json")
    from rich.table import Table

    table = Table("name", "provider", "MB", "id", "VMs (VBDF)", "line",
                  title=escaped(f"{path}: {len(rows)} IVSHMEM region(s), "
                                f"{scenario.format} format"))
    for row in rows:
        table.add_row(*map(escaped, (
            str(row["name"]), str(row["provider"]), str(row["size_mb"]),
            "-" if row["region_id"] is None else str(row["region_id"]),
            ", ".join(f"{m['vm']} ({m['vbdf']})" if m["vbdf"] else
                      str(m["vm"]) for m in row["vms"]),
            str(row["line"]))))
    _plain_console(width=max(100, _columns())).print(table)
    return EXIT_OK


def size_option(text: str) -> int:
    """Read a ``--size`` value: MB, or a number with a unit (``1G``)."""
    from .units import parse_size_mb

    return parse_size_mb(text, "--size")


def completed_scenario(ctx) -> str | None:
    """For shell completion: the SCENARIO.xml of the command line.

    click leaves it out of ``ctx.params`` while the value of an option
    (``--vms P``) is being completed, so the words the shell sent (as
    typer's completion scripts send them) are read again.
    """
    import click
    from click.shell_completion import split_arg_string

    if ctx.params.get("scenario"):
        return ctx.params["scenario"]
    line = os.environ.get("_TYPER_COMPLETE_ARGS")
    if line is not None:
        words = split_arg_string(line)
    else:  # bash
        cword = os.environ.get("COMP_CWORD", "")
        words = split_arg_string(os.environ.get("COMP_WORDS", ""))[
            :int(cword) if cword.isdigit() else 0]
    if ctx.info_name not in words:
        return None
    valued = {name for param in ctx.command.params
              if isinstance(param, click.Option) and not param.is_flag
              for name in param.opts}
    rest = iter(words[words.index(ctx.info_name) + 1:])
    for word in rest:
        if word in valued:
            next(rest, None)
        elif not word.startswith("-"):
            return word
    return None


def scenario_names(path: str | None, what: str) -> list[str]:
    """For shell completion: the VM (``what`` ``"vms"``) or region names
    of the scenario at ``path``; none when it cannot be read. Names that
    a shell would split or that hold control characters are left out.
    """
    from .model.resolved import load_scenario

    if not path:
        return []
    try:
        model = load_scenario(path).model
    except (AcrnShmError, OSError):
        return []
    if what == "vms":
        names = [vm.name or vm.id_text or "" for vm in model.vms]
    else:
        names = [r.name.text for r in model.regions if r.name is not None]
    return [name for name in dict.fromkeys(names)
            if name and name.isprintable() and not any(
                char.isspace() or char in "\"'\\$`" for char in name)]


def _fail(message: str) -> int:
    """Print ``message`` as one error line (control characters, e.g. a
    newline in a path, escaped); return :data:`EXIT_USAGE`."""
    sys.stderr.write(f"acrn-shm: error: {escaped(message)}\n")
    return EXIT_USAGE


def build_app():
    """The typer application with every command."""
    from typing import Annotated, Optional

    import typer

    app = typer.Typer(
        name="acrn-shm",
        help="Inter-VM shared memory (IVSHMEM) for ACRN and QEMU: lint "
        "board and scenario XMLs.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    def choices(values):
        def complete(incomplete: str) -> list[str]:
            return [value for value in values if value.startswith(incomplete)]
        return complete

    def version_callback(value: bool) -> None:
        if value:
            sys.stdout.write(f"acrn-shm {__version__}\n")
            raise typer.Exit(EXIT_OK)

    @app.callback()
    def root(
        version: Annotated[bool, typer.Option(
            "--version", callback=version_callback, is_eager=True,
            help="Print the version and exit.")] = False,
    ) -> None:
        """Inter-VM shared memory (IVSHMEM) for ACRN and QEMU."""

    @app.command()
    def lint(
        paths: Annotated[list[str], typer.Argument(
            metavar="SCENARIO.xml|DIR...",
            help="Scenario or launch XMLs, or folders: each folder at or "
            "below DIR that holds XMLs is a board folder (one board XML "
            "plus scenarios).")],
        board: Annotated[Optional[str], typer.Option(
            "--board", "-b", metavar="BOARD.xml",
            help="Board XML (default: the one beside each scenario).")
        ] = None,
        output_format: Annotated[str, typer.Option(
            "--output-format", "-f", metavar="|".join(LINT_FORMATS),
            help="How to print the findings.",
            autocompletion=choices(LINT_FORMATS))] = "text",
        select: Annotated[Optional[list[str]], typer.Option(
            "--select", metavar="CODES",
            help="Only these codes or prefixes (comma-separated).")] = None,
        ignore: Annotated[Optional[list[str]], typer.Option(
            "--ignore", metavar="CODES",
            help="Skip these codes or prefixes (comma-separated).")] = None,
        config: Annotated[Optional[str], typer.Option(
            "--config", metavar="PYPROJECT.toml",
            help="Read [tool.acrn-shm] from this file (default: the "
            "nearest pyproject.toml).")] = None,
        no_cache: Annotated[bool, typer.Option(
            "--no-cache",
            help="Do not read or write the result cache.")] = False,
        fix: Annotated[bool, typer.Option(
            "--fix", help="Apply the safe fixes (listed on stderr), then "
            "report what is left.")] = False,
        diff: Annotated[bool, typer.Option(
            "--diff", help="Print the safe fixes as a unified diff; write "
            "nothing.")] = False,
        unsafe_fixes: Annotated[bool, typer.Option(
            "--unsafe-fixes", help="With --fix or --diff, take the unsafe "
            "fixes too (they may change what ACRN builds; see each rule's "
            "'Fix safety').")] = False,
        skip_other_xml: Annotated[bool, typer.Option(
            "--skip-other-xml", help="Skip files whose root element is "
            "not <acrn-config> (for pre-commit).")] = False,
        acrn_schema: Annotated[bool, typer.Option(
            "--acrn-schema", help="Also run ACRN's own checks (ISM901-"
            "ISM904): the schema and data checks of an ACRN source tree, "
            "reported at lines of your file.")] = False,
        acrn_src: Annotated[Optional[str], typer.Option(
            "--acrn-src", metavar="DIR",
            help="The ACRN source tree for --acrn-schema (default: "
            "$ACRN_SRC).")] = None,
    ) -> None:
        """Check IVSHMEM regions of ACRN scenarios against every rule.

        Example: acrn-shm lint --board whl-ipc-i5.xml hybrid_rt.xml
        """
        raise typer.Exit(run_lint(paths, board, output_format, select,
                                  ignore, config, no_cache, fix, diff,
                                  skip_other_xml, acrn_schema, acrn_src,
                                  unsafe_fixes))

    def complete_vms(ctx: typer.Context, incomplete: str) -> list[str]:
        # Comma-separated: complete the last name, offer each VM once.
        done, comma, last = incomplete.rpartition(",")
        chosen = done.split(",") if comma else []
        return [done + comma + vm
                for vm in scenario_names(completed_scenario(ctx), "vms")
                if vm.startswith(last) and vm not in chosen]

    def complete_provider(incomplete: str) -> list[str]:
        return [p for p in ("hv", "dm") if p.startswith(incomplete)]

    def complete_region(ctx: typer.Context, incomplete: str) -> list[str]:
        return [name for name in scenario_names(completed_scenario(ctx),
                                                "regions")
                if name.startswith(incomplete)]

    region_name = typer.Argument(metavar="NAME",
                                 autocompletion=complete_region)

    edit_options = {
        "board": typer.Option(
            "--board", "-b", metavar="BOARD.xml",
            help="Board XML (default: the one beside the scenario)."),
        "diff": typer.Option(
            "--diff", help="Preview: print the edit as a unified diff and "
            "write nothing; exit 1 if the edit would be refused."),
        "dry_run": typer.Option(
            "--dry-run", help="Write nothing; say what the edit does."),
        "force": typer.Option(
            "--force", help="Write even if the edit adds lint errors."),
        "size": typer.Option(
            "--size", metavar="SIZE",
            help="MB (8), or with a binary unit: 512M, 1G, 1024K. ACRN "
            "takes a power of two from 2 to 512 MB; other sizes are "
            "refused as lint errors (ISM201)."),
        "vms": typer.Option("--vms", metavar="A,B[,C]",
                            help="VMs by name or id, comma-separated.",
                            autocompletion=complete_vms),
        "provider": typer.Option("--provider", metavar="hv|dm",
                                 help="Hypervisor (hv) or device model "
                                 "(dm).", autocompletion=complete_provider),
        "region_id": typer.Option(
            "--region-id", metavar="N",
            help="IVSHMEM_REGION_ID, the PCI subsystem id the guest sees "
            "(0..65535, one per region: ISM212). Only ACRN v3.3 knows it: "
            "v3.0-v3.2 reject the element, v2.x scenarios cannot hold "
            "it."),
        "vbdf": typer.Option("--vbdf", metavar="VM=bb:dd.f",
                             help="A VM's VBDF (repeatable; v3)."),
    }

    @app.command("add-region")
    def add_region_command(
        scenario: Annotated[str, typer.Argument(metavar="SCENARIO.xml")],
        name: Annotated[Optional[str], typer.Option(
            "--name", help="Region name (default: first free "
            "shm_region_N).")] = None,
        size: Annotated[Optional[str], edit_options["size"]] = None,
        vms: Annotated[Optional[str], edit_options["vms"]] = None,
        provider: Annotated[str, edit_options["provider"]] = "hv",
        region_id: Annotated[Optional[int], edit_options["region_id"]
                             ] = None,
        vbdf: Annotated[Optional[list[str]], edit_options["vbdf"]] = None,
        board: Annotated[Optional[str], edit_options["board"]] = None,
        diff: Annotated[bool, edit_options["diff"]] = False,
        dry_run: Annotated[bool, edit_options["dry_run"]] = False,
        force: Annotated[bool, edit_options["force"]] = False,
    ) -> None:
        """Add a region to a legacy or v3 scenario, keeping every byte.

        Defaults: the first free shm_region_N, 2 MB, hv, each VM's first
        free VBDF and, when any region of the file has an
        IVSHMEM_REGION_ID, the lowest id no region has.

        Example: acrn-shm add-region hybrid_rt.xml --vms 0,2 --size 4
        """
        raise typer.Exit(run_region_edit(
            "add-region", scenario, name, size, vms, provider, region_id,
            vbdf, board, diff, dry_run, force))

    @app.command("remove-region")
    def remove_region_command(
        scenario: Annotated[str, typer.Argument(metavar="SCENARIO.xml")],
        name: Annotated[str, region_name],
        board: Annotated[Optional[str], edit_options["board"]] = None,
        diff: Annotated[bool, edit_options["diff"]] = False,
        dry_run: Annotated[bool, edit_options["dry_run"]] = False,
        force: Annotated[bool, edit_options["force"]] = False,
    ) -> None:
        """Remove a region by name (the file as it was before add-region
        added it, when it was the last).

        Example: acrn-shm remove-region hybrid_rt.xml shm_region_1
        """
        raise typer.Exit(run_region_edit(
            "remove-region", scenario, name, board=board, diff=diff,
            dry_run=dry_run, force=force))

    @app.command("set-region")
    def set_region_command(
        scenario: Annotated[str, typer.Argument(metavar="SCENARIO.xml")],
        name: Annotated[str, region_name],
        size: Annotated[Optional[str], edit_options["size"]] = None,
        vms: Annotated[Optional[str], edit_options["vms"]] = None,
        provider: Annotated[Optional[str], edit_options["provider"]
                            ] = None,
        region_id: Annotated[Optional[int], edit_options["region_id"]
                             ] = None,
        vbdf: Annotated[Optional[list[str]], edit_options["vbdf"]] = None,
        board: Annotated[Optional[str], edit_options["board"]] = None,
        diff: Annotated[bool, edit_options["diff"]] = False,
        dry_run: Annotated[bool, edit_options["dry_run"]] = False,
        force: Annotated[bool, edit_options["force"]] = False,
    ) -> None:
        """Change a region's size, VMs, provider, region id or VBDFs.

        Example: acrn-shm set-region hybrid_rt.xml shm_region_0 --size 4
        """
        raise typer.Exit(run_region_edit(
            "set-region", scenario, name, size, vms, provider, region_id,
            vbdf, board, diff, dry_run, force))

    @app.command("upgrade")
    def upgrade_command(
        legacy: Annotated[str, typer.Argument(metavar="LEGACY.xml")],
        output: Annotated[Optional[str], typer.Option(
            "--output", "-o", metavar="NEW.xml",
            help="Write the v3 scenario here (default: standard output); "
            "an existing file is replaced.")] = None,
        launch: Annotated[Optional[list[str]], typer.Option(
            "--launch", metavar="LAUNCH.xml",
            help="A v2.x launch XML whose shm_regions to carry over "
            "(repeatable).")] = None,
        into: Annotated[Optional[str], typer.Option(
            "--into", metavar="V3.xml",
            help="Merge the converted regions into this v3 scenario "
            "instead.")] = None,
        board: Annotated[Optional[str], edit_options["board"]] = None,
        force: Annotated[bool, edit_options["force"]] = False,
    ) -> None:
        """Convert a legacy (v2.x) scenario, or its regions, to ACRN v3.

        Example: acrn-shm upgrade hybrid_rt.xml --launch launch.xml -o v3.xml
        """
        raise typer.Exit(run_upgrade(legacy, output, launch or [], into,
                                     board, force))

    @app.command("launch-script")
    def launch_script_command(
        scenario: Annotated[str, typer.Argument(metavar="SCENARIO.xml")],
        board: Annotated[str, typer.Option(
            "--board", metavar="BOARD.xml",
            help="The board XML (APIC ids of the VM's pCPUs).")],
        vm: Annotated[Optional[list[str]], typer.Option(
            "--vm", metavar="NAME",
            help="Only this post-launched VM (repeatable).")] = None,
        all_vms: Annotated[bool, typer.Option(
            "--all", help="Every post-launched VM (the default).")] = False,
        out_dir: Annotated[Optional[str], typer.Option(
            "--output-dir", "-o", metavar="DIR",
            help="Write launch_user_vm_id<N>.sh files here (default: "
            "print the one script).")] = None,
        acrn_version: Annotated[Optional[str], typer.Option(
            "--acrn-version", metavar="X.Y",
            help="acrn-dm to write for: 3.3 and later pass the region id "
            "(default 3.3; 2.7 for legacy scenarios).")] = None,
        ivshmem_args: Annotated[bool, typer.Option(
            "--ivshmem-args",
            help="Print only the raw acrn-dm ivshmem arguments.")] = False,
        launch: Annotated[Optional[list[str]], typer.Option(
            "--launch", metavar="LAUNCH.xml",
            help="v2.x launch XML of a legacy scenario (repeatable).")
        ] = None,
    ) -> None:
        """Write acrn-dm launch scripts for post-launched VMs.

        Example: acrn-shm launch-script hybrid_rt.xml --board whl-ipc-i5.xml
        --vm POST_STD_VM1 -o scripts/
        """
        raise typer.Exit(run_launch_script(
            scenario, board, vm or [], all_vms, out_dir, acrn_version,
            ivshmem_args, launch or []))

    @app.command("check-launch")
    def check_launch_command(
        script: Annotated[str, typer.Argument(metavar="SCRIPT.sh")],
        scenario: Annotated[str, typer.Option(
            "--scenario", metavar="SCENARIO.xml",
            help="The scenario the script should follow.")],
        vm: Annotated[Optional[str], typer.Option(
            "--vm", metavar="NAME",
            help="The VM the script starts (default: from its header, else "
            "acrn-dm's last argument).")
        ] = None,
        launch: Annotated[Optional[list[str]], typer.Option(
            "--launch", metavar="LAUNCH.xml",
            help="v2.x launch XML of a legacy scenario (repeatable).")
        ] = None,
        output_format: Annotated[str, typer.Option(
            "--output-format", "-f", metavar="|".join(LINT_FORMATS),
            help="Report format.",
            autocompletion=choices(LINT_FORMATS))] = "text",
    ) -> None:
        """Report where a launch script's ivshmem devices drift from the
        scenario.

        Example: acrn-shm check-launch launch_user_vm_id1.sh --scenario
        hybrid_rt.xml
        """
        raise typer.Exit(run_check_launch(script, scenario, vm,
                                          launch or [], output_format))

    qemu_option = {
        "scenario": typer.Option(
            "--scenario", metavar="S.xml",
            help="Take the regions of --vm from this scenario."),
        "vm": typer.Option(
            "--vm", metavar="NAME",
            help="The VM (name, or id in a legacy scenario)."),
        "region": typer.Option(
            "--region", metavar="NAME",
            help="Only this region of --vm (one per ivshmem server)."),
        "name": typer.Option(
            "--name", metavar="N", help="Standalone: the region name."),
        "size": typer.Option(
            "--size", metavar="MB", parser=size_option,
            help="Standalone: size in MB (a power of two)."),
        "shm_dir": typer.Option(
            "--shm-dir", metavar="DIR",
            help="Folder of the backing files (hugetlbfs for hugepages)."),
        "hugepages": typer.Option(
            "--hugepages", help="Back the memory with huge pages."),
        "master": typer.Option(
            "--master",
            help="This guest owns the memory on migration (master=on)."),
        "addr": typer.Option(
            "--addr", metavar="dd.f", help="Standalone: the PCI slot."),
        "doorbell": typer.Option(
            "--doorbell",
            help="ivshmem-doorbell via an ivshmem server (it owns the "
            "memory)."),
        "socket": typer.Option(
            "--socket", metavar="PATH", help="The ivshmem-server socket."),
        "vectors": typer.Option(
            "--vectors", metavar="N", help="MSI-X vectors of the doorbell."),
    }

    @app.command("qemu-args")
    def qemu_args_command(
        scenario: Annotated[Optional[str], qemu_option["scenario"]] = None,
        vm: Annotated[Optional[str], qemu_option["vm"]] = None,
        region: Annotated[Optional[str], qemu_option["region"]] = None,
        name: Annotated[Optional[str], qemu_option["name"]] = None,
        size: Annotated[Optional[int], qemu_option["size"]] = None,
        shm_dir: Annotated[str, qemu_option["shm_dir"]] = "/dev/shm",
        hugepages: Annotated[bool, qemu_option["hugepages"]] = False,
        master: Annotated[bool, qemu_option["master"]] = False,
        addr: Annotated[Optional[str], qemu_option["addr"]] = None,
        doorbell: Annotated[bool, qemu_option["doorbell"]] = False,
        socket: Annotated[Optional[str], qemu_option["socket"]] = None,
        vectors: Annotated[Optional[int], qemu_option["vectors"]] = None,
    ) -> None:
        """Print the QEMU flags that give a VM (or a region) ivshmem.

        Example: acrn-shm qemu-args --scenario hybrid_rt.xml --vm
        POST_STD_VM1
        """
        options = dict(locals())
        raise typer.Exit(run_qemu("qemu-args", options))

    @app.command("libvirt-xml")
    def libvirt_xml_command(
        scenario: Annotated[Optional[str], qemu_option["scenario"]] = None,
        vm: Annotated[Optional[str], qemu_option["vm"]] = None,
        region: Annotated[Optional[str], qemu_option["region"]] = None,
        name: Annotated[Optional[str], qemu_option["name"]] = None,
        size: Annotated[Optional[int], qemu_option["size"]] = None,
        shm_dir: Annotated[str, qemu_option["shm_dir"]] = "/dev/shm",
        hugepages: Annotated[bool, qemu_option["hugepages"]] = False,
        master: Annotated[bool, qemu_option["master"]] = False,
        addr: Annotated[Optional[str], qemu_option["addr"]] = None,
        doorbell: Annotated[bool, qemu_option["doorbell"]] = False,
        socket: Annotated[Optional[str], qemu_option["socket"]] = None,
        vectors: Annotated[Optional[int], qemu_option["vectors"]] = None,
    ) -> None:
        """Print the libvirt <shmem> elements for the same devices.

        Example: acrn-shm libvirt-xml --name shm_region_0 --size 2
        """
        options = dict(locals())
        raise typer.Exit(run_qemu("libvirt-xml", options))

    @app.command("host-prep")
    def host_prep_command(
        scenario: Annotated[Optional[str], qemu_option["scenario"]] = None,
        vm: Annotated[Optional[str], qemu_option["vm"]] = None,
        region: Annotated[Optional[str], qemu_option["region"]] = None,
        name: Annotated[Optional[str], qemu_option["name"]] = None,
        size: Annotated[Optional[int], qemu_option["size"]] = None,
        shm_dir: Annotated[str, qemu_option["shm_dir"]] = "/dev/shm",
        hugepages: Annotated[bool, qemu_option["hugepages"]] = False,
        master: Annotated[bool, qemu_option["master"]] = False,
        addr: Annotated[Optional[str], qemu_option["addr"]] = None,
        doorbell: Annotated[bool, qemu_option["doorbell"]] = False,
        socket: Annotated[Optional[str], qemu_option["socket"]] = None,
        vectors: Annotated[Optional[int], qemu_option["vectors"]] = None,
        check: Annotated[bool, typer.Option(
            "--check", help="Only check; create nothing.")] = False,
        mode: Annotated[str, typer.Option(
            "--mode", metavar="OCTAL",
            help="File mode of created files.")] = "660",
    ) -> None:
        """Create or check the backing files, hugepages and mounts on the host.

        Example: acrn-shm host-prep --scenario hybrid_rt.xml --vm
        POST_STD_VM1 --check
        """
        options = dict(locals())
        raise typer.Exit(run_qemu("host-prep", options, check, mode))

    @app.command("guest", context_settings={
        "allow_extra_args": True, "ignore_unknown_options": True,
        "help_option_names": []})
    def guest_command(ctx: typer.Context) -> None:
        """Inside a guest: list, read, write ivshmem devices, ring
        doorbells, print uio binding commands (python3 -m
        acrn_ivshmem.guest --help).

        Example: acrn-shm guest read -d 00:08.0 --length 64
        """
        from .guest import main as guest_main

        raise typer.Exit(guest_main(list(ctx.args), "acrn-shm guest"))

    @app.command("qemu-try")
    def qemu_try_command(
        scenario: Annotated[Optional[str], typer.Option(
            "--scenario", metavar="S.xml",
            help="Try a region of this scenario.")] = None,
        region: Annotated[Optional[str], typer.Option(
            "--region", metavar="NAME",
            help="The region (needed when the scenario has several).")
        ] = None,
        vms: Annotated[Optional[str], typer.Option(
            "--vms", metavar="A,B",
            help="Two VMs of the region (default: its first two).")] = None,
        name: Annotated[Optional[str], qemu_option["name"]] = None,
        size: Annotated[Optional[int], qemu_option["size"]] = None,
        plain: Annotated[bool, typer.Option(
            "--plain", help="ivshmem-plain on a file, as qemu-args gives "
            "it: bytes only, no doorbell.")] = False,
        kernel: Annotated[Optional[str], typer.Option(
            "--kernel", metavar="PATH",
            help="Guest kernel (default: $ACRN_SHM_E2E_KERNEL, "
            ".ci/cache/vmlinuz of a checkout, the newest readable "
            "/boot/vmlinuz-*).")] = None,
        accel: Annotated[str, typer.Option(
            "--accel", metavar="auto|kvm|tcg",
            help="auto: KVM with VT-x/AMD-V and /dev/kvm, else TCG.")
        ] = "auto",
        timeout: Annotated[float, typer.Option(
            "--timeout", metavar="S",
            help="Kill the guests after S seconds.")] = 120.0,
        keep: Annotated[Optional[str], typer.Option(
            "--keep", metavar="DIR",
            help="Keep the consoles, QEMU command lines, image and memory "
            "in DIR (new or empty).")] = None,
    ) -> None:
        """Boot two small QEMU guests on a region; show bytes and a
        doorbell crossing.

        Example: acrn-shm qemu-try --scenario hybrid_rt_v3.xml --region
        shm_region_0
        """
        options = dict(locals())
        raise typer.Exit(run_qemu_try(options))

    @app.command("ivshmem-server")
    def ivshmem_server_command(
        socket: Annotated[str, typer.Option(
            "--socket", metavar="PATH", help="UNIX socket to listen on.")],
        size: Annotated[int, typer.Option(
            "--size", metavar="MB", parser=size_option,
            help="Shared memory size in MB.")],
        vectors: Annotated[int, typer.Option(
            "--vectors", metavar="N", help="Interrupt vectors per peer.")
        ] = 1,
        shm: Annotated[Optional[str], typer.Option(
            "--shm", metavar="NAME",
            help="Use /dev/shm/NAME, or DIR/NAME with --mem-dir (default: "
            "anonymous memory).")] = None,
        mem_dir: Annotated[Optional[str], typer.Option(
            "--mem-dir", metavar="DIR",
            help="Make the memory in DIR, a hugetlbfs mount say (QEMU's "
            "ivshmem-server -m): an unnamed file, or DIR/NAME with "
            "--shm.")] = None,
        pidfile: Annotated[Optional[str], typer.Option(
            "--pidfile", metavar="PATH",
            help="Write the process id there once listening; removed on "
            "exit.")] = None,
    ) -> None:
        """Serve QEMU's ivshmem-doorbell protocol (Debian ships no server).

        Example: acrn-shm ivshmem-server --socket /tmp/ivshmem.sock --size 2
        --vectors 2
        """
        raise typer.Exit(run_ivshmem_server(socket, size, vectors, shm,
                                            mem_dir, pidfile))

    @app.command("build", context_settings={
        "allow_extra_args": True, "ignore_unknown_options": True})
    def build_command(
        ctx: typer.Context,
        acrn_src: Annotated[str, typer.Option(
            "--acrn-src", metavar="DIR",
            help="An ACRN source tree (acrn-hypervisor checkout).")],
        board: Annotated[str, typer.Option(
            "--board", metavar="BOARD.xml", help="The board XML.")],
        scenario: Annotated[str, typer.Option(
            "--scenario", metavar="SCENARIO.xml",
            help="The scenario XML.")],
        out: Annotated[Optional[str], typer.Option(
            "--out", metavar="DIR",
            help="ACRN's O=: artefacts land in DIR/hypervisor.")] = None,
        release: Annotated[bool, typer.Option(
            "--release", help="RELEASE=y (default: a debug build).")
        ] = False,
        jobs: Annotated[Optional[int], typer.Option(
            "--jobs", "-j", metavar="N", help="make -jN.")] = None,
        python: Annotated[Optional[str], typer.Option(
            "--python", metavar="PATH",
            help="Python for ACRN's scripts (needs elementpath<3, "
            "xmlschema<2); default $ACRN_SHM_BUILD_PYTHON.")] = None,
        clean: Annotated[bool, typer.Option(
            "--clean", help="Remove a build folder configured for another "
            "board or scenario first.")] = False,
    ) -> None:
        """Lint, then build the ACRN hypervisor with its own make.

        Extra make arguments go after --. Example: acrn-shm build
        --acrn-src ~/acrn-hypervisor --board whl-ipc-i5.xml --scenario
        hybrid_rt.xml --out build-hybrid
        """
        from .build.hypervisor import BuildRequest

        extra = list(ctx.args)
        if extra and extra[0] == "--":
            extra = extra[1:]
        raise typer.Exit(run_build(BuildRequest(
            acrn_src, board, scenario, out, release, jobs, python, clean,
            tuple(extra))))

    @app.command("graph")
    def graph_command(
        scenario: Annotated[str, typer.Argument(metavar="SCENARIO.xml")],
        output: Annotated[Optional[str], typer.Option(
            "--output", "-o", metavar="FILE",
            help="Write the picture here (.svg, .png, .pdf, .dot or .gv; "
            "default: DOT text on stdout).")] = None,
        output_format: Annotated[Optional[str], typer.Option(
            "--output-format", "-f", metavar="svg|png|pdf|dot",
            help="The format (default: from the -o suffix).",
            autocompletion=choices(("svg", "png", "pdf", "dot")))] = None,
    ) -> None:
        """Draw the VMs and the IVSHMEM regions they share (PNG and PDF
        need Graphviz; SVG and DOT do not).

        Example: acrn-shm graph hybrid_rt.xml -o topology.svg
        """
        raise typer.Exit(run_graph(scenario, output, output_format))

    @app.command("regions")
    def regions_command(
        scenario: Annotated[str, typer.Argument(metavar="SCENARIO.xml")],
        output_format: Annotated[str, typer.Option(
            "--output-format", "-f", metavar="text|json",
            help="A table, or JSON.",
            autocompletion=choices(("text", "json")))] = "text",
    ) -> None:
        """List the IVSHMEM regions of a scenario.

        Example: acrn-shm regions hybrid_rt.xml -f json
        """
        raise typer.Exit(print_regions(scenario, output_format))

    @app.command("lsp")
    def lsp_command(
        stdio: Annotated[bool, typer.Option(
            "--stdio", help="Talk over stdin and stdout (the only way; "
            "accepted because editors pass it).")] = False,
        no_cache: Annotated[bool, typer.Option(
            "--no-cache",
            help="Do not read or write the result cache.")] = False,
    ) -> None:
        """Run the language server (LSP) on stdin and stdout for editors.

        Example: acrn-shm lsp   (started by the editor; see docs/editors.md)
        """
        from .lsp import serve

        raise typer.Exit(serve(use_cache=not no_cache))

    @app.command("rules")
    def list_rules(
        output_format: Annotated[str, typer.Option(
            "--output-format", "-f", metavar="text|json",
            help="A table, or JSON.",
            autocompletion=choices(("text", "json")))] = "text",
    ) -> None:
        """List every rule: code, name, default severity, summary.

        Example: acrn-shm rules
        """
        raise typer.Exit(print_rules(output_format))

    def complete_code(incomplete: str) -> list[str]:
        from .rules import RULES

        # Keep the case typed so far: explain takes ism201 as well.
        return [incomplete + code[len(incomplete):] for code in RULES
                if code.startswith(incomplete.upper())]

    @app.command()
    def explain(
        code: Annotated[str, typer.Argument(
            help="A rule code, e.g. ISM201.",
            autocompletion=complete_code)],
        output_format: Annotated[str, typer.Option(
            "--output-format", "-f", metavar="text|markdown",
            help="Plain text, or the Markdown page of docs/rules/.",
            autocompletion=choices(("text", "markdown")))] = "text",
    ) -> None:
        """Print the documentation of one rule.

        Example: acrn-shm explain ISM201
        """
        raise typer.Exit(print_rule_doc(code, output_format))

    from .channel_cli import channel_app
    app.add_typer(channel_app(), name="channel")
    return app


def print_rules(output_format: str) -> int:
    """Print the rule table (or JSON); return the exit status."""
    import json

    from .rules import RULES, summary

    rows = [(code, rule.NAME, rule.SEVERITY, summary(rule))
            for code, rule in RULES.items()]
    if output_format == "json":
        sys.stdout.write(json.dumps(
            [dict(zip(("code", "name", "severity", "summary"), row))
             for row in rows], indent=2) + "\n")
        return EXIT_OK
    if output_format != "text":
        return _fail(f"unknown output format {quoted(output_format)}; choose "
                     "text, json")
    from rich.table import Table

    table = Table("code", "name", "severity", "summary",
                  title="acrn-shm rules")
    for row in rows:
        table.add_row(*row)
    _plain_console(width=max(100, _columns())).print(table)
    return EXIT_OK


def print_rule_doc(code: str, output_format: str = "text") -> int:
    """Print one rule's documentation; return the exit status."""
    from .lint import rule_docs
    from .rules import get

    render = {"text": rule_docs.text, "markdown": rule_docs.markdown}
    if output_format not in render:
        return _fail(f"unknown output format {quoted(output_format)}; choose "
                     "text, markdown")
    try:
        rule = get(code)
    except UsageError as exc:
        return _fail(str(exc))
    sys.stdout.write(render[output_format](rule))
    return EXIT_OK


class QuickCommand:
    """What the quick parser knows of one command: the function that
    runs it (called with the parameters), its positional parameters
    (``variadic``: one or more of the last), its options (option string
    -> parameter), flags, repeatable and integer parameters, allowed
    values, and the defaults typer would give."""

    def __init__(self, run, positionals, values, flags=(), repeatable=(),
                 integers=(), choices=None, defaults=None,
                 variadic=False):
        self.run = run
        self.positionals = tuple(positionals)
        self.values = dict(values)
        self.flags = {flag: flag.lstrip("-").replace("-", "_")
                      for flag in flags}
        self.repeatable = tuple(repeatable)
        self.integers = tuple(integers)
        self.choices = dict(choices or {})
        self.defaults = dict(defaults or {})
        self.variadic = variadic


_BOARD = {"--board": "board", "-b": "board"}
_EDIT_FLAGS = ("--diff", "--dry-run", "--force")
_REGION_VALUES = {"--size": "size", "--vms": "vms", "--provider": "provider",
                  "--region-id": "region_id", "--vbdf": "vbdf", **_BOARD}
#: The commands the quick parser takes (the common, scripted ones).
QUICK_COMMANDS = {
    "lint": QuickCommand(
        run_lint, ["paths"], {**_BOARD, "--output-format": "output_format",
                    "-f": "output_format", "--select": "select",
                    "--ignore": "ignore", "--config": "config",
                    "--acrn-src": "acrn_src"},
        ["--no-cache", "--fix", "--diff", "--unsafe-fixes",
         "--skip-other-xml", "--acrn-schema"],
        repeatable=["select", "ignore"],
        choices={"output_format": LINT_FORMATS},
        defaults={"output_format": "text"}, variadic=True),
    "add-region": QuickCommand(
        functools.partial(run_region_edit, "add-region"), ["scenario"],
        {"--name": "name", **_REGION_VALUES}, _EDIT_FLAGS,
        repeatable=["vbdf"], integers=["region_id"],
        defaults={"provider": "hv"}),
    "set-region": QuickCommand(
        functools.partial(run_region_edit, "set-region"),
        ["scenario", "name"], _REGION_VALUES, _EDIT_FLAGS,
        repeatable=["vbdf"], integers=["region_id"]),
    "remove-region": QuickCommand(
        functools.partial(run_region_edit, "remove-region"),
        ["scenario", "name"], _BOARD, _EDIT_FLAGS),
}


def parse_quick(command: QuickCommand, argv: list[str]) -> dict | None:
    """The parameters of ``command`` for common command lines, parsed as
    click would parse them, or None for anything else (help, an unknown
    or joined short option, a missing value or argument, a value click
    would refuse): typer then parses it and says what is wrong.

    Loading typer costs more than linting a scenario (argparse some
    10 ms more), so these commands are parsed here.
    """
    params: dict = dict.fromkeys(command.values.values())
    params.update(dict.fromkeys(command.flags.values(), False))
    params.update(command.defaults)
    positionals: list[str] = []
    index, only_positionals = 0, False
    while index < len(argv):
        arg = argv[index]
        index += 1
        if only_positionals or arg == "-" or not arg.startswith("-"):
            positionals.append(arg)
            continue
        if arg == "--":
            only_positionals = True
            continue
        name, equals, inline = (arg.partition("=") if arg.startswith("--")
                                else (arg, "", ""))
        if name in command.flags and not equals:
            params[command.flags[name]] = True
        elif name in command.values:
            if equals:
                value = inline
            elif index < len(argv):
                value = argv[index]  # click takes it even if it is "-x"
                index += 1
            else:
                return None
            key = command.values[name]
            if key in command.integers:
                try:
                    value = int(value)  # as click's INT converts
                except ValueError:
                    return None
            if key in command.repeatable:
                params[key] = [*(params[key] or []), value]
            else:
                params[key] = value
        else:
            return None
    if command.variadic:
        if not positionals:
            return None
        params[command.positionals[0]] = positionals
    elif len(positionals) != len(command.positionals):
        return None
    else:
        params.update(zip(command.positionals, positionals))
    if any(params[key] not in allowed
           for key, allowed in command.choices.items()):
        return None
    return params


def run_quick(name: str, argv: list[str]) -> int | None:
    """Run ``acrn-shm NAME ARGV`` without typer when :func:`parse_quick`
    takes ``argv``; None when it does not."""
    command = QUICK_COMMANDS[name]
    params = parse_quick(command, argv)
    return None if params is None else command.run(**params)


def _plain_console(**options):
    """A rich console that prints text as given: file text may hold
    ``[markup]`` or ``:emoji:`` codes, which rich would interpret."""
    from rich.console import Console

    return Console(markup=False, emoji=False, highlight=False, **options)


def _columns() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def main() -> None:
    """Entry point of the ``acrn-shm`` command."""
    try:
        if len(sys.argv) > 1 and sys.argv[1] in QUICK_COMMANDS:
            status = run_quick(sys.argv[1], sys.argv[2:])
            if status is not None:
                sys.exit(status)
        build_app()(prog_name="acrn-shm")
    except AcrnShmError as exc:
        sys.exit(_fail(str(exc)))
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - never a traceback for users
        if os.environ.get("ACRN_SHM_DEBUG"):
            raise
        sys.stderr.write(
            f"acrn-shm: internal error: {type(exc).__name__}: {exc} "
            "(set ACRN_SHM_DEBUG=1 for a traceback)\n")
        sys.exit(EXIT_USAGE)
