"""Build the ACRN hypervisor for a board and a scenario with ACRN's make.

:func:`build` runs the steps below in order and stops at the first one
that fails, raising a subclass of :class:`~acrn_ivshmem.errors.AcrnShmError`
with a one-line message:

1. :func:`.plan.plan_build`: read the ACRN version from the tree's
   ``VERSION`` file, choose how make is told the inputs
   (``BOARD=``/``SCENARIO=`` paths since ACRN 2.4,
   ``BOARD_FILE=``/``SCENARIO_FILE=`` in 2.2-2.3), check that the
   scenario's format fits the tree and work out the board and scenario
   names ACRN will use.
2. :func:`.plan.lint_inputs`: lint the scenario with its board; any
   error stops the build (:class:`~.plan.LintFailed`).
3. :func:`.prereqs.check_prerequisites`: the tools and Python modules
   ACRN's make runs, all missing ones reported at once
   (:class:`~.prereqs.MissingPrerequisites`). The Python checked is the
   ``python3`` make will find on its PATH.
4. :func:`.builddir.check_build_dir`: a build folder that remembers
   another board or scenario (ACRN issue #7345) is refused before make
   (:class:`~.builddir.StaleBuildDir`); :func:`.builddir.clean_build_dir`
   removes it.
5. :func:`.make.run_make`: ACRN's make, its output parsed into
   :class:`~.make.BuildEvent` progress and written to
   ``<out>/acrn-shm-build.log`` (:class:`~.make.MakeFailed` with the last
   error lines).
6. :func:`.verify.list_artefacts` and :func:`.verify.check_ivshmem_config`:
   the images exist, and the generated ``ivshmem_cfg.h`` lists exactly
   the scenario's hypervisor-provided regions
   (:class:`~.verify.IvshmemMismatch`).

Facts used (ACRN ``projectacrn/acrn-hypervisor``): ``Makefile@v3.3``,
``hypervisor/scripts/makefile/config.mk@v2.4..v3.3`` (names, conflict
check, root-tag rewrite), ``Makefile@v2.3`` and
``hypervisor/scripts/makefile/{cfg_update,kconfig}.mk@v2.3``,
``misc/config_tools/xforms/ivshmem_cfg.h.xsl@v3.3`` and
``misc/acrn-config/scenario_config/ivshmem_cfg_h.py@v2.3``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ..lint.config import LintConfig
from ..lint.engine import Linter, LintResult
from .builddir import check_build_dir, clean_build_dir
from .make import BuildEvent, MakeRun, OnEvent, Phase, run_make
from .plan import BuildPlan, BuildRequest, ShmRegion, lint_inputs, plan_build
from .prereqs import check_prerequisites
from .verify import Artefact, check_ivshmem_config, list_artefacts


@dataclass(frozen=True)
class BuildResult:
    """A successful build: the plan, the lint result (warnings may be
    left), the images, the verified ``ivshmem_cfg.h`` and its regions,
    whether an old build folder was removed, the make run and the wall
    time of the whole build in seconds."""

    plan: BuildPlan
    lint: LintResult
    artefacts: tuple[Artefact, ...]
    ivshmem_header: str
    regions: tuple[ShmRegion, ...]
    cleaned: bool
    make: MakeRun
    seconds: float


def build(request: BuildRequest, on_event: OnEvent | None = None,
          environ: Mapping[str, str] | None = None,
          lint_config: LintConfig | None = None) -> BuildResult:
    """Lint, check, run ACRN's make and verify the result; see the
    module docstring for the steps and the exceptions they raise."""
    environ = os.environ if environ is None else environ
    clock = time.monotonic
    started = clock()
    emit = on_event or (lambda event: None)

    def step(phase: Phase, detail: str = "", objects: int = 0) -> None:
        emit(BuildEvent(phase, round(clock() - started, 3), objects,
                        detail))

    linter = Linter(lint_config)
    plan = plan_build(request, environ, linter)
    step(Phase.LINTING, request.scenario)
    lint_result = lint_inputs(plan, linter=linter)
    step(Phase.CHECKING, "prerequisites")
    check_prerequisites(plan, environ)
    cleaned = False
    if request.clean:
        step(Phase.CHECKING, f"removing {plan.hv_dir}")
        cleaned = clean_build_dir(plan)
    else:
        step(Phase.CHECKING, plan.hv_dir)
        check_build_dir(plan)
    make = run_make(plan, emit, environ, started)
    step(Phase.VERIFYING, "artefacts", make.objects)
    artefacts = list_artefacts(plan)
    step(Phase.VERIFYING, "ivshmem_cfg.h", make.objects)
    header, regions = check_ivshmem_config(plan)
    step(Phase.DONE, "", make.objects)
    return BuildResult(plan, lint_result, artefacts, header, regions,
                       cleaned, make, round(clock() - started, 3))
