"""ISM902 acrn-data-error: a data check of the ACRN tree fails.

What it does
    With ``lint --acrn-schema`` and a board XML, evaluates the
    ``xs:assert`` data checks of the tree's ``datachecks.xsd`` over the
    scenario (with ACRN's default values) and the board, as ACRN's
    ``validator.py`` does, and reports each check of severity "error"
    that fails at every element ACRN's message points to, with ACRN's
    message.

Why it matters
    ACRN's configurator and build refuse a scenario that fails these
    checks (two VMs on one physical CPU, a VBDF used twice, a region
    listed twice for a VM, and so on).

Example (fails)
    <IVSHMEM_VM><VM_NAME>VM1</VM_NAME><VBDF>00:08.0</VBDF></IVSHMEM_VM>
    <IVSHMEM_VM><VM_NAME>VM1</VM_NAME><VBDF>00:08.0</VBDF></IVSHMEM_VM>

Use instead (passes)
    <IVSHMEM_VM><VM_NAME>VM1</VM_NAME><VBDF>00:08.0</VBDF></IVSHMEM_VM>
    <IVSHMEM_VM><VM_NAME>VM2</VM_NAME><VBDF>00:08.0</VBDF></IVSHMEM_VM>
"""

CODE = "ISM902"
NAME = "acrn-data-error"
SEVERITY = "error"
TARGET = "acrn"
NEEDS_BOARD = True
