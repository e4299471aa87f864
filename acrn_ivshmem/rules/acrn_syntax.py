"""ISM901 acrn-syntax: the scenario follows the ACRN tree's own schema.

What it does
    With ``lint --acrn-schema``, validates the scenario against the
    ``config.xsd`` of the ACRN source tree named by ``--acrn-src`` (or
    ``ACRN_SRC``), as that tree's ``validator.py`` does: the schema is
    split by VM type and the scenario is first given ACRN's default
    values. Each problem ACRN's validator calls a syntax error (its
    "critical" findings) is reported at the element of your file; an
    element ACRN adds as a default is reported at the element holding
    it. The message is xmlschema's reason, as ACRN prints it.

Why it matters
    ACRN's build stops on these, with an XPath and no line number, and
    acrn-shm's own rules only read the IVSHMEM parts of a scenario.

Example (fails)
    <IVSHMEM_SIZE>3</IVSHMEM_SIZE>

Use instead (passes)
    <IVSHMEM_SIZE>4</IVSHMEM_SIZE>
"""

CODE = "ISM901"
NAME = "acrn-syntax"
SEVERITY = "error"
TARGET = "acrn"
NEEDS_BOARD = False
