"""``acrn-shm upgrade``: a legacy scenario (or its regions) to v3."""

import os
import sys

from ..errors import AcrnShmError, escaped
from .exits import EXIT_OK, fail
from .regions import EDIT_OPTIONS, run_edit
from .render import columns, plain_console
from .spec import Argument, Command, Option


def run_upgrade(legacy: str, output: str | None, launch: list[str] | None,
                into: str | None, board: str | None, force: bool) -> int:
    """Upgrade ``legacy`` (with its ``launch`` XMLs); write, merge or
    print; show what was assigned."""
    from ..io.xmlio import open_input, parse_file, save_output
    from ..lint.config import load_config
    from ..lint.engine import find_board_beside
    from ..model.resolved import load_scenario
    from ..upgrade.merge import merge_regions, merged_assignments
    from ..upgrade.scenario import upgrade

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
        result = upgrade(document, [parse_file(p) for p in launch or ()],
                         board=board_document, config=settings)
    except AcrnShmError as exc:
        return fail(str(exc))
    for note in result.notes:
        sys.stderr.write(f"note: {note}\n")
    if into is not None:
        def merge(target, _board_model):
            from ..edit.regions import EditResult

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
        return fail(str(exc))
    sys.stderr.write(f"wrote {output}\n")
    return EXIT_OK


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
    plain_console(stderr=True, width=max(100, columns())).print(table)


UPGRADE = Command("upgrade", run_upgrade, (
    Argument("legacy", "LEGACY.xml"),
    Option("output", ("--output", "-o"), metavar="NEW.xml",
           help="Write the v3 scenario here (default: standard output); an "
           "existing file is replaced."),
    Option("launch", ("--launch",), multiple=True, metavar="LAUNCH.xml",
           help="A v2.x launch XML whose shm_regions to carry over "
           "(repeatable)."),
    Option("into", ("--into",), metavar="V3.xml",
           help="Merge the converted regions into this v3 scenario "
           "instead."),
    EDIT_OPTIONS["board"],
    EDIT_OPTIONS["force"],
), """Convert a legacy (v2.x) scenario, or its regions, to ACRN v3.

Example: acrn-shm upgrade hybrid_rt.xml --launch launch.xml -o v3.xml""")
