"""``lint --acrn-schema``: ACRN's own checks read from an ACRN tree.

Without a real tree, a tiny synthetic one (``tests/test_acrn_schema/
tree``, schema text written for these tests: an XInclude, an element for
post-launched VMs only, a default value, an ``xs:assert`` in the syntax
schema and data checks with counter-examples) gives exact codes, lines
and columns in every output format (golden files; refresh with
``UPDATE_GOLDEN=1`` and review the diff) and every error path.

With ``ACRN_SRC`` naming an ACRN v3 tree, the findings must equal what
that tree's own ``validator.py`` reports (run with the Python in
``ACRN_SHM_BUILD_PYTHON``, else ``python3``) on every scenario of
``../shared/acrn-data/v3.3`` and on a mutated copy of each.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import ACRN_DATA, run_acrn_shm
from lxml import etree

from acrn_ivshmem.lint import acrn_schema
from acrn_ivshmem.cli.lint import run_lint
from acrn_ivshmem.lint.config import LintConfig
from acrn_ivshmem.lint.engine import lint
from acrn_ivshmem.io.xmlio import parse_file

DATA = Path(__file__).parent / "test_acrn_schema"
GOLDEN = DATA / "golden"
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))

# Read at import: the autouse fixture clears ACRN* variables per test.
ACRN_SRC = os.environ.get("ACRN_SRC")
ACRN_PYTHON = os.environ.get("ACRN_SHM_BUILD_PYTHON") or "python3"


@pytest.fixture(autouse=True)
def fresh_schemas():
    for cached in (acrn_schema.built, acrn_schema.syntax_schema,
                   acrn_schema._tree_key):
        cached.cache_clear()
    yield
    for cached in (acrn_schema.built, acrn_schema.syntax_schema,
                   acrn_schema._tree_key):
        cached.cache_clear()


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A private copy of the test data (the tree included)."""
    target = tmp_path / "work"
    shutil.copytree(DATA, target, ignore=shutil.ignore_patterns("golden"))
    # A scenario with no board beside it.
    (target / "alone").mkdir()
    shutil.copy(target / "broken.xml", target / "alone")
    return target


SCHEMA = ["lint", "--acrn-schema", "--acrn-src", "tree", "--select", "ISM9",
          "--board", "board.xml"]
CASES = {
    "text": [*SCHEMA, "broken.xml"],
    "json": [*SCHEMA, "-f", "json", "broken.xml"],
    "sarif": [*SCHEMA, "-f", "sarif", "broken.xml"],
    "github": [*SCHEMA, "-f", "github", "broken.xml"],
    "clean": [*SCHEMA, "clean.xml"],
    "not-evaluated": [*SCHEMA, "rdt.xml"],
    "with-own-rules": ["lint", "--acrn-schema", "--acrn-src", "tree",
                       "--board", "board.xml", "broken.xml"],
    "no-board": ["lint", "--acrn-schema", "--acrn-src", "tree", "--select",
                 "ISM9", "alone/broken.xml"],
    "no-tree": ["lint", "--acrn-schema", "broken.xml"],
    "missing-tree": ["lint", "--acrn-schema", "--acrn-src", "nowhere",
                     "broken.xml"],
    "not-a-tree": ["lint", "--acrn-schema", "--acrn-src", ".",
                   "broken.xml"],
    "bad-tree": ["lint", "--acrn-schema", "--acrn-src", "bad-tree",
                 "broken.xml"],
    "src-without-schema": ["lint", "--acrn-src", "tree", "broken.xml"],
}
STATUS = {"text": 1, "json": 1, "sarif": 1, "github": 1, "clean": 0,
          "not-evaluated": 1, "with-own-rules": 1, "no-board": 1,
          "no-tree": 2, "missing-tree": 2, "not-a-tree": 2, "bad-tree": 2,
          "src-without-schema": 2}


def _bad_tree(workdir: Path) -> None:
    # A tree whose config.xsd is cut off in the middle.
    shutil.copytree(workdir / "tree", workdir / "bad-tree")
    config = workdir / "bad-tree" / acrn_schema.SCHEMA_DIR / "config.xsd"
    config.write_bytes(config.read_bytes()[:400])


#: How the goldens spell xmlschema's reason for a failed assert.
ASSERT_REASON = "assertion test is false"


def _assert_reason() -> str:
    """The installed xmlschema's wording of a failed assert (ACRN prints
    xmlschema's reasons, and their wording changes between versions)."""
    import xmlschema

    schema = xmlschema.XMLSchema11(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        '<xs:element name="a"><xs:complexType><xs:assert test="false()"/>'
        '</xs:complexType></xs:element></xs:schema>')
    return next(schema.iter_errors("<a/>")).reason


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name, workdir):
    _bad_tree(workdir)
    argv = CASES[name]
    result = run_acrn_shm(argv, workdir)
    actual = (f"$ acrn-shm {' '.join(argv)}\nexit: {result.returncode}\n"
              f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
              ).replace(_assert_reason(), ASSERT_REASON)
    golden = GOLDEN / f"{name}.txt"
    if UPDATE:
        golden.write_text(actual, encoding="utf-8")
    assert actual == golden.read_text(encoding="utf-8")
    assert result.returncode == STATUS[name]
    if result.returncode == 2:
        assert result.stderr.count("\n") == 1 and not result.stdout
        assert "Traceback" not in result.stderr


def _found(workdir: Path, name: str, board: bool = True) -> list[tuple]:
    result = lint([str(workdir / name)],
                  str(workdir / "board.xml") if board else None,
                  LintConfig(select=("ISM9",),
                             acrn_src=str(workdir / "tree")))
    assert not result.errors
    return [(d.line, d.column, d.code, d.message)
            for d in result.diagnostics]


def test_positions_and_messages(workdir):
    assert _found(workdir, "broken.xml") == [
        # <hv> lacks LOG_LEVEL (no default), and fails config.xsd's assert.
        (3, 3, "ISM901", "The content of element 'hv' is not complete. "
         "Tag 'LOG_LEVEL' expected."),
        (3, 3, "ISM901", _assert_reason()),
        # Both VMs named TWIN: the data check reports each name.
        (9, 5, "ISM902", 'VM name "TWIN" is used by 2 VMs.'),
        # <console> is for post-launched VMs only (the split schema).
        (10, 5, "ISM901", "Unexpected child with tag 'console' at "
         "position 3. Tag 'vbdf' expected."),
        (14, 5, "ISM902", 'VM name "TWIN" is used by 2 VMs.'),
        # The second <pcpu> of line 15: CPU 7 is not on the board.
        (15, 22, "ISM903", 'VM "TWIN" runs on CPU 7, which board tiny '
         "lacks."),
    ]


def test_without_a_board_only_the_syntax_is_checked(workdir):
    assert [f[2] for f in _found(workdir, "alone/broken.xml",
                                 board=False)] == [
        "ISM901", "ISM901", "ISM901"]


def test_defaults_fill_what_acrn_fills(workdir):
    # clean.xml has no BUILD_TYPE and no <vbdf>: ACRN's defaults (release,
    # and the first free VBDF of each VM) make it valid.
    assert _found(workdir, "clean.xml") == []
    scenario = parse_file(str(workdir / "clean.xml"))
    root, _ = acrn_schema._copy(scenario)
    xsd = etree.fromstring(acrn_schema.built(str(workdir / "tree")).xsd)
    acrn_schema._Populator(xsd.getroottree()).run(root)
    assert root.findtext("hv/BUILD_TYPE") == "release"
    assert [vm.findtext("vbdf") for vm in root.iter("vm")] == [
        "00:08.0", "00:09.0"]
    # The user's document is untouched.
    assert scenario.root.find("hv/BUILD_TYPE") is None


@pytest.mark.parametrize(("expression", "values"), [
    ("[hex(i) for i in range(0x10, 0x20, 8)]", ["0x10", "0x18"]),
    ("[f'00:{i:02x}.0' for i in range(30, 32)]", ["00:1e.0", "00:1f.0"]),
    # Anything else is not run: no default, as when ACRN's eval fails.
    ("__import__('os').system('touch x')", None),
    ("[open(i) for i in range(2)]", None),
    ("[hex(i) for i in range(10**9)]", None),
    ("[f'{i!r}' for i in range(2)]", None),
])
def test_default_lists_are_read_without_running_them(expression, values):
    assert acrn_schema._defaults(expression) == values


def test_missing_xmlschema_is_one_line(workdir, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: (
        None if name == "xmlschema" else real(name, *a)))
    monkeypatch.chdir(workdir)
    status = run_lint(["broken.xml"], None, "text", None, None, None, False,
                      acrn_schema=True, acrn_src="tree")
    assert status == 2
    assert capsys.readouterr().err == (
        "acrn-shm: error: --acrn-schema needs the Python package "
        "xmlschema: pip install xmlschema\n")


def _cached(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern))


def test_the_built_schema_is_cached_privately_and_reused(workdir, tmp_path,
                                                         monkeypatch):
    cache = tmp_path / "cache"
    first = _found(workdir, "broken.xml")
    [pickled] = _cached(cache, "acrn-schema-*.pickle")
    assert stat.S_IMODE(pickled.stat().st_mode) == 0o600
    assert len(_cached(cache, "acrn-result-*.json")) == 1
    # A second process: the pickle, never a new build.
    acrn_schema.built.cache_clear()
    monkeypatch.setattr(acrn_schema, "_build", None)
    (workdir / "broken.xml").write_bytes(
        (workdir / "broken.xml").read_bytes() + b"\n")
    assert _found(workdir, "broken.xml") == first
    # A pickle others may write is never loaded: the schema is rebuilt.
    pickled.chmod(0o666)
    acrn_schema.built.cache_clear()
    (workdir / "broken.xml").write_bytes(
        (workdir / "broken.xml").read_bytes() + b"\n")
    with pytest.raises(TypeError):
        _found(workdir, "broken.xml")


def test_the_cache_follows_the_schema_files(workdir, tmp_path):
    before = _found(workdir, "broken.xml")
    checks = workdir / "tree" / acrn_schema.SCHEMA_DIR / "checks" / "vms.xsd"
    checks.write_text(checks.read_text(encoding="utf-8").replace(
        'acrn:severity="warning"', 'acrn:severity="error"'),
        encoding="utf-8")
    acrn_schema.built.cache_clear()
    acrn_schema._tree_key.cache_clear()
    after = _found(workdir, "broken.xml")
    assert [f[2] for f in before].count("ISM903") == 1
    assert [f[2] for f in after].count("ISM903") == 0
    assert len(_cached(tmp_path / "cache", "acrn-schema-*.pickle")) == 2


def test_each_check_is_cached_by_the_part_it_reads(workdir, tmp_path):
    # An edit reaches the checks that read what changed; the others come
    # from the cache, and the findings are those of an uncached run.
    _found(workdir, "broken.xml")
    stored = set(_cached(tmp_path / "cache", "acrn-check-*.json"))
    assert len(stored) == 3  # one per data check
    scenario = workdir / "broken.xml"
    scenario.write_text(scenario.read_text(encoding="utf-8").replace(
        "<pcpu>7</pcpu>", "<pcpu>6</pcpu>"), encoding="utf-8")
    cached = _found(workdir, "broken.xml")
    added = set(_cached(tmp_path / "cache", "acrn-check-*.json")) - stored
    # Both VM checks name <vm>, so they read each <vm> whole; the CLOS
    # check reads no <vm> and comes from the cache.
    assert len(added) == 2
    assert cached[-1] == (15, 22, "ISM903", 'VM "TWIN" runs on CPU 6, '
                          "which board tiny lacks.")
    result = lint([str(scenario)], str(workdir / "board.xml"), LintConfig(
        select=("ISM9",), acrn_src=str(workdir / "tree"), use_cache=False))
    assert cached == [(d.line, d.column, d.code, d.message)
                      for d in result.diagnostics]


# --- Against ACRN's own validator, on a real tree --------------------------

real_tree = pytest.mark.skipif(
    not ACRN_SRC, reason="set ACRN_SRC to an ACRN v3 source tree (and "
    "ACRN_SHM_BUILD_PYTHON to a Python with elementpath>=2.5,<3, "
    "xmlschema>=1.10,<2, lxml and defusedxml) to compare with ACRN's "
    "validator.py")

_LOG = re.compile(r"^(CRITICAL|ERROR|WARNING|INFO|DEBUG):root:(.*)$")


def acrn_validator(board: Path, scenario: Path) -> collections.Counter:
    """(severity, xpath, message) of each finding ACRN's validator.py
    logs, one per XPath it names."""
    validator = (Path(ACRN_SRC) / "misc" / "config_tools"
                 / "scenario_config" / "validator.py")
    run = subprocess.run(
        [ACRN_PYTHON, "-W", "ignore", str(validator), str(board),
         str(scenario)], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if "is not installed" in run.stderr:
        pytest.skip(f"{ACRN_PYTHON} lacks ACRN's Python packages")
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    logged: list[list[str]] = []
    for line in run.stderr.splitlines():
        match = _LOG.match(line)
        if match:
            logged.append([match.group(1).lower(), match.group(2)])
        elif logged:
            logged[-1][1] += "\n" + line
    found: collections.Counter = collections.Counter()
    for severity, text in logged:
        if text.startswith("Board ") and " and scenario " in text:
            continue  # the summary line
        paths, _, message = text.partition(": ")
        for path in paths.split(", ") if paths else [""]:
            found[(severity, path, message)] += 1
    return found


def mutated(data: bytes) -> bytes:
    """The scenario with a mistake of each kind ACRN finds: a size not in
    the list, an unknown element, a CPU the board lacks, two VMs of one
    name, a VM without a name, a VBDF used twice, an empty region name,
    a vUART endpoint connected to itself."""
    root = etree.fromstring(data)
    for node in root.iter("IVSHMEM_SIZE"):
        node.text = "3"
        break
    etree.SubElement(root.find("hv"), "UNKNOWN_SETTING").text = "1"
    for node in root.iter("pcpu_id"):
        node.text = "99"
        break
    vms = root.findall("vm")
    if len(vms) > 1:
        vms[-1].find("name").text = vms[0].find("name").text
    vms[0].remove(vms[0].find("name"))
    cpus = [vm.find("cpu_affinity/pcpu/pcpu_id") for vm in vms]
    cpus = [cpu for cpu in cpus if cpu is not None]
    if len(cpus) > 2:
        cpus[-1].text = cpus[1].text
    for region in root.iter("IVSHMEM_REGION"):
        region.find("NAME").text = ""
        break
    endpoints = [e for e in root.iter("endpoint")
                 if e.find("io_port") is not None]
    if len(endpoints) > 1:
        endpoints[1].find("vm_name").text = endpoints[0].findtext("vm_name")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _pairs():
    folder = ACRN_DATA / "v3.3"
    if not folder.is_dir():
        return []
    return [(board.name, scenario.name)
            for board in sorted(folder.iterdir()) if board.is_dir()
            for scenario in sorted(board.glob("*.xml"))
            if scenario.stem != board.name and "launch" not in scenario.name]


@real_tree
@pytest.mark.parametrize("kind", ["shipped", "mutated"])
@pytest.mark.parametrize(("board", "scenario"), _pairs())
def test_findings_equal_acrns_validator(board, scenario, kind, tmp_path):
    folder = ACRN_DATA / "v3.3" / board
    board_path = tmp_path / f"{board}.xml"
    shutil.copy(folder / f"{board}.xml", board_path)
    path = tmp_path / scenario
    data = (folder / scenario).read_bytes()
    path.write_bytes(data)
    if kind == "mutated":
        # The shipped file first: the mutated one is checked as an edit
        # is, with the checks its changes do not reach from the cache.
        acrn_schema.check(ACRN_SRC, parse_file(str(path)),
                          parse_file(str(board_path)))
        path.write_bytes(mutated(data))
    ours = acrn_schema.check(ACRN_SRC, parse_file(str(path)),
                             parse_file(str(board_path)))
    assert not [f for f in ours if f.code == acrn_schema.SKIPPED_CODE]
    assert collections.Counter(
        (f.severity, f.xpath, f.message) for f in ours) == acrn_validator(
            board_path, path)
    if kind == "mutated":
        assert len(ours) >= 3
    # Each finding is at the element its XPath names, when the user's
    # file has it (elements ACRN adds are placed at their holder).
    tree = etree.parse(str(path))
    for finding in ours:
        if finding.in_board or not finding.xpath:
            continue
        nodes = tree.xpath(finding.xpath)
        if nodes and finding.code != "ISM901":
            assert finding.loc.line == nodes[0].sourceline, finding
