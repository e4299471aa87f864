"""Real editors: Debian's Neovim (its built-in LSP client) and Emacs
(eglot), headless, each started with the configuration that
docs/editors.md gives, open a scenario with a 3 MB region and show
ISM201 at the right place."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT
from lsp_client import whl_with_3mb_region

DATA = Path(__file__).parent / "test_lsp_editors"
MESSAGE = ("region 'shm_region_0' size '3' is not a power of two from 2 to "
           "512 (MB)\nhint: use one of 2, 4, 8, 16, 32, 64, 128, 256, 512")


def editor(name: str, package: str) -> str:
    """The editor's path; skip (fail in CI) when it is missing."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("ACRN_SHM_REQUIRE_TOOLS"):
            pytest.fail(f"{name} is missing (apt-get install {package})")
        pytest.skip(f"{name} is missing (Debian package {package})")
    return found


@pytest.fixture
def scenario(acrn_data, tmp_path) -> Path:
    return whl_with_3mb_region(acrn_data, tmp_path)


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean home, and acrn-shm on PATH as after pip install."""
    return dict(os.environ, HOME=str(tmp_path / "home"),
                XDG_CONFIG_HOME=str(tmp_path / "cfg"),
                XDG_DATA_HOME=str(tmp_path / "data"),
                XDG_STATE_HOME=str(tmp_path / "state"),
                PATH=f"{Path(sys.executable).parent}{os.pathsep}"
                f"{os.environ.get('PATH', '')}", **extra)


@pytest.mark.parametrize("name", ["init.lua", "acrn-shm.el"])
def test_the_documented_config_is_the_tested_one(name):
    guide = (PROJECT / "docs" / "editors.md").read_text(encoding="utf-8")
    assert (DATA / name).read_text(encoding="utf-8") in guide


def test_neovim_shows_the_size_finding(scenario, tmp_path):
    nvim = editor("nvim", "neovim")
    out = tmp_path / "diagnostics.json"
    done = subprocess.run(
        [nvim, "--headless", "-n", "-i", "NONE", "-u",
         str(DATA / "init.lua"), str(scenario), "-c",
         f"luafile {DATA / 'report.lua'}"],
        cwd=tmp_path, env=environment(tmp_path, ACRN_SHM_NVIM_OUT=str(out)),
        capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text()) == {"waited": True, "diagnostics": [{
        "lnum": 30, "col": 24, "severity": 1, "source": "acrn-shm",
        "code": "ISM201", "message": MESSAGE}]}


def test_emacs_eglot_shows_the_size_finding(scenario, tmp_path):
    emacs = editor("emacs", "emacs-nox elpa-eglot")
    done = subprocess.run(
        [emacs, "--batch", "-l", str(DATA / "acrn-shm.el"), str(scenario),
         "-l", str(DATA / "report.el")],
        cwd=tmp_path, env=environment(tmp_path), capture_output=True,
        text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    if "Cannot open load file" in done.stderr and "eglot" in done.stderr:
        if os.environ.get("ACRN_SHM_REQUIRE_TOOLS"):
            pytest.fail("eglot is missing (apt-get install elpa-eglot)")
        pytest.skip("eglot is missing (Debian package elpa-eglot; built "
                    "into Emacs 29 and later)")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"31:24: acrn-shm [ISM201]: {MESSAGE}\n"
