"""The edit gate: an edit is refused when it adds a lint error, and only
then, whatever the messages of the errors already there say.

``tests/test_edit_gate/ten_hv.xml`` holds ten hypervisor regions
(``shm_region_0`` to ``shm_region_9``, ids 0 to 9): the 9th and 10th
are ISM202 errors whose messages carry their number.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from conftest import PROJECT, run_acrn_shm
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from acrn_ivshmem.cli.quick import run_quick
from acrn_ivshmem.diagnostics import Diagnostic
from acrn_ivshmem.edit.gate import added_errors, changed_ranges, gate_edit
from acrn_ivshmem.edit.regions import RegionSpec, add_region, remove_region
from acrn_ivshmem.errors import UsageError
from acrn_ivshmem.io.xmlio import parse_bytes
from acrn_ivshmem.model.loader import from_document

DATA = Path(__file__).parent / "test_edit_gate"


@pytest.fixture
def ten(tmp_path) -> Path:
    target = tmp_path / "ten_hv.xml"
    shutil.copy(DATA / "ten_hv.xml", target)
    return target


def _ism202(path: Path) -> list[tuple[int, str]]:
    result = run_acrn_shm(["lint", "--select", "ISM202", "-f", "json",
                           path.name], path.parent)
    return [(d["line"], d["message"]) for d in json.loads(result.stdout)]


def test_removing_a_region_before_two_errors_is_not_refused(ten):
    # Region 9 was number 10 and is number 9 now: its message changed,
    # and it is still the one error it was.
    result = run_acrn_shm(["remove-region", ten.name, "shm_region_0"],
                          ten.parent)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "ten_hv.xml: removed region 'shm_region_0'\n", "")
    assert _ism202(ten) == [
        (135, "region 'shm_region_9' is hypervisor region number 9; at "
         "most 8 are allowed")]


def test_moving_a_region_to_the_device_model_is_not_refused(ten):
    result = run_acrn_shm(["set-region", ten.name, "shm_region_3",
                           "--provider", "dm"], ten.parent)
    assert (result.returncode, result.stderr) == (0, "")
    assert [line for line, _ in _ism202(ten)] == [151]


def test_an_edit_that_adds_an_error_is_refused_and_shows_only_it(ten):
    before = ten.read_bytes()
    result = run_acrn_shm(["set-region", ten.name, "shm_region_0",
                           "--size", "3", "--provider", "dm"], ten.parent)
    assert result.returncode == 1
    assert result.stderr == (
        "ten_hv.xml:10:25: ISM201 [error] region 'shm_region_0' size '3' "
        "is not a power of two from 2 to 512 (MB)\n"
        "    hint: use one of 2, 4, 8, 16, 32, 64, 128, 256, 512\n"
        "1 error in 1 file\n"
        "acrn-shm: ten_hv.xml: the edit adds 1 error(s); nothing written "
        "(--force writes anyway)\n")
    assert ten.read_bytes() == before


def test_an_eleventh_region_is_refused(ten):
    result = run_acrn_shm(["add-region", ten.name, "--vms", "1,2"],
                          ten.parent)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "ten_hv.xml:167:9: ISM202 [error] region 'shm_region_10' is "
        "hypervisor region number 11; at most 8 are allowed")
    assert "the edit adds 1 error(s)" in result.stderr


# -- the gate as a library call ----------------------------------------------


def test_gate_edit_is_callable_without_the_cli(ten):
    before = ten.read_bytes()
    gated = gate_edit(str(ten), before, None, lambda document, board:
                      add_region(document, RegionSpec(vms=("1", "2")),
                                 board))
    assert [(d.path, d.line, d.column, d.code) for d in gated.added] == [
        (str(ten), 167, 9, "ISM202")]
    assert gated.result.summary.startswith("added region 'shm_region_10'")
    assert ten.read_bytes() == before  # the gate writes nothing


def test_gate_edit_names_the_file_when_the_change_is_refused(ten):
    def refuse(document, board):
        raise UsageError("no region 'x'")

    with pytest.raises(UsageError) as caught:
        gate_edit(str(ten), ten.read_bytes(), None, refuse)
    assert str(caught.value) == f"{ten}: no region 'x'"


def test_gate_edit_refuses_a_file_that_is_not_a_scenario():
    board = PROJECT / "board-xmls" / "demo-nuc.xml"
    with pytest.raises(UsageError) as caught:
        gate_edit(str(board), board.read_bytes(), None, None)
    assert str(caught.value) == f"{board}: expected a scenario XML"


# -- added_errors on its own ------------------------------------------------

_DOC = (b"<acrn-config>\n<a>x</a>\n<b>y</b>\n<c>z</c>\n</acrn-config>\n")


def _error(line: int, message: str, code: str = "ISM201",
           path: str = "s.xml") -> Diagnostic:
    return Diagnostic(path, line, 2, code, "error", message)


def test_findings_match_by_element_not_by_message():
    # <b> moves up a line (<a> removed); its finding keeps its element
    # though the message changed; <c>'s is new although the message is
    # the one <b> had before.
    before = parse_bytes(_DOC, "s.xml")
    after = parse_bytes(_DOC.replace(b"<a>x</a>\n", b""), "s.xml")
    old = [_error(3, "one"), _error(2, "in a")]
    new = [_error(2, "two"), _error(3, "one")]
    assert added_errors(before, after, old, new) == [_error(3, "one")]


def test_the_element_an_edit_writes_is_new_even_in_its_old_place():
    before = parse_bytes(_DOC, "s.xml")
    data = _DOC.replace(b"<b>y</b>", b"<b>w</b>")
    after = parse_bytes(data, "s.xml")
    old = [_error(3, "about b")]
    # The text changed, the start tag did not: the same element.
    assert added_errors(before, after, old, [_error(3, "b")]) == []
    # Replaced with its start tag, it is another element.
    start = _DOC.index(b"<b>")
    changes = [(start, start + 8, 8)]
    assert added_errors(before, after, old, [_error(3, "b")], changes) == [
        _error(3, "b")]


def test_other_files_and_warnings():
    before = parse_bytes(_DOC, "s.xml")
    board = _error(7, "board", "ISM001", "board.xml")
    warning = Diagnostic("s.xml", 2, 2, "ISM216", "warning", "w")
    assert added_errors(before, before, [board], [board, warning]) == []
    assert added_errors(before, before, [], [board]) == [board]


@pytest.mark.parametrize("old, new, expected", [
    (b"abc", b"abc", []),
    (b"abc", b"abXc", [(2, 2, 1)]),
    (b"abcabc", b"abc", [(3, 6, 0)]),
    (b"", b"x", [(0, 0, 1)]),
    (b"aXa", b"aYYa", [(1, 2, 2)]),
])
def test_changed_ranges(old, new, expected):
    assert changed_ranges(old, new) == expected


def test_edit_results_list_their_changes():
    data = (DATA / "ten_hv.xml").read_bytes()
    result = remove_region(parse_bytes(data), "shm_region_0")
    (start, end, length), = result.changes
    assert result.data == data[:start] + data[end:] and length == 0


# -- Generated edit sequences -------------------------------------------------

POSTS = ("POST_STD_VM1", "POST_STD_VM2", "POST_STD_VM3", "POST_STD_VM4")
_VMS = "".join(
    f'  <vm id="{index + 1}">\n    <load_order>POST_LAUNCHED_VM'
    f'</load_order>\n    <name>{name}</name>\n  </vm>\n'
    for index, name in enumerate(POSTS))
BASE = (b"<acrn-config>\n  <hv>\n    <FEATURES>\n      <IVSHMEM/>\n"
        b"    </FEATURES>\n  </hv>\n  <vm id=\"0\">\n    <load_order>"
        b"SERVICE_VM</load_order>\n    <name>ACRN_Service_VM</name>\n"
        b"  </vm>\n" + _VMS.encode() + b"</acrn-config>\n")
ALLOWED = {str(2 ** power) for power in range(1, 10)}

vms = st.lists(st.sampled_from(POSTS), min_size=2, max_size=3, unique=True)
ids = st.none() | st.sampled_from([1, 2, 7])
region = st.tuples(st.sampled_from([2, 3, 4]), st.sampled_from(["hv", "dm"]),
                   vms, ids)
operation = st.one_of(
    st.tuples(st.just("add"), region),
    st.tuples(st.just("remove"), st.integers(0, 20)),
    st.tuples(st.just("size"), st.integers(0, 20),
              st.sampled_from([2, 3, 8])),
    st.tuples(st.just("provider"), st.integers(0, 20),
              st.sampled_from(["hv", "dm"])),
    st.tuples(st.just("id"), st.integers(0, 20), st.sampled_from([1, 2, 7])),
    st.tuples(st.just("vms"), st.integers(0, 20), vms),
)


def _errors(data: bytes) -> Counter:
    """The errors a scenario of these edits has, by region name: what
    the gate must compare, worked out from the regions alone."""
    found: Counter = Counter()
    hv = 0
    seen_ids = set()
    for item in from_document(parse_bytes(data)).regions:
        name = item.name.text
        if item.size.text not in ALLOWED:
            found["ISM201", name] += 1
        if item.land == "hv":
            hv += 1
            if hv > 8:
                found["ISM202", name] += 1
        if item.region_id is not None:
            if item.region_id.text in seen_ids:
                found["ISM212", name] += 1
            seen_ids.add(item.region_id.text)
    return found


def _argv(op, names: list[str], index: int) -> list[str] | None:
    """The command line of ``op``; None for an edit of no region."""
    kind = op[0]
    if kind == "add":
        size, provider, members, region_id = op[1]
        argv = ["add-region", "--name", f"n{index}", "--size", str(size),
                "--provider", provider, "--vms", ",".join(members)]
        return argv + ([] if region_id is None
                       else ["--region-id", str(region_id)])
    if not names:
        return None
    target = names[op[1] % len(names)]
    if kind == "remove":
        return ["remove-region", target]
    option = {"size": "--size", "provider": "--provider",
              "id": "--region-id", "vms": "--vms"}[kind]
    value = ",".join(op[2]) if kind == "vms" else str(op[2])
    return ["set-region", target, option, value]


def _run(argv: list[str], path: Path, *extra: str) -> int:
    """``acrn-shm ARGV`` on ``path``, in this process (the quick path)."""
    command, *rest = argv
    with contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        status = run_quick(command, [str(path), *rest, *extra])
    assert status is not None, argv
    return status


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.lists(region, min_size=7, max_size=11),
       ops=st.lists(operation, min_size=1, max_size=5))
def test_an_edit_is_refused_exactly_when_it_adds_an_error(
        start, ops, tmp_path_factory):
    path = tmp_path_factory.mktemp("gate") / "s.xml"
    data = BASE
    for index, (size, provider, members, region_id) in enumerate(start):
        data = add_region(parse_bytes(data), RegionSpec(
            name=f"r{index}", size=size, provider=provider,
            vms=tuple(members), region_id=region_id)).data
    path.write_bytes(data)
    for index, op in enumerate(ops):
        names = [r.name.text for r in from_document(parse_bytes(data))
                 .regions]
        argv = _argv(op, names, index)
        if argv is None:
            continue
        status = _run(argv, path)
        edited = path.read_bytes()
        if status == 0:
            after = edited
        else:
            assert status == 1 and edited == data, argv
            after = _would_be(argv, data)
        adds = _errors(after) - _errors(data)
        event(f"{argv[0]}: {'refused' if status else 'written'}"
              f"{'' if _errors(data) else ', no errors before'}")
        assert status == (1 if adds else 0), (argv, adds)
        data = edited


def _would_be(argv: list[str], data: bytes) -> bytes:
    """The bytes a refused edit would have written (``--force``)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s.xml"
        path.write_bytes(data)
        assert _run(argv, path, "--force") == 0, argv
        return path.read_bytes()


# -- the gate reads [tool.acrn-shm] as lint does ----------------------------


@pytest.mark.parametrize("config, lint_output", [
    ('severity = { ISM201 = "warning" }\n',
     "ten_hv.xml:10:25: ISM201 [warning] region 'shm_region_0' size '3' "
     "is not a power of two from 2 to 512 (MB)\n"
     "    hint: use one of 2, 4, 8, 16, 32, 64, 128, 256, 512\n"),
    ('ignore = ["ISM201"]\n', ""),
])
def test_the_gate_follows_pyproject_like_lint(ten, config, lint_output):
    """An error the configuration makes a warning (or ignores) does not
    stop the edit; before, the gate linted with the defaults whatever
    pyproject.toml said, so lint passed a file the edit gate refused."""
    (ten.parent / "pyproject.toml").write_text(
        "[tool.acrn-shm]\n" + config)
    result = run_acrn_shm(["set-region", ten.name, "shm_region_0",
                           "--size", "3", "--provider", "dm"], ten.parent)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "ten_hv.xml: changed region 'shm_region_0': size 3 MB; "
        "provider dm\n", "")
    result = run_acrn_shm(["lint", "--select", "ISM201", ten.name],
                          ten.parent)
    assert (result.returncode, result.stdout) == (
        0, lint_output + ("1 warning in 1 file\n"
                          "1 fixable only with --unsafe-fixes\n"
                          if lint_output else "no problems in 1 file\n"))


def test_the_gate_refuses_a_bad_pyproject(ten):
    """A configuration lint refuses stops the edit too: exit 2, one line."""
    (ten.parent / "pyproject.toml").write_text(
        "[tool.acrn-shm]\nselect = [\"ISM999\"]\n")
    before = ten.read_bytes()
    result = run_acrn_shm(["remove-region", ten.name, "shm_region_0"],
                          ten.parent)
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", f"acrn-shm: error: {ten.parent / 'pyproject.toml'}: "
        "[tool.acrn-shm] select: unknown rule code 'ISM999'; see "
        "'acrn-shm rules'\n")
    assert ten.read_bytes() == before
