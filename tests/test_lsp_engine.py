"""The language server's way into acrn-shm (``lsp/engine.py``) and the
pieces that need no editor: encodings, configuration problems, fix
safety, the skipped structure check."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_client import whl_with_3mb_region

from acrn_ivshmem.diagnostics import SAFE, UNSAFE, TextFix
from acrn_ivshmem.io.xmlio import Loc
from acrn_ivshmem.lint import schema
from acrn_ivshmem.lint.config import LintConfig
from acrn_ivshmem.lint.engine import lint
from acrn_ivshmem.lsp import actions, engine
from acrn_ivshmem.lsp.server import AcrnShmServer
from acrn_ivshmem.lsp.text import Text


@pytest.fixture
def scenario(acrn_data, tmp_path):
    """hybrid_rt.xml with a 3 MB region beside its board."""
    return whl_with_3mb_region(acrn_data, tmp_path)


def test_an_ignored_structure_check_does_not_run(scenario, monkeypatch):
    # The slow check (ISM001) is skipped, not run and then filtered,
    # when the configuration leaves it out: the server's fast lint.
    def refuse(*_args, **_kwargs):
        raise AssertionError("the structure check ran")

    monkeypatch.setattr(schema, "check_structure", refuse)
    result = lint([str(scenario)], None, LintConfig(ignore=("ISM001",)))
    assert [d.code for d in result.diagnostics] == ["ISM201"]
    with pytest.raises(AssertionError, match="structure check ran"):
        lint([str(scenario)], None, LintConfig())


def test_the_declared_encoding_is_used(scenario):
    text = scenario.read_text().replace(
        "<acrn-config>", '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        "<acrn-config><!-- café -->", 1)
    assert engine.encode(text)[:60].decode("latin-1").startswith(
        '<?xml version="1.0" encoding="ISO-8859-1"?>')
    server = AcrnShmServer()
    _linted, found = server.lint_now(str(scenario), Text(text), False)
    assert [(d.code, d.range.start.line) for d in found] == [
        ("ISM201", 31)]
    broken = text.replace("café", "caf\U0001F600")
    _linted, found = server.lint_now(str(scenario), Text(broken), False)
    assert [(d.message, d.range.start.line, d.range.start.character)
            for d in found] == [
        ("character '\U0001F600' cannot be written in iso8859-1", 1, 21)]


def test_a_bad_configuration_is_reported_and_defaults_apply(scenario):
    (scenario.parent / "pyproject.toml").write_text(
        "[tool.acrn-shm]\nignore = ['ISM999']\n")
    _linted, found = AcrnShmServer().lint_now(
        str(scenario), Text(scenario.read_text()), False)
    assert [(d.code, d.message) for d in found] == [
        (None, (f"{scenario.parent / 'pyproject.toml'}: [tool.acrn-shm] "
                "ignore: unknown rule code 'ISM999'; see 'acrn-shm rules'")),
        ("ISM201", ("region 'shm_region_0' size '3' is not a power of two "
                    "from 2 to 512 (MB)\nhint: use one of 2, 4, 8, 16, 32, "
                    "64, 128, 256, 512"))]


def test_located_problems():
    assert engine.located_problem("a:b.xml", "a:b.xml:3:7: bad") == \
        engine.Problem(3, 7, "bad")
    assert engine.located_problem("a.xml", "a.xml:3: bad") == \
        engine.Problem(3, None, "bad")
    assert engine.located_problem("a.xml", "a.xml: no such file") == \
        engine.Problem(None, None, "no such file")
    assert engine.located_problem("a.xml", "board.xml:1:1: bad") == \
        engine.Problem(None, None, "board.xml:1:1: bad")


def test_fix_safety_comes_from_the_fix():
    # Safe: a preferred quick fix, part of "fix all".
    text = Text("<VBDF>0:0A.0</VBDF>\n")
    safe = TextFix(Loc(1, 7), "0:0A.0", "00:0a.0", SAFE)
    [action] = actions.fixes("file:///s.xml", 3, text, [("ISM306", safe)],
                             actions.fix_edit(text, safe).range, [])
    assert action.title == "Fix ISM306: replace '0:0A.0' with '00:0a.0'"
    assert action.is_preferred is True
    [every] = actions.fix_all("file:///s.xml", 3, text, [("ISM306", safe)])
    assert every.title == "Fix all acrn-shm safe fixes (1)"
    # The same fix marked unsafe: offered as such, never in "fix all".
    unsafe = safe._replace(safety=UNSAFE)
    [action] = actions.fixes("file:///s.xml", 3, text, [("ISM306", unsafe)],
                             actions.fix_edit(text, unsafe).range, [])
    assert action.title == \
        "Unsafe fix ISM306: replace '0:0A.0' with '00:0a.0'"
    assert action.is_preferred is False
    assert actions.fix_all("file:///s.xml", 3, text,
                           [("ISM306", unsafe)]) == []


def test_the_ism201_fix_is_offered_as_unsafe_and_ism216_as_safe():
    path = Path(__file__).parent / "test_rules" / "ISM201_fail_v3.xml"
    text = Text(path.read_text(encoding="utf-8"))
    found = [(p.code, p.fix) for p in lint(
        [str(path)], None, LintConfig(select=("ISM201",))).fixes]
    assert [fix.safety for _, fix in found] == [UNSAFE]
    whole = actions.fix_edit(text, found[0][1]).range
    [action] = actions.fixes("file:///s.xml", 1, text, found, whole, [])
    assert action.title == "Unsafe fix ISM201: replace '3' with '4'"
    assert action.is_preferred is False
    assert actions.fix_all("file:///s.xml", 1, text, found) == []
    path = Path(__file__).parent / "test_rules" / "ISM216_fail.xml"
    text = Text(path.read_text(encoding="utf-8"))
    found = [(p.code, p.fix) for p in lint(
        [str(path)], None, LintConfig(select=("ISM216",))).fixes]
    assert [fix.safety for _, fix in found] == [SAFE, SAFE]
    whole = actions.fix_edit(text, found[0][1]).range
    [action] = actions.fixes("file:///s.xml", 1, text, found[:1], whole, [])
    assert action.title.startswith("Fix ISM216: replace "
                                   "'<IVSHMEM_VMS' with ")
    assert action.is_preferred is True
    [every] = actions.fix_all("file:///s.xml", 1, text, found)
    assert every.title == "Fix all acrn-shm safe fixes (2)"


def test_stale_fixes_are_not_offered():
    text = Text("<VBDF>00:0a.0</VBDF>\n")
    assert actions.fix_edit(text, TextFix(Loc(1, 7), "0:0A.0",
                                          "00:0a.0")) is None
