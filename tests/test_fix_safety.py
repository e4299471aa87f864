"""Fix safety classes, as ruff's: every fix a rule offers is safe or
unsafe, its rule's documentation says which and why, ``lint --fix``
takes the safe ones and ``--unsafe-fixes`` the others, and every output
carries the class (the end-to-end transcripts are goldens in
``tests/test_edit_cli``: ``lint-fix*``, ``lint-diff*``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acrn_ivshmem.diagnostics import (
    FIX_SAFETIES, SAFE, UNSAFE, Diagnostic, Loc, TextFix,
)
from acrn_ivshmem.lint import formats, rule_docs
from acrn_ivshmem.lint.config import LintConfig
from acrn_ivshmem.lint.engine import PendingFix, lint
from acrn_ivshmem.lint.fixes import apply_fixes, wanted
from acrn_ivshmem.rules import RULES

RULE_DATA = Path(__file__).parent / "test_rules"
#: The class of each rule's fixes; a rule that offers a fix is listed.
EXPECTED = {"ISM107": SAFE, "ISM201": UNSAFE, "ISM216": SAFE,
            "ISM306": SAFE}


def _fixes(code: str) -> list[PendingFix]:
    paths = sorted(str(path) for path in RULE_DATA.glob(f"{code}_*.xml"))
    return list(lint(paths, None, LintConfig(select=(code,))).fixes)


def _safety_doc(code: str) -> str | None:
    return dict(rule_docs.sections(RULES[code])).get("Fix safety")


@pytest.mark.parametrize("code", sorted(RULES))
def test_each_rule_documents_the_class_its_fixes_carry(code):
    found = {pending.fix.safety for pending in _fixes(code)}
    doc = _safety_doc(code)
    if code not in EXPECTED:
        assert (found, doc) == (set(), None)
        return
    assert found == {EXPECTED[code]}
    # "Safe: ..." or "Unsafe: ...", first thing in the section.
    assert doc.split(":")[0].split()[0].lower() == EXPECTED[code]


def test_explain_prints_the_class():
    assert "\nFix safety\n    Unsafe: it raises a v3 " in \
        rule_docs.text(RULES["ISM201"])
    assert "\nFix safety\n    Safe: it only adds an id" in \
        rule_docs.text(RULES["ISM216"])
    assert "\nFix safety\n    Safe: the value means the same PCI " in \
        rule_docs.text(RULES["ISM306"])
    page = (Path(__file__).parent.parent / "docs" / "rules" /
            "ISM201.md").read_text(encoding="utf-8")
    assert "## Fix safety\n\nUnsafe: it raises a v3 " in page


def test_an_unclassified_fix_is_unsafe():
    assert TextFix(Loc(1, 1), "a", "b").safety == UNSAFE
    assert FIX_SAFETIES == (SAFE, UNSAFE)


def test_diagnostics_carry_the_class_of_their_fix():
    paths = [str(RULE_DATA / "ISM201_fail_v3.xml"),
             str(RULE_DATA / "ISM216_fail.xml"),
             str(RULE_DATA / "ISM306_fail.xml")]
    result = lint(paths, None, LintConfig(select=("ISM201", "ISM216",
                                                  "ISM306", "ISM301")))
    classes = {(d.code, d.fix) for d in result.diagnostics}
    # ISM201 offers no fix for ' 1024 ' or an empty size.
    assert classes == {("ISM201", UNSAFE), ("ISM201", ""),
                       ("ISM216", SAFE), ("ISM306", SAFE)}
    assert {(p.code, p.fix.safety) for p in result.fixes} == \
        classes - {("ISM201", "")}


def test_wanted_takes_safe_fixes_unless_unsafe_ones_are_asked_for():
    safe = PendingFix("a.xml", "ISM306", TextFix(Loc(1, 1), "a", "b", SAFE))
    unsafe = PendingFix("a.xml", "ISM201", TextFix(Loc(2, 1), "c", "d"))
    assert wanted([unsafe, safe], unsafe=False) == [safe]
    assert wanted([unsafe, safe], unsafe=True) == [unsafe, safe]


def test_safe_and_unsafe_fixes_give_exact_bytes():
    # ISM201 (unsafe): only the plain decimal below 512 is raised.
    data = (RULE_DATA / "ISM201_fail_v3.xml").read_bytes()
    fixes = [pending.fix for pending in _fixes("ISM201")]
    assert wanted(_fixes("ISM201"), unsafe=False) == []
    after, applied = apply_fixes(data, fixes)
    assert [fix.loc for fix in applied] == [Loc(8, 25)]
    assert after == data.replace(b"<IVSHMEM_SIZE>3<", b"<IVSHMEM_SIZE>4<")
    # ISM216 (safe): an id for each region that shares id 0.
    path = RULE_DATA / "ISM216_fail.xml"
    data = path.read_bytes()
    fixes = [pending.fix for pending in _fixes("ISM216")]
    assert wanted(_fixes("ISM216"), unsafe=False) == _fixes("ISM216")
    after, applied = apply_fixes(data, fixes)
    assert applied == fixes
    lines = data.split(b"\n")
    for line, number in ((33, 3), (8, 2)):
        lines.insert(line - 1, b" " * 10 + b"<IVSHMEM_REGION_ID>%d"
                     b"</IVSHMEM_REGION_ID>" % number)
    assert after == b"\n".join(lines)
    # ISM306: only the VBDF's spelling.
    data = (RULE_DATA / "ISM306_fail.xml").read_bytes()
    after, applied = apply_fixes(data, [p.fix for p in _fixes("ISM306")])
    # Applied in file order.
    assert [fix.loc for fix in applied] == [Loc(12, 21), Loc(28, 17)]
    assert after == data.replace(b">0:0A.0<", b">00:0a.0<").replace(
        b"00:1B.0", b"00:1b.0")
    assert len(after) == len(data) + 1


def _diagnostic(code: str, fix: str) -> Diagnostic:
    return Diagnostic("s.xml", 3, 5, code, "warning", "m", "h", fix)


def test_text_counts_the_hidden_unsafe_fixes():
    found = [_diagnostic("ISM201", UNSAFE), _diagnostic("ISM306", SAFE),
             _diagnostic("ISM306", SAFE), _diagnostic("ISM204", "")]
    assert formats.text(found, 1).splitlines()[-2:] == [
        "4 warnings in 1 file",
        "2 fixable with --fix, 1 more with --unsafe-fixes"]
    # Nothing hidden: with --unsafe-fixes, or with safe fixes only.
    assert formats.text(found, 1, unsafe_fixes=True).splitlines()[-1] == \
        "4 warnings in 1 file"
    assert formats.text(found[1:], 1).splitlines()[-1] == \
        "3 warnings in 1 file"
    # Commands that quote findings but fix nothing leave the line out.
    assert formats.text(found, 1, fix_summary=False).splitlines()[-1] == \
        "4 warnings in 1 file"
    # Only unsafe fixes: no "0 fixable".
    assert formats.text(found[:1], 1).splitlines()[-1] == \
        "1 fixable only with --unsafe-fixes"


def test_json_and_sarif_carry_the_class():
    found = [_diagnostic("ISM201", UNSAFE), _diagnostic("ISM204", "")]
    items = json.loads(formats.json_(found, 1))
    assert [item.get("fix") for item in items] == [UNSAFE, None]
    results = json.loads(formats.sarif(found, 1))["runs"][0]["results"]
    assert [result.get("properties") for result in results] == [
        {"fix": UNSAFE}, None]


def test_of_overlapping_fixes_the_first_is_applied():
    # Two fixes of one VBDF: the editor would refuse both at once, so the
    # fix layer keeps the first in file order and skips the other (the
    # next lint run offers it again if it still applies).
    data = b"<VBDF>0:0A.0</VBDF>\n"
    first = TextFix(Loc(1, 7), "0:0A.0", "00:0a.0", SAFE)
    inner = TextFix(Loc(1, 9), "0A", "0a", SAFE)
    after, applied = apply_fixes(data, [inner, first])
    assert (after, applied) == (b"<VBDF>00:0a.0</VBDF>\n", [first])
    # A stale fix (its text is gone) is skipped, not misapplied.
    assert apply_fixes(after, [first]) == (after, [])


@pytest.mark.parametrize(("v3", "text", "new"), [
    (True, "3", "4"), (True, "0", "2"), (True, "1", "2"), (True, "0003", "4"),
    (True, "511", "512"), (True, "513", None), (True, "1024", None),
    (True, "9" * 5000, None), (True, "0" * 5000 + "5", "8"),
    (True, " 3", None), (True, "\uff13", None), (True, "3.5", None),
    (False, "3", None)])
def test_the_size_fix_raises_only_a_plain_v3_decimal(v3, text, new):
    from acrn_ivshmem.rules.region_size import _raise_to_allowed
    assert _raise_to_allowed(v3, text) == new
