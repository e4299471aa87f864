"""Lint settings: ``[tool.acrn-shm]`` in pyproject.toml plus the CLI.

Keys: ``select`` and ``ignore`` (lists of codes or code prefixes such as
``"ISM3"``; ``"ALL"`` selects everything) and ``severity`` (a table of
code to ``error``/``warning``/``info``). Unknown keys, codes and values
are refused before any linting runs.
"""

from __future__ import annotations

import os
import sys

from ..diagnostics import SEVERITIES
from ..errors import UsageError, quoted, shortened
from ..io.xmlio import read_input
from ..record import frozen
from ..rules import RULES

KEYS = ("select", "ignore", "severity")

#: Largest configuration file read, in bytes.
MAX_CONFIG_BYTES = 4 * 1024 * 1024


@frozen
class LintConfig:
    """What to report and how severe it is.

    ``select``/``ignore`` hold codes or prefixes; ``severity`` maps a code
    to its configured severity; ``source`` names where it came from.
    """

    select: tuple[str, ...] = ("ALL",)
    ignore: tuple[str, ...] = ()
    severity: tuple[tuple[str, str], ...] = ()
    source: str = "defaults"
    use_cache: bool = True
    #: The ACRN source tree whose schemas ``lint --acrn-schema`` reads
    #: (ISM901-ISM904); None runs acrn-shm's own rules only.
    acrn_src: str | None = None

    def enabled(self, code: str) -> bool:
        """True when ``code`` is selected and not ignored."""
        def matches(patterns):
            return any(p == "ALL" or code.startswith(p) for p in patterns)
        return matches(self.select) and not matches(self.ignore)

    def severity_of(self, code: str) -> str:
        """The configured severity of ``code`` (else the rule's default)."""
        for configured_code, level in self.severity:
            if configured_code == code:
                return level
        return RULES[code].SEVERITY


def parse_codes(values, origin: str) -> tuple[str, ...]:
    """Normalise a list or comma-separated string of codes and prefixes."""
    if isinstance(values, str):
        values = values.split(",")
    if not isinstance(values, (list, tuple)):
        raise UsageError(f"{origin}: expected a list of rule codes")
    codes = []
    for value in values:
        if not isinstance(value, str):
            raise UsageError(f"{origin}: rule code {shortened(repr(value))} "
                             "is not text")
        code = value.strip().upper()
        if not code:
            continue
        if code != "ALL" and not any(c.startswith(code) for c in RULES):
            raise UsageError(
                f"{origin}: unknown rule code {quoted(value.strip())}; see "
                f"'acrn-shm rules'")
        codes.append(code)
    return tuple(codes)


def find_pyproject(start: str) -> str | None:
    """The nearest pyproject.toml at or above ``start`` with our table."""
    folder = os.path.abspath(start)
    while True:
        candidate = os.path.join(folder, "pyproject.toml")
        if (os.path.isfile(candidate) and b"tool.acrn-shm"
                in read_input(candidate, MAX_CONFIG_BYTES)):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def load_config(path: str | None, start: str = ".") -> LintConfig:
    """Read ``[tool.acrn-shm]`` from ``path`` or the nearest pyproject."""
    if path is None:
        path = find_pyproject(start)
        if path is None:
            return LintConfig()
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    data = read_input(path, MAX_CONFIG_BYTES)
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: not UTF-8 at byte "
                         f"{exc.start}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    table = document.get("tool", {}).get("acrn-shm", {})
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.acrn-shm] must be a table")
    origin = f"{path}: [tool.acrn-shm]"
    for key in table:
        if key not in KEYS:
            raise UsageError(
                f"{origin}: unknown key {quoted(key)}; known keys: "
                + ", ".join(KEYS))
    severity = table.get("severity", {})
    if not isinstance(severity, dict):
        raise UsageError(f"{origin} severity: expected a table")
    levels = []
    for code, level in severity.items():
        if code.upper() not in RULES:
            raise UsageError(
                f"{origin} severity: unknown rule code {quoted(code)}")
        if level not in SEVERITIES:
            raise UsageError(
                f"{origin} severity: {quoted(level)} for {code} is not one of "
                + ", ".join(SEVERITIES))
        levels.append((code.upper(), level))
    return LintConfig(
        select=parse_codes(table.get("select", ["ALL"]), f"{origin} select"),
        ignore=parse_codes(table.get("ignore", []), f"{origin} ignore"),
        severity=tuple(levels),
        source=path,
    )
