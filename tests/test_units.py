"""Sizes as users type them (units.parse_size_mb)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acrn_ivshmem.errors import UsageError
from acrn_ivshmem.units import parse_size_mb


@pytest.mark.parametrize("text, expected", [
    ("2", 2), ("512", 512), (" 16 ", 16), ("0", 0), ("3", 3), ("007", 7),
    ("2M", 2), ("512M", 512), ("3M", 3), ("2m", 2), ("2MB", 2),
    ("2MiB", 2), ("2mib", 2),
    ("1G", 1024), ("1g", 1024), ("1GB", 1024), ("1GiB", 1024),
    ("1024K", 1), ("2048k", 2), ("1T", 1048576), ("0G", 0),
])
def test_sizes(text, expected):
    assert parse_size_mb(text) == expected


@pytest.mark.parametrize("text, message", [
    ("", "size '' is not a size: give MB (2) or a whole number with a unit "
     "K, M, G or T (512M, 1G; binary units)"),
    ("1.5G", "size '1.5G' is not a size: give MB (2) or a whole number "
     "with a unit K, M, G or T (512M, 1G; binary units)"),
    ("-2", "size '-2' is not a size: give MB (2) or a whole number with a "
     "unit K, M, G or T (512M, 1G; binary units)"),
    ("2 M", "size '2 M' is not a size: give MB (2) or a whole number with a "
     "unit K, M, G or T (512M, 1G; binary units)"),
    # Bytes would be 'B' alone: not taken, a bare number is MB.
    ("2097152B", "size '2097152B' is not a size: give MB (2) or a whole "
     "number with a unit K, M, G or T (512M, 1G; binary units)"),
    # A dotless i is upper-case 'I' to str.upper(), but no unit letter.
    ("1G\u0131B", "size '1G\u0131B' is not a size: give MB (2) or a whole "
     "number with a unit K, M, G or T (512M, 1G; binary units)"),
    ("\uff12", "size '\uff12' is not a size: give MB (2) or a whole number "
     "with a unit K, M, G or T (512M, 1G; binary units)"),
    ("2\nM", "size '2\\x0aM' is not a size: give MB (2) or a whole number "
     "with a unit K, M, G or T (512M, 1G; binary units)"),
    ("512K", "size '512K' is not a whole number of MB"),
    ("1536K", "size '1536K' is not a whole number of MB"),
    ("9" * 16, f"size '{'9' * 16}' is too large"),
    ("9" * 5000 + "G", f"size '{'9' * 79}\u2026' is too large"),
])
def test_refused(text, message):
    with pytest.raises(UsageError) as caught:
        parse_size_mb(text)
    assert str(caught.value) == message


def test_the_name_is_the_callers():
    with pytest.raises(UsageError, match=r"^--size 'x' is not a size"):
        parse_size_mb("x", "--size")


UNITS = {"": 1, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


@given(st.integers(0, 10 ** 6), st.sampled_from(sorted(UNITS)),
       st.sampled_from(["", "B", "iB"]), st.booleans())
def test_whole_mb_in_any_unit(number, unit, suffix, lower):
    text = f"{number}{unit}{suffix if unit else ''}"
    text = text.lower() if lower else text
    mb = number * UNITS[unit]
    if mb == int(mb):
        assert parse_size_mb(text) == int(mb)
    else:
        with pytest.raises(UsageError, match="not a whole number of MB"):
            parse_size_mb(text)


@given(st.text(max_size=30))
def test_any_text_gives_a_number_or_one_line(text):
    try:
        size = parse_size_mb(text)
    except UsageError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("size '")
    else:
        assert isinstance(size, int) and size >= 0
