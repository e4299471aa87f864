"""The scenario picture as SVG, drawn here: no Graphviz needed.

:func:`to_svg` shows what :func:`acrn_ivshmem.emit.graph.to_dot` describes,
laid out in three columns: pre-launched VMs on the left, the IVSHMEM
regions in the middle, the Service VM, the post-launched VMs, VMs of an
unknown kind and members that name no VM on the right, each column in
document order and centred on the tallest. Every node is a box (its
``<rect class="frame">``) holding its label lines, the first bold:
pre-launched VMs square, the Service VM with a double border,
post-launched VMs rounded, unknown ones dashed, real-time VMs with a
thick red border, regions as cylinders (yellow: hypervisor; purple:
Device Model), missing VMs dashed red. A line joins each member VM to
its region, and the member's VBDF is written beside the VM's end.

No two boxes overlap, whatever the number of VMs and regions: a
column's boxes are stacked one below the other, the columns are side by
side, and every box is as wide as its column's widest label (measured
in the monospaced font the SVG asks for, at :data:`CHAR_WIDTH` a
column, wide characters two). A VM's lines leave it at ports at least
:data:`PORT_GAP` apart, so the VBDFs written beside them do not overlap
either, and they sit in the gap between the columns, which is as wide as
the longest VBDF needs.

File text reaches the SVG only as the text of ``<text>`` elements and
of the document's ``<title>``: made visible and cut by
:func:`acrn_ivshmem.emit.graph._shown`, and with ``&``, ``<`` and ``>``
written as entities, so no name can add markup. Identifiers and
coordinates are made up here. The same scenario gives the same bytes.
"""

from __future__ import annotations

import unicodedata

from ..model.syntax import Scenario, VmKind
from .graph import (
    _KIND2LOOK,
    _LAND2FILL,
    _region_lines,
    _title,
    _vm_lines,
    memberships,
)

__all__ = [
    "CHAR_WIDTH",
    "FONT_SIZE",
    "LINE_HEIGHT",
    "PORT_GAP",
    "text_width",
    "to_svg",
]

#: Font size of labels, in px.
FONT_SIZE = 12
#: Width of one character column of the font at :data:`FONT_SIZE`
#: (DejaVu Sans Mono advances 0.602 em; a little more, to be safe).
CHAR_WIDTH = 7.4
#: Distance between baselines of label lines.
LINE_HEIGHT = 16
#: Least distance between two lines leaving one VM.
PORT_GAP = 20
#: Room around a label inside its box.
PAD_X, PAD_Y = 10, 8
#: Vertical distance between two boxes of a column.
BOX_GAP = 22
#: Least width of a box and of the gap between two columns.
MIN_BOX, MIN_GAP = 120, 150
#: Height of a region's top and bottom ellipse.
RIM = 7
MARGIN = 20
_FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"
_INK = "#404040"
_RED = "#c00000"


def text_width(text: str) -> float:
    """The width of ``text`` in the SVG's font: wide characters take two
    columns, combining marks none."""
    columns = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        columns += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return columns * CHAR_WIDTH


class _Box:
    # A node: its id, label lines, look, and where it ends up. ``shape``
    # is "box", "service", "post", "region" or "missing".
    def __init__(self, node: str, lines: list[str], shape: str,
                 fill: str, stroke: str = _INK, width: int = 1,
                 dashed: bool = False):
        self.node, self.lines, self.shape = node, lines, shape
        self.fill, self.stroke, self.stroke_width = fill, stroke, width
        self.dashed = dashed
        self.ports = 0
        self.x = self.y = self.width = self.height = 0.0


def _vm_box(index: int, vm) -> _Box:
    shape = {VmKind.SERVICE: "service",
             VmKind.POST_LAUNCHED: "post"}.get(vm.kind, "box")
    return _Box(f"vm{index}", _vm_lines(vm), shape, _KIND2LOOK[vm.kind][2],
                _RED if vm.rt else _INK, 3 if vm.rt else 1,
                vm.kind is VmKind.UNKNOWN)


def to_svg(scenario: Scenario) -> str:
    """The picture of ``scenario`` as SVG text (see the module doc)."""
    members, missing = memberships(scenario)
    left = [_vm_box(index, vm) for index, vm in enumerate(scenario.vms)
            if vm.kind is VmKind.PRE_LAUNCHED]
    right = [_vm_box(index, vm) for index, vm in enumerate(scenario.vms)
             if vm.kind is not VmKind.PRE_LAUNCHED]
    right += [_Box(node, text, "missing", "white", _RED, dashed=True)
              for node, text in missing.values()]
    middle = [_Box(f"region{index}", _region_lines(region), "region",
                   _LAND2FILL[region.land])
              for index, region in enumerate(scenario.regions)]
    boxes = {box.node: box for box in left + middle + right}
    for member in members:
        boxes[member.node].ports += 1
    title = _title(scenario)

    # Sizes: a column is as wide as its widest label; a VM is tall
    # enough for its label and for its ports.
    columns = [column for column in (left, middle, right) if column]
    for column in columns:
        width = max(MIN_BOX, max(
            text_width(line) + 2 * PAD_X
            for box in column for line in box.lines))
        for box in column:
            box.width = width
            box.height = len(box.lines) * LINE_HEIGHT + 2 * PAD_Y
            if box.shape == "region":
                box.height += 2 * RIM
            else:
                box.height = max(box.height, (box.ports + 1) * PORT_GAP)
    gap = max(MIN_GAP, max((text_width(member.vbdf) for member in members),
                           default=0) + 60)

    # Places: columns side by side, each centred on the tallest.
    top = MARGIN + len(title) * (LINE_HEIGHT + 4) + 12
    heights = [sum(box.height for box in column)
               + BOX_GAP * (len(column) - 1) for column in columns]
    tallest = max(heights, default=0)
    x = MARGIN
    for column, height in zip(columns, heights):
        y = top + (tallest - height) / 2
        for box in column:
            box.x, box.y = x, y
            y += box.height + BOX_GAP
        x += column[0].width + gap
    title_width = max(text_width(line) for line in title) + 2 * MARGIN
    width = max(x - gap + MARGIN, title_width)
    height = top + tallest + MARGIN

    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(width)}" '
         f'height="{_n(height)}" viewBox="0 0 {_n(width)} {_n(height)}" '
         f'font-family="{_FONT}" font-size="{FONT_SIZE}">'),
        f"<title>{_xml(title[0])}</title>",
        f'<rect width="{_n(width)}" height="{_n(height)}" fill="white"/>',
        '<g class="title" fill="black">',
    ]
    for number, line in enumerate(title):
        weight = ' font-weight="bold"' if number == 0 else ""
        out.append(f'<text x="{MARGIN}" '
                   f'y="{_n(MARGIN + 12 + number * (LINE_HEIGHT + 4))}"'
                   f'{weight}>{_xml(line)}</text>')
    out.append("</g>")
    out += _edges(members, boxes)
    for box in left + middle + right:
        out += _node(box)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _edges(members, boxes: dict[str, _Box]) -> list[str]:
    # The lines, then the VBDFs beside the VMs' ends. Each box hands out
    # its ports top to bottom in the order of the other ends' heights,
    # so that lines leaving one box do not cross each other.
    ends: dict[tuple[str, int], list] = {}
    for index, member in enumerate(members):
        vm, region = boxes[member.node], boxes[f"region{member.region}"]
        ends.setdefault((vm.node, 0), []).append((region, index))
        ends.setdefault((region.node, 1 if member.left else 2),
                        []).append((vm, index))
    port: dict[tuple[str, int], float] = {}
    for (node, _side), others in ends.items():
        box = boxes[node]
        others.sort(key=lambda other: (other[0].y + other[0].height / 2,
                                       other[1]))
        step = box.height / (len(others) + 1)
        for number, (_other, index) in enumerate(others, 1):
            port[node, index] = box.y + number * step
    lines, labels = ['<g class="edges" stroke="#404040" fill="none">'], []
    for index, member in enumerate(members):
        vm, region = boxes[member.node], boxes[f"region{member.region}"]
        vm_y, region_y = port[vm.node, index], port[region.node, index]
        if member.left:
            vm_x, region_x, anchor, shift = (
                vm.x + vm.width, region.x, "start", 6)
        else:
            vm_x, region_x, anchor, shift = (
                vm.x, region.x + region.width, "end", -6)
        lines.append(f'<line x1="{_n(vm_x)}" y1="{_n(vm_y)}" '
                     f'x2="{_n(region_x)}" y2="{_n(region_y)}"/>')
        if member.vbdf:
            labels.append(
                f'<text x="{_n(vm_x + shift)}" y="{_n(vm_y - 4)}" '
                f'text-anchor="{anchor}">{_xml(member.vbdf)}</text>')
    lines.append("</g>")
    if labels:
        lines.append('<g class="vbdfs" fill="#202020" stroke="white" '
                     'stroke-width="3" paint-order="stroke">')
        lines += labels + ["</g>"]
    return lines


def _node(box: _Box) -> list[str]:
    # The box's outline (and decoration), then its lines of text.
    corners = {"post": ' rx="12"',
               "region": f' rx="{_n(box.width / 2)}" ry="{RIM}"'}.get(
                   box.shape, "")
    dashes = ' stroke-dasharray="4 3"' if box.dashed else ""
    out = [f'<g class="node" id="{box.node}">',
           (f'<rect class="frame" x="{_n(box.x)}" y="{_n(box.y)}" '
            f'width="{_n(box.width)}" height="{_n(box.height)}"{corners} '
            f'fill="{box.fill}" stroke="{box.stroke}" '
            f'stroke-width="{box.stroke_width}"{dashes}/>')]
    if box.shape == "service":
        out.append(f'<rect x="{_n(box.x + 4)}" y="{_n(box.y + 4)}" '
                   f'width="{_n(box.width - 8)}" '
                   f'height="{_n(box.height - 8)}" fill="none" '
                   f'stroke="{box.stroke}"/>')
    if box.shape == "region":
        rim_y = box.y + RIM
        out.append(f'<path d="M {_n(box.x)} {_n(rim_y)} A {_n(box.width / 2)}'
                   f' {RIM} 0 0 0 {_n(box.x + box.width)} {_n(rim_y)}" '
                   f'fill="none" stroke="{box.stroke}"/>')
    text_fill = _RED if box.shape == "missing" else "black"
    first = box.y + (box.height - len(box.lines) * LINE_HEIGHT) / 2 + 12
    for number, line in enumerate(box.lines):
        weight = ' font-weight="bold"' if number == 0 else ""
        out.append(f'<text x="{_n(box.x + box.width / 2)}" '
                   f'y="{_n(first + number * LINE_HEIGHT)}" '
                   f'text-anchor="middle" fill="{text_fill}"{weight}>'
                   f"{_xml(line)}</text>")
    out.append("</g>")
    return out


def _n(value: float) -> str:
    # Coordinates to a tenth, the same text for the same value.
    text = f"{value:.1f}"
    return text.removesuffix(".0")


def _xml(text: str) -> str:
    # Text content: markup characters as entities.
    return (text.replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;"))

