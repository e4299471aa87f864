"""Putting a configuration to work on this host: small QEMU guests sharing a
region and host preparation. Reads plans from the configuration side and
runs the runtime side.
"""
