"""Time and peak memory of acrn-shm on inputs of unusual shape.

For each shape of :mod:`shapes` (many attributes, one long line, many
elements, deep nesting, many comments, long text, many regions, VMs,
vUART connections, a long name, many suppressions, a long legacy
region string, a board with many PCI devices) and sizes from small to
past acrn-shm's limits (up to the 16 MB file size limit), runs whole
``acrn-shm`` processes as users do and prints, beside the goal of
2 s and 300 MB for any input the limits let in:

* ``lint FILE`` of the v3 scenario (of the board for "board");
* ``add-region FILE --vms VM0,VM1`` on a copy of it (default name:
  the first free ``shm_region_N``);
* ``upgrade LEGACY -o OUT`` of the legacy variant of the shape;
* ``launch-script FILE --board BOARD -o DIR`` (a board without PCI
  devices; a scenario with errors stops after its lint, exit 1);
* ``regions FILE`` and ``graph FILE`` (DOT text) of the v3 scenario.

Each cell is the CPU time (user + system) of the process, then its
peak RSS; ``refused`` marks a clean refusal (exit 2 with one line, the
start of which is listed under the table). CPU time is shown, not wall
time, because this machine is shared; the wall time of the slowest
case is printed at the end. A fresh result cache is used, warmed with
the compiled schemas only, so every run checks a file it has not seen
(cold lint; ``--no-cache`` would add the schema build, about 0.2 s).

Per shape, ``growth`` is the exponent k of ``time = a + b * n**k``
between the two largest sizes that were not refused, from the CPU time
above that of the smallest size (1 is linear, 2 quadratic; blank when
the rise is under 0.1 s, too little to tell).

Usage: python bench/shape_bench.py [--quick] [--shape NAME ...]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

import runner  # noqa: E402
import shapes  # noqa: E402

from acrn_ivshmem.io.xmlio import MAX_ATTRIBUTES, MAX_NODES  # noqa: E402
from acrn_ivshmem.model.loader import MAX_READ, MAX_READ_TEXT  # noqa: E402

GOAL_SECONDS = 2.0
GOAL_MB = 300
COMMANDS = ("lint", "add-region", "upgrade", "launch-script", "regions",
            "graph")
# Items a 16 MB file holds, to end each series past the size limit.
_BIG = 16 * 1024 * 1024


def sizes(shape: str, quick: bool) -> list[int]:
    """The sizes ``n`` to run ``shape`` at: growing by 4, the largest
    accepted ones close to the limits, then some refused."""
    scenario_read = MAX_READ["v3"]
    text = MAX_READ_TEXT["v3"]
    series = {
        "attributes": [6, 25, MAX_ATTRIBUTES, 1_000, 20_000],
        "line": [64_000, 256_000, 1_024_000, 4_096_000, 15_000_000],
        "elements": [6_000, 25_000, MAX_NODES - 50, 400_000, 3_000_000],
        # <hv> and the root are two levels; lxml takes 256.
        "depth": [16, 64, 250, 1_000],
        "comments": [6_000, 25_000, MAX_NODES - 50, 1_400_000],
        "text": [150_000, 600_000, 2_400_000, 9_600_000, 15_000_000],
        # 11 children and attributes a region, 13 a VM with its vUART.
        "regions": [11, 45, scenario_read // 11 - 2, 2_000, 50_000],
        # 7 a VM (4 for its <vm>, 3 for its place in the region).
        "vms": [17, 70, scenario_read // 7 - 3, 2_000, 100_000],
        "vuarts": [11, 45, scenario_read // 13 - 3, 2_000, 60_000],
        "names": [250, 1_000, 4_000, text - 400, 64_000, 15_000_000],
        "suppressions": [11, 45, scenario_read // 11 - 2, 2_000, 50_000],
        # 3 characters a field.
        "legacy-fields": [80, 320, 1_280, text // 3 - 130, 20_000,
                          5_300_000],
        # 5 children and attributes a device.
        "board": [300, 1_200, MAX_READ["board"] // 5 - 5, 25_000,
                  200_000],
    }[shape]
    if quick:
        return series[::2] + ([series[-1]] if len(series) % 2 == 0 else [])
    return series


class Cell(NamedTuple):
    """One process: CPU and wall seconds, peak RSS (KB), exit status,
    the first line of its stderr."""

    cpu: float
    wall: float
    rss: int
    code: int
    message: str


def commands(shape: str, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """What to run on ``shape`` (a board takes lint only)."""
    return tuple(c for c in wanted if shape != "board" or c == "lint")


def run(acrn_shm: list[str], env: dict, command: str, v3: Path,
        legacy: Path, work: Path) -> Cell:
    """Run ``command`` on the files of one shape and size."""
    if command == "lint":
        argv = [*acrn_shm, "lint", str(v3)]
    elif command == "add-region":
        copy = work / "edited.xml"
        shutil.copyfile(v3, copy)
        argv = [*acrn_shm, "add-region", str(copy), "--vms", "VM0,VM1"]
    elif command == "upgrade":
        out = work / "upgraded.xml"
        out.unlink(missing_ok=True)
        argv = [*acrn_shm, "upgrade", str(legacy), "-o", str(out)]
    elif command == "launch-script":
        board = work / "board" / "board.xml"
        if not board.exists():
            board.parent.mkdir()
            board.write_bytes(shapes.generate("board", 0))
        scripts = work / "scripts"
        shutil.rmtree(scripts, ignore_errors=True)
        argv = [*acrn_shm, "launch-script", str(v3), "--board", str(board),
                "-o", str(scripts)]
    else:
        argv = [*acrn_shm, command, str(v3)]
    done = runner.run_once(argv, env)
    lines = done.stderr.strip().splitlines()
    return Cell(done.cpu, done.wall, done.rss, done.code,
                lines[0] if lines else "")


def shown(cell: Cell | None) -> str:
    """A table cell: CPU time and peak RSS, or what went wrong."""
    if cell is None:
        return "-"
    text = f"{cell.cpu:.2f}s {cell.rss / 1024:.0f}M"
    if cell.code == 2:
        return f"refused {text}"
    if cell.code not in (0, 1):
        return f"FAILED({cell.code}) {text}"
    over = cell.cpu > GOAL_SECONDS or cell.rss / 1024 > GOAL_MB
    return text + (" OVER" if over else "")


def growth(points: list[tuple[int, Cell]]) -> str:
    """The exponent of the rise between the two largest accepted sizes
    (see the module doc), or "" when it cannot be told."""
    accepted = [(n, c.cpu) for n, c in points if c.code in (0, 1)]
    if len(accepted) < 3:
        return ""
    base = accepted[0][1]
    (n1, t1), (n2, t2) = accepted[-2:]
    if t2 - base < 0.1 or t1 - base <= 0.01:
        return ""
    return f"{math.log((t2 - base) / (t1 - base)) / math.log(n2 / n1):.1f}"


def measure(shape: str, quick: bool, wanted: tuple[str, ...],
            acrn_shm: list[str], env: dict,
            work: Path) -> list[tuple[int, int, dict[str, Cell]]]:
    """(n, bytes, cells by command) for each size of ``shape``."""
    rows = []
    for n in sizes(shape, quick):
        v3 = work / f"{shape}.xml"
        legacy = work / f"{shape}-legacy.xml"
        data = shapes.generate(shape, n)
        v3.write_bytes(data)
        legacy.write_bytes(shapes.generate(shape, n, legacy=True))
        cells = {command: run(acrn_shm, env, command, v3, legacy, work)
                 for command in commands(shape, wanted)}
        rows.append((n, len(data), cells))
    return rows


def _reason(message: str) -> str:
    # "acrn-shm: error: /tmp/.../regions.xml:3:5: why" -> "3:5: why"
    message = message.removeprefix("acrn-shm: error: ")
    return message.split(".xml", 1)[-1].lstrip(":")


def report(results: dict[str, list]) -> None:
    """Print the table, the growth per shape and the refusals."""
    body = []
    refusals: dict[str, str] = {}
    slowest = (0.0, "")
    for shape, rows in results.items():
        for n, size, cells in rows:
            body.append([shape, f"{n:,}", f"{size / 1024:,.0f}",
                         *(shown(cells.get(c)) for c in COMMANDS)])
            for command, cell in cells.items():
                if cell.code == 2:
                    refusals.setdefault(_reason(cell.message)[:100], shape)
                elif cell.wall > slowest[0]:
                    slowest = (cell.wall, f"{command} of {shape} {n:,}")
        body.append(["", "growth", "", *(
            growth([(n, cells[c]) for n, _size, cells in rows])
            if c in rows[0][2] else "" for c in COMMANDS)])
    runner.table(["shape", "n", "KB", *COMMANDS], body, left=2)
    print(f"cells: CPU seconds and peak RSS of one process; goal "
          f"{GOAL_SECONDS:.0f} s and {GOAL_MB} MB ('OVER' when above); "
          "'refused': exit 2 with one line")
    print(f"limits: {MAX_NODES:,} elements, attributes and comments a "
          f"file; {MAX_ATTRIBUTES} attributes an element; "
          f"{MAX_READ['v3']:,} children and attributes of the elements "
          f"read in a scenario, {MAX_READ['board']:,} in a board; "
          f"{MAX_READ_TEXT['v3']:,} characters of their text in a "
          f"scenario, {MAX_READ_TEXT['board']:,} in a board; 16 MB a file")
    print("refusals (first line after the file name, shape):")
    for message, shape in refusals.items():
        print(f"  {shape}: {message}")
    print(f"slowest accepted run by wall time: {slowest[0]:.2f} s "
          f"({slowest[1]})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="three sizes a shape instead of all")
    parser.add_argument("--shape", action="append",
                        choices=shapes.SHAPES, help="only this shape "
                        "(repeatable; default: all)")
    parser.add_argument("--command", action="append", choices=COMMANDS,
                        help="only this command (repeatable; default: "
                        "all)")
    args = parser.parse_args()
    started = time.perf_counter()
    acrn_shm = runner.command()
    work = Path(tempfile.mkdtemp(prefix="acrn-shm-shapes-"))
    env = dict(os.environ, ACRN_SHM_CACHE_DIR=str(work / "cache"))
    env.pop("ACRN_SHM_NO_CACHE", None)
    try:
        # Warm the cache with the compiled schemas (of every kind).
        for shape in ("regions", "board"):
            for legacy in (False, True):
                path = work / "warm.xml"
                path.write_bytes(shapes.generate(shape, 1, legacy))
                runner.run_once([*acrn_shm, "lint", str(path)], env)
        print(f"acrn-shm on inputs of unusual shape ({os.cpu_count()} "
              f"CPUs; Python {sys.version.split()[0]}; load average "
              f"{runner.load_average()} at start)")
        wanted = tuple(args.command or COMMANDS)
        results = {shape: measure(shape, args.quick, wanted, acrn_shm, env,
                                  work)
                   for shape in args.shape or shapes.SHAPES}
        report(results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"benchmark wall {time.perf_counter() - started:.1f} s; load "
          f"average {runner.load_average()} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
