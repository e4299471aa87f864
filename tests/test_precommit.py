"""The pre-commit hook, run by pre-commit itself on staged files.

``pre-commit try-repo`` installs the hook from this repository (its
committed state plus the uncommitted changes) into its own virtualenv,
as a user's ``.pre-commit-config.yaml`` would, and runs it on the files
staged in a scratch repository. Needs ``pre-commit`` (a test extra), git
and PyPI (or pip's cache) for the hook's environment.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT, run_acrn_shm

PRE_COMMIT = Path(sys.executable).parent / "pre-commit"
HOOKS = PROJECT / ".pre-commit-hooks.yaml"


def test_hook_definition():
    hooks = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    assert hooks == [{
        "id": "acrn-shm-lint",
        "name": "acrn-shm lint",
        "description": "Lint the shared-memory (IVSHMEM) regions of ACRN "
                       "scenario XMLs.",
        "entry": "acrn-shm lint --skip-other-xml",
        "language": "python",
        "types": ["xml"],
        "require_serial": True,
    }]
    # The page that documents it names the same hook id.
    assert "- id: acrn-shm-lint" in (
        PROJECT / "docs" / "ci.md").read_text(encoding="utf-8")


def git(*argv: str, cwd: Path) -> str:
    return subprocess.run(["git", *argv], cwd=cwd, check=True, text=True,
                          capture_output=True).stdout


@pytest.fixture
def scratch(tmp_path) -> Path:
    """A user's repository with a clean pair, a broken scenario beside a
    board, and a Maven pom.xml, all staged."""
    if not PRE_COMMIT.exists():
        pytest.skip(f"{PRE_COMMIT} is missing (pip install pre-commit)")
    if shutil.which("git") is None or not (PROJECT / ".git").exists():
        pytest.skip("needs git and a git checkout of acrn-shm")
    repo = tmp_path / "user-repo"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    for folder in ("clean", "broken"):
        (repo / folder).mkdir()
        shutil.copy(PROJECT / "board-xmls" / "demo-nuc.xml", repo / folder)
        shutil.copy(PROJECT / "scenario-xmls" / "hybrid_rt_v3.xml",
                    repo / folder)
    broken = repo / "broken" / "hybrid_rt_v3.xml"
    broken.write_text(broken.read_text().replace(
        "<IVSHMEM_SIZE>2<", "<IVSHMEM_SIZE>3<"))
    (repo / "pom.xml").write_text("<project/>\n")
    git("add", ".", cwd=repo)
    return repo


def test_hook_fails_on_a_staged_error_and_skips_other_xml(scratch,
                                                          tmp_path):
    env = dict(os.environ, PRE_COMMIT_HOME=str(tmp_path / "home"),
               NO_COLOR="1")
    # Installs the hook from this checkout, as a user's config would.
    done = subprocess.run(
        [str(PRE_COMMIT), "try-repo", str(PROJECT), "acrn-shm-lint",
         "--color", "never"],
        cwd=scratch, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    report = done.stdout.split("- exit code: 1\n", 1)[1]
    # One call for all files; each scenario linted with the board beside
    # it (no ISM002), pom.xml skipped without a word.
    assert re.search(r"^acrn-shm lint\.+Failed$", done.stdout, re.M)
    assert report.strip() == (
        "broken/hybrid_rt_v3.xml:22:25: ISM201 [error] region "
        "'shm_region_0' size '3' is not a power of two from 2 to 512 (MB)\n"
        "    hint: use one of 2, 4, 8, 16, 32, 64, 128, 256, 512\n"
        "1 error in 4 files\n1 fixable only with --unsafe-fixes")


# --- lint --skip-other-xml, the hook's entry ----------------------------

LAUGHS = (PROJECT / "tests" / "test_xmlio" / "billion_laughs.xml").read_text()


@pytest.mark.parametrize("files, status, out, err", [
    # Nothing of ACRN's staged: nothing to say.
    ({"pom.xml": "<project/>\n"}, 0, "", ""),
    # Another XML with a DTD bomb is skipped after its root tag, never
    # expanded.
    ({"lolz.xml": LAUGHS.replace("acrn-config", "lolz")}, 0, "", ""),
    # An ACRN file with a DOCTYPE is linted, and refused as always.
    ({"pom.xml": "<project/>\n",
      "acrn.xml": LAUGHS}, 2, "",
     "acrn-shm: error: acrn.xml:2:1: a DOCTYPE declaration is not allowed "
     "(acrn-shm reads no DTDs or entities)\n"),
    # What cannot be read as far as a root is lint's to report.
    ({"broken.xml": "<acrn-config"}, 2, "",
     "acrn-shm: error: broken.xml:1:13: not well-formed XML: Couldn't "
     "find end of Start Tag acrn-config line 1\n"),
    ({"empty.xml": ""}, 2, "", "acrn-shm: error: empty.xml: file is empty\n"),
])
def test_skip_other_xml(files, status, out, err, tmp_path):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    done = run_acrn_shm(["lint", "--skip-other-xml", *files], tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (status, out, err)


def test_skip_other_xml_keeps_missing_files_an_error(tmp_path):
    done = run_acrn_shm(["lint", "--skip-other-xml", "gone.xml"], tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (
        2, "", "acrn-shm: error: gone.xml: no such file\n")
