"""The scenario picture (:mod:`acrn_ivshmem.graph`): DOT, SVG, PNG.

``tests/test_graph/`` holds two scenarios of its own (``hostile_v3.xml``:
names that try to break out of DOT and SVG; ``odd_legacy.xml``: legacy
corner cases) and ``golden/``, the DOT text of those and of real ACRN
scenarios; refresh the goldens with ``UPDATE_GOLDEN=1`` and review the
diff. Rendering tests need Graphviz's ``dot`` and ``rsvg-convert``
(Debian packages graphviz and librsvg2-bin); they skip when a tool is
missing, unless ``ACRN_SHM_REQUIRE_TOOLS=1`` (set in CI) makes them fail.
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

import pytest

from acrn_ivshmem.errors import (
    AcrnShmError, GraphvizError, InputError, UsageError,
)
from acrn_ivshmem.graph import (
    MISSING_DOT, format_for, graph_data, load_scenario, render, to_dot,
    write_graph,
)
from conftest import ACRN_DATA, PROJECT, run_acrn_shm

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
    need("dot")
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


def test_no_stray_golden_files():
    assert sorted(path.stem for path in GOLDEN.iterdir()) == sorted(CASES)


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
# SVG with the real dot


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
    assert tags <= {"svg", "g", "title", "text", "polygon", "path",
                    "ellipse", "polyline"}, tags
    for element in root.iter():
        for attribute in element.attrib:
            assert not attribute.lower().startswith("on"), attribute
            assert "href" not in attribute, attribute
    node_ids = sorted(group.findtext(f"{SVG}title")
                      for group in root.iter(f"{SVG}g")
                      if group.get("class") == "node")
    assert node_ids == sorted(
        [f"vm{index}" for index in range(6)]
        + [f"region{index}" for index in range(3)]
        + ["missing0", "missing1"])
    assert sum(group.get("class") == "edge"
               for group in root.iter(f"{SVG}g")) == 6
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
    # Graphviz sizes the SVG in points; rsvg-convert draws 96 px/inch.
    for pixels, points in ((width, root.get("width")),
                           (height, root.get("height"))):
        assert points.endswith("pt")
        assert abs(pixels - float(points[:-2]) * 96 / 72) <= 1
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


def test_missing_dot_is_one_line_and_dot_format_still_works(
        tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(GraphvizError) as caught:
        render("graph {}\n", "svg")
    assert str(caught.value) == (
        "Graphviz's dot is not installed: apt-get install graphviz (or use "
        "-f dot, which writes the DOT text without it)")
    assert str(caught.value) == MISSING_DOT
    out = tmp_path / "topology.svg"
    with pytest.raises(GraphvizError) as caught:
        write_graph(str(ODD), str(out))
    assert str(caught.value) == f"{out}: {MISSING_DOT}"
    assert not out.exists()
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
        render("graph {}\n", "svg")
    assert str(caught.value) == (
        "dot -Tsvg failed (exit 3): Error: bad\\x1b[31m thing")


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
        render("graph {\n", "svg")
    message = str(caught.value)
    assert message.startswith("dot -Tsvg failed (exit 1): ")
    assert "syntax error" in message and "\n" not in message


def test_unknown_formats():
    with pytest.raises(UsageError) as caught:
        render("graph {}\n", "jpg")
    assert str(caught.value) == (
        "unknown graph format 'jpg'; choose svg, png, pdf, dot")
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
    need("dot")
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
    need("dot")
    scenario = PROJECT / "scenario-xmls" / "dm_land_v3.xml"
    svg = subprocess.run(
        [sys.executable, "-m", "acrn_ivshmem", "graph", str(scenario),
         "-f", "svg"], capture_output=True, check=True).stdout
    assert "dm_ring" in svg_texts(svg)
    png = subprocess.run(
        [sys.executable, "-m", "acrn_ivshmem", "graph", str(scenario),
         "-f", "png"], capture_output=True, check=True).stdout
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
