"""The channel fuzz property (fuzz/fuzz_channel.py) without atheris.

Hypothesis mutates the fuzzer's seed regions (bytes overwritten, the
magic and CRC put right or not, the region cut short) and every input
must end in messages or a one-line ChannelError; ``fuzz/run --target
channel`` runs the same property under libFuzzer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acrn_ivshmem.channel import Channel, ChannelError, Region

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuzz"))
import fuzz_channel  # noqa: E402

SEEDS = fuzz_channel.seeds()


def test_the_seeds_open_and_hold_messages():
    received = [fuzz_channel.check(seed) for seed in SEEDS]
    assert len(SEEDS) == 24
    assert all(seed[1:9] == b"IVSHMCHN" for seed in SEEDS)
    assert sum(map(len, received)) > 100


@settings(max_examples=400, deadline=None)
@given(index=st.integers(0, len(SEEDS) - 1), flags=st.integers(0, 255),
       edits=st.lists(st.tuples(st.integers(0, 8200),
                                st.binary(min_size=1, max_size=8)),
                      max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 8200)))
def test_any_bytes_end_in_messages_or_one_clean_error(index, flags, edits,
                                                      cut):
    data = bytearray(SEEDS[index])
    data[0] = flags
    for at, value in edits:
        data[at:at + len(value)] = value
    if cut is not None:
        del data[cut:]
    fuzz_channel.check(bytes(data))


def test_a_receive_that_never_ends_is_a_violation(monkeypatch):
    monkeypatch.setattr(Channel, "recv_batch",
                        lambda self, *args, **kwargs: [b"again"])
    with pytest.raises(fuzz_channel.Violation) as caught:
        fuzz_channel.check(SEEDS[1])
    assert str(caught.value) == "receiving did not end after 1027 calls"


def test_a_message_of_two_lines_is_a_violation(monkeypatch):
    def broken(*args, **kwargs):
        raise ChannelError("two\nlines")
    monkeypatch.setattr(Channel, "__init__", broken)
    with pytest.raises(fuzz_channel.Violation) as caught:
        fuzz_channel.check(SEEDS[1])
    assert str(caught.value) == "not one line: 'two\\nlines'"


def test_other_exceptions_escape(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("boom")
    monkeypatch.setattr(Channel, "recv_batch", broken)
    with pytest.raises(ValueError):
        fuzz_channel.check(SEEDS[1])


def test_rings_of_two_sizes():
    """Found by CI's fuzz run: a header whose rings differ in size. A
    message longer than this side's own ring may come from the other,
    larger ring; the property compared it with the wrong ring."""
    data = (Path(__file__).parent / "test_channel_fuzz"
            / "unequal_rings.bin").read_bytes()
    peer, _limit, region = fuzz_channel.region_of(data)
    made = Region.from_buffer(region, "fuzz")
    chan = Channel(made, peer, heartbeat=0, takeover=True)
    try:
        assert (chan.max_message, chan.max_received) == (248, 1016)
    finally:
        chan.close()
        made.close()
    got = fuzz_channel.check(data)
    assert max(map(len, got)) == 260
