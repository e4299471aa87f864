"""Helpers shared by the benchmarks: run, time and tabulate.

:func:`command` finds the ``acrn-shm`` of this interpreter,
:func:`run_once` runs a process and returns its wall and CPU time, exit
status and peak RSS (of that process alone, measured from a small
launcher), :func:`timed` takes the medians
of several runs, and :func:`table` prints rows under aligned headers.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple


def command() -> list[str]:
    """The acrn-shm command of this interpreter's environment."""
    script = Path(sys.executable).parent / "acrn-shm"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "acrn_ivshmem"]


class Run(NamedTuple):
    """One finished process: wall and CPU (user + system) seconds, exit
    status, peak RSS (KB) of that process alone, and its stderr."""

    wall: float
    cpu: float
    code: int
    rss: int
    stderr: str


# Runs argv[1:] with its output discarded and prints "status utime
# stime maxrss wall". A process's peak RSS counts that of the process
# it was forked from (Linux keeps the larger at exec), so the measured
# one is forked from this small interpreter (python -S: some 10 MB),
# not from a benchmark that may hold far more.
_LAUNCHER = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.execvpe(sys.argv[1], sys.argv[1:], os.environ)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_utime, usage.ru_stime,
      usage.ru_maxrss, time.perf_counter() - start)
"""


def run_once(argv: list[str], env: dict) -> Run:
    """Run ``argv`` with its output discarded and stderr kept."""
    done = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, *argv],
                          env=env, capture_output=True, check=False)
    figures = done.stdout.split()
    stderr = done.stderr.decode(errors="replace")
    if len(figures) != 5:
        raise SystemExit(f"could not measure {' '.join(argv)}: {stderr}")
    code, utime, stime, rss, wall = figures
    return Run(float(wall), float(utime) + float(stime), int(code),
               int(rss), stderr)


class Timing(NamedTuple):
    """Medians of several runs: wall and CPU seconds; and the peak RSS
    (KB) of all child processes so far."""

    wall: float
    cpu: float
    rss: int


def timed(argv: list[str], runs: int, env: dict,
          ok: tuple[int, ...] = (0, 1)) -> Timing:
    """Run ``argv`` ``runs`` times (exit status outside ``ok`` aborts)."""
    done = []
    for _ in range(runs):
        run = run_once(argv, env)
        done.append(run)
        if run.code not in ok:
            raise SystemExit(f"failed ({run.code}): {' '.join(argv)}\n"
                             f"{run.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return Timing(statistics.median(run.wall for run in done),
                  statistics.median(run.cpu for run in done), peak)


def ms(seconds: float) -> str:
    """``seconds`` as whole milliseconds, e.g. ``'83ms'``."""
    return f"{seconds * 1000:.0f}ms"


def table(headers: list[str], rows: list[list[str]],
          left: int = 1) -> None:
    """Print ``rows`` under ``headers``; the first ``left`` columns are
    left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows])
              for i in range(len(headers))]

    def line(cells):
        parts = [str(c).ljust(w) if i < left else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, e.g. ``'0.52 1.10 2.03'``."""
    try:
        with open("/proc/loadavg", encoding="ascii") as stream:
            return " ".join(stream.read().split()[:3])
    except OSError:
        return "n/a"
