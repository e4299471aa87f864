"""Rule tests: a failing and a passing fixture for every rule.

The fixtures live in ``tests/test_rules/``: ``ISMnnn_fail*.xml`` holds
several violations of one rule, ``ISMnnn_pass*.xml`` is its minimal
correction. Rules that read both scenario formats have a ``_legacy`` and
a ``_v3`` pair. Expected positions are ``(line, column, code)`` read off
the fixture by hand: the start tag ``<`` for findings about an element
(a region, a member list), the first character of the value for findings
about a value (the text of a v3 element, or the field inside a legacy
``hv:/name, size, ids`` string or launch ``shm_region``).

``board304.xml`` sits in the same folder, so every scenario there finds
it as "the board beside it" (ISM002 never fires for them); tests that
need no board copy their fixture to a temporary folder.
"""

from __future__ import annotations

import ast
import copy
import importlib
import pkgutil
import shutil
from pathlib import Path

import pytest
from conftest import ACRN_DATA, positions
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from acrn_ivshmem import rules as rules_package
from acrn_ivshmem.diagnostics import SEVERITIES
from acrn_ivshmem.io.xmlio import parse_bytes
from acrn_ivshmem.lint.config import LintConfig
from acrn_ivshmem.lint.engine import Linter, lint
from acrn_ivshmem.lint.fixes import apply_fixes, fix_files
from acrn_ivshmem.model.vocabulary import known_names
from acrn_ivshmem.rules import RULES

DATA = Path(__file__).parent / "test_rules"
BOARD = DATA / "board304.xml"

#: Every rule code the project documents (README table); the registry
#: must hold exactly these.
ALL_CODES = (
    "ISM001", "ISM002", "ISM003",
    "ISM101", "ISM102", "ISM103", "ISM104", "ISM105", "ISM106", "ISM107",
    "ISM201", "ISM202", "ISM203", "ISM204", "ISM205", "ISM206", "ISM207",
    "ISM208", "ISM209", "ISM210", "ISM211", "ISM212", "ISM213", "ISM214",
    "ISM215", "ISM216",
    "ISM301", "ISM302", "ISM303", "ISM304", "ISM305", "ISM306", "ISM307",
    "ISM401", "ISM402",
    "ISM501", "ISM511", "ISM512", "ISM513", "ISM514", "ISM515", "ISM516",
    "ISM901", "ISM902", "ISM903", "ISM904",
)

# (fixture, expected findings with select=[code]); the code is the
# fixture name's first six characters.
FAILING = [
    # ISM003: <ivshmem> and <IVSHMEN> in FEATURES; <SIZE> in a region; a
    # child of the text-only <VBDF>; <vm_typo> in a VM; <board_info> at
    # the root.
    ("ISM003_fail_v3.xml",
     [(4, 7, "ISM003"), (5, 7, "ISM003"), (14, 11, "ISM003"),
      (18, 69, "ISM003"), (27, 5, "ISM003"), (33, 3, "ISM003")]),
    # ISM003: <LOG_LEVEL> in DEBUG_OPTIONS; <IVSHMEM_ENABLE>; the v3 name
    # <RELOC_ENABLED> in a legacy file.
    ("ISM003_fail_legacy.xml",
     [(5, 7, "ISM003"), (9, 9, "ISM003"), (12, 7, "ISM003")]),
    # ISM101: no prefix; upper-case 'HV:/'; 'hw:/' after a leading space.
    ("ISM101_fail.xml",
     [(6, 25, "ISM101"), (7, 25, "ISM101"), (9, 26, "ISM101")]),
    # ISM102: 2 fields; 4 fields (ids split by a comma); empty size, empty
    # name and empty ids field (reported where the field would start).
    ("ISM102_fail.xml",
     [(6, 25, "ISM102"), (7, 25, "ISM102"), (8, 43, "ISM102"),
      (9, 25, "ISM102"), (10, 45, "ISM102")]),
    # ISM103: '0x2'; '2M' in a string that spans three lines.
    ("ISM103_fail.xml", [(6, 43, "ISM103"), (8, 29, "ISM103")]),
    # ISM104: '0;2'; '0x0'; 'vm1' (the spaced '0: 2' is fine).
    ("ISM104_fail.xml",
     [(6, 46, "ISM104"), (7, 48, "ISM104"), (9, 50, "ISM104")]),
    # ISM105: one warning at the 'n', however many regions there are.
    ("ISM105_fail.xml", [(5, 26, "ISM105")]),
    # ISM106: 'y' with only blank regions.
    ("ISM106_fail.xml", [(5, 26, "ISM106")]),
    # ISM107: too many spaces; a two-digit VM id; no spaces at all is fine.
    ("ISM107_fail.xml", [(7, 25, "ISM107"), (8, 25, "ISM107")]),
    # ISM201: 3, 1, 1024 and 2097152 (bytes); 2 and 512 are fine.
    ("ISM201_fail_legacy.xml",
     [(6, 43, "ISM201"), (8, 43, "ISM201"), (10, 43, "ISM201"),
      (11, 43, "ISM201")]),
    # ISM201: 3; ' 1024 ' (at the stripped value); empty <IVSHMEM_SIZE/>.
    ("ISM201_fail_v3.xml",
     [(8, 25, "ISM201"), (16, 26, "ISM201"), (24, 11, "ISM201")]),
    # ISM202: ten non-blank regions (a dm:/ one counts in legacy, the
    # blank one does not): the 9th and 10th are reported.
    ("ISM202_fail_legacy.xml", [(15, 9, "ISM202"), (16, 9, "ISM202")]),
    # ISM202: ten Hypervisor regions (PROVIDED_BY given or defaulted) and
    # one Device Model region that does not count.
    ("ISM202_fail_v3.xml", [(32, 9, "ISM202"), (35, 9, "ISM202")]),
    # ISM203: ids 5 and 7 do not exist ('02' is VM 2).
    ("ISM203_fail_legacy.xml", [(6, 48, "ISM203"), (7, 46, "ISM203")]),
    # ISM203: a typo and a wrong-case name.
    ("ISM203_fail_v3.xml", [(15, 24, "ISM203"), (25, 34, "ISM203")]),
    # ISM204: one id; '2:02' is one VM twice.
    ("ISM204_fail_legacy.xml", [(6, 46, "ISM204"), (8, 46, "ISM204")]),
    # ISM204: one member; <IVSHMEM_VMS/>; the same VM twice.
    ("ISM204_fail_v3.xml",
     [(9, 11, "ISM204"), (19, 11, "ISM204"), (24, 11, "ISM204")]),
    # ISM205: '0:0:2'; '0:2:02'.
    ("ISM205_fail_legacy.xml", [(6, 48, "ISM205"), (7, 50, "ISM205")]),
    # ISM205: PRE_RT_VM0 again (other VBDF); POST_STD_VM1 again.
    ("ISM205_fail_v3.xml", [(12, 34, "ISM205"), (22, 34, "ISM205")]),
    # ISM206: shm_region_0 and shm_region_1 reused; SHM_REGION_0 differs.
    ("ISM206_fail_legacy.xml", [(8, 29, "ISM206"), (10, 29, "ISM206")]),
    # ISM206: the second and third shm_region_0.
    ("ISM206_fail_v3.xml", [(22, 17, "ISM206"), (30, 17, "ISM206")]),
    # ISM207: '-'; spaces; an empty name after 'hv:/'.
    ("ISM207_fail_legacy.xml",
     [(6, 29, "ISM207"), (7, 29, "ISM207"), (8, 29, "ISM207")]),
    # ISM207: '-'; 'é'; <NAME/> (at its start tag).
    ("ISM207_fail_v3.xml",
     [(6, 17, "ISM207"), (14, 17, "ISM207"), (22, 11, "ISM207")]),
    # ISM208: 31 and 28 characters; 27 is the limit.
    ("ISM208_fail_legacy.xml", [(6, 29, "ISM208"), (7, 29, "ISM208")]),
    # ISM208: 31 and 28 characters; 27 characters but 28 bytes ('é').
    ("ISM208_fail_v3.xml",
     [(6, 17, "ISM208"), (14, 17, "ISM208"), (30, 17, "ISM208")]),
    # ISM209: 'Device model'; 'hypervisor'; empty <PROVIDED_BY/>.
    ("ISM209_fail.xml",
     [(7, 24, "ISM209"), (16, 24, "ISM209"), (25, 11, "ISM209")]),
    # ISM210: dm:/ with pre-launched VM 0; dm:/ with Service VM 1.
    ("ISM210_fail_legacy.xml", [(6, 46, "ISM210"), (7, 50, "ISM210")]),
    # ISM210: Device Model region with PRE_RT_VM0 and ACRN_Service_VM.
    ("ISM210_fail_v3.xml", [(10, 34, "ISM210"), (12, 34, "ISM210")]),
    # ISM211: '0x10'; 70000; -1.
    ("ISM211_fail.xml",
     [(7, 30, "ISM211"), (16, 30, "ISM211"), (25, 30, "ISM211")]),
    # ISM212: 1 again, '01' (1 too), 0 again; no id (0 by default) is
    # ISM216's business, '0x1' ISM211's.
    ("ISM212_fail.xml",
     [(16, 30, "ISM212"), (25, 30, "ISM212"), (51, 30, "ISM212")]),
    # ISM216: region 0 (no id) shares PRE_RT_VM0 with region 4 (id 0);
    # region 1 (no id) keeps 0; region 3 (no id) shares POST_STD_VM2
    # with it.
    ("ISM216_fail.xml", [(5, 9, "ISM216"), (30, 9, "ISM216")]),
    # ISM213: a second IVSHMEM in FEATURES; one in a second FEATURES.
    ("ISM213_fail_v3.xml", [(14, 7, "ISM213"), (26, 7, "ISM213")]),
    # ISM213: a second IVSHMEM with a region of its own.
    ("ISM213_fail_legacy.xml", [(8, 7, "ISM213")]),
    # ISM214: a second SCHEDULER; memory size twice on one line; a VM's
    # second name and load_order; a second hv.
    ("ISM214_fail_v3.xml",
     [(15, 7, "ISM214"), (21, 29, "ISM214"), (26, 5, "ISM214"),
      (27, 5, "ISM214"), (29, 3, "ISM214")]),
    # ISM214: a second FEATURES, IVSHMEM_ENABLED twice in it (its
    # IVSHMEM is ISM213's); a second vm_type. Two legacy_vuart are fine.
    ("ISM214_fail_legacy.xml",
     [(9, 5, "ISM214"), (12, 9, "ISM214"), (18, 5, "ISM214")]),
    # ISM215: a prefixed IVSHMEM (its children are not reported again);
    # MEMORY with a default namespace; a prefixed VM name.
    ("ISM215_fail.xml",
     [(14, 7, "ISM215"), (20, 5, "ISM215"), (30, 5, "ISM215")]),
    # ISM301: '00:8.0'; '00:08:0'; device 0x20; vUART '00:10'.
    ("ISM301_fail.xml",
     [(9, 60, "ISM301"), (10, 62, "ISM301"), (18, 62, "ISM301"),
      (33, 17, "ISM301")]),
    # ISM302: POST_STD_VM1 00:08.0 twice; PRE_RT_VM0 00:0A.0 = vUART
    # 0:0a.0 (compared as numbers).
    ("ISM302_fail.xml", [(17, 60, "ISM302"), (18, 62, "ISM302")]),
    # ISM303: post-launched 00:1F.0 (upper case), 00:02.0, vUART 00:00.0;
    # the pre-launched 00:02.0 and 00:1f.0 are not this rule's business.
    ("ISM303_fail.xml",
     [(10, 62, "ISM303"), (18, 62, "ISM303"), (33, 17, "ISM303")]),
    # ISM305: pre-launched 00:00.0; Service VM 0:00.0.
    ("ISM305_fail.xml", [(9, 60, "ISM305"), (17, 65, "ISM305")]),
    # ISM306: a one-digit upper-case region VBDF; an upper-case vUART one.
    ("ISM306_fail.xml", [(12, 21, "ISM306"), (28, 17, "ISM306")]),
    # ISM307 (board304.xml beside it is board 'tiny'): 'whl-ipc-i5'; a
    # v3 file's 'TINY' (compared exactly, as ACRN does).
    ("ISM307_fail_legacy.xml", [(1, 1, "ISM307")]),
    ("ISM307_fail_v3.xml", [(3, 1, "ISM307")]),
    # ISM401: a space; no prefix; hex size (after a desc attribute);
    # '-' in the name; upper-case 'HV:/'. Empty <shm_region/> is skipped.
    ("ISM401_fail.xml",
     [(7, 19, "ISM401"), (8, 19, "ISM401"), (9, 67, "ISM401"),
      (19, 19, "ISM401"), (20, 19, "ISM401")]),
    # ISM501: POST_A has shm_a at 00:08.0 and shm_b at 01:08.0 (slot 8).
    ("ISM501_fail.xml", [(28, 21, "ISM501")]),
    # ISM402 (scenario ISM402_scenario.xml beside it): wrong size; no such
    # region; wrong prefix; a region that does not list VM 3.
    ("ISM402_fail.xml",
     [(7, 19, "ISM402"), (8, 19, "ISM402"), (9, 19, "ISM402"),
      (18, 19, "ISM402")]),
]

PASSING = [
    "ISM003_pass_legacy.xml", "ISM003_pass_v3.xml",
    "ISM101_pass.xml", "ISM102_pass.xml", "ISM103_pass.xml",
    "ISM104_pass.xml", "ISM105_pass.xml", "ISM106_pass.xml",
    "ISM107_pass.xml",
    "ISM201_pass_legacy.xml", "ISM201_pass_v3.xml",
    "ISM202_pass_legacy.xml", "ISM202_pass_v3.xml",
    "ISM203_pass_legacy.xml", "ISM203_pass_v3.xml",
    "ISM204_pass_legacy.xml", "ISM204_pass_v3.xml",
    "ISM205_pass_legacy.xml", "ISM205_pass_v3.xml",
    "ISM206_pass_legacy.xml", "ISM206_pass_v3.xml",
    "ISM207_pass_legacy.xml", "ISM207_pass_v3.xml",
    "ISM208_pass_legacy.xml", "ISM208_pass_v3.xml",
    "ISM209_pass.xml",
    "ISM210_pass_legacy.xml", "ISM210_pass_v3.xml",
    "ISM211_pass.xml", "ISM212_pass.xml", "ISM216_pass.xml",
    "ISM211_pass.xml",
    "ISM213_pass_legacy.xml", "ISM213_pass_v3.xml",
    "ISM214_pass_legacy.xml", "ISM214_pass_v3.xml",
    "ISM215_pass.xml",
    "ISM301_pass.xml", "ISM302_pass.xml", "ISM303_pass.xml",
    "ISM304_pass.xml", "ISM305_pass.xml", "ISM306_pass.xml",
    "ISM307_pass_legacy.xml", "ISM307_pass_v3.xml",
    "ISM401_pass.xml", "ISM402_pass.xml",
    "ISM501_pass.xml",
]

ISM304_FAIL = [(9, 65, "ISM304"), (17, 65, "ISM304"), (25, 65, "ISM304"),
               (37, 17, "ISM304")]


def _code(fixture: str) -> str:
    return fixture[:6]


def _errors(path: Path, board: Path | None = None) -> list[tuple]:
    """Error-severity findings of a run with every rule selected."""
    result = lint([str(path)], str(board) if board else None, LintConfig())
    assert not result.errors, result.errors
    return [(d.line, d.column, d.code, d.message)
            for d in result.diagnostics if d.severity == "error"]


def test_every_rule_has_fixtures():
    # A new rule without a fail and a pass fixture fails here.
    tested = {_code(name) for name, _ in FAILING} | {"ISM304"}
    passed = {_code(name) for name in PASSING}
    # Script rules (ISM51x) are tested with scripts: test_check_launch;
    # ACRN's own checks (ISM9xx) with an ACRN tree: test_acrn_schema.
    wanted = {code for code, rule in RULES.items()
              if rule.TARGET not in ("script", "acrn")} - {"ISM001",
                                                           "ISM002"}
    assert tested == wanted
    assert passed == wanted
    for name in [n for n, _ in FAILING] + PASSING:
        assert (DATA / name).is_file(), name


@pytest.mark.parametrize(("fixture", "expected"), FAILING,
                         ids=[name for name, _ in FAILING])
def test_fail_fixture(fixture, expected):
    found = positions([DATA / fixture], select=[_code(fixture)])
    assert found == expected


@pytest.mark.parametrize("fixture", PASSING)
def test_pass_fixture(fixture):
    assert positions([DATA / fixture], select=[_code(fixture)]) == []


@pytest.mark.parametrize("fixture", PASSING)
def test_pass_fixture_has_no_errors_with_all_rules(fixture):
    board = BOARD if _code(fixture) == "ISM304" else None
    assert _errors(DATA / fixture, board) == []


# ISM304 needs a board ------------------------------------------------------

def test_ism304_fail_with_board():
    # Native: 00:08.0 (device tree, with <vendor>), 00:1f.3 (lspci text,
    # written upper case), 01:00.0 (behind a bridge) and 00:02.0 (both).
    # POST_STD_VM1 at 00:08.0 is not the Service VM's business.
    found = positions([DATA / "ISM304_fail.xml"], board=BOARD,
                      select=["ISM304"])
    assert found == ISM304_FAIL


def test_ism304_pass_with_board():
    # The Service VM at 00:09.0: the board's 0x90000 entry has no
    # <vendor> (an ACPI placeholder), so it is no native device.
    assert positions([DATA / "ISM304_pass.xml"], board=BOARD,
                     select=["ISM304"]) == []


def test_ism304_board_found_beside_the_scenario():
    found = positions([DATA / "ISM304_fail.xml"],
                      select=["ISM304", "ISM002"])
    assert found == ISM304_FAIL


def test_ism304_skipped_without_board(tmp_path):
    scenario = tmp_path / "ISM304_fail.xml"
    shutil.copy(DATA / "ISM304_fail.xml", scenario)
    result = lint([str(scenario)], None, LintConfig())
    assert not result.errors
    found = [(d.line, d.column, d.code, d.severity)
             for d in result.diagnostics
             if d.code in ("ISM304", "ISM002")]
    assert found == [(1, 1, "ISM002", "info")]
    message = next(d.message for d in result.diagnostics
                   if d.code == "ISM002")
    assert "ISM304" in message


def test_ism304_board_with_no_free_device(tmp_path):
    lines = "\n".join(
        f"\t00:{device:02x}.0 Signal processing controller: Intel "
        f"Corporation Device {device:04x}" for device in range(32))
    board = tmp_path / "full.xml"
    board.write_text(f'<acrn-config board="full">\n  <PCI_DEVICE>\n'
                     f'{lines}\n\t</PCI_DEVICE>\n</acrn-config>\n')
    found = positions([DATA / "ISM304_fail.xml"], board=board,
                      select=["ISM304"])
    # 00:1f.3 and 01:00.0 are not on this board.
    assert found == [(9, 65, "ISM304"), (37, 17, "ISM304")]


# ISM307 compares the board names -------------------------------------------

def test_ism307_needs_the_board(tmp_path):
    scenario = tmp_path / "ISM307_fail_legacy.xml"
    shutil.copy(DATA / "ISM307_fail_legacy.xml", scenario)
    result = lint([str(scenario)], None, LintConfig())
    assert [(d.code, d.message) for d in result.diagnostics] == [(
        "ISM002", "no board XML given or found beside the scenario; "
        "skipped ISM304, ISM307")]


def test_ism307_message_and_a_board_without_a_name(tmp_path):
    result = lint([str(DATA / "ISM307_fail_legacy.xml")], None,
                  LintConfig(select=("ISM307",)))
    assert [(d.severity, d.message, d.hint)
            for d in result.diagnostics] == [(
                "warning",
                "the scenario is for board 'whl-ipc-i5' (its board "
                "attribute), but the board XML 'board304.xml' is board "
                "'tiny'",
                "lint with the board XML of 'whl-ipc-i5' (--board), or "
                "correct the board attribute")]
    # A board XML whose root names no board cannot contradict it.
    nameless = tmp_path / "nameless.xml"
    nameless.write_text(BOARD.read_text(encoding="utf-8").replace(
        '<acrn-config board="tiny">', "<acrn-config>"), encoding="utf-8")
    assert positions([DATA / "ISM307_fail_legacy.xml"], board=nameless,
                     select=["ISM307"]) == []


# ISM402 needs the scenario ------------------------------------------------

def test_ism402_skipped_without_scenario(tmp_path):
    # The launch XML alone: its scenario="ISM402_scenario" is not beside
    # it, so ISM402 cannot judge and says nothing.
    launch = tmp_path / "ISM402_fail.xml"
    shutil.copy(DATA / "ISM402_fail.xml", launch)
    assert positions([launch], select=["ISM402"]) == []


# Values that only look right -----------------------------------------------

@pytest.mark.parametrize(("fixture", "expected"), [
    ("ISM103_fail_fullwidth.xml", [(6, 43, "ISM103")]),
    ("ISM201_fail_fullwidth_v3.xml", [(8, 25, "ISM201")]),
])
def test_non_ascii_digit_size(fixture, expected):
    assert positions([DATA / fixture], select=["ISM103", "ISM201"]) == (
        expected)


def test_ism401_whitespace_around_value():
    found = positions([DATA / "ISM401_fail_whitespace.xml"],
                      select=["ISM401"])
    assert found == [(6, 19, "ISM401"), (7, 19, "ISM401")]


# Suppression comments ------------------------------------------------------

def test_suppression_legacy():
    # Line 7 is silenced for ISM201 only; line 8 is not silenced at all;
    # line 10 for ISM201 and ISM203; line 12 for ISM201 but not ISM203.
    found = positions([DATA / "suppress_legacy.xml"],
                      select=["ISM201", "ISM203"])
    assert found == [(8, 43, "ISM201"), (12, 48, "ISM203")]


def test_suppression_legacy_without_comments_reports_everything(tmp_path):
    # The same file with the comments removed: proves that the findings
    # missing above were silenced, not never found.
    text = (DATA / "suppress_legacy.xml").read_text(encoding="utf-8")
    stripped = "\n".join(line for line in text.split("\n")
                         if "acrn-shm:" not in line)
    scenario = tmp_path / "suppress_legacy.xml"
    scenario.write_text(stripped, encoding="utf-8")
    found = positions([scenario], select=["ISM201", "ISM203"])
    assert found == [
        (6, 43, "ISM201"), (7, 43, "ISM201"), (8, 43, "ISM201"),
        (8, 48, "ISM203"), (9, 43, "ISM201"), (9, 48, "ISM203")]


def test_suppression_v3():
    # Region 0 (comment before it): its child IVSHMEM_SIZE is silenced,
    # but its unknown VM is ISM203, not listed. Region 1: the comment sits
    # before IVSHMEM_VMS, so the sibling IVSHMEM_SIZE stays reported.
    # Region 2: both codes silenced.
    found = positions([DATA / "suppress_v3.xml"],
                      select=["ISM201", "ISM203"])
    assert found == [(11, 34, "ISM203"), (16, 25, "ISM201")]


def test_suppression_does_not_reach_a_sibling_on_the_same_line():
    # Line 11 holds two members; the comment covers only the first.
    found = positions([DATA / "suppress_same_line.xml"], select=["ISM203"])
    assert found == [(11, 90, "ISM203")]


# Rule modules --------------------------------------------------------------

def _rule_modules():
    return [
        importlib.import_module(f"{rules_package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(rules_package.__path__)
        if not info.name.startswith("_")]


def test_registry_holds_every_documented_code():
    assert tuple(RULES) == ALL_CODES


def test_rule_files_are_named_after_their_rule():
    for module in _rule_modules():
        assert module.__name__.rsplit(".", 1)[1] == (
            module.NAME.replace("-", "_")), module.CODE


def test_registry_imports_every_rule_file_by_name_sorted():
    # rules/__init__.py: one "from . import (...)" of every rule file,
    # sorted, and MODULES in the same order: no import by a string.
    source = Path(rules_package.__file__).read_text(encoding="utf-8")
    imported = [alias.name for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom) and node.level == 1
                and node.module is None for alias in node.names]
    files = sorted(info.name for info in pkgutil.iter_modules(
        rules_package.__path__) if not info.name.startswith("_"))
    assert imported == files
    assert [module.__name__.rsplit(".", 1)[1]
            for module in rules_package.MODULES] == files
    assert "import_module" not in source


def test_codes_are_unique_across_rule_modules():
    # RULES is a dict, so a second module with the same CODE would
    # silently replace the first; count the modules themselves.
    codes = [module.CODE for module in _rule_modules()]
    assert len(codes) == len(set(codes)), sorted(codes)
    assert sorted(codes) == sorted(RULES)
    names = [module.NAME for module in _rule_modules()]
    assert len(names) == len(set(names)), sorted(names)


@pytest.mark.parametrize("code", ALL_CODES)
def test_rule_module_metadata_and_docs(code):
    rule = RULES[code]
    assert rule.CODE == code
    assert isinstance(rule.NAME, str) and rule.NAME
    assert rule.NAME == rule.NAME.lower() and " " not in rule.NAME
    assert rule.SEVERITY in ("error", "warning", "info")
    assert rule.SEVERITY in SEVERITIES
    doc = rule.__doc__ or ""
    assert doc.splitlines()[0].startswith(f"{code} {rule.NAME}: ")
    for section in ("What it does", "Why it matters", "Example",
                    "Use instead"):
        assert section in doc, section
    assert (doc.index("What it does") < doc.index("Why it matters")
            < doc.index("Example") < doc.index("Use instead"))
    if code != "ISM001" and rule.TARGET != "acrn":  # the schema checks'
        assert callable(rule.check)


def test_ism401_sizes_in_bytes_and_odd_sizes():
    from acrn_ivshmem.lint.engine import lint

    result = lint([str(DATA / "ISM401_fail_bytes.xml")])
    found = [(d.line, d.column, d.code, d.hint) for d in result.diagnostics
             if d.code == "ISM401"]
    assert found == [
        (6, 19, "ISM401", "'2097152' looks like bytes; write '2' (MB)"),
        (7, 19, "ISM401", "use a power of two from 2 to 512 (MB)"),
    ]


# ISM212, ISM216: region ids ----------------------------------------------


def _findings(path: Path, code: str) -> list[tuple]:
    result = lint([str(path)], None, LintConfig(select=(code,)))
    assert not result.errors, result.errors
    return [(d.line, d.column, d.severity, d.message, d.hint)
            for d in result.diagnostics]


def test_ism212_messages():
    assert _findings(DATA / "ISM212_fail.xml", "ISM212") == [
        (16, 30, "error", "region 'shm_region_1' id '1' is already the id "
         "of region 'shm_region_0' at line 7",
         "give every region its own id, e.g. 2 here"),
        (25, 30, "error", "region 'shm_region_2' id '01' is already the id "
         "of region 'shm_region_0' at line 7",
         "give every region its own id, e.g. 2 here"),
        (51, 30, "error", "region 'shm_region_5' id '0' is already the id "
         "of region 'shm_region_4' at line 42",
         "give every region its own id, e.g. 2 here"),
    ]


def test_ism216_messages():
    assert _findings(DATA / "ISM216_fail.xml", "ISM216") == [
        (5, 9, "warning", "region 'shm_region_0' has no IVSHMEM_REGION_ID, "
         "so its id is 0 like that of region 'shm_region_4' at line 38; VM "
         "'PRE_RT_VM0' has both and cannot tell them apart",
         "give it an id of its own, e.g. <IVSHMEM_REGION_ID>2"
         "</IVSHMEM_REGION_ID> (acrn-shm lint --fix does "
         "it; ACRN v3.3 only)"),
        (30, 9, "warning", "region 'shm_region_3' has no IVSHMEM_REGION_ID, "
         "so its id is 0 like that of region 'shm_region_1' at line 13; VM "
         "'POST_STD_VM2' has both and cannot tell them apart",
         "give it an id of its own, e.g. <IVSHMEM_REGION_ID>3"
         "</IVSHMEM_REGION_ID> (acrn-shm lint --fix does "
         "it; ACRN v3.3 only)"),
    ]


def test_ism216_skips_legacy_scenarios(tmp_path):
    # Two legacy regions of VM 0: ACRN v2.x has no region ids at all.
    scenario = tmp_path / "legacy.xml"
    shutil.copy(DATA / "ISM206_pass_legacy.xml", scenario)
    text = scenario.read_text(encoding="utf-8")
    assert text.count(", 0:") >= 2
    assert _findings(scenario, "ISM216") == []


def test_ism216_fix_is_byte_exact_and_leaves_nothing_to_fix():
    # The new element goes before IVSHMEM_VMS (lines 8 and 33), with
    # that line's indentation and the file's line ends.
    data = (DATA / "ISM216_fail.xml").read_bytes()
    for newline, indent in ((b"\n", b"  "), (b"\r\n", b"\t")):
        before = data.replace(b"  ", indent).replace(b"\n", newline)
        lines = before.split(newline)
        for line, number in ((33, 3), (8, 2)):
            lines.insert(line - 1, indent * 5 + b"<IVSHMEM_REGION_ID>%d"
                         b"</IVSHMEM_REGION_ID>" % number)
        linter = Linter(LintConfig(select=("ISM212", "ISM216")))
        linter.preload(parse_bytes(before, "s.xml"))
        fixes = [pending.fix for pending in linter.lint(["s.xml"]).fixes]
        after, applied = apply_fixes(before, fixes)
        assert (len(applied), after) == (2, newline.join(lines))
        linter.preload(parse_bytes(after, "s.xml"))
        assert linter.lint(["s.xml"]).diagnostics == ()


def test_ism216_fix_inside_a_line_adds_no_line_break():
    data = (DATA / "ISM216_fail.xml").read_bytes().replace(
        b"</IVSHMEM_SIZE>\n          <IVSHMEM_VMS>",
        b"</IVSHMEM_SIZE><IVSHMEM_VMS>")
    linter = Linter(LintConfig(select=("ISM216",)))
    linter.preload(parse_bytes(data, "s.xml"))
    after, applied = apply_fixes(
        data, [pending.fix for pending in linter.lint(["s.xml"]).fixes])
    assert len(applied) == 2
    assert after == data.replace(
        b"<NAME>shm_region_0</NAME>\n          <IVSHMEM_SIZE>2"
        b"</IVSHMEM_SIZE>",
        b"<NAME>shm_region_0</NAME>\n          <IVSHMEM_SIZE>2"
        b"</IVSHMEM_SIZE><IVSHMEM_REGION_ID>2</IVSHMEM_REGION_ID>").replace(
        b"<NAME>shm_region_3</NAME>\n          <IVSHMEM_SIZE>2"
        b"</IVSHMEM_SIZE>",
        b"<NAME>shm_region_3</NAME>\n          <IVSHMEM_SIZE>2"
        b"</IVSHMEM_SIZE><IVSHMEM_REGION_ID>3</IVSHMEM_REGION_ID>")


def test_fix_files_writes_each_changed_file_once(tmp_path):
    # Two files: the one with fixes is written (or, without write, left
    # as it was) and reported with its codes; the clean one is not.
    fixed, clean = tmp_path / "s.xml", tmp_path / "clean.xml"
    data = (DATA / "ISM216_fail.xml").read_bytes()
    fixed.write_bytes(data)
    clean.write_bytes(b"<acrn-config/>")
    pending = lint([str(fixed)], None,
                   LintConfig(select=("ISM216",), use_cache=False)).fixes
    stray = pending[0]._replace(path=str(clean))  # its text is not there
    expected, applied = apply_fixes(data, [item.fix for item in pending])
    for write in (False, True):
        results = list(fix_files([*pending, stray], write))
        assert [(r.path, r.before, r.after) for r in results] == [
            (str(fixed), data, expected)]
        assert results[0].applied == [("ISM216", fix) for fix in applied]
        assert fixed.read_bytes() == (expected if write else data)
        assert clean.read_bytes() == b"<acrn-config/>"


# One finding per element, and a second IVSHMEM block ---------------------

def test_structure_check_reports_an_element_once():
    # <SIZE> sits in the first IVSHMEM block, which ISM001 checks: with
    # every rule on, ISM001 alone reports it; the others stay ISM003's.
    found = positions([DATA / "ISM003_fail_v3.xml"])
    assert [f for f in found if f[:2] == (14, 11)] == [(14, 11, "ISM001")]
    assert [f for f in found if f[2] == "ISM003"] == [
        (4, 7, "ISM003"), (5, 7, "ISM003"), (18, 69, "ISM003"),
        (27, 5, "ISM003"), (33, 3, "ISM003")]
    without = lint([str(DATA / "ISM003_fail_v3.xml")], None,
                   LintConfig(ignore=("ISM001",)))
    assert [(d.line, d.column, d.code) for d in without.diagnostics
            if (d.line, d.column) == (14, 11)] == [(14, 11, "ISM003")]


def test_coverage_messages_and_hints():
    result = lint([str(DATA / "ISM003_fail_v3.xml"),
                   str(DATA / "ISM213_fail_v3.xml"),
                   str(DATA / "ISM214_fail_legacy.xml"),
                   str(DATA / "ISM215_fail.xml")],
                  None, LintConfig(select=("ISM003", "ISM213", "ISM214",
                                           "ISM215")))
    shown = {(Path(d.path).name, d.line, d.code): (d.message, d.hint)
             for d in result.diagnostics}
    assert shown[("ISM003_fail_v3.xml", 4, "ISM003")] == (
        "<ivshmem> is no element ACRN v3.x knows in <FEATURES>; ACRN's "
        "schema refuses it and acrn-shm does not read it",
        "did you mean <IVSHMEM>?")
    assert shown[("ISM003_fail_v3.xml", 5, "ISM003")][1] == (
        "did you mean <IVSHMEM>?")
    assert shown[("ISM003_fail_v3.xml", 33, "ISM003")] == (
        "<board_info> is no element ACRN v3.x knows in <acrn-config>; "
        "ACRN's schema refuses it and acrn-shm does not read it",
        "remove it, or correct its name")
    assert shown[("ISM213_fail_v3.xml", 26, "ISM213")] == (
        "another <IVSHMEM> block (the first is at line 4); ACRN's schema "
        "allows one and refuses the file",
        "move its IVSHMEM_REGION elements into the first IVSHMEM block "
        "and delete this one")
    assert shown[("ISM214_fail_legacy.xml", 12, "ISM214")] == (
        "another <IVSHMEM_ENABLED> in <IVSHMEM> (the first is at line 11);"
        " ACRN's schema allows one, and acrn-shm reads only the first",
        "keep one: merge the two, then delete this one")
    assert shown[("ISM215_fail.xml", 20, "ISM215")] == (
        "<MEMORY> in <hv> is in XML namespace 'urn:example:memory'; "
        "ACRN's schema refuses it and acrn-shm does not read it",
        "write <MEMORY> without a prefix, and declare no default namespace"
        " (xmlns=...) on it or above it")


def test_regions_of_a_second_block_are_checked(tmp_path):
    # The second block's region is in the model (so rules, `regions` and
    # the edits see it) and its bad size is ISM201's.
    from acrn_ivshmem.model.loader import load

    text = (DATA / "ISM213_fail_legacy.xml").read_text(encoding="utf-8")
    scenario = tmp_path / "two_blocks.xml"
    scenario.write_text(text.replace("shm_region_1, 4,", "shm_region_1, 3,"),
                        encoding="utf-8")
    model = load(str(scenario)).model
    assert [(r.name.text, r.loc.line) for r in model.regions] == [
        ("shm_region_0", 6), ("shm_region_1", 9)]
    assert model.ivshmem_blocks == ((4, 7), (8, 7))
    assert positions([scenario], select=["ISM201", "ISM213"]) == [
        (8, 7, "ISM213"), (9, 43, "ISM201")]


# Whatever ACRN's schema refuses in hv, lint reports ----------------------

#: Elements of hv that ACRN's schemas let repeat; another copy of any
#: other element is refused.
REPEATABLE_IN_HV = frozenset((
    "IVSHMEM_REGION", "IVSHMEM_VM", "vuart_connection", "endpoint",
    "CLOS_MASK", "MBA_DELAY", "CACHE_ALLOCATION", "POLICY", "HIDDEN_PDEV"))
#: Codes that report an element ACRN's schema refuses.
REFUSED_CODES = {"ISM001", "ISM003", "ISM213", "ISM214", "ISM215"}
REAL_SCENARIOS = sorted(
    str(path) for version in ("v2.7", "v3.3")
    for path in (ACRN_DATA / version).glob("*/*.xml")
    if path.stem != path.parent.name and "_launch_" not in path.name
) if ACRN_DATA.is_dir() else []


def _element_path(element) -> list[int]:
    # Child indexes from the root down to ``element``.
    path = []
    while element.getparent() is not None:
        siblings = list(element.getparent().iterchildren(etree.Element))
        path.insert(0, siblings.index(element))
        element = element.getparent()
    return path


@pytest.mark.skipif(not REAL_SCENARIOS, reason=f"{ACRN_DATA} is missing")
@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_lint_reports_every_refused_change_to_hv(data):
    """Duplicate, namespace or rename any element of a real scenario's
    hv: lint reports an error at that element (never 'no problems')."""
    path = data.draw(st.sampled_from(REAL_SCENARIOS), label="scenario")
    tree = etree.parse(path)
    hv = tree.getroot().find("hv")
    element = data.draw(st.sampled_from(list(hv.iter(etree.Element))),
                        label="element")
    how = data.draw(st.sampled_from(("duplicate", "namespace", "rename")),
                    label="how")
    if how == "duplicate":
        assume(element.tag not in REPEATABLE_IN_HV)
        changed = copy.deepcopy(element)
        element.addnext(changed)
    elif how == "namespace":
        changed = element
        changed.tag = "{urn:example:elsewhere}" + element.tag
    else:
        name = data.draw(st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,20}",
                                       fullmatch=True), label="name")
        assume(name not in known_names("legacy") | known_names("v3"))
        changed = element
        changed.tag = name
    where = _element_path(changed)
    text = etree.tostring(tree, xml_declaration=True, encoding="utf-8")
    document = parse_bytes(text, "/nonexistent/changed.xml")
    target = document.root
    for index in where:
        target = list(target.iterchildren(etree.Element))[index]
    linter = Linter(LintConfig())
    linter.preload(document)
    result = linter.lint([document.path])
    assert result.errors == ()
    loc = document.loc(target)
    assert [d.code for d in result.diagnostics
            if (d.line, d.column) == loc and d.severity == "error"
            and d.code in REFUSED_CODES], (how, where, result.diagnostics)
