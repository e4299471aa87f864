"""The lint rules: one module each, registered here explicitly.

Every rule module has ``CODE``, ``NAME``, ``SEVERITY`` (the default),
``TARGET`` (``scenario``, ``launch``, ``document``, ``script``,
``acrn`` for ACRN's own checks of ``lint --acrn-schema``),
``NEEDS_BOARD``, a docstring that is its documentation, and (except
ISM001 and the ``acrn`` rules, which the schema checks implement) a
``check()`` generator
yielding :class:`Finding`. Codes are stable and never reused.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from ..errors import UsageError, quoted
from ._finding import Finding, TextFix

__all__ = ["RULES", "Finding", "TextFix", "get", "summary"]

#: Every rule module, by file name (keep sorted).
MODULE_NAMES = (
    "acrn_check_skipped",
    "acrn_data_error",
    "acrn_data_warning",
    "acrn_syntax",
    "ambiguous_region_id",
    "board_mismatch",
    "board_missing",
    "dm_region_vms",
    "duplicate_ivshmem",
    "duplicate_name",
    "duplicate_region_id",
    "duplicate_vm",
    "ivshmem_disabled",
    "ivshmem_enabled_empty",
    "launch_shm_format",
    "launch_slot_clash",
    "launch_shm_scenario",
    "legacy_fields",
    "legacy_prefix",
    "legacy_size",
    "legacy_spacing",
    "legacy_vm_ids",
    "namespaced_element",
    "provided_by",
    "region_count",
    "region_id",
    "region_name_chars",
    "region_name_length",
    "region_size",
    "repeated_element",
    "schema_structure",
    "script_region_extra",
    "script_region_missing",
    "script_region_name",
    "script_region_provider",
    "script_region_size",
    "script_region_slot",
    "too_few_vms",
    "unknown_element",
    "unknown_vm",
    "vbdf_duplicate",
    "vbdf_format",
    "vbdf_case",
    "vbdf_host_bridge",
    "vbdf_native",
    "vbdf_post_range",
)

RULES: dict[str, ModuleType] = {
    module.CODE: module
    for module in sorted(
        (import_module(f"{__name__}.{name}") for name in MODULE_NAMES),
        key=lambda module: module.CODE,
    )
}

#: Codes that were used once and must never be given to another rule.
RETIRED: dict[str, str] = {}


def get(code: str) -> ModuleType:
    """The rule module for ``code`` (case-insensitive), or UsageError."""
    rule = RULES.get(code.upper())
    if rule is None:
        raise UsageError(f"unknown rule code {quoted(code)}; see 'acrn-shm "
                         "rules'")
    return rule


def summary(rule: ModuleType) -> str:
    """The first line of the rule's doc, without code and name."""
    first = (rule.__doc__ or "").strip().splitlines()[0]
    return first.split(":", 1)[1].strip() if ":" in first else first
