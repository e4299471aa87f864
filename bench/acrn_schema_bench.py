"""Benchmark ``acrn-shm lint --acrn-schema`` against ACRN's validator.

Whole processes, paired: each round runs ACRN's own
``scenario_config/validator.py`` (with the Python in
``ACRN_SHM_BUILD_PYTHON``, else ``python3``) and acrn-shm on the same
whl-ipc-i5 + hybrid_rt pair, one after the other, so that a busy
machine slows both alike; the table shows medians and ratios beside the
goal (5x):

- a fresh cache folder: nothing cached, the tree's schemas are read
  and described (xmlschema builds ``config.xsd`` only for a scenario
  the fast walk cannot tell valid, which this valid one is not);
- a changed file: the described schema comes from the cache (pickled),
  the file is edited (the region's size and a comment, new each round);
- the same bytes again: the result comes from the cache.

acrn-shm runs with ``--select ISM9``: ACRN's checks only, what the
validator does. Without ``ACRN_SRC`` it prints that it skipped.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from pathlib import Path

import runner

GOAL = 5.0


def report(acrn_shm: list[str], data: Path, work: Path, runs: int) -> None:
    """Print the paired table (or why it was skipped)."""
    print()
    print("lint --acrn-schema beside ACRN's validator.py (paired, medians; "
          f"goal: {GOAL:.0f}x faster)")
    tree = os.environ.get("ACRN_SRC")
    if not tree:
        print("skipped: set ACRN_SRC to an ACRN v3 source tree (and "
              "ACRN_SHM_BUILD_PYTHON to the Python of its validator)")
        return
    python = os.environ.get("ACRN_SHM_BUILD_PYTHON") or "python3"
    validator = (Path(tree) / "misc" / "config_tools" / "scenario_config"
                 / "validator.py")
    board = data / "whl-ipc-i5" / "whl-ipc-i5.xml"
    scenario = work / "acrn_schema_hybrid_rt.xml"
    shutil.copy(data / "whl-ipc-i5" / "hybrid_rt.xml", scenario)
    original = scenario.read_text(encoding="utf-8")
    acrn = [python, "-W", "ignore", str(validator), str(board),
            str(scenario)]
    lint = [*acrn_shm, "lint", "--acrn-schema", "--acrn-src", tree,
            "--select", "ISM9", "--board", str(board), str(scenario)]
    warm = tempfile.mkdtemp(prefix="acrn-shm-bench-acrn-")
    times: dict[str, list[float]] = {
        "acrn": [], "fresh": [], "changed": [], "same": []}
    try:
        runner.run_once(lint, dict(os.environ, ACRN_SHM_CACHE_DIR=warm))
        for index in range(runs):
            times["acrn"].append(_wall(acrn, dict(os.environ)))
            fresh = tempfile.mkdtemp(prefix="acrn-shm-bench-fresh-")
            try:
                times["fresh"].append(_wall(lint, dict(
                    os.environ, ACRN_SHM_CACHE_DIR=fresh)))
            finally:
                shutil.rmtree(fresh, ignore_errors=True)
            # An edit as a user makes it: the region's size and a
            # comment inside the root (new bytes even when sizes repeat).
            text = original.replace(
                "<IVSHMEM_SIZE>2<",
                f"<IVSHMEM_SIZE>{4 << index % 7}<").replace(
                "</acrn-config>", f"<!-- round {index} --></acrn-config>")
            scenario.write_text(text, encoding="utf-8")
            env = dict(os.environ, ACRN_SHM_CACHE_DIR=warm)
            times["changed"].append(_wall(lint, env))
            times["same"].append(_wall(lint, env))
    finally:
        shutil.rmtree(warm, ignore_errors=True)
    acrn_median = statistics.median(times["acrn"])
    rows = []
    for key, label in (("fresh", "fresh cache folder (schema built)"),
                       ("changed", "changed file (schema pickle warm)"),
                       ("same", "same bytes again (result cached)")):
        ours = statistics.median(times[key])
        ratio = acrn_median / ours
        rows.append([label, runner.ms(ours), runner.ms(acrn_median),
                     f"{ratio:.1f}x", f"{GOAL:.0f}x",
                     "met" if ratio >= GOAL else "not met"])
    runner.table(["case", "acrn-shm", "ACRN validator", "ratio", "goal",
                  ""], rows)
    print(f"{runs} rounds; ACRN tree {tree}; ACRN's Python {python}")


def _wall(argv: list[str], env: dict) -> float:
    run = runner.run_once(argv, env)
    if run.code not in (0, 1):
        raise SystemExit(f"failed ({run.code}): {' '.join(argv)}\n"
                         f"{run.stderr[-2000:]}")
    return run.wall
