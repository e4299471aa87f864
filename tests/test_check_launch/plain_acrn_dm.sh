#!/bin/bash
# A hand-written launch script: no header, the VM named last.
mem_size=4096M

# acrn-dm -s 9,ivshmem,hv:/not_this_one,2 NOT_THIS_VM
acrn-dm -m "${mem_size}" -s 0:0,hostbridge -s 1:0,lpc \
    --ovmf /usr/share/acrn/bios/OVMF.fd \
    -s 8,ivshmem,hv:/shm_region_0,2 \
    POST_STD_VM1 > /var/log/acrn-dm.log 2>&1
