"""The lint rules: one module each, registered here explicitly.

Every rule module has ``CODE``, ``NAME``, ``SEVERITY`` (the default),
``TARGET`` (``scenario``, ``launch``, ``document``, ``script``,
``acrn`` for ACRN's own checks of ``lint --acrn-schema``),
``NEEDS_BOARD``, a docstring that is its documentation, and (except
ISM001 and the ``acrn`` rules, which the schema checks implement) a
``check()`` generator
yielding :class:`~acrn_ivshmem.diagnostics.Finding`. Each module is
named after its rule (``NAME`` with ``-`` as ``_``) and imported below
by name. Codes are stable and never reused.
"""

from __future__ import annotations

from types import ModuleType

from ..errors import UsageError, quoted
from . import (
    acrn_check_skipped, acrn_data_error, acrn_data_warning, acrn_syntax,
    ambiguous_region_id, board_mismatch, board_missing,
    dm_region_needs_post_launched, duplicate_ivshmem, duplicate_region_id,
    duplicate_region_name, duplicate_vbdf, duplicate_vm_in_region,
    ivshmem_disabled_with_regions, ivshmem_enabled_without_regions,
    launch_region_extra, launch_region_missing, launch_region_name,
    launch_region_provider, launch_region_size, launch_region_slot,
    launch_shm_region_format, launch_shm_region_unknown, launch_slot_clash,
    legacy_region_acrn_pattern, legacy_region_fields, legacy_region_prefix,
    legacy_region_size_decimal, legacy_region_vm_ids, namespaced_element,
    post_launched_vbdf_range, provided_by, region_id, region_name_chars,
    region_name_length, region_size, repeated_element, schema_structure,
    service_vm_native_bdf, too_few_vms, too_many_hv_regions, unknown_element,
    unknown_vm, vbdf_format, vbdf_host_bridge, vbdf_not_canonical,
)

__all__ = ["MODULES", "RULES", "get", "summary"]

#: Every rule module, in the order imported above: by file name (a test
#: keeps the list sorted and complete). Each file is named after its
#: rule: NAME with "-" as "_".
MODULES: tuple[ModuleType, ...] = tuple(
    value for value in dict(globals()).values()
    if isinstance(value, ModuleType) and hasattr(value, "CODE"))

#: The rules by code, in code order.
RULES: dict[str, ModuleType] = {
    module.CODE: module
    for module in sorted(MODULES, key=lambda module: module.CODE)
}


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
