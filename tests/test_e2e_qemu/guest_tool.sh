#!/bin/busybox sh
# /init of the guests that run acrn-shm's guest tool (python3 -m
# acrn_ivshmem.guest, Python's standard library only) as
# docs/getting-started.md shows it: guest A writes "hello" at offset 0
# of the device at 00:09.0 and waits for "world" at offset 16; guest B
# waits for "hello" and answers "world". ivscen is tool-a or tool-b.
# Every result is an "IVE ..." line on ttyS0; the last is "IVE done rc=N".
# shellcheck shell=dash disable=SC2154
/bin/busybox mkdir -p /proc /sys /tmp
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin HOME=/tmp
# Just after boot the kernel has no entropy yet, and Python would block
# seeding its string hashes; a fixed seed is fine for this tool.
export PYTHONHASHSEED=0
mount -t proc proc /proc
mount -t sysfs sysfs /sys

say() { echo "IVE $*"; }
finish() { say "done rc=$1"; poweroff -f; }
fail() { say "fail $*"; finish 1; }
# Run the guest tool; each line it prints becomes "IVE <tag> <line>".
tool() {
    tag=$1
    shift
    python3 -m acrn_ivshmem.guest "$@" >/tmp/out 2>&1
    status=$?
    while IFS= read -r line; do say "$tag $line"; done </tmp/out
    return "$status"
}
# Read LENGTH bytes at OFFSET of 00:09.0 as text until they are TEXT.
wait_text() {
    tries=0
    until [ "$(python3 -m acrn_ivshmem.guest read -d 00:09.0 \
            --offset "$1" --length "${#2}" --format text)" = "$2" ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 200 ] || return 1
        usleep 100000
    done
    say "read $2 at $1"
}

cd /opt || fail "no /opt"
tool list list || fail "list"
case "$ivscen" in
tool-a)
    tool write write -d 00:09.0 --offset 0 --data hello || fail "write"
    wait_text 16 world || fail "no world"
    ;;
tool-b)
    wait_text 0 hello || fail "no hello"
    tool write write -d 00:09.0 --offset 16 --data world || fail "write"
    ;;
*)
    fail "unknown scenario '$ivscen'"
    ;;
esac
finish 0
