"""``acrn-shm add-region``, ``set-region``, ``remove-region``,
``regions`` and ``graph``: a scenario's regions edited, listed, drawn."""

import functools
import os
import sys

from ..errors import AcrnShmError, UsageError, escaped, quoted
from .exits import EXIT_FINDINGS, EXIT_OK, fail
from .spec import TABLE_OR_JSON, Argument, Command, Option, with_default


def run_edit(path: str, board: str | None, change, diff: bool,
             dry_run: bool, force: bool) -> int:
    """Edit ``path`` with ``change(document, board_model)``, gated by lint.

    The file is locked, read, edited in memory and linted before and
    after. An edit that adds an error writes nothing and exits 1 unless
    ``force``; ``diff`` prints a unified diff and writes nothing, with
    the status the edit would have; ``dry_run`` writes nothing.
    """
    from ..edit.files import edit_file
    from ..lint.formats import text
    from .render import write_diff

    try:
        outcome = edit_file(path, change, board=board,
                            preview=diff or dry_run, force=force)
    except AcrnShmError as exc:
        return fail(str(exc))
    if diff:
        write_diff(path, outcome.before, outcome.after)
    if outcome.added:
        sys.stderr.write(text(outcome.added, 1, fix_summary=False))
        if not force:
            sys.stderr.write(
                f"acrn-shm: {path}: the edit adds {len(outcome.added)} "
                "error(s); nothing written (--force writes anyway)\n")
            return EXIT_FINDINGS
    if dry_run:
        sys.stdout.write(f"dry run, nothing written: {outcome.summary}\n")
    if not outcome.written:
        return EXIT_OK
    sys.stdout.write(f"{path}: {outcome.summary}\n")
    return EXIT_OK


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
    from ..edit.regions import add_region, remove_region, set_region
    from ..units import parse_size_mb

    if command == "remove-region":
        def change(document, board_model):
            return remove_region(document, name)
    else:
        try:
            spec = region_spec(
                name if command == "add-region" else None,
                None if size is None else parse_size_mb(size, "--size"),
                vms, provider, region_id, vbdf)
        except AcrnShmError as exc:
            return fail(str(exc))
        if command == "add-region":
            def change(document, board_model):
                return add_region(document, spec, board_model)
        else:
            def change(document, board_model):
                return set_region(document, name, spec, board_model)
    return run_edit(scenario, board, change, diff, dry_run, force)


def region_spec(name=None, size=None, vms=None, provider=None,
                region_id=None, vbdf=None):
    """The :class:`~acrn_ivshmem.edit.regions.RegionSpec` of the region
    edit options as given: ``vms`` comma-separated, each ``vbdf``
    ``VM=bb:dd.f`` (a malformed one is a :class:`UsageError`)."""
    from ..edit.regions import RegionSpec

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


def print_regions(scenario: str, output_format: str) -> int:
    """Print the regions of a scenario as a table or JSON."""
    import json

    from ..edit.regions import region_rows
    from ..model.resolved import load_scenario
    from .render import columns, plain_console

    try:
        model = load_scenario(
            scenario, refusal="{path}: expected a scenario XML").model
    except AcrnShmError as exc:
        return fail(str(exc))
    rows = region_rows(model)
    if output_format == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return EXIT_OK
    if output_format != "text":
        return fail(f"unknown output format {quoted(output_format)}; choose "
                    "text, json")
    from rich.table import Table

    table = Table("name", "provider", "MB", "id", "VMs (VBDF)", "line",
                  title=escaped(f"{scenario}: {len(rows)} IVSHMEM region(s), "
                                f"{model.format} format"))
    for row in rows:
        table.add_row(*map(escaped, (
            str(row["name"]), str(row["provider"]), str(row["size_mb"]),
            "-" if row["region_id"] is None else str(row["region_id"]),
            ", ".join(f"{m['vm']} ({m['vbdf']})" if m["vbdf"] else
                      str(m["vm"]) for m in row["vms"]),
            str(row["line"]))))
    plain_console(width=max(100, columns())).print(table)
    return EXIT_OK


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
    from ..model.resolved import load_scenario

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


def run_graph(scenario: str, output: str | None,
              output_format: str | None) -> int:
    """Draw ``scenario`` into ``output`` (or stdout); the exit status."""
    from ..emit import graph

    try:
        if output is not None:
            fmt = graph.write_graph(scenario, output, output_format)
            sys.stdout.write(f"wrote {output} ({fmt})\n")
        else:
            data = graph.graph_data(scenario, output_format or "dot")
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
    except AcrnShmError as exc:
        return fail(str(exc))
    return EXIT_OK


def complete_vms(ctx, incomplete: str) -> list[str]:
    """For shell completion of ``--vms``: comma-separated, the last name
    completed, each VM offered once."""
    done, comma, last = incomplete.rpartition(",")
    chosen = done.split(",") if comma else []
    return [done + comma + vm
            for vm in scenario_names(completed_scenario(ctx), "vms")
            if vm.startswith(last) and vm not in chosen]


def complete_provider(incomplete: str) -> list[str]:
    """For shell completion of ``--provider``."""
    return [p for p in ("hv", "dm") if p.startswith(incomplete)]


def complete_region(ctx, incomplete: str) -> list[str]:
    """For shell completion of a region NAME."""
    return [name for name in scenario_names(completed_scenario(ctx),
                                            "regions")
            if name.startswith(incomplete)]


#: The options of the region edits (``board`` and ``force`` are
#: upgrade's too), by parameter.
EDIT_OPTIONS = {option.param: option for option in (
    Option("size", ("--size",), metavar="SIZE",
           help="MB (8), or with a binary unit: 512M, 1G, 1024K. ACRN "
           "takes a power of two from 2 to 512 MB; other sizes are "
           "refused as lint errors (ISM201)."),
    Option("vms", ("--vms",), metavar="A,B[,C]",
           help="VMs by name or id, comma-separated.",
           complete=complete_vms),
    Option("provider", ("--provider",), metavar="hv|dm",
           help="Hypervisor (hv) or device model (dm).",
           complete=complete_provider),
    Option("region_id", ("--region-id",), int, metavar="N",
           help="IVSHMEM_REGION_ID, the PCI subsystem id the guest sees "
           "(0..65535, one per region: ISM212). Only ACRN v3.3 knows it: "
           "v3.0-v3.2 reject the element, v2.x scenarios cannot hold it."),
    Option("vbdf", ("--vbdf",), multiple=True, metavar="VM=bb:dd.f",
           help="A VM's VBDF (repeatable; v3)."),
    Option("board", ("--board", "-b"), metavar="BOARD.xml",
           help="Board XML (default: the one beside the scenario)."),
    Option("diff", ("--diff",), bool, False,
           help="Preview: print the edit as a unified diff and write "
           "nothing; exit 1 if the edit would be refused."),
    Option("dry_run", ("--dry-run",), bool, False,
           help="Write nothing; say what the edit does."),
    Option("force", ("--force",), bool, False,
           help="Write even if the edit adds lint errors."),
)}
_SCENARIO = Argument("scenario", "SCENARIO.xml")
_REGION_NAME = Argument("name", "NAME", complete=complete_region)
_GATE = tuple(EDIT_OPTIONS[key] for key in ("board", "diff", "dry_run",
                                            "force"))
_CHANGES = tuple(EDIT_OPTIONS[key] for key in ("size", "vms", "provider",
                                               "region_id", "vbdf"))

ADD_REGION = Command(
    "add-region", functools.partial(run_region_edit, "add-region"), (
        _SCENARIO,
        Option("name", ("--name",),
               help="Region name (default: first free shm_region_N)."),
        *(with_default(option, "hv") if option.param == "provider"
          else option for option in _CHANGES),
        *_GATE,
    ), """Add a region to a legacy or v3 scenario, keeping every byte.

Defaults: the first free shm_region_N, 2 MB, hv, each VM's first
free VBDF and, when any region of the file has an
IVSHMEM_REGION_ID, the lowest id no region has.

Example: acrn-shm add-region hybrid_rt.xml --vms 0,2 --size 4""")

REMOVE_REGION = Command(
    "remove-region", functools.partial(run_region_edit, "remove-region"),
    (_SCENARIO, _REGION_NAME, *_GATE),
    """Remove a region by name (the file as it was before add-region
added it, when it was the last).

Example: acrn-shm remove-region hybrid_rt.xml shm_region_1""")

SET_REGION = Command(
    "set-region", functools.partial(run_region_edit, "set-region"),
    (_SCENARIO, _REGION_NAME, *_CHANGES, *_GATE),
    """Change a region's size, VMs, provider, region id or VBDFs.

Example: acrn-shm set-region hybrid_rt.xml shm_region_0 --size 4""")


REGIONS = Command("regions", print_regions, (_SCENARIO, TABLE_OR_JSON),
                  """List the IVSHMEM regions of a scenario.

Example: acrn-shm regions hybrid_rt.xml -f json""")

GRAPH = Command("graph", run_graph, (
    _SCENARIO,
    Option("output", ("--output", "-o"), metavar="FILE",
           help="Write the picture here (.svg, .png, .pdf, .dot or .gv; "
           "default: DOT text on stdout)."),
    Option("output_format", ("--output-format", "-f"),
           metavar="svg|png|pdf|dot", choices=("svg", "png", "pdf", "dot"),
           help="The format (default: from the -o suffix)."),
), """Draw the VMs and the IVSHMEM regions they share (PNG and PDF
need Graphviz; SVG and DOT do not).

Example: acrn-shm graph hybrid_rt.xml -o topology.svg""")
