"""Planners below both the rules and the emitters: the acrn-dm parameters of a
post-launched VM and the ivshmem devices of a QEMU process.
"""
