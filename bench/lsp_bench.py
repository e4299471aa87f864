"""Benchmark the language server: diagnostics latency and memory.

In-process, through the path a ``textDocument/didChange`` takes (the
change applied to the text, the document linted, its diagnostics
built), on ACRN's whl-ipc-i5/hybrid_rt.xml beside its board:

* latency of one change, 50th and 95th percentile, target 50 ms at the
  95th: without the structure check (what runs on every change), with
  it and the result cache (what runs after a pause and on save; every
  version is new text, so the cache only holds the schema and the
  board's result), and with it and no cache (``acrn-shm lsp
  --no-cache``: the board is validated again each time);
* resident memory over 10,000 edits of one document (target: flat).

Usage: python bench/lsp_bench.py [--quick] [--acrn-data DIR]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = PROJECT.parent / "shared" / "acrn-data"
sys.path.insert(0, str(PROJECT))

from acrn_ivshmem.lsp.server import AcrnShmServer, DocState  # noqa: E402
from acrn_ivshmem.lsp.text import Pos, Text  # noqa: E402

TARGET_MS = 50.0


def edits(text: Text):
    """Endless edits as a user types: the region size retyped, a new
    value each time (so that no version's bytes repeat)."""
    line = next(index for index in range(text.line_count)
                if "<IVSHMEM_SIZE>" in text.line(index))
    start = text.line(line).index("<IVSHMEM_SIZE>") + len("<IVSHMEM_SIZE>")
    current = text.line(line)[start:].split("<")[0]
    index = 0
    while True:
        new = str(index + 2)
        yield Pos(line, start), Pos(line, start + len(current)), new
        current = new
        index += 1


def latency(server: AcrnShmServer, path: str, source: str, full: bool,
            count: int) -> tuple[float, list[float]]:
    """Milliseconds of the first lint (the schema built or loaded, the
    board read: on opening the file) and per change for ``count``
    changes after it."""
    text = Text(source)
    changes = edits(text)
    began = time.perf_counter()
    server.lint_now(path, text, full)
    first = (time.perf_counter() - began) * 1000
    times = []
    for _ in range(count):
        start, end, new = next(changes)
        began = time.perf_counter()
        text = text.apply(start, end, new)
        server.lint_now(path, text, full)
        times.append((time.perf_counter() - began) * 1000)
    return first, times


def rss_kb() -> int:
    """The process's resident memory now, in KB."""
    with open("/proc/self/statm") as stream:
        pages = int(stream.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def memory(server: AcrnShmServer, path: str, source: str,
           count: int) -> list[tuple[int, int]]:
    """(edits done, RSS KB) every tenth of ``count`` edits, keeping the
    lint results as the server's document state does."""
    state = DocState("file://" + path, path, 0, Text(source))
    changes = edits(state.text)
    samples = []
    for done in range(count + 1):
        if done % (count // 10) == 0:
            gc.collect()
            samples.append((done, rss_kb()))
        if done == count:
            break
        start, end, new = next(changes)
        state.text = state.text.apply(start, end, new)
        state.version = done + 1
        linted, _found = server.lint_now(path, state.text, False)
        server._store(state, state.text, linted)
    return samples


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="100 changes per case, 1,000 edits")
    parser.add_argument("--acrn-data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    folder = args.acrn_data / "v3.3" / "whl-ipc-i5"
    if not folder.is_dir():
        sys.exit(f"lsp_bench: {folder} is missing")
    changes = 100 if args.quick else 400
    edit_count = 1000 if args.quick else 10000
    with tempfile.TemporaryDirectory() as work:
        os.environ["ACRN_SHM_CACHE_DIR"] = os.path.join(work, "cache")
        for name in ("whl-ipc-i5.xml", "hybrid_rt.xml"):
            shutil.copyfile(folder / name, os.path.join(work, name))
        path = os.path.join(work, "hybrid_rt.xml")
        source = Path(path).read_text(encoding="utf-8")
        print(f"acrn-shm lsp: diagnostics after one change of "
              f"whl-ipc-i5/hybrid_rt.xml, {changes} changes, in-process")
        print(f"{'case':<44} {'open ms':>7} {'p50 ms':>7} {'p95 ms':>7} "
              f"{'target':>7}")
        for label, full, cache in (
                ("every change (structure check after a pause)", False,
                 True),
                ("with the structure check (ISM001), cache", True, True),
                ("with the structure check, --no-cache", True, False)):
            first, times = latency(AcrnShmServer(use_cache=cache), path,
                                   source, full, changes)
            p95 = percentile(times, 0.95)
            print(f"{label:<44} {first:7.0f} {statistics.median(times):7.1f} "
                  f"{p95:7.1f} {TARGET_MS:7.0f}"
                  f"{'' if p95 <= TARGET_MS else '  (over)'}")
        print(f"\nresident memory over {edit_count:,} edits of one document")
        samples = memory(AcrnShmServer(), path, source, edit_count)
        for done, kb in samples:
            print(f"  after {done:>6,} edits: {kb / 1024:7.1f} MiB")
        growth = samples[-1][1] - samples[1][1]
        print(f"growth from {samples[1][0]:,} to {samples[-1][0]:,} edits: "
              f"{growth / 1024:.1f} MiB (target: flat)")


if __name__ == "__main__":
    main()
