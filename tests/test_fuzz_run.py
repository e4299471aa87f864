"""How ``fuzz/run`` reads libFuzzer's logs: inputs tried, failures.

CI runs the fuzzer itself (``.ci/run``); these tests pin the reading of
the logs it leaves, including a job that died before writing its input.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent.parent / "fuzz" / "run"


def load_run():
    loader = importlib.machinery.SourceFileLoader("fuzz_run", str(RUN))
    spec = importlib.util.spec_from_loader("fuzz_run", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


fuzz_run = load_run()

PROGRESS = (
    "#1024\tpulse  cov: 1900 ft: 5000 corp: 400/2000Kb exec/s: 2000\n"
    "#2048\tNEW    cov: 1901 ft: 5001 corp: 401/2001Kb exec/s: 2001\n")
EXCEPTION = (
    "\n === Uncaught Python exception: ===\n"
    "ValueError: boom\n"
    "Traceback (most recent call last):\n"
    '  File "fuzz_acrn_shm.py", line 140, in test_one_input\n'
    "ValueError: boom\n"
    "\n")
WRITTEN = ("==123== ERROR: libFuzzer: fuzz target exited\n"
           "artifact_prefix='/w/artifacts/'; Test unit written to "
           "/w/artifacts/crash-0123abcd\n")
STATS = "stat::number_of_executed_units: 131170\nstat::peak_rss_mb: 104\n"


@pytest.mark.parametrize("log, expected", [
    (PROGRESS + STATS, 131170),
    (PROGRESS + "Done 5000 runs in 3 second(s)\n", 5000),
    # A job killed mid-run has no final statistics: its last progress.
    (PROGRESS + EXCEPTION, 2048),
    ("INFO: Seed: 1\n", None),
])
def test_inputs_tried(log, expected):
    assert fuzz_run.executed(log) == expected


TRACE = ("ValueError: boom\nTraceback (most recent call last):\n"
         '  File "fuzz_acrn_shm.py", line 140, in test_one_input\n'
         "ValueError: boom")


@pytest.mark.parametrize("log, expected", [
    (PROGRESS + STATS, None),
    (PROGRESS + EXCEPTION + WRITTEN + STATS,
     ("/w/artifacts/crash-0123abcd", TRACE)),
    # Seen in a 20-minute run: SIGALRM ended the job after the
    # exception and before the input was written.
    (PROGRESS + EXCEPTION, (None, TRACE)),
    (PROGRESS + "==9== ERROR: libFuzzer: out-of-memory (used: 4097Mb)\n"
     "Test unit written to /w/artifacts/oom-99\n",
     ("/w/artifacts/oom-99", "out-of-memory (used: 4097Mb)")),
    # Slow inputs are reported, not failures.
    (PROGRESS + "Test unit written to /w/artifacts/slow-unit-1\n", None),
])
def test_failures(log, expected):
    assert fuzz_run.failure_of(log) == expected


def test_every_target_has_its_file():
    """fuzz/run runs fuzz/fuzz_<name>.py for each of its targets."""
    assert sorted(fuzz_run.TARGETS) == [
        "acrn_shm", "channel", "check_launch", "ivshmem_server",
        "launch_script"]
    for name in fuzz_run.TARGETS:
        assert (RUN.parent / f"fuzz_{name}.py").is_file()


def test_seeds_per_target(tmp_path, monkeypatch):
    """XML seeds after a command byte and a length byte; launch scripts
    (check_launch) after a length byte only."""
    files = {"xml": tmp_path / "a.xml", "script": tmp_path / "a.sh"}
    files["xml"].write_bytes(b"<x/>")
    files["script"].write_bytes(b"acrn-dm VM\n")
    monkeypatch.syspath_prepend(str(RUN.parent))
    import harness
    monkeypatch.setattr(harness, "real_xmls", lambda: [files["xml"]])
    monkeypatch.setattr(harness, "real_scripts", lambda: [files["script"]])
    for name, commands in fuzz_run.TARGETS.items():
        if isinstance(commands, str):
            continue  # the harness's own seeds: test_harness_seeds
        corpus = tmp_path / name
        count = fuzz_run.write_seeds(str(corpus), False, commands)
        seeds = [path.read_bytes() for path in sorted(corpus.iterdir())]
        assert count == len(seeds) == fuzz_run.RANDOM_SEEDS + 2 * max(
            1, commands)
        real = seeds[fuzz_run.RANDOM_SEEDS:]
        if commands:
            assert real[0::2] == [bytes([c, 0]) + b"<x/>"
                                  for c in range(commands)]
        else:
            assert real[0] == b"\0acrn-dm VM\n"
            assert real[1][0] == len(real[1]) - 1 - len(b"acrn-dm VM\n")


@pytest.mark.parametrize("name", ["ivshmem_server", "channel"])
def test_harness_seeds(tmp_path, monkeypatch, name):
    """Targets with no XML take their harness's seeds, after the random
    ones; --random-only leaves only those."""
    monkeypatch.syspath_prepend(str(RUN.parent))
    module = __import__(fuzz_run.TARGETS[name])
    expected = module.seeds()
    count = fuzz_run.write_seeds(str(tmp_path / "a"), False,
                                 fuzz_run.TARGETS[name])
    seeds = [path.read_bytes() for path in sorted((tmp_path / "a").iterdir())]
    assert count == len(seeds) == fuzz_run.RANDOM_SEEDS + len(expected)
    assert seeds[fuzz_run.RANDOM_SEEDS:] == expected
    assert fuzz_run.write_seeds(str(tmp_path / "b"), True,
                                fuzz_run.TARGETS[name]) == (
        fuzz_run.RANDOM_SEEDS)
