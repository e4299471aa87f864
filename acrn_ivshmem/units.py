"""Sizes as users type them: ``2`` (MB), ``512M``, ``1G``, ``1024K``.

One parser for every ``--size`` option, so that they all read the same
text the same way. Units are binary, as in ACRN (``IVSHMEM_SIZE`` is in
MiB) and QEMU (``size=2M``): ``K`` is 1024 bytes, ``M`` 1024 K, ``G``
1024 M, ``T`` 1024 G. A unit may be followed by ``B`` or ``iB`` and is
read in any case, so ``1G``, ``1g``, ``1GB`` and ``1GiB`` are all
1024 MB. A bare number is MB. The result must be a whole number of MB:
``1024K`` is 1, ``512K`` is refused. Whether a size suits ACRN (a power
of two from 2 to 512) is not decided here: ``0`` and ``3M`` parse, and
the caller or the lint rules judge them.
"""

from __future__ import annotations

import re

from .errors import UsageError, quoted

__all__ = ["MIB", "parse_size_mb"]

#: Bytes in a MB (MiB), the unit of every region size.
MIB = 1 << 20

#: Bytes per unit letter.
_UNITS = {"K": 1 << 10, "M": MIB, "G": 1 << 30, "T": 1 << 40}
# ASCII only: str.upper() would turn a dotless "ı" into "I".
_SIZE = re.compile(r"([0-9]+)(?:([KMGTkmgt])(?:[iI]?[bB])?)?")
#: More digits than any real size has; keeps int() cheap.
_MAX_DIGITS = 15


def parse_size_mb(text: str, name: str = "size") -> int:
    """The size ``text`` stands for, in MB (MiB).

    ``name`` is how messages call the value (``--size``, say). Raises
    :class:`UsageError` with one line for anything else: no number, an
    unknown unit, a fraction, a sign, or bytes that are not whole MB.
    """
    stripped = text.strip()
    match = _SIZE.fullmatch(stripped)
    if match is None:
        raise UsageError(
            f"{name} {quoted(text)} is not a size: give MB (2) or a whole "
            "number with a unit K, M, G or T (512M, 1G; binary units)")
    digits, unit = match.groups()
    if len(digits.lstrip("0")) > _MAX_DIGITS:
        raise UsageError(f"{name} {quoted(text)} is too large")
    number = int(digits)
    if unit is None:
        return number
    size, rest = divmod(number * _UNITS[unit.upper()], _UNITS["M"])
    if rest:
        raise UsageError(
            f"{name} {quoted(text)} is not a whole number of MB")
    return size
