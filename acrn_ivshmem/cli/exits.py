"""The exit status of every ``acrn-shm`` command, decided here and
nowhere else in the package, and the one error line."""

import sys

from ..errors import AcrnShmError, escaped

#: The exit status of every command, decided here and nowhere else in
#: the package (the guest tool, which runs alone in a guest, uses the
#: same numbers): done, with no error finding (warnings and infos
#: allowed); error findings (lint, the edit gate, launch-script's
#: checks, a failed trial, a build that made or checked something
#: wrong); bad usage or an input that cannot be read; interrupted
#: (128 + SIGINT).
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def fail(message: str) -> int:
    """Print ``message`` as one error line (control characters, e.g. a
    newline in a path, escaped); return :data:`EXIT_USAGE`."""
    sys.stderr.write(f"acrn-shm: error: {escaped(message)}\n")
    return EXIT_USAGE


def findings_status(diagnostics) -> int:
    """:data:`EXIT_FINDINGS` when any of ``diagnostics`` is an error,
    else :data:`EXIT_OK` (warnings and infos allowed)."""
    if any(d.severity == "error" for d in diagnostics):
        return EXIT_FINDINGS
    return EXIT_OK


def exit_status(error: AcrnShmError) -> int:
    """The exit status of ``error``: :data:`EXIT_FINDINGS` when a build
    found its inputs, its make run or what it made wrong (lint errors,
    make failed, an image or ``ivshmem_cfg.h`` missing or different),
    else :data:`EXIT_USAGE`."""
    from ..build.make import MakeFailed
    from ..build.plan import LintFailed
    from ..build.verify import ArtefactError, IvshmemMismatch

    if isinstance(error, (LintFailed, MakeFailed, ArtefactError,
                          IvshmemMismatch)):
        return EXIT_FINDINGS
    return EXIT_USAGE
