"""ISM904 acrn-check-skipped: a data check of the ACRN tree was not run.

What it does
    Reports, as information, a data check of the tree's
    ``datachecks.xsd`` that could not be evaluated for this scenario:
    its XPath failed on the scenario's values (ACRN's own validator
    stops with a traceback there), or it needs the CLOS IDs of an RDT
    cache policy, which acrn-shm does not compute.

Why it matters
    A clean run does not mean that check passed.

Example (reported)
    <CACHE_ALLOCATION>...<POLICY>...</POLICY></CACHE_ALLOCATION>

Use instead (passes)
    acrn-shm lint --acrn-schema --ignore ISM904 scenario.xml
"""

CODE = "ISM904"
NAME = "acrn-check-skipped"
SEVERITY = "info"
TARGET = "acrn"
NEEDS_BOARD = True
