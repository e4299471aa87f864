"""``python -m acrn_ivshmem`` runs the ``acrn-shm`` command."""

from .cli import main

main()
