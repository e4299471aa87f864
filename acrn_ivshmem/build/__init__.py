"""Building the ACRN hypervisor for a board and a scenario with ACRN's make.
"""
