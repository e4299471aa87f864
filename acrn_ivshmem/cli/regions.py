"""``acrn-shm add-region``, ``set-region``, ``remove-region``,
``regions`` and ``graph``: a scenario's regions edited, listed, drawn."""

import os
import sys

from ..errors import AcrnShmError, UsageError, escaped, quoted
from .exits import EXIT_FINDINGS, EXIT_OK, fail
from .render import columns, plain_console, write_diff


def run_edit(path: str, board: str | None, change, diff: bool,
             dry_run: bool, force: bool) -> int:
    """Edit ``path`` with ``change(document, board_model)``, gated by lint.

    The file is locked, read, edited in memory and linted before and
    after. An edit that adds an error writes nothing and exits 1 unless
    ``force``; ``diff`` prints a unified diff and writes nothing, with
    the status the edit would have; ``dry_run`` writes nothing.
    """
    from ..edit.gate import gate_edit
    from ..io.xmlio import locked, read_bytes, save_atomic
    from ..lint.formats import text

    try:
        with locked(path):
            before = read_bytes(path)
            gated = gate_edit(path, before, board, change)
            result, added = gated.result, gated.added
            if diff:
                write_diff(path, before, result.data)
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
        return fail(str(exc))
    sys.stdout.write(f"{path}: {result.summary}\n")
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
            spec = _spec(name if command == "add-region" else None,
                         None if size is None else parse_size_mb(
                             size, "--size"), vms, provider, region_id,
                         vbdf)
        except AcrnShmError as exc:
            return fail(str(exc))
        if command == "add-region":
            def change(document, board_model):
                return add_region(document, spec, board_model)
        else:
            def change(document, board_model):
                return set_region(document, name, spec, board_model)
    return run_edit(scenario, board, change, diff, dry_run, force)


def _spec(name=None, size=None, vms=None, provider=None, region_id=None,
          vbdf=None):
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


def print_regions(path: str, output_format: str) -> int:
    """Print the regions of a scenario as a table or JSON."""
    import json

    from ..edit.regions import region_rows
    from ..model.loader import load
    from ..model.syntax import Scenario

    try:
        scenario = load(path).model
    except AcrnShmError as exc:
        return fail(str(exc))
    if not isinstance(scenario, Scenario):
        return fail(f"{path}: expected a scenario XML")
    rows = region_rows(scenario)
    if output_format == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return EXIT_OK
    if output_format != "text":
        return fail(f"unknown output format {quoted(output_format)}; choose "
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
    from ..model.loader import load
    from ..model.syntax import Scenario

    if not path:
        return []
    try:
        model = load(path).model
    except (AcrnShmError, OSError):
        return []
    if not isinstance(model, Scenario):
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
