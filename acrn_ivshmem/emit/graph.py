"""A picture of a scenario: its VMs and the IVSHMEM regions they share.

:func:`to_dot` turns a :class:`~acrn_ivshmem.model.syntax.Scenario` into
Graphviz DOT text; :func:`acrn_ivshmem.emit.graph_svg.to_svg` draws the same
picture as SVG in Python, so SVG needs no Graphviz; :func:`render` runs
Graphviz's ``dot`` on the DOT text to make PNG or PDF, and
:func:`write_graph` makes the format asked for and writes the file.

The picture, left to right: pre-launched VMs, the regions, then the
Service VM and the post-launched VMs. A VM's shape and fill say its
kind (pre-launched: box, orange; Service VM: 3-D box, green;
post-launched: ellipse, blue; unknown: dashed octagon, grey) and a thick
red border marks a real-time VM; the label repeats both in words
(``pre-launched, RT``). A region is a cylinder, yellow when the
hypervisor provides it and purple for the Device Model, labelled with
its name, size in MB, provider and region id. An edge joins each member
VM to its region and carries the member's VBDF (legacy scenarios have
none). A member naming no VM of the scenario gets a dashed red node of
its own. VMs in no region are drawn too.

Node ids are made up here (``vm0``, ``region0``, ``missing0``), never
taken from the file. Every piece of text from the file goes into an
HTML-like label (a borderless table, the first line bold; plain ``\\n``
lines let the underscores of ACRN names touch the next line): control
and format characters are shown as ``\\xNN``/``\\uNNNN``, long text is
cut, ``&``, ``<``, ``>`` and ``"`` become entities and ``\\`` is doubled
(Graphviz expands ``\\N``-style escapes even there), so no name can end
the label, add DOT attributes or HTML markup, use an escape or an
entity, or inject markup into the SVG. The text is the same for the
same scenario: document order throughout, no paths beyond the file's
base name, no time stamps.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import unicodedata
from typing import NamedTuple

from ..errors import GraphvizError, InputError, UsageError, located, quoted
from ..model import resolved
from ..model.resolved import resolve_region
from ..model.syntax import Region, Scenario, Vm, VmKind

__all__ = ["FORMATS", "MISSING_DOT", "SUFFIX2FORMAT", "format_for",
           "graph_data", "load_scenario", "render", "to_dot",
           "write_graph"]

#: Output formats: ``svg`` is drawn here and ``dot`` is the DOT text
#: itself (neither needs Graphviz); ``png`` and ``pdf`` need ``dot``.
FORMATS = ("svg", "png", "pdf", "dot")
#: Output file suffixes and the format each one means.
SUFFIX2FORMAT = {".svg": "svg", ".png": "png", ".pdf": "pdf",
                 ".dot": "dot", ".gv": "dot"}
#: The message when Graphviz's ``dot`` cannot be found.
MISSING_DOT = ("Graphviz's dot is not installed: apt-get install graphviz "
               "(or write SVG or the DOT text, -f svg or -f dot, which "
               "need no Graphviz)")
#: Seconds :func:`render` waits for ``dot``.
TIMEOUT = 60.0
#: Characters of file text kept in one label line.
MAX_TEXT = 40

_FONT = "DejaVu Sans"
_RT_BORDER = 'color="#c00000", penwidth=3'
_STD_BORDER = 'color="#404040", penwidth=1'
#: VM kind -> (DOT shape, style, fill colour).
_KIND2LOOK = {
    VmKind.PRE_LAUNCHED: ("box", "filled", "#fde0c5"),
    VmKind.SERVICE: ("box3d", "filled", "#d5ecd4"),
    VmKind.POST_LAUNCHED: ("ellipse", "filled", "#d6e6fb"),
    VmKind.UNKNOWN: ("octagon", '"filled,dashed"', "#eeeeee"),
}
#: Region provider (``Region.land``) -> fill colour.
_LAND2FILL = {"hv": "#fff2bf", "dm": "#e6d7ee", None: "#eeeeee"}


def to_dot(scenario: Scenario) -> str:
    """The scenario's VMs and regions as Graphviz DOT text (a ``graph``).

    Deterministic: the same scenario gives the same text. See the module
    docstring for what the picture shows and how file text is escaped.
    """
    lines = [
        "graph ivshmem {",
        f'  graph [rankdir=LR, ranksep=1.2, nodesep=0.35, '
        f'fontname="{_FONT}", fontsize=13, labelloc=t,',
        f"         label={_label(_title(scenario))}];",
        f'  node [fontname="{_FONT}", fontsize=11, margin="0.12,0.06"];',
        f'  edge [fontname="{_FONT}", fontsize=10, color="#404040"];',
    ]
    edges, missing = _edges(scenario)
    left = [f"vm{index}" for index, vm in enumerate(scenario.vms)
            if vm.kind is VmKind.PRE_LAUNCHED]
    right = [f"vm{index}" for index, vm in enumerate(scenario.vms)
             if vm.kind in (VmKind.SERVICE, VmKind.POST_LAUNCHED)]
    right += [node for node, _text in missing.values()]
    if left or right:
        # Graphviz stacks a column bottom-up in the order it first meets
        # the nodes: listing them last first puts the first on top.
        lines += ["", "  // columns: pre-launched VMs left, the others "
                  "right; last first"]
    if left:
        lines.append(f"  {{ rank=min; {'; '.join(reversed(left))}; }}")
    if right:
        lines.append(f"  {{ rank=max; {'; '.join(reversed(right))}; }}")
    lines += ["", "  // VMs, in document order"]
    for index, vm in enumerate(scenario.vms):
        shape, style, fill = _KIND2LOOK[vm.kind]
        border = _RT_BORDER if vm.rt else _STD_BORDER
        lines.append(
            f"  vm{index} [label={_label(_vm_lines(vm))}, shape={shape}, "
            f'style={style}, fillcolor="{fill}", {border}];')
    lines += ["", "  // IVSHMEM regions, in document order"]
    for index, region in enumerate(scenario.regions):
        lines.append(
            f"  region{index} [label={_label(_region_lines(region))}, "
            f'shape=cylinder, style=filled, '
            f'fillcolor="{_LAND2FILL[region.land]}", {_STD_BORDER}];')
    if missing:
        lines += ["", "  // members that name no VM of the scenario"]
        for node, text in missing.values():
            lines.append(
                f"  {node} [label={_label(text)}, shape=box, "
                'style="filled,dashed", fillcolor="white", color="#c00000", '
                'fontcolor="#c00000"];')
    if edges:
        lines += ["", "  // members: VM -- region, labelled with the VBDF"]
        lines += edges
    lines.append("}")
    return "\n".join(lines) + "\n"


def _title(scenario: Scenario) -> list[str]:
    # The base name only: the same file gives the same text anywhere.
    name = os.path.basename(scenario.path) or scenario.path
    version = "v2.x" if scenario.is_legacy else "v3.x"
    counts = (f"{len(scenario.vms)} VM(s), {len(scenario.regions)} "
              f"IVSHMEM region(s), ACRN {version} format")
    enabled = scenario.ivshmem_enabled
    if enabled is not None and enabled.text != "y":
        counts += f", IVSHMEM_ENABLED {_shown(enabled.text or '(empty)')}"
    return [_shown(name), counts]


def _vm_lines(vm: Vm) -> list[str]:
    # Name, id, and the kind in words.
    name = _shown(vm.name) if vm.name else "(unnamed)"
    id_text = _shown(vm.id_text) if vm.id_text is not None else "?"
    if vm.kind is VmKind.UNKNOWN:
        raw = (vm.vm_type or "").strip()
        kind = (f"unknown type {_shown(raw)}" if raw
                else "no load_order or vm_type")
    elif vm.kind is VmKind.SERVICE:
        kind = "Service VM, RT" if vm.rt else "Service VM"
    else:
        kind = f"{vm.kind.value}, {'RT' if vm.rt else 'standard'}"
    return [name, f"VM id {id_text}", kind]


def _region_lines(region: Region) -> list[str]:
    # Name, size and provider, region id; a note for a malformed one.
    facts = resolve_region(region)
    raw_name = region.name.text.strip() if region.name else ""
    name = _shown(raw_name) if raw_name else "(unnamed)"
    size_text = region.size.text if region.size else ""
    if facts.size_mb is not None:
        size = f"{facts.size_mb} MB"
    else:
        size = f"size {_shown(size_text)}?" if size_text else "size ?"
    land = facts.provider
    if land is None:
        provider = f"provider {_shown(region.provider.text.strip())}?"
    else:
        provider = f"provided by {land}"
    lines = [name, f"{size}, {provider}"]
    if region.region_id is not None:
        lines.append(f"region id {_shown(region.region_id.text)}")
    if region.malformed:
        lines.append("(malformed legacy string)")
    return lines


class Membership(NamedTuple):
    """One member of a region as the picture shows it: the region's
    index, the node id of its VM (``vmN``, or ``missingN`` for a
    reference to no VM of the scenario), the VBDF as shown ('' for none)
    and whether the VM is pre-launched (drawn on the left)."""

    region: int
    node: str
    vbdf: str
    left: bool


def memberships(scenario: Scenario
                ) -> tuple[list[Membership], dict[str, tuple[str, list[str]]]]:
    """Every membership in document order, and ref -> (node id, label
    lines) for members that name no VM of the scenario."""
    vm2node = {id(vm): f"vm{index}" for index, vm in enumerate(scenario.vms)}
    missing: dict[str, tuple[str, list[str]]] = {}
    found = []
    for index, region in enumerate(scenario.regions):
        for member in region.members:
            ref = member.vm.text.strip() if member.vm else ""
            vm = scenario.vm_for(ref) if ref else None
            if vm is not None:
                node = vm2node[id(vm)]
            else:
                if ref not in missing:
                    shown = (f"VM id {_shown(ref)}" if scenario.is_legacy
                             else _shown(ref))
                    text = [shown, "no such VM"] if ref else ["(no VM given)"]
                    missing[ref] = (f"missing{len(missing)}", text)
                node = missing[ref][0]
            vbdf = member.vbdf.text.strip() if member.vbdf else ""
            found.append(Membership(
                index, node, _shown(vbdf),
                vm is not None and vm.kind is VmKind.PRE_LAUNCHED))
    return found, missing


def _edges(scenario: Scenario) -> tuple[list[str], dict]:
    # The edge lines, and the members that name no VM. Pre-launched VMs
    # are the tail, so that they sit left.
    found, missing = memberships(scenario)
    edges = []
    for member in found:
        attrs = f" [label=<{_html(member.vbdf)}>]" if member.vbdf else ""
        if member.left:
            edges.append(f"  {member.node} -- region{member.region}{attrs};")
        else:
            edges.append(f"  region{member.region} -- {member.node}{attrs};")
    return edges, missing


def _shown(text: str, limit: int = MAX_TEXT) -> str:
    # One line of file text as it should read in a label or a message:
    # invisible and line-breaking characters made visible, long text cut.
    shown = "".join(_visible(char) for char in text)
    if len(shown) > limit:
        shown = shown[:limit - 3] + "..."
    return shown


def _visible(char: str) -> str:
    # Control, format (bidi overrides, zero-width), line and paragraph
    # separators and unassigned code points become escapes.
    if unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn",
                                          "Zl", "Zp"):
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _label(lines: list[str]) -> str:
    # An HTML-like label: a borderless table, one row a line, the first
    # line bold. Rows keep lines apart (plain ``\n`` lines touch).
    rows = "".join(f"<TR><TD>{'<B>' if number == 0 else ''}{_html(line)}"
                   f"{'</B>' if number == 0 else ''}</TD></TR>"
                   for number, line in enumerate(lines))
    return (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" '
            f'CELLPADDING="1">{rows}</TABLE>>')


def _html(text: str) -> str:
    # Text for an HTML-like label: markup characters as entities, and
    # ``\`` doubled because Graphviz still expands ``\N``-style escapes
    # in such text (``\\`` is one backslash).
    return (text.replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;")
            .replace("\\", "\\\\"))


def render(dot_text: str, fmt: str, timeout: float = TIMEOUT) -> bytes:
    """``dot_text`` as ``fmt`` (png, pdf; ``dot`` is the text itself).

    Runs Graphviz's ``dot -T<fmt>`` with the text on its standard input,
    waiting up to ``timeout`` seconds (default :data:`TIMEOUT`). Raises
    :class:`GraphvizError` with :data:`MISSING_DOT` when ``dot`` is not
    on ``PATH``, and a one-line message when it fails or times out;
    :class:`UsageError` for an unknown format and for ``svg``, which
    :func:`graph_data` draws without Graphviz.
    """
    _check_format(fmt)
    if fmt == "svg":
        raise UsageError("render() makes png and pdf; SVG is drawn by "
                         "graph_svg.to_svg")
    data = dot_text.encode("utf-8")
    if fmt == "dot":
        return data
    program = shutil.which("dot")
    if program is None:
        raise GraphvizError(MISSING_DOT)
    command = [program, f"-T{fmt}"]
    try:
        done = subprocess.run(command, input=data, capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise GraphvizError(
            f"dot -T{fmt} took longer than {timeout:g} s; stopped") from None
    except OSError as exc:
        raise GraphvizError(
            f"cannot run {program}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        how = (f"exit {done.returncode}" if done.returncode > 0
               else f"signal {-done.returncode}")
        reason = next((line.strip() for line in done.stderr.decode(
            "utf-8", "replace").splitlines() if line.strip()), "no message")
        raise GraphvizError(
            f"dot -T{fmt} failed ({how}): {_shown(reason, 200)}")
    return done.stdout


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"unknown graph format {quoted(fmt)}; choose "
                         + ", ".join(FORMATS))


def format_for(output_path: str, fmt: str | None = None) -> str:
    """The format to write: ``fmt`` if given, else from the suffix.

    ``.svg``, ``.png``, ``.pdf``, ``.dot`` and ``.gv`` are known (case
    does not matter); any other suffix without ``fmt`` is a UsageError.
    """
    if fmt is not None:
        _check_format(fmt)
        return fmt
    suffix = os.path.splitext(output_path)[1].lower()
    if suffix not in SUFFIX2FORMAT:
        raise UsageError(located(
            output_path, None, None,
            "cannot tell the graph format from the suffix; name it .svg, "
            ".png, .pdf or .dot, or give -f svg, png, pdf or dot"))
    return SUFFIX2FORMAT[suffix]


def load_scenario(scenario_path: str) -> Scenario:
    """Load ``scenario_path``; anything but a scenario is an InputError."""
    return resolved.load_scenario(scenario_path, error=InputError).model


def graph_data(scenario_path: str, fmt: str) -> bytes:
    """The graph of the scenario at ``scenario_path`` as ``fmt`` bytes."""
    _check_format(fmt)
    return _picture(load_scenario(scenario_path), fmt)


def _picture(scenario: Scenario, fmt: str) -> bytes:
    if fmt == "svg":
        from .graph_svg import to_svg

        return to_svg(scenario).encode("utf-8")
    return render(to_dot(scenario), fmt)


def write_graph(scenario_path: str, output_path: str,
                fmt: str | None = None) -> str:
    """Draw the scenario at ``scenario_path`` into ``output_path``.

    The format is ``fmt`` or comes from the output's suffix
    (:func:`format_for`); the return value is the format used. An
    output file is written with ``xmlio.save_output``; the scenario
    itself is never overwritten.
    Raises only :class:`~acrn_ivshmem.errors.AcrnShmError` subclasses,
    each a one-line message naming a file: UsageError (format, output
    is the scenario), InputError (scenario unreadable or not a
    scenario, output not writable), GraphvizError (PNG or PDF only:
    ``dot`` missing, failed or timed out; the message names the output
    file).
    """
    from ..io.xmlio import save_output

    fmt = format_for(output_path, fmt)
    if os.path.exists(output_path) and os.path.exists(scenario_path) \
            and os.path.samefile(output_path, scenario_path):
        raise UsageError(located(
            output_path, None, None,
            "is the scenario itself; give another output file"))
    scenario = load_scenario(scenario_path)
    try:
        data = _picture(scenario, fmt)
    except GraphvizError as exc:
        raise GraphvizError(located(output_path, None, None,
                                    str(exc))) from None
    save_output(output_path, data)
    return fmt
