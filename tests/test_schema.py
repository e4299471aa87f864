"""The xmlschema-based structure check (the oracle of the fast one) and
its caches: results keyed by the document bytes, and the built XSD
schemas, pickled, which are only loaded from the user's own, private
files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import xmlschema
from conftest import ACRN_DATA, TESTS
from lxml import etree

from acrn_ivshmem.errors import AcrnShmError
from acrn_ivshmem.io.xmlio import parse_bytes, parse_file
from acrn_ivshmem.lint import schema
from acrn_ivshmem.lint.engine import LintConfig, Linter
from acrn_ivshmem.model.loader import from_document
from acrn_ivshmem.model.syntax import Board, LaunchConfig


@pytest.fixture(autouse=True)
def fresh_schemas():
    schema._compiled.cache_clear()
    yield
    schema._compiled.cache_clear()


def documents():
    """(path, document, kind) of every ACRN XML of ../shared/acrn-data
    and of the tests' data, and of each a broken copy: every number
    replaced by "x", every third element renamed."""
    found = []
    for path in sorted([*ACRN_DATA.rglob("*.xml"), *TESTS.rglob("*.xml")]):
        try:
            document = parse_file(str(path))
            model = from_document(document)
        except AcrnShmError:
            continue
        kind = ("board" if isinstance(model, Board) else "launch"
                if isinstance(model, LaunchConfig) else model.format)
        found.append((path, document, kind))
        root = etree.fromstring(document.data)
        for index, element in enumerate(root.iter(etree.Element)):
            if (element.text or "").strip().isdigit():
                element.text = "x"
            if index % 3 == 2:
                name = etree.QName(element)
                element.tag = etree.QName(name.namespace,
                                          f"BROKEN_{name.localname}")
        found.append((path, parse_bytes(etree.tostring(root)), kind))
    return found


def test_a_pickled_schema_finds_what_a_built_one_finds(monkeypatch):
    corpus = documents()
    kinds = sorted({kind for _, _, kind in corpus})
    assert kinds == ["board", "launch", "legacy", "v3"]
    built = [schema._validate(document, kind, use_cache=False)
             for _, document, kind in corpus]
    for kind in kinds:
        schema._compiled(kind, True)  # builds, then pickles
    schema._compiled.cache_clear()
    loaded = []
    real_load = schema._load_own_pickle

    def spy(path):
        loaded.append(real_load(path))
        return loaded[-1]

    monkeypatch.setattr(schema, "_load_own_pickle", spy)
    from_pickles = [schema._validate(document, kind, use_cache=True)
                    for _, document, kind in corpus]
    assert [type(item) for item in loaded] == [xmlschema.XMLSchema11] * 4
    assert from_pickles == built
    assert sum(map(len, built)) > 40  # the broken copies
    assert len(corpus) > 300


def test_schemas_are_pickled_privately_and_only_with_the_cache():
    cache = Path(os.environ["ACRN_SHM_CACHE_DIR"])
    scenario = ACRN_DATA / "v3.3" / "whl-ipc-i5" / "hybrid_rt.xml"
    board = scenario.with_name("whl-ipc-i5.xml")
    documents = [(parse_file(str(scenario)), "v3"),
                 (parse_file(str(board)), "board")]
    for document, kind in documents:
        schema.check_structure_xsd(document, kind, use_cache=False)
    assert not cache.exists()
    for document, kind in documents:
        schema.check_structure_xsd(document, kind, use_cache=True)
    pickles = sorted(cache.glob("schema-*.pickle"))
    assert len(pickles) == 2  # the scenario's and the board's
    for path in pickles:
        assert path.stat().st_mode & 0o777 == 0o600
    assert cache.stat().st_mode & 0o777 == 0o700


def test_lint_needs_no_cache():
    # The fast structure check neither reads nor writes the cache.
    cache = Path(os.environ["ACRN_SHM_CACHE_DIR"])
    scenario = str(ACRN_DATA / "v3.3" / "whl-ipc-i5" / "hybrid_rt.xml")
    result = Linter(LintConfig(use_cache=True)).lint([scenario])
    assert result.files == 1 and not result.errors
    assert not cache.exists()


def own_pickle(path: Path, value=None) -> Path:
    path.write_bytes(pickle.dumps(value or {"kind": "v3"}))
    path.chmod(0o600)
    return path


def test_an_own_private_pickle_loads(tmp_path):
    assert schema._load_own_pickle(str(own_pickle(tmp_path / "a"))) == {
        "kind": "v3"}


def _symlink(tmp_path):
    own_pickle(tmp_path / "target")
    (tmp_path / "p").symlink_to(tmp_path / "target")


def _group_writable(tmp_path):
    own_pickle(tmp_path / "p").chmod(0o620)


def _world_writable(tmp_path):
    own_pickle(tmp_path / "p").chmod(0o602)


def _folder(tmp_path):
    (tmp_path / "p").mkdir()


def _garbage(tmp_path):
    (tmp_path / "p").write_bytes(b"\x80\x05not a pickle")
    (tmp_path / "p").chmod(0o600)


def _truncated(tmp_path):
    data = pickle.dumps(list(range(1000)))
    (tmp_path / "p").write_bytes(data[:len(data) // 2])
    (tmp_path / "p").chmod(0o600)


def _someone_elses(tmp_path):
    if os.getuid() != 0:
        pytest.skip("giving a file to another user needs root")
    os.chown(own_pickle(tmp_path / "p"), 65534, 65534)


@pytest.mark.parametrize("make", [
    lambda tmp_path: None, _symlink, _group_writable, _world_writable,
    _folder, _garbage, _truncated, _someone_elses,
], ids=["missing", "symlink", "group-writable", "world-writable", "folder",
        "garbage", "truncated", "someone-elses"])
def test_other_pickles_are_not_loaded(make, tmp_path):
    make(tmp_path)
    assert schema._load_own_pickle(str(tmp_path / "p")) is None


def test_a_bad_cached_schema_is_rebuilt_and_replaced():
    schema._compiled("v3", True)
    path, = Path(os.environ["ACRN_SHM_CACHE_DIR"]).glob("schema-*.pickle")
    path.write_bytes(pickle.dumps("not a schema"))
    schema._compiled.cache_clear()
    assert isinstance(schema._compiled("v3", True), xmlschema.XMLSchema11)
    assert isinstance(pickle.loads(path.read_bytes()),
                      xmlschema.XMLSchema11)
