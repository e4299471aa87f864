"""Issue 16's figures: lint a file acrn-shm has never seen, paired with
ACRN's own validator.

:func:`measure` times, in one run with the runs of both tools
interleaved (so a burst of load hits both alike), medians of ``runs``:

* the same bytes again (``acrn-shm lint --board whl-ipc-i5.xml
  hybrid_rt.xml``, its cache folder warm);
* a changed file (a copy of hybrid_rt.xml with a new region name each
  run, the cache folder warm): an edit-lint loop;
* a fresh cache folder (an empty ``ACRN_SHM_CACHE_DIR`` each run): every
  CI job, every first run;

and, for each, ACRN's ``scenario_config/validator.py BOARD SCENARIO``
on the same files when an ACRN source tree and a Python that runs its
validator are given (``ACRN_SRC`` and ``ACRN_SHM_BUILD_PYTHON``, or
``--acrn-src`` and ``--acrn-python``). Then ``add-region`` on a changed
file against the lint of a changed file, 1,000 scenarios in one call with
a fresh cache folder, and the ten slowest imports of a lint run
(``python -X importtime``).

Every process runs without ``PYTHONDONTWRITEBYTECODE`` after one
warm-up run, so both tools read compiled bytecode as installed ones do.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import runner

#: Goals of the issue.
RATIO_GOAL = 30.0
ADD_REGION_GOAL = 2.0
THOUSAND_GOAL = 2.0
#: ACRN's validator, in an ACRN source tree.
VALIDATOR = Path("misc") / "config_tools" / "scenario_config" / "validator.py"
CASES = ("the same bytes again", "a changed file", "a fresh cache folder")


class Acrn(NamedTuple):
    """How to run ACRN's validator: its Python and the script."""

    python: str
    validator: Path


def find_acrn(source: str | None, python: str | None) -> Acrn | str:
    """The validator to run, or why it is skipped."""
    if not source:
        return "no ACRN source tree (set ACRN_SRC or pass --acrn-src)"
    validator = Path(source) / VALIDATOR
    if not validator.is_file():
        return f"{validator} is missing"
    if not python:
        return ("no Python for ACRN's validator (set ACRN_SHM_BUILD_PYTHON "
                "or pass --acrn-python; it needs elementpath<3 and "
                "xmlschema<2)")
    if shutil.which(python) is None:
        return f"{python} is not an executable"
    return Acrn(python, validator)


class Case(NamedTuple):
    """One case: acrn-shm's and ACRN's median wall and CPU (user +
    system) seconds; ACRN's are None when it was skipped."""

    label: str
    shm: float
    shm_cpu: float
    acrn: float | None
    acrn_cpu: float | None


def clean_env(env: dict) -> dict:
    """``env`` without what would make a run unlike a user's."""
    env = dict(env)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("ACRN_SHM_NO_CACHE", None)
    return env


def _changed_copy(source: Path, folder: Path, index: int) -> Path:
    text = source.read_text(encoding="utf-8")
    target = folder / f"changed_{index}_{os.getpid()}.xml"
    target.write_text(text.replace("shm_region_0", f"shm_changed_{index}"),
                      encoding="utf-8")
    return target


def measure(data: Path, acrn_shm: list[str], acrn: Acrn | str, work: Path,
            env: dict, runs: int) -> list[Case]:
    """The three cases, acrn-shm and ACRN interleaved, medians."""
    board = data / "whl-ipc-i5" / "whl-ipc-i5.xml"
    scenario = data / "whl-ipc-i5" / "hybrid_rt.xml"
    folder = work / "first_sight"
    folder.mkdir()
    warm_cache = tempfile.mkdtemp(prefix="acrn-shm-bench-warm-")
    env = clean_env(env)
    times: dict[str, tuple[list[runner.Run], list[runner.Run]]] = {
        label: ([], []) for label in CASES}
    try:
        warm = dict(env, ACRN_SHM_CACHE_DIR=warm_cache)
        lint = [*acrn_shm, "lint", "--board", str(board)]
        runner.run_once([*lint, str(scenario)], warm)  # warms pycs, cache
        if isinstance(acrn, Acrn):
            runner.run_once(_validator(acrn, board, scenario), env)
        for index in range(runs):
            changed = _changed_copy(scenario, folder, index)
            fresh = tempfile.mkdtemp(prefix="acrn-shm-bench-fresh-")
            try:
                for label, path, shm_env in (
                        (CASES[0], scenario, warm),
                        (CASES[1], changed, warm),
                        (CASES[2], scenario,
                         dict(env, ACRN_SHM_CACHE_DIR=fresh))):
                    shm, acrn_times = times[label]
                    shm.append(_run([*lint, str(path)], shm_env))
                    if isinstance(acrn, Acrn):
                        acrn_times.append(_run(
                            _validator(acrn, board, path), env))
            finally:
                shutil.rmtree(fresh, ignore_errors=True)
    finally:
        shutil.rmtree(warm_cache, ignore_errors=True)
    return [Case(label, _median(shm, "wall"), _median(shm, "cpu"),
                 _median(acrn_runs, "wall"), _median(acrn_runs, "cpu"))
            for label, (shm, acrn_runs) in times.items()]


def _median(runs: list[runner.Run], what: str) -> float | None:
    return (statistics.median(getattr(run, what) for run in runs)
            if runs else None)


def _validator(acrn: Acrn, board: Path, scenario: Path) -> list[str]:
    return [acrn.python, str(acrn.validator), str(board), str(scenario)]


def _run(argv: list[str], env: dict) -> runner.Run:
    run = runner.run_once(argv, env)
    if run.code not in (0, 1):
        raise SystemExit(f"failed ({run.code}): {' '.join(argv)}\n"
                         f"{run.stderr}")
    return run


def report_cases(cases: list[Case], acrn: Acrn | str) -> None:
    """The three cases, with the ratios beside the goal."""
    rows = []
    for case in cases:
        shm = [runner.ms(case.shm), runner.ms(case.shm_cpu)]
        if case.acrn is None:
            rows.append([case.label, *shm, "skipped", "", "", "",
                         f">= {RATIO_GOAL:.0f}x", ""])
            continue
        ratio = case.acrn / case.shm
        rows.append([case.label, *shm, runner.ms(case.acrn),
                     runner.ms(case.acrn_cpu), f"{ratio:.1f}x",
                     f"{case.acrn_cpu / case.shm_cpu:.1f}x",
                     f">= {RATIO_GOAL:.0f}x",
                     "" if ratio >= RATIO_GOAL else "under goal"])
    runner.table(["case", "acrn-shm", "CPU", "ACRN validator", "CPU",
                  "ratio", "CPU ratio", "goal", ""], rows)
    print("wall times, and CPU (user + system) times, less disturbed by "
          "the load of a shared machine; the goal is on the wall ratio")
    if isinstance(acrn, str):
        print(f"ACRN's validator skipped: {acrn}")


def add_region_ratio(data: Path, acrn_shm: list[str], work: Path, env: dict,
                     runs: int) -> tuple[list[runner.Run], list[runner.Run]]:
    """The runs of add-region on a changed file and of the lint of a
    changed file, interleaved."""
    board = data / "whl-ipc-i5" / "whl-ipc-i5.xml"
    scenario = data / "whl-ipc-i5" / "hybrid_rt.xml"
    folder = work / "add_region"
    folder.mkdir()
    env = clean_env(env)
    edits, lints = [], []
    for index in range(runs):
        edited = _changed_copy(scenario, folder, 2 * index)
        linted = _changed_copy(scenario, folder, 2 * index + 1)
        edits.append(_run([*acrn_shm, "add-region", str(edited), "--board",
                           str(board), "--vms", "PRE_RT_VM0,POST_STD_VM1",
                           "--name", f"bench_{index}"], env))
        lints.append(_run([*acrn_shm, "lint", "--board", str(board),
                           str(linted)], env))
    return edits, lints


def thousand(data: Path, acrn_shm: list[str], work: Path, env: dict,
             runs: int, make_scenarios) -> list[runner.Run]:
    """The runs of one lint of 1,000 scenarios, each with a fresh cache
    folder."""
    board = data / "whl-ipc-i5" / "whl-ipc-i5.xml"
    folder = work / "thousand"
    folder.mkdir()
    paths = make_scenarios(data / "whl-ipc-i5" / "hybrid_rt.xml", folder,
                           1000)
    env = clean_env(env)
    walls = []
    for _ in range(runs):
        fresh = tempfile.mkdtemp(prefix="acrn-shm-bench-fresh-")
        try:
            walls.append(_run([*acrn_shm, "lint", "--board", str(board),
                               *paths], dict(env, ACRN_SHM_CACHE_DIR=fresh)))
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
    return walls


class Import(NamedTuple):
    """One module of ``-X importtime``: its own and cumulative
    microseconds."""

    module: str
    own: int
    cumulative: int


def parse_importtime(stderr: str) -> list[Import]:
    """The modules of ``python -X importtime`` output, in its order."""
    found = []
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line[len("import time:"):].split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header
        found.append(Import(fields[2].strip(), int(fields[0]),
                            int(fields[1])))
    return found


def import_top(data: Path, env: dict, count: int = 10,
               runs: int = 3) -> tuple[list[Import], int]:
    """The ``count`` modules with the most own import time in a lint run
    (each module's least of ``runs`` runs), and the total (least run)."""
    board = data / "whl-ipc-i5" / "whl-ipc-i5.xml"
    scenario = data / "whl-ipc-i5" / "hybrid_rt.xml"
    argv = [sys.executable, "-X", "importtime", "-m", "acrn_ivshmem", "lint",
            "--board", str(board), str(scenario)]
    env = clean_env(env)
    best: dict[str, Import] = {}
    totals = []
    for _ in range(runs):
        done = subprocess.run(argv, env=env, capture_output=True, text=True,
                              check=False)
        modules = parse_importtime(done.stderr)
        totals.append(sum(item.own for item in modules))
        for item in modules:
            if item.module not in best or item.own < best[item.module].own:
                best[item.module] = item
    top = sorted(best.values(), key=lambda item: -item.own)[:count]
    return top, min(totals)


def report(data: Path, acrn_shm: list[str], work: Path, env: dict,
           runs: int, acrn: Acrn | str, make_scenarios,
           quick: bool) -> None:
    """Print every figure of issue 16 beside its goal."""
    cases = measure(data, acrn_shm, acrn, work, env, runs)
    print("Lint of whl-ipc-i5 + hybrid_rt.xml: acrn-shm and ACRN's "
          f"validator, interleaved, medians of {runs}")
    report_cases(cases, acrn)
    print()
    edits, lints = add_region_ratio(data, acrn_shm, work, env, runs)
    edit, lint = _median(edits, "wall"), _median(lints, "wall")
    edit_cpu, lint_cpu = _median(edits, "cpu"), _median(lints, "cpu")
    thousands = thousand(data, acrn_shm, work, env, 1 if quick else 3,
                         make_scenarios)
    many = _median(thousands, "wall")
    runner.table(["case", "time", "CPU", "goal", ""], [
        ["add-region on a changed file", runner.ms(edit),
         runner.ms(edit_cpu), f"<= {ADD_REGION_GOAL:.0f}x lint", ""],
        ["lint of a changed file", runner.ms(lint), runner.ms(lint_cpu),
         "", ""],
        ["add-region / lint", f"{edit / lint:.2f}x",
         f"{edit_cpu / lint_cpu:.2f}x", f"<= {ADD_REGION_GOAL:.0f}x",
         "" if edit <= ADD_REGION_GOAL * lint else "over goal"],
        ["1,000 scenarios, one call, fresh cache", runner.ms(many),
         runner.ms(_median(thousands, "cpu")), runner.ms(THOUSAND_GOAL),
         "" if many <= THOUSAND_GOAL else "over goal"]])
    print("goals on wall time; CPU (user + system) beside it, less "
          "disturbed by the load of a shared machine")
    print()
    top, total = import_top(data, env)
    print(f"Slowest imports of a lint run (python -X importtime, least of "
          f"3 runs; all imports: {total / 1000:.0f}ms)")
    runner.table(["module", "own", "with its imports"],
                 [[item.module, f"{item.own / 1000:.1f}ms",
                   f"{item.cumulative / 1000:.1f}ms"] for item in top])
