"""How acrn-shm lint time grows with the number of VMs and regions.

Scenarios from :mod:`scenarios` (grown from ACRN v3.3
``whl-ipc-i5/shared.xml``; every region shared by every VM, so a file
holds VMs x regions ``IVSHMEM_VM`` entries) must first lint clean: one
``acrn-shm lint -f json`` process over all of them must exit 0 with no
finding at all (this also fills the result cache), and each file is
linted once more in this process with the same demand. Each is then
timed:

* whole process, ``acrn-shm lint --board whl-ipc-i5.xml FILE``, with the
  result cache warm and with ``--no-cache``: median wall time, median
  CPU time (user + system of the child, less disturbed than wall time
  by the load of a shared machine) and the largest RSS of one process;
* in this process, ``Linter().lint([FILE], board)`` with the cache warm
  and with it off: CPU time, best of N, garbage collector paused (as
  :mod:`timeit` does). A fresh :class:`Linter` each time, so the board
  XML is parsed (and, without cache, validated) each time as in a new
  process, but Python start-up, imports and the one-off schema
  compilation are not counted: this isolates how the work scales.

``--quick`` measures two series that meet at the largest scenario (VMs
2, 4, 8, 16 with 8 regions; regions 0, 1, 2, 4, 8 with 16 VMs); the full
run measures the whole grid, with more runs (see :func:`rounds`; in
``--quick`` the in-process rounds stop after about 6 s once 9 are done).
Runs are interleaved (each round times every scenario once), so bursts
of load hit all sizes alike.

Along each series the growth is judged on the values of the table
(CLI: medians; in-process: best runs; see :func:`growth`): the cost per
VM or region is the slope of a least-squares line; *flat* means that
slope is not told from noise (a rise under 5% of the time, or not above
zero with 95% confidence); *superlinear* means the ``x*x`` term of a
quadratic fit makes half of the rise or more and stands out of that
fit's scatter; anything else is *linear*.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import runner
import scenarios

SERIES_VMS = max(scenarios.VM_COUNTS)          # regions series: 16 VMs
SERIES_REGIONS = max(scenarios.REGION_COUNTS)  # VMs series: 8 regions
COLD_LINT_TARGET = 0.080
NOISE_FLOOR = 0.05  # a rise under 5% of the time is not told apart
# Student's t, two-sided 95%, by degrees of freedom (5 stands for 5+).
_T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57}


class Stat(NamedTuple):
    """Seconds over repeated runs: the median, the best, how many."""

    median: float
    best: float
    runs: int

    @classmethod
    def of(cls, times: list[float]) -> "Stat":
        """The statistics of ``times``."""
        return cls(statistics.median(times), min(times), len(times))


class Row(NamedTuple):
    """The measurements of one generated scenario."""

    vms: int
    regions: int
    members: int
    size: int         # bytes
    wall_warm: Stat   # whole process
    wall_cold: Stat
    cpu_warm: Stat
    cpu_cold: Stat
    rss: int          # KB, largest single process
    inproc_warm: Stat  # CPU seconds in this process
    inproc_cold: Stat


def plan(quick: bool) -> list[tuple[int, int]]:
    """The (VMs, regions) pairs to measure, sorted."""
    if not quick:
        return [(v, r) for v in scenarios.VM_COUNTS
                for r in scenarios.REGION_COUNTS]
    pairs = {(v, SERIES_REGIONS) for v in scenarios.VM_COUNTS}
    pairs |= {(SERIES_VMS, r) for r in scenarios.REGION_COUNTS}
    return sorted(pairs)


def check_clean(acrn_shm: list[str], board: Path, paths: list[Path],
                env: dict) -> None:
    """Lint ``paths`` with the real command (one process, which also
    fills the result cache); stop unless it exits 0 with no finding."""
    done = subprocess.run(
        [*acrn_shm, "lint", "-f", "json", "--board", str(board),
         *map(str, paths)], env=env, capture_output=True, text=True)
    findings = None
    if done.returncode == 0:
        try:
            findings = json.loads(done.stdout)
        except ValueError:
            pass
    if done.returncode != 0 or findings != []:
        raise SystemExit(f"generated scenarios are not lint clean "
                         f"(exit {done.returncode}):\n"
                         f"{done.stdout}{done.stderr}")


def rounds(quick: bool) -> dict[str, float]:
    """Runs per scenario: CLI with warm cache, CLI without, in-process
    (each in-process round lints with and without cache; after
    ``inproc_budget`` seconds no new round starts once ``inproc_least``
    are done)."""
    if quick:  # --quick must stay well under 90 s on a busy 2-core box
        return {"warm": 3, "cold": 1, "inproc": 25, "inproc_least": 9,
                "inproc_budget": 6.0}
    return {"warm": 9, "cold": 9, "inproc": 25, "inproc_least": 25,
            "inproc_budget": 0.0}


def measure(acrn_shm: list[str], env: dict, source: Path, board: Path,
            folder: Path, quick: bool) -> list[Row]:
    """Generate (from ``source`` in ``folder``), check and time every
    scenario of :func:`plan`."""
    items = [scenarios.write(folder, vms, regions, source, board)
             for vms, regions in plan(quick)]
    check_clean(acrn_shm, board, [item.path for item in items], env)
    count = rounds(quick)
    walls, cpus, rss = time_cli(acrn_shm, env, board, items, count)
    inproc = time_inproc(env, board, items, count)
    return [Row(item.vms, item.regions, item.members,
                item.path.stat().st_size,
                Stat.of(walls[i, "warm"]), Stat.of(walls[i, "cold"]),
                Stat.of(cpus[i, "warm"]), Stat.of(cpus[i, "cold"]), rss[i],
                Stat.of(inproc[i, "warm"]), Stat.of(inproc[i, "cold"]))
            for i, item in enumerate(items)]


def time_cli(acrn_shm: list[str], env: dict, board: Path, items: list,
             count: dict[str, float]) -> tuple[dict, dict, list[int]]:
    """Wall and CPU seconds by (item index, "warm"|"cold"), and the
    largest RSS (KB) of one process per item."""
    extras = {"warm": [], "cold": ["--no-cache"]}
    walls = {(i, k): [] for i in range(len(items)) for k in extras}
    cpus = {key: [] for key in walls}
    rss = [0] * len(items)
    for number in range(int(max(count["warm"], count["cold"]))):
        for index, item in enumerate(items):
            for kind, extra in extras.items():
                if number >= count[kind]:
                    continue
                argv = [*acrn_shm, "lint", "--board", str(board),
                        str(item.path), *extra]
                run = runner.run_once(argv, env)
                if run.code != 0:
                    raise SystemExit(f"failed ({run.code}): "
                                     f"{' '.join(argv)}\n{run.stderr}")
                walls[index, kind].append(run.wall)
                cpus[index, kind].append(run.cpu)
                rss[index] = max(rss[index], run.rss)
    return walls, cpus, rss


def time_inproc(env: dict, board: Path, items: list,
                count: dict[str, float]) -> dict:
    """CPU seconds of in-process lints by (item index, "warm"|"cold"),
    in up to ``count["inproc"]`` rounds (see :func:`rounds`)."""
    from acrn_ivshmem.lint.config import LintConfig

    configs = {"warm": LintConfig(), "cold": LintConfig(use_cache=False)}
    times = {(i, k): [] for i in range(len(items)) for k in configs}
    saved = {k: os.environ.get(k)
             for k in ("ACRN_SHM_CACHE_DIR", "ACRN_SHM_NO_CACHE")}
    os.environ["ACRN_SHM_CACHE_DIR"] = env["ACRN_SHM_CACHE_DIR"]
    os.environ.pop("ACRN_SHM_NO_CACHE", None)
    try:
        for item in items:  # warm-up; each file must be clean
            for config in configs.values():
                lint_once(item.path, board, config, check=True)
        start = time.perf_counter()
        for number in range(int(count["inproc"])):
            if (number >= count["inproc_least"] and time.perf_counter()
                    - start > count["inproc_budget"]):
                break
            for index, item in enumerate(items):
                for kind, config in configs.items():
                    times[index, kind].append(
                        lint_once(item.path, board, config))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return times


def lint_once(path: Path, board: Path, config, check: bool = False
              ) -> float:
    """CPU seconds of one ``Linter(config).lint`` of ``path`` in this
    process, garbage collector paused; with ``check``, stop unless the
    file is clean."""
    from acrn_ivshmem.lint.engine import Linter

    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        result = Linter(config).lint([str(path)], str(board))
        elapsed = time.process_time() - start
    finally:
        gc.enable()
    if check and (result.diagnostics or result.errors):
        raise SystemExit(f"in-process lint of {path} is not clean: "
                         f"{result.diagnostics or result.errors}")
    return elapsed


def solve(features: list[list[float]], targets: list[float]) -> list[float]:
    """Least-squares coefficients ``k`` of ``t = sum(k[i] * f[i])``."""
    size = len(features[0])
    matrix = [[sum(f[i] * f[j] for f in features) for j in range(size)]
              + [sum(f[i] * t for f, t in zip(features, targets))]
              for i in range(size)]
    for col in range(size):  # Gauss-Jordan elimination with pivoting
        pivot = max(range(col, size), key=lambda r: abs(matrix[r][col]))
        matrix[col], matrix[pivot] = matrix[pivot], matrix[col]
        for other in range(size):
            if other != col:
                factor = matrix[other][col] / matrix[col][col]
                matrix[other] = [v - factor * p for v, p in
                                 zip(matrix[other], matrix[col])]
    return [matrix[i][size] / matrix[i][i] for i in range(size)]


def fit(points: list[tuple[float, float]],
        degree: int) -> list[float]:
    """Least-squares coefficients ``[a, b, ...]`` of the polynomial
    ``t = a + b*x + ...`` of ``degree`` through ``points``."""
    return solve([[x ** k for k in range(degree + 1)] for x, _ in points],
                 [t for _, t in points])


def residuals(points: list[tuple[float, float]],
              coefficients: list[float]) -> list[float]:
    """What the polynomial with ``coefficients`` misses at each point."""
    return [t - sum(c * x ** k for k, c in enumerate(coefficients))
            for x, t in points]


def growth(points: list[tuple[float, float]],
           floor: float = 0.0) -> tuple[float, str]:
    """Cost per unit of x (seconds) and a verdict on how t grows with x.

    *flat*: the straight line's rise is under ``floor`` seconds or its
    slope is not above zero with 95% confidence (Student's t);
    *superlinear*: the ``x*x`` term of a quadratic fit makes half of the
    rise or more and over three times that fit's residual; else
    *linear*.
    """
    xs = [x for x, _ in points]
    span = max(xs) - min(xs)
    line = fit(points, 1)
    per_unit = line[1]
    mean_x = statistics.fmean(xs)
    spread_x = sum((x - mean_x) ** 2 for x in xs)
    dof = max(len(points) - 2, 1)
    error = (sum(r * r for r in residuals(points, line)) / dof
             / spread_x) ** 0.5
    if per_unit * span <= floor or per_unit <= _T95[min(dof, 5)] * error:
        return per_unit, "flat (within noise)"
    curve_fit = fit(points, 2)
    curve = curve_fit[2] * (max(xs) ** 2 - min(xs) ** 2)
    scatter = (sum(r * r for r in residuals(points, curve_fit))
               / max(len(points) - 3, 1)) ** 0.5
    if curve >= 0.5 * per_unit * span and curve > 3 * scatter:
        share = curve / (per_unit * span)
        return per_unit, f"superlinear ({share:.0%} of the rise is x*x)"
    return per_unit, "linear"


def series(rows: list[Row]) -> list[tuple[str, str, list[Row]]]:
    """The VMs series and the regions series: (label, unit, rows)."""
    by_vms = sorted((r for r in rows if r.regions == SERIES_REGIONS),
                    key=lambda r: r.vms)
    by_regions = sorted((r for r in rows if r.vms == SERIES_VMS),
                        key=lambda r: r.regions)
    return [
        (f"VMs {by_vms[0].vms}..{by_vms[-1].vms} at {SERIES_REGIONS} "
         f"regions", "VM", by_vms),
        (f"regions {by_regions[0].regions}..{by_regions[-1].regions} at "
         f"{SERIES_VMS} VMs", "region", by_regions),
    ]


def report(rows: list[Row], quick: bool) -> None:
    """Print the scaling table and the growth lines of each series."""
    runs = rounds(quick)
    target = COLD_LINT_TARGET
    body = []
    for row in rows:
        body.append([
            str(row.vms), str(row.regions), str(row.members),
            f"{row.size / 1024:.1f}", runner.ms(row.wall_warm.median),
            runner.ms(row.wall_cold.median), runner.ms(target),
            runner.ms(row.cpu_warm.median), runner.ms(row.cpu_cold.median),
            f"{row.rss / 1024:.1f}MB",
            f"{row.inproc_warm.best * 1000:.1f}ms",
            f"{row.inproc_cold.best * 1000:.1f}ms",
            "" if row.wall_warm.median <= target else "over"])
    runner.table(
        ["VMs", "regions", "entries", "KB", "wall warm", "wall no-cache",
         "target", "CPU warm", "CPU no-cache", "peak RSS",
         "in-proc warm", "in-proc no-cache", ""],
        body, left=0)
    print(f"wall/CPU: whole acrn-shm process, median of {runs['warm']} "
          f"(no-cache: {runs['cold']}); target: the 80 ms cold-lint target "
          f"of one pair, beside the warm wall time ('over' if above);")
    print(f"in-proc: CPU time of Linter().lint in the benchmark process, "
          f"best of {rows[0].inproc_warm.runs}; entries: IVSHMEM_VM "
          f"elements (VMs x regions)")
    measures = (("in-proc warm", "inproc_warm"),
                ("in-proc no-cache", "inproc_cold"),
                ("CLI CPU warm", "cpu_warm"),
                ("CLI CPU no-cache", "cpu_cold"))
    for label, unit, points in series(rows):
        caveat = "; --quick has few runs, the full run decides"
        print(f"growth, {label} (of the values in the table"
              f"{caveat if quick else ''}):")
        verdicts = {}
        for name, field in measures:
            stats = [getattr(r, field) for r in points]
            xy = [(r.vms if unit == "VM" else r.regions,
                   s.median if name.startswith("CLI") else s.best)
                  for r, s in zip(points, stats)]
            per_unit, verdicts[name] = growth(
                xy, NOISE_FLOOR * min(t for _, t in xy))
            values = " ".join(f"{t * 1000:.1f}" for _, t in xy)
            print(f"  {name:<17} {per_unit * 1000:+6.2f} ms per {unit:<6} "
                  f"{verdicts[name]}  (ms: {values})")
        print(f"  => in-process growth with {unit}s: "
              f"{verdicts['in-proc warm']} (cache warm), "
              f"{verdicts['in-proc no-cache']} (no cache); a whole "
              f"process spends "
              f"{min(r.cpu_warm.best for r in points) * 1000:.0f} ms CPU "
              f"or more, mostly start-up")
    if not quick:  # the whole grid: cost per VM and per entry at once
        print("grid fit, in-process (best runs), t = a + b*VMs + "
              "c*entries:")
        for name, field in measures[:2]:
            features = [[1.0, r.vms, r.members] for r in rows]
            times = [getattr(r, field).best for r in rows]
            a, b, c = solve(features, times)
            worst = max(abs(t - (a + b * f[1] + c * f[2]))
                        for f, t in zip(features, times))
            print(f"  {name:<17} {a * 1000:.1f} ms {b * 1000:+.2f} ms/VM "
                  f"{c * 1000:+.3f} ms/entry (largest miss "
                  f"{worst * 1000:.1f} ms)")
