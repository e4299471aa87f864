"""``acrn-shm build``: lint, then ACRN's own make."""

import sys

from ..errors import AcrnShmError, escaped
from .exits import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, exit_status
from .render import plain_console
from .spec import Command, Option


def run_build(request) -> int:
    """Drive ACRN's make with a live status line; report the outcome."""

    from ..build.hypervisor import build
    from ..build.make import MakeFailed
    from ..build.plan import LintFailed
    from ..build.prereqs import MissingPrerequisites
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
            result = build(request, on_event,
                           lint_config=load_config(None))
    except LintFailed as exc:
        sys.stderr.write(text(exc.result.diagnostics, exc.result.files,
                              fix_summary=False))
        sys.stderr.write(f"acrn-shm: {escaped(str(exc))}\n")
        return EXIT_FINDINGS
    except MakeFailed as exc:
        for line in exc.error_lines:
            sys.stderr.write(f"  {line}\n")
        sys.stderr.write(f"acrn-shm: {escaped(str(exc))}\n")
        return EXIT_FINDINGS
    except MissingPrerequisites as exc:
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
        sys.stderr.write(text(warnings, result.lint.files, fix_summary=False))
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


def run_build_command(acrn_src: str, board: str, scenario: str,
                      out: str | None, release: bool, jobs: int | None,
                      python: str | None, clean: bool,
                      args: list[str]) -> int:
    """``acrn-shm build``: its options, and extra make arguments after
    ``--`` (``args``), as a build request."""
    from ..build.plan import BuildRequest

    if args and args[0] == "--":
        args = args[1:]
    return run_build(BuildRequest(acrn_src, board, scenario, out, release,
                                  jobs, python, clean, tuple(args)))


BUILD = Command("build", run_build_command, (
    Option("acrn_src", ("--acrn-src",), metavar="DIR", required=True,
           help="An ACRN source tree (acrn-hypervisor checkout)."),
    Option("board", ("--board",), metavar="BOARD.xml", required=True,
           help="The board XML."),
    Option("scenario", ("--scenario",), metavar="SCENARIO.xml",
           required=True, help="The scenario XML."),
    Option("out", ("--out",), metavar="DIR",
           help="ACRN's O=: artefacts land in DIR/hypervisor."),
    Option("release", ("--release",), bool, False,
           help="RELEASE=y (default: a debug build)."),
    Option("jobs", ("--jobs", "-j"), int, metavar="N", help="make -jN."),
    Option("python", ("--python",), metavar="PATH",
           help="Python for ACRN's scripts (needs elementpath<3, "
           "xmlschema<2); default $ACRN_SHM_BUILD_PYTHON."),
    Option("clean", ("--clean",), bool, False,
           help="Remove a build folder configured for another board or "
           "scenario first."),
), """Lint, then build the ACRN hypervisor with its own make.

Extra make arguments go after --. Example: acrn-shm build
--acrn-src ~/acrn-hypervisor --board whl-ipc-i5.xml --scenario
hybrid_rt.xml --out build-hybrid""",
    extra_args=True, context_settings={
        "allow_extra_args": True, "ignore_unknown_options": True})
