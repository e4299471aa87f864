"""``acrn-shm qemu-args``, ``libvirt-xml``, ``host-prep``, ``qemu-try``
and ``ivshmem-server``: QEMU on this host."""

import os
import sys

from ..errors import AcrnShmError, UsageError, escaped, quoted
from .exits import EXIT_FINDINGS, EXIT_OK, fail
from .render import plain_console


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


def run_qemu(what: str, options: dict, check: bool = False,
             mode: str = "660") -> int:
    """qemu-args, libvirt-xml or host-prep from the shared options."""
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


def run_qemu_try(options: dict) -> int:
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


def size_option(text: str) -> int:
    """Read a ``--size`` value: MB, or a number with a unit (``1G``)."""
    from ..units import parse_size_mb

    return parse_size_mb(text, "--size")
