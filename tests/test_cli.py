"""CLI golden tests: argv, exit status, stdout and stderr, byte for byte.

Each case runs the real ``acrn-shm`` command in a copy of
``tests/test_cli/``. Refresh the golden files with ``UPDATE_GOLDEN=1``
and review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_acrn_shm

DATA = Path(__file__).parent / "test_cli"
GOLDEN = DATA / "golden"

CASES = {
    "lint-clean": ["lint", "--board", "board.xml", "clean_v3.xml"],
    "lint-broken-text": ["lint", "broken_v3.xml"],
    "lint-broken-json": ["lint", "-f", "json", "broken_v3.xml"],
    "lint-broken-sarif": ["lint", "--output-format", "sarif",
                          "broken_v3.xml"],
    "lint-broken-github": ["lint", "-f", "github", "broken_v3.xml"],
    "lint-select": ["lint", "--select", "ISM2", "--ignore", "ISM203",
                    "broken_v3.xml"],
    "lint-config": ["lint", "--config", "configured/pyproject.toml",
                    "broken_v3.xml"],
    "lint-warnings-only": ["lint", "warn_legacy.xml"],
    "lint-dir": ["lint", "."],
    "lint-malformed": ["lint", "malformed.xml"],
    "lint-missing": ["lint", "no_such_file.xml"],
    "lint-wrong-root": ["lint", "wrong_root.xml"],
    "lint-entities": ["lint", "entities.xml"],
    "lint-bad-and-good": ["lint", "--board", "board.xml", "clean_v3.xml",
                          "malformed.xml"],
    "lint-board-is-scenario": ["lint", "--board", "clean_v3.xml",
                               "clean_v3.xml"],
    "lint-unknown-format": ["lint", "-f", "xml", "clean_v3.xml"],
    "lint-unknown-code": ["lint", "--select", "ISM999", "clean_v3.xml"],
    "lint-no-args": ["lint"],
    # A second IVSHMEM block (ISM213): its region is listed, and found.
    "regions-two-blocks": ["regions", "two_blocks.xml"],
    "remove-region-second-block": ["remove-region", "two_blocks.xml",
                                   "second", "--diff", "--dry-run"],
    "rules-json": ["rules", "--output-format", "json"],
    "explain": ["explain", "ism201"],
    "explain-unknown": ["explain", "ISM999"],
    "version": ["--version"],
}


run = run_acrn_shm


def transcript(argv: list[str], result) -> str:
    """The golden text of one run."""
    return (f"$ acrn-shm {' '.join(argv)}\n"
            f"exit: {result.returncode}\n"
            f"--- stdout\n{result.stdout}"
            f"--- stderr\n{result.stderr}")


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A private copy of the CLI test data."""
    target = tmp_path / "work"
    shutil.copytree(DATA, target, ignore=shutil.ignore_patterns("golden"))
    return target


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name, workdir):
    argv = CASES[name]
    actual = transcript(argv, run(argv, workdir))
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(actual, encoding="utf-8")
    assert actual == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("name, status", [
    ("lint-clean", 0), ("lint-warnings-only", 0), ("lint-broken-text", 1),
    ("lint-broken-json", 1), ("lint-malformed", 2), ("lint-missing", 2),
    ("lint-wrong-root", 2), ("lint-entities", 2), ("lint-bad-and-good", 2),
    ("lint-unknown-format", 2), ("lint-no-args", 2), ("version", 0),
])
def test_exit_status(name, status):
    golden = (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")
    assert golden.splitlines()[1] == f"exit: {status}"


def test_input_errors_are_one_line_without_traceback():
    for name in ("lint-malformed", "lint-missing", "lint-wrong-root",
                 "lint-entities"):
        golden = (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")
        stderr = golden.split("--- stderr\n", 1)[1]
        assert stderr.count("\n") == 1, name
        assert "Traceback" not in golden


@pytest.mark.parametrize("argv", [
    ["lint", "x\ny.xml"], ["lint", "--board", "b\n.xml", "clean_v3.xml"],
    ["regions", "x\ny.xml"], ["set-region", "x\ny.xml", "r", "--size", "4"],
    ["add-region", "x\ny.xml", "--vms", "0,1"],
    ["remove-region", "x\ny.xml", "r"], ["graph", "x\ny.xml"],
])
def test_a_line_break_in_a_path_stays_escaped(argv, workdir):
    result = run(argv, workdir)
    path = next(arg for arg in argv if "\n" in arg).replace("\n", "\\x0a")
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", f"acrn-shm: error: {path}: no such file\n")


def test_text_report_has_one_line_per_finding(workdir):
    # Found by fuzzing: a line break quoted from the file is escaped.
    scenario = workdir / "clean_v3.xml"
    scenario.write_text(scenario.read_text().replace(
        "<VM_NAME>POST_STD_VM1</VM_NAME>", "<VM_NAME>POST_STD\nVM1</VM_NAME>"))
    result = run(["lint", "--board", "board.xml", "clean_v3.xml"], workdir)
    assert result.stdout == (
        "clean_v3.xml:16:24: ISM203 [error] region 'shm_region_0' names VM "
        "'POST_STD\\x0aVM1', which is not in the scenario\n"
        "    hint: use one of: 'PRE_RT_VM0', 'ACRN_Service_VM', "
        "'POST_STD_VM1'\n"
        "1 error in 1 file\n")


def test_json_has_exactly_the_public_keys(workdir):
    result = run(["lint", "-f", "json", "broken_v3.xml"], workdir)
    items = json.loads(result.stdout)
    assert items
    keys = ["path", "line", "column", "code", "severity", "message",
            "hint"]
    for item in items:
        # "fix" (the fix's safety class) only where the rule offers one.
        assert list(item) == keys + (
            ["fix"] if item["code"] in ("ISM201", "ISM306") else [])
    assert {item.get("fix") for item in items} == {None, "safe", "unsafe"}


def test_sarif_is_valid_shape(workdir):
    result = run(["lint", "-f", "sarif", "broken_v3.xml"], workdir)
    log = json.loads(result.stdout)
    run_ = log["runs"][0]
    rule_ids = [rule["id"] for rule in run_["tool"]["driver"]["rules"]]
    for item in run_["results"]:
        assert rule_ids[item["ruleIndex"]] == item["ruleId"]
        region = item["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1


def test_config_is_found_from_the_working_directory(workdir):
    shutil.copy(workdir / "broken_v3.xml", workdir / "configured")
    shutil.copy(workdir / "board.xml", workdir / "configured")
    result = run(["lint", "-f", "json", "broken_v3.xml"],
                 workdir / "configured")
    codes = {item["code"] for item in json.loads(result.stdout)}
    assert codes and not any(code.startswith("ISM3") for code in codes)
    severities = {item["severity"] for item in json.loads(result.stdout)
                  if item["code"] == "ISM211"}
    assert severities == {"warning"}


def typer_command(name: str):
    import typer.main

    from acrn_ivshmem.cli.app import build_app

    return typer.main.get_command(build_app()).commands[name]


@pytest.mark.parametrize("name", ["lint", "add-region", "set-region",
                                  "remove-region"])
def test_quick_parser_has_the_options_of_typer(name):
    from acrn_ivshmem.cli.quick import quick_command

    quick = quick_command(name)
    params = typer_command(name).params
    assert {*quick.values, *quick.flags} == {
        opt for param in params for opt in param.opts
        if opt.startswith("-") and opt != "--help"}
    assert quick.positionals == tuple(
        param.name for param in params if not param.opts[0].startswith("-"))


@pytest.mark.parametrize("name", ["lint", "add-region", "set-region",
                                  "remove-region"])
def test_quick_parser_reads_each_option_as_typer_does(name):
    # Both come from one declaration (cli/spec.py); what each parser
    # makes of it must agree, option by option.
    import click

    from acrn_ivshmem.cli.quick import quick_command

    quick = quick_command(name)
    seen = []
    for param in typer_command(name).params:
        if param.name == "help":
            continue
        seen.append(param.name)
        if isinstance(param, click.Argument):
            assert param.required
            assert (param.nargs == -1) == (
                quick.variadic and param.name == quick.positionals[-1])
            continue
        takes = quick.flags if param.is_flag else quick.values
        assert {opt: takes.get(opt) for opt in param.opts} == dict.fromkeys(
            param.opts, param.name)
        assert param.multiple == (param.name in quick.repeatable)
        assert (param.type == click.INT) == (param.name in quick.integers)
        assert not param.required
        assert quick.defaults.get(
            param.name, False if param.is_flag else None) == param.default
    assert seen == [p.param for p in quick.spec.params]
    assert typer_command(name).callback.__doc__ == quick.spec.help


def test_the_quick_parser_refuses_what_it_cannot_parse_as_typer():
    # A command joining the quick path with a parameter the quick parser
    # would read differently from typer fails at once, not on a user.
    from acrn_ivshmem.cli import app, channel
    from acrn_ivshmem.cli.quick import QUICK_COMMANDS, QuickCommand

    refused = []
    for command in (*app.COMMANDS, *channel.COMMANDS):
        try:
            QuickCommand(command)
        except ValueError:
            refused.append(command.name)
    assert refused == [
        "launch-script", "check-launch", "qemu-args", "libvirt-xml",
        "host-prep", "guest", "qemu-try", "ivshmem-server", "build",
        "init", "send", "recv", "stat", "bench"]
    assert not set(refused) & set(QUICK_COMMANDS)


def test_every_typer_command_is_made_from_its_declaration():
    import click
    import typer.main

    from acrn_ivshmem.cli import app, channel
    from acrn_ivshmem.cli.spec import Argument

    root = typer.main.get_command(app.build_app())
    made = [(root.commands[c.name], c) for c in app.COMMANDS] + [
        (root.commands["channel"].commands[c.name], c)
        for c in channel.COMMANDS]
    assert list(root.commands) == [c.name for c in app.COMMANDS] + [
        "channel"]
    assert list(root.commands["channel"].commands) == [
        c.name for c in channel.COMMANDS]
    for command, declared in made:
        params = [p for p in command.params if p.name != "help"]
        assert [p.name for p in params] == [p.param for p in declared.params]
        for param, spec in zip(params, declared.params):
            if isinstance(spec, Argument):
                assert isinstance(param, click.Argument)
                assert param.required != spec.optional
                continue
            assert tuple(param.opts + param.secondary_opts) == spec.names
            assert (param.is_flag, param.multiple, param.required) == (
                spec.is_flag, spec.multiple, spec.required)
            assert param.help == spec.help
        assert command.callback.__doc__ == declared.help


@pytest.mark.parametrize("argv, status", [
    (["lint", "-f", "json", "clean_v3.xml"], 0),
    (["add-region", "clean_v3.xml", "--vms", "0,2", "--dry-run"], 0),
    (["lint", "--help"], 0),
])
def test_the_quick_path_loads_no_typer(argv, status, workdir):
    # Loading typer (click, rich) costs more than linting a scenario; the
    # quick commands are parsed from their declarations without it, and
    # only a command line the quick parser leaves (help) loads it.
    code = ("import sys\nfrom acrn_ivshmem.cli import main\n"
            f"sys.argv = ['acrn-shm', *{argv!r}]\n"
            "try:\n    main()\nexcept SystemExit as exc:\n"
            "    print(exc.code, sorted(m for m in sys.modules if m in "
            "('typer', 'click', 'rich')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, check=True, timeout=60, cwd=workdir)
    shown, loaded = done.stdout.splitlines()[-1].split(" ", 1)
    assert int(shown) == status
    if argv[-1] == "--help":
        assert "'typer'" in loaded
    else:
        assert loaded == "[]"


QUICK_LINES = [
    ("lint", ["a.xml"]),
    ("lint", ["a.xml", "b.xml", "dir"]),
    ("lint", ["--board", "b.xml", "a.xml"]),
    ("lint", ["-b", "b.xml", "-f", "json", "a.xml"]),
    ("lint", ["--board=b.xml", "--output-format=sarif", "a.xml"]),
    ("lint", ["a.xml", "--select", "ISM2", "--select", "ISM3",
              "--ignore=ISM203"]),
    ("lint", ["--config", "pyproject.toml", "--no-cache", "--fix", "--diff",
              "--skip-other-xml", "a.xml"]),
    ("lint", ["-b", "first.xml", "-b", "second.xml", "a.xml"]),
    ("lint", ["--board", "-odd.xml", "a.xml"]),
    ("lint", ["--", "--fix", "-b"]),
    ("lint", ["--fix", "--unsafe-fixes", "a.xml"]),
    ("lint", ["a.xml", "--diff", "--unsafe-fixes"]),
    ("lint", ["-", "a.xml"]),
    ("lint", ["--board=", "a.xml"]),
    ("add-region", ["s.xml", "--vms", "0,1"]),
    ("add-region", ["s.xml", "--name", "ring", "--vms", "1,2", "--provider",
                    "dm", "--size", "8", "--region-id", "7", "--vbdf",
                    "POST_STD_VM1=00:0c.0", "--vbdf", "X=00:0d.0"]),
    ("add-region", ["--vms=0,1", "--size=+4", "-b", "b.xml", "--dry-run",
                    "--diff", "--force", "s.xml"]),
    ("add-region", ["s.xml", "--size", " 16 ", "--region-id", "0_1"]),
    ("set-region", ["s.xml", "shm_region_0", "--size", "4"]),
    # Sizes are text, read by units.parse_size_mb: as typer passes them.
    ("add-region", ["s.xml", "--size", "four"]),
    ("set-region", ["s.xml", "shm_region_0", "--size", "1GiB"]),
    ("set-region", ["s.xml", "shm_region_0", "--vms", "0,2,3", "--vbdf",
                    "a=00:08.0", "--provider", "hv", "--region-id", "-1"]),
    ("set-region", ["s.xml", "--", "-odd"]),
    ("remove-region", ["s.xml", "shm_region_1"]),
    ("remove-region", ["--board", "b.xml", "s.xml", "shm_region_1",
                       "--force"]),
]


@pytest.mark.parametrize("name, argv", QUICK_LINES)
def test_quick_parser_parses_as_click_does(name, argv):
    from acrn_ivshmem.cli.quick import parse_quick, quick_command

    parsed = parse_quick(quick_command(name), list(argv))
    clicks = typer_command(name).make_context(name, list(argv)).params
    # As typer hands them to the function: lists, and None for no value.
    expected = {key: (list(value) or None if key != "paths"
                      else list(value)) if isinstance(value, tuple)
                else value for key, value in clicks.items()}
    assert parsed == expected


@pytest.mark.parametrize("name, argv", [
    ("lint", []), ("lint", ["--help"]), ("lint", ["-h", "a.xml"]),
    ("lint", ["--board"]), ("lint", ["a.xml", "--board"]),
    ("lint", ["-bboard.xml", "a.xml"]), ("lint", ["--boa", "b.xml", "a.xml"]),
    ("lint", ["-f", "xml", "a.xml"]), ("lint", ["--fix=yes", "a.xml"]),
    ("lint", ["--unsafe-fixes=1", "a.xml"]),
    ("lint", ["--no-such", "a.xml"]), ("lint", ["--board", "b.xml"]),
    ("add-region", []), ("add-region", ["a.xml", "b.xml"]),
    ("add-region", ["s.xml", "--region-id"]),
    ("add-region", ["s.xml", "--region-id", "4.0"]),
    ("set-region", ["s.xml"]), ("set-region", ["s.xml", "a", "b"]),
    ("remove-region", ["s.xml", "--name", "x"]),
    ("remove-region", ["s.xml", "x", "--size", "4"]),
])
def test_quick_parser_leaves_the_rest_to_typer(name, argv):
    from acrn_ivshmem.cli.quick import parse_quick, quick_command

    assert parse_quick(quick_command(name), argv) is None


def test_cache_gives_the_same_result(workdir):
    first = run(["lint", "-f", "json", "broken_v3.xml"], workdir)
    second = run(["lint", "-f", "json", "broken_v3.xml"], workdir)
    uncached = run(["lint", "--no-cache", "-f", "json", "broken_v3.xml"],
                   workdir)
    assert first.stdout == second.stdout == uncached.stdout


@pytest.mark.parametrize("argv, status, out, err", [
    (["qemu-args", "--name", "shm0", "--size", "1G"], 0,
     "-object memory-backend-file,id=shm-shm0,size=1024M,share=on,"
     "mem-path=/dev/shm/shm0 -device ivshmem-plain,id=ivshmem-shm0,"
     "memdev=shm-shm0\n", ""),
    (["qemu-args", "--name", "shm0", "--size", "2048k"], 0,
     "-object memory-backend-file,id=shm-shm0,size=2M,share=on,"
     "mem-path=/dev/shm/shm0 -device ivshmem-plain,id=ivshmem-shm0,"
     "memdev=shm-shm0\n", ""),
    (["libvirt-xml", "--name", "shm0", "--size", "1.5G"], 2, "",
     "acrn-shm: error: --size '1.5G' is not a size: give MB (2) or a whole "
     "number with a unit K, M, G or T (512M, 1G; binary units)\n"),
    (["ivshmem-server", "--socket", "s.sock", "--size", "512K"], 2, "",
     "acrn-shm: error: --size '512K' is not a whole number of MB\n"),
])
def test_every_size_option_takes_units(argv, status, out, err, tmp_path):
    result = run(argv, tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        status, out, err)
