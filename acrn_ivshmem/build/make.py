"""Run ACRN's make: its output logged in full, read into
:class:`BuildEvent` progress (phases, objects compiled), and its last
error lines kept when it fails (:class:`MakeFailed`)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from ..errors import AcrnShmError
from .plan import BuildPlan

_ERROR_LINES_KEPT = 10


class MakeFailed(AcrnShmError):
    """ACRN's make failed: its ``status``, the ``log_path`` with the full
    output and the last ``error_lines``."""

    def __init__(self, status: int, log_path: str,
                 error_lines: tuple[str, ...]):
        super().__init__(f"make failed with exit status {status}; full "
                         f"log: {log_path}")
        self.status = status
        self.log_path = log_path
        self.error_lines = error_lines


class Phase(str, Enum):
    """A step of ``acrn-shm build``, in the order they happen."""

    LINTING = "linting"
    CHECKING = "checking"
    CONFIGURING = "configuring"
    VALIDATING = "validating"
    GENERATING = "generating"
    COMPILING = "compiling"
    LINKING = "linking"
    VERIFYING = "verifying"
    DONE = "done"


_PHASE_ORDER = {phase: index for index, phase in enumerate(Phase)}


@dataclass(frozen=True)
class BuildEvent:
    """Progress: the ``phase``, seconds since the build started,
    objects compiled so far and what happens now (``detail``)."""

    phase: Phase
    elapsed: float
    objects: int = 0
    detail: str = ""


OnEvent = Callable[[BuildEvent], None]

_COMPILE = re.compile(
    r"^\s*\S*(?:cc|gcc|clang)(?=\s).*?\s-c\s.*?\s-o\s+(\S+\.o)(?:\s|$)")
_LINK = re.compile(r"\s-o\s+\S*?(acrn\.out)(?:\s|$)")
_OBJCOPY = re.compile(r"^\s*\S*objcopy\s.*\s(\S+)\s*$")
_FETCHED = re.compile(r"^(Board|Scenario|Scneario) XML is .*fetched from")
_GENERATED = re.compile(r"^(\S+) generated$")
_GENERATING = re.compile(r"^Generating (\S+?):?$")
_MESSAGES = (
    (re.compile(r"^Validating scenario configurations"), Phase.VALIDATING,
     "scenario"),
    (re.compile(r"^Board configurations for .* successfully"),
     Phase.GENERATING, "board configuration"),
    (re.compile(r"^Scenario configuration files were created"),
     Phase.GENERATING, "scenario configuration"),
    (re.compile(r"(?i)^(start to )?generate .*ACPI"), Phase.GENERATING,
     "ACPI tables"),
    (re.compile(r"^Start pre-build static check"), Phase.GENERATING,
     "pre-build check"),
    (re.compile(r"genld\.sh"), Phase.LINKING, "link script"),
)
_ERROR = re.compile(r"(?i)\berrors?\b|\*\*\*|^Traceback|\bnot found\b")


def classify_line(line: str) -> tuple[Phase, str, str | None] | None:
    """What a make output line shows: (phase, detail, object file or
    None), or None for a line that shows no progress."""
    line = line.rstrip()
    match = _COMPILE.match(line)
    if match:
        return Phase.COMPILING, match.group(1), match.group(1)
    match = _LINK.search(line)
    if match:
        return Phase.LINKING, match.group(1), None
    match = _OBJCOPY.match(line)
    if match:
        return Phase.LINKING, os.path.basename(match.group(1)), None
    match = _FETCHED.match(line)
    if match:
        return Phase.CONFIGURING, f"{match.group(1).lower()} XML", None
    match = _GENERATED.match(line) or _GENERATING.match(line)
    if match:
        return Phase.GENERATING, os.path.basename(match.group(1)), None
    for pattern, phase, detail in _MESSAGES:
        if pattern.search(line):
            return phase, detail, None
    return None


def is_error_line(line: str) -> bool:
    """True for a line that reports a failure (not a command echo)."""
    return bool(_ERROR.search(line)) and classify_line(line) is None


class ProgressTracker:
    """Folds make output lines into :class:`BuildEvent` values.

    The phase only moves forward; compiled objects are counted once and
    named relative to ``hv_dir``.
    """

    def __init__(self, started: float, clock: Callable[[], float],
                 hv_dir: str = ""):
        self.started = started
        self.clock = clock
        self.prefix = hv_dir.rstrip("/") + "/" if hv_dir else ""
        self.phase = Phase.CONFIGURING
        self.objects: set[str] = set()
        self.detail = ""

    def feed(self, line: str) -> BuildEvent | None:
        """The event ``line`` causes, or None when nothing changed."""
        seen = classify_line(line)
        if seen is None:
            return None
        phase, detail, obj = seen
        if obj is not None:
            obj = os.path.normpath(obj)
            if obj in self.objects:
                return None
            self.objects.add(obj)
            detail = obj.removeprefix(self.prefix)
        if _PHASE_ORDER[phase] > _PHASE_ORDER[self.phase]:
            self.phase = phase
        elif phase != self.phase:
            return None
        self.detail = detail
        return self.event()

    def event(self, detail: str | None = None) -> BuildEvent:
        """An event for now, in the current phase."""
        return BuildEvent(self.phase,
                          round(self.clock() - self.started, 3),
                          len(self.objects),
                          self.detail if detail is None else detail)


def last_error_lines(lines: list[str],
                     keep: int = _ERROR_LINES_KEPT) -> tuple[str, ...]:
    """The last ``keep`` distinct error lines, in output order."""
    found: dict[str, None] = {}
    for line in lines:
        line = line.rstrip()
        if is_error_line(line):
            found.pop(line, None)
            found[line] = None
    return tuple(found)[-keep:]


@dataclass(frozen=True)
class MakeRun:
    """A successful make: wall time in seconds, objects compiled."""

    seconds: float
    objects: int


def run_make(plan: BuildPlan, on_event: OnEvent | None = None,
             environ: Mapping[str, str] | None = None,
             started: float | None = None) -> MakeRun:
    """Run ACRN's make, log all output and report progress.

    ``started`` is the monotonic time events count from (default: now).
    Raises :class:`MakeFailed` when make fails.
    """
    environ = os.environ if environ is None else environ
    clock = time.monotonic
    started = clock() if started is None else started
    make_started = clock()
    tracker = ProgressTracker(started, clock, plan.hv_dir)
    emit = on_event or (lambda event: None)
    os.makedirs(plan.out, exist_ok=True)
    # Python block-buffers into a pipe; progress should arrive live.
    env = dict(environ, PATH=plan.make_path, PYTHONUNBUFFERED="1")
    recent: list[str] = []
    with open(plan.log_path, "w", encoding="utf-8") as log:
        log.write(f"# acrn-shm build: ACRN {plan.version} at "
                  f"{plan.acrn_src}\n# {' '.join(plan.command)}\n"
                  f"# PATH={plan.make_path}\n")
        emit(tracker.event(detail="make"))
        process = subprocess.Popen(
            plan.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, text=True,
            errors="replace", start_new_session=True)
        try:
            for line in process.stdout:
                log.write(line)
                recent.append(line)
                del recent[:-2000]
                event = tracker.feed(line)
                if event is not None:
                    emit(event)
            status = process.wait()
        except BaseException:
            # make runs in its own session: stop it and its children.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait()
            raise
        finally:
            process.stdout.close()
    if status != 0:
        raise MakeFailed(status, plan.log_path, last_error_lines(recent))
    return MakeRun(round(clock() - make_started, 3),
                   len(tracker.objects))
