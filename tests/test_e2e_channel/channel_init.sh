#!/bin/busybox sh
# /init of the guests that talk through a channel: mounts what the
# channel needs (sysfs for the devices, devtmpfs for /dev/vfio), loads
# the vfio modules from /lib/vfio when ivvfio=1 is on the kernel command
# line, and runs /opt/guest.py (Python's standard library and
# acrn_ivshmem in /opt), which prints "IVC ..." lines on ttyS0. Its
# stderr follows as "IVC stderr ..." lines; the last is "IVC done rc=N".
# shellcheck shell=dash disable=SC2154
/bin/busybox mkdir -p /proc /sys /tmp /dev
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin HOME=/tmp
# Just after boot the kernel has no entropy yet, and Python would block
# seeding its string hashes; a fixed seed is fine here.
export PYTHONHASHSEED=0
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
dmesg -n 1  # no kernel lines in the middle of ours

say() { echo "IVC $*"; }
finish() { say "done rc=$1"; poweroff -f; }

if [ "$ivvfio" = 1 ]; then
    for module in irqbypass vfio vfio_iommu_type1 vfio_virqfd \
            vfio-pci-core vfio-pci; do
        insmod "/lib/vfio/$module.ko" 2>/tmp/err \
            || { say "fail insmod $module: $(cat /tmp/err)"; finish 1; }
    done
fi
cd /opt || { say "fail no /opt"; finish 1; }
python3 guest.py 2>/tmp/err
status=$?
while IFS= read -r line; do say "stderr $line"; done </tmp/err
finish "$status"
