"""Read the ivshmem devices of an existing acrn-dm launch script.

Both forms are understood, anywhere in the script outside comments:
ACRN v3's ``add_virtual_device 8 ivshmem hv:/shm_region_0,2`` and raw
acrn-dm arguments ``-s 8,ivshmem,hv:/shm_region_0,2`` (also
``--pci_slot``), with backslash line continuations and quotes around
words. Each device keeps the line and column where it starts in the
file. The VM is the one the ``# Launch script for VM name:`` header
names, else acrn-dm's last argument (:mod:`.script_commands`). A
comment line ``# acrn-shm: ignore CODE`` silences CODE on the next
command, as ``<!-- acrn-shm: ignore CODE -->`` does on the next element
of an XML.
"""

from __future__ import annotations

import re

from ..errors import InputError
from ..io.xmlio import Loc, read_input
from .loader import suppressed_codes
from .script_commands import acrn_dm_vm_name
from .syntax import LaunchScript, ScriptIvshmem, Suppression

__all__ = ["parse_script", "read_script", "script_from_bytes"]

#: Launch scripts are small; this keeps a wrong file from filling memory.
MAX_SCRIPT_BYTES = 4 * 1024 * 1024

_Q = r"""["']?"""
_OPTIONS = r"""(?P<options>[^\s)`"';|&]+)"""
_HELPER = re.compile(
    rf"\badd_virtual_device\s+{_Q}(?P<slot>[0-9:]+){_Q}\s+{_Q}ivshmem{_Q}"
    rf"\s+{_Q}{_OPTIONS}")
_RAW = re.compile(
    rf"(?:(?<![\w-])-s|--pci_slot)(?:\s+|=)?{_Q}(?P<slot>[0-9:]+),"
    rf"ivshmem,{_OPTIONS}")
_HEADER = re.compile(r"#\s*Launch script for VM name:\s*(\S+)")
_ANCHOR = re.compile(r"\bacrn-dm\b|\bdm_params=\(")
_PREFIX = re.compile(r"(hv|dm):/(.*)")


def read_script(path: str) -> LaunchScript:
    """Read the launch script at ``path`` (InputError when unreadable)."""
    data = read_input(path, MAX_SCRIPT_BYTES)
    return script_from_bytes(data, path)


def script_from_bytes(data: bytes, path: str) -> LaunchScript:
    """Read the launch script ``data`` (the bytes of file ``path``)."""
    if len(data) > MAX_SCRIPT_BYTES:
        raise InputError(f"{path}: larger than {MAX_SCRIPT_BYTES} bytes; "
                         "not a launch script")
    if b"\0" in data:
        raise InputError(f"{path}:1: contains NUL bytes; not a launch "
                         "script")
    return parse_script(data.decode("utf-8", "replace"), path)


def _logical_lines(text: str):
    """Yield (logical line, [(offset, line number, column base)])."""
    pieces: list[str] = []
    marks: list[tuple[int, int]] = []
    length = 0
    # Lines end at "\n" only, as for bash and editors (str.splitlines
    # also ends them at \x0b, \x0c, \x1c-\x1e, \x85, \u2028, ...).
    for number, line in enumerate(text.split("\n"), start=1):
        marks.append((length, number))
        if line.endswith("\\") and not line.lstrip().startswith("#"):
            pieces.append(line[:-1])
            length += len(line) - 1
            continue
        pieces.append(line)
        yield "".join(pieces), marks
        pieces, marks, length = [], [], 0
    if pieces:
        yield "".join(pieces), marks


def _where(marks, offset: int) -> Loc:
    start, number = marks[0]
    for mark_start, mark_number in marks:
        if mark_start <= offset:
            start, number = mark_start, mark_number
    return Loc(number, offset - start + 1)


def _uncommented(line: str) -> str:
    """``line`` with a shell comment blanked out (quotes respected)."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t;("):
            return line[:index] + " " * (len(line) - index)
    return line


def _slot(text: str) -> tuple[int | None, int | None]:
    parts = text.split(":")
    try:
        numbers = [int(part, 10) for part in parts]
    except ValueError:
        return None, None
    if len(numbers) == 1:
        return numbers[0], 0
    if len(numbers) == 2:
        return numbers[0], numbers[1]
    if len(numbers) == 3:
        return numbers[1], numbers[2]
    return None, None


def parse_script(text: str, path: str = "<script>") -> LaunchScript:
    """Find the VM name, the ivshmem devices and the acrn-dm call."""
    vm_name = None
    anchor = None
    devices = []
    suppressions = []
    pending: tuple[frozenset[str], Loc] | None = None
    for line, marks in _logical_lines(text):
        header = _HEADER.match(line.strip())
        if header and vm_name is None:
            vm_name = header.group(1)
        pending, suppression = _suppression(line, marks, pending)
        if suppression is not None:
            suppressions.append(suppression)
        code = _uncommented(line)
        if anchor is None:
            found = _ANCHOR.search(code)
            if found:
                anchor = _where(marks, found.start())
        for pattern in (_HELPER, _RAW):
            for match in pattern.finditer(code):
                devices.append(_device(match, marks))
    devices.sort(key=lambda device: device.loc)
    call = acrn_dm_vm_name(text)
    if vm_name is None and call is not None:
        vm_name = call.vm_name
    return LaunchScript(path, vm_name, tuple(devices),
                        anchor or Loc(1, 1),
                        call.loc if call is not None else None,
                        call.argument if call is not None else None,
                        tuple(suppressions))


def _suppression(line: str, marks, pending):
    """Read one logical line for suppressions: returns what is pending
    after it (codes and the comment's place) and the suppression it
    completes, if any. Comment lines add their codes to what is pending;
    blank lines keep it; a command takes it, from its first line to the
    end of its last."""
    stripped = line.strip()
    if stripped.startswith("#"):
        codes = suppressed_codes(stripped[1:])
        if codes is None:
            return pending, None
        if pending is not None:
            return (pending[0] | codes, pending[1]), None
        return (codes, _where(marks, line.index("#"))), None
    if not stripped or pending is None:
        return pending, None
    codes, loc = pending
    first, (last_start, last) = marks[0][1], marks[-1]
    return None, Suppression(codes, Loc(first, 1),
                             Loc(last, len(line) - last_start + 1), loc)


def _device(match: re.Match, marks) -> ScriptIvshmem:
    slot = match.group("slot")
    device, function = _slot(slot)
    options = match.group("options")
    prefix = _PREFIX.fullmatch(options)
    provider = prefix.group(1) if prefix else None
    fields = (prefix.group(2) if prefix else options).split(",")
    name = fields[0]
    size = fields[1] if len(fields) > 1 else ""
    region_id = fields[2] if len(fields) > 2 else None
    return ScriptIvshmem(slot, device, function, provider, name, size,
                         region_id, _where(marks, match.start()))
