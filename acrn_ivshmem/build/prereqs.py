"""The tools and Python modules ACRN's make needs, checked as make
will see them (its PATH, the ``python3`` it runs); every missing one is
reported at once (:class:`MissingPrerequisites`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import AcrnShmError, quoted
from .plan import BUILD_PYTHON_VARIABLE, BuildPlan

#: Debian package of each tool ACRN's make runs.
TOOL_PACKAGES = {
    "make": "make", "gcc": "gcc", "iasl": "acpica-tools",
    "xsltproc": "xsltproc", "xmllint": "libxml2-utils",
}


class MissingPrerequisites(AcrnShmError):
    """Tools or Python modules ACRN's make needs are missing.

    ``missing`` lists every one, each with how to get it.
    """

    def __init__(self, missing: tuple[Prerequisite, ...]):
        super().__init__("missing build prerequisites: "
                         + "; ".join(p.text for p in missing))
        self.missing = missing


@dataclass(frozen=True)
class Prerequisite:
    """A tool or Python module make needs that is missing or unfit.

    ``name`` (``iasl``, ``Python module elementpath``), ``problem``
    (what is wrong) and ``remedy`` (how to get it).
    """

    name: str
    problem: str
    remedy: str

    @property
    def text(self) -> str:
        """One line: name, problem and remedy."""
        return f"{self.name} {self.problem} ({self.remedy})"


# Runs in the Python make will use (any 3.x); prints
# {module: [version or "", error or null]}.
_MODULE_PROBE = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        module = importlib.import_module(name)
    except Exception as exc:
        found[name] = ["", "%s: %s" % (type(exc).__name__, exc)]
        continue
    version = getattr(module, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as dist_version
            version = dist_version(name.split(".")[0])
        except Exception:
            version = ""
    found[name] = [str(version), None]
print(json.dumps(found))
"""


def check_prerequisites(plan: BuildPlan,
                        environ: Mapping[str, str] | None = None) -> None:
    """Check every tool and module as make will see them; raise
    :class:`MissingPrerequisites` listing all that are missing."""
    environ = os.environ if environ is None else environ
    missing = [
        Prerequisite(tool, "is not on PATH",
                     f"install the Debian package {TOOL_PACKAGES[tool]}")
        for tool in plan.interface.tools
        if shutil.which(tool, path=plan.make_path) is None]
    if plan.python is None:
        missing.append(Prerequisite(
            "python3", "is not on PATH",
            f"install Python 3, or pass --python or set "
            f"{BUILD_PYTHON_VARIABLE}"))
    else:
        missing += _missing_modules(plan, environ)
    if missing:
        raise MissingPrerequisites(tuple(missing))


def _missing_modules(plan: BuildPlan,
                     environ: Mapping[str, str]) -> list[Prerequisite]:
    modules = plan.interface.python_modules
    try:
        probe = subprocess.run(
            [plan.python, "-c", _MODULE_PROBE,
             *(m.import_name for m in modules)],
            env=dict(environ, PATH=plan.make_path), capture_output=True,
            text=True, timeout=120, stdin=subprocess.DEVNULL)
        found = json.loads(probe.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return [Prerequisite(
            "python3", f"at {plan.python} does not run",
            "pass a working Python 3 with --python")]
    missing = []
    remedy = (f"pip install it in a venv and pass its bin/python3 with "
              f"--python or {BUILD_PYTHON_VARIABLE}")
    for module in modules:
        version, error = found.get(module.import_name, ["", "not checked"])
        what = f"Python module {module.name}"
        if error is not None:
            missing.append(Prerequisite(
                what, f"cannot be imported by {plan.python}",
                f"ACRN {plan.version} needs {quoted(module.spec)}; {remedy}"))
        elif not module.accepts(version):
            missing.append(Prerequisite(
                what, f"{version} in {plan.python} does not work",
                f"ACRN {plan.version} needs {quoted(module.spec)}; {remedy}"))
    return missing
