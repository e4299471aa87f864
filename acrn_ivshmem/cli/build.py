"""``acrn-shm build``: lint, then ACRN's own make."""

import sys

from ..errors import AcrnShmError, escaped
from .exits import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, exit_status
from .render import plain_console


def run_build(request) -> int:
    """Drive ACRN's make with a live status line; report the outcome."""

    from ..build import hypervisor as acrn_build
    from ..lint.config import load_config
    from ..lint.formats import text

    console = plain_console(stderr=True)
    status = console.status("starting")

    def on_event(event) -> None:
        objects = f", {event.objects} objects" if event.objects else ""
        detail = f": {escaped(event.detail)}" if event.detail else ""
        status.update(f"{event.phase.value}{objects}{detail} "
                      f"[{event.elapsed:.0f} s]")

    try:
        with status:
            result = acrn_build.build(request, on_event,
                                      lint_config=load_config(None))
    except acrn_build.LintFailed as exc:
        sys.stderr.write(text(exc.result.diagnostics, exc.result.files))
        sys.stderr.write(f"acrn-shm: {escaped(str(exc))}\n")
        return EXIT_FINDINGS
    except acrn_build.MakeFailed as exc:
        for line in exc.error_lines:
            sys.stderr.write(f"  {line}\n")
        sys.stderr.write(f"acrn-shm: {escaped(str(exc))}\n")
        return EXIT_FINDINGS
    except acrn_build.MissingPrerequisites as exc:
        sys.stderr.write("acrn-shm: error: missing before make can run:\n")
        for missing in exc.missing:
            sys.stderr.write(f"  - {missing.text}\n")
        return EXIT_USAGE
    except AcrnShmError as exc:
        code = exit_status(exc)
        prefix = "acrn-shm: error: " if code == EXIT_USAGE else "acrn-shm: "
        sys.stderr.write(f"{prefix}{escaped(str(exc))}\n")
        return code
    warnings = result.lint.diagnostics
    if warnings:
        sys.stderr.write(text(warnings, result.lint.files))
    for artefact in result.artefacts:
        sys.stdout.write(f"{artefact.name}: {artefact.size} bytes "
                         f"({artefact.path})\n")
    for region in result.regions:
        sys.stdout.write(f"verified {region.name}: {region.size} bytes in "
                         f"{result.ivshmem_header}\n")
    sys.stdout.write(f"built in {result.seconds:.1f} s "
                     f"({result.make.objects} objects compiled); log: "
                     f"{result.plan.log_path}\n")
    return EXIT_OK
