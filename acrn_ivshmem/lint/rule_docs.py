"""Rule documentation, from the one source: each rule module's docstring.

``acrn-shm explain CODE`` prints :func:`text`; the pages under
``docs/rules/`` are :func:`markdown` of each rule and :func:`index` of
all of them, written by ``python -m acrn_ivshmem.lint.rule_docs docs/rules``.
A test keeps the committed pages equal to what this module writes.

A rule docstring is a first line ``CODE name: summary``, then sections:
a heading at the left margin followed by lines indented four spaces.
Sections whose heading starts with ``Example`` or ``Use instead`` hold
a snippet, shown as code; the others hold prose.
"""

from __future__ import annotations

import os
import sys
import textwrap
from types import ModuleType

__all__ = ["index", "markdown", "page_name", "sections", "text",
           "write_pages"]

_SNIPPET_HEADINGS = ("Example", "Use instead")


def text(rule: ModuleType) -> str:
    """The plain text ``acrn-shm explain`` prints for ``rule``."""
    doc = (rule.__doc__ or "").strip()
    return f"{doc}\n\nDefault severity: {rule.SEVERITY}\n"


def sections(rule: ModuleType) -> list[tuple[str, str]]:
    """The docstring's sections after the first line: (heading, body).

    Bodies are dedented and keep their line breaks.
    """
    lines = (rule.__doc__ or "").strip().splitlines()[1:]
    found: list[tuple[str, list[str]]] = []
    for line in lines:
        if line and not line[0].isspace():
            found.append((line.strip(), []))
        elif found:
            found[-1][1].append(line)
    return [(heading, textwrap.dedent("\n".join(body)).strip("\n"))
            for heading, body in found]


def page_name(rule: ModuleType) -> str:
    """The file name of the rule's page, e.g. ``ISM201.md``."""
    return f"{rule.CODE}.md"


def markdown(rule: ModuleType) -> str:
    """The rule's documentation page in Markdown."""
    from ..rules import summary

    out = [f"# {rule.CODE} {rule.NAME}", "", _sentence(summary(rule)), "",
           f"Default severity: **{rule.SEVERITY}**. "
           f"Checks: {_target(rule)}.", ""]
    for heading, body in sections(rule):
        out += [f"## {heading}", ""]
        if heading.startswith(_SNIPPET_HEADINGS):
            language = "xml" if body.lstrip().startswith("<") else "text"
            out += [f"```{language}", body, "```", ""]
        else:
            out += [_prose(" ".join(body.split())), ""]
    out += ["Print this page with `acrn-shm explain "
            f"{rule.CODE}`; silence the rule with `--ignore {rule.CODE}`.",
            ""]
    return "\n".join(out)


def index() -> str:
    """The Markdown list of every rule, linking to each page."""
    from ..rules import RULES, summary

    out = ["# acrn-shm rules", "",
           "Generated from the rule modules' docstrings by "
           "`python -m acrn_ivshmem.lint.rule_docs docs/rules`; "
           "`acrn-shm explain CODE` prints the same text.", "",
           "| Code | Name | Severity | What it checks |",
           "|---|---|---|---|"]
    for code, rule in RULES.items():
        out.append(f"| [{code}]({page_name(rule)}) | {rule.NAME} | "
                   f"{rule.SEVERITY} | "
                   f"{_sentence(summary(rule)).replace('|', '&#124;')} |")
    out += ["", "The ISM9xx codes are ACRN's own checks. They run only with "
            "`acrn-shm lint --acrn-schema`, which reads the schemas of the "
            "ACRN source tree named by `--acrn-src DIR` (or `ACRN_SRC`) and "
            "reports what that tree's `validator.py` would, at lines of "
            "your file: ISM901 for what ACRN calls a syntax error, ISM902 "
            "and ISM903 for its data checks of severity error and warning, "
            "ISM904 for a data check acrn-shm could not evaluate. Like "
            "every code, they are stable and never reused."]
    return "\n".join(out) + "\n"


def write_pages(folder: str) -> list[str]:
    """Write ``README.md`` and one page per rule into ``folder``.

    Pages of rules that no longer exist are removed. Returns the names
    written, sorted.
    """
    from ..rules import RULES

    os.makedirs(folder, exist_ok=True)
    pages = {page_name(rule): markdown(rule) for rule in RULES.values()}
    pages["README.md"] = index()
    for name in os.listdir(folder):
        if name.endswith(".md") and name not in pages:
            os.unlink(os.path.join(folder, name))
    for name, content in pages.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8",
                  newline="\n") as stream:
            stream.write(content)
    return sorted(pages)


def _prose(line: str) -> str:
    # reStructuredText literals (``x``) become Markdown code (`x`).
    return line.replace("``", "`")


def _sentence(line: str) -> str:
    line = _prose(line)
    return line[:1].upper() + line[1:]


def _target(rule: ModuleType) -> str:
    what = {"scenario": "scenario XMLs", "launch": "v2.x launch XMLs",
            "document": "every XML", "script": "launch scripts "
            "(acrn-shm check-launch)",
            "acrn": "scenario XMLs with lint --acrn-schema and an ACRN "
            "source tree"}[rule.TARGET]
    return what + (", with the board XML" if rule.NEEDS_BOARD else "")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m acrn_ivshmem.lint.rule_docs FOLDER")
    written = write_pages(sys.argv[1])
    print(f"wrote {len(written)} pages to {sys.argv[1]}")
