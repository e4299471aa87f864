"""Typed facts of a scenario, resolved once from the syntax model.

The syntax model (:mod:`.syntax`) keeps every value as the user wrote it,
with its position, for messages and byte-exact edits. This layer reads
those values once and gives what they mean: a region's size in MB, its
provider, its region id, each member's VM and parsed VBDF. Every
consumer (rules, planners, the build check, the graph, region rows,
the channel plan) asks here instead of parsing the text again.

The one policy for a missing or malformed value:

* **Absent** where ACRN has a default (a v3 ``IVSHMEM_SIZE``,
  ``PROVIDED_BY`` or ``IVSHMEM_REGION_ID``): ACRN's default (2 MB,
  Hypervisor, 0), as its default populator fills it in before a build,
  with ``*_explicit`` False. A legacy region string has no defaults: a
  missing size field is ``None`` with :data:`MISSING`.
* **Present but malformed**: ``None`` with the reason
  (:data:`EMPTY`, :data:`NOT_DECIMAL`, :data:`TOO_LONG`,
  :data:`OUT_OF_RANGE`, :data:`NOT_VBDF`: a VBDF is read as ACRN's
  pattern reads it, blanks included); a provider text ACRN does not
  know is a ``None`` provider. Nothing here raises: whoever needs a
  number reports the reason at the syntax value's place.

Values are checked as ACRN reads them, not for what ACRN allows: a size
of 3 is 3 here and the rule ``region-size`` refuses it.

:func:`load_scenario`, :func:`load_board` and :func:`load_launch` are the
one way a command reads a file it expects to be of one kind.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from ..errors import AcrnShmError, UsageError, quoted
from ..record import frozen
from .syntax import (
    MAX_REGION_ID, Bdf, Board, LaunchConfig, Member, Region, Scenario,
    Value, Vm, decimal_int, is_decimal, parse_vbdf,
)

if TYPE_CHECKING:
    from ..io.xmlio import Document
    from .loader import Loaded

__all__ = [
    "DEFAULT_SIZE_MB", "EMPTY", "MISSING", "NOT_DECIMAL", "NOT_VBDF",
    "OUT_OF_RANGE", "TOO_LONG", "ResolvedMember", "ResolvedRegion",
    "ResolvedScenario", "load_board", "load_launch", "load_scenario",
    "read_number", "resolve", "resolve_region", "resolve_region_id",
    "resolve_size", "resolve_vbdf", "vm_key",
]

#: ACRN's default ``IVSHMEM_SIZE`` (MB) when a v3 region has none.
DEFAULT_SIZE_MB = 2
#: Reasons a value has no meaning (the ``*_reason`` attributes).
MISSING = "missing"
EMPTY = "empty"
NOT_DECIMAL = "not a decimal number"
TOO_LONG = "too many digits"
OUT_OF_RANGE = "out of range"
NOT_VBDF = "not bb:dd.f"


def resolve_size(value: Value | None, legacy: bool
                 ) -> tuple[int | None, str | None]:
    """``(MB, None)`` or ``(None, reason)`` for a region's size value
    (stripped text, as the loader keeps it); see the module's policy.

    Never raises, whatever the text.
    """
    if value is None:
        return (None, MISSING) if legacy else (DEFAULT_SIZE_MB, None)
    return read_number(value.text)


def read_number(text: str) -> tuple[int | None, str | None]:
    """``(number, None)`` for ASCII decimal ``text``, else ``(None,
    reason)``: :data:`EMPTY`, :data:`NOT_DECIMAL` or :data:`TOO_LONG`.
    Never raises."""
    if not text:
        return None, EMPTY
    if not is_decimal(text):
        return None, NOT_DECIMAL
    number = decimal_int(text)
    if number is None:
        return None, TOO_LONG
    return number, None


def resolve_region_id(value: Value | None) -> tuple[int | None, str | None]:
    """``(id, None)`` or ``(None, reason)`` for a region id value: 0
    (ACRN's default) when absent, :data:`OUT_OF_RANGE` above
    :data:`~.syntax.MAX_REGION_ID`."""
    if value is None:
        return 0, None
    number, reason = read_number(value.text)
    if number is not None and number > MAX_REGION_ID:
        return None, OUT_OF_RANGE
    return number, reason


def vm_key(ref: str, legacy: bool) -> str:
    """What a member's VM reference ``ref`` names, as a key to compare:
    a legacy VM id's number (``02`` and ``2`` are one VM), else the
    text as written."""
    number = decimal_int(ref) if legacy else None
    return ref if number is None else str(number)


def resolve_vbdf(value: Value | None) -> tuple[Bdf | None, str | None]:
    """``(Bdf, None)`` or ``(None, reason)`` for a member's VBDF:
    :data:`MISSING` when absent (ACRN's populator picks one),
    :data:`EMPTY` when blank, :data:`NOT_VBDF` for any other text that is
    not exactly ACRN's ``bb:dd.f``."""
    if value is None:
        return None, MISSING
    if not value.text.strip():
        return None, EMPTY
    bdf = parse_vbdf(value.text)
    return (bdf, None) if bdf is not None else (None, NOT_VBDF)


@frozen
class ResolvedMember:
    """A region member: ``syntax`` (the :class:`~.syntax.Member`), the
    ``vm`` it names (None when no VM of the scenario has that name or
    id) and its parsed ``vbdf`` (None when absent or not ACRN's
    ``bb:dd.f``, the reason in ``vbdf_reason``)."""

    syntax: Member
    vm: Vm | None
    vbdf: Bdf | None
    vbdf_reason: str | None


@frozen
class ResolvedRegion:
    """What a region means (see the module's policy).

    ``syntax`` is the :class:`~.syntax.Region` (raw values and their
    places); ``name`` its name text (None when absent); ``provider``
    ``"hv"``, ``"dm"`` or None (a text ACRN does not know);
    ``size_mb`` and ``size_reason``; ``region_id`` and
    ``region_id_reason``; ``members`` (:class:`ResolvedMember`, in
    order). ``*_explicit`` tell a written value from ACRN's default.
    """

    syntax: Region
    name: str | None
    provider: str | None
    provider_explicit: bool
    size_mb: int | None
    size_reason: str | None
    size_explicit: bool
    region_id: int | None
    region_id_reason: str | None
    region_id_explicit: bool
    members: tuple[ResolvedMember, ...]

    @property
    def label(self) -> str:
        """How messages name the region."""
        return self.syntax.label

    @property
    def size_decimal(self) -> bool:
        """True when the size is written in ASCII decimal digits (a
        number, though perhaps one too long to be read)."""
        return self.size_mb is not None or self.size_reason == TOO_LONG


def resolve_region(region: Region, scenario: Scenario | None = None
                   ) -> ResolvedRegion:
    """The facts of ``region``; members' VMs are looked up in
    ``scenario`` (none found without it)."""
    legacy = region.legacy is not None
    size_mb, size_reason = resolve_size(region.size, legacy)
    region_id, id_reason = resolve_region_id(region.region_id)
    members = tuple(
        ResolvedMember(
            member,
            scenario.vm_for(member.vm.text)
            if scenario is not None and member.vm is not None
            and member.vm.text else None,
            *resolve_vbdf(member.vbdf))
        for member in region.members)
    return ResolvedRegion(
        region, region.name.text if region.name is not None else None,
        region.land, region.provider is not None,
        size_mb, size_reason, region.size is not None,
        region_id, id_reason, region.region_id is not None, members)


@frozen
class ResolvedScenario:
    """The facts of a scenario: ``syntax`` (the
    :class:`~.syntax.Scenario`) and its ``regions``
    (:class:`ResolvedRegion`, in document order). The VMs' kinds and
    ids are resolved by the loader (:class:`~.syntax.Vm`)."""

    syntax: Scenario
    regions: tuple[ResolvedRegion, ...]

    def region(self, region: Region) -> ResolvedRegion:
        """The facts of ``region`` (one of this scenario's regions, else
        resolved now)."""
        facts = self._by_region.get(id(region))
        if facts is None or facts.syntax is not region:
            return resolve_region(region, self.syntax)
        return facts

    @cached_property
    def _by_region(self) -> dict[int, ResolvedRegion]:
        return {id(facts.syntax): facts for facts in self.regions}


def resolve(scenario: Scenario) -> ResolvedScenario:
    """The facts of ``scenario``, made once: ``scenario.resolved``
    keeps them."""
    return scenario.resolved


def _resolve_scenario(scenario: Scenario) -> ResolvedScenario:
    return ResolvedScenario(scenario, tuple(
        resolve_region(region, scenario) for region in scenario.regions))


def _load(source, via: Callable[[str], Loaded] | None) -> Loaded:
    from .loader import Loaded, from_document, load

    if isinstance(source, str):
        return (via or load)(source)
    return Loaded(from_document(source), source)


def _expect(source, model_type: type, refusal: str,
            error: type[AcrnShmError],
            via: Callable[[str], Loaded] | None,
            fmt: str | None = None) -> Loaded:
    loaded = _load(source, via)
    if not isinstance(loaded.model, model_type) or (
            fmt is not None and loaded.model.format != fmt):
        import re  # only for a refusal

        from .loader import kind_of

        path = source if isinstance(source, str) else source.path
        values = {"path": path, "quoted": quoted(path),
                  "kind": kind_of(loaded.document)}
        # One pass: a path holding "{kind}" is not filled in again.
        raise error(re.sub(r"\{(path|quoted|kind)\}",
                           lambda m: values[m[1]], refusal))
    return loaded


def load_scenario(source: str | Document, *,
                  refusal: str = "{path}: expected a scenario XML, found "
                  "a {kind} XML",
                  error: type[AcrnShmError] = UsageError,
                  via: Callable[[str], Loaded] | None = None,
                  fmt: str | None = None) -> Loaded:
    """Read a scenario (of format ``fmt``, ``"legacy"`` or ``"v3"``,
    when given): ``source`` is a path (read with ``via``, say a
    linter's ``load``, else :func:`~.loader.load`) or a parsed
    document. Returns the :class:`~.loader.Loaded` pair (its ``model``
    a :class:`~.syntax.Scenario`; ``model.resolved`` its facts).

    Unreadable input raises :class:`~acrn_ivshmem.errors.InputError`;
    another kind of ACRN XML raises ``error`` with ``refusal``, where
    ``{path}`` is the file (``{quoted}`` the same quoted) and ``{kind}``
    what it is (:func:`~.loader.kind_of`: ``board``, ``launch``,
    ``legacy``, ``v3``), so that each command keeps its own words.
    """
    return _expect(source, Scenario, refusal, error, via, fmt)


def load_board(source: str | Document, *,
               refusal: str = "{path}: expected a board XML, found a "
               "{kind} XML",
               error: type[AcrnShmError] = UsageError,
               via: Callable[[str], Loaded] | None = None) -> Loaded:
    """Read a board XML as :func:`load_scenario` reads a scenario (its
    ``model`` a :class:`~.syntax.Board`; ``native_bdfs`` its native PCI
    functions)."""
    return _expect(source, Board, refusal, error, via)


def load_launch(source: str | Document, *,
                refusal: str = "{path}: expected a launch XML, found a "
                "{kind} XML",
                error: type[AcrnShmError] = UsageError,
                via: Callable[[str], Loaded] | None = None) -> Loaded:
    """Read a v2.x launch XML as :func:`load_scenario` reads a scenario
    (its ``model`` a :class:`~.syntax.LaunchConfig`)."""
    return _expect(source, LaunchConfig, refusal, error, via)
