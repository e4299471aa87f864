"""acrn-shm: inter-VM shared memory (IVSHMEM) for ACRN and QEMU."""

__version__ = "0.1.0"
