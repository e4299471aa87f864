"""acrn-shm's language server (``acrn-shm lsp``): lint findings as
diagnostics while a scenario, board or launch XML is typed, quick fixes,
hover, completion and navigation for IVSHMEM regions.

pygls and lsprotocol are imported only when the server starts, so the
other commands do not pay for them.
"""

from __future__ import annotations


def serve(use_cache: bool = True) -> int:
    """Run the server on stdin and stdout; return the exit status."""
    from .server import serve as run

    return run(use_cache)
