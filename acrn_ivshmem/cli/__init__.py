"""The ``acrn-shm`` command line (the only code that uses typer/rich).

One small module per command group declares its commands
(:class:`.spec.Command`: arguments, options, help) and holds the
``run_*`` functions they call, which call the library and print:
:mod:`.lint` (lint, rules, explain, lsp), :mod:`.regions` (add-region,
set-region, remove-region, regions, graph), :mod:`.upgrade`,
:mod:`.launch` (launch-script, check-launch), :mod:`.qemu` (qemu-args,
libvirt-xml, host-prep, qemu-try, ivshmem-server, guest), :mod:`.build`
and :mod:`.channel` (the channel group). :mod:`.app` makes the typer
application from the declarations, :mod:`.quick` the parser of the
common command lines that needs no typer; :mod:`.render` holds the
output helpers and :mod:`.exits` the exit status table: 0 clean, 1
error findings, 2 usage or input error, 130 interrupted.
"""

import os
import sys

from ..errors import AcrnShmError
from .exits import (
    EXIT_FINDINGS, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, exit_status, fail,
)

__all__ = ["EXIT_FINDINGS", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE",
           "exit_status", "main"]


def main() -> None:
    """Entry point of the ``acrn-shm`` command."""
    from .quick import QUICK_COMMANDS, run_quick

    try:
        if len(sys.argv) > 1 and sys.argv[1] in QUICK_COMMANDS:
            status = run_quick(sys.argv[1], sys.argv[2:])
            if status is not None:
                sys.exit(status)
        from .app import build_app

        build_app()(prog_name="acrn-shm")
    except AcrnShmError as exc:
        sys.exit(fail(str(exc)))
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - never a traceback for users
        if os.environ.get("ACRN_SHM_DEBUG"):
            raise
        sys.stderr.write(
            f"acrn-shm: internal error: {type(exc).__name__}: {exc} "
            "(set ACRN_SHM_DEBUG=1 for a traceback)\n")
        sys.exit(EXIT_USAGE)
