"""Help, version and shell completion of the ``acrn-shm`` command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from conftest import PROJECT, run_acrn_shm

from acrn_ivshmem import __version__
from acrn_ivshmem.cli.app import build_app
from acrn_ivshmem.rules import RULES

BIN = Path(sys.executable).parent
COMMANDS = sorted(typer.main.get_command(build_app()).commands)


def test_every_command_is_listed():
    assert COMMANDS == sorted([
        "add-region", "build", "channel", "check-launch", "explain",
        "graph", "guest",
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


@pytest.mark.parametrize("command", ["add-region", "set-region",
                                     "remove-region"])
def test_edit_help_says_diff_writes_nothing(command, tmp_path):
    shown = " ".join(run_acrn_shm([command, "--help"], tmp_path)
                     .stdout.split())
    assert ("--diff Preview: print the edit as a unified diff and write "
            "nothing; exit 1 if the edit would be refused.") in shown
    if command != "remove-region":
        assert ("Only ACRN v3.3 knows it: v3.0-v3.2 reject the element, "
                "v2.x scenarios cannot hold it.") in shown
        assert "--size SIZE MB (8), or with a binary unit: 512M, 1G" in (
            shown)


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


def test_bash_completes_values(tmp_path):
    # Output formats and providers; the VM and region names of the
    # scenario on the command line (names a shell would split are not
    # offered); nothing for a file that cannot be read.
    shutil.copy(PROJECT / "tests" / "test_edit_cli" / "ids_v3.xml",
                tmp_path / "s.xml")
    (tmp_path / "odd.xml").write_text(
        (tmp_path / "s.xml").read_text(encoding="utf-8").replace(
            "<NAME>camera</NAME>", "<NAME>two words</NAME>"),
        encoding="utf-8")
    (tmp_path / "broken.xml").write_text("<acrn-config>")
    assert complete("acrn-shm lint -f ", tmp_path) == [
        "text", "json", "sarif", "github"]
    assert complete("acrn-shm check-launch x.sh -f g", tmp_path) == [
        "github"]
    assert complete("acrn-shm regions s.xml -f ", tmp_path) == [
        "text", "json"]
    assert complete("acrn-shm explain ISM201 -f m", tmp_path) == [
        "markdown"]
    assert complete("acrn-shm graph s.xml -f p", tmp_path) == ["png", "pdf"]
    assert complete("acrn-shm add-region s.xml --provider ", tmp_path) == [
        "hv", "dm"]
    assert complete("acrn-shm add-region s.xml --vms ", tmp_path) == [
        "PRE_RT_VM0", "ACRN_Service_VM", "POST_STD_VM1"]
    assert complete("acrn-shm add-region -b b.xml s.xml --vms PRE_RT_VM0,",
                    tmp_path) == ["PRE_RT_VM0,ACRN_Service_VM",
                                  "PRE_RT_VM0,POST_STD_VM1"]
    assert complete("acrn-shm set-region s.xml camera --vms A",
                    tmp_path) == ["ACRN_Service_VM"]
    assert complete("acrn-shm set-region s.xml ", tmp_path) == [
        "shm_region_0", "camera"]
    assert complete("acrn-shm remove-region s.xml c", tmp_path) == [
        "camera"]
    assert complete("acrn-shm remove-region odd.xml ", tmp_path) == [
        "shm_region_0"]
    assert complete("acrn-shm remove-region broken.xml ", tmp_path) == []
    assert complete("acrn-shm add-region nope.xml --vms ", tmp_path) == []


def test_readme_names_the_docs():
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    for page in ("docs/getting-started.md", "docs/ci.md",
                 "docs/editors.md", "docs/rules/README.md"):
        assert f"({page})" in readme
        assert (PROJECT / page).is_file()
