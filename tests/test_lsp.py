"""``acrn-shm lsp`` end to end: the server runs as a new process and the
tests talk LSP to it over stdio (``lsp_client.py``).

The scenarios are ACRN's own whl-ipc-i5 files, copied into a temporary
folder with their board and changed there.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import PROJECT, run_acrn_shm
from lsp_client import (
    LspClient, apply_edits, position, span, whl_with_3mb_region,
)

SIZE_LINE = 30  # 0-based line of <IVSHMEM_SIZE> in hybrid_rt.xml
ISM201 = ("region 'shm_region_0' size '3' is not a power of two from 2 "
          "to 512 (MB)\nhint: use one of 2, 4, 8, 16, 32, 64, 128, 256, "
          "512")


@pytest.fixture
def folder(acrn_data, tmp_path) -> Path:
    """whl-ipc-i5's board and hybrid_rt.xml with a 3 MB region."""
    work = tmp_path / "whl-ipc-i5"
    work.mkdir()
    return whl_with_3mb_region(acrn_data, work).parent


@pytest.fixture
def client(tmp_path):
    """A started and initialised server; killed after the test."""
    started = LspClient(tmp_path)
    started.initialize({"structureDelay": 0.2})
    yield started
    started.kill()


BAD_REGION = """<IVSHMEM><IVSHMEM_REGION>
        <NAME>shm-0</NAME><PROVIDED_BY>Device Model</PROVIDED_BY>
        <IVSHMEM_SIZE>1024</IVSHMEM_SIZE>
        <IVSHMEM_REGION_ID>0x10</IVSHMEM_REGION_ID>
        <IVSHMEM_VMS><IVSHMEM_VM><VM_NAME>NOPE</VM_NAME>
        <VBDF>0:0A.0</VBDF></IVSHMEM_VM></IVSHMEM_VMS>
      </IVSHMEM_REGION></IVSHMEM>"""


def lint_json(path: Path) -> list[dict]:
    """What ``acrn-shm lint -f json`` reports for ``path``."""
    done = run_acrn_shm(["lint", "-f", "json", str(path)], path.parent)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def as_lint(diagnostic: dict) -> tuple:
    """A diagnostic as (code, 1-based line, column, severity, message)
    for ASCII lines, where UTF-16 units and characters agree."""
    severity = {1: "error", 2: "warning", 3: "info"}[diagnostic["severity"]]
    start = diagnostic["range"]["start"]
    return (diagnostic["code"], start["line"] + 1, start["character"] + 1,
            severity, diagnostic["message"])


def from_lint(found: dict) -> tuple:
    message = found["message"] + (f"\nhint: {found['hint']}"
                                  if found["hint"] else "")
    return (found["code"], found["line"], found["column"],
            found["severity"], message)


@functools.cache
def rule_page(code: str) -> str:
    """Where the server links a rule's page: the page installed with
    the acrn_ivshmem it runs (CI installs a copy), else docs/rules."""
    done = subprocess.run(
        [sys.executable, "-c", "import acrn_ivshmem; "
         "print(acrn_ivshmem.__file__)"],
        cwd=Path(tempfile.gettempdir()), capture_output=True, text=True,
        check=True)
    page = Path(done.stdout.strip()).parent / "rule_pages" / f"{code}.md"
    if not page.is_file():
        page = PROJECT / "docs" / "rules" / f"{code}.md"
    assert page.read_text() == (PROJECT / "docs" / "rules"
                                / f"{code}.md").read_text()
    return page.as_uri()


def size_3_diagnostic(character: int = 24, line: int = SIZE_LINE,
                      width: int = 1) -> dict:
    return {
        "range": span((line, character), (line, character + width)),
        "message": ISM201, "severity": 1, "code": "ISM201",
        "codeDescription": {"href": rule_page("ISM201")},
        "source": "acrn-shm"}


def replace_text(text: str, old: str, new: str) -> dict:
    """A didChange content change replacing the first ``old``."""
    offset = text.index(old)
    before = text[:offset]
    line = before.count("\n")
    character = len(before) - (before.rfind("\n") + 1)
    end_line = line + old.count("\n")
    end_character = (character + len(old) if "\n" not in old
                     else len(old) - old.rfind("\n") - 1)
    return {"range": span((line, character), (end_line, end_character)),
            "text": new}


# --- diagnostics ---------------------------------------------------------

def test_open_publishes_what_lint_reports(client, folder):
    scenario = folder / "hybrid_rt.xml"
    uri = client.open(scenario)
    found = client.diagnostics(uri, 1)
    assert found == [size_3_diagnostic()]
    assert [as_lint(d) for d in found] == [
        from_lint(d) for d in lint_json(scenario)]


def test_every_kind_of_file_matches_lint(client, acrn_data, tmp_path):
    # A v3 scenario with findings of several rules, a legacy one, a v2.x
    # launch XML and a board: the same codes, places and messages.
    for version, name, old, new in (
            ("v3.3", "hybrid.xml", "<IVSHMEM/>", BAD_REGION),
            ("v2.7", "hybrid_rt.xml", "hv:/shm_region_0, 2, 0:2",
             "hv:/shm_region_0,  3,0:2"),
            ("v2.7", "hybrid_rt_launch_1user_vm_waag.xml",
             ('<shm_region desc="configure the shm regions for current '
              'VM, formated as hv:/shm_region_0,2097152"/>'),
             "<shm_region>hv:/shm_region_0 2</shm_region>"),
            ("v3.3", "whl-ipc-i5.xml", "", "")):
        target = tmp_path / version / name
        target.parent.mkdir(exist_ok=True)
        for other in (acrn_data / version / "whl-ipc-i5").iterdir():
            if not (target.parent / other.name).exists():
                shutil.copyfile(other, target.parent / other.name)
        text = target.read_text()
        assert old in text
        target.write_text(text.replace(old, new, 1))
        expected = [from_lint(d) for d in lint_json(target)]
        if name != "whl-ipc-i5.xml":
            assert expected, name
        uri = client.open(target)
        assert [as_lint(d) for d in client.diagnostics(uri, 1)] == \
            expected, name


def test_configuration_and_suppressions_are_honoured(client, folder):
    (folder / "pyproject.toml").write_text(
        '[tool.acrn-shm]\nseverity = { ISM201 = "warning" }\n')
    scenario = folder / "hybrid_rt.xml"
    text = scenario.read_text()
    uri = client.open(scenario, text)
    [found] = client.diagnostics(uri, 1)
    assert (found["code"], found["severity"]) == ("ISM201", 2)
    suppressed = text.replace(
        "<IVSHMEM_SIZE>3", "<!-- acrn-shm: ignore ISM201 -->"
        "<IVSHMEM_SIZE>3")
    client.change(uri, 2, [{"text": suppressed}])
    assert client.diagnostics(uri, 2) == []


def test_board_is_found_beside_the_scenario(client, folder, tmp_path):
    scenario = folder / "hybrid_rt.xml"
    text = scenario.read_text()
    # The Service VM gets 00:1f.0: that is no device of its own, but a
    # native device of the board, which only the board tells (ISM304).
    service = text.replace(
        "<VM_NAME>POST_STD_VM1</VM_NAME>\n              <VBDF>00:08.0",
        "<VM_NAME>ACRN_Service_VM</VM_NAME>\n              <VBDF>00:1f.0")
    scenario.write_text(service)
    expected = [from_lint(d) for d in lint_json(scenario)]
    assert "ISM304" in [code for code, *_ in expected]
    uri = client.open(scenario)
    assert [as_lint(d) for d in client.diagnostics(uri, 1)] == expected
    # Alone in a folder, the same text has no board: ISM002 instead.
    alone = tmp_path / "alone" / "hybrid_rt.xml"
    alone.parent.mkdir()
    alone_uri = client.open(alone, service)
    codes = [d["code"] for d in client.diagnostics(alone_uri, 1)]
    assert "ISM304" not in codes and "ISM002" in codes


def test_rule_page_address_can_be_configured(tmp_path, folder):
    client = LspClient(tmp_path)
    try:
        client.initialize({"ruleDocsUrl":
                           "https://example.org/acrn-shm/{code}.html"})
        uri = client.open(folder / "hybrid_rt.xml")
        [found] = client.diagnostics(uri, 1)
        assert found["codeDescription"] == {
            "href": "https://example.org/acrn-shm/ISM201.html"}
    finally:
        client.kill()


def test_positions_count_utf16_units_and_only_lsp_line_ends(client,
                                                            folder):
    # An astral character is one column for acrn-shm and two UTF-16
    # units for LSP; U+2028 and U+0085 end no line in XML or LSP.
    scenario = folder / "hybrid_rt.xml"
    text = scenario.read_text().replace(
        "<MEMORY>", "<!-- \u2028 \x85 --><MEMORY>").replace(
        "<IVSHMEM_SIZE>3", "<!--\U0001F600é--><IVSHMEM_SIZE>3")
    uri = client.open(scenario, text)
    assert client.diagnostics(uri, 1) == [size_3_diagnostic(24 + 10)]
    client.change(uri, 2, [{
        "range": span((SIZE_LINE, 16), (SIZE_LINE, 16)),
        "text": "\U0001F600"}])  # after the first emoji, in the comment
    assert client.diagnostics(uri, 2) == [size_3_diagnostic(24 + 12)]


def test_incremental_changes_move_the_findings(client, folder):
    scenario = folder / "hybrid_rt.xml"
    text = scenario.read_text()
    uri = client.open(scenario, text)
    client.diagnostics(uri, 1)
    client.change(uri, 2, [{"range": span((1, 0), (1, 0)),
                            "text": "\n\n"}])
    assert client.diagnostics(uri, 2) == [
        size_3_diagnostic(line=SIZE_LINE + 2)]
    client.change(uri, 3, [
        {"range": span((1, 0), (3, 0)), "text": ""},
        replace_text(text, "<IVSHMEM_SIZE>3<", "<IVSHMEM_SIZE>1024<")])
    assert client.diagnostics(uri, 3) == [{
        **size_3_diagnostic(width=4), "message": ISM201.replace(
            "'3'", "'1024'")}]


def test_a_document_broken_mid_edit_gets_one_diagnostic(client, folder):
    scenario = folder / "hybrid_rt.xml"
    text = scenario.read_text()
    uri = client.open(scenario, text)
    client.diagnostics(uri, 1)
    # The user deletes the ">" of <IVSHMEM_SIZE>, then types it again.
    client.change(uri, 2, [{"range": span((SIZE_LINE, 23),
                                          (SIZE_LINE, 24)), "text": ""}])
    [broken] = client.diagnostics(uri, 2)
    assert broken["range"]["start"]["line"] == SIZE_LINE
    assert broken["message"].startswith("not well-formed XML: ")
    assert broken["severity"] == 1 and "code" not in broken
    scenario.write_text(text.replace("<IVSHMEM_SIZE>3", "<IVSHMEM_SIZE3"))
    done = run_acrn_shm(["lint", str(scenario)], folder)
    assert done.returncode == 2
    line, column, message = done.stderr.split(": error: ", 1)[1].split(
        ":", 3)[1:]
    assert broken["range"]["start"] == position(int(line) - 1,
                                                int(column) - 1)
    assert broken["message"] == message.strip()
    client.change(uri, 3, [{"range": span((SIZE_LINE, 23),
                                          (SIZE_LINE, 23)), "text": ">"}])
    assert client.diagnostics(uri, 3) == [size_3_diagnostic()]


def test_structure_findings_come_after_a_pause(tmp_path, folder):
    client = LspClient(tmp_path)
    try:
        client.initialize({"structureDelay": 0.3})
        scenario = folder / "hybrid_rt.xml"
        text = scenario.read_text()
        uri = client.open(scenario, text)
        client.diagnostics(uri, 1)
        # An unknown child of IVSHMEM_REGION breaks the structure
        # (ISM001); until the structure check runs, ISM003 reports it.
        client.change(uri, 2, [replace_text(
            text, "<NAME>shm_region_0</NAME>",
            "<NAME>shm_region_0</NAME><COLOR>red</COLOR>")])
        fast = client.diagnostics(uri, 2)
        assert [d["code"] for d in fast] == ["ISM003", "ISM201"]
        full = client.diagnostics(uri, 2)
        scenario.write_text(text.replace(
            "<NAME>shm_region_0</NAME>",
            "<NAME>shm_region_0</NAME><COLOR>red</COLOR>"))
        assert [as_lint(d) for d in full] == [
            from_lint(d) for d in lint_json(scenario)]
        assert "ISM001" in [d["code"] for d in full]
    finally:
        client.kill()


def test_other_xml_gets_no_diagnostics(client, tmp_path):
    other = tmp_path / "pom.xml"
    other.write_text("<project><modelVersion>4.0.0</modelVersion>"
                     "</project>\n")
    assert client.diagnostics(client.open(other), 1) == []


def test_closing_clears_the_diagnostics(client, folder):
    uri = client.open(folder / "hybrid_rt.xml")
    assert client.diagnostics(uri, 1)
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert client.diagnostics(uri) == []


# --- code actions --------------------------------------------------------

def actions_at(client, uri, line, start, end, diagnostics, only=None):
    context = {"diagnostics": diagnostics}
    if only:
        context["only"] = only
    return client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri},
        "range": span((line, start), (line, end)), "context": context})


def test_safe_fix_and_fix_all(client, folder):
    scenario = folder / "hybrid_rt.xml"
    text = scenario.read_text().replace("<VBDF>00:08.0", "<VBDF>0:0A.0")
    uri = client.open(scenario, text)
    found = client.diagnostics(uri, 1)
    vbdf = [d for d in found if d["code"] == "ISM306"]
    assert [d["range"]["start"]["line"] for d in vbdf] == [34, 38]
    actions = actions_at(client, uri, 34, 20, 20, vbdf[:1])
    fix = actions[0]
    assert fix["title"] == "Fix ISM306: replace '0:0A.0' with '00:0a.0'"
    assert fix["kind"] == "quickfix" and fix["isPreferred"] is True
    assert fix["diagnostics"] == vbdf[:1]
    [change] = fix["edit"]["documentChanges"]
    assert change["textDocument"] == {"uri": uri, "version": 1}
    assert change["edits"] == [{"range": span((34, 20), (34, 26)),
                                "newText": "00:0a.0"}]
    [every] = actions_at(client, uri, 0, 0, 0, [], only=["source.fixAll"])
    assert every["kind"] == "source.fixAll.acrn-shm"
    fixed = apply_edits(text, every["edit"]["documentChanges"][0]["edits"])
    assert fixed == text.replace("<VBDF>0:0A.0", "<VBDF>00:0a.0")
    scenario.write_text(text)
    run_acrn_shm(["lint", "--fix", str(scenario)], folder)
    assert scenario.read_text() == fixed  # as lint --fix does


def test_ignore_here_inserts_the_comment(client, folder):
    scenario = folder / "hybrid_rt.xml"
    text = scenario.read_text()
    uri = client.open(scenario, text)
    [found] = client.diagnostics(uri, 1)
    actions = actions_at(client, uri, SIZE_LINE, 24, 25, [found])
    [ignore] = [a for a in actions if a["title"].startswith("Ignore")]
    assert ignore["title"] == \
        "Ignore ISM201 here (acrn-shm: ignore comment)"
    edits = ignore["edit"]["documentChanges"][0]["edits"]
    assert edits == [{"range": span((SIZE_LINE, 0), (SIZE_LINE, 0)),
                      "newText": "          <!-- acrn-shm: ignore ISM201 "
                      "-->\n"}]
    client.change(uri, 2, [{"text": apply_edits(text, edits)}])
    assert client.diagnostics(uri, 2) == []


# --- hover, completion, navigation ---------------------------------------

def hover_at(client, uri, line, character):
    result = client.request("textDocument/hover", {
        "textDocument": {"uri": uri},
        "position": position(line, character)})
    return result["contents"]["value"] if result else None


def test_hover(client, folder):
    scenario = folder / "hybrid_rt.xml"
    text = scenario.read_text().replace(
        "<IVSHMEM_REGION>",
        "<!-- acrn-shm: ignore ISM306 --><IVSHMEM_REGION>", 1)
    uri = client.open(scenario, text)
    client.diagnostics(uri, 1)
    rule = hover_at(client, uri, 27, 30)
    assert rule == (PROJECT / "docs" / "rules" / "ISM306.md").read_text()
    assert hover_at(client, uri, SIZE_LINE, 24) == (
        "**IVSHMEM_SIZE**: the region's size in MB, one of 2, 4, 8, 16, "
        "32, 64, 128, 256, 512 (ISM201).\n\n`3` is not allowed.")
    assert hover_at(client, uri, 34, 22) == (
        "**VBDF `00:08.0`** of VM `PRE_RT_VM0`.\n\n"
        "Devices of `PRE_RT_VM0`:\n"
        "- `00:08.0`: region 'shm_region_0'\n\n"
        "Free: `00:09.0`, `00:0a.0`, `00:0b.0`, `00:0c.0`, `00:0d.0`, "
        "`00:0e.0`, `00:0f.0`, `00:10.0` and 14 more (00:08.0 to "
        "00:1e.0).")
    assert hover_at(client, uri, 37, 24) == (
        "**VM `POST_STD_VM1`**: post-launched (`POST_LAUNCHED_VM`), id "
        "`2`, line 131.")
    assert hover_at(client, uri, 3, 10) is None
    # The Service VM sees the board's native devices: 00:12.0 is one, and
    # seven of them lie in 00:08.0..00:1e.0, which leaves 16 free.
    client.change(uri, 2, [{"text": text.replace(
        "<VM_NAME>POST_STD_VM1</VM_NAME>\n              <VBDF>00:08.0",
        "<VM_NAME>ACRN_Service_VM</VM_NAME>\n              <VBDF>00:12.0")}])
    assert hover_at(client, uri, 38, 22) == (
        "**VBDF `00:12.0`** of VM `ACRN_Service_VM`.\n\n"
        "A native PCI device of the board has this address (ISM304).\n\n"
        "Devices of `ACRN_Service_VM`:\n"
        "- `00:12.0`: region 'shm_region_0'\n\n"
        "Free: `00:08.0`, `00:09.0`, `00:0a.0`, `00:0b.0`, `00:0c.0`, "
        "`00:0d.0`, `00:0e.0`, `00:0f.0` and 8 more (00:08.0 to "
        "00:1e.0).")


def complete_at(client, uri, line, character):
    result = client.request("textDocument/completion", {
        "textDocument": {"uri": uri},
        "position": position(line, character)})
    return [(item["label"], item["textEdit"]["range"])
            for item in result["items"]]


def test_completion(client, folder):
    scenario = folder / "hybrid_rt.xml"
    # A region being typed: a third member with an empty VBDF.
    text = scenario.read_text().replace(
        "            </IVSHMEM_VM>\n          </IVSHMEM_VMS>",
        "            </IVSHMEM_VM>\n            <IVSHMEM_VM>\n"
        "              <VM_NAME>ACRN_Service_VM</VM_NAME>\n"
        "              <VBDF></VBDF>\n            </IVSHMEM_VM>\n"
        "          </IVSHMEM_VMS>").replace(
        "<PROVIDED_BY>Hypervisor</PROVIDED_BY>",
        "<PROVIDED_BY>Hypervisor</PROVIDED_BY>\n"
        "          <IVSHMEM_REGION_ID></IVSHMEM_REGION_ID>")
    lines = text.split("\n")
    uri = client.open(scenario, text)
    client.diagnostics(uri, 1)
    size = lines.index("          <IVSHMEM_SIZE>3</IVSHMEM_SIZE>")
    sizes = complete_at(client, uri, size, 25)
    assert [label for label, _ in sizes] == [
        "2", "4", "8", "16", "32", "64", "128", "256", "512"]
    assert sizes[0][1] == span((size, 24), (size, 25))
    names = complete_at(client, uri, 34, 24)
    # VMs that are not in the region yet come first.
    assert [label for label, _ in names] == [
        "POST_STD_VM2", "PRE_RT_VM0", "ACRN_Service_VM", "POST_STD_VM1"]
    vbdf = lines.index("              <VBDF></VBDF>")
    assert complete_at(client, uri, vbdf, 20) == [
        ("00:08.0", span((vbdf, 20), (vbdf, 20)))]
    # In a member that has a VBDF: the next one free but for its own.
    assert complete_at(client, uri, 35, 22) == [
        ("00:08.0", span((35, 20), (35, 27)))]
    assert [label for label, _ in complete_at(client, uri, 29, 23)] == [
        "Hypervisor", "Device Model"]
    region_id = lines.index(
        "          <IVSHMEM_REGION_ID></IVSHMEM_REGION_ID>")
    assert [label for label, _ in complete_at(
        client, uri, region_id, 29)] == ["0"]
    assert complete_at(client, uri, 3, 10) == []


def test_definition_and_symbols(client, folder):
    scenario = folder / "hybrid_rt.xml"
    uri = client.open(scenario)
    client.diagnostics(uri, 1)
    location = client.request("textDocument/definition", {
        "textDocument": {"uri": uri}, "position": position(37, 25)})
    lines = scenario.read_text().split("\n")
    end = lines.index("  </vm>", 131)
    assert location == {"uri": uri, "range": span((130, 2), (end, 7))}
    symbols = client.request("textDocument/documentSymbol", {
        "textDocument": {"uri": uri}})
    assert [(s["name"], s["detail"]) for s in symbols] == [
        ("PRE_RT_VM0", "pre-launched, id 0"),
        ("ACRN_Service_VM", "service, id 1"),
        ("POST_STD_VM1", "post-launched, id 2"),
        ("POST_STD_VM2", "post-launched, id 3"),
        ("IVSHMEM", "1 regions")]
    [region] = symbols[-1]["children"]
    assert (region["name"], region["detail"]) == ("shm_region_0",
                                                  "3 MB, hv")
    assert [(m["name"], m["detail"]) for m in region["children"]] == [
        ("PRE_RT_VM0", "00:08.0"), ("POST_STD_VM1", "00:08.0")]
    assert region["range"] == span((27, 8), (41, 25))


# --- robustness ----------------------------------------------------------

def test_files_deleted_under_the_server(client, folder):
    scenario = folder / "hybrid_rt.xml"
    text = scenario.read_text()
    uri = client.open(scenario, text)
    client.diagnostics(uri, 1)
    scenario.unlink()
    client.change(uri, 2, [{"text": text + "\n"}])
    assert client.diagnostics(uri, 2) == [size_3_diagnostic()]
    (folder / "whl-ipc-i5.xml").unlink()
    client.change(uri, 3, [{"text": text}])
    assert [d["code"] for d in client.diagnostics(uri, 3)] == [
        "ISM002", "ISM201"]
    shutil.rmtree(folder)
    client.change(uri, 4, [{"text": text + "\n\n"}])
    assert [d["code"] for d in client.diagnostics(uri, 4)] == [
        "ISM002", "ISM201"]


def big_scenario(text: str, size: int) -> str:
    """``text`` grown to ``size`` UTF-8 bytes by comments before the
    IVSHMEM block, one a line of 1,000 characters (some 16,000: well
    under the limit of 100,000 elements and comments)."""
    pad = size - len(text.encode()) - len("<!---->\n")
    line = "<!--" + "x" * 992 + "-->\n"
    filler = line * (pad // len(line)) + "<!--" + "x" * (pad % len(line))
    return text.replace("      <IVSHMEM>",
                        f"{filler}-->\n      <IVSHMEM>", 1)


def test_a_16_mb_document(client, folder):
    scenario = folder / "hybrid_rt.xml"
    text = scenario.read_text()
    limit = 16 * 1024 * 1024
    big = big_scenario(text, limit)
    assert len(big.encode()) == limit
    uri = client.open(scenario, big)
    [found] = client.diagnostics(uri, 1, timeout=120)
    extra = big.count("\n") - text.count("\n")
    assert found == size_3_diagnostic(line=SIZE_LINE + extra)
    too_big = big_scenario(text, limit + 1)
    client.change(uri, 2, [{"text": too_big}])
    assert client.diagnostics(uri, 2, timeout=120) == [{
        "range": span((0, 0), (0, 13)),
        "message": f"file is {limit + 1} bytes; the limit is {limit} bytes",
        "severity": 1, "source": "acrn-shm"}]


def test_exit_status(tmp_path):
    client = LspClient(tmp_path)
    try:
        client.initialize()
        assert client.stop() == 0
    finally:
        client.kill()


def test_a_client_that_disconnects(tmp_path, folder):
    # Gone without shutdown, in the middle of linting a 16 MB document:
    # the server notices the closed pipe and ends, status 1.
    client = LspClient(tmp_path)
    try:
        client.initialize()
        text = (folder / "hybrid_rt.xml").read_text()
        client.open(folder / "hybrid_rt.xml",
                    big_scenario(text, 16 * 1024 * 1024 - 100))
        client.process.stdin.close()
        started = time.monotonic()
        assert client.process.wait(60) == 1
        assert time.monotonic() - started < 30
        assert b"Traceback" not in client.process.stderr.read()
    finally:
        client.kill()


def test_other_commands_do_not_import_pygls(folder):
    script = (
        "import sys\nfrom acrn_ivshmem.cli.lint import run_lint\n"
        f"run_lint([{str(folder / 'hybrid_rt.xml')!r}], None, 'text', "
        "None, None, None, False)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pygls', 'lsprotocol', 'cattrs')))")
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"
