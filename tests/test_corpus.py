"""Every real ACRN file in ../shared/acrn-data loads and lints clean."""

from __future__ import annotations

import pytest
from conftest import ACRN_DATA

from acrn_ivshmem.lint.engine import lint
from acrn_ivshmem.model.loader import load
from acrn_ivshmem.model.syntax import Board, LaunchConfig, Scenario


def corpus(kind: str):
    """(folder, file name) pairs of the corpus: boards or scenarios."""
    if not ACRN_DATA.is_dir():
        return []
    found = []
    for version in ("v2.7", "v3.3"):
        for folder in sorted((ACRN_DATA / version).iterdir()):
            for path in sorted(folder.glob("*.xml")):
                is_board = path.stem == folder.name
                if kind == "board" and is_board:
                    found.append(path)
                if kind == "scenario" and not is_board and not (
                        version == "v2.7" and "_launch_" in path.name):
                    found.append(path)
    return found


@pytest.mark.parametrize("path", corpus("board"),
                         ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_every_board_loads(path):
    board = load(str(path)).model
    assert isinstance(board, Board)
    assert board.name == path.parent.name
    assert board.native_bdfs


@pytest.mark.parametrize(
    "path", corpus("scenario"),
    ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.stem}")
def test_every_scenario_lints_clean_with_its_board(path):
    model = load(str(path)).model
    assert isinstance(model, Scenario)
    assert model.format == ("legacy" if "v2.7" in str(path) else "v3")
    board = path.parent / f"{path.parent.name}.xml"
    result = lint([str(path)], str(board))
    assert result.errors == ()
    assert result.diagnostics == ()


def test_corpus_is_complete():
    if not ACRN_DATA.is_dir():
        pytest.skip(f"{ACRN_DATA} is missing")
    assert len(corpus("board")) == 8
    assert len(corpus("scenario")) == 32


def test_whole_folders_lint_clean(acrn_data):
    folders = sorted(str(p) for v in ("v2.7", "v3.3")
                     for p in (acrn_data / v).iterdir())
    result = lint(folders)
    assert result.errors == ()
    assert result.diagnostics == ()
    assert result.files == 50  # 8 boards, 32 scenarios, 10 launch XMLs


def test_launch_xmls_load(acrn_data):
    for path in sorted((acrn_data / "v2.7").glob("*/*_launch_*.xml")):
        assert isinstance(load(str(path)).model, LaunchConfig)
