"""Every subpackage of acrn_ivshmem is listed in pyproject.toml, so a
non-editable install (CI, users) carries all of it."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import PROJECT


def test_every_subpackage_is_packaged():
    text = (PROJECT / "pyproject.toml").read_text()
    packages = text.split("packages = [", 1)[1].split("]", 1)[0]
    listed = set(re.findall(r'"([\w.]+)"', packages))
    package = PROJECT / "acrn_ivshmem"
    found = {".".join(("acrn_ivshmem",
                       *init.parent.relative_to(package).parts))
             for init in package.rglob("__init__.py")}
    assert listed == found | {"acrn_ivshmem.schemas",
                              "acrn_ivshmem.rule_pages"}


def test_lower_bounds_pin_every_dependency():
    # CI's second venv installs these pins (.ci/run): each dependency at
    # the oldest version pyproject.toml allows.
    done = subprocess.run(
        [sys.executable, str(PROJECT / ".ci" / "lower-bounds"), "test"],
        capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [
        "lxml==6.0", "xmlschema==3.3", "typer==0.24", "rich==13",
        "tomli==2 ; python_version < '3.11'", "pygls==2.0",
        "lsprotocol==2025.0.0", "pytest==8",
        "hypothesis==6.85", "pre-commit==3"]
