"""Atheris fuzz target for the ivshmem doorbell protocol, both ways:
what a peer reads from a server, and what a server reads from a peer.

Byte 0 picks the side: even, the input is a server's stream to a peer
(``ivshmem_harness.check_client``); odd, it is what a peer sends a live
server that another peer watches (``ivshmem_harness.ServerCheck``). See
``ivshmem_harness.py`` for the input's form and the property checked.

Run it with ``fuzz/run --target ivshmem_server``; or directly (libFuzzer flags)::

    python fuzz/fuzz_ivshmem_server.py -max_total_time=60 CORPUS_DIR
    python fuzz/fuzz_ivshmem_server.py CRASH_FILE   # reproduce one input
"""

from __future__ import annotations

import logging
import sys

import atheris

with atheris.instrument_imports(include=["acrn_ivshmem"]):
    import ivshmem_harness

# The server drops thousands of peers here: no log line for each.
logging.getLogger("acrn_ivshmem.runtime.ivshmem_server").setLevel(
    logging.ERROR)
SERVER = ivshmem_harness.ServerCheck()


def test_one_input(data: bytes) -> None:
    if not data:
        return
    if data[0] & 1:
        SERVER.check(data[1:])
    else:
        ivshmem_harness.check_client(data[1:])


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
