"""The typer application of ``acrn-shm``: every command, its options
and help, calling the command modules' ``run_*`` functions."""

import sys

from .. import __version__
from .exits import EXIT_OK
from .lint import (
    LINT_FORMATS, print_rule_doc, print_rules, run_lint,
)
from .launch import run_check_launch, run_launch_script
from .qemu import run_ivshmem_server, run_qemu, run_qemu_try, size_option
from .regions import (
    completed_scenario, print_regions, run_graph, run_region_edit,
    scenario_names,
)
from .upgrade import run_upgrade
from .build import run_build


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

    def choices(values):
        def complete(incomplete: str) -> list[str]:
            return [value for value in values if value.startswith(incomplete)]
        return complete

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

    @app.command()
    def lint(
        paths: Annotated[list[str], typer.Argument(
            metavar="SCENARIO.xml|DIR...",
            help="Scenario or launch XMLs, or folders: each folder at or "
            "below DIR that holds XMLs is a board folder (one board XML "
            "plus scenarios).")],
        board: Annotated[Optional[str], typer.Option(
            "--board", "-b", metavar="BOARD.xml",
            help="Board XML (default: the one beside each scenario).")
        ] = None,
        output_format: Annotated[str, typer.Option(
            "--output-format", "-f", metavar="|".join(LINT_FORMATS),
            help="How to print the findings.",
            autocompletion=choices(LINT_FORMATS))] = "text",
        select: Annotated[Optional[list[str]], typer.Option(
            "--select", metavar="CODES",
            help="Only these codes or prefixes (comma-separated).")] = None,
        ignore: Annotated[Optional[list[str]], typer.Option(
            "--ignore", metavar="CODES",
            help="Skip these codes or prefixes (comma-separated).")] = None,
        config: Annotated[Optional[str], typer.Option(
            "--config", metavar="PYPROJECT.toml",
            help="Read [tool.acrn-shm] from this file (default: the "
            "nearest pyproject.toml).")] = None,
        no_cache: Annotated[bool, typer.Option(
            "--no-cache",
            help="Do not read or write the result cache.")] = False,
        fix: Annotated[bool, typer.Option(
            "--fix", help="Apply the safe fixes (listed on stderr), then "
            "report what is left.")] = False,
        diff: Annotated[bool, typer.Option(
            "--diff", help="Print the safe fixes as a unified diff; write "
            "nothing.")] = False,
        skip_other_xml: Annotated[bool, typer.Option(
            "--skip-other-xml", help="Skip files whose root element is "
            "not <acrn-config> (for pre-commit).")] = False,
        acrn_schema: Annotated[bool, typer.Option(
            "--acrn-schema", help="Also run ACRN's own checks (ISM901-"
            "ISM904): the schema and data checks of an ACRN source tree, "
            "reported at lines of your file.")] = False,
        acrn_src: Annotated[Optional[str], typer.Option(
            "--acrn-src", metavar="DIR",
            help="The ACRN source tree for --acrn-schema (default: "
            "$ACRN_SRC).")] = None,
    ) -> None:
        """Check IVSHMEM regions of ACRN scenarios against every rule.

        Example: acrn-shm lint --board whl-ipc-i5.xml hybrid_rt.xml
        """
        raise typer.Exit(run_lint(paths, board, output_format, select,
                                  ignore, config, no_cache, fix, diff,
                                  skip_other_xml, acrn_schema, acrn_src))

    def complete_vms(ctx: typer.Context, incomplete: str) -> list[str]:
        # Comma-separated: complete the last name, offer each VM once.
        done, comma, last = incomplete.rpartition(",")
        chosen = done.split(",") if comma else []
        return [done + comma + vm
                for vm in scenario_names(completed_scenario(ctx), "vms")
                if vm.startswith(last) and vm not in chosen]

    def complete_provider(incomplete: str) -> list[str]:
        return [p for p in ("hv", "dm") if p.startswith(incomplete)]

    def complete_region(ctx: typer.Context, incomplete: str) -> list[str]:
        return [name for name in scenario_names(completed_scenario(ctx),
                                                "regions")
                if name.startswith(incomplete)]

    region_name = typer.Argument(metavar="NAME",
                                 autocompletion=complete_region)

    edit_options = {
        "board": typer.Option(
            "--board", "-b", metavar="BOARD.xml",
            help="Board XML (default: the one beside the scenario)."),
        "diff": typer.Option(
            "--diff", help="Preview: print the edit as a unified diff and "
            "write nothing; exit 1 if the edit would be refused."),
        "dry_run": typer.Option(
            "--dry-run", help="Write nothing; say what the edit does."),
        "force": typer.Option(
            "--force", help="Write even if the edit adds lint errors."),
        "size": typer.Option(
            "--size", metavar="SIZE",
            help="MB (8), or with a binary unit: 512M, 1G, 1024K. ACRN "
            "takes a power of two from 2 to 512 MB; other sizes are "
            "refused as lint errors (ISM201)."),
        "vms": typer.Option("--vms", metavar="A,B[,C]",
                            help="VMs by name or id, comma-separated.",
                            autocompletion=complete_vms),
        "provider": typer.Option("--provider", metavar="hv|dm",
                                 help="Hypervisor (hv) or device model "
                                 "(dm).", autocompletion=complete_provider),
        "region_id": typer.Option(
            "--region-id", metavar="N",
            help="IVSHMEM_REGION_ID, the PCI subsystem id the guest sees "
            "(0..65535, one per region: ISM212). Only ACRN v3.3 knows it: "
            "v3.0-v3.2 reject the element, v2.x scenarios cannot hold "
            "it."),
        "vbdf": typer.Option("--vbdf", metavar="VM=bb:dd.f",
                             help="A VM's VBDF (repeatable; v3)."),
    }

    @app.command("add-region")
    def add_region_command(
        scenario: Annotated[str, typer.Argument(metavar="SCENARIO.xml")],
        name: Annotated[Optional[str], typer.Option(
            "--name", help="Region name (default: first free "
            "shm_region_N).")] = None,
        size: Annotated[Optional[str], edit_options["size"]] = None,
        vms: Annotated[Optional[str], edit_options["vms"]] = None,
        provider: Annotated[str, edit_options["provider"]] = "hv",
        region_id: Annotated[Optional[int], edit_options["region_id"]
                             ] = None,
        vbdf: Annotated[Optional[list[str]], edit_options["vbdf"]] = None,
        board: Annotated[Optional[str], edit_options["board"]] = None,
        diff: Annotated[bool, edit_options["diff"]] = False,
        dry_run: Annotated[bool, edit_options["dry_run"]] = False,
        force: Annotated[bool, edit_options["force"]] = False,
    ) -> None:
        """Add a region to a legacy or v3 scenario, keeping every byte.

        Defaults: the first free shm_region_N, 2 MB, hv, each VM's first
        free VBDF and, when any region of the file has an
        IVSHMEM_REGION_ID, the lowest id no region has.

        Example: acrn-shm add-region hybrid_rt.xml --vms 0,2 --size 4
        """
        raise typer.Exit(run_region_edit(
            "add-region", scenario, name, size, vms, provider, region_id,
            vbdf, board, diff, dry_run, force))

    @app.command("remove-region")
    def remove_region_command(
        scenario: Annotated[str, typer.Argument(metavar="SCENARIO.xml")],
        name: Annotated[str, region_name],
        board: Annotated[Optional[str], edit_options["board"]] = None,
        diff: Annotated[bool, edit_options["diff"]] = False,
        dry_run: Annotated[bool, edit_options["dry_run"]] = False,
        force: Annotated[bool, edit_options["force"]] = False,
    ) -> None:
        """Remove a region by name (the file as it was before add-region
        added it, when it was the last).

        Example: acrn-shm remove-region hybrid_rt.xml shm_region_1
        """
        raise typer.Exit(run_region_edit(
            "remove-region", scenario, name, board=board, diff=diff,
            dry_run=dry_run, force=force))

    @app.command("set-region")
    def set_region_command(
        scenario: Annotated[str, typer.Argument(metavar="SCENARIO.xml")],
        name: Annotated[str, region_name],
        size: Annotated[Optional[str], edit_options["size"]] = None,
        vms: Annotated[Optional[str], edit_options["vms"]] = None,
        provider: Annotated[Optional[str], edit_options["provider"]
                            ] = None,
        region_id: Annotated[Optional[int], edit_options["region_id"]
                             ] = None,
        vbdf: Annotated[Optional[list[str]], edit_options["vbdf"]] = None,
        board: Annotated[Optional[str], edit_options["board"]] = None,
        diff: Annotated[bool, edit_options["diff"]] = False,
        dry_run: Annotated[bool, edit_options["dry_run"]] = False,
        force: Annotated[bool, edit_options["force"]] = False,
    ) -> None:
        """Change a region's size, VMs, provider, region id or VBDFs.

        Example: acrn-shm set-region hybrid_rt.xml shm_region_0 --size 4
        """
        raise typer.Exit(run_region_edit(
            "set-region", scenario, name, size, vms, provider, region_id,
            vbdf, board, diff, dry_run, force))

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
        board: Annotated[Optional[str], edit_options["board"]] = None,
        force: Annotated[bool, edit_options["force"]] = False,
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
