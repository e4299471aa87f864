"""The documentation: every command shown is run, every page is current.

``console`` blocks of ``docs/*.md`` are run in order, each page in a
fresh copy of ``board-xmls/`` and ``scenario-xmls/``: a line ``$ CMD``
runs ``CMD`` in bash, the lines after it are its expected output
(stdout and stderr together), a line ``...`` stands for any lines,
``...`` inside a line for any text, and a last
line ``[exit N]`` for the exit status (0 when absent). ``$ACRN_SRC`` is
the real ACRN tree when the variable is set, else the fake v3.3 tree of
``tests/test_build`` with ACRN's whl-ipc-i5 sample from
``../shared/acrn-data``. The rule pages under ``docs/rules`` must equal
what ``acrn_ivshmem.rule_docs`` writes (``UPDATE_GOLDEN=1`` rewrites
them). The README's first command runs on a fresh copy of the project,
and its later ``sh`` examples run in order on ACRN's whl-ipc-i5 files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from acrn_ivshmem import rule_docs
from acrn_ivshmem.cli import print_rule_doc
from acrn_ivshmem.rules import RULES

from conftest import ACRN_DATA, PROJECT, TESTS
from test_build import GOOD_MODULES, _script, _stubs, _tools

DOCS = PROJECT / "docs"
RULE_PAGES = DOCS / "rules"
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))
#: Read at import: the autouse fixture removes ACRN* variables per test.
REAL_ACRN_SRC = os.environ.get("ACRN_SRC")
REAL_BUILD_PYTHON = os.environ.get("ACRN_SHM_BUILD_PYTHON")
FAKE_TREE = TESTS / "test_build" / "fake-acrn-v3.3"
BIN = Path(sys.executable).parent


# --- the runner --------------------------------------------------------------

class Step:
    """One ``$ command`` of a console block and what it should print."""

    def __init__(self, page: str, line: int, command: str):
        self.page, self.line, self.command = page, line, command
        self.expected: list[str] = []
        self.status = 0

    def __repr__(self) -> str:
        return f"{self.page}:{self.line}: $ {self.command}"


def console_steps(path: Path) -> list[Step]:
    """The commands of every ``console`` block of ``path``, in order."""
    steps: list[Step] = []
    inside = False
    for number, line in enumerate(
            path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            inside = line == "```console"
            continue
        if not inside:
            continue
        if line.startswith("$ "):
            steps.append(Step(path.name, number, line[2:]))
        elif match := re.fullmatch(r"\[exit (\d+)\]", line):
            steps[-1].status = int(match.group(1))
        else:
            steps[-1].expected.append(line.rstrip())
    return steps


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` lines fit ``expected``, where ``...`` is any
    run of lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[skip:])
                   for skip in range(len(actual) + 1))
    return bool(actual) and same_line(expected[0], actual[0]) and matches(
        expected[1:], actual[1:])


def same_line(expected: str, actual: str) -> bool:
    """Whether ``actual`` fits ``expected``, where ``...`` inside a line is
    any text."""
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual) is not None


def fake_acrn_build(folder: Path, env: dict[str, str]) -> None:
    """Point ``env`` at the fake ACRN v3.3 tree, stand-ins for the tools
    ACRN's make checks for, and a Python with stand-ins of its modules."""
    tools = _tools(folder / "bin")
    (tools / "python3").unlink()
    site = _stubs(folder / "site", GOOD_MODULES)
    # Only ACRN's make sees the stand-ins; acrn-shm keeps its own lxml.
    (folder / "acrn-py").mkdir()
    python = _script(folder / "acrn-py" / "python3",
                     f'PYTHONPATH="{site}" exec "{sys.executable}" -S "$@"')
    env.update(ACRN_SRC=str(fake_acrn_tree(folder)),
               ACRN_SHM_BUILD_PYTHON=str(python),
               PATH=f"{env['PATH']}{os.pathsep}{tools}")


def fake_acrn_tree(folder: Path) -> Path:
    """The fake ACRN v3.3 tree with ACRN's whl-ipc-i5 sample in place."""
    sample = ACRN_DATA / "v3.3" / "whl-ipc-i5"
    if not sample.is_dir():
        pytest.skip(f"{sample} is missing")
    tree = folder / "acrn-hypervisor"
    shutil.copytree(FAKE_TREE, tree)
    shutil.copy(FAKE_TREE.parent / "fake_acrn_gen.py", folder)
    data = tree / "misc" / "config_tools" / "data" / "whl-ipc-i5"
    data.mkdir(parents=True)
    for name in ("whl-ipc-i5.xml", "hybrid_rt.xml"):
        shutil.copy(sample / name, data / name)
    return tree


def run_page(page: Path, tmp_path: Path) -> list[Step]:
    """Run the console steps of ``page``; return them after checking."""
    work = tmp_path / "work"
    work.mkdir()
    for folder in ("board-xmls", "scenario-xmls"):
        shutil.copytree(PROJECT / folder, work / folder)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
               COLUMNS="100", NO_COLOR="1", TERM="dumb",
               PYTHONUNBUFFERED="1")
    if REAL_ACRN_SRC:
        env["ACRN_SRC"] = REAL_ACRN_SRC
        if REAL_BUILD_PYTHON:
            env["ACRN_SHM_BUILD_PYTHON"] = REAL_BUILD_PYTHON
    else:
        fake_acrn_build(tmp_path / "fake", env)
    steps = console_steps(page)
    assert steps, f"{page.name} has no console block"
    if any("acrn-shm graph" in step.command for step in steps) and \
            shutil.which("dot") is None:
        if os.environ.get("ACRN_SHM_REQUIRE_TOOLS"):
            pytest.fail("Graphviz's dot is required here but not installed")
        pytest.skip("Graphviz's dot is not installed (apt-get install "
                    "graphviz)")
    for step in steps:
        done = subprocess.run(
            ["bash", "-c", step.command], cwd=work, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=600)
        actual = [line.rstrip() for line in done.stdout.splitlines()]
        while actual and not actual[-1]:
            actual.pop()  # rich ends a table with a blank line
        assert (done.returncode, matches(step.expected, actual)) == (
            step.status, True), (
            f"{step!r}\nexit {done.returncode}, printed:\n{done.stdout}")
    return steps


# --- the pages ---------------------------------------------------------

def test_getting_started_runs_as_written(tmp_path):
    steps = run_page(DOCS / "getting-started.md", tmp_path)
    # Each step of the page's promise is there.
    shown = " ".join(step.command for step in steps)
    for command in ("acrn-shm lint", "acrn-shm add-region",
                    "acrn-shm launch-script", "acrn-shm check-launch",
                    "acrn-shm host-prep", "acrn-shm qemu-args",
                    "acrn-shm graph",
                    "acrn-shm build"):
        assert command in shown
    work = tmp_path / "work"
    assert (work / "launch" / "launch_user_vm_id1.sh").is_file()
    assert b">shm_video</text>" in (work / "topology.svg").read_bytes()
    assert (work / "shm" / "shm_video").stat().st_size == 8 << 20
    header, = (work / "build-whl").rglob("ivshmem_cfg.h")
    assert '"hv:/shm_video"' in header.read_text()
    assert (work / "build-whl" / "acrn-shm-build.log").is_file()


def test_ci_page_runs_as_written(tmp_path):
    run_page(DOCS / "ci.md", tmp_path)


def test_install_block_is_the_readmes_first_command():
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```sh\n(.*?)\n```", readme, re.S).group(1)
    page = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    install = re.search(r"## 1\. Install.*?```sh\n(.*?)\n", page,
                        re.S).group(1)
    assert install == first


def test_console_step_parsing_and_matching(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n```console\n$ echo a\na\n...\nz\n[exit 3]\n"
                    "```\n```sh\n$ not run\n```\n")
    steps = console_steps(page)
    assert [(s.line, s.command, s.expected, s.status) for s in steps] == [
        (3, "echo a", ["a", "...", "z"], 3)]
    assert matches(["a", "...", "z"], ["a", "z"])
    assert matches(["a", "...", "z"], ["a", "b", "c", "z"])
    assert not matches(["a", "...", "z"], ["a", "b"])
    assert not matches(["a"], ["a", "b"])
    assert matches(["built in ... s"], ["built in 0.3 s"])
    assert not matches(["built in ... s"], ["built in 0.3 s!"])
    assert not matches(["a.c"], ["abc"])


# --- the README's examples ---------------------------------------------

#: README sections whose commands set up a machine rather than run
#: acrn-shm (pip from PyPI, sudo apt-get, git clone from GitHub, a real
#: ACRN build): getting-started.md runs that build, against the real
#: tree when ACRN_SRC is set; test_build.py covers every path of it.
README_NOT_RUN = {"Building ACRN"}
#: Run, but pointed into the sandbox: no file in the real /dev/shm or
#: /tmp. (command prefix, text, replacement)
README_SANDBOXED = [
    ("acrn-shm host-prep", "--vm POST_STD_VM1",
     "--vm POST_STD_VM1 --shm-dir shm"),
    ("acrn-shm ivshmem-server", "/tmp/ivshmem.sock", "ivshmem.sock"),
    ("acrn-shm qemu-args --name", "/tmp/ivshmem.sock", "ivshmem.sock"),
]


def readme_examples() -> list[tuple[str, str]]:
    """(section, command) of every ``sh`` example of the README after the
    first two (install and test), continued lines joined, comments cut."""
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    examples = []
    for number, block in enumerate(re.finditer(
            r"^## (.*?)$|^```sh\n(.*?)^```$", readme, re.S | re.M)):
        if block.group(1):
            section = block.group(1)
            continue
        if number < 2:
            continue
        for line in block.group(2).replace("\\\n", " ").splitlines():
            command = " ".join(line.split("  #")[0].split())
            examples.append((section, command))
    return examples


def test_readme_examples_run(tmp_path):
    """Each README example in a sandbox laid out as the examples assume:
    ACRN's v3.3 whl-ipc-i5 files in the folder, the v2.7 ones in v2.7/,
    and an existing v3 scenario (v3.3 hybrid_rt without its region)."""
    v33 = ACRN_DATA / "v3.3" / "whl-ipc-i5"
    v27 = ACRN_DATA / "v2.7" / "whl-ipc-i5"
    if not (v33.is_dir() and v27.is_dir()):
        pytest.skip(f"{ACRN_DATA} is missing")
    if shutil.which("dot") is None and not os.environ.get(
            "ACRN_SHM_REQUIRE_TOOLS"):
        pytest.skip("Graphviz's dot is not installed (apt-get install "
                    "graphviz)")
    work = tmp_path / "work"
    (work / "v2.7").mkdir(parents=True)
    (work / "shm").mkdir()
    for name in ("whl-ipc-i5.xml", "hybrid_rt.xml", "shared.xml"):
        shutil.copy(v33 / name, work)
    shutil.copytree(v33, work / "path" / "to" / "whl-ipc-i5")
    for name in ("whl-ipc-i5.xml", "hybrid_rt.xml"):
        shutil.copy(v27 / name, work / "v2.7")
    shutil.copy(v27 / "hybrid_rt_launch_1user_vm_waag.xml", work)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
               COLUMNS="100", NO_COLOR="1", TERM="dumb")
    shutil.copy(v33 / "hybrid_rt.xml", work / "existing_v3.xml")
    subprocess.run(["acrn-shm", "remove-region", "existing_v3.xml",
                    "shm_region_0"], cwd=work, env=env, check=True,
                   capture_output=True)

    examples = readme_examples()
    sections = {section for section, _ in examples}
    assert README_NOT_RUN <= sections
    assert len(examples) > 20
    for section, command in examples:
        if section in README_NOT_RUN:
            continue
        for prefix, text, replacement in README_SANDBOXED:
            if command.startswith(prefix):
                assert text in command, command
                command = command.replace(text, replacement)
        if command.startswith("acrn-shm ivshmem-server"):
            with subprocess.Popen(
                    command.split(), cwd=work, env=env, text=True,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT) as server:
                line = server.stdout.readline()
                server.terminate()
            assert line == ("acrn-shm: ivshmem server listening on "
                            "ivshmem.sock (2 MB, 2 vector(s))\n")
            continue
        done = subprocess.run(["bash", "-c", command], cwd=work, env=env,
                              capture_output=True, text=True, timeout=120)
        assert (done.returncode, "error" in done.stderr) == (0, False), (
            f"README ({section}): $ {command}\nexit {done.returncode}\n"
            f"{done.stdout}{done.stderr}")
    assert sorted(p.name for p in (work / "scripts").iterdir()) == [
        "launch_user_vm_id1.sh", "launch_user_vm_id2.sh"]
    assert (work / "shm" / "shm_region_0").stat().st_size == 2 << 20
    assert b"<NAME>shm_region_0</NAME>" in (
        work / "existing_v3.xml").read_bytes()
    assert b">shm_region_0</text>" in (work / "topology.svg").read_bytes()


# --- the rule pages ----------------------------------------------------

def test_rule_pages_are_generated_from_the_docstrings(tmp_path):
    if UPDATE:
        rule_docs.write_pages(str(RULE_PAGES))
    written = rule_docs.write_pages(str(tmp_path))
    assert sorted(p.name for p in RULE_PAGES.iterdir()) == written
    for name in written:
        assert (RULE_PAGES / name).read_text(encoding="utf-8") == (
            tmp_path / name).read_text(encoding="utf-8"), (
            f"docs/rules/{name} is stale: run python -m "
            "acrn_ivshmem.rule_docs docs/rules")
    assert len(written) == len(RULES) + 1


@pytest.mark.parametrize("code", sorted(RULES))
def test_explain_prints_the_docstring_and_the_page(code, capsys):
    rule = RULES[code]
    assert print_rule_doc(code.lower()) == 0
    assert capsys.readouterr().out == (
        rule.__doc__.strip() + f"\n\nDefault severity: {rule.SEVERITY}\n")
    assert print_rule_doc(code, "markdown") == 0
    assert capsys.readouterr().out == (
        RULE_PAGES / f"{code}.md").read_text(encoding="utf-8")


def test_rule_page_layout():
    page = (RULE_PAGES / "ISM201.md").read_text(encoding="utf-8")
    assert page == (
        "# ISM201 region-size\n\nA power of two from 2 to 512 MB.\n\n"
        "Default severity: **error**. Checks: scenario XMLs.\n\n"
        "## What it does\n\nChecks that each region's size (`IVSHMEM_SIZE`,"
        " or the legacy size field) is one of 2, 4, 8, 16, 32, 64, 128, "
        "256 or 512 (MB).\n\n"
        "## Why it matters\n\nThe PCI BAR that maps the memory must be a "
        "power of two, and both the hypervisor and acrn-dm refuse sizes "
        "below 2 MB or of 1 GB and more; a wrong size fails at VM start, "
        "not at build time.\n\n"
        "## Example (fails)\n\n```xml\n<IVSHMEM_SIZE>3</IVSHMEM_SIZE>\n"
        "```\n\n## Use instead (passes)\n\n```xml\n"
        "<IVSHMEM_SIZE>4</IVSHMEM_SIZE>\n```\n\n"
        "Print this page with `acrn-shm explain ISM201`; silence the rule "
        "with `--ignore ISM201`.\n")


def test_explain_unknown_format(capsys):
    assert print_rule_doc("ISM201", "html") == 2
    assert capsys.readouterr().err == (
        "acrn-shm: error: unknown output format 'html'; choose text, "
        "markdown\n")


def test_readmes_first_command_on_a_fresh_copy(tmp_path):
    """The README's first command: a new venv, pip install ., lint."""
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```sh\n(.*?)\n```", readme, re.S).group(1)
    copy = tmp_path / "acrn-shm"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "*.egg-info", "__pycache__", ".ci"))
    done = subprocess.run(["bash", "-c", first], cwd=copy, text=True,
                          capture_output=True, timeout=600,
                          env=dict(os.environ, COLUMNS="100"))
    assert (done.returncode, done.stdout) == (0, "no problems in 5 files\n"), (
        done.stderr)
