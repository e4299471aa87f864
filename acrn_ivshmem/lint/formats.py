"""Output formats for lint results: small pure functions chosen by name.

Each takes the diagnostics and the number of files linted (and, as a
keyword, whether unsafe fixes were asked for) and returns the text to
print (ending with a newline, or empty). A diagnostic's fix class is in
JSON (``"fix"``) and SARIF (``properties.fix``); text says how many
unsafe fixes ``--unsafe-fixes`` would add.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from .. import __version__
from ..diagnostics import SAFE, UNSAFE, Diagnostic
from ..errors import escaped
from ..rules import RULES, summary
from . import rule_docs

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def text(diagnostics: Sequence[Diagnostic], files: int,
         unsafe_fixes: bool = False, fix_summary: bool = True) -> str:
    """``path:line:col: CODE [severity] message``, a hint line, a summary.

    Control characters in messages and hints (input text they quote)
    are escaped, so that each stays on its line. When some fixes are
    unsafe and ``unsafe_fixes`` is off, a last line counts them:
    ``S fixable with --fix, U more with --unsafe-fixes``; commands that
    quote lint's findings but take no ``--fix`` pass ``fix_summary``
    False to leave that line out.
    """
    lines = []
    for d in diagnostics:
        lines.append(f"{d.path}:{d.line}:{d.column}: {d.code} "
                     f"[{d.severity}] {escaped(d.message)}")
        if d.hint:
            lines.append(f"    hint: {escaped(d.hint)}")
    counts = Counter(d.severity for d in diagnostics)
    noun = "file" if files == 1 else "files"
    if diagnostics:
        parts = [f"{counts[level]} {level}{'s' if counts[level] != 1 else ''}"
                 for level in ("error", "warning", "info") if counts[level]]
        lines.append(f"{', '.join(parts)} in {files} {noun}")
    else:
        lines.append(f"no problems in {files} {noun}")
    fixes = Counter(d.fix for d in diagnostics)
    if fixes[UNSAFE] and not unsafe_fixes and fix_summary:
        lines.append(
            (f"{fixes[SAFE]} fixable with --fix, {fixes[UNSAFE]} more"
             if fixes[SAFE] else f"{fixes[UNSAFE]} fixable only")
            + " with --unsafe-fixes")
    return "\n".join(lines) + "\n"


def json_(diagnostics: Sequence[Diagnostic], files: int,
          unsafe_fixes: bool = False) -> str:
    """A JSON array of objects with exactly the diagnostic keys."""
    import json  # here: the text format, the usual one, needs none

    return json.dumps([d.as_dict() for d in diagnostics], indent=2) + "\n"


def sarif(diagnostics: Sequence[Diagnostic], files: int,
          unsafe_fixes: bool = False) -> str:
    """A SARIF 2.1.0 log for code-scanning tools."""
    import json

    from . import rule_docs

    codes = sorted(RULES)
    index = {code: i for i, code in enumerate(codes)}
    rules = [{
        "id": code,
        "name": RULES[code].NAME,
        "shortDescription": {"text": summary(RULES[code])},
        "fullDescription": {"text": (RULES[code].__doc__ or "").strip()},
        "help": {"text": rule_docs.text(RULES[code]),
                 "markdown": rule_docs.markdown(RULES[code])},
        "defaultConfiguration": {
            "level": _SARIF_LEVEL[RULES[code].SEVERITY]},
    } for code in codes]
    results = []
    for d in diagnostics:
        message = d.message + (f" (hint: {d.hint})" if d.hint else "")
        result: dict[str, object] = {
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": _SARIF_LEVEL[d.severity],
            "message": {"text": message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": d.path.replace("\\", "/")},
                "region": {"startLine": d.line, "startColumn": d.column},
            }}],
        }
        if d.fix:
            result["properties"] = {"fix": d.fix}
        results.append(result)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "acrn-shm",
                "version": __version__,
                "informationUri": "https://pypi.org/project/acrn-shm/",
                "rules": rules,
            }},
            "results": results,
        }],
    }
    return json.dumps(log, indent=2) + "\n"


def github(diagnostics: Sequence[Diagnostic], files: int,
           unsafe_fixes: bool = False) -> str:
    """GitHub Actions workflow commands: one annotation per diagnostic."""
    lines = []
    for d in diagnostics:
        title = f"{d.code} {RULES[d.code].NAME}"
        body = d.message + (f"\nhint: {d.hint}" if d.hint else "")
        lines.append(
            f"::{_GITHUB_LEVEL[d.severity]} file={_property(d.path)},"
            f"line={d.line},col={d.column},title={_property(title)}::"
            f"{_data(body)}")
    return "\n".join(lines) + "\n" if lines else ""


def _data(value: str) -> str:
    return (value.replace("%", "%25").replace("\r", "%0D")
            .replace("\n", "%0A"))


def _property(value: str) -> str:
    return _data(value).replace(":", "%3A").replace(",", "%2C")


FORMATS: dict[str, Callable[..., str]] = {
    "text": text,
    "json": json_,
    "sarif": sarif,
    "github": github,
}
