"""The upgrade's policy tables: how each legacy (ACRN v2.x) setting
reaches a v3 scenario (copied, renamed, discarded, a guest flag) and the
ACRN facts the conversion needs. :mod:`acrn_ivshmem.upgrade.scenario`
applies them; the module documentation there states the policy."""

from __future__ import annotations

import re

from ..model.syntax import VmKind

__all__ = [
    "COPIED", "COPIED_VM", "DEVICE_MODEL", "DISCARDED", "GUEST_FLAGS",
    "HYPERVISOR", "MAX_HV_REGIONS", "RENAMED", "SIZES",
]

HYPERVISOR = "Hypervisor"
DEVICE_MODEL = "Device Model"
PROVIDERS = {"hv:/": HYPERVISOR, "dm:/": DEVICE_MODEL}
LOAD_ORDER = {
    VmKind.PRE_LAUNCHED: "PRE_LAUNCHED_VM",
    VmKind.SERVICE: "SERVICE_VM",
    VmKind.POST_LAUNCHED: "POST_LAUNCHED_VM",
}
HEX = re.compile(r"0[xX][0-9A-Fa-f]+")
#: Region sizes v3 accepts, in MB.
SIZES = tuple(2 ** power for power in range(1, 10))
#: At most this many hypervisor regions (ACRN's ``mem_regions[8]``).
MAX_HV_REGIONS = 8
FIRST_VUART_DEVICE = 0x10
PRE, SOS, POST = (VmKind.PRE_LAUNCHED, VmKind.SERVICE,
                  VmKind.POST_LAUNCHED)
ALL = frozenset((PRE, SOS, POST))

#: Hypervisor settings copied unchanged (legacy path = v3 path).
COPIED = (
    "hv/DEBUG_OPTIONS/SERIAL_CONSOLE",
    "hv/DEBUG_OPTIONS/MEM_LOGLEVEL",
    "hv/DEBUG_OPTIONS/NPK_LOGLEVEL",
    "hv/DEBUG_OPTIONS/CONSOLE_LOGLEVEL",
    "hv/FEATURES/SCHEDULER",
    "hv/FEATURES/SECURITY_VM_FIXUP",
    "hv/FEATURES/RDT/RDT_ENABLED",
    "hv/FEATURES/RDT/CDP_ENABLED",
    "hv/FEATURES/RDT/VCAT_ENABLED",
    "hv/FEATURES/HYPERV_ENABLED",
    "hv/FEATURES/IOMMU_ENFORCE_SNP",
    "hv/FEATURES/ACPI_PARSE_ENABLED",
    "hv/FEATURES/L1D_VMENTRY_ENABLED",
    "hv/FEATURES/SSRAM/SSRAM_ENABLED",
    "hv/MEMORY/STACK_SIZE",
    "hv/MEMORY/HV_RAM_START",
    "hv/CAPACITIES/MAX_VM_NUM",
    "hv/CAPACITIES/MAX_IOAPIC_NUM",
    "hv/CAPACITIES/MAX_PCI_DEV_NUM",
    "hv/CAPACITIES/MAX_IOAPIC_LINES",
    "hv/CAPACITIES/MAX_PT_IRQ_ENTRIES",
    "hv/CAPACITIES/MAX_MSIX_TABLE_NUM",
    "hv/CAPACITIES/MAX_EMULATED_MMIO",
    "hv/MISC_CFG/GPU_SBDF",
)

Y_N = {"y": "y", "n": "n"}
INVERTED = {"y": "n", "n": "y"}

#: Renamed hypervisor settings: legacy path -> (v3 path, value map).
RENAMED = {
    "hv/DEBUG_OPTIONS/RELEASE": ("hv/BUILD_TYPE",
                                 {"y": "release", "n": "debug"}),
    "hv/FEATURES/RELOC": ("hv/FEATURES/RELOC_ENABLED", Y_N),
    "hv/FEATURES/MULTIBOOT2": ("hv/FEATURES/MULTIBOOT2_ENABLED", Y_N),
    "hv/FEATURES/MCE_ON_PSC_DISABLED": ("hv/FEATURES/MCE_ON_PSC_ENABLED",
                                        INVERTED),
    "hv/FEATURES/ENFORCE_TURNOFF_AC": (
        "hv/FEATURES/SPLIT_LOCK_DETECTION_ENABLED", INVERTED),
    "hv/FEATURES/ENFORCE_TURNOFF_GP": (
        "hv/FEATURES/UC_LOCK_DETECTION_ENABLED", INVERTED),
}

NO_SUCH_SETTING = "ACRN v3 has no such setting"
#: Settings reported as discarded (legacy path -> the reason).
DISCARDED = {
    "hv/DEBUG_OPTIONS/LOG_DESTINATION": NO_SUCH_SETTING,
    "hv/DEBUG_OPTIONS/LOG_BUF_SIZE": NO_SUCH_SETTING,
    "hv/FEATURES/NVMX_ENABLED": (
        "ACRN v3 enables nested virtualization when a VM has "
        "nested_virtualization_support"),
    "hv/MEMORY/LOW_RAM_SIZE": NO_SUCH_SETTING,
    "hv/MEMORY/PLATFORM_RAM_SIZE": "ACRN v3 takes it from the board XML",
    "hv/MEMORY/HV_RAM_SIZE": "ACRN v3 computes it",
    "hv/CAPACITIES/IOMMU_BUS_NUM": NO_SUCH_SETTING,
    "hv/CAPACITIES/MAX_IR_ENTRIES": "ACRN v3 computes it",
    "hv/MISC_CFG/UEFI_OS_LOADER_NAME": NO_SUCH_SETTING,
    "vm/pci_dev_num": "ACRN v3 counts the devices itself",
}
HV_CONTAINERS = frozenset((
    "hv/DEBUG_OPTIONS", "hv/FEATURES", "hv/FEATURES/RDT",
    "hv/FEATURES/SSRAM", "hv/MEMORY", "hv/CAPACITIES", "hv/MISC_CFG"))

#: Legacy guest flag -> (v3 boolean element, kinds of VM v3 allows it on).
GUEST_FLAGS = {
    "GUEST_FLAG_LAPIC_PASSTHROUGH": ("lapic_passthrough", ALL),
    "GUEST_FLAG_IO_COMPLETION_POLLING": ("io_completion_polling",
                                         frozenset((PRE, POST))),
    "GUEST_FLAG_NVMX_ENABLED": ("nested_virtualization_support",
                                frozenset((SOS,))),
    "GUEST_FLAG_VCAT_ENABLED": ("virtual_cat_support",
                                frozenset((PRE, POST))),
    "GUEST_FLAG_SECURE_WORLD_ENABLED": ("secure_world_support",
                                        frozenset((POST,))),
    "GUEST_FLAG_HIDE_MTRR": ("hide_mtrr_support", ALL),
    "GUEST_FLAG_SECURITY_VM": ("security_vm", ALL),
}
NO_FLAG = frozenset(("", "0", "0UL"))
FLAG_ORDER = [element for element, _kinds in GUEST_FLAGS.values()]

#: Per-VM elements copied unchanged, with the kinds of VM v3 allows
#: them on. On other VMs a non-empty one is refused (``PTM``
#: ``n`` and ``mmio_resources`` all ``n`` are only noted).
COPIED_VM = {
    "priority": ALL,
    "epc_section": frozenset((PRE,)),
    "mmio_resources": frozenset((PRE,)),
    "pt_intx": frozenset((PRE,)),
    "pci_devs": frozenset((PRE,)),
    "PTM": frozenset((PRE, POST)),
    "os_config/kern_type": frozenset((PRE, SOS)),
    "os_config/kern_mod": frozenset((PRE, SOS)),
    "os_config/ramdisk_mod": frozenset((PRE, SOS)),
    "os_config/bootargs": frozenset((PRE, SOS)),
    "os_config/kern_load_addr": frozenset((PRE, SOS)),
    "os_config/kern_entry_addr": frozenset((PRE, SOS)),
}
VUART_TAGS = frozenset(("legacy_vuart", "console_vuart",
                         "communication_vuart"))
COM_PORTS = {"COM1_BASE": ("0x3F8", 1), "COM2_BASE": ("0x2F8", 2),
              "COM3_BASE": ("0x3E8", 3), "COM4_BASE": ("0x2E8", 4)}
