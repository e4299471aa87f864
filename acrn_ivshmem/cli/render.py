"""Output helpers of the ``acrn-shm`` commands: plain rich consoles,
the terminal width, unified diffs."""

import os
import sys


def plain_console(**options):
    """A rich console that prints text as given: file text may hold
    ``[markup]`` or ``:emoji:`` codes, which rich would interpret."""
    from rich.console import Console

    return Console(markup=False, emoji=False, highlight=False, **options)


def columns() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def write_diff(path: str, before: bytes, after: bytes) -> None:
    import difflib

    sys.stdout.writelines(difflib.unified_diff(
        before.decode("utf-8", "replace").splitlines(True),
        after.decode("utf-8", "replace").splitlines(True),
        fromfile=f"a/{path}", tofile=f"b/{path}"))
