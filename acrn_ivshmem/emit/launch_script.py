"""Render a :class:`~acrn_ivshmem.plan.acrn_dm.Plan` as an acrn-dm script.

The script has the shape of the scripts ACRN v3 generates (a header
naming the VM, helper functions, the VM's type, scheduler and pCPU
ownership, initialisation, a table of the VM's CPUs, ``dm_params=( ...
)`` with one parameter per line, then ``acrn-dm "${dm_params[@]}"``),
with helper functions of acrn-shm's own. The result passes ``bash -n``
and shellcheck.

No text from an input is ever expanded by bash: a literal word is
written bare only when it is a :data:`~acrn_ivshmem.plan.acrn_dm.SHELL_WORD`
(letters, digits and ``_ @ % + = : , . / -``, which no shell reads
specially), and single-quoted otherwise. The only expansions in
``dm_params`` are :class:`~acrn_ivshmem.plan.acrn_dm.Ref` parts, plain
``${mac}`` and ``${dir_*}`` references to variables the script sets in
its initialisation; a word holding one is double-quoted, and its literal
parts must then be shell words.
"""

from __future__ import annotations

import re
import shlex

from ..plan.acrn_dm import SHELL_WORD, DmParam, Plan, Ref, Word

__all__ = ["render", "ivshmem_args", "script_name"]

#: A single-quoted word with '$', '`' or '\\' in it: shellcheck asks
#: whether it was meant to expand (SC2016) or to escape a quote (SC1003).
_QUOTED_SYNTAX = re.compile(r"'[^']*[$`\\][^']*'")

HELPERS = r'''
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
'''


def _literal(text: str, in_array: bool) -> str:
    """``text`` as one shell word that bash takes literally."""
    if SHELL_WORD.fullmatch(text):
        # In an array, a bare comma reads as a typo (SC2054) and a bare
        # '=' as a mistaken index assignment (SC2191).
        return f"'{text}'" if in_array and (
            "," in text or "=" in text) else text
    return shlex.quote(text)


def _word(word: Word, helper: bool) -> str:
    if isinstance(word, str):
        if helper and not SHELL_WORD.fullmatch(word):
            # The array splits a helper's output into words again.
            raise ValueError(f"helper argument {word!r} is not a shell "
                             "word")
        return _literal(word, not helper)
    parts = []
    for part in word:
        if isinstance(part, Ref):
            parts.append(f"${{{part.name}}}")
        elif SHELL_WORD.fullmatch(part):
            parts.append(part)
        else:
            raise ValueError(f"{part!r} cannot stand beside a reference")
    return '"' + "".join(parts) + '"'


def _line(param: DmParam) -> str:
    words = " ".join(_word(word, param.helper is not None)
                     for word in param.words)
    if param.helper is None:
        return words
    return f"$({param.helper} {words})"


def script_name(vm_id_offset: int) -> str:
    """ACRN's file name for the script of a VM (id minus Service VM id)."""
    return f"launch_user_vm_id{vm_id_offset}.sh"


def render(plan: Plan, source: str, acrn_version: str) -> str:
    """The whole launch script for ``plan`` (``source`` names inputs)."""
    # File names may hold anything; a comment must stay one line.
    source = re.sub(r"[^\x20-\x7e]", "?", source)
    out = [
        "#!/bin/bash",
        f"# Launch script for VM name: {plan.vm_name}",
        f"# Written by acrn-shm for ACRN {acrn_version} from {source}.",
        "# Run it as root in the Service VM.",
        HELPERS.rstrip("\n"),
        "",
        "# ---- VM description " + "-" * 56,
        "",
        f"vm_type={shlex.quote(plan.vm_type)}",
        f"scheduler={shlex.quote(plan.scheduler)}",
        f"own_pcpu={'y' if plan.own_pcpu else 'n'}",
        "",
        "# ---- Initializing " + "-" * 58,
        "",
    ]
    out.extend(plan.init)
    if plan.cpu_table:
        out += ["", "# Native CPU_ID    APIC_ID"]
        out.extend(f"# {cpu:<16d} {apic}" for cpu, apic in plan.cpu_table)
    lines = [f"    {_line(param)}" for param in plan.params]
    out += ["", "# Helpers print several words each: split them on purpose."]
    if any(_QUOTED_SYNTAX.search(line) for line in lines):
        out += ["# Quoted words hold shell syntax that must not expand.",
                "# shellcheck disable=SC1003,SC2016,SC2207"]
    else:
        out.append("# shellcheck disable=SC2207")
    out.append("dm_params=(")
    out.extend(lines)
    out += [
        ")",
        "",
        'echo "Launch device model with parameters: ${dm_params[*]}"',
        'acrn-dm "${dm_params[@]}"',
    ]
    if plan.deinit:
        out += ["", "# ---- Deinitializing " + "-" * 56, ""]
        out.extend(plan.deinit)
    return "\n".join(out) + "\n"


def ivshmem_args(plan: Plan) -> list[str]:
    """The raw acrn-dm arguments of the plan's IVSHMEM devices."""
    args: list[str] = []
    for param in plan.params:
        if param.ivshmem:
            args.extend(param.acrn_dm_args())
    return args
