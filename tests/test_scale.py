"""Cost that grows with the input no faster than the input, and limits.

Inputs of every unusual shape (bench/shapes.py) either load in time
that grows linearly with their size, or are refused at once, with one
line, by a limit that real ACRN XMLs stay well under. No absolute time
is asserted: growth tests compare the CPU time of one operation at two
sizes, four times apart (linear work takes about 4 times as long,
quadratic work 16 times), with the limits raised where they would
refuse the larger size; a limit is shown to refuse before the costly
work by counting calls to that work.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import subprocess
import sys
import time
import tracemalloc

import pytest
from conftest import PROJECT, run_acrn_shm
from hypothesis import given, settings
from hypothesis import strategies as st

from acrn_ivshmem.edit.regions import RegionSpec, add_region, set_region
from acrn_ivshmem.errors import InputError
from acrn_ivshmem.io import xmlio
from acrn_ivshmem.io.xmlio import (
    MAX_ATTRIBUTES, MAX_NODES, Loc, parse_bytes, parse_file,
)
from acrn_ivshmem.lint import schema, structure
from acrn_ivshmem.lint.config import LintConfig
from acrn_ivshmem.lint import engine
from acrn_ivshmem.lint.engine import Linter
from acrn_ivshmem.model import loader
from acrn_ivshmem.model.loader import (
    MAX_READ, MAX_READ_TEXT, from_document, kind_of, read_size, split_legacy,
)
from acrn_ivshmem.model.syntax import Suppression, Suppressions, Value
from acrn_ivshmem.upgrade.scenario import upgrade

_SPEC = importlib.util.spec_from_file_location(
    "bench_shapes", PROJECT / "bench" / "shapes.py")
shapes = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(shapes)

# Linear work at 4 times the size takes about 4 times as long (less
# when a fixed cost remains), quadratic work 16 times.
FACTOR = 4
MOST_GROWTH = 8.0


def cpu_seconds(operation) -> float:
    """The least CPU time of three runs of ``operation()``, garbage
    collector paused (as timeit does: its passes are noise here)."""
    best = float("inf")
    for _ in range(3):
        gc.collect()
        gc.disable()
        try:
            start = time.process_time()
            operation()
            best = min(best, time.process_time() - start)
        finally:
            gc.enable()
    return best


def growth(operation, shape: str, n: int, legacy: bool = False) -> float:
    """How many times longer ``operation(document)`` takes on ``shape``
    at ``FACTOR * n`` than at ``n`` (documents parsed beforehand)."""
    small, large = (parse_bytes(shapes.generate(shape, size, legacy),
                                "x.xml") for size in (n, FACTOR * n))
    return (cpu_seconds(lambda: operation(large))
            / cpu_seconds(lambda: operation(small)))


@pytest.fixture(autouse=True)
def in_tmp_path(monkeypatch, tmp_path):
    """Lint finds no board beside ``x.xml``."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def no_structure_check(monkeypatch):
    """ISM001 finds nothing, at once."""
    monkeypatch.setattr(schema, "check_structure", lambda *args: [])


@pytest.fixture
def no_limits(monkeypatch):
    """Limits high enough to measure growth past them."""
    monkeypatch.setattr(xmlio, "MAX_NODES", 10**9)
    for kind in MAX_READ:
        monkeypatch.setitem(MAX_READ, kind, 10**9)
        monkeypatch.setitem(MAX_READ_TEXT, kind, 10**9)


# --- Limits ---------------------------------------------------------------

def test_too_many_nodes_are_refused_before_lxml(monkeypatch):
    parsed = []
    monkeypatch.setattr(xmlio, "_parse_tree",
                        lambda *args: parsed.append(args))
    with pytest.raises(InputError) as caught:
        parse_bytes(shapes.generate("elements", 3_000_000), "big.xml")
    assert str(caught.value) == (
        "big.xml: more than 100000 elements, attributes and comments; the "
        "limit is 100000 (real ACRN XMLs have up to some 7,000)")
    assert parsed == []


def _count(data: bytes) -> int:
    # Elements, attributes and comments, counted by lxml.
    from lxml import etree

    root = etree.fromstring(data)
    return sum(1 + len(node.attrib) if isinstance(node.tag, str) else 1
               for node in root.iter())


_NAMES = st.sampled_from(["a", "b", "vm"])
_TEXT = st.text(alphabet="<>=&x ", max_size=6).map(
    lambda text: text.replace("&", "&amp;").replace("<", "&lt;"))


@st.composite
def _documents(draw, depth: int = 0) -> str:
    # An element with attributes, text, comments and CDATA that may hold
    # '<' and '=' (which the quick bound counts and expat does not).
    name = draw(_NAMES)
    attributes = "".join(f' {n}{i}="{draw(_TEXT)}"'
                         for i, n in enumerate(draw(st.lists(_NAMES,
                                                             max_size=3))))
    parts = []
    for kind in draw(st.lists(st.sampled_from(
            ["text", "comment", "cdata", "child"] if depth < 3
            else ["text", "comment", "cdata"]), max_size=4)):
        if kind == "text":
            parts.append(draw(_TEXT))
        elif kind == "comment":
            parts.append(f"<!-- <a b=1> {draw(_TEXT)} -->")
        elif kind == "cdata":
            parts.append("<![CDATA[<x y='='/>]]>")
        else:
            parts.append(draw(_documents(depth + 1)))
    return f"<{name}{attributes}>{''.join(parts)}</{name}>"


@settings(max_examples=200, deadline=None)
@given(_documents(), st.integers(min_value=0, max_value=40))
def test_the_node_limit_counts_exactly(document, limit):
    data = document.encode()
    total = _count(data)
    xmlio.MAX_NODES, saved = limit, xmlio.MAX_NODES
    try:
        if total > limit:
            with pytest.raises(InputError, match="more than"):
                parse_bytes(data, "x.xml")
        else:
            parse_bytes(data, "x.xml")
    finally:
        xmlio.MAX_NODES = saved


@pytest.mark.parametrize("codec, message", [
    ("utf-8", "x.xml: more than 100000 elements"),
    ("utf-16", "x.xml: more than 100000 elements"),
    # Expat reads no UTF-32: refused as the positions pass would.
    ("utf-32", "x.xml:1:1: not well-formed XML: not well-formed (invalid "
     "token)"),
])
def test_the_node_limit_holds_in_wide_encodings(monkeypatch, codec,
                                                message):
    parsed = []
    monkeypatch.setattr(xmlio, "_parse_tree",
                        lambda *args: parsed.append(args))
    data = f'<?xml version="1.0" encoding="{codec}"?>\n<a>' \
           f'{"<b/>" * 100_001}</a>'
    with pytest.raises(InputError) as caught:
        parse_bytes(data.encode(codec), "x.xml")
    assert str(caught.value).startswith(message)
    assert parsed == []


def test_attributes_on_one_element_are_limited():
    parse_bytes(shapes.generate("attributes", MAX_ATTRIBUTES), "x.xml")
    with pytest.raises(InputError) as caught:
        parse_bytes(shapes.generate("attributes", MAX_ATTRIBUTES + 1),
                    "x.xml")
    assert str(caught.value) == (
        "x.xml:2: <acrn-config> has 101 attributes; the limit is 100 on "
        "one element (real ACRN XMLs have up to 7)")


@pytest.mark.parametrize("shape, n, legacy, message", [
    ("regions", 200, False, "x.xml: 2211 children and attributes on the "
     "elements acrn-shm reads (200 on one <IVSHMEM>); the limit is 2000 "
     "for a scenario (real ones have up to 123)"),
    ("vms", 600, True, "x.xml: 2405 children and attributes on the "
     "elements acrn-shm reads (601 on one <acrn-config>); the limit is "
     "2000 for a scenario (real ones have up to 116)"),
    ("vuarts", 200, False, "x.xml: 2606 children and attributes on the "
     "elements acrn-shm reads (201 on one <acrn-config>); the limit is "
     "2000 for a scenario (real ones have up to 123)"),
    ("names", 16_000, False, "x.xml: 16089 characters of text and "
     "attribute values in the elements acrn-shm reads; the limit is 16000 "
     "for a scenario (real ones have up to 354)"),
    ("legacy-fields", 6_000, True, "x.xml: 18059 characters of text and "
     "attribute values in the elements acrn-shm reads; the limit is 16000 "
     "for a scenario (real ones have up to 161)"),
    ("board", 7_000, False, "x.xml: 28006 children and attributes on the "
     "elements acrn-shm reads (7002 on one <bus>); the limit is 25000 for "
     "a board XML (real ones have up to 3,175)"),
])
def test_too_much_to_read_is_refused_before_the_model(
        monkeypatch, shape, n, legacy, message):
    document = parse_bytes(shapes.generate(shape, n, legacy), "x.xml")
    built = []
    monkeypatch.setattr(loader, "scenario_from",
                        lambda *args: built.append(args))
    monkeypatch.setattr(loader, "board_from",
                        lambda *args: built.append(args))
    with pytest.raises(InputError) as caught:
        from_document(document)
    assert str(caught.value) == message
    assert built == []


@pytest.mark.parametrize("check, walk", [
    (schema.check_structure, (structure, "check")),
    (schema.check_structure_xsd, (schema, "_validate"))],
    ids=["fast", "xmlschema"])
def test_the_structure_check_refuses_before_checking(monkeypatch, check,
                                                     walk):
    validated = []
    monkeypatch.setattr(*walk, lambda *args, **kw: validated.append(args))
    document = parse_bytes(shapes.generate("regions", 200), "x.xml")
    with pytest.raises(InputError, match="^x.xml: 2211 children"):
        check(document, "v3")
    assert validated == []


@pytest.mark.parametrize("command", [
    ["lint"], ["add-region", "--vms", "VM0,VM1"], ["regions"], ["graph"]])
def test_commands_refuse_in_one_line_and_leave_the_file(tmp_path,
                                                       command):
    path = tmp_path / "big.xml"
    data = shapes.generate("regions", 200)
    path.write_bytes(data)
    done = run_acrn_shm([command[0], "big.xml", *command[1:]], tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "acrn-shm: error: big.xml: 2211 children and attributes on the "
        "elements acrn-shm reads (200 on one <IVSHMEM>); the limit is 2000 "
        "for a scenario (real ones have up to 123)\n")
    assert path.read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["big.xml"]


def test_upgrade_refuses_too_much_to_read():
    document = parse_bytes(shapes.generate("vms", 600, legacy=True),
                           "x.xml")
    with pytest.raises(InputError) as caught:
        upgrade(document)
    assert str(caught.value) == (
        "x.xml: 2405 children and attributes on the elements acrn-shm "
        "reads (601 on one <acrn-config>); the limit is 2000 for a "
        "scenario (real ones have up to 116)")


def test_real_acrn_xmls_stay_far_under_every_limit(acrn_data):
    # The margins the limits' documentation gives.
    for path in sorted(acrn_data.rglob("*.xml")):
        data = path.read_bytes()
        document = parse_file(str(path))
        kind = kind_of(document)
        size = read_size(document, kind)
        nodes = sum(1 + len(e.attrib) for e in document.root.iter())
        assert nodes * 14 <= MAX_NODES, path
        assert len(data) * 50 <= xmlio.MAX_BYTES, path
        assert size.items * 7.8 <= MAX_READ[kind], path
        assert size.chars * 18 <= MAX_READ_TEXT[kind], path
        assert max(len(e.attrib) for e in document.root.iter()) * 14 <= (
            MAX_ATTRIBUTES), path


# --- Growth ---------------------------------------------------------------

def _lint(document) -> None:
    # The structure check (xmlschema) is left out: it grows linearly,
    # and slowly enough to hide a quadratic rule at these sizes.
    linter = Linter(LintConfig(use_cache=False))
    linter.preload(document)
    result = linter.lint([document.path])
    assert not result.errors, result.errors


def _add(document) -> None:
    add_region(document, RegionSpec(vms=("VM0", "VM1")))


def test_adding_to_a_file_on_one_line_grows_linearly():
    # Finding each element's indentation went back to the line start.
    assert growth(_add, "line", 1_000_000) < MOST_GROWTH


def test_positions_take_little_memory_for_each_element():
    document = parse_bytes(shapes.generate("elements", 50_000), "x.xml")
    tracemalloc.start()
    try:
        document.loc(document.root)
        used, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert used / 50_000 < 200  # bytes; a tuple of tuples each was 650


@pytest.mark.usefixtures("no_limits", "no_structure_check")
@pytest.mark.parametrize("shape, n", [
    ("suppressions", 300),  # each finding against every suppression
    ("vms", 1_200),         # each VM looked up among all
    ("vuarts", 300),        # each VM's vUARTs among all connections
])
def test_lint_grows_linearly(shape, n):
    assert growth(_lint, shape, n) < MOST_GROWTH


@pytest.mark.usefixtures("no_limits")
def test_upgrading_many_vms_grows_linearly():
    assert growth(upgrade, "vms", 1_200, legacy=True) < MOST_GROWTH


@pytest.mark.usefixtures("no_limits")
def test_splitting_a_long_legacy_string_grows_linearly():
    def split(document):
        element = document.root.find("hv/FEATURES/IVSHMEM/IVSHMEM_REGION")
        split_legacy(Value(element.text, Loc(1, 1)))

    assert growth(split, "legacy-fields", 20_000, legacy=True) < MOST_GROWTH


@pytest.mark.usefixtures("no_limits")
def test_edits_with_many_vms_and_regions_grow_linearly():
    def share_with_all(document):
        names = tuple(vm.findtext("name")
                      for vm in document.root.iterfind("vm"))
        add_region(document, RegionSpec(vms=names))
        set_region(document, "shm_region_0", RegionSpec(vms=names[::-1]))

    assert growth(share_with_all, "vms", 800) < MOST_GROWTH

    def add_legacy(document):
        # The first free default name among shm_region_0, 1, ...
        add_region(document, RegionSpec(vms=("0", "1")))

    assert growth(add_legacy, "regions", 2_500, legacy=True) < MOST_GROWTH


def test_suppressions_answer_as_each_one_would():
    items = tuple(
        Suppression(frozenset(codes), Loc(first, 1), Loc(last, 9),
                    Loc(first - 1, 1))
        for codes, first, last in [
            ({"ISM201"}, 10, 20), ({"ISM201", "ISM301"}, 12, 14),
            ({"ISM301"}, 30, 31), ({"ISM201"}, 15, 40), ({"ISM9"}, 1, 99)])
    together = Suppressions(items)
    for code in ("ISM201", "ISM301", "ISM9", "ISM1"):
        for line in range(101):
            for column in (0, 1, 5, 9, 10):
                loc = Loc(line, column)
                assert together.covers(code, loc) == any(
                    item.covers(code, loc) for item in items), (code, loc)


def test_the_shape_benchmark_runs():
    # One small shape of bench/shape_bench.py: every size has its row.
    result = subprocess.run(
        [sys.executable, str(PROJECT / "bench" / "shape_bench.py"),
         "--quick", "--shape", "depth", "--command", "lint"],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()
            if line.startswith("depth ")]
    assert [row[1] for row in rows] == ["16", "250", "1,000"]
    assert "refused" not in " ".join(rows[1])
    assert rows[2][3] == "refused"
    assert rows[2][6:] == ["-"] * 5  # only lint was asked for
    assert "depth: 9:769: not well-formed XML: Excessive depth" in (
        result.stdout)


def test_scenarios_beside_a_board_look_at_each_file_once(acrn_data, tmp_path,
                                                          monkeypatch):
    # Files named one by one, without --board, in a folder whose board
    # is named after neither the folder nor the scenarios' board: each
    # scenario used to list the folder and open the files before the
    # board again (1,000 scenarios: a million opens).
    folder = tmp_path / "many"
    folder.mkdir()
    source = acrn_data / "v3.3" / "whl-ipc-i5"
    text = (source / "hybrid_rt.xml").read_bytes()
    paths = []
    for index in range(40):
        path = folder / f"s{index:02d}.xml"
        path.write_bytes(text)
        paths.append(str(path))
    (folder / "zz_board.xml").write_bytes(
        (source / "whl-ipc-i5.xml").read_bytes())
    looked = []
    real = engine._looks_like_board
    monkeypatch.setattr(engine, "_looks_like_board",
                        lambda path: looked.append(path) or real(path))
    listed = []
    real_listdir = os.listdir
    monkeypatch.setattr(engine.os, "listdir",
                        lambda path: listed.append(path) or real_listdir(path))
    result = Linter(LintConfig(use_cache=False)).lint(paths)
    assert result.files == 40 and not result.errors
    # Every scenario was checked against the board: no ISM002 "no board".
    assert not [d for d in result.diagnostics if d.code == "ISM002"]
    assert sorted(looked) == sorted([*paths, str(folder / "zz_board.xml")])
    assert listed == [str(folder)]
