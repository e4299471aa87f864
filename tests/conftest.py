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


#: CI installs what the QEMU end-to-end tests need (.ci/install-e2e) and
#: sets this: there a missing tool fails a test instead of skipping it.
#: Read at import: the autouse fixture clears ACRN_* before each test.
REQUIRE_TOOLS = bool(os.environ.get("ACRN_SHM_REQUIRE_TOOLS"))


def require(missing: str | None) -> None:
    """Skip the running test when ``missing`` says what it lacks (None:
    nothing); in CI (:data:`REQUIRE_TOOLS`) fail it instead."""
    if missing is None:
        return
    if REQUIRE_TOOLS:
        pytest.fail(f"{missing}; .ci/install-e2e should have installed it")
    pytest.skip(f"{missing}; or run .ci/install-e2e")


def tools_mark(missing: str | None):
    """``pytestmark`` for a module whose tests all need tools: skipped
    (before any fixture) when ``missing`` says what is not there, failed
    in CI (:data:`REQUIRE_TOOLS`)."""
    if missing is not None and REQUIRE_TOOLS:
        return pytest.mark.usefixtures("fail_missing_tools")
    return pytest.mark.skipif(missing is not None,
                              reason=f"{missing}; or run .ci/install-e2e")


@pytest.fixture
def fail_missing_tools(request):
    """Fail (not skip) when CI lacks what the module's tests need (its
    ``MISSING``)."""
    require(request.module.MISSING)


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
