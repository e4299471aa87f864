"""``acrn-shm qemu-args``, ``libvirt-xml``, ``host-prep``, ``qemu-try``,
``ivshmem-server`` and ``guest``: QEMU on this host, and the guest
tool."""

import functools
import os
import sys

from ..errors import AcrnShmError, UsageError, escaped, quoted
from .exits import EXIT_FINDINGS, EXIT_OK, fail
from .render import plain_console
from .spec import Command, Option, size_option


def _qemu_plan(options: dict):
    """Build the QEMU plan from the shared qemu-args/host-prep options."""
    from ..plan.qemu import Doorbell, plan_from_file, standalone_plan

    scenario, name = options["scenario"], options["name"]
    if (scenario is None) == (name is None):
        raise UsageError("give --scenario S.xml --vm NAME, or --name N "
                         "--size MB")
    if not options["doorbell"] and (options["socket"] is not None
                                    or options["vectors"] is not None):
        raise UsageError("--socket and --vectors need --doorbell")
    doorbell = None
    if options["doorbell"]:
        if options["socket"] is None:
            raise UsageError("--doorbell needs --socket PATH (the "
                             "ivshmem-server socket)")
        doorbell = Doorbell(options["socket"], options["vectors"] or 1)
    if scenario is not None:
        if options["vm"] is None:
            raise UsageError("--scenario needs --vm NAME")
        if options["addr"] or options["size"]:
            raise UsageError("--addr and --size are for --name; a "
                             "scenario gives them")
        return plan_from_file(scenario, options["vm"], options["shm_dir"],
                              master=options["master"],
                              hugepages=options["hugepages"],
                              region=options["region"], doorbell=doorbell)
    if options["region"] is not None or options["vm"] is not None:
        raise UsageError("--vm and --region are for --scenario")
    return standalone_plan(name, options["size"], options["shm_dir"],
                           doorbell=doorbell, master=options["master"],
                           addr=options["addr"],
                           hugepages=options["hugepages"])


def run_qemu(what: str, check: bool = False, mode: str = "660",
             **options) -> int:
    """qemu-args, libvirt-xml or host-prep (``what``) from the shared
    options (:data:`QEMU_OPTIONS`)."""
    from ..emit.libvirt_xml import libvirt_xml
    from ..host.prep import host_prep

    try:
        plan = _qemu_plan(options)
        if what == "qemu-args":
            output, warnings = plan.command_line() + "\n", plan.warnings
        elif what == "libvirt-xml":
            xml = libvirt_xml(plan)
            output, warnings = xml.text, xml.warnings
        else:
            try:
                file_mode = int(mode, 8)
            except ValueError:
                raise UsageError(f"--mode {quoted(mode)} is not an octal file "
                                 "mode such as 660") from None
            report = host_prep(plan, create=not check, mode=file_mode)
            for item in report.items:
                sys.stdout.write(f"{item.status.value}: {item.subject}: "
                                 f"{item.message}\n")
            if report.commands:
                sys.stdout.write("run as root:\n")
                for command in report.commands:
                    sys.stdout.write(f"  {command}\n")
            for warning in plan.warnings:
                sys.stderr.write(f"acrn-shm: warning: {escaped(warning)}\n")
            return EXIT_OK if report.ready else EXIT_FINDINGS
    except AcrnShmError as exc:
        return fail(str(exc))
    for warning in warnings:
        sys.stderr.write(f"acrn-shm: warning: {escaped(warning)}\n")
    sys.stdout.write(output)
    return EXIT_OK


def run_qemu_try(**options) -> int:
    """Boot two guests on a region with a live status line; report what
    crossed (0), what did not (1), or why they cannot boot (2)."""
    from ..host import qemu_lab, qemu_try

    try:
        if not options["timeout"] > 0:
            raise UsageError(f"--timeout {options['timeout']:g}: give "
                             "seconds, more than 0")
        tools = qemu_lab.find_tools(options["kernel"], options["accel"])
        work = qemu_try.make_work_dir(options["keep"])
        try:
            trial = qemu_try.plan_trial(
                work, scenario=options["scenario"], region=options["region"],
                vms=tuple(filter(None, (options["vms"] or "").split(","))),
                name=options["name"], size_mb=options["size"],
                plain=options["plain"])
        except AcrnShmError:
            if options["keep"] is None:
                os.rmdir(work)
            raise
    except AcrnShmError as exc:
        return fail(str(exc))
    for warning in trial.warnings:
        sys.stderr.write(f"acrn-shm: warning: {escaped(warning)}\n")
    sys.stdout.write(qemu_try.describe(trial, tools))
    sys.stdout.flush()
    status = plain_console(stderr=True).status("starting QEMU")

    def on_event(event) -> None:
        status.update("   ".join(f"{label}: {stage}"
                                 for label, stage in event.stages)
                      + f"   [{event.elapsed:.0f} s]")

    try:
        with status:
            result = qemu_try.run_trial(trial, tools, on_event,
                                        options["timeout"])
    except AcrnShmError as exc:
        return fail(str(exc))
    sys.stdout.write(qemu_try.render(result, options["keep"] is not None))
    if result.passed and options["keep"] is None:
        qemu_try.remove_work(trial)
    return EXIT_OK if result.passed else EXIT_FINDINGS


def run_ivshmem_server(socket: str, size: int, vectors: int,
                       shm: str | None, mem_dir: str | None = None,
                       pidfile: str | None = None) -> int:
    """Serve until a signal; say on stderr when it listens, and log
    warnings (a peer dropped, fds run out) there as ``acrn-shm:``
    lines."""
    import logging

    from ..runtime.ivshmem_server import log, run

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("acrn-shm: %(message)s"))
    handler.setLevel(logging.WARNING)
    log.addHandler(handler)

    def ready(_server) -> None:
        sys.stderr.write(f"acrn-shm: ivshmem server listening on "
                         f"{escaped(socket)} ({size} MB, {vectors} "
                         "vector(s))\n")
        sys.stderr.flush()

    try:
        run(socket, size, vectors, shm, ready, shm_dir=mem_dir,
            pidfile=pidfile)
    except AcrnShmError as exc:
        return fail(str(exc))
    finally:
        log.removeHandler(handler)
    return EXIT_OK


def run_guest(args: list[str]) -> int:
    """``acrn-shm guest ARGS``: the guest tool, as ``python3 -m
    acrn_ivshmem.guest ARGS``."""
    from ..guest import main as guest_main

    return guest_main(args, "acrn-shm guest")


#: The options qemu-args, libvirt-xml and host-prep share, by parameter.
QEMU_OPTIONS = {option.param: option for option in (
    Option("scenario", ("--scenario",), metavar="S.xml",
           help="Take the regions of --vm from this scenario."),
    Option("vm", ("--vm",), metavar="NAME",
           help="The VM (name, or id in a legacy scenario)."),
    Option("region", ("--region",), metavar="NAME",
           help="Only this region of --vm (one per ivshmem server)."),
    Option("name", ("--name",), metavar="N",
           help="Standalone: the region name."),
    Option("size", ("--size",), int, metavar="MB", parser=size_option,
           help="Standalone: size in MB (a power of two)."),
    Option("shm_dir", ("--shm-dir",), default="/dev/shm", metavar="DIR",
           help="Folder of the backing files (hugetlbfs for hugepages)."),
    Option("hugepages", ("--hugepages",), bool, False,
           help="Back the memory with huge pages."),
    Option("master", ("--master",), bool, False,
           help="This guest owns the memory on migration (master=on)."),
    Option("addr", ("--addr",), metavar="dd.f",
           help="Standalone: the PCI slot."),
    Option("doorbell", ("--doorbell",), bool, False,
           help="ivshmem-doorbell via an ivshmem server (it owns the "
           "memory)."),
    Option("socket", ("--socket",), metavar="PATH",
           help="The ivshmem-server socket."),
    Option("vectors", ("--vectors",), int, metavar="N",
           help="MSI-X vectors of the doorbell."),
)}

QEMU_ARGS = Command(
    "qemu-args", functools.partial(run_qemu, "qemu-args"),
    tuple(QEMU_OPTIONS.values()),
    """Print the QEMU flags that give a VM (or a region) ivshmem.

Example: acrn-shm qemu-args --scenario hybrid_rt.xml --vm
POST_STD_VM1""")

LIBVIRT_XML = Command(
    "libvirt-xml", functools.partial(run_qemu, "libvirt-xml"),
    tuple(QEMU_OPTIONS.values()),
    """Print the libvirt <shmem> elements for the same devices.

Example: acrn-shm libvirt-xml --name shm_region_0 --size 2""")

HOST_PREP = Command(
    "host-prep", functools.partial(run_qemu, "host-prep"), (
        *QEMU_OPTIONS.values(),
        Option("check", ("--check",), bool, False,
               help="Only check; create nothing."),
        Option("mode", ("--mode",), default="660", metavar="OCTAL",
               help="File mode of created files."),
    ), """Create or check the backing files, hugepages and mounts on the host.

Example: acrn-shm host-prep --scenario hybrid_rt.xml --vm
POST_STD_VM1 --check""")

GUEST = Command(
    "guest", run_guest, (),
    """Inside a guest: list, read, write ivshmem devices, ring
doorbells, print uio binding commands (python3 -m
acrn_ivshmem.guest --help).

Example: acrn-shm guest read -d 00:08.0 --length 64""",
    extra_args=True, context_settings={
        "allow_extra_args": True, "ignore_unknown_options": True,
        "help_option_names": []})

QEMU_TRY = Command("qemu-try", run_qemu_try, (
    Option("scenario", ("--scenario",), metavar="S.xml",
           help="Try a region of this scenario."),
    Option("region", ("--region",), metavar="NAME",
           help="The region (needed when the scenario has several)."),
    Option("vms", ("--vms",), metavar="A,B",
           help="Two VMs of the region (default: its first two)."),
    QEMU_OPTIONS["name"],
    QEMU_OPTIONS["size"],
    Option("plain", ("--plain",), bool, False,
           help="ivshmem-plain on a file, as qemu-args gives it: bytes "
           "only, no doorbell."),
    Option("kernel", ("--kernel",), metavar="PATH",
           help="Guest kernel (default: $ACRN_SHM_E2E_KERNEL, "
           ".ci/cache/vmlinuz of a checkout, the newest readable "
           "/boot/vmlinuz-*)."),
    Option("accel", ("--accel",), default="auto", metavar="auto|kvm|tcg",
           help="auto: KVM with VT-x/AMD-V and /dev/kvm, else TCG."),
    Option("timeout", ("--timeout",), float, 120.0, metavar="S",
           help="Kill the guests after S seconds."),
    Option("keep", ("--keep",), metavar="DIR",
           help="Keep the consoles, QEMU command lines, image and memory "
           "in DIR (new or empty)."),
), """Boot two small QEMU guests on a region; show bytes and a
doorbell crossing.

Example: acrn-shm qemu-try --scenario hybrid_rt_v3.xml --region
shm_region_0""")

IVSHMEM_SERVER = Command("ivshmem-server", run_ivshmem_server, (
    Option("socket", ("--socket",), metavar="PATH", required=True,
           help="UNIX socket to listen on."),
    Option("size", ("--size",), int, metavar="MB", parser=size_option,
           required=True, help="Shared memory size in MB."),
    Option("vectors", ("--vectors",), int, 1, metavar="N",
           help="Interrupt vectors per peer."),
    Option("shm", ("--shm",), metavar="NAME",
           help="Use /dev/shm/NAME, or DIR/NAME with --mem-dir (default: "
           "anonymous memory)."),
    Option("mem_dir", ("--mem-dir",), metavar="DIR",
           help="Make the memory in DIR, a hugetlbfs mount say (QEMU's "
           "ivshmem-server -m): an unnamed file, or DIR/NAME with --shm."),
    Option("pidfile", ("--pidfile",), metavar="PATH",
           help="Write the process id there once listening; removed on "
           "exit."),
), """Serve QEMU's ivshmem-doorbell protocol (Debian ships no server).

Example: acrn-shm ivshmem-server --socket /tmp/ivshmem.sock --size 2
--vectors 2""")
