"""Launch scripts never expand text from a scenario (issue 14, item 1).

``customized_parameters`` is the one free-text value a launch script
carries: acrn-dm gets its words as they are, so the script has to
single-quote them. Words are generated from bash's expansion and quoting
syntax (parameter operators such as ``${a:=x}`` and ``${a@P}``,
arithmetic, command and process substitution, backquotes, ``$'...'``,
brace expansion, globs, history, comments, separators, newlines), put
in a copy of ACRN's whl-ipc-i5 scenario and written into a script. The
script must pass ``bash -n``; its ``dm_params`` array, run by bash in a
sandbox folder with stub helpers and a variable ``a`` that would run a
command if prompt-expanded, must give exactly the words generated and
leave no ``CANARY`` file. Words with characters a script line should
not carry are refused with one line naming the file, line and word.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from conftest import ACRN_DATA, run_acrn_shm
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_injection import dm_params

from acrn_ivshmem.emit.launch import write_scripts
from acrn_ivshmem.errors import UsageError, quoted
from acrn_ivshmem.upgrade.launch_inputs import load_for_launch

WHL = ACRN_DATA / "v3.3" / "whl-ipc-i5"
WAAG = WHL / "hybrid_rt_launch_1user_vm_waag.xml"
ANCHOR = "<PTM>n</PTM>\n    <os_type>Windows OS"
VM = "POST_STD_VM1"
REQUIRE_TOOLS = bool(os.environ.get("ACRN_SHM_REQUIRE_TOOLS"))

pytestmark = pytest.mark.skipif(not WHL.is_dir(), reason=f"{WHL} missing")

#: Pieces of bash syntax that expand, run, split or glob when unquoted
#: (or inside double quotes).
SYNTAX = [
    "${a:=x}", "${a:-$(touch CANARY)}", "${b:=${c:=y}}", "${a@P}",
    "${!a}", "${a/x/y}", "${#a}", "${a[$(touch CANARY)]}", "${a:0:1}",
    "$((1+2))", "$[1+2]", "$(touch CANARY)", "`touch CANARY`",
    "<(touch CANARY)", ">(touch CANARY)", "$'\\x41'", '$"x"', "{a,b}",
    "{1..3}", "*", "?", "[a-z]", "~", "~root", "'", '"', "\\", "!", "!!",
    "#", ";", "&", "|", "&&", "||", ">", "<", "$HOME", "$1", "$@", "$*",
    "$$", "$?", "$-", "$_", "${IFS}", "@(a|b)", "!(x)", "+(x)", " ",
    "\t", "\n", "=", ",", "%", "^", "a", "-", "--opt=", "x=y", "\u00e9",
    "\u202e", "\u00a0", "\u2028",
]
WORD = st.lists(st.one_of(st.sampled_from(SYNTAX), st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=3)),
    min_size=1, max_size=6).map("".join)


def scenario_with(folder: Path, words: list[str]) -> Path:
    """WAAG with POST_STD_VM1's customized_parameters giving ``words``."""
    path = folder / "scenario.xml"
    text = WAAG.read_text()
    assert text.count(ANCHOR) == 1
    path.write_text(text.replace(ANCHOR, (
        "<PTM>n</PTM>\n    <customized_parameters>"
        f"{escape(shlex.join(words))}</customized_parameters>\n"
        "    <os_type>Windows OS"), 1))
    return path


def evaluate(script: str, folder: Path) -> list[str]:
    """``bash -n`` on the script, then the words of its dm_params array
    between the logger settings and the VM name, evaluated by bash in
    ``folder`` with helper stubs and a variable ``a`` that runs a command
    if it is ever prompt-expanded (``${a@P}``)."""
    checked = subprocess.run(["bash", "-n"], input=script.encode(),
                             capture_output=True)
    assert (checked.returncode, checked.stderr) == (0, b"")
    words = dm_params(script, folder, {
        "PATH": os.environ["PATH"], "HOME": str(folder),
        "LC_ALL": "C.UTF-8", "a": "$(touch CANARY)"})
    assert not (folder / "CANARY").exists()
    assert words[-1] == VM
    return words[words.index("--logger_setting") + 2:-1]


def where(path: Path, marker: str) -> str:
    """``LINE:COLUMN`` of the first character after ``marker``."""
    text = path.read_text()
    end = text.index(marker) + len(marker)
    line = text.count("\n", 0, end) + 1
    return f"{line}:{end - text.rfind(chr(10), 0, end)}"


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    folder = tmp_path / "sandbox"
    folder.mkdir()
    return folder


@settings(max_examples=150, deadline=None, derandomize=True,
          database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(WORD, min_size=1, max_size=5))
@example(words=["${a:=x}", "${a@P}", "${b:-${c:=y}}", "--x=${PWD}"])
@example(words=["$(touch CANARY)", "`touch CANARY`", "a\nb"])
def test_words_arrive_as_given_or_are_refused(sandbox, words):
    scenario = scenario_with(sandbox, words)
    bad = next((word for word in words if not word.isprintable()), None)
    inputs = load_for_launch(str(scenario), str(WHL / "whl-ipc-i5.xml"))
    if bad is not None:
        with pytest.raises(UsageError) as refused:
            write_scripts(inputs, [VM], (3, 3), "t")
        assert str(refused.value) == (
            f"{scenario}:{where(scenario, '<customized_parameters>')}: "
            f"VM '{VM}': customized_parameters word {quoted(bad)} cannot "
            "be put in a launch script safely: printable characters only "
            "(no control, format or line separator character)")
        return
    (script,) = write_scripts(inputs, [VM], (3, 3), "t")
    assert evaluate(script.text, sandbox) == words


HOSTILE = [syntax for syntax in SYNTAX if syntax.isprintable()]


def test_issue_payloads_pass_lint_and_stay_words(sandbox):
    """The CLI lints the scenario (it passes) and writes a script that
    passes bash -n and shellcheck and gives acrn-dm the words as they
    are."""
    scenario = scenario_with(sandbox, HOSTILE)
    board = WHL / "whl-ipc-i5.xml"
    lint = run_acrn_shm(["lint", "--board", str(board), str(scenario)],
                        sandbox)
    assert (lint.returncode, lint.stderr) == (0, ""), lint.stdout
    result = run_acrn_shm(["launch-script", str(scenario), "--board",
                           str(board), "--vm", VM], sandbox)
    assert (result.returncode, result.stderr) == (0, "")
    # Every hostile word is single-quoted (a quote as '"'"').
    assert ("    '${a:=x}' '${a:-$(touch CANARY)}' '${b:=${c:=y}}' "
            "'${a@P}' '${!a}'") in result.stdout
    assert evaluate(result.stdout, sandbox) == HOSTILE
    if shutil.which("shellcheck") is None:
        if REQUIRE_TOOLS:
            pytest.fail("shellcheck is required here but not installed")
        pytest.skip("shellcheck is not installed")
    checked = subprocess.run(["shellcheck", "--shell=bash", "-"],
                             input=result.stdout, capture_output=True,
                             text=True)
    assert (checked.returncode, checked.stdout) == (0, "")
