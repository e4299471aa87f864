"""Every subpackage of acrn_ivshmem is listed in pyproject.toml, so a
non-editable install (CI, users) carries all of it."""

from __future__ import annotations

import re

from conftest import PROJECT


def test_every_subpackage_is_packaged():
    text = (PROJECT / "pyproject.toml").read_text()
    packages = text.split("packages = [", 1)[1].split("]", 1)[0]
    listed = set(re.findall(r'"([\w.]+)"', packages))
    package = PROJECT / "acrn_ivshmem"
    found = {".".join(("acrn_ivshmem",
                       *init.parent.relative_to(package).parts))
             for init in package.rglob("__init__.py")}
    assert listed == found | {"acrn_ivshmem.schemas"}
