"""record.frozen behaves as @dataclass(frozen=True) does for the model's
classes: the same repr, equality, hash, order, refusals and dataclasses
API, built without the dataclasses module."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys

import pytest

from acrn_ivshmem.record import FrozenInstanceError, frozen, replace


@frozen(order=True)
class Point:
    """A record with a default."""

    x: int
    y: str
    z: tuple = ()


@dataclasses.dataclass(frozen=True, order=True)
class DataPoint:
    """The same, as a dataclass."""

    x: int
    y: str
    z: tuple = ()


@frozen
class Single:
    """A record of one field."""

    only: int


VALUES = [(1, "a"), (1, "b"), (0, "z", (1,)), (1, "a", (2,))]


@pytest.mark.parametrize("args", VALUES)
def test_as_a_dataclass(args):
    record, data = Point(*args), DataPoint(*args)
    assert repr(record) == repr(data).replace("DataPoint", "Point")
    assert hash(record) == hash(data)
    assert record == Point(*args) and record != data
    assert Point(x=args[0], y=args[1]) == Point(args[0], args[1], ())
    for other in VALUES:
        assert (record < Point(*other)) == (data < DataPoint(*other))
        assert (record >= Point(*other)) == (data >= DataPoint(*other))
    assert dataclasses.asdict(record) == dataclasses.asdict(data)
    assert dataclasses.replace(record, y="q") == Point(args[0], "q",
                                                       record.z)
    assert replace(record, y="q") == dataclasses.replace(record, y="q")
    assert pickle.loads(pickle.dumps(record)) == copy.deepcopy(record)


def test_fields_and_refusals():
    assert [f.name for f in dataclasses.fields(Point)] == ["x", "y", "z"]
    assert dataclasses.is_dataclass(Single(1))
    assert Point.__match_args__ == ("x", "y", "z")
    assert repr(Single(3)) == "Single(only=3)" and hash(Single(3)) == hash((3,))
    point = Point(1, "a")
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'x'"):
        point.x = 2
    with pytest.raises(AttributeError, match="cannot delete field 'y'"):
        del point.y
    with pytest.raises(TypeError, match="missing required argument: 'y'"):
        Point(1)
    with pytest.raises(TypeError, match="takes 4 positional arguments but "
                       "5 were given"):
        Point(1, "a", (), 4)
    with pytest.raises(TypeError, match="unexpected keyword argument 'w'"):
        Point(1, "a", w=2)
    with pytest.raises(TypeError, match="multiple values for argument 'x'"):
        Point(1, "a", x=2)
    with pytest.raises(TypeError):
        _ = Point(1, "a") < DataPoint(1, "a")


def test_the_lint_path_imports_no_dataclasses(tmp_path):
    scenario = tmp_path / "s.xml"
    scenario.write_text("<acrn-config><vm id='x'/></acrn-config>")
    code = ("import sys\nfrom acrn_ivshmem.cli import main\n"
            "sys.argv = ['acrn-shm', 'lint', '--ignore', 'ISM002', 's.xml']\n"
            "try:\n    main()\nexcept SystemExit as exc:\n"
            "    print(exc.code, 'dataclasses' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, check=True, timeout=60, cwd=tmp_path)
    assert done.stdout.splitlines()[-2:] == [
        "1 error in 1 file", "1 False"]  # ISM001: id='x' is no integer


@frozen
class Checked:
    """A record whose __post_init__ normalises a field."""

    text: str

    def __post_init__(self):
        object.__setattr__(self, "text", self.text.strip())


def test_post_init_runs_after_init():
    assert Checked(" a ").text == "a" and Checked(text=" b ").text == "b"
