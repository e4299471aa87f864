"""The scenario picture (:mod:`acrn_ivshmem.emit.graph`, :mod:`.graph_svg`):
DOT, SVG, PNG.

``tests/test_graph/`` holds two scenarios of its own (``hostile_v3.xml``:
names that try to break out of DOT and SVG; ``odd_legacy.xml``: legacy
corner cases) and ``golden/``, the DOT text and the SVG of those and of
real ACRN scenarios; refresh the goldens with ``UPDATE_GOLDEN=1`` and
review the diff. SVG is drawn in Python; PNG and PDF tests need
Graphviz's ``dot``, and the tests that look at the SVG's pixels need
``rsvg-convert`` (Debian packages graphviz and librsvg2-bin); they skip
when a tool is missing, unless ``ACRN_SHM_REQUIRE_TOOLS=1`` (set in CI)
makes them fail.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
import zlib
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from conftest import ACRN_DATA, PROJECT, run_acrn_shm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from acrn_ivshmem.emit.graph import (
    MISSING_DOT, format_for, graph_data, load_scenario, render, to_dot,
    write_graph,
)
from acrn_ivshmem.emit.graph_svg import FONT_SIZE, text_width, to_svg
from acrn_ivshmem.errors import (
    AcrnShmError, GraphvizError, InputError, UsageError,
)
from acrn_ivshmem.io.xmlio import parse_bytes
from acrn_ivshmem.model.loader import from_document

DATA = Path(__file__).resolve().parent / "test_graph"
GOLDEN = DATA / "golden"
HOSTILE = DATA / "hostile_v3.xml"
ODD = DATA / "odd_legacy.xml"
WHL3 = ACRN_DATA / "v3.3" / "whl-ipc-i5"
REQUIRE_TOOLS = bool(os.environ.get("ACRN_SHM_REQUIRE_TOOLS"))
SVG = "{http://www.w3.org/2000/svg}"

#: Golden name -> scenario.
CASES = {
    "v3.3-whl-ipc-i5-hybrid_rt": WHL3 / "hybrid_rt.xml",
    "v3.3-whl-ipc-i5-shared": WHL3 / "shared.xml",
    "v2.7-whl-ipc-i5-hybrid_rt": ACRN_DATA / "v2.7" / "whl-ipc-i5"
    / "hybrid_rt.xml",
    "hybrid_rt_v3": PROJECT / "scenario-xmls" / "hybrid_rt_v3.xml",
    "dm_land_v3": PROJECT / "scenario-xmls" / "dm_land_v3.xml",
    "hostile_v3": HOSTILE,
    "odd_legacy": ODD,
}
REAL = [name for name in sorted(CASES) if name not in ("hostile_v3",
                                                        "odd_legacy")]
_PACKAGES = {"dot": "graphviz", "rsvg-convert": "librsvg2-bin"}


def need(tool: str) -> None:
    """Skip (or, with ACRN_SHM_REQUIRE_TOOLS=1, fail) without ``tool``."""
    if shutil.which(tool) is None:
        if REQUIRE_TOOLS:
            pytest.fail(f"{tool} is required here but not installed")
        pytest.skip(f"{tool} is not installed (apt-get install "
                    f"{_PACKAGES[tool]})")


def scenario_path(name: str) -> Path:
    path = CASES[name]
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


def svg_texts(data: bytes) -> list[str]:
    """Every ``<text>`` of an SVG, as displayed (entities decoded)."""
    root = ElementTree.fromstring(data)
    return [text.text or "" for text in root.iter(f"{SVG}text")]


def svg_of(path: Path) -> bytes:
    return graph_data(str(path), "svg")


# --------------------------------------------------------------------------
# DOT text


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name):
    actual = to_dot(load_scenario(str(scenario_path(name))))
    golden = GOLDEN / f"{name}.dot"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(actual, encoding="utf-8")
    assert golden.is_file(), f"{golden} missing; run with UPDATE_GOLDEN=1"
    assert actual == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_svg(name):
    actual = graph_data(str(scenario_path(name)), "svg").decode("utf-8")
    golden = GOLDEN / f"{name}.svg"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(actual, encoding="utf-8")
    assert golden.is_file(), f"{golden} missing; run with UPDATE_GOLDEN=1"
    assert actual == golden.read_text(encoding="utf-8")


def test_no_stray_golden_files():
    assert sorted(path.name for path in GOLDEN.iterdir()) == sorted(
        f"{name}{suffix}" for name in CASES for suffix in (".dot", ".svg"))


def test_dot_is_deterministic_and_path_free(tmp_path):
    """Same file, other folder: the same text, twice."""
    copy = tmp_path / "deep" / "er"
    copy.mkdir(parents=True)
    shutil.copy(HOSTILE, copy / HOSTILE.name)
    first = to_dot(load_scenario(str(HOSTILE)))
    assert to_dot(load_scenario(str(copy / HOSTILE.name))) == first
    assert to_dot(load_scenario(str(HOSTILE))) == first
    assert str(tmp_path) not in first and str(DATA) not in first


def test_every_vm_is_a_node_even_in_no_region():
    """shared.xml has 7 VMs and no region: 7 nodes, no edge."""
    dot = to_dot(load_scenario(str(scenario_path("v3.3-whl-ipc-i5-shared"))))
    for index in range(7):
        assert f"\n  vm{index} [label=" in dot
    assert "vm7" not in dot and "region0" not in dot and " -- " not in dot


def test_real_time_vms_from_v3_vm_type_and_legacy_flags():
    """v3 ``vm_type`` RTVM; legacy PRE_RT_VM/POST_RT_VM or GUEST_FLAG_RT."""
    v3 = load_scenario(str(PROJECT / "scenario-xmls" / "hybrid_rt_v3.xml"))
    assert [(vm.name, vm.rt) for vm in v3.vms] == [
        ("PRE_RT_VM0", True), ("ACRN_Service_VM", False),
        ("POST_STD_VM1", False), ("POST_RT_VM1", True)]
    legacy = load_scenario(str(ODD))
    assert [(vm.vm_type, vm.rt) for vm in legacy.vms] == [
        ("PRE_STD_VM", True), ("SOS_VM", False), ("POST_RT_VM", True),
        ("FUTURE_VM", False)]


def test_hostile_names_stay_inside_their_labels():
    """No raw payload reaches the DOT; escapes are the documented ones."""
    dot = to_dot(load_scenario(str(HOSTILE)))
    for payload in ('"]; x [shape=box', '"];evil', "<script>", "<svg",
                    "<b>", "a\nb", '\\N"', "<B>&lt;b&gt;</B>", "\u202e"):
        assert payload not in dot, payload
    assert "<B>q&quot;uote\\\\</B>" in dot
    assert "<B>a\\\\x0ab\\\\N&quot;];evil</B>" in dot
    assert "<B>&amp;lt;b&amp;gt;</B>" in dot
    assert "<B>\\\\u202egnol_ylsuoiretsym_si_eman_siht_...</B>" in dot
    assert "[label=<&lt;b&gt;x&lt;/b&gt;>]" in dot
    # Every line is a statement, a comment or blank: nothing spilled out.
    for line in dot.splitlines()[1:-1]:
        assert (not line or line.startswith(("  vm", "  region",
                                              "  missing", "  //",
                                              "  { rank=", "  graph [",
                                              "         label=<",
                                              "  node [", "  edge ["))), line


# --------------------------------------------------------------------------
# SVG, drawn in Python


@pytest.mark.parametrize("name", REAL)
def test_svg_shows_names_sizes_and_vbdfs(name):
    path = scenario_path(name)
    scenario = load_scenario(str(path))
    data = svg_of(path)
    assert data.startswith(b"<?xml") and b"</svg>" in data
    texts = svg_texts(data)
    wanted = [path.name]
    wanted += [vm.name for vm in scenario.vms]
    for region in scenario.regions:
        wanted += [region.name.text,
                   f"{int(region.size.text)} MB, provided by {region.land}"]
        wanted += [member.vbdf.text for member in region.members
                   if member.vbdf is not None]
    assert wanted and all(text in texts for text in wanted), (
        sorted(set(wanted) - set(texts)))


def test_svg_of_hybrid_rt_in_detail():
    texts = svg_texts(svg_of(scenario_path("v3.3-whl-ipc-i5-hybrid_rt")))
    assert sorted(texts) == sorted([
        "hybrid_rt.xml",
        "4 VM(s), 1 IVSHMEM region(s), ACRN v3.x format",
        "ACRN_Service_VM", "VM id 1", "Service VM",
        "POST_STD_VM2", "VM id 3", "post-launched, standard",
        "POST_STD_VM1", "VM id 2", "post-launched, standard",
        "PRE_RT_VM0", "VM id 0", "pre-launched, RT",
        "shm_region_0", "2 MB, provided by hv",
        "00:08.0", "00:08.0"])


def test_hostile_names_render_literally_and_inject_nothing():
    data = svg_of(HOSTILE)
    root = ElementTree.fromstring(data)
    tags = {element.tag.replace(SVG, "") for element in root.iter()
            if isinstance(element.tag, str)}
    assert tags == {"svg", "g", "title", "text", "rect", "path", "line"}, (
        tags)
    for element in root.iter():
        for attribute in element.attrib:
            assert not attribute.lower().startswith("on"), attribute
            assert "href" not in attribute, attribute
    node_ids = sorted(group.get("id") for group in root.iter(f"{SVG}g")
                      if group.get("class") == "node")
    assert node_ids == sorted(
        [f"vm{index}" for index in range(6)]
        + [f"region{index}" for index in range(3)]
        + ["missing0", "missing1"])
    assert len(list(root.iter(f"{SVG}line"))) == 6
    assert root.findtext(f"{SVG}title") == "hostile_v3.xml"
    texts = svg_texts(data)
    for shown in ('q"uote\\', "<script>alert(1)</script>",
                  'a\\x0ab\\N"];evil', "&lt;b&gt;",
                  "\\u202egnol_ylsuoiretsym_si_eman_siht_...",
                  "lonely", 'VM id 5"]', 'unknown type LATE_VM"',
                  'r"]; x [shape=box', "<svg onload=alert(1)>",
                  "\\\\G&amp;\\l", 'size 0x2"?, provider "Hypervisor"?',
                  'ghost\\"', "no such VM", "(no VM given)", "<b>x</b>",
                  "00:08.0", "00:09.0", "00:0a.0", "00:0b.0"):
        assert shown in texts, shown


def test_styles_by_kind_as_graphviz_reads_them():
    """``dot -Tplain``: shape, border and fill of each node."""
    need("dot")
    dot = to_dot(load_scenario(str(ODD)))
    plain = subprocess.run(["dot", "-Tplain"], input=dot, text=True,
                           capture_output=True, check=True).stdout
    looks = {line.split()[1]: line.split()[-4:]
             for line in plain.splitlines() if line.startswith("node ")}
    assert looks == {
        "vm0": ["filled", "box", "#c00000", "#fde0c5"],
        "vm1": ["filled", "box3d", "#404040", "#d5ecd4"],
        "vm2": ["filled", "ellipse", "#c00000", "#d6e6fb"],
        "vm3": ["filled,dashed", "octagon", "#404040", "#eeeeee"],
        "region0": ["filled", "cylinder", "#404040", "#fff2bf"],
        "region1": ["filled", "cylinder", "#404040", "#fff2bf"],
        "region2": ["filled", "cylinder", "#404040", "#e6d7ee"],
        "missing0": ["filled,dashed", "box", "#c00000", "white"],
    }
    edges = sorted(tuple(line.split()[1:3]) for line in plain.splitlines()
                   if line.startswith("edge "))
    assert edges == [("region0", "missing0"), ("region0", "vm2"),
                     ("region1", "vm2"), ("vm0", "region0")]


# --------------------------------------------------------------------------
# PNG and PDF


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGBA rows of an 8-bit RGB(A) PNG (stdlib only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, header = 8, b"", None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    width, height, depth, colour, _c, _f, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    step = 4 if colour == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * step
    rows, previous = [], bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up = previous[i]
            corner = previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                best = min((abs(guess - left), 0, left),
                           (abs(guess - up), 1, up),
                           (abs(guess - corner), 2, corner))[2]
                line[i] = (line[i] + best) & 0xFF
        previous = line
        if step == 3:
            line = bytearray(b"".join(bytes(line[i:i + 3]) + b"\xff"
                                      for i in range(0, stride, 3)))
        rows.append(bytes(line))
    return width, height, rows


def colour_counts(rows: list[bytes]) -> dict[str, int]:
    """Pixels that are not white, dark (text, lines), RT red, and the
    pre-launched, Service VM and hv region fills."""
    counts = dict.fromkeys(("ink", "dark", "red", "pre", "service", "hv"),
                           0)
    fills = {(0xFD, 0xE0, 0xC5): "pre", (0xD5, 0xEC, 0xD4): "service",
             (0xFF, 0xF2, 0xBF): "hv"}
    for row in rows:
        for i in range(0, len(row), 4):
            red, green, blue, alpha = row[i:i + 4]
            if alpha < 250:
                continue
            if min(red, green, blue) < 240:
                counts["ink"] += 1
            if max(red, green, blue) < 100:
                counts["dark"] += 1
            if red > 170 and green < 50 and blue < 50:
                counts["red"] += 1
            if (red, green, blue) in fills:
                counts[fills[(red, green, blue)]] += 1
    return counts


def test_svg_converts_to_a_png_that_shows_the_picture(tmp_path):
    need("rsvg-convert")
    svg = tmp_path / "hybrid_rt.svg"
    assert write_graph(str(scenario_path("v3.3-whl-ipc-i5-hybrid_rt")),
                       str(svg)) == "svg"
    root = ElementTree.fromstring(svg.read_bytes())
    png = tmp_path / "hybrid_rt.png"
    subprocess.run(["rsvg-convert", "-f", "png", "-o", str(png), str(svg)],
                   check=True, timeout=60)
    width, height, rows = read_png(png.read_bytes())
    # The SVG is sized in pixels, drawn one to one.
    assert (width, height) == (round(float(root.get("width"))),
                               round(float(root.get("height"))))
    assert width > 600 and height > 200
    counts = colour_counts(rows)
    total = width * height
    assert 0.05 * total < counts["ink"] < 0.6 * total, counts
    assert counts["dark"] > 0.005 * total, counts
    assert counts["red"] > 200, counts   # PRE_RT_VM0's RT border
    assert counts["pre"] > 1000 and counts["service"] > 1000, counts
    assert counts["hv"] > 1000, counts


def test_read_png_on_a_blank_image_counts_nothing(tmp_path):
    """The checker itself: an all-white picture has no ink."""
    need("rsvg-convert")
    blank = tmp_path / "blank.svg"
    blank.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="40" '
                     'height="30"><rect width="40" height="30" '
                     'fill="white"/></svg>')
    data = subprocess.run(["rsvg-convert", str(blank)], check=True,
                          capture_output=True, timeout=60).stdout
    width, height, rows = read_png(data)
    assert (width, height) == (40, 30)
    assert colour_counts(rows) == dict.fromkeys(
        ("ink", "dark", "red", "pre", "service", "hv"), 0)


def test_dot_renders_png_and_pdf_directly():
    need("dot")
    dot = to_dot(load_scenario(str(ODD)))
    width, height, rows = read_png(render(dot, "png"))
    assert width > 300 and height > 200
    assert colour_counts(rows)["red"] > 100
    assert render(dot, "pdf").startswith(b"%PDF-")


# --------------------------------------------------------------------------
# Errors


def test_missing_dot_is_one_line_and_svg_and_dot_still_work(
        tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(GraphvizError) as caught:
        render("graph {}\n", "png")
    assert str(caught.value) == (
        "Graphviz's dot is not installed: apt-get install graphviz (or "
        "write SVG or the DOT text, -f svg or -f dot, which need no "
        "Graphviz)")
    assert str(caught.value) == MISSING_DOT
    for name in ("topology.png", "topology.pdf"):
        out = tmp_path / name
        with pytest.raises(GraphvizError) as caught:
            write_graph(str(ODD), str(out))
        assert str(caught.value) == f"{out}: {MISSING_DOT}"
        assert not out.exists()
    svg = tmp_path / "topology.svg"
    assert write_graph(str(ODD), str(svg)) == "svg"
    assert svg.read_bytes() == (GOLDEN / "odd_legacy.svg").read_bytes()
    assert render("graph {}\n", "dot") == b"graph {}\n"
    text_out = tmp_path / "topology.gv"
    assert write_graph(str(ODD), str(text_out)) == "dot"
    assert text_out.read_text(encoding="utf-8") == to_dot(
        load_scenario(str(ODD)))


def fake_dot(tmp_path: Path, monkeypatch, body: str) -> None:
    """Put a ``dot`` shell script running ``body`` alone on PATH."""
    folder = tmp_path / "fake-bin"
    folder.mkdir()
    script = folder / "dot"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))


def test_dot_failure_is_one_line(tmp_path, monkeypatch):
    fake_dot(tmp_path, monkeypatch,
             "printf '\\n  Error: bad\\033[31m thing\\n  second line\\n' >&2"
             "\nexit 3")
    with pytest.raises(GraphvizError) as caught:
        render("graph {}\n", "png")
    assert str(caught.value) == (
        "dot -Tpng failed (exit 3): Error: bad\\x1b[31m thing")


def test_dot_killed_by_a_signal(tmp_path, monkeypatch):
    fake_dot(tmp_path, monkeypatch, "kill -9 $$")
    with pytest.raises(GraphvizError) as caught:
        render("graph {}\n", "png")
    assert str(caught.value) == "dot -Tpng failed (signal 9): no message"


def test_dot_that_hangs_is_stopped(tmp_path, monkeypatch):
    fake_dot(tmp_path, monkeypatch, "while :; do :; done")
    with pytest.raises(GraphvizError) as caught:
        render("graph {}\n", "pdf", timeout=0.5)
    assert str(caught.value) == "dot -Tpdf took longer than 0.5 s; stopped"


def test_real_dot_rejecting_its_input():
    need("dot")
    with pytest.raises(GraphvizError) as caught:
        render("graph {\n", "png")
    message = str(caught.value)
    assert message.startswith("dot -Tpng failed (exit 1): ")
    assert "syntax error" in message and "\n" not in message


def test_unknown_formats():
    with pytest.raises(UsageError) as caught:
        render("graph {}\n", "jpg")
    assert str(caught.value) == (
        "unknown graph format 'jpg'; choose svg, png, pdf, dot")
    with pytest.raises(UsageError) as caught:
        render("graph {}\n", "svg")
    assert str(caught.value) == (
        "render() makes png and pdf; SVG is drawn by graph_svg.to_svg")
    with pytest.raises(UsageError) as caught:
        format_for("topology.jpg")
    assert str(caught.value) == (
        "topology.jpg: cannot tell the graph format from the suffix; name "
        "it .svg, .png, .pdf or .dot, or give -f svg, png, pdf or dot")
    with pytest.raises(UsageError):
        format_for("topology.svg", "gif")


@pytest.mark.parametrize(("path", "fmt", "expected"), [
    ("topology.svg", None, "svg"), ("a/b.PNG", None, "png"),
    ("x.pdf", None, "pdf"), ("x.dot", None, "dot"), ("x.gv", None, "dot"),
    ("x.svg", "png", "png"), ("no-suffix", "pdf", "pdf"),
    ("x.txt", "dot", "dot"),
])
def test_format_from_suffix_unless_given(path, fmt, expected):
    assert format_for(path, fmt) == expected


# --------------------------------------------------------------------------
# write_graph


def test_write_graph_creates_then_replaces(tmp_path):
    out = tmp_path / "topology.dot"
    assert write_graph(str(ODD), str(out)) == "dot"
    assert out.read_text(encoding="utf-8") == to_dot(load_scenario(str(ODD)))
    out.write_text("old")
    assert write_graph(str(HOSTILE), str(out), "dot") == "dot"
    assert out.read_text(encoding="utf-8") == to_dot(
        load_scenario(str(HOSTILE)))
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "topology.dot"]


def test_write_graph_svg(tmp_path):
    out = tmp_path / "topology.svg"
    assert write_graph(str(HOSTILE), str(out)) == "svg"
    assert "<script>alert(1)</script>" in svg_texts(out.read_bytes())


def test_write_graph_never_overwrites_the_scenario(tmp_path):
    scenario = tmp_path / "scenario.xml"
    shutil.copy(ODD, scenario)
    with pytest.raises(UsageError) as caught:
        write_graph(str(scenario), str(scenario), "dot")
    assert str(caught.value) == (
        f"{scenario}: is the scenario itself; give another output file")
    assert scenario.read_bytes() == ODD.read_bytes()


def test_write_graph_needs_a_scenario(tmp_path):
    board = WHL3 / "whl-ipc-i5.xml"
    if not board.is_file():
        pytest.skip(f"{board} is missing")
    with pytest.raises(InputError) as caught:
        write_graph(str(board), str(tmp_path / "x.dot"))
    assert str(caught.value) == (
        f"{board}: expected a scenario XML, found a board XML")
    with pytest.raises(InputError) as caught:
        write_graph(str(tmp_path / "nope.xml"), str(tmp_path / "x.dot"))
    assert str(caught.value) == f"{tmp_path / 'nope.xml'}: no such file"
    assert not (tmp_path / "x.dot").exists()


def test_write_graph_into_a_missing_folder(tmp_path):
    out = tmp_path / "no" / "such" / "topology.dot"
    with pytest.raises(AcrnShmError) as caught:
        write_graph(str(ODD), str(out))
    assert str(caught.value).startswith(f"{out}: ")
    assert str(caught.value).endswith("; nothing written")
    assert "\n" not in str(caught.value)


# --------------------------------------------------------------------------
# The graph command


def test_command_prints_dot_writes_files_and_refuses_in_one_line(tmp_path):
    scenario = PROJECT / "scenario-xmls" / "hybrid_rt_v3.xml"
    printed = run_acrn_shm(["graph", str(scenario)], tmp_path)
    assert (printed.returncode, printed.stderr) == (0, "")
    assert printed.stdout == (GOLDEN / "hybrid_rt_v3.dot").read_text()

    written = run_acrn_shm(["graph", str(scenario), "-o", "t.gv"], tmp_path)
    assert (written.returncode, written.stdout, written.stderr) == (
        0, "wrote t.gv (dot)\n", "")
    assert (tmp_path / "t.gv").read_text() == printed.stdout

    missing = run_acrn_shm(["graph", "nope.xml", "-o", "t.svg"], tmp_path)
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        2, "", "acrn-shm: error: nope.xml: no such file\n")
    assert not (tmp_path / "t.svg").exists()


def test_command_writes_svg_and_png_to_stdout(tmp_path):
    scenario = PROJECT / "scenario-xmls" / "dm_land_v3.xml"
    svg = subprocess.run(
        [sys.executable, "-m", "acrn_ivshmem", "graph", str(scenario),
         "-f", "svg"], capture_output=True, check=True).stdout
    assert svg == (GOLDEN / "dm_land_v3.svg").read_bytes()
    need("dot")
    png = subprocess.run(
        [sys.executable, "-m", "acrn_ivshmem", "graph", str(scenario),
         "-f", "png"], capture_output=True, check=True).stdout
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


# --------------------------------------------------------------------------
# SVG without Graphviz: valid, escaped, the same every time, readable


@pytest.mark.parametrize("name", sorted(CASES))
def test_svg_is_strict_xml_with_sizes(name):
    data = graph_data(str(scenario_path(name)), "svg")
    root = etree.fromstring(data)  # lxml: strict, no recovery
    assert root.tag == f"{SVG}svg"
    width, height = float(root.get("width")), float(root.get("height"))
    assert root.get("viewBox") == f"0 0 {root.get('width')} " \
        f"{root.get('height')}"
    for frame in frames(data).values():
        x, y, w, h = frame
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= height


def test_svg_is_deterministic_and_path_free(tmp_path):
    copy = tmp_path / "deep" / "er"
    copy.mkdir(parents=True)
    shutil.copy(HOSTILE, copy / HOSTILE.name)
    first = graph_data(str(HOSTILE), "svg")
    assert graph_data(str(copy / HOSTILE.name), "svg") == first
    assert graph_data(str(HOSTILE), "svg") == first
    assert str(tmp_path).encode() not in first
    assert str(DATA).encode() not in first


def test_command_draws_svg_without_graphviz(tmp_path):
    empty = tmp_path / "no-tools"
    empty.mkdir()
    done = run_acrn_shm(["graph", str(ODD), "-o", "t.svg"], tmp_path,
                        PATH=str(empty))
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "wrote t.svg (svg)\n", "")
    assert (tmp_path / "t.svg").read_bytes() == (
        GOLDEN / "odd_legacy.svg").read_bytes()
    done = run_acrn_shm(["graph", str(ODD), "-o", "t.png"], tmp_path,
                        PATH=str(empty))
    assert (done.returncode, done.stdout, done.stderr) == (
        2, "", f"acrn-shm: error: t.png: {MISSING_DOT}\n")
    assert not (tmp_path / "t.png").exists()


def frames(data: bytes) -> dict[str, tuple[float, float, float, float]]:
    """Node id -> (x, y, width, height) of its frame."""
    root = ElementTree.fromstring(data)
    found = {}
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == "node":
            frame = group.find(f"{SVG}rect[@class='frame']")
            found[group.get("id")] = tuple(
                float(frame.get(key)) for key in ("x", "y", "width",
                                                  "height"))
    return found


def text_box(text) -> tuple[float, float, float, float]:
    """The box a ``<text>`` covers: its anchor, measured width, and the
    font's height above the baseline (descenders: 3 px below)."""
    width = text_width(text.text or "")
    x, y = float(text.get("x")), float(text.get("y"))
    anchor = text.get("text-anchor", "start")
    left = {"start": x, "middle": x - width / 2, "end": x - width}[anchor]
    return (left, y - FONT_SIZE, width, FONT_SIZE + 3)


def overlap(a, b) -> bool:
    return (a[0] < b[0] + b[2] and b[0] < a[0] + a[2]
            and a[1] < b[1] + b[3] and b[1] < a[1] + a[3])


def inside(inner, outer) -> bool:
    return (outer[0] <= inner[0] and inner[0] + inner[2] <= outer[0]
            + outer[2] and outer[1] <= inner[1]
            and inner[1] + inner[3] <= outer[1] + outer[3])


def check_readable(data: bytes) -> None:
    """No two boxes overlap; every label line fits inside its box; the
    VBDFs overlap no box and no other VBDF; every line ends on the sides
    of two boxes."""
    root = ElementTree.fromstring(data)
    boxes = frames(data)
    placed = list(boxes.items())
    for index, (name, box) in enumerate(placed):
        for other, other_box in placed[index + 1:]:
            assert not overlap(box, other_box), (name, other)
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == "node":
            for text in group.iter(f"{SVG}text"):
                assert inside(text_box(text), boxes[group.get("id")]), (
                    group.get("id"), text.text)
    labels = [text_box(text) for group in root.iter(f"{SVG}g")
              if group.get("class") == "vbdfs"
              for text in group.iter(f"{SVG}text")]
    for index, label in enumerate(labels):
        assert not any(overlap(label, box) for box in boxes.values())
        assert not any(overlap(label, other)
                       for other in labels[index + 1:])
    sides = [(x, y, y + h) for x, y, w, h in boxes.values()]
    sides += [(x + w, y, y + h) for x, y, w, h in boxes.values()]
    for line in root.iter(f"{SVG}line"):
        for end in ("1", "2"):
            x, y = float(line.get(f"x{end}")), float(line.get(f"y{end}"))
            # Coordinates are written to a tenth of a pixel.
            assert any(abs(side - x) < 0.15 and top < y < bottom
                       for side, top, bottom in sides), (x, y)


LOAD_ORDERS = ("PRE_LAUNCHED_VM", "SERVICE_VM", "POST_LAUNCHED_VM",
               "FUTURE_VM")
#: Printable text of any script, wide and combining characters too.
NAMES = st.text(st.characters(blacklist_categories=(
    "Cc", "Cs", "Co", "Cn", "Zl", "Zp", "Cf")), min_size=1, max_size=50)


@st.composite
def big_scenarios(draw, vms=16, regions=32) -> bytes:
    """A v3 scenario of up to ``vms`` VMs and ``regions`` regions, with
    any names, members (some naming no VM) and VBDF texts."""
    names = draw(st.lists(NAMES, max_size=vms,
                          unique_by=lambda name: name.strip()))
    lines = ["<acrn-config><hv><FEATURES><IVSHMEM>"]
    for _ in range(draw(st.integers(0, regions))):
        members = draw(st.lists(st.tuples(
            st.sampled_from(names) if names else NAMES,
            st.sampled_from(("00:08.0", "00:1f.7", "")) | NAMES),
            max_size=min(vms, 6)))
        lines.append(
            f"<IVSHMEM_REGION><NAME>{escape(draw(NAMES))}</NAME>"
            f"<PROVIDED_BY>{draw(st.sampled_from(PROVIDERS))}</PROVIDED_BY>"
            f"<IVSHMEM_SIZE>{escape(draw(SIZES))}</IVSHMEM_SIZE>"
            "<IVSHMEM_VMS>" + "".join(
                f"<IVSHMEM_VM><VM_NAME>{escape(vm)}</VM_NAME>"
                f"<VBDF>{escape(vbdf)}</VBDF></IVSHMEM_VM>"
                for vm, vbdf in members)
            + "</IVSHMEM_VMS></IVSHMEM_REGION>")
    lines.append("</IVSHMEM></FEATURES></hv>")
    for index, name in enumerate(names):
        lines.append(
            f'<vm id="{index}"><load_order>'
            f"{draw(st.sampled_from(LOAD_ORDERS))}</load_order>"
            f"<vm_type>{draw(st.sampled_from(('RTVM', 'STANDARD_VM')))}"
            f"</vm_type><name>{escape(name)}</name></vm>")
    lines.append("</acrn-config>")
    return "\n".join(lines).encode("utf-8")


PROVIDERS = ("Hypervisor", "Device Model", "hv?")
SIZES = st.sampled_from(("2", "512", "0x2")) | NAMES


def svg_of_text(text: bytes) -> bytes:
    scenario = from_document(parse_bytes(text, "big.xml"))
    return to_svg(scenario).encode("utf-8")


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(big_scenarios())
def test_svg_stays_readable_up_to_16_vms_and_32_regions(text):
    data = svg_of_text(text)
    etree.fromstring(data)
    check_readable(data)


def test_svg_readable_at_16_vms_and_32_regions_all_shared():
    # Every region shared by six VMs, long wide names: the worst case.
    vms = "".join(
        f'<vm id="{index}"><load_order>{LOAD_ORDERS[index % 3]}'
        f"</load_order><name>{'虚拟机' * 5}{index:02d}</name></vm>"
        for index in range(16))
    regions = "".join(
        f"<IVSHMEM_REGION><NAME>{'shm_' * 7}{index}</NAME>"
        "<IVSHMEM_SIZE>2</IVSHMEM_SIZE><IVSHMEM_VMS>" + "".join(
            f"<IVSHMEM_VM><VM_NAME>{'虚拟机' * 5}{(index + k) % 16:02d}"
            f"</VM_NAME><VBDF>00:{8 + k:02x}.0</VBDF></IVSHMEM_VM>"
            for k in range(6)) + "</IVSHMEM_VMS></IVSHMEM_REGION>"
        for index in range(32))
    data = svg_of_text(
        f"<acrn-config><hv><FEATURES><IVSHMEM>{regions}</IVSHMEM>"
        f"</FEATURES></hv>{vms}</acrn-config>".encode("utf-8"))
    check_readable(data)
    root = ElementTree.fromstring(data)
    assert len(frames(data)) == 48
    assert len(list(root.iter(f"{SVG}line"))) == 32 * 6


def test_readability_checks_catch_overlaps():
    """The checker itself: two frames on top of each other, a label that
    sticks out of its box, a VBDF over a box."""
    base = svg_of_text(
        b"<acrn-config><hv><FEATURES><IVSHMEM><IVSHMEM_REGION><NAME>r</NAME>"
        b"<IVSHMEM_VMS><IVSHMEM_VM><VM_NAME>a</VM_NAME><VBDF>00:08.0</VBDF>"
        b"</IVSHMEM_VM></IVSHMEM_VMS></IVSHMEM_REGION></IVSHMEM></FEATURES>"
        b'</hv><vm id="0"><load_order>SERVICE_VM</load_order><name>a</name>'
        b'</vm><vm id="1"><load_order>SERVICE_VM</load_order><name>b</name>'
        b"</vm></acrn-config>")
    check_readable(base)
    root = ElementTree.fromstring(base)
    first, second = [group.find(f"{SVG}rect") for group in root.iter(
        f"{SVG}g") if group.get("id") in ("vm0", "vm1")]
    for broken in (
            base.replace(f'y="{second.get("y")}"'.encode(),
                         f'y="{first.get("y")}"'.encode()),
            base.replace(b">VM id 0<", b">" + b"x" * 60 + b"<"),
            base.replace(b'text-anchor="end">00:08.0',
                         b'text-anchor="start">00:08.0')):
        assert broken != base
        with pytest.raises(AssertionError):
            check_readable(broken)
