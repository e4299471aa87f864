"""Input text in a message is shown cut to 80 characters (issue 14 item 9).

A 5 MB region name made one 5 MB line. Now every message quotes input
text through ``errors.quoted`` (or ``errors.shortened``): at most
``MAX_SHOWN`` characters, an ellipsis where it was cut. The property,
over every command: long text put in any element of a real scenario
(legacy or v3) or in any option never shows more than ``MAX_SHOWN``
characters of itself on a line of a message (stderr, and stdout where
it holds messages rather than data such as a script or XML). Each
command runs in its own process (``cli_server``).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from cli_server import CliServer
from conftest import ACRN_DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from acrn_ivshmem.errors import MAX_SHOWN, quoted, shortened

WHL = {"v3.3": ACRN_DATA / "v3.3" / "whl-ipc-i5",
       "v2.7": ACRN_DATA / "v2.7" / "whl-ipc-i5"}

pytestmark = pytest.mark.skipif(not WHL["v3.3"].is_dir(),
                                reason=f"{WHL['v3.3']} is missing")

# The long text is made of this letter, which no message uses.
LETTER = "ж"
RUN = re.compile(f"{LETTER}+")
# Derandomized and bounded: the same examples on every run.
EXAMPLES = settings(
    max_examples=12, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture,
                           HealthCheck.too_slow])

# Commands on the scenario "s.xml" (with board "b.xml", a launch script
# "run.sh"; legacy: launch XML "l.xml"): (arguments, whether stdout
# holds messages). {R} is the first region's name, {V} the first two
# VMs, {P} the first post-launched VM (as given on the command line).
COMMANDS = {
    "v3.3": [
        (["lint", "s.xml", "--board", "b.xml"], True),
        (["lint", "s.xml", "--board", "b.xml", "-f", "json"], True),
        (["lint", "s.xml", "--board", "b.xml", "-f", "github"], True),
        (["add-region", "s.xml", "--board", "b.xml", "--vms", "{V}"], True),
        (["set-region", "s.xml", "{R}", "--size", "4"], True),
        (["remove-region", "s.xml", "{R}"], True),
        (["regions", "s.xml"], False),
        (["launch-script", "s.xml", "--board", "b.xml"], False),
        (["check-launch", "run.sh", "--scenario", "s.xml", "--vm", "{P}"],
         True),
        (["qemu-args", "--scenario", "s.xml", "--vm", "{P}"], False),
        (["graph", "s.xml", "-f", "dot"], False),
    ],
    "v2.7": [
        (["lint", "s.xml", "--board", "b.xml"], True),
        (["add-region", "s.xml", "--board", "b.xml", "--vms", "{V}"], True),
        (["remove-region", "s.xml", "{R}"], True),
        (["upgrade", "s.xml", "--launch", "l.xml", "--board", "b.xml"],
         False),
        (["launch-script", "s.xml", "--launch", "l.xml", "--board",
          "b.xml"], False),
    ],
}

# Options that take text, with {L} for the long text. stdout holds
# messages except for qemu-args (the QEMU arguments, data).
OPTIONS = [
    ["add-region", "s.xml", "--name", "{L}", "--vms", "0,2"],
    ["add-region", "s.xml", "--vms", "{L}"],
    ["add-region", "s.xml", "--vms", "0,{L}"],
    ["add-region", "s.xml", "--vms", "0,2", "--provider", "{L}"],
    ["add-region", "s.xml", "--vms", "0,2", "--vbdf", "{L}"],
    ["add-region", "s.xml", "--vms", "0,2", "--vbdf", "POST_STD_VM1={L}"],
    ["add-region", "s.xml", "--vms", "0,2", "--vbdf", "{L}=00:0c.0"],
    ["set-region", "s.xml", "{L}", "--size", "4"],
    ["set-region", "s.xml", "shm_region_0", "--vms", "{L}"],
    ["remove-region", "s.xml", "{L}"],
    ["lint", "s.xml", "-f", "{L}"],
    ["lint", "s.xml", "--select", "{L}"],
    ["lint", "s.xml", "--ignore", "{L}"],
    ["regions", "s.xml", "-f", "{L}"],
    ["launch-script", "s.xml", "--board", "b.xml", "--vm", "{L}"],
    ["launch-script", "s.xml", "--board", "b.xml", "--acrn-version", "{L}"],
    ["check-launch", "run.sh", "--scenario", "s.xml", "--vm", "{L}"],
    ["check-launch", "run.sh", "--scenario", "s.xml", "-f", "{L}"],
    ["qemu-args", "--scenario", "s.xml", "--vm", "{L}"],
    ["qemu-args", "--name", "{L}", "--size", "2"],
    ["qemu-args", "--scenario", "s.xml", "--vm", "POST_STD_VM1",
     "--shm-dir", "/{L}"],
    ["qemu-args", "--name", "r", "--size", "2", "--addr", "{L}"],
    ["host-prep", "--scenario", "s.xml", "--vm", "POST_STD_VM1", "--mode",
     "{L}", "--check"],
    ["graph", "s.xml", "-f", "{L}"],
    ["explain", "{L}"],
    ["build", "--acrn-src", "acrn", "--board", "b.xml", "--scenario",
     "s.xml", "--", "BOARD={L}"],
]


def longest(text: str) -> int:
    """The longest run of LETTER in ``text``."""
    return max((len(run) for run in RUN.findall(text)), default=0)


def check(outcome, argv: list[str], messages_on_stdout: bool) -> None:
    assert not outcome.hung, argv
    assert outcome.signal is None, argv
    assert "Traceback" not in outcome.stderr, (argv, outcome.stderr[-2000:])
    shown = outcome.stderr + (outcome.stdout if messages_on_stdout else "")
    for line in shown.splitlines():
        assert longest(line) <= MAX_SHOWN, (argv, line[:300])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One warmed-up CLI server for the module."""
    folder = tmp_path_factory.mktemp("server")
    with CliServer(folder, ["lint", str(WHL["v3.3"])]) as running:
        yield running


def workspace(folder: Path, version: str, scenario: bytes) -> Path:
    """``folder`` holding s.xml (``scenario``), b.xml, l.xml, run.sh and
    a fake ACRN tree."""
    folder.mkdir()
    (folder / "s.xml").write_bytes(scenario)
    shutil.copy(WHL["v3.3"] / "whl-ipc-i5.xml", folder / "b.xml")
    shutil.copy(WHL["v2.7"] / "hybrid_rt_launch_1user_vm_waag.xml",
                folder / "l.xml")
    (folder / "run.sh").write_text(
        "#!/bin/bash\nacrn-dm -s 8,ivshmem,hv:/shm_region_0,2 "
        "POST_STD_VM1\n")
    (folder / "acrn").mkdir()
    (folder / "acrn" / "VERSION").write_text(
        "MAJOR_VERSION=3\nMINOR_VERSION=3\n")
    (folder / "acrn" / "Makefile").write_text("")
    return folder


def leaves(root: etree._Element) -> list[etree._Element]:
    """Elements with text and no children, in document order."""
    return [element for element in root.iter(etree.Element)
            if len(element) == 0 and (element.text or "").strip()]


def names(root: etree._Element) -> dict[str, str]:
    """{R}, {V} and {P} for COMMANDS, read from the (changed) scenario."""
    region = root.findtext(".//IVSHMEM_REGION/NAME") or ""
    if not region:
        raw = root.findtext(".//IVSHMEM_REGION") or ""
        region = raw.split(",")[0].split("/")[-1].strip()
    vms = root.findall("vm")
    legacy = root.find(".//IVSHMEM_REGION/NAME") is None
    refs = [(vm.get("id") if legacy else vm.findtext("name")) or ""
            for vm in vms]
    post = [vm.findtext("name") or "" for vm in vms
            if "POST" in (vm.findtext("load_order") or
                          vm.findtext("vm_type") or "")]
    return {"{R}": region, "{V}": ",".join(refs[:2]),
            "{P}": (post or ["POST_STD_VM1"])[0]}


@EXAMPLES
@given(data=st.data(), version=st.sampled_from(sorted(COMMANDS)))
def test_long_text_in_any_element_is_shown_cut(server, tmp_path_factory,
                                               data, version):
    source = (WHL[version] / "hybrid_rt.xml").read_bytes()
    root = etree.fromstring(source)
    chosen = data.draw(st.lists(st.sampled_from(leaves(root)), min_size=1,
                                max_size=3, unique_by=id), label="elements")
    for element in chosen:
        size = data.draw(st.integers(MAX_SHOWN + 1, 5000), label="size")
        element.text = LETTER * size
    scenario = etree.tostring(root, xml_declaration=True, encoding="utf-8")
    folder = workspace(tmp_path_factory.mktemp("long") / "w", version,
                       scenario)
    values = names(root)
    for template, messages_on_stdout in COMMANDS[version]:
        argv = [values.get(arg, arg) for arg in template]
        (folder / "s.xml").write_bytes(scenario)
        check(server.run(argv, folder), argv, messages_on_stdout)


@pytest.mark.parametrize("argv", OPTIONS, ids=lambda argv: " ".join(argv))
def test_long_text_in_any_option_is_shown_cut(server, tmp_path, argv):
    folder = workspace(tmp_path / "w", "v3.3",
                       (WHL["v3.3"] / "hybrid_rt.xml").read_bytes())
    long = LETTER * 3000
    argv = [arg.replace("{L}", long) for arg in argv]
    outcome = server.run(argv, folder)
    check(outcome, argv, argv[0] != "qemu-args")
    assert outcome.code in (0, 1, 2), outcome


def test_five_megabyte_region_name(server, tmp_path):
    # The case of the issue: one region NAME of 5 MB. The file is past
    # the text limit (bench/shapes), so lint refuses it in one short
    # line; the same name given on the command line is shown cut.
    name = LETTER * (5 * 1024 * 1024 // 2)  # two bytes each in UTF-8
    source = (WHL["v3.3"] / "hybrid_rt.xml").read_bytes()
    scenario = re.sub(rb"<NAME>shm_region_0</NAME>",
                      f"<NAME>{name}</NAME>".encode(), source, count=1)
    folder = workspace(tmp_path / "w", "v3.3", scenario)
    cut = quoted(name)
    assert cut == f"'{LETTER * (MAX_SHOWN - 1)}\u2026'"
    lint = server.run(["lint", "s.xml", "--board", "b.xml"], folder)
    check(lint, ["lint"], True)
    assert (lint.code, lint.stdout) == (2, "")
    assert lint.stderr.startswith("acrn-shm: error: s.xml: 2621782 "
                                  "characters of text")
    folder = workspace(tmp_path / "w2", "v3.3", source)
    removed = server.run(["remove-region", "s.xml", name], folder)
    check(removed, ["remove-region"], True)
    assert removed.code == 2
    assert cut in removed.stderr and len(removed.stderr) < 300


def test_longest_region_name_a_scenario_may_hold(server, tmp_path):
    # Under the text limit, a long name from the file is shown cut.
    name = LETTER * 12000
    source = (WHL["v3.3"] / "hybrid_rt.xml").read_bytes()
    scenario = re.sub(rb"<NAME>shm_region_0</NAME>",
                      f"<NAME>{name}</NAME>".encode(), source, count=1)
    folder = workspace(tmp_path / "w", "v3.3", scenario)
    cut = quoted(name)
    lint = server.run(["lint", "s.xml", "--board", "b.xml"], folder)
    check(lint, ["lint"], True)
    assert cut in lint.stdout and lint.code == 1
    removed = server.run(["remove-region", "s.xml", name], folder)
    check(removed, ["remove-region"], True)
    assert removed.stdout == f"s.xml: removed region {cut}\n"


@pytest.mark.parametrize("text, shown", [
    ("", ""),
    ("a" * MAX_SHOWN, "a" * MAX_SHOWN),
    ("a" * (MAX_SHOWN + 1), "a" * (MAX_SHOWN - 1) + "\u2026"),
    ("a\nb", "a\\x0ab"),
    # An escape is never cut in two: dropped whole before the ellipsis.
    ("a" * (MAX_SHOWN - 3) + "\x1b" * 2,
     "a" * (MAX_SHOWN - 3) + "\u2026"),
    ("a" * (MAX_SHOWN - 5) + "\x1b", "a" * (MAX_SHOWN - 5) + "\\x1b"),
    (7, "7"),
])
def test_shortened(text, shown):
    assert shortened(text) == shown
    assert quoted(text) == f"'{shown}'"
