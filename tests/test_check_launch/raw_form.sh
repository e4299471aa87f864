#!/bin/bash
# A hand-written launch script in the raw acrn-dm form (no header).
mem=4096
acrn-dm -A -m ${mem}M -s 0:0,hostbridge \
  -s 1:0,lpc \
  --ovmf /usr/share/acrn/bios/OVMF.fd \
  # -s 9,ivshmem,hv:/commented_out,2 is not read
  -s 8,ivshmem,hv:/shm_region_0,2 \
  POST_STD_VM1
