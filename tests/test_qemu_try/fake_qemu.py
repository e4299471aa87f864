"""A stand-in for qemu-system-x86_64 (tests/test_qemu_try.py).

``--version`` prints a version. Otherwise it plays qemu-try's /init
for an ivshmem-plain guest on the memory-backend-file of its argv: the
same console lines, the same words at the same offsets of the file.
``$FAKE_QEMU`` picks a misbehaviour: ``refuse`` (guest B exits 1 with
an error, as QEMU does for a taken slot), ``hang`` (nothing at all),
``misread`` (guest B reads a message nobody wrote).
"""

import os
import re
import struct
import sys
import time

argv = sys.argv[1:]
if argv == ["--version"]:
    print("QEMU emulator version 9.1.0 (fake)")
    sys.exit(0)


def value(flag: str) -> str:
    return argv[argv.index(flag) + 1]


def option(text: str, key: str) -> str:
    # The value runs to the next single ','; ',,' is a literal comma.
    match = re.search(rf"(?:^|,){key}=((?:[^,]|,,)*)", text)
    return match.group(1).replace(",,", ",")


mode = os.environ.get("FAKE_QEMU", "")
params = dict(word.split("=", 1) for word in value("-append").split()
              if "=" in word)
me = 0 if params["ivrole"] == "a" else 1
if mode == "refuse" and me == 1:
    print("qemu-system-x86_64: -device ivshmem-plain: PCI: slot 1 function "
          "0 not available", file=sys.stderr)
    sys.exit(1)
if mode == "hang":
    time.sleep(600)
console = open(option(value("-chardev"), "path"), "w", buffering=1)
memory = open(option(value("-object"), "mem-path"), "r+b", buffering=0)


def say(text: str) -> None:
    console.write(f"IVT {text}\n")


def word(at: int, new: int | None = None) -> int:
    memory.seek(at)
    if new is None:
        return struct.unpack("<I", memory.read(4))[0]
    memory.write(struct.pack("<I", new))
    return new


say("boot")
say("device 0000:00:08.0")
say(f"id {me}")
for index, text in enumerate(params["ivmsg"].split(",")):
    word(64 + 64 * me + 4 * index, int(text, 16))
say(f"wrote {64 + 64 * me}")
nonce = int(params["ivnonce"], 16)
word(4 * me, nonce + me)
say("ready")
deadline = time.monotonic() + int(params["ivwait"])
while word(4 * (1 - me)) != nonce + 1 - me:
    if time.monotonic() > deadline:
        say("fail the other guest never wrote its message")
        say("done rc=1")
        sys.exit(0)
    time.sleep(0.01)
read = [word(64 + 64 * (1 - me) + 4 * index) for index in range(16)]
if mode == "misread" and me == 1:
    read[0] ^= 0x20
say(f"read {64 + 64 * (1 - me)} " + " ".join(f"0x{w:08X}" for w in read))
say("done rc=0")
