"""The documentation: every command shown is run, every page is current.

Each page of ``docs/`` runs top to bottom in one new bash, as a reader
in a new shell would run it: no variable of the test run reaches it
(only PATH, HOME, the locale and the terminal's width), and what a step
exports or ``cd``s into stays for the next steps. It runs in a fresh
copy of ``board-xmls/`` and ``scenario-xmls/``, with HOME a new empty
folder: a line ``$ CMD`` of a ``console`` block runs ``CMD``, the lines
after it are its expected output (stdout and stderr together), a line
``...`` stands for any lines, ``...`` inside a line for any text, and a
last line ``[exit N]`` for the exit status (0 when absent).

``sh`` blocks set up the machine (root, the network, PyPI) and are not
run: each of their lines must be one the test knows (:data:`SETUP`),
and the test puts what it gives in place. ACRN's tree and its Python
(``~/acrn``, ``~/acrn-py``) are the real ones when ``ACRN_SRC`` and
``ACRN_SHM_BUILD_PYTHON`` are set, else the fake v3.3 tree of
``tests/test_build`` with ACRN's whl-ipc-i5 sample from
``../shared/acrn-data``; the guests' kernel of ``acrn-shm qemu-try`` is
the e2e tests' (``$ACRN_SHM_E2E_KERNEL`` or ``.ci/cache/vmlinuz``).
The rule pages under ``docs/rules`` must equal what
``acrn_ivshmem.lint.rule_docs`` writes (``UPDATE_GOLDEN=1`` rewrites them).
The README's first command runs on a fresh copy of the project, and its
later ``sh`` examples run in order on ACRN's whl-ipc-i5 files.
"""

from __future__ import annotations

import os
import re
import select
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ACRN_DATA, PROJECT, TESTS
from e2e_guests import guest_environ
from test_build import GOOD_MODULES, _script, _stubs, _tools

from acrn_ivshmem.cli.lint import print_rule_doc
from acrn_ivshmem.errors import UsageError
from acrn_ivshmem.host import qemu_lab
from acrn_ivshmem.lint import rule_docs
from acrn_ivshmem.rules import RULES

DOCS = PROJECT / "docs"
RULE_PAGES = DOCS / "rules"
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))
#: Read at import: the autouse fixture removes ACRN* variables per test.
REAL_ACRN_SRC = os.environ.get("ACRN_SRC")
REAL_BUILD_PYTHON = os.environ.get("ACRN_SHM_BUILD_PYTHON")
FAKE_TREE = TESTS / "test_build" / "fake-acrn-v3.3"
BIN = Path(sys.executable).parent
#: A new login shell's PATH; the venv's bin goes first, as ``.
#: .venv/bin/activate`` puts it.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FIRST_COMMAND = re.search(
    r"```sh\n(.*?)\n```", (PROJECT / "README.md").read_text(
        encoding="utf-8"), re.S).group(1)
#: Every line of a page's ``sh`` blocks (machine set-up, not run) and
#: what the test puts in place of it.
SETUP = {
    FIRST_COMMAND: "acrn-shm in the tests' venv (the README's first "
    "command runs in test_readmes_first_command_on_a_fresh_copy)",
    ". .venv/bin/activate": "the venv's bin first on PATH",
    "sudo apt-get install --no-install-recommends qemu-system-x86 "
    "busybox-static linux-image-cloud-amd64": "QEMU, a static busybox "
    "and a kernel, or the page is skipped (failed in CI)",
    "sudo apt-get install make gcc acpica-tools xsltproc libxml2-utils":
    "the real tools, or stand-ins for the fake ACRN tree",
    "git clone https://github.com/projectacrn/acrn-hypervisor ~/acrn && "
    "git -C ~/acrn checkout v3.3": "~/acrn: the ACRN tree given, or the "
    "fake one",
    "python3 -m venv ~/acrn-py && ~/acrn-py/bin/pip install "
    "'elementpath==2.5.3' 'xmlschema==1.11.3' lxml defusedxml":
    "~/acrn-py/bin/python3: the Python given, or one with stand-ins",
}


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


def page_files(path: Path) -> list[tuple[str, str]]:
    """The code blocks of ``path`` whose first line names a file (``#
    file: NAME`` or ``// file: NAME``): each (name, the whole block),
    written into the work folder before the page runs."""
    text = path.read_text(encoding="utf-8")
    return [(match.group(2), match.group(1)) for match in re.finditer(
        r"^```[a-z]+\n((?:#|//) file: ([\w.-]+)\n.*?)^```$", text,
        re.S | re.M)]


def setup_lines(path: Path) -> list[str]:
    """The lines of every ``sh`` block of ``path``."""
    text = path.read_text(encoding="utf-8")
    return [line for block in re.findall(r"^```sh\n(.*?)^```$", text,
                                          re.S | re.M)
            for line in block.splitlines()]


def fake_acrn(home: Path) -> Path:
    """ACRN's set-up of getting-started, faked in ``home``: the fake v3.3
    tree at ~/acrn, a Python with stand-ins of ACRN's modules at
    ~/acrn-py/bin/python3, and the folder of stand-ins for the tools
    ACRN's make checks for (returned, for PATH)."""
    tools = _tools(home / "fake-tools")
    (tools / "python3").unlink()
    site = _stubs(home / "fake-site", GOOD_MODULES)
    # Only ACRN's make sees the stand-ins; acrn-shm keeps its own lxml.
    (home / "acrn-py" / "bin").mkdir(parents=True)
    _script(home / "acrn-py" / "bin" / "python3",
            f'PYTHONPATH="{site}" exec "{sys.executable}" -S "$@"')
    fake_acrn_tree(home, "acrn")
    return tools


def real_acrn(home: Path) -> None:
    """ACRN's set-up of getting-started: the tree and Python given."""
    (home / "acrn").symlink_to(REAL_ACRN_SRC)
    (home / "acrn-py" / "bin").mkdir(parents=True)
    # A wrapper, not a link: a venv's python found through a link in
    # another folder does not see the venv's packages.
    wrapper = home / "acrn-py" / "bin" / "python3"
    wrapper.write_text(
        f"#!/bin/sh\nexec {shlex.quote(str(REAL_BUILD_PYTHON))} \"$@\"\n")
    wrapper.chmod(0o755)


def fake_acrn_tree(folder: Path, name: str = "acrn-hypervisor") -> Path:
    """The fake ACRN v3.3 tree ``folder/name`` with ACRN's whl-ipc-i5
    sample in place."""
    sample = ACRN_DATA / "v3.3" / "whl-ipc-i5"
    if not sample.is_dir():
        pytest.skip(f"{sample} is missing")
    tree = folder / name
    shutil.copytree(FAKE_TREE, tree)
    shutil.copy(FAKE_TREE.parent / "fake_acrn_gen.py", folder)
    data = tree / "misc" / "config_tools" / "data" / "whl-ipc-i5"
    data.mkdir(parents=True)
    for sample_name in ("whl-ipc-i5.xml", "hybrid_rt.xml"):
        shutil.copy(sample / sample_name, data / sample_name)
    return tree


class Shell:
    """One bash for a whole page, fed one step at a time: a step's
    ``export`` or ``cd`` stays for the next, as in a terminal."""

    MARK = "@@acrn-shm-docs-step@@"

    def __init__(self, cwd: Path, env: dict[str, str]):
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"], cwd=cwd, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        self.pending = b""

    def run(self, command: str, timeout: float = 600) -> tuple[int, str]:
        """Run ``command`` (stdin empty); its status and output."""
        self.process.stdin.write(
            f"{{ {command}\n}} </dev/null 2>&1\n"
            f"printf '\\n%s %d\\n' {self.MARK} $?\n".encode())
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        pattern = re.compile(rb"\n" + self.MARK.encode() + rb" (\d+)\n")
        while (found := pattern.search(self.pending)) is None:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stdout], [], [],
                                        max(left, 0))
            chunk = os.read(self.process.stdout.fileno(), 65536) if (
                ready) else b""
            if not chunk:
                self.close()
                pytest.fail(f"$ {command}: no end after {timeout} s "
                            "(or bash exited); printed:\n"
                            + self.pending.decode(errors="replace"))
            self.pending += chunk
        output = self.pending[:found.start()].decode("utf-8", "replace")
        self.pending = self.pending[found.end():]
        return int(found.group(1)), output

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()


def run_page(page: Path, tmp_path: Path, real: bool = False) -> list[Step]:
    """Run the console steps of ``page`` in one new shell; return them
    after checking. ``real``: ACRN's tree and Python given."""
    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    for folder in ("board-xmls", "scenario-xmls"):
        shutil.copytree(PROJECT / folder, work / folder)
    steps = console_steps(page)
    assert steps, f"{page.name} has no console block"
    for name, text in page_files(page):
        (work / name).write_text(text, encoding="utf-8")
    unknown = [line for line in setup_lines(page) if line not in SETUP]
    assert not unknown, f"{page.name}: set-up the test does not stand in " \
        f"for: {unknown}"
    commands = " ".join(step.command for step in steps)
    missing = []
    if "acrn-shm graph" in commands and shutil.which("dot") is None:
        missing.append("Graphviz's dot is not installed (apt-get install "
                       "graphviz)")
    env = {"PATH": f"{BIN}:{SYSTEM_PATH}", "HOME": str(home),
           "LANG": "C.UTF-8", "TERM": "dumb", "COLUMNS": "100",
           # A terminal's line buffering: stdout and stderr in order.
           "PYTHONUNBUFFERED": "1"}
    if re.search(r"(^| )cc ", commands) and shutil.which("cc") is None:
        missing.append("no C compiler (cc)")
    if "acrn-shm qemu-try" in commands:
        try:
            qemu_lab.find_tools(environ=guest_environ())
        except UsageError as exc:
            missing.append(f"{exc}; or run .ci/install-e2e")
        # The machine's guest kernel, as a reader's /boot holds one.
        env.update(guest_environ())
    if "ACRN_SRC" in commands:
        if real:
            real_acrn(home)
        else:
            env["PATH"] += f":{fake_acrn(home)}"
    if missing:
        if os.environ.get("ACRN_SHM_REQUIRE_TOOLS"):
            pytest.fail("; ".join(missing))
        pytest.skip("; ".join(missing))
    shell = Shell(work, env)
    try:
        for step in steps:
            status, output = shell.run(step.command)
            actual = [line.rstrip() for line in output.splitlines()]
            while actual and not actual[-1]:
                actual.pop()  # rich ends a table with a blank line
            assert (status, matches(step.expected, actual)) == (
                step.status, True), (
                f"{step!r}\nexit {status}, printed:\n{output}")
    finally:
        shell.close()
    return steps


# --- the pages ---------------------------------------------------------

def check_getting_started(steps: list[Step], tmp_path: Path) -> None:
    """Each step of the page's promise is there and left its files."""
    shown = " ".join(step.command for step in steps)
    for command in ("acrn-shm lint", "acrn-shm add-region",
                    "acrn-shm launch-script", "acrn-shm check-launch",
                    "acrn-shm qemu-try", "acrn-shm host-prep",
                    "acrn-shm qemu-args", "acrn-shm graph",
                    "acrn-shm build"):
        assert command in shown
    work = tmp_path / "work"
    assert (work / "launch" / "launch_user_vm_id1.sh").is_file()
    assert b">shm_video</text>" in (work / "topology.svg").read_bytes()
    assert (work / "shm" / "shm_video").stat().st_size == 8 << 20
    memory = (work / "try" / "shm_video").read_bytes()
    assert (memory[0x40:0x56], memory[0x80:0x98]) == (
        b"hello from PRE_RT_VM0\0", b"hello from POST_STD_VM1\0")
    header, = (work / "build-whl").rglob("ivshmem_cfg.h")
    assert '"hv:/shm_video"' in header.read_text()
    assert (work / "build-whl" / "acrn-shm-build.log").is_file()


def test_getting_started_runs_as_written(tmp_path):
    """The whole page; ACRN's tree and Python are the fake ones."""
    check_getting_started(run_page(DOCS / "getting-started.md", tmp_path),
                          tmp_path)


def test_getting_started_with_a_real_acrn_tree(tmp_path):
    """The whole page again, building the real ACRN tree."""
    if not (REAL_ACRN_SRC and REAL_BUILD_PYTHON):
        pytest.skip("no ACRN tree given: set ACRN_SRC to an ACRN v3.3 "
                    "checkout and ACRN_SHM_BUILD_PYTHON to a Python with "
                    "elementpath<3 and xmlschema<2 to build it as "
                    "getting-started section 6 does")
    check_getting_started(run_page(DOCS / "getting-started.md", tmp_path,
                                   real=True), tmp_path)


def test_every_page_setup_step_is_known():
    """A page's ``sh`` lines are set-up the test stands in for, and the
    build's set-up is the README's."""
    lines = [line for page in sorted(DOCS.glob("*.md"))
             for line in setup_lines(page)]
    assert sorted(set(lines)) == sorted(SETUP)
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    building = re.search(r"## Building ACRN\n\n```sh\n(.*?)```", readme,
                         re.S).group(1).splitlines()
    page = setup_lines(DOCS / "getting-started.md")
    assert building[:3] == page[-3:]


def test_ci_page_runs_as_written(tmp_path):
    run_page(DOCS / "ci.md", tmp_path)


def test_channel_page_runs_as_written(tmp_path):
    """Scenario, plan, init, send and receive from the command line, in
    Python and in C."""
    assert [name for name, _ in page_files(DOCS / "channel.md")] == [
        "upper.py", "peer.c"]
    steps = run_page(DOCS / "channel.md", tmp_path)
    shown = " ".join(step.command for step in steps)
    for command in ("plan", "init", "send", "recv", "stat", "c-header"):
        assert f"acrn-shm channel {command} " in shown


def test_install_block_is_the_readmes_first_command():
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```sh\n(.*?)\n```", readme, re.S).group(1)
    page = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    install = re.search(r"## 1\. Install.*?```sh\n(.*?)\n", page,
                        re.S).group(1)
    assert install == first


def test_a_page_runs_in_one_fresh_shell(tmp_path, monkeypatch):
    monkeypatch.setenv("ACRN_SRC", "/leaked")
    page = tmp_path / "page.md"
    page.write_text(
        "```console\n$ echo \"[$ACRN_SRC]\"\n[]\n"
        "$ export A=1; cd board-xmls\n$ echo $A $(basename $PWD)\n"
        "1 board-xmls\n$ printf 'no newline'\nno newline\n"
        "$ read line; echo \"[$line]\"\n[]\n$ false\n[exit 1]\n```\n")
    assert len(run_page(page, tmp_path)) == 6


def test_a_set_up_line_the_test_does_not_know_fails(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```sh\ncurl https://example.com | sh\n```\n"
                    "```console\n$ true\n```\n")
    with pytest.raises(AssertionError) as info:
        run_page(page, tmp_path)
    assert "set-up the test does not stand in for: ['curl " in str(
        info.value)


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
    ("acrn-shm qemu-args --scenario hybrid_rt_v3.xml --vm POST_STD_VM1 "
     "--doorbell", "/tmp/ivshmem.sock", "ivshmem.sock"),
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
               COLUMNS="100", NO_COLOR="1", TERM="dumb",
               TMPDIR=str(tmp_path))
    env.update(guest_environ())
    try:
        qemu_lab.find_tools(environ=env)
        no_guests = None
    except UsageError as exc:
        no_guests = str(exc)
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
        if command.startswith("acrn-shm qemu-try") and no_guests:
            if os.environ.get("ACRN_SHM_REQUIRE_TOOLS"):
                pytest.fail(no_guests)
            continue  # test_getting_started_* says why it skips
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
            "acrn_ivshmem.lint.rule_docs docs/rules")
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
        "## Fix safety\n\nUnsafe: it raises a v3 `IVSHMEM_SIZE` written as "
        "a plain decimal below 512 to the next allowed size (3 becomes 4), "
        "and every VM of the region then sees a larger BAR, which a program "
        "that checks the size it expects notices. `--fix` alone leaves it; "
        "`--fix --unsafe-fixes` applies it. Legacy size fields, sizes above "
        "512 and sizes that are not plain decimals get no fix.\n\n"
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
    skipped = shutil.ignore_patterns(".venv", ".git", "*.egg-info",
                                     "__pycache__", ".ci")

    def ignore(folder, names):
        # The top build/ is setuptools' output; acrn_ivshmem/build/ is code.
        top = ["build"] if Path(folder) == PROJECT else []
        return set(skipped(folder, names)) | {n for n in top if n in names}

    shutil.copytree(PROJECT, copy, ignore=ignore)
    done = subprocess.run(["bash", "-c", first], cwd=copy, text=True,
                          capture_output=True, timeout=600,
                          env=dict(os.environ, COLUMNS="100"))
    assert (done.returncode, done.stdout) == (0, "no problems in 5 files\n"), (
        done.stderr)
