"""Exercise checks, one module per notebook: `theory` (01), `features` (02), `patching` (03).

A check runs the student's function, explains a wrong answer in one message, and never raises.
"""
