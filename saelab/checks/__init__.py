"""Exercise checks, one module per notebook: `theory` (01), `features` (02), `patching` (03), `steering` (04),
`training` (05), `evaluation` (06), `circuits` (07); `report` prints every verdict in one style.

A check runs the student's function against the library's, explains a wrong answer in one line, and never raises
for a student (with SAELAB_CHECKS_STRICT=1, as in the test runs, a wrong answer raises CheckFailed, and so does a
check's second "not done yet": a solution cell that is still the stub; see `report`).
"""
