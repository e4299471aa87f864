#!/bin/busybox sh
# /init of the end-to-end test guests: busybox only, no driver.
# Kernel parameters arrive as variables: ivscen (plain-a, plain-b or
# doorbell), ivmarker and ivanswer (0x%08X words chosen by the test).
# Every result is an "IVE ..." line on ttyS0; the last is "IVE done rc=N".
# Word splitting, a built printf format and kernel-set variables are
# all intended here.
# shellcheck disable=SC2046,SC2059,SC2154
/bin/busybox mkdir -p /proc /sys /tmp
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# devmem needs /dev/mem; DEVTMPFS_MOUNT is off in Debian kernels.
mount -t devtmpfs devtmpfs /dev

say() { echo "IVE $*"; }
finish() { say "done rc=$1"; poweroff -f; }
fail() { say "fail $*"; finish 1; }

dev=
for d in /sys/bus/pci/devices/*; do
    if [ "$(cat "$d/vendor")" = 0x1af4 ] && [ "$(cat "$d/device")" = 0x1110 ]
    then
        dev=$d
    fi
done
[ -n "$dev" ] || fail "no ivshmem device (1af4:1110)"
say "device ${dev##*/}"

# Physical start of BAR $1 (line $1 + 1 of the resource file).
bar() { set -- $(sed -n "$(($1 + 1))p" "$dev/resource"); echo "$1"; }
# 32-bit access; devmem prints 0x%08X, as the test's words are written.
rd() { devmem "$(printf 0x%x "$1")" 32; }
wr() { devmem "$(printf 0x%x "$1")" 32 "$2"; }
# Wait (at least 10 s) until the word at $1 reads $2.
wait_word() {
    tries=0
    while [ "$(rd "$1")" != "$2" ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 1000 ] || return 1
        usleep 10000
    done
}
byte() { od -An -tu1 -j "$1" -N1 "$dev/config" | tr -d ' '; }

bar2=$(bar 2)
set -- $(sed -n 3p "$dev/resource")
say "bar2 size=$(printf 0x%x $(($2 - $1 + 1)))"

case "$ivscen" in
plain-a)
    wr "$bar2" "$ivmarker"
    wait_word $((bar2 + 4)) "$ivanswer" || fail "no answer"
    say "answer $ivanswer"
    ;;
plain-b)
    wait_word "$bar2" "$ivmarker" || fail "no marker"
    say "marker $ivmarker"
    wr $((bar2 + 4)) "$ivanswer"
    ;;
doorbell)
    bar0=$(bar 0)
    id=$(($(rd $((bar0 + 8)))))
    say "ivposition=$id"
    peer=$((1 - id))
    # Walk the capability list to MSI-X (id 0x11).
    cap=$(byte 52)
    while [ "$cap" -ne 0 ] && [ "$(byte "$cap")" -ne 17 ]; do
        cap=$(byte $((cap + 1)))
    done
    [ "$cap" -ne 0 ] || fail "no MSI-X capability"
    set -- $(od -An -tu4 -j $((cap + 8)) -N4 "$dev/config")
    pba=$(($(bar $(($1 & 7))) + ($1 & ~7)))
    # MSI-X Enable + Function Mask: with no driver a ring only sets the
    # Pending Bit, which can be polled.
    control=$(($(byte $((cap + 3))) | 0xc0))
    printf "\\$(printf %03o $control)" \
        | dd of="$dev/config" bs=1 seek=$((cap + 3)) count=1 conv=notrunc \
            2>/dev/null
    [ "$(byte $((cap + 3)))" -eq "$control" ] || fail "MSI-X not enabled"
    # A ring to a peer without MSI-X is dropped: say ready, wait for the
    # peer's ready word, then ring it.
    wr $((bar2 + 8 + 4 * id)) "$(printf 0x%08X $((ivmarker + id)))"
    wait_word $((bar2 + 8 + 4 * peer)) \
        "$(printf 0x%08X $((ivmarker + peer)))" || fail "peer not ready"
    wr $((bar0 + 12)) $((peer << 16))
    tries=0
    until [ $(($(rd "$pba") & 1)) -eq 1 ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 1000 ] || fail "no doorbell from peer $peer"
        usleep 10000
    done
    say "doorbell from peer $peer"
    ;;
*)
    fail "unknown ivscen '$ivscen'"
    ;;
esac
finish 0
