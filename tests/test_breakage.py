"""Break real ACRN scenarios once per rule and check what acrn-shm says.

Every case copies one scenario shipped with ACRN (``../shared/acrn-data``,
or ``tests/test_breakage/`` for a hand-written v3.3 scenario with PCI
vUARTs, which ACRN's data lacks)
into ``tmp_path`` with its board XML beside it, applies ONE textual
mutation to the ``IVSHMEM`` block and lints both copies with
:func:`acrn_ivshmem.lint.engine.lint`:

* the unmutated copy must have no error diagnostic;
* the mutated copy must be reported with the expected rule code, and
  every such diagnostic must sit on a line inside the ``IVSHMEM``
  element (first and last line computed from the mutated text).

A second group applies edits that stay valid and expects no error.
(``tests/test_corpus.py`` lints every shipped file unchanged.)
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from acrn_ivshmem.lint.config import LintConfig
from acrn_ivshmem.lint.engine import lint

DATA = Path(__file__).resolve().parents[2] / "shared" / "acrn-data"
# Hand-written files for cases that ../shared/acrn-data cannot serve.
EXTRA = Path(__file__).resolve().parent / "test_breakage"

# Scenario files, as (release folder, board, file name).
V3_HYBRID_RT = [("v3.3", "whl-ipc-i5", "hybrid_rt.xml"),
                ("v3.3", "cfl-k700-i7", "hybrid_rt.xml")]
V3_SHARED = [("v3.3", "whl-ipc-i5", "shared.xml"),
             ("v3.3", "cfl-k700-i7", "shared.xml")]
V3_HYBRID = [("v3.3", "whl-ipc-i5", "hybrid.xml"),
             ("v3.3", "cfl-k700-i7", "hybrid.xml")]
LEGACY_HYBRID_RT = [("v2.7", "whl-ipc-i5", "hybrid_rt.xml"),
                    ("v2.7", "cfl-k700-i7", "hybrid_rt.xml"),
                    ("v2.7", "generic_board", "hybrid_rt.xml")]
# PCI vUARTs at 00:10.0 for ACRN_Service_VM and POST_STD_VM1, on the
# project's demo-nuc board (tests/test_breakage/).
V3_PCI_VUART = [("v3.3", "demo-nuc", "shared.xml")]
LEGACY_SHARED = [("v2.7", "whl-ipc-i5", "shared.xml"),
                 ("v2.7", "cfl-k700-i7", "shared.xml"),
                 ("v2.7", "generic_board", "shared.xml")]

# A native PCI function of each board (from its PCI_DEVICE section), in
# the board's own spelling and upper-cased; and a VBDF no board uses.
NATIVE = {"whl-ipc-i5": ("00:16.0", "00:1A.0"),
          "cfl-k700-i7": ("00:08.0", "00:1E.0")}
FREE_VBDF = "00:0b.0"

# --------------------------------------------------------------------------
# Text helpers: every mutation is a plain string edit of the file.


def replace_once(text: str, old: str, new: str) -> str:
    """``text`` with the single occurrence of ``old`` replaced."""
    assert text.count(old) == 1, f"expected exactly one {old!r}"
    return text.replace(old, new)


def member(vm: str, vbdf: str = "00:08.0") -> str:
    """The text of one v3 ``IVSHMEM_VM`` as ACRN writes it."""
    return (f"<VM_NAME>{vm}</VM_NAME>\n"
            f"              <VBDF>{vbdf}</VBDF>")


def set_member(text: str, vm: str, new_vm: str | None = None,
               vbdf: str = "00:08.0") -> str:
    """Change the VM name and/or VBDF of ``vm``'s member (VBDF 00:08.0)."""
    return replace_once(text, member(vm), member(new_vm or vm, vbdf))


def v3_region(name: str, members: list[tuple[str, str]],
              provided: str = "Hypervisor", size: str = "2") -> str:
    """A v3 ``IVSHMEM_REGION`` in ACRN's indentation."""
    lines = ["        <IVSHMEM_REGION>",
             f"          <NAME>{name}</NAME>",
             f"          <PROVIDED_BY>{provided}</PROVIDED_BY>",
             f"          <IVSHMEM_SIZE>{size}</IVSHMEM_SIZE>",
             "          <IVSHMEM_VMS>"]
    for vm, vbdf in members:
        lines += ["            <IVSHMEM_VM>",
                  f"              {member(vm, vbdf)}",
                  "            </IVSHMEM_VM>"]
    lines += ["          </IVSHMEM_VMS>", "        </IVSHMEM_REGION>"]
    return "\n".join(lines) + "\n"


def add_v3_regions(text: str, *regions: str) -> str:
    """Append regions to the IVSHMEM block (also to an empty one)."""
    body = "".join(regions)
    if "<IVSHMEM/>" in text:
        return replace_once(text, "<IVSHMEM/>",
                            "<IVSHMEM>\n" + body + "      </IVSHMEM>")
    return replace_once(text, "      </IVSHMEM>", body + "      </IVSHMEM>")


LEGACY_REGION = "hv:/shm_region_0, 2, 0:2"
LEGACY_LINE = f"<IVSHMEM_REGION>{LEGACY_REGION}</IVSHMEM_REGION>"


def legacy(new: str) -> Callable[[str, str], str]:
    """A mutation that rewrites the legacy region string."""
    return lambda text, board: replace_once(text, LEGACY_REGION, new)


def legacy_lines(*strings: str) -> Callable[[str, str], str]:
    """A mutation that replaces the region element by several regions."""
    body = "\n        ".join(f"<IVSHMEM_REGION>{s}</IVSHMEM_REGION>"
                             for s in strings)
    return lambda text, board: replace_once(text, LEGACY_LINE, body)


_IVSHMEM_OPEN = re.compile(r"<IVSHMEM(?=[\s/>])")


def ivshmem_lines(text: str) -> tuple[int, int]:
    """First and last line (1-based) of the one IVSHMEM element."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # as XML
    starts = list(_IVSHMEM_OPEN.finditer(text))
    assert len(starts) == 1, "expected one <IVSHMEM> element"
    start = starts[0].start()
    first = text.count("\n", 0, start) + 1
    tag_end = text.index(">", start)
    if text[tag_end - 1] == "/":
        return first, first
    close = text.index("</IVSHMEM>", start)
    return first, text.count("\n", 0, close) + 1


# --------------------------------------------------------------------------
# The cases.


@dataclass(frozen=True)
class Case:
    """One rule broken one way, in each of ``files``."""

    name: str
    code: str
    files: list[tuple[str, str, str]]
    mutate: Callable[[str, str], str]
    xfail: str | None = None


def _legacy_string_in_v3(text: str, board: str) -> str:
    start = text.index("        <IVSHMEM_REGION>")
    end = text.index("</IVSHMEM_REGION>") + len("</IVSHMEM_REGION>")
    return (text[:start] + f"        {LEGACY_LINE}" + text[end:])


def _nine_v3_regions(text: str, board: str) -> str:
    extra = [v3_region(f"shm_region_{i}",
                       [("PRE_RT_VM0", f"00:{8 + i:02x}.0"),
                        ("POST_STD_VM1", f"00:{8 + i:02x}.0")])
             for i in range(1, 9)]
    return add_v3_regions(text, *extra)


def _nine_v3_post_regions(text: str, board: str) -> str:
    return add_v3_regions(text, *(
        v3_region(f"shm_region_{i}",
                  [("POST_STD_VM1", f"00:{8 + i:02x}.0"),
                   ("POST_RT_VM1", f"00:{8 + i:02x}.0")])
        for i in range(9)))


def _drop_post_member(text: str, board: str) -> str:
    return replace_once(
        text,
        "            <IVSHMEM_VM>\n"
        f"              {member('POST_STD_VM1')}\n"
        "            </IVSHMEM_VM>\n",
        "")


def _insert_after_size(element: str) -> Callable[[str, str], str]:
    return lambda text, board: replace_once(
        text, "<IVSHMEM_SIZE>2</IVSHMEM_SIZE>\n",
        f"<IVSHMEM_SIZE>2</IVSHMEM_SIZE>\n          {element}\n")


V3_CASES = [
    Case("size-3", "ISM201", V3_HYBRID_RT, lambda t, b: replace_once(
        t, "<IVSHMEM_SIZE>2<", "<IVSHMEM_SIZE>3<")),
    Case("size-1024", "ISM201", V3_HYBRID_RT, lambda t, b: replace_once(
        t, "<IVSHMEM_SIZE>2<", "<IVSHMEM_SIZE>1024<")),
    Case("9-hv-regions", "ISM202", V3_HYBRID_RT, _nine_v3_regions),
    Case("9-hv-regions-post-only", "ISM202", V3_SHARED,
         _nine_v3_post_regions),
    Case("unknown-vm-name", "ISM203", V3_HYBRID_RT,
         lambda t, b: set_member(t, "POST_STD_VM1", "POST_STD_VM9")),
    Case("one-vm-only", "ISM204", V3_HYBRID_RT, _drop_post_member),
    Case("vm-twice", "ISM205", V3_HYBRID_RT,
         lambda t, b: set_member(t, "POST_STD_VM1", "PRE_RT_VM0")),
    Case("duplicate-name-disjoint-vms", "ISM206", V3_HYBRID_RT,
         lambda t, b: add_v3_regions(t, v3_region(
             "shm_region_0", [("ACRN_Service_VM", FREE_VBDF),
                              ("POST_STD_VM2", "00:08.0")]))),
    Case("name-with-dash", "ISM207", V3_HYBRID_RT, lambda t, b: replace_once(
        t, "<NAME>shm_region_0<", "<NAME>shm-region-0<")),
    Case("name-28-chars", "ISM208", V3_HYBRID_RT, lambda t, b: replace_once(
        t, "<NAME>shm_region_0<", f"<NAME>{'shm_region_' + 'x' * 17}<")),
    Case("provided-by-Device-model", "ISM209", V3_HYBRID_RT,
         lambda t, b: replace_once(t, ">Hypervisor<", ">Device model<")),
    Case("dm-region-with-pre-launched", "ISM210", V3_HYBRID_RT,
         lambda t, b: replace_once(t, ">Hypervisor<", ">Device Model<")),
    Case("dm-region-with-pre-launched", "ISM210", V3_HYBRID,
         lambda t, b: add_v3_regions(t, v3_region(
             "shm_region_0", [("SAFETY_VM0", "00:08.0"),
                              ("POST_STD_VM1", "00:08.0")],
             provided="Device Model"))),
    Case("dm-region-with-service-vm", "ISM210", V3_SHARED,
         lambda t, b: add_v3_regions(t, v3_region(
             "shm_region_0", [("ACRN_Service_VM", FREE_VBDF),
                              ("POST_STD_VM1", "00:08.0")],
             provided="Device Model"))),
    Case("region-id-0x10", "ISM211", V3_HYBRID_RT, _insert_after_size(
        "<IVSHMEM_REGION_ID>0x10</IVSHMEM_REGION_ID>")),
    Case("region-id-70000", "ISM211", V3_HYBRID_RT, _insert_after_size(
        "<IVSHMEM_REGION_ID>70000</IVSHMEM_REGION_ID>")),
    Case("vbdf-zz", "ISM301", V3_HYBRID_RT,
         lambda t, b: set_member(t, "POST_STD_VM1", vbdf="zz")),
    Case("vbdf-dup-across-regions", "ISM302", V3_HYBRID_RT,
         lambda t, b: add_v3_regions(t, v3_region(
             "shm_region_1", [("PRE_RT_VM0", "00:08.0"),
                              ("POST_STD_VM2", "00:09.0")]))),
    Case("post-vbdf-00:1F.0", "ISM303", V3_HYBRID_RT,
         lambda t, b: set_member(t, "POST_STD_VM1", vbdf="00:1F.0")),
    Case("post-vbdf-00:02.0", "ISM303", V3_HYBRID_RT,
         lambda t, b: set_member(t, "POST_STD_VM1", vbdf="00:02.0")),
    Case("post-only-vbdf-00:1F.0", "ISM303", V3_SHARED,
         lambda t, b: add_v3_regions(t, v3_region(
             "shm_region_0", [("POST_STD_VM1", "00:1F.0"),
                              ("POST_RT_VM1", "00:08.0")]))),
    Case("service-vbdf-native", "ISM304", V3_HYBRID_RT,
         lambda t, b: set_member(t, "POST_STD_VM1", "ACRN_Service_VM",
                                 NATIVE[b][0])),
    Case("service-vbdf-native-uppercase", "ISM304", V3_HYBRID_RT,
         lambda t, b: set_member(t, "POST_STD_VM1", "ACRN_Service_VM",
                                 NATIVE[b][1])),
    Case("service-vbdf-native", "ISM304", V3_SHARED,
         lambda t, b: add_v3_regions(t, v3_region(
             "shm_region_0", [("ACRN_Service_VM", NATIVE[b][0]),
                              ("POST_STD_VM1", "00:08.0")]))),
    Case("pre-vbdf-00:00.0", "ISM305", V3_HYBRID_RT,
         lambda t, b: set_member(t, "PRE_RT_VM0", vbdf="00:00.0")),
    Case("pre-vbdf-00:00.0", "ISM305", V3_HYBRID,
         lambda t, b: add_v3_regions(t, v3_region(
             "shm_region_0", [("SAFETY_VM0", "00:00.0"),
                              ("POST_STD_VM1", "00:08.0")]))),
    Case("unknown-child-in-region", "ISM001", V3_HYBRID_RT,
         _insert_after_size("<SIZE>2</SIZE>")),
    Case("post-vbdf-00:1F.0", "ISM303", V3_PCI_VUART,
         lambda t, b: add_v3_regions(t, v3_region(
             "shm_region_0", [("POST_STD_VM1", "00:1F.0"),
                              ("POST_RT_VM1", "00:08.0")]))),
    Case("vbdf-dup-with-pci-vuart", "ISM302", V3_PCI_VUART,
         lambda t, b: add_v3_regions(t, v3_region(
             "shm_region_0", [("POST_STD_VM1", "00:10.0"),
                              ("POST_RT_VM1", "00:08.0")]))),
    Case("service-vbdf-dup-with-pci-vuart", "ISM302", V3_PCI_VUART,
         lambda t, b: add_v3_regions(t, v3_region(
             "shm_region_0", [("ACRN_Service_VM", "00:10.0"),
                              ("POST_RT_VM1", "00:08.0")]))),
    Case("legacy-string-as-v3-region", "ISM001", V3_HYBRID_RT,
         _legacy_string_in_v3),
    Case("IVSHMEM_ENABLED-in-v3", "ISM001", V3_HYBRID_RT,
         lambda t, b: replace_once(
             t, "      <IVSHMEM>\n", "      <IVSHMEM>\n"
             "        <IVSHMEM_ENABLED>y</IVSHMEM_ENABLED>\n")),
]

LEGACY_CASES = [
    Case("prefix-missing", "ISM101", LEGACY_HYBRID_RT,
         legacy("shm_region_0, 2, 0:2")),
    Case("prefix-sos", "ISM101", LEGACY_HYBRID_RT,
         legacy("sos:/shm_region_0, 2, 0:2")),
    Case("2-fields", "ISM102", LEGACY_HYBRID_RT,
         legacy("hv:/shm_region_0, 2")),
    Case("empty-size-field", "ISM102", LEGACY_HYBRID_RT,
         legacy("hv:/shm_region_0, , 0:2")),
    Case("size-0x2", "ISM103", LEGACY_HYBRID_RT,
         legacy("hv:/shm_region_0, 0x2, 0:2")),
    Case("ids-0;2", "ISM104", LEGACY_HYBRID_RT,
         legacy("hv:/shm_region_0, 2, 0;2")),
    Case("enabled-n-with-region", "ISM105", LEGACY_HYBRID_RT,
         lambda t, b: replace_once(t, ">y</IVSHMEM_ENABLED>",
                                   ">n</IVSHMEM_ENABLED>")),
    Case("enabled-y-region-emptied", "ISM106", LEGACY_HYBRID_RT,
         lambda t, b: replace_once(t, LEGACY_LINE, "<IVSHMEM_REGION/>")),
    Case("enabled-y-no-region", "ISM106", LEGACY_SHARED,
         lambda t, b: replace_once(t, ">n</IVSHMEM_ENABLED>",
                                   ">y</IVSHMEM_ENABLED>")),
    Case("size-3", "ISM201", LEGACY_HYBRID_RT,
         legacy("hv:/shm_region_0, 3, 0:2")),
    Case("size-1024", "ISM201", LEGACY_HYBRID_RT,
         legacy("hv:/shm_region_0, 1024, 0:2")),
    Case("9-regions", "ISM202", LEGACY_HYBRID_RT, legacy_lines(
        *(f"hv:/shm_region_{i}, 2, 0:2" for i in range(9)))),
    Case("unknown-vm-id", "ISM203", LEGACY_HYBRID_RT,
         legacy("hv:/shm_region_0, 2, 0:7")),
    Case("one-vm-only", "ISM204", LEGACY_HYBRID_RT,
         legacy("hv:/shm_region_0, 2, 0")),
    Case("vm-twice", "ISM205", LEGACY_HYBRID_RT,
         legacy("hv:/shm_region_0, 2, 0:2:0")),
    Case("duplicate-name", "ISM206", LEGACY_HYBRID_RT, legacy_lines(
        LEGACY_REGION, "hv:/shm_region_0, 2, 1:3")),
    Case("name-with-dash", "ISM207", LEGACY_HYBRID_RT,
         legacy("hv:/shm-region-0, 2, 0:2")),
    Case("name-28-chars", "ISM208", LEGACY_HYBRID_RT,
         legacy(f"hv:/shm_region_{'x' * 17}, 2, 0:2")),
    Case("dm-region-with-pre-launched", "ISM210", LEGACY_HYBRID_RT,
         legacy("dm:/shm_region_0, 2, 0:2")),
    Case("dm-region-with-service-vm", "ISM210", LEGACY_HYBRID_RT,
         legacy("dm:/shm_region_0, 2, 1:2")),
    Case("child-element-in-region", "ISM001", LEGACY_HYBRID_RT,
         legacy(f"{LEGACY_REGION}<VBDF>00:08.0</VBDF>")),
    Case("enabled-yes", "ISM001", LEGACY_HYBRID_RT,
         lambda t, b: replace_once(t, ">y</IVSHMEM_ENABLED>",
                                   ">yes</IVSHMEM_ENABLED>")),
    Case("size-3-after-comment", "ISM201", LEGACY_HYBRID_RT,
         legacy("<!-- RTVM link -->hv:/shm_region_0, 3, 0:2")),
]


def _params(cases: list[Case], with_code: bool = True):
    params = []
    for case in cases:
        marks = ([pytest.mark.xfail(strict=True, reason=case.xfail)]
                 if case.xfail else [])
        for version, board, scenario in case.files:
            params.append(pytest.param(
                case, (version, board, scenario), marks=marks,
                id=(f"{case.code}-" if with_code else "")
                + f"{case.name}-{version}-{board}-{scenario[:-4]}"))
    return params


def _copy(acrn_data: Path, tmp_path: Path,
          where: tuple[str, str, str]) -> tuple[Path, str]:
    """Copy the board XML into tmp_path/<board>/; return folder, text."""
    version, board, scenario = where
    source = acrn_data / version / board
    if not source.is_dir():
        source = EXTRA / version / board
    folder = tmp_path / board
    folder.mkdir()
    shutil.copyfile(source / f"{board}.xml", folder / f"{board}.xml")
    text = (source / scenario).read_bytes().decode("utf-8")
    return folder, text


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def _lint(path: Path):
    result = lint([str(path)], None, LintConfig())
    assert not result.errors, result.errors
    return result


def _show(diagnostics) -> str:
    return "\n".join(f"  {d.path.rsplit('/', 1)[-1]}:{d.line}: {d.code} "
                     f"[{d.severity}] {d.message}" for d in diagnostics)


def _errors(result) -> list:
    return [d for d in result.diagnostics if d.severity == "error"]


@pytest.mark.parametrize(("case", "where"),
                         _params(V3_CASES + LEGACY_CASES))
def test_breakage_is_reported_inside_ivshmem(case, where, acrn_data,
                                             tmp_path):
    """One mutation per case: the rule fires, inside the IVSHMEM block."""
    folder, original = _copy(acrn_data, tmp_path, where)
    scenario = where[2]
    clean = _write(folder / scenario, original)
    clean_result = _lint(clean)
    assert not _errors(clean_result), (
        "unmutated copy has errors:\n" + _show(_errors(clean_result)))

    mutated = case.mutate(original, where[1])
    assert mutated != original
    broken = _write(folder / f"broken_{scenario}", mutated)
    result = _lint(broken)
    shown = _show(result.diagnostics) or "  (nothing)"
    assert "ISM002" not in {d.code for d in result.diagnostics}, (
        "the board XML beside the scenario was not found:\n" + shown)
    hits = [d for d in result.diagnostics
            if d.code == case.code and d.path == str(broken)]
    assert hits, f"{case.code} not reported; got:\n{shown}"
    first, last = ivshmem_lines(mutated)
    outside = [d for d in hits if not first <= d.line <= last]
    assert not outside, (
        f"{case.code} reported outside the IVSHMEM block (lines {first}-"
        f"{last}):\n{_show(outside)}")


# --------------------------------------------------------------------------
# Edits that keep the configuration valid must not raise errors.

VALID_EDITS = [
    Case("size-512", "-", V3_HYBRID_RT, lambda t, b: replace_once(
        t, "<IVSHMEM_SIZE>2<", "<IVSHMEM_SIZE>512<")),
    Case("name-27-chars", "-", V3_HYBRID_RT, lambda t, b: replace_once(
        t, "<NAME>shm_region_0<", f"<NAME>{'shm_region_' + 'x' * 16}<")),
    Case("region-id-65535", "-", V3_HYBRID_RT, _insert_after_size(
        "<IVSHMEM_REGION_ID>65535</IVSHMEM_REGION_ID>")),
    Case("post-vbdf-00:1e.0", "-", V3_HYBRID_RT,
         lambda t, b: set_member(t, "POST_STD_VM1", vbdf="00:1e.0")),
    Case("post-vbdf-upper-00:0A.0", "-", V3_HYBRID_RT,
         lambda t, b: set_member(t, "POST_STD_VM1", vbdf="00:0A.0")),
    Case("service-vbdf-free", "-", V3_HYBRID_RT,
         lambda t, b: set_member(t, "POST_STD_VM1", "ACRN_Service_VM",
                                 FREE_VBDF)),
    Case("8-hv-regions", "-", V3_HYBRID_RT, lambda t, b: add_v3_regions(
        t, *(v3_region(f"shm_region_{i}",
                       [("PRE_RT_VM0", f"00:{8 + i:02x}.0"),
                        ("POST_STD_VM1", f"00:{8 + i:02x}.0")])
             for i in range(1, 8)))),
    Case("8-hv-and-3-dm-regions", "-", V3_SHARED, lambda t, b: add_v3_regions(
        t, *(v3_region(f"shm_region_{i}",
                       [("POST_STD_VM1", f"00:{8 + i:02x}.0"),
                        ("POST_RT_VM1", f"00:{8 + i:02x}.0")],
                       provided="Hypervisor" if i < 8 else "Device Model")
             for i in range(11)))),
    Case("dm-region-post-only", "-", V3_HYBRID, lambda t, b: add_v3_regions(
        t, v3_region("shm_region_0", [("POST_STD_VM1", "00:08.0"),
                                      ("POST_STD_VM2", "00:08.0")],
                     provided="Device Model"))),
    Case("three-vms", "-", V3_HYBRID, lambda t, b: add_v3_regions(
        t, v3_region("shm_region_0", [("SAFETY_VM0", "00:08.0"),
                                      ("ACRN_Service_VM", FREE_VBDF),
                                      ("POST_STD_VM1", "00:08.0")]))),
    Case("size-512", "-", LEGACY_HYBRID_RT,
         legacy("hv:/shm_region_0, 512, 0:2")),
    Case("no-spaces", "-", LEGACY_HYBRID_RT, legacy("hv:/shmem,2,0:1")),
    Case("dm-post-only", "-", LEGACY_HYBRID_RT,
         legacy("dm:/shm_region_0, 2, 2:3")),
    Case("8-regions", "-", LEGACY_HYBRID_RT, legacy_lines(
        *(f"hv:/shm_region_{i}, 2, 0:2" for i in range(8)))),
    Case("name-27-chars", "-", LEGACY_HYBRID_RT,
         legacy(f"hv:/shm_region_{'x' * 16}, 2, 0:2")),
    Case("post-only-region", "-", V3_PCI_VUART, lambda t, b: add_v3_regions(
        t, v3_region("shm_region_0", [("POST_STD_VM1", "00:08.0"),
                                      ("POST_RT_VM1", "00:08.0")]))),
    Case("comment-before-region", "-", V3_HYBRID_RT,
         lambda t, b: replace_once(
             t, "        <IVSHMEM_REGION>",
             "        <!-- RTVM link -->\n        <IVSHMEM_REGION>")),
    Case("comment-before-region", "-", LEGACY_HYBRID_RT,
         lambda t, b: replace_once(
             t, "        <IVSHMEM_REGION>",
             "        <!-- RTVM link -->\n        <IVSHMEM_REGION>")),
    Case("comment-in-size", "-", V3_HYBRID_RT, lambda t, b: replace_once(
        t, "<IVSHMEM_SIZE>2</IVSHMEM_SIZE>",
        "<IVSHMEM_SIZE>2<!-- MB --></IVSHMEM_SIZE>")),
    Case("comment-after-region-string", "-", LEGACY_HYBRID_RT,
         legacy(f"{LEGACY_REGION}<!-- RTVM link -->")),
]


@pytest.mark.parametrize(("case", "where"),
                         _params(VALID_EDITS, with_code=False))
def test_valid_edit_lints_clean(case, where, acrn_data, tmp_path):
    """An edit that stays within the rules gives no error."""
    folder, original = _copy(acrn_data, tmp_path, where)
    mutated = case.mutate(original, where[1])
    assert mutated != original
    result = _lint(_write(folder / where[2], mutated))
    assert not _errors(result), _show(_errors(result))
