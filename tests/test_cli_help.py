"""Help, version and shell completion of the ``acrn-shm`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from acrn_ivshmem import __version__
from acrn_ivshmem.cli import build_app
from acrn_ivshmem.rules import RULES

from conftest import PROJECT, run_acrn_shm

BIN = Path(sys.executable).parent
COMMANDS = sorted(typer.main.get_command(build_app()).commands)


def test_every_command_is_listed():
    assert COMMANDS == sorted([
        "add-region", "build", "check-launch", "explain", "graph", "guest",
        "host-prep", "ivshmem-server", "launch-script", "libvirt-xml",
        "lint", "lsp", "qemu-args", "qemu-try", "regions", "remove-region", "rules",
        "set-region", "upgrade"])


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example(command, tmp_path):
    result = run_acrn_shm([command, "--help"], tmp_path)
    assert result.returncode == 0
    assert result.stderr == ""
    # typer may wrap the line after the example's first words.
    assert f"Example: acrn-shm {command}" in " ".join(result.stdout.split())


def test_version(tmp_path):
    result = run_acrn_shm(["--version"], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, f"acrn-shm {__version__}\n", "")


def complete(words: str, tmp_path: Path) -> list[str]:
    """What bash completes for the command line ``words`` (the last word
    is the one being completed), with the script acrn-shm prints."""
    script = subprocess.run(
        [BIN / "acrn-shm", "--show-completion", "bash"], check=True,
        capture_output=True, text=True).stdout
    (tmp_path / "completion.bash").write_text(script)
    done = subprocess.run(
        ["bash", "-c", 'source completion.bash; COMP_WORDS=($WORDS); '
         'COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); '
         '[[ $WORDS == *" " ]] && COMP_WORDS+=("") && COMP_CWORD+=1; '
         '_acrn_shm_completion acrn-shm; printf "%s\\n" "${COMPREPLY[@]}"'],
        cwd=tmp_path, capture_output=True, text=True, check=True,
        env=dict(os.environ, WORDS=words,
                 PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}"))
    return done.stdout.split()


def test_bash_completes_commands_options_and_rule_codes(tmp_path):
    assert complete("acrn-shm add-r", tmp_path) == ["add-region"]
    assert complete("acrn-shm re", tmp_path) == [
        "remove-region", "regions"]
    assert complete("acrn-shm explain ISM20", tmp_path) == [
        code for code in RULES if code.startswith("ISM20")]
    assert complete("acrn-shm explain ism20", tmp_path) == [
        code.lower() for code in RULES if code.startswith("ISM20")]
    assert complete("acrn-shm explain Ism10", tmp_path) == [
        "Ism" + code[3:] for code in RULES if code.startswith("ISM10")]
    assert "--skip-other-xml" in complete("acrn-shm lint --s", tmp_path)


def test_readme_names_the_docs():
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    for page in ("docs/getting-started.md", "docs/ci.md",
                 "docs/editors.md", "docs/rules/README.md"):
        assert f"({page})" in readme
        assert (PROJECT / page).is_file()
