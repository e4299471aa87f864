"""The typer application of ``acrn-shm``: every command, its options
and help, calling the command modules' ``run_*`` functions."""

import sys

from .. import __version__
from .exits import EXIT_OK
from .build import run_build
from .launch import run_check_launch, run_launch_script
from .lint import LINT, LINT_FORMATS, print_rule_doc, print_rules
from .qemu import run_ivshmem_server, run_qemu, run_qemu_try, size_option
from .regions import (
    ADD_REGION, EDIT_OPTIONS, REMOVE_REGION, SET_REGION, print_regions,
    run_graph,
)
from .spec import Argument, Command, Option
from .upgrade import run_upgrade


def choices(values):
    """Shell completion offering ``values``."""
    def complete(incomplete: str) -> list[str]:
        return [value for value in values if value.startswith(incomplete)]
    return complete


def typer_option(option: Option):
    """The typer option of a declared :class:`~.spec.Option`."""
    import typer

    return typer.Option(
        *option.names, metavar=option.metavar, help=option.help,
        autocompletion=option.complete or (
            choices(option.choices) if option.choices else None))


def _annotation(param):
    """The annotated type typer reads a declared parameter from."""
    from typing import Annotated, Optional

    import typer

    if isinstance(param, Argument):
        return Annotated[list[str] if param.variadic else str,
                         typer.Argument(metavar=param.metavar,
                                        help=param.help,
                                        autocompletion=param.complete)]
    kind = list[param.kind] if param.multiple else param.kind
    if param.default is None:
        kind = Optional[kind]
    return Annotated[kind, typer_option(param)]


def add_command(app, command: Command) -> None:
    """Add the typer command made from ``command`` to ``app``."""
    import inspect

    import typer

    def run(**params) -> None:
        raise typer.Exit(command.run(**params))

    run.__signature__ = inspect.Signature([
        inspect.Parameter(
            param.param, inspect.Parameter.KEYWORD_ONLY,
            default=(inspect.Parameter.empty if isinstance(param, Argument)
                     else param.default),
            annotation=_annotation(param))
        for param in command.params])
    run.__doc__ = command.help
    run.__name__ = command.name.replace("-", "_")
    app.command(command.name)(run)


def build_app():
    """The typer application with every command."""
    from typing import Annotated, Optional

    import typer

    app = typer.Typer(
        name="acrn-shm",
        help="Inter-VM shared memory (IVSHMEM) for ACRN and QEMU: lint "
        "board and scenario XMLs.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    def version_callback(value: bool) -> None:
        if value:
            sys.stdout.write(f"acrn-shm {__version__}\n")
            raise typer.Exit(EXIT_OK)

    @app.callback()
    def root(
        version: Annotated[bool, typer.Option(
            "--version", callback=version_callback, is_eager=True,
            help="Print the version and exit.")] = False,
    ) -> None:
        """Inter-VM shared memory (IVSHMEM) for ACRN and QEMU."""

    add_command(app, LINT)
    for command in (ADD_REGION, REMOVE_REGION, SET_REGION):
        add_command(app, command)

    @app.command("upgrade")
    def upgrade_command(
        legacy: Annotated[str, typer.Argument(metavar="LEGACY.xml")],
        output: Annotated[Optional[str], typer.Option(
            "--output", "-o", metavar="NEW.xml",
            help="Write the v3 scenario here (default: standard output); "
            "an existing file is replaced.")] = None,
        launch: Annotated[Optional[list[str]], typer.Option(
            "--launch", metavar="LAUNCH.xml",
            help="A v2.x launch XML whose shm_regions to carry over "
            "(repeatable).")] = None,
        into: Annotated[Optional[str], typer.Option(
            "--into", metavar="V3.xml",
            help="Merge the converted regions into this v3 scenario "
            "instead.")] = None,
        board: Annotated[Optional[str], typer_option(
            EDIT_OPTIONS["board"])] = None,
        force: Annotated[bool, typer_option(EDIT_OPTIONS["force"])] = False,
    ) -> None:
        """Convert a legacy (v2.x) scenario, or its regions, to ACRN v3.

        Example: acrn-shm upgrade hybrid_rt.xml --launch launch.xml -o v3.xml
        """
        raise typer.Exit(run_upgrade(legacy, output, launch or [], into,
                                     board, force))

    @app.command("launch-script")
    def launch_script_command(
        scenario: Annotated[str, typer.Argument(metavar="SCENARIO.xml")],
        board: Annotated[str, typer.Option(
            "--board", metavar="BOARD.xml",
            help="The board XML (APIC ids of the VM's pCPUs).")],
        vm: Annotated[Optional[list[str]], typer.Option(
            "--vm", metavar="NAME",
            help="Only this post-launched VM (repeatable).")] = None,
        all_vms: Annotated[bool, typer.Option(
            "--all", help="Every post-launched VM (the default).")] = False,
        out_dir: Annotated[Optional[str], typer.Option(
            "--output-dir", "-o", metavar="DIR",
            help="Write launch_user_vm_id<N>.sh files here (default: "
            "print the one script).")] = None,
        acrn_version: Annotated[Optional[str], typer.Option(
            "--acrn-version", metavar="X.Y",
            help="acrn-dm to write for: 3.3 and later pass the region id "
            "(default 3.3; 2.7 for legacy scenarios).")] = None,
        ivshmem_args: Annotated[bool, typer.Option(
            "--ivshmem-args",
            help="Print only the raw acrn-dm ivshmem arguments.")] = False,
        launch: Annotated[Optional[list[str]], typer.Option(
            "--launch", metavar="LAUNCH.xml",
            help="v2.x launch XML of a legacy scenario (repeatable).")
        ] = None,
    ) -> None:
        """Write acrn-dm launch scripts for post-launched VMs.

        Example: acrn-shm launch-script hybrid_rt.xml --board whl-ipc-i5.xml
        --vm POST_STD_VM1 -o scripts/
        """
        raise typer.Exit(run_launch_script(
            scenario, board, vm or [], all_vms, out_dir, acrn_version,
            ivshmem_args, launch or []))

    @app.command("check-launch")
    def check_launch_command(
        script: Annotated[str, typer.Argument(metavar="SCRIPT.sh")],
        scenario: Annotated[str, typer.Option(
            "--scenario", metavar="SCENARIO.xml",
            help="The scenario the script should follow.")],
        vm: Annotated[Optional[str], typer.Option(
            "--vm", metavar="NAME",
            help="The VM the script starts (default: from its header, else "
            "acrn-dm's last argument).")
        ] = None,
        launch: Annotated[Optional[list[str]], typer.Option(
            "--launch", metavar="LAUNCH.xml",
            help="v2.x launch XML of a legacy scenario (repeatable).")
        ] = None,
        output_format: Annotated[str, typer.Option(
            "--output-format", "-f", metavar="|".join(LINT_FORMATS),
            help="Report format.",
            autocompletion=choices(LINT_FORMATS))] = "text",
    ) -> None:
        """Report where a launch script's ivshmem devices drift from the
        scenario.

        Example: acrn-shm check-launch launch_user_vm_id1.sh --scenario
        hybrid_rt.xml
        """
        raise typer.Exit(run_check_launch(script, scenario, vm,
                                          launch or [], output_format))

    qemu_option = {
        "scenario": typer.Option(
            "--scenario", metavar="S.xml",
            help="Take the regions of --vm from this scenario."),
        "vm": typer.Option(
            "--vm", metavar="NAME",
            help="The VM (name, or id in a legacy scenario)."),
        "region": typer.Option(
            "--region", metavar="NAME",
            help="Only this region of --vm (one per ivshmem server)."),
        "name": typer.Option(
            "--name", metavar="N", help="Standalone: the region name."),
        "size": typer.Option(
            "--size", metavar="MB", parser=size_option,
            help="Standalone: size in MB (a power of two)."),
        "shm_dir": typer.Option(
            "--shm-dir", metavar="DIR",
            help="Folder of the backing files (hugetlbfs for hugepages)."),
        "hugepages": typer.Option(
            "--hugepages", help="Back the memory with huge pages."),
        "master": typer.Option(
            "--master",
            help="This guest owns the memory on migration (master=on)."),
        "addr": typer.Option(
            "--addr", metavar="dd.f", help="Standalone: the PCI slot."),
        "doorbell": typer.Option(
            "--doorbell",
            help="ivshmem-doorbell via an ivshmem server (it owns the "
            "memory)."),
        "socket": typer.Option(
            "--socket", metavar="PATH", help="The ivshmem-server socket."),
        "vectors": typer.Option(
            "--vectors", metavar="N", help="MSI-X vectors of the doorbell."),
    }

    @app.command("qemu-args")
    def qemu_args_command(
        scenario: Annotated[Optional[str], qemu_option["scenario"]] = None,
        vm: Annotated[Optional[str], qemu_option["vm"]] = None,
        region: Annotated[Optional[str], qemu_option["region"]] = None,
        name: Annotated[Optional[str], qemu_option["name"]] = None,
        size: Annotated[Optional[int], qemu_option["size"]] = None,
        shm_dir: Annotated[str, qemu_option["shm_dir"]] = "/dev/shm",
        hugepages: Annotated[bool, qemu_option["hugepages"]] = False,
        master: Annotated[bool, qemu_option["master"]] = False,
        addr: Annotated[Optional[str], qemu_option["addr"]] = None,
        doorbell: Annotated[bool, qemu_option["doorbell"]] = False,
        socket: Annotated[Optional[str], qemu_option["socket"]] = None,
        vectors: Annotated[Optional[int], qemu_option["vectors"]] = None,
    ) -> None:
        """Print the QEMU flags that give a VM (or a region) ivshmem.

        Example: acrn-shm qemu-args --scenario hybrid_rt.xml --vm
        POST_STD_VM1
        """
        options = dict(locals())
        raise typer.Exit(run_qemu("qemu-args", options))

    @app.command("libvirt-xml")
    def libvirt_xml_command(
        scenario: Annotated[Optional[str], qemu_option["scenario"]] = None,
        vm: Annotated[Optional[str], qemu_option["vm"]] = None,
        region: Annotated[Optional[str], qemu_option["region"]] = None,
        name: Annotated[Optional[str], qemu_option["name"]] = None,
        size: Annotated[Optional[int], qemu_option["size"]] = None,
        shm_dir: Annotated[str, qemu_option["shm_dir"]] = "/dev/shm",
        hugepages: Annotated[bool, qemu_option["hugepages"]] = False,
        master: Annotated[bool, qemu_option["master"]] = False,
        addr: Annotated[Optional[str], qemu_option["addr"]] = None,
        doorbell: Annotated[bool, qemu_option["doorbell"]] = False,
        socket: Annotated[Optional[str], qemu_option["socket"]] = None,
        vectors: Annotated[Optional[int], qemu_option["vectors"]] = None,
    ) -> None:
        """Print the libvirt <shmem> elements for the same devices.

        Example: acrn-shm libvirt-xml --name shm_region_0 --size 2
        """
        options = dict(locals())
        raise typer.Exit(run_qemu("libvirt-xml", options))

    @app.command("host-prep")
    def host_prep_command(
        scenario: Annotated[Optional[str], qemu_option["scenario"]] = None,
        vm: Annotated[Optional[str], qemu_option["vm"]] = None,
        region: Annotated[Optional[str], qemu_option["region"]] = None,
        name: Annotated[Optional[str], qemu_option["name"]] = None,
        size: Annotated[Optional[int], qemu_option["size"]] = None,
        shm_dir: Annotated[str, qemu_option["shm_dir"]] = "/dev/shm",
        hugepages: Annotated[bool, qemu_option["hugepages"]] = False,
        master: Annotated[bool, qemu_option["master"]] = False,
        addr: Annotated[Optional[str], qemu_option["addr"]] = None,
        doorbell: Annotated[bool, qemu_option["doorbell"]] = False,
        socket: Annotated[Optional[str], qemu_option["socket"]] = None,
        vectors: Annotated[Optional[int], qemu_option["vectors"]] = None,
        check: Annotated[bool, typer.Option(
            "--check", help="Only check; create nothing.")] = False,
        mode: Annotated[str, typer.Option(
            "--mode", metavar="OCTAL",
            help="File mode of created files.")] = "660",
    ) -> None:
        """Create or check the backing files, hugepages and mounts on the host.

        Example: acrn-shm host-prep --scenario hybrid_rt.xml --vm
        POST_STD_VM1 --check
        """
        options = dict(locals())
        raise typer.Exit(run_qemu("host-prep", options, check, mode))

    @app.command("guest", context_settings={
        "allow_extra_args": True, "ignore_unknown_options": True,
        "help_option_names": []})
    def guest_command(ctx: typer.Context) -> None:
        """Inside a guest: list, read, write ivshmem devices, ring
        doorbells, print uio binding commands (python3 -m
        acrn_ivshmem.guest --help).

        Example: acrn-shm guest read -d 00:08.0 --length 64
        """
        from ..guest import main as guest_main

        raise typer.Exit(guest_main(list(ctx.args), "acrn-shm guest"))

    @app.command("qemu-try")
    def qemu_try_command(
        scenario: Annotated[Optional[str], typer.Option(
            "--scenario", metavar="S.xml",
            help="Try a region of this scenario.")] = None,
        region: Annotated[Optional[str], typer.Option(
            "--region", metavar="NAME",
            help="The region (needed when the scenario has several).")
        ] = None,
        vms: Annotated[Optional[str], typer.Option(
            "--vms", metavar="A,B",
            help="Two VMs of the region (default: its first two).")] = None,
        name: Annotated[Optional[str], qemu_option["name"]] = None,
        size: Annotated[Optional[int], qemu_option["size"]] = None,
        plain: Annotated[bool, typer.Option(
            "--plain", help="ivshmem-plain on a file, as qemu-args gives "
            "it: bytes only, no doorbell.")] = False,
        kernel: Annotated[Optional[str], typer.Option(
            "--kernel", metavar="PATH",
            help="Guest kernel (default: $ACRN_SHM_E2E_KERNEL, "
            ".ci/cache/vmlinuz of a checkout, the newest readable "
            "/boot/vmlinuz-*).")] = None,
        accel: Annotated[str, typer.Option(
            "--accel", metavar="auto|kvm|tcg",
            help="auto: KVM with VT-x/AMD-V and /dev/kvm, else TCG.")
        ] = "auto",
        timeout: Annotated[float, typer.Option(
            "--timeout", metavar="S",
            help="Kill the guests after S seconds.")] = 120.0,
        keep: Annotated[Optional[str], typer.Option(
            "--keep", metavar="DIR",
            help="Keep the consoles, QEMU command lines, image and memory "
            "in DIR (new or empty).")] = None,
    ) -> None:
        """Boot two small QEMU guests on a region; show bytes and a
        doorbell crossing.

        Example: acrn-shm qemu-try --scenario hybrid_rt_v3.xml --region
        shm_region_0
        """
        options = dict(locals())
        raise typer.Exit(run_qemu_try(options))

    @app.command("ivshmem-server")
    def ivshmem_server_command(
        socket: Annotated[str, typer.Option(
            "--socket", metavar="PATH", help="UNIX socket to listen on.")],
        size: Annotated[int, typer.Option(
            "--size", metavar="MB", parser=size_option,
            help="Shared memory size in MB.")],
        vectors: Annotated[int, typer.Option(
            "--vectors", metavar="N", help="Interrupt vectors per peer.")
        ] = 1,
        shm: Annotated[Optional[str], typer.Option(
            "--shm", metavar="NAME",
            help="Use /dev/shm/NAME, or DIR/NAME with --mem-dir (default: "
            "anonymous memory).")] = None,
        mem_dir: Annotated[Optional[str], typer.Option(
            "--mem-dir", metavar="DIR",
            help="Make the memory in DIR, a hugetlbfs mount say (QEMU's "
            "ivshmem-server -m): an unnamed file, or DIR/NAME with "
            "--shm.")] = None,
        pidfile: Annotated[Optional[str], typer.Option(
            "--pidfile", metavar="PATH",
            help="Write the process id there once listening; removed on "
            "exit.")] = None,
    ) -> None:
        """Serve QEMU's ivshmem-doorbell protocol (Debian ships no server).

        Example: acrn-shm ivshmem-server --socket /tmp/ivshmem.sock --size 2
        --vectors 2
        """
        raise typer.Exit(run_ivshmem_server(socket, size, vectors, shm,
                                            mem_dir, pidfile))

    @app.command("build", context_settings={
        "allow_extra_args": True, "ignore_unknown_options": True})
    def build_command(
        ctx: typer.Context,
        acrn_src: Annotated[str, typer.Option(
            "--acrn-src", metavar="DIR",
            help="An ACRN source tree (acrn-hypervisor checkout).")],
        board: Annotated[str, typer.Option(
            "--board", metavar="BOARD.xml", help="The board XML.")],
        scenario: Annotated[str, typer.Option(
            "--scenario", metavar="SCENARIO.xml",
            help="The scenario XML.")],
        out: Annotated[Optional[str], typer.Option(
            "--out", metavar="DIR",
            help="ACRN's O=: artefacts land in DIR/hypervisor.")] = None,
        release: Annotated[bool, typer.Option(
            "--release", help="RELEASE=y (default: a debug build).")
        ] = False,
        jobs: Annotated[Optional[int], typer.Option(
            "--jobs", "-j", metavar="N", help="make -jN.")] = None,
        python: Annotated[Optional[str], typer.Option(
            "--python", metavar="PATH",
            help="Python for ACRN's scripts (needs elementpath<3, "
            "xmlschema<2); default $ACRN_SHM_BUILD_PYTHON.")] = None,
        clean: Annotated[bool, typer.Option(
            "--clean", help="Remove a build folder configured for another "
            "board or scenario first.")] = False,
    ) -> None:
        """Lint, then build the ACRN hypervisor with its own make.

        Extra make arguments go after --. Example: acrn-shm build
        --acrn-src ~/acrn-hypervisor --board whl-ipc-i5.xml --scenario
        hybrid_rt.xml --out build-hybrid
        """
        from ..build.hypervisor import BuildRequest

        extra = list(ctx.args)
        if extra and extra[0] == "--":
            extra = extra[1:]
        raise typer.Exit(run_build(BuildRequest(
            acrn_src, board, scenario, out, release, jobs, python, clean,
            tuple(extra))))

    @app.command("graph")
    def graph_command(
        scenario: Annotated[str, typer.Argument(metavar="SCENARIO.xml")],
        output: Annotated[Optional[str], typer.Option(
            "--output", "-o", metavar="FILE",
            help="Write the picture here (.svg, .png, .pdf, .dot or .gv; "
            "default: DOT text on stdout).")] = None,
        output_format: Annotated[Optional[str], typer.Option(
            "--output-format", "-f", metavar="svg|png|pdf|dot",
            help="The format (default: from the -o suffix).",
            autocompletion=choices(("svg", "png", "pdf", "dot")))] = None,
    ) -> None:
        """Draw the VMs and the IVSHMEM regions they share (PNG and PDF
        need Graphviz; SVG and DOT do not).

        Example: acrn-shm graph hybrid_rt.xml -o topology.svg
        """
        raise typer.Exit(run_graph(scenario, output, output_format))

    @app.command("regions")
    def regions_command(
        scenario: Annotated[str, typer.Argument(metavar="SCENARIO.xml")],
        output_format: Annotated[str, typer.Option(
            "--output-format", "-f", metavar="text|json",
            help="A table, or JSON.",
            autocompletion=choices(("text", "json")))] = "text",
    ) -> None:
        """List the IVSHMEM regions of a scenario.

        Example: acrn-shm regions hybrid_rt.xml -f json
        """
        raise typer.Exit(print_regions(scenario, output_format))

    @app.command("lsp")
    def lsp_command(
        stdio: Annotated[bool, typer.Option(
            "--stdio", help="Talk over stdin and stdout (the only way; "
            "accepted because editors pass it).")] = False,
        no_cache: Annotated[bool, typer.Option(
            "--no-cache",
            help="Do not read or write the result cache.")] = False,
    ) -> None:
        """Run the language server (LSP) on stdin and stdout for editors.

        Example: acrn-shm lsp   (started by the editor; see docs/editors.md)
        """
        from ..lsp import serve

        raise typer.Exit(serve(use_cache=not no_cache))

    @app.command("rules")
    def list_rules(
        output_format: Annotated[str, typer.Option(
            "--output-format", "-f", metavar="text|json",
            help="A table, or JSON.",
            autocompletion=choices(("text", "json")))] = "text",
    ) -> None:
        """List every rule: code, name, default severity, summary.

        Example: acrn-shm rules
        """
        raise typer.Exit(print_rules(output_format))

    def complete_code(incomplete: str) -> list[str]:
        from ..rules import RULES

        # Keep the case typed so far: explain takes ism201 as well.
        return [incomplete + code[len(incomplete):] for code in RULES
                if code.startswith(incomplete.upper())]

    @app.command()
    def explain(
        code: Annotated[str, typer.Argument(
            help="A rule code, e.g. ISM201.",
            autocompletion=complete_code)],
        output_format: Annotated[str, typer.Option(
            "--output-format", "-f", metavar="text|markdown",
            help="Plain text, or the Markdown page of docs/rules/.",
            autocompletion=choices(("text", "markdown")))] = "text",
    ) -> None:
        """Print the documentation of one rule.

        Example: acrn-shm explain ISM201
        """
        raise typer.Exit(print_rule_doc(code, output_format))

    from .channel import channel_app
    app.add_typer(channel_app(), name="channel")
    return app
