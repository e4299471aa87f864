"""Benchmark the message channel beside memcpy, a UNIX socket pair and a
pipe, all measured in the same run on the same machine.

The measuring code is in the package (acrn_ivshmem/channel/bench.py,
shared with ``acrn-shm channel bench``); this script runs it from a
checkout.

Usage: python bench/channel_bench.py [--quick] [--cc COMPILER]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from acrn_ivshmem.channel.bench import Bench, main, report  # noqa: E402

__all__ = ["Bench", "main", "report"]

if __name__ == "__main__":
    sys.exit(main())
