#!/bin/bash
# Launch script for VM name: POST_STD_VM2
# Written by acrn-shm for ACRN 3.3 from hybrid_rt.xml + whl-ipc-i5.xml.
# Run it as root in the Service VM.

# ---- helpers (acrn-shm) ---------------------------------------------------

# Load the modules acrn-dm and device passthrough need.
probe_modules() {
    modprobe pci_stub
}

# Take the CPUs with the given local APIC ids away from the Service VM.
offline_cpus() {
    local apic cpu online
    for apic in "$@"; do
        cpu=$(awk -v want="${apic}" '
            $1 == "processor" { id = $3 }
            $1 == "apicid" && $3 == want { print id }' /proc/cpuinfo)
        [ -n "${cpu}" ] || continue
        online=/sys/devices/system/cpu/cpu${cpu}/online
        if [ -e "${online}" ] && [ "$(cat "${online}")" = 1 ]; then
            echo 0 > "${online}"
            echo "${cpu}" > /sys/devices/virtual/misc/acrn_hsm/remove_cpu
        fi
    done
}

# Hand PCI function $1 (0000:bb:dd.f) to pci-stub for passthrough.
unbind_device() {
    local sysfs=/sys/bus/pci/devices/$1 vendor device
    vendor=$(cat "${sysfs}/vendor") || return 1
    device=$(cat "${sysfs}/device") || return 1
    echo "${vendor#0x} ${device#0x}" > /sys/bus/pci/drivers/pci-stub/new_id
    if [ -e "${sysfs}/driver" ]; then
        echo "$1" > "${sysfs}/driver/unbind"
    fi
    echo "$1" > /sys/bus/pci/drivers/pci-stub/bind
}

# Create tap interface $1 (if missing) and attach it to acrn-br0.
create_tap() {
    if ! ip link show "$1" > /dev/null 2>&1; then
        ip tuntap add dev "$1" mode tap || return 1
    fi
    ip link set dev "$1" up
    if ip link show acrn-br0 > /dev/null 2>&1; then
        ip link set dev "$1" master acrn-br0
    fi
}

# Mount partition $1 on a new temporary folder and print the folder.
mount_partition() {
    local folder
    folder=$(mktemp -d) || return 1
    if ! mount "$1" "${folder}"; then
        rmdir "${folder}"
        return 1
    fi
    echo "${folder}"
}

# Unmount and remove a folder made by mount_partition.
unmount_partition() {
    umount "$1" && rmdir "$1"
}

# Print --cpu_affinity for the given CPUs; RTVMs, SCHED_NOOP and VMs
# that own their CPUs take them from the Service VM first.
add_cpus() {
    if [ "${vm_type}" = RTVM ] || [ "${scheduler}" = SCHED_NOOP ] ||
            [ "${own_pcpu}" = y ]; then
        offline_cpus "$@" >&2
    fi
    local IFS=,
    echo "--cpu_affinity $*"
}

# Print --intr_monitor threshold,probe_period,delay_time,delay_duration.
add_interrupt_storm_monitor() {
    echo "--intr_monitor $1,$2,$3,$4"
}

# Print --logger_setting from target=level pairs.
add_logger_settings() {
    local pair settings=()
    for pair in "$@"; do
        settings+=("${pair%%=*},level=${pair#*=}")
    done
    local IFS=';'
    echo "--logger_setting ${settings[*]}"
}

# Print "-s slot,kind[,options]"; a virtio-net tap is created first.
add_virtual_device() {
    local slot=$1 kind=$2 options=${3:-} tap
    if [ "${kind}" = virtio-net ]; then
        tap=${options#tap=}
        create_tap "${tap%%,*}" >&2
    fi
    echo "-s ${slot},${kind}${options:+,${options}}"
}

# Print "-s slot,passthru,bb/dd/f[,options]" after unbinding 0000:bb:dd.f.
add_passthrough_device() {
    local slot=$1 bdf=$2 options=${3:-}
    unbind_device "${bdf}" >&2
    local where=${bdf:5:2}/${bdf:8:2}/${bdf:11:1}
    echo "-s ${slot},passthru,${where}${options:+,${options}}"
}

# ---- VM description --------------------------------------------------------

vm_type=STANDARD_VM
scheduler=SCHED_BVT
own_pcpu=n

# ---- Initializing ----------------------------------------------------------

probe_modules
mac=$(cat /sys/class/net/e*/address)
mac=${mac:0:17}

# Native CPU_ID    APIC_ID
# 1                2

# Helpers print several words each: split them on purpose.
# shellcheck disable=SC2207
dm_params=(
    $(add_cpus 2)
    -m 512M
    --ovmf /usr/share/acrn/bios/OVMF.fd
    $(add_virtual_device 1:0 lpc)
    $(add_virtual_device 0:0 hostbridge)
    $(add_virtual_device 3 virtio-console @stdio:stdio_port)
    $(add_virtual_device 4 virtio-net "tap=YaaG,mac_seed=${mac}-POST_STD_VM2")
    $(add_virtual_device 5 virtio-blk ./YaaG.img)
    $(add_logger_settings console=4 kmsg=3 disk=5)
    POST_STD_VM2
)

echo "Launch device model with parameters: ${dm_params[*]}"
acrn-dm "${dm_params[@]}"
