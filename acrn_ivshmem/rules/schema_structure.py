"""ISM001 schema-structure: the XML has the structure ACRN expects.

What it does
    Checks the file against acrn-shm's own XSDs (``schemas/``): the
    ``IVSHMEM`` block of legacy and v3 scenarios, the VM list, PCI vUART
    connections, v2.x launch ``shm_regions`` and the board parts
    acrn-shm reads. Other elements are allowed.

Why it matters
    ACRN's build rejects a misplaced or misspelt element with an XPath
    and no line number; an unknown element inside ``IVSHMEM_REGION`` is
    silently ignored by some ACRN generators.

Example (fails)
    <IVSHMEM_REGION>
      <NAME>shm_region_0</NAME>
      <SIZE>2</SIZE>
      ...

Use instead (passes)
    <IVSHMEM_REGION>
      <NAME>shm_region_0</NAME>
      <IVSHMEM_SIZE>2</IVSHMEM_SIZE>
      ...
"""

CODE = "ISM001"
NAME = "schema-structure"
SEVERITY = "error"
TARGET = "document"
NEEDS_BOARD = False
