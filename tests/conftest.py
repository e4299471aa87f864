"""Shared fixtures: clean environment, data folders, a lint helper."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from acrn_ivshmem.lint.config import LintConfig
from acrn_ivshmem.lint.engine import lint

TESTS = Path(__file__).parent
PROJECT = TESTS.parent
SHARED = PROJECT.parent / "shared"
ACRN_DATA = SHARED / "acrn-data"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No ACRN_* settings leak in; HOME and the cache are per test."""
    for name in list(os.environ):
        if name.startswith("ACRN"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ACRN_SHM_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def acrn_data() -> Path:
    """The real ACRN XMLs beside the project (../shared/acrn-data)."""
    if not ACRN_DATA.is_dir():
        pytest.skip(f"{ACRN_DATA} is missing")
    return ACRN_DATA


def run_acrn_shm(argv: list[str], cwd: Path,
                 **env: str) -> subprocess.CompletedProcess:
    """Run ``acrn-shm ARGV`` in ``cwd`` as a new process, text output."""
    return subprocess.run(
        [sys.executable, "-m", "acrn_ivshmem", *argv], cwd=cwd,
        env=dict(os.environ, COLUMNS="100", NO_COLOR="1", TERM="dumb", **env),
        capture_output=True, text=True, timeout=120)


def positions(paths, board=None, select=("ALL",)):
    """Lint ``paths`` and return ``(line, column, code)`` of every finding."""
    result = lint([str(p) for p in paths], str(board) if board else None,
                  LintConfig(select=tuple(select)))
    assert not result.errors, result.errors
    return [(d.line, d.column, d.code) for d in result.diagnostics]
