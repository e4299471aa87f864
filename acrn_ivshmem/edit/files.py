"""One region edit of one file as a library call: lock, read, gate, and
save atomically unless previewing or refused.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EditOutcome:
    """What :func:`edit_file` did: the bytes before and after the edit,
    the edit's one-line ``summary``, the error findings the edit
    ``added`` and whether the file was ``written``."""
    path: str
    before: bytes
    after: bytes
    summary: str
    added: list
    written: bool


def edit_file(path: str, change, *, board: str | None = None,
              config=None, preview: bool = False,
              force: bool = False) -> EditOutcome:
    """Apply ``change(document, board_model)`` to the file ``path``.

    The file is locked for the whole call, read and edited in memory
    through :func:`~acrn_ivshmem.edit.gate.gate_edit`. It is saved
    atomically (keeping owner and mode) unless ``preview`` is true or
    the edit adds an error and ``force`` is false; ``written`` tells
    which. ``config`` defaults to the built-in lint configuration.
    Unreadable input raises :class:`~acrn_ivshmem.errors.AcrnShmError`.
    """
    from ..io.xmlio import locked, read_bytes, save_atomic
    from ..lint.config import load_config
    from .gate import gate_edit

    with locked(path):
        before = read_bytes(path)
        gated = gate_edit(path, before, board, change,
                          load_config(None) if config is None else config)
        result, added = gated.result, gated.added
        written = not preview and (force or not added)
        if written:
            save_atomic(path, result.data, before)
    return EditOutcome(path, before, result.data, result.summary,
                       list(added), written)
