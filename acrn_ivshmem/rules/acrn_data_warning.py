"""ISM903 acrn-data-warning: a data check of the ACRN tree warns.

What it does
    As ISM902, for the data checks of ``datachecks.xsd`` that ACRN
    gives the severity "warning".

Why it matters
    ACRN builds such a scenario, but it may not run as meant on the
    board (for example a physical CPU the board does not have).

Example (fails)
    <pcpu_id>99</pcpu_id>

Use instead (passes)
    <pcpu_id>2</pcpu_id>
"""

CODE = "ISM903"
NAME = "acrn-data-warning"
SEVERITY = "warning"
TARGET = "acrn"
NEEDS_BOARD = True
