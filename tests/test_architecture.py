"""The layers of acrn_ivshmem, and a check that imports follow them.

:data:`LAYERS` is the one description of the architecture: the picture
in ``docs/architecture.md`` is drawn from it (``python
tests/test_architecture.py`` rewrites it; a test keeps it current), and
:func:`violations` reads every module's imports (``ast``, imports inside
functions and under ``TYPE_CHECKING`` included) and reports each one
that runs against it:

* a layer imports only layers on a lower floor, or itself (two layers on
  one floor, such as ``edit`` and ``upgrade``, do not import each other);
* the configuration side and the runtime side never import each other;
  both may import the shared floor; ``host`` puts a configuration to
  work, so it may import both; the applications on top may import all.

A module in no layer is reported too, so that a new file gets a place.
"""

from __future__ import annotations

import ast
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
PACKAGE = PROJECT / "acrn_ivshmem"
DOC = PROJECT / "docs" / "architecture.md"

SHARED = "shared"
CONFIG = "configuration"
RUNTIME = "runtime"
HOST = "host"
APP = "application"

#: The sides each side may import (besides itself).
MAY_IMPORT = {
    SHARED: {SHARED},
    CONFIG: {SHARED, CONFIG},
    RUNTIME: {SHARED, RUNTIME},
    HOST: {SHARED, CONFIG, RUNTIME, HOST},
    APP: {SHARED, CONFIG, RUNTIME, HOST, APP},
}


@dataclass(frozen=True)
class Layer:
    """One layer: its files (paths in the package; a folder ends with
    ``/``), its side, its floor (higher floors import lower ones) and
    what it holds."""

    name: str
    side: str
    floor: int
    files: tuple[str, ...]
    holds: str


LAYERS = (
    Layer("base", SHARED, 0,
          ("__init__.py", "errors.py", "diagnostics.py", "record.py",
           "units.py", "shm.py"),
          "the error family, Diagnostic/Finding/TextFix, sizes, "
          "shared-memory facts of a Linux host"),
    Layer("io", CONFIG, 1, ("io/",),
          "safe XML parsing with positions, special files, locked "
          "atomic writes, the one byte-range text editor"),
    Layer("model", CONFIG, 2, ("model/",),
          "the syntax model, its resolved facts (model/resolved.py) and "
          "their loaders; launch script readers"),
    Layer("plan", CONFIG, 3, ("plan/",),
          "acrn-dm and QEMU device plans, used by rules and emitters"),
    Layer("rules", CONFIG, 4, ("rules/",),
          "one module per lint rule, an explicit registry"),
    Layer("lint", CONFIG, 5, ("lint/",),
          "the engine, settings, structure check, formats, fixes, "
          "rule docs"),
    Layer("edit", CONFIG, 6, ("edit/",),
          "region edits that keep the file's bytes; the edit gate"),
    Layer("upgrade", CONFIG, 6, ("upgrade/",),
          "legacy scenarios and launch XMLs to v3"),
    Layer("emit", CONFIG, 7, ("emit/",),
          "launch scripts and their drift check, graph, libvirt XML"),
    Layer("build", CONFIG, 7, ("build/",),
          "the ACRN hypervisor built for a scenario"),
    Layer("guest", RUNTIME, 1, ("guest.py",),
          "the stand-alone guest tool (python3 -m acrn_ivshmem.guest)"),
    Layer("runtime", RUNTIME, 1, ("runtime/",),
          "the ivshmem server, its memory, a checked client"),
    Layer("channel", RUNTIME, 2, ("channel/",),
          "message rings and doorbells on a region"),
    Layer("host", HOST, 8, ("host/",),
          "QEMU guests on a region (qemu-try), host preparation"),
    Layer("lsp", APP, 9, ("lsp/",), "the language server"),
    Layer("cli", APP, 10, ("cli/", "__main__.py"),
          "the acrn-shm command"),
)


def layer_of(relative: str, layers=LAYERS) -> Layer | None:
    """The layer holding the file at ``relative`` (a POSIX path in the
    package), or None."""
    for layer in layers:
        for entry in layer.files:
            if (relative == entry if not entry.endswith("/")
                    else relative.startswith(entry)):
                return layer
    return None


def module_name(relative: str) -> str:
    """``lint/engine.py`` -> ``acrn_ivshmem.lint.engine``."""
    parts = ["acrn_ivshmem", *relative[:-3].split("/")]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _file_of(module: str, package: Path) -> str | None:
    """The package-relative file of an ``acrn_ivshmem`` module."""
    parts = module.split(".")[1:]
    if not parts:
        return "__init__.py"
    base = package.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return "/".join(parts) + ".py"
    if (base / "__init__.py").is_file():
        return "/".join(parts) + "/__init__.py"
    return None


def imports(relative: str, package: Path) -> list[tuple[int, str]]:
    """(line, package-relative file) of each acrn_ivshmem module that
    the file at ``relative`` imports."""
    source = (package / relative).read_text(encoding="utf-8")
    here = module_name(relative).split(".")
    if not relative.endswith("__init__.py"):
        here = here[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module
                                        else []))
            else:
                stem = node.module or ""
            # "from . import x": x may be a module of its own.
            targets = [f"{stem}.{alias.name}"
                       if _file_of(f"{stem}.{alias.name}", package)
                       else stem for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] != "acrn_ivshmem":
                continue
            file = _file_of(target, package)
            if file is not None and (node.lineno, file) not in found:
                found.append((node.lineno, file))
    return found


def violations(package: Path = PACKAGE, layers=LAYERS) -> list[str]:
    """Every import against the layers, and every file in no layer, as
    ``file:line: problem`` lines."""
    problems = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        layer = layer_of(relative, layers)
        if layer is None:
            problems.append(f"{relative}: in no layer (add it to LAYERS "
                            "in tests/test_architecture.py)")
            continue
        for line, target in imports(relative, package):
            other = layer_of(target, layers)
            if other is None or other is layer:
                continue
            if other.side not in MAY_IMPORT[layer.side]:
                problems.append(
                    f"{relative}:{line}: {layer.side} layer {layer.name} "
                    f"imports {target} ({other.side} layer {other.name})")
            elif other.floor >= layer.floor:
                problems.append(
                    f"{relative}:{line}: {layer.name} (floor "
                    f"{layer.floor}) imports {target} ({other.name}, "
                    f"floor {other.floor})")
    return problems


# --------------------------------------------------------------------------
# The picture


_BEGIN = "<!-- layers: drawn by tests/test_architecture.py -->"
_END = "<!-- end of layers -->"


def picture(layers=LAYERS) -> str:
    """The floors, top first, configuration side left, runtime right."""
    width = 36
    lines = [f"    {CONFIG + ' side':<{width}}| {RUNTIME} side"]
    for floor in sorted({layer.floor for layer in layers}, reverse=True):
        here = [layer for layer in layers if layer.floor == floor]

        def names(sides):
            return "  ".join(
                layer.files[0] if len(layer.files) == 1 else
                f"{layer.name} ({', '.join(layer.files)})"
                for layer in here if layer.side in sides)

        left = names({CONFIG})
        right = names({RUNTIME})
        across = names({SHARED, HOST, APP})
        if across:
            side = next(layer.side for layer in here
                        if layer.side in {SHARED, HOST, APP})
            lines.append(f"{floor:>2}  {across}   [{side}]")
        if left or right:
            lines.append(f"{floor:>2}  {left:<{width}}| {right}".rstrip())
    return "\n".join(lines)


def table(layers=LAYERS) -> str:
    """The layers as a Markdown table, floor by floor."""
    rows = ["| floor | layer | side | files | holds |",
            "| ---: | --- | --- | --- | --- |"]
    for layer in sorted(layers, key=lambda layer: (layer.floor,
                                                   layer.side)):
        files = ", ".join(f"`{name}`" for name in layer.files)
        rows.append(f"| {layer.floor} | {layer.name} | {layer.side} | "
                    f"{files} | {layer.holds} |")
    return "\n".join(rows)


def drawn(layers=LAYERS) -> str:
    """The generated part of docs/architecture.md."""
    return (f"{_BEGIN}\n\n```text\n{picture(layers)}\n```\n\n"
            f"{table(layers)}\n\n{_END}")


def _current_drawing(text: str) -> str:
    match = re.search(re.escape(_BEGIN) + ".*?" + re.escape(_END), text,
                      re.DOTALL)
    assert match, f"{DOC}: no {_BEGIN} ... {_END} section"
    return match.group(0)


# --------------------------------------------------------------------------
# Tests


def test_imports_follow_the_layers():
    assert violations() == []


def test_every_layer_has_its_files():
    for layer in LAYERS:
        for entry in layer.files:
            assert (PACKAGE / entry).exists(), (layer.name, entry)


def test_the_sides_stay_apart_in_the_table():
    assert {layer.side for layer in LAYERS} == set(MAY_IMPORT)
    for side, allowed in MAY_IMPORT.items():
        assert SHARED in allowed and side in allowed
    assert CONFIG not in MAY_IMPORT[RUNTIME]
    assert RUNTIME not in MAY_IMPORT[CONFIG]


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "acrn_ivshmem"
    shutil.copytree(PACKAGE, copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.mark.parametrize("file, planted, problem", [
    # A lower layer importing a higher one.
    ("model/loader.py", "from ..lint.engine import Linter",
     "model (floor 2) imports lint/engine.py (lint, floor 5)"),
    # Two layers on one floor.
    ("edit/regions.py", "from ..upgrade import scenario",
     "edit (floor 6) imports upgrade/scenario.py (upgrade, floor 6)"),
    # Configuration importing runtime, inside a function (as the QEMU
    # planner once imported the server's constants).
    ("plan/qemu.py", "def _late():\n    from ..runtime import "
     "ivshmem_server",
     "configuration layer plan imports runtime/ivshmem_server.py "
     "(runtime layer runtime)"),
    # Runtime importing configuration, by an absolute name.
    ("channel/region.py", "import acrn_ivshmem.model.syntax",
     "runtime layer channel imports model/syntax.py (configuration "
     "layer model)"),
])
def test_a_planted_bad_import_fails(tmp_path, file, planted, problem):
    target = _copy(tmp_path) / file
    text = target.read_text(encoding="utf-8") + planted + "\n"
    target.write_text(text, encoding="utf-8")
    line = len(text.splitlines())
    assert violations(tmp_path / "acrn_ivshmem") == [
        f"{file}:{line}: {problem}"]


def test_a_module_in_no_layer_fails(tmp_path):
    copy = _copy(tmp_path)
    (copy / "loose.py").write_text('"""A new module."""\n')
    assert violations(copy) == [
        "loose.py: in no layer (add it to LAYERS in "
        "tests/test_architecture.py)"]


def test_the_picture_in_the_docs_is_drawn_from_the_table():
    text = DOC.read_text(encoding="utf-8")
    assert _current_drawing(text) == drawn(), (
        "run: python tests/test_architecture.py")


def test_the_picture_changes_with_the_table():
    moved = tuple(Layer(layer.name, layer.side, 11, layer.files,
                        layer.holds) if layer.name == "lsp" else layer
                  for layer in LAYERS)
    assert drawn(moved) != drawn()
    assert picture(moved).splitlines()[1] == "11  lsp/   [application]"


if __name__ == "__main__":
    text = DOC.read_text(encoding="utf-8")
    DOC.write_text(text.replace(_current_drawing(text), drawn()),
                   encoding="utf-8")
    sys.exit(0)
