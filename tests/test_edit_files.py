"""edit_file, the region edit of one file as a library call (no CLI):
a preview writes nothing, a refused edit leaves the file as it was, a
successful one saves exactly the edited bytes with the file's mode.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from acrn_ivshmem.edit.files import edit_file
from acrn_ivshmem.edit.regions import RegionSpec, add_region, remove_region
from acrn_ivshmem.errors import AcrnShmError

DATA = Path(__file__).parent / "test_edit_gate"


@pytest.fixture
def ten(tmp_path) -> Path:
    target = tmp_path / "ten_hv.xml"
    shutil.copy(DATA / "ten_hv.xml", target)
    os.chmod(target, 0o640)
    return target


def _remove_first(document, board):
    return remove_region(document, "shm_region_0")


def _add_eleventh(document, board):
    return add_region(document, RegionSpec(vms=("1", "2")), board)


def _without_region_0(data: bytes) -> bytes:
    # Lines 7 to the </IVSHMEM_REGION> closing region 0, 1-based.
    lines = data.splitlines(True)
    end = next(i for i in range(6, len(lines))
               if lines[i].strip() == b"</IVSHMEM_REGION>")
    return b"".join(lines[:6] + lines[end + 1:])


def test_a_preview_writes_nothing(ten):
    before = ten.read_bytes()
    outcome = edit_file(str(ten), _remove_first, preview=True)
    assert (outcome.written, outcome.added, outcome.summary) == (
        False, [], "removed region 'shm_region_0'")
    assert outcome.before == before
    assert outcome.after == _without_region_0(before)
    assert ten.read_bytes() == before


def test_a_refused_edit_leaves_bytes_and_mode(ten):
    before = ten.read_bytes()
    outcome = edit_file(str(ten), _add_eleventh)
    assert outcome.written is False
    assert [(d.line, d.column, d.code) for d in outcome.added] == [
        (167, 9, "ISM202")]
    assert ten.read_bytes() == before
    assert ten.stat().st_mode & 0o777 == 0o640


def test_a_forced_edit_is_written_despite_the_error(ten):
    outcome = edit_file(str(ten), _add_eleventh, force=True)
    assert outcome.written is True
    assert ten.read_bytes() == outcome.after != outcome.before


def test_a_successful_edit_saves_the_exact_bytes_keeping_the_mode(ten):
    before = ten.read_bytes()
    outcome = edit_file(str(ten), _remove_first)
    assert outcome.written is True
    assert ten.read_bytes() == _without_region_0(before)
    assert ten.stat().st_mode & 0o777 == 0o640


def test_a_missing_file_raises_the_one_error_family(tmp_path):
    with pytest.raises(AcrnShmError):
        edit_file(str(tmp_path / "absent.xml"), _remove_first)
