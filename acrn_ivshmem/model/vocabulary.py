"""The elements ACRN's scenario XMLs may hold, and which may repeat.

ACRN's own schema (``config.xsd``) refuses a scenario with an element it
does not declare, or with a second copy of an element it allows once;
acrn-shm's structure check (ISM001) describes only the parts acrn-shm
reads and lets the rest through. This module lists every element name
ACRN knows in a scenario, per format, so that the loader can point at
what ACRN would refuse and what acrn-shm would not read (ISM003, ISM213,
ISM214).

Each format's outline is the union of ACRN's versions of that format,
so that no file ACRN accepted in any of them is flagged:

- ``legacy``: the schemas of ACRN v2.4 to v2.7 and the scenario files
  ACRN shipped from v2.2 to v2.7 (v2.2 and v2.3 had no schema; their
  files add ``vm/vuart`` and a repeated ``vm/mmio_resources``);
- ``v3``: the schemas of ACRN v3.0 to v3.3 and of its main branch of
  September 2025 (which adds ``vm/stateless``), and the scenario files
  ACRN shipped with them.

An outline line is an element name, indented two spaces per level below
its parent; `` *`` marks an element that may occur more than once under
its parent. Element names are facts about ACRN's file format; the
outline is acrn-shm's own.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

__all__ = ["Known", "children", "known_names"]


class Known(NamedTuple):
    """An element ACRN knows: whether it may repeat, and its children."""

    repeats: bool
    children: dict[str, Known]


_LEGACY = """\
hv
  CAPACITIES
    IOMMU_BUS_NUM
    MAX_EFI_MMAP_ENTRIES
    MAX_EMULATED_MMIO
    MAX_IOAPIC_LINES
    MAX_IOAPIC_NUM
    MAX_IR_ENTRIES
    MAX_KATA_VM_NUM
    MAX_MSIX_TABLE_NUM
    MAX_PCI_DEV_NUM
    MAX_PT_IRQ_ENTRIES
    MAX_VM_NUM
  DEBUG_OPTIONS
    CONSOLE_LOGLEVEL
    LOG_BUF_SIZE
    LOG_DESTINATION
    MEM_LOGLEVEL
    NPK_LOGLEVEL
    RELEASE
    SERIAL_CONSOLE
  FEATURES
    ACPI_PARSE_ENABLED
    ENFORCE_TURNOFF_AC
    ENFORCE_TURNOFF_GP
    HYPERV_ENABLED
    IOMMU_ENFORCE_SNP
    IVSHMEM
      IVSHMEM_ENABLED
      IVSHMEM_REGION *
    L1D_VMENTRY_ENABLED
    MCE_ON_PSC_DISABLED
    MULTIBOOT2
    NVMX_ENABLED
    PSRAM
      PSRAM_ENABLED
    RDT
      CDP_ENABLED
      CLOS_MASK *
      MBA_DELAY *
      RDT_ENABLED
      VCAT_ENABLED
    RELOC
    SCHEDULER
    SECURITY_VM_FIXUP
    SSRAM
      SSRAM_ENABLED
  MEMORY
    HV_RAM_SIZE
    HV_RAM_START
    LOW_RAM_SIZE
    PLATFORM_RAM_SIZE
    SOS_RAM_SIZE
    STACK_SIZE
    UOS_RAM_SIZE
  MISC_CFG
    GPU_SBDF
    UEFI_OS_LOADER_NAME
vm *
  PTM
  board_private
    bootargs
    rootfs
  clos
    vcpu_clos *
  communication_vuart *
    base
    target_uart_id
    target_vm_id
  console_vuart
    base
  cpu_affinity
    pcpu_id *
  epc_section
    base
    size
  guest_flags
    guest_flag *
  legacy_vuart *
    base
    irq
    target_uart_id
    target_vm_id
    type
  memory
    size
    size_hpa2
    start_hpa
    start_hpa2
  mmio_resources *
    TPM2
    p2sb
  name
  os_config
    bootargs
    kern_entry_addr
    kern_load_addr
    kern_mod
    kern_type
    name
    ramdisk_mod
  pci_dev_num
  pci_devs
    pci_dev *
  priority
  pt_intx
  vm_type
  vuart *
    base
    irq
    target_uart_id
    target_vm_id
    type
"""

_V3 = """\
hv
  BUILD_TYPE
  CACHE_REGION
    CACHE_ALLOCATION *
      CACHE_ID
      CACHE_LEVEL
      POLICY *
        CLOS_MASK
        TYPE
        VCPU
        VM
  CAPACITIES
    MAX_EMULATED_MMIO
    MAX_IOAPIC_LINES
    MAX_IOAPIC_NUM
    MAX_MSIX_TABLE_NUM
    MAX_PCI_BUS_NUM
    MAX_PCI_DEV_NUM
    MAX_PT_IRQ_ENTRIES
    MAX_VM_NUM
  DEBUG_OPTIONS
    CONSOLE_LOGLEVEL
    CONSOLE_VM
    MEM_LOGLEVEL
    NPK_LOGLEVEL
    SERIAL_CONSOLE
  FEATURES
    ACPI_PARSE_ENABLED
    CPU_PERFORMANCE_POLICY
    ENFORCE_TURNOFF_AC
    ENFORCE_TURNOFF_GP
    HYPERV_ENABLED
    IOMMU_ENFORCE_SNP
    IVSHMEM
      IVSHMEM_REGION *
        IVSHMEM_REGION_ID
        IVSHMEM_SIZE
        IVSHMEM_VMS
          IVSHMEM_VM *
            VBDF
            VM_NAME
        NAME
        PROVIDED_BY
    KEEP_IRQ_DISABLED
    L1D_VMENTRY_ENABLED
    MCE_ON_PSC_DISABLED
    MCE_ON_PSC_ENABLED
    MULTIBOOT2_ENABLED
    RDT
      CDP_ENABLED
      RDT_ENABLED
      VCAT_ENABLED
    RELOC_ENABLED
    SCHEDULER
    SECURITY_VM_FIXUP
    SERVICE_VM_SUPERVISOR_ENABLED
    SPLIT_LOCK_DETECTION_ENABLED
    SSRAM
      SSRAM_ENABLED
    UC_LOCK_DETECTION_ENABLED
    VUART_RX_BUF_SIZE
    VUART_TIMER_PCPU
    VUART_TX_BUF_SIZE
  HIDDEN_PDEV_REGION
    HIDDEN_PDEV *
  MEMORY
    HV_RAM_START
    STACK_SIZE
  MISC_CFG
    GPU_SBDF
  vuart_connections
    vuart_connection *
      endpoint *
        io_port
        vbdf
        vm_name
      name
      type
vm *
  PTM
  bvt_unwarp_period
  bvt_warp_limit
  bvt_warp_value
  bvt_weight
  companion_vmid
  console_vuart
  cpu_affinity
    pcpu *
      pcpu_id
      real_time_vcpu
  customized_parameters
  epc_section
    base
    size
  hide_mtrr_support
  io_completion_polling
  lapic_passthrough
  load_order
  memory
    hpa_region *
      size_hpa
      start_hpa
    size
  mmio_resources
    TPM2
    p2sb
  name
  nested_virtualization_support
  os_config
    bootargs
    kern_entry_addr
    kern_load_addr
    kern_mod
    kern_type
    ramdisk_mod
  os_type
  own_pcpu
  pci_devs
    pci_dev *
  priority
  pt_intx
  secure_world_support
  security_vm
  stateless
  usb_xhci
    usb_dev *
  vbootloader
  virtio_devices
    block *
    console *
      backend_type
      output_file_path
      sock_file_path
      tty_device_path
      use_type
    gpu
      display_type
      displays
        display *
          horizontal_offset
          monitor_id
          vertical_offset
          window_resolutions
    input *
      backend_device_file
      id
    network *
      interface_name
      virtio_framework
    vsock *
  virtual_cat_number
  virtual_cat_support
  virtual_thermal_monitor
  vm_type
  vuart0
"""


@functools.cache
def children(fmt: str) -> dict[str, Known]:
    """What ``<acrn-config>`` of a ``fmt`` (legacy or v3) scenario holds."""
    outline = _LEGACY if fmt == "legacy" else _V3
    top: dict[str, Known] = {}
    # stack[depth] is the dict that lines of that depth are added to.
    stack = [top]
    for line in outline.splitlines():
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name, _, mark = line.strip().partition(" ")
        known = Known(mark == "*", {})
        del stack[depth + 1:]
        stack[depth][name] = known
        stack.append(known.children)
    return top


@functools.cache
def known_names(fmt: str) -> frozenset[str]:
    """Every element name a ``fmt`` scenario may use anywhere."""
    names: set[str] = set()
    pending = [children(fmt)]
    while pending:
        level = pending.pop()
        names.update(level)
        pending.extend(known.children for known in level.values())
    return frozenset(names)
