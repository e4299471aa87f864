"""One rule engine: rules run through ``lint/engine.run_rules`` only.

:func:`rule_runs` reads a module's source (``ast``) and reports every
call of a rule's ``check()``: on a variable of a loop (or comprehension)
over the registry (``RULES``, ``MODULES``), on ``RULES[...]`` or
``get(...)``, or on a rule module imported by name. The package test
runs it on every module but the engine; the others show what it finds.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from acrn_ivshmem.diagnostics import Finding, Loc
from acrn_ivshmem.lint.config import LintConfig
from acrn_ivshmem.lint.engine import run_rules
from acrn_ivshmem.model.syntax import Suppression

PACKAGE = Path(__file__).resolve().parent.parent / "acrn_ivshmem"
ENGINE = "lint/engine.py"
REGISTRY = {"RULES", "MODULES"}


def _rule_modules() -> set[str]:
    return {path.stem for path in (PACKAGE / "rules").glob("*.py")}


def _names(node: ast.AST) -> set[str]:
    """Every name and attribute name used in ``node``."""
    found = set()
    for inner in ast.walk(node):
        if isinstance(inner, ast.Name):
            found.add(inner.id)
        elif isinstance(inner, ast.Attribute):
            found.add(inner.attr)
    return found


def _from_rules(node: ast.ImportFrom, relative: str) -> bool:
    """Whether ``node`` imports from the rules package (or below it)."""
    if node.level == 0:
        module = node.module or ""
        return module.startswith("acrn_ivshmem.rules")
    here = ["acrn_ivshmem", *relative.split("/")[:-1]]
    base = here[:len(here) - node.level + 1]
    module = ".".join([*base, *(node.module or "").split(".")]).strip(".")
    return module.startswith("acrn_ivshmem.rules")


def rule_runs(source: str, relative: str) -> list[tuple[int, str]]:
    """(line, text) of each place ``source`` runs a rule's ``check()``."""
    tree = ast.parse(source)
    modules = _rule_modules()
    rule_names: set[str] = set()  # names bound to a rule module
    check_names: set[str] = set()  # names bound to a rule's check
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _from_rules(node, relative):
            for alias in node.names:
                bound = alias.asname or alias.name
                if alias.name in modules:
                    rule_names.add(bound)
                elif alias.name == "check":
                    check_names.add(bound)
    # Loop variables over the registry.
    for node in ast.walk(tree):
        loops = []
        if isinstance(node, (ast.For, ast.AsyncFor)):
            loops.append((node.target, node.iter))
        elif isinstance(node, ast.comprehension):
            loops.append((node.target, node.iter))
        for target, iterable in loops:
            if _names(iterable) & REGISTRY:
                rule_names |= _names(target)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in check_names:
            found.append((node.lineno, ast.unparse(func)))
        if not (isinstance(func, ast.Attribute) and func.attr == "check"):
            continue
        owner = func.value
        if ((isinstance(owner, ast.Name) and owner.id in rule_names)
                or (isinstance(owner, ast.Subscript)
                    and _names(owner.value) & REGISTRY)
                or (isinstance(owner, ast.Call)
                    and isinstance(owner.func, (ast.Name, ast.Attribute))
                    and _names(owner.func) & {"get"})):
            found.append((node.lineno, ast.unparse(func)))
    return sorted(found)


def test_rules_run_only_in_the_engine():
    """No module but lint/engine.py runs a rule's check()."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == ENGINE or relative.startswith("rules/"):
            continue
        found += [(relative, *run) for run in
                  rule_runs(path.read_text(encoding="utf-8"), relative)]
    assert found == []


def test_the_engine_runs_the_rules():
    """The scan finds the engine's own loop (so it can find others)."""
    source = (PACKAGE / ENGINE).read_text(encoding="utf-8")
    assert [text for _line, text in rule_runs(source, ENGINE)] == [
        "rule.check"]


@pytest.mark.parametrize("source, expected", [
    ("from ..rules import RULES\n"
     "for code, rule in RULES.items():\n"
     "    list(rule.check(model, None))\n", [(3, "rule.check")]),
    ("from ..rules import RULES\n"
     "x = [f for r in RULES.values() if r.TARGET == 's'\n"
     "     for f in r.check(m, b)]\n", [(3, "r.check")]),
    ("from ..rules import RULES\n"
     "list(RULES['ISM201'].check(m, b))\n", [(2, "RULES['ISM201'].check")]),
    ("from .. import rules\n"
     "list(rules.get('ISM201').check(m, b))\n",
     [(2, "rules.get('ISM201').check")]),
    ("from ..rules import region_size\n"
     "list(region_size.check(m, b))\n", [(2, "region_size.check")]),
    ("from ..rules.region_size import check as size_check\n"
     "list(size_check(m, b))\n", [(2, "size_check")]),
    # Reading the registry is no run; other check() calls are not rules'.
    ("from ..rules import RULES\n"
     "names = [rule.NAME for rule in RULES.values()]\n"
     "schema.check(document)\n", []),
])
def test_what_the_scan_finds(source, expected):
    assert rule_runs(source, "emit/launch.py") == expected


def test_run_rules_stamps_found_findings():
    """Findings of other checks: selected, suppressed and stamped with
    the configured severity, with their fixes, in the order found."""
    config = LintConfig(ignore=("ISM202",),
                        severity=(("ISM501", "warning"),))
    inside = Suppression(frozenset({"ISM201"}), Loc(3, 1), Loc(5, 1),
                         Loc(2, 1))
    checked = run_rules(config, "s.xml", found=[
        ("ISM501", Finding(Loc(9, 2), "clash", "move it")),
        ("ISM201", Finding(Loc(4, 7), "size")),
        ("ISM201", Finding(Loc(6, 7), "size")),
        ("ISM202", Finding(Loc(1, 1), "count")),
    ], suppressions=(inside,))
    assert [(d.line, d.column, d.code, d.severity, d.message, d.hint)
            for d in checked.diagnostics] == [
        (9, 2, "ISM501", "warning", "clash", "move it"),
        (6, 7, "ISM201", "error", "size", "")]
    assert checked.fixes == []


def test_run_rules_keeps_the_asked_severities():
    """``severities``: rules at other configured severities do not run
    (ISM106, a warning, made an error here, runs; ISM002, info, not)."""
    from acrn_ivshmem.model.loader import load

    scenario = load(str(PACKAGE.parent / "tests" / "test_rules"
                        / "ISM106_fail.xml")).model
    config = LintConfig(severity=(("ISM106", "error"),))
    every = run_rules(config, "s.xml", "scenario", (scenario, None))
    errors = run_rules(config, "s.xml", "scenario", (scenario, None),
                       severities=("error",))
    assert sorted({(d.code, d.severity) for d in every.diagnostics}) == [
        ("ISM002", "info"), ("ISM106", "error")]
    assert [(d.code, d.severity) for d in errors.diagnostics] == [
        ("ISM106", "error")]
