"""``acrn-shm channel``: message channels from the command line.

The commands only read options, call the library and print:
:mod:`acrn_ivshmem.channel` (regions, channels, :func:`~acrn_ivshmem.
channel.region_status`, the bench) and :mod:`acrn_ivshmem.emit.channel_plan`.

A TARGET is a host file (a QEMU backing file such as
``/dev/shm/shm_region_0``: any TARGET holding a ``/`` or naming an
existing file), a region name (in a guest: the ivshmem device whose
channel header carries that name), or, instead of TARGET, ``--device
BDF|id=N`` (a guest's ivshmem device by PCI address or ACRN region id).

Exit status: 0 done; 1 timed out (``recv``: fewer messages than
``--count``, or none at all without it, before ``--timeout``; ``send``:
the ring stayed full for ``--timeout``); 2 usage or input error (one
line, naming the file or device); 130 interrupted (Ctrl-C).
"""

import contextlib
import os
import shlex
import signal
import stat
import sys
from ..errors import AcrnShmError, UsageError, escaped, quoted
from .exits import EXIT_FINDINGS, EXIT_INTERRUPTED, EXIT_OK, fail
from .spec import Argument, Command, Option, size_option

__all__ = ["COMMANDS", "HELP", "escape_message", "is_text_line"]

#: Bytes per frame of ``send --file`` (less when the ring's messages are
#: shorter).
FRAME = 65536
#: Bytes ``send`` reads from stdin at a time.
_CHUNK = 1 << 16
_FORMATS = ("text", "json")
_BACKSLASH = {0x5C: "\\\\", 0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r"}


def _timeout(message: str) -> int:
    """Print why nothing (more) came; return :data:`EXIT_FINDINGS`."""
    sys.stderr.write(f"acrn-shm: {escaped(message)}\n")
    return EXIT_FINDINGS


def _is_control(code: int) -> bool:
    return code < 0x20 or 0x7F <= code <= 0x9F


def is_text_line(message: bytes) -> bool:
    """True for UTF-8 text without control characters (a tab allowed):
    what ``recv`` prints as it is, one message per line."""
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(_is_control(ord(char)) and char != "\t" for char in text)


def escape_message(message: bytes) -> str:
    """``message`` on one line: UTF-8 text as it is, except ``\\\\``,
    ``\\n``, ``\\t``, ``\\r`` and ``\\xNN`` for other control characters
    and for bytes that are not UTF-8 (``recv --escape``)."""
    out = []
    text = message.decode("utf-8", "surrogateescape")
    for char in text:
        code = ord(char)
        if code in _BACKSLASH:
            out.append(_BACKSLASH[code])
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif _is_control(code):
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


# -- targets ---------------------------------------------------------------


def _is_path(target: str) -> bool:
    return "/" in target or os.path.lexists(target)


def _device(selector: str, sysfs: str):
    from .. import guest

    return guest.select_device(guest.find_devices(sysfs), selector)


def _one_target(target: str | None, device: str | None) -> None:
    if target is not None and device is not None:
        raise UsageError("give TARGET or --device, not both")
    if target is None and device is None:
        raise UsageError("give TARGET (a file, or a region name in a "
                         "guest) or --device BDF|id=N")


def _open_region(target: str | None, device: str | None, sysfs: str):
    """The region TARGET or ``--device`` names, mapped."""
    from .. import channel

    _one_target(target, device)
    if device is not None:
        return channel.Region.from_device(_device(device, sysfs))
    if _is_path(target):
        return channel.Region.open_file(target)
    return _guest_region(target, sysfs)


def _guest_region(name: str, sysfs: str):
    from .. import channel

    with _host_hint(name):
        return channel.find_guest_region(name, sysfs)


@contextlib.contextmanager
def _host_hint(name: str):
    """Add to "no device holds channel NAME" how to name a host file."""
    from .. import channel

    try:
        yield
    except channel.ChannelError as exc:
        if not str(exc).startswith("no ivshmem device holds channel"):
            raise
        raise channel.ChannelError(
            f"{exc} (on the host, give the backing file: a path such as "
            f"/dev/shm/{name} or ./{name})") from None


@contextlib.contextmanager
def _open_channel(target: str | None, device: str | None, sysfs: str,
                  peer: int, server: str | None, takeover: bool):
    """Attached to TARGET as ``peer`` for the ``with`` block, detached
    after it. Ctrl-C is held back while the channel is being opened: an
    interrupt halfway would leave views of the region that keep it from
    being unmapped; one that came meanwhile arrives inside the block."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        chan = _attach(target, device, sysfs, peer, server, takeover)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        raise
    with chan:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        yield chan


def _attach(target: str | None, device: str | None, sysfs: str,
            peer: int, server: str | None, takeover: bool):
    """Attach to TARGET as ``peer``."""
    from .. import channel

    _one_target(target, device)
    options = {"takeover": takeover}
    if target is not None and _is_path(target):
        return channel.open_file(target, peer, server=server, **options)
    if server is not None:
        raise UsageError("--server is for a host file TARGET (the ivshmem "
                         "server's doorbells)")
    if device is None:
        with _host_hint(target):
            return channel.open_guest(target, peer, sysfs=sysfs, **options)
    return channel.open_device(_device(device, sysfs), peer, **options)


def _run(body) -> int:
    """Run ``body()``: its status, 2 after an acrn-shm error, 130 after
    Ctrl-C, 0 when stdout's reader went away (``recv | head``: what was
    not written stays in the ring, released only after a write)."""
    import logging

    # The library's warnings (a doorbell that falls back to polling) as
    # acrn-shm's own lines.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("acrn-shm: warning: %(message)s"))
    handler.setLevel(logging.WARNING)
    log = logging.getLogger("acrn_ivshmem.channel")
    log.addHandler(handler)
    try:
        return body()
    except AcrnShmError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # No second error when Python flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    finally:
        log.removeHandler(handler)


# -- init ------------------------------------------------------------------


def run_init(path: str | None, size_mb: int | None, name: str,
             force: bool, device: str | None, sysfs: str) -> int:
    """Lay out a channel header in a host file or a guest region."""
    from .. import channel

    def body() -> int:
        if path is not None and device is not None:
            raise UsageError("give PATH or --device, not both")
        if device is not None:
            if size_mb is not None:
                raise UsageError("--size is for a file: a device's size "
                                 "is its BAR2")
            region = channel.Region.from_device(_device(device, sysfs))
        elif path is None:
            raise UsageError("give PATH (a host file, made if missing) or "
                             "--device BDF|id=N")
        else:
            channel.layout.check_name(name)  # before the file is made
            region = _init_file(path, size_mb)
        with region:
            header = channel.init_region(region, name, force=force)
            where = region.where
        capacity = header.rings[0][1]
        sys.stdout.write(
            f"{escaped(where)}: channel {quoted(header.name)}, "
            f"{header.region_size} bytes: two rings of {capacity} bytes, "
            f"messages up to {channel.max_message(capacity)} bytes\n")
        return EXIT_OK
    return _run(body)


def _init_file(path: str, size_mb: int | None):
    from .. import channel

    if size_mb is not None and size_mb < 1:
        raise UsageError(f"--size {size_mb}: give 1 MB or more")
    size = None if size_mb is None else size_mb << 20
    try:
        existing = os.stat(path).st_size
    except OSError:
        existing = 0
    if size is None and existing == 0:
        raise UsageError(f"{path}: give --size for a new or empty file")
    if size is not None and existing not in (0, size):
        raise UsageError(f"{path}: is {existing} bytes, not {size} "
                         f"(--size {size_mb}); nothing written")
    return channel.Region.open_file(path, create_size=size)


# -- send ------------------------------------------------------------------


def run_send(target: str | None, peer: int, file: str | None,
             frame: int, server: str | None, timeout: float | None,
             takeover: bool, device: str | None, sysfs: str) -> int:
    """Send stdin's lines (or a file's frames) as messages."""
    from .. import channel

    def body() -> int:
        if frame < 1:
            raise UsageError(f"--frame {frame}: give 1 byte or more")
        if timeout is not None and timeout < 0:
            raise UsageError(f"--timeout {timeout:g}: give 0 or more "
                             "seconds")
        source = None
        if file is not None and file != "-":
            try:
                source = open(file, "rb")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise UsageError(f"{file}: cannot read: "
                                 f"{exc.strerror}") from None
        try:
            with _open_channel(target, device, sysfs, peer, server,
                               takeover) as chan:
                sender = _Sender(chan, timeout)
                if file is None:
                    _send_lines(sender, chan.max_message)
                else:
                    fd = sys.stdin.fileno() if source is None else (
                        source.fileno())
                    _send_frames(sender, fd, min(frame, chan.max_message))
        except channel.ChannelTimeout as exc:
            return _timeout(str(exc))
        finally:
            if source is not None:
                source.close()
        return EXIT_OK
    return _run(body)


class _Sender:
    """Sends batches, counting; a full ring past the timeout raises
    :class:`ChannelTimeout` saying how many went."""

    def __init__(self, chan, timeout: float | None):
        self.chan = chan
        self.timeout = timeout
        self.sent = 0

    def send(self, messages: list) -> None:
        """Each message in a record of its own: a receiver releases
        whole records, so a batch record would make ``recv --count``
        that stops inside it receive its first part again next time."""
        for message in messages:
            if not self.chan.send_batch((message,), self.timeout):
                raise self._stayed_full()
            self.sent += 1

    def reserve(self, size: int):
        """Room for one message of up to ``size`` bytes (raises as
        :meth:`send` when the ring stays full)."""
        from ..channel import ChannelTimeout

        try:
            return self.chan.reserve(size, self.timeout)
        except ChannelTimeout:
            raise self._stayed_full() from None

    def _stayed_full(self):
        from ..channel import ChannelTimeout

        return ChannelTimeout(
            f"{self.chan.where}: ring {self.chan.peer} stayed full for "
            f"{self.timeout:g} s; {self.sent} message(s) sent")

    def commit(self, size: int) -> None:
        """Send the room of :meth:`reserve` as a message of ``size``
        bytes."""
        self.chan.commit(size)
        self.sent += 1


def _send_lines(sender: _Sender, limit: int) -> None:
    """Each line of stdin (without its newline) as one message, sent as
    soon as it was read whole."""
    pending = b""
    number = 0
    while True:
        chunk = os.read(sys.stdin.fileno(), _CHUNK)
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop() if chunk else b""
        if not chunk and lines and lines[-1] == b"":
            lines.pop()  # the newline at the end of the input
        for index, line in enumerate(lines):
            if len(line) > limit:
                sender.send(lines[:index])
                raise UsageError(
                    f"stdin line {number + index + 1} is {len(line)} bytes;"
                    f" the channel's messages are at most {limit} (send "
                    "binary data with --file)")
        if len(pending) > limit:
            sender.send(lines)
            raise UsageError(
                f"stdin line {number + len(lines) + 1} is more than "
                f"{limit} bytes; the channel's messages are at most "
                f"{limit} (send binary data with --file)")
        if lines:
            sender.send(lines)
        number += len(lines)
        if not chunk:
            return


def _send_frames(sender: _Sender, fd: int, frame: int) -> None:
    """The bytes of ``fd`` in messages of ``frame`` bytes (the last one
    shorter), then one empty message: the end. Each frame is read
    straight into the ring (reserve, commit): no copy on this side."""
    regular = stat.S_ISREG(os.fstat(fd).st_mode)
    while True:
        want = frame
        if regular:  # no more room than the bytes left (the last frame)
            left = os.fstat(fd).st_size - os.lseek(fd, 0, os.SEEK_CUR)
            want = max(0, min(frame, left))
        room = sender.reserve(want)
        size = _read_into(fd, room)
        sender.commit(size)
        if not size:
            return


def _read_into(fd: int, room: memoryview) -> int:
    """Fill ``room`` from ``fd``: fewer bytes only at the end of the
    input. What was read if reading fails is never committed: closing
    the channel drops the room unpublished."""
    done = 0
    while done < len(room):
        part = os.readv(fd, [room[done:]])
        if not part:
            break
        done += part
    return done


# -- recv ------------------------------------------------------------------


def run_recv(target: str | None, peer: int, count: int | None,
             timeout: float | None, output: str | None, escape: bool,
             server: str | None, takeover: bool, device: str | None,
             sysfs: str) -> int:
    """Print messages as lines, or write them raw to a file."""

    def body() -> int:
        if count is not None and count < 1:
            raise UsageError(f"--count {count}: give 1 or more")
        if timeout is not None and timeout < 0:
            raise UsageError(f"--timeout {timeout:g}: give 0 or more "
                             "seconds")
        if output is not None and escape:
            raise UsageError("--escape is for lines on stdout, not "
                             "--output")
        sink = _open_output(output) if output is not None else None
        try:
            with _open_channel(target, device, sysfs, peer, server,
                               takeover) as chan:
                if sink is None:
                    return _recv_lines(chan, count, timeout, escape)
                return _recv_raw(chan, count, timeout, sink)
        finally:
            if sink is not None and sink != sys.stdout.fileno():
                os.close(sink)
    return _run(body)


def _open_output(path: str) -> int:
    """A new or truncated regular file (never through a symbolic link);
    ``-`` is stdout."""
    if path == "-":
        return sys.stdout.fileno()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW
                     | os.O_CLOEXEC | os.O_NONBLOCK, 0o666)
    except OSError as exc:
        if os.path.islink(path):
            raise UsageError(f"{path}: is a symbolic link; nothing "
                             "written") from None
        raise UsageError(f"{path}: cannot write: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(f"{path}: not a regular file; nothing written")
    os.set_blocking(fd, True)
    os.ftruncate(fd, 0)
    return fd


def _missing(chan, count: int | None, got: int,
             timeout: float | None) -> int:
    wanted = f"{got} of {count}" if count is not None else "none"
    return _timeout(f"{chan.where}: no message for {timeout:g} s; "
                    f"received {wanted}")


def _recv_lines(chan, count: int | None, timeout: float | None,
                escape: bool) -> int:
    """One message per line on stdout. Without ``escape`` a message that
    is not a line of text is refused, and left in the ring (received
    one at a time, released once printed)."""
    out = sys.stdout.buffer
    got = 0
    while count is None or got < count:
        most = 1 if not escape else min(1024, (count or 1024) - got)
        messages = chan.recv_batch(most, timeout, release=False)
        if not messages:
            out.flush()
            if got and count is None:
                return EXIT_OK
            return _missing(chan, count, got, timeout)
        for message in messages:
            if escape:
                out.write(escape_message(message).encode("utf-8") + b"\n")
            elif is_text_line(message):
                out.write(message + b"\n")
            else:
                out.flush()
                raise UsageError(
                    f"{chan.where}: message {got + 1} ({len(message)} "
                    "bytes) is not a line of text; it stays in the ring: "
                    "receive it with --escape or --output FILE")
            got += 1
        out.flush()
        chan.release()
    return EXIT_OK


def _recv_raw(chan, count: int | None, timeout: float | None,
              sink: int) -> int:
    """Messages' bytes one after the other into ``sink``, until an empty
    message (the end ``send --file`` sends), ``count`` messages or the
    timeout."""
    got = 0
    while count is None or got < count:
        most = min(1024, (count or 1024) - got)
        messages = chan.recv_batch(most, timeout, release=False)
        if not messages:
            if got and count is None:
                return EXIT_OK
            return _missing(chan, count, got, timeout)
        for message in messages:
            if not message:
                chan.release()
                return EXIT_OK
            view = memoryview(message)
            while view:
                view = view[os.write(sink, view):]
            got += 1
        chan.release()
    return EXIT_OK


# -- stat ------------------------------------------------------------------


def run_stat(target: str | None, device: str | None, sysfs: str,
             output_format: str, watch: float) -> int:
    """Print the header, the peers and the rings."""
    import json

    from ..channel import region_status

    def body() -> int:
        if output_format not in _FORMATS:
            raise UsageError(f"--format {quoted(output_format)}: choose "
                             "text or json")
        if watch < 0:
            raise UsageError(f"--watch {watch:g}: give 0 or more seconds")
        with _open_region(target, device, sysfs) as region:
            status = region_status(region, watch)
        if output_format == "json":
            sys.stdout.write(json.dumps(status.as_dict(), indent=2) + "\n")
        else:
            sys.stdout.write(_stat_text(status))
        return EXIT_OK
    return _run(body)


def _stat_text(status) -> str:
    header = status.header
    major, minor = header.version
    lines = [f"channel {quoted(header.name)} in {escaped(status.where)}: "
             f"layout {major}.{minor}, {header.region_size} bytes "
             f"({status.mapped} mapped)"]
    for peer in status.peers:
        text = (f"peer {peer.peer}: {peer.state}, epoch {peer.epoch}, "
                f"heartbeat {peer.heartbeat}")
        if peer.age_at_most is not None:
            text += f", beat {peer.age_at_most:g} s ago or less (alive)"
        elif peer.age_at_least is not None:
            text += (f", still for {peer.age_at_least:g} s (not alive: "
                     "stopped or killed)")
        elif peer.state == "attached":
            text += " (not watched)"
        bell = peer.as_dict()["doorbell"]
        if bell is not None:
            text += (f", doorbell: ivshmem peer {bell['ivshmem_peer']} "
                     f"vector {bell['vector']}")
        waits = peer.as_dict()["waiting"]
        if waits:
            text += f", waiting for {' and '.join(waits)}"
        lines.append(text)
    for ring in status.rings:
        text = (f"ring {ring.ring} (peer {ring.writer} -> peer "
                f"{1 - ring.writer}): {ring.capacity} bytes at "
                f"{ring.offset:#x}, messages up to {ring.max_message}; ")
        if ring.valid:
            text += (f"{ring.used} bytes used "
                     f"({100 * ring.used / ring.capacity:.1f}%), "
                     f"head {ring.head}, tail {ring.tail}")
        else:
            text += (f"head {ring.head} and tail {ring.tail} break the "
                     "format (corrupted)")
        lines.append(text)
    return "\n".join(lines) + "\n"


# -- bench, c-header, plan -------------------------------------------------


def run_bench(target: str | None, device: str | None, sysfs: str,
              size_mb: int | None, quick: bool, cc: str | None,
              force: bool) -> int:
    """Measure (see :mod:`acrn_ivshmem.channel.bench`)."""
    from ..channel import bench, region_status

    def body() -> int:
        if (target is not None or device is not None) and (
                size_mb is not None):
            raise UsageError("--size is for fresh regions; a TARGET has "
                             "its own size")
        path = None
        size = bench.REGION if size_mb is None else size_mb << 20
        if target is not None or device is not None:
            with _open_region(target, device, sysfs) as region:
                size = region.size
                busy = [peer.peer for peer in region_status(region).peers
                        if peer.state == "attached"]
                where = region.where
            if busy and not force:
                raise UsageError(
                    f"{where}: peer {busy[0]} is attached; the bench "
                    "initialises the region again (--force to do it "
                    "anyway)")
            path = target if target is not None and _is_path(target) \
                else _resource2(target, device, sysfs)
        elif size < 1 << 20:
            raise UsageError(f"--size {size_mb}: give 1 MB or more")
        bench.measure(quick, cc, size, path)
        return EXIT_OK
    return _run(body)


def _resource2(name: str | None, device: str | None, sysfs: str) -> str:
    """The BAR2 file of the guest device ``--device`` or ``name`` finds."""
    from .. import guest

    if device is not None:
        return os.path.join(_device(device, sysfs).path, "resource2")
    with _guest_region(name, sysfs) as region:
        address = region.where
    found = next(item for item in guest.find_devices(sysfs)
                 if item.address == address)
    return os.path.join(found.path, "resource2")


def run_c_header(folder: str | None) -> int:
    """Write ivshmem_channel.h into ``folder`` (or print it)."""
    from ..channel import C_HEADER, c_header

    def body() -> int:
        if folder is None:
            sys.stdout.write(c_header())
            return EXIT_OK
        from ..io.xmlio import save_output

        if not os.path.isdir(folder):
            raise UsageError(f"{folder}: not a folder (-o takes the folder "
                             f"{C_HEADER} goes into)")
        path = os.path.join(folder, C_HEADER)
        save_output(path, c_header().encode("utf-8"))
        sys.stdout.write(f"wrote {escaped(path)}\n")
        return EXIT_OK
    return _run(body)


def run_plan(scenario: str, board: str | None, launch: list[str] | None,
             shm_dir: str, acrn_version: str, output_format: str) -> int:
    """Print where each VM's end of each region is."""
    import json

    from ..emit.channel_plan import plan_channels
    from ..emit.launch import parse_version
    from ..lint.config import load_config

    def body() -> int:
        if output_format not in _FORMATS:
            raise UsageError(f"--format {quoted(output_format)}: choose "
                             "text or json")
        planned = plan_channels(scenario, board, launch or [], shm_dir,
                                parse_version(acrn_version),
                                load_config(None))
        if output_format == "json":
            sys.stdout.write(json.dumps(planned.as_dict(), indent=2)
                             + "\n")
        else:
            sys.stdout.write(_plan_text(planned))
        return EXIT_OK
    return _run(body)


def _plan_text(planned) -> str:
    if not any(region.ends for region in planned.regions):
        lines = [f"{escaped(planned.scenario)}: no VM shares a region"]
    else:
        rows = [("REGION", "MB", "PROVIDER", "PEER", "VM", "KIND", "VBDF",
                 "ACRN DEVICE", "QEMU BACKING FILE", "QEMU ADDR")]
        for region in planned.regions:
            for end in region.ends:
                rows.append((
                    region.name,
                    "-" if region.size_mb is None else str(region.size_mb),
                    region.provider,
                    "-" if end.peer is None else str(end.peer), end.vm,
                    end.kind, end.vbdf,
                    "acrn-dm " + shlex.join(end.acrn_dm) if end.acrn_dm
                    else "from the hypervisor", end.qemu_file,
                    end.qemu_addr))
        rows = [tuple(map(escaped, row)) for row in rows]
        widths = [max(len(row[i]) for row in rows)
                  for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(width) for cell, width in
                           zip(row, widths)).rstrip() for row in rows]
    lines += [f"note: {escaped(note)}" for note in planned.notes]
    return "\n".join(lines) + "\n"


# -- the declarations -----------------------------------------------------


#: The help of ``acrn-shm channel``.
HELP = ("Message channels over an ivshmem region: lay one out, send, "
        "receive, look, measure, plan from the scenario. TARGET is a host "
        "file (a path with '/', or an existing file), or a region name (in "
        "a guest: the device whose channel header has it); --device "
        "BDF|id=N picks a guest device instead. Example: acrn-shm channel "
        "plan hybrid_rt.xml")

_TARGET = Argument(
    "target", "[TARGET]", optional=True,
    help="A host file (a path with '/', or an existing file), or a region "
    "name (in a guest: the device whose header has it).")
_DEVICE = Option(
    "device", ("--device", "-d"), metavar="BDF|id=N",
    help="In a guest: the ivshmem device at this PCI address or with this "
    "ACRN region id (instead of TARGET).")
_SYSFS = Option("sysfs", ("--sysfs",), default="/sys", metavar="DIR",
                help="The sysfs mount (guest devices).")
_PEER = Option("peer", ("--peer", "-p"), int, metavar="0|1", required=True,
               help="This side: peer 0 sends on ring 0, peer 1 on ring 1.")
_SERVER = Option(
    "server", ("--server",), metavar="SOCKET",
    help="An ivshmem server serving the TARGET file: wait on its doorbells "
    "(polls, after one line, when it is not there).")
_TAKEOVER = Option("takeover", ("--takeover",), bool, False,
                   help="Attach even if another process seems to hold the "
                   "peer.")
_FORMAT = Option("output_format", ("--format", "--output-format", "-f"),
                 default="text", metavar="text|json", choices=_FORMATS,
                 help="Text, or JSON.")
_TIMEOUT = "--timeout", "-t"

INIT = Command("init", run_init, (
    Argument("path", "[PATH]", optional=True,
             help="The host file (a QEMU backing file, e.g. "
             "/dev/shm/shm_region_0); made (mode 0600) if missing."),
    Option("name", ("--name", "-n"), metavar="NAME", required=True,
           help="The region's name, as in the scenario."),
    Option("size_mb", ("--size", "-s"), int, metavar="SIZE",
           parser=size_option,
           help="MB (2), or with a binary unit (2M, 1G): the file's size. "
           "Needed for a new file; an existing one must have it."),
    Option("force", ("--force",), bool, False,
           help="Initialise even while a peer is attached."),
    _DEVICE, _SYSFS,
), """Lay out a channel: the named header, both rings empty, both
peers free.

Example: acrn-shm channel init /dev/shm/shm_region_0 --size 2
--name shm_region_0""")

SEND = Command("send", run_send, (
    _TARGET, _PEER,
    Option("file", ("--file",), metavar="FILE",
           help="Send FILE's bytes ('-': stdin) in frames of --frame bytes, "
           "then an empty message as the end."),
    Option("frame", ("--frame",), int, FRAME, metavar="BYTES",
           help="Frame size for --file (at most the channel's message "
           "limit)."),
    _SERVER,
    Option("timeout", _TIMEOUT, float, metavar="S",
           help="Give up (exit 1) when the ring stays full S seconds "
           "(default: wait)."),
    _TAKEOVER, _DEVICE, _SYSFS,
), """Send each line of stdin (without its newline) as one message.

Example: acrn-shm channel send /dev/shm/shm_region_0 --peer 0
< lines.txt""")

RECV = Command("recv", run_recv, (
    _TARGET, _PEER,
    Option("count", ("--count", "-c"), int, metavar="K",
           help="Stop after K messages (exit 1 if fewer come)."),
    Option("timeout", _TIMEOUT, float, metavar="S",
           help="Stop when no message came for S seconds (default: "
           "wait)."),
    Option("output", ("--output", "-o"), metavar="FILE",
           help="Write the messages' bytes to FILE ('-': stdout), no "
           "separators, until an empty message (the end send --file "
           "sends)."),
    Option("escape", ("--escape",), bool, False,
           help="Print every message on one line with \\\\, \\n, \\t, "
           "\\r and \\xNN escapes (default: print text lines as they are, "
           "refuse others)."),
    _SERVER, _TAKEOVER, _DEVICE, _SYSFS,
), """Print each message as a line (or write the bytes to --output).

Example: acrn-shm channel recv /dev/shm/shm_region_0 --peer 1
--count 1 --timeout 5""")

STAT = Command("stat", run_stat, (
    _TARGET, _FORMAT,
    Option("watch", ("--watch", "-w"), float, 1.0, metavar="S",
           help="Watch attached peers' heartbeats up to S seconds to bound "
           "their age (0: do not)."),
    _DEVICE, _SYSFS,
), """Show the header, both peers (state, epoch, heartbeat) and each
ring's fill.

Example: acrn-shm channel stat /dev/shm/shm_region_0 -f json""")

BENCH = Command("bench", run_bench, (
    _TARGET,
    Option("size_mb", ("--size", "-s"), int, metavar="SIZE",
           parser=size_option,
           help="Fresh regions of SIZE in /dev/shm (default 2 MB)."),
    Option("quick", ("--quick",), bool, False,
           help="Fewer messages, one run per figure."),
    Option("cc", ("--cc",), metavar="COMPILER",
           help="C compiler for the C side (default: cc, gcc, clang)."),
    Option("force", ("--force",), bool, False,
           help="Measure over a TARGET with a peer attached (it is "
           "initialised again)."),
    _DEVICE, _SYSFS,
), """Measure the channel (C and Python) beside memcpy, a UNIX
socket pair and a pipe, each figure beside its goal.

Example: acrn-shm channel bench --quick""")

C_HEADER_COMMAND = Command("c-header", run_c_header, (
    Option("folder", ("--output", "-o"), metavar="DIR",
           help="Write DIR/ivshmem_channel.h (default: print it)."),
), """Write the header-only C99 implementation, ivshmem_channel.h.

Example: acrn-shm channel c-header -o include/""")

PLAN = Command("plan", run_plan, (
    Argument("scenario", "SCENARIO.xml"),
    Option("board", ("--board", "-b"), metavar="BOARD.xml",
           help="The board (notes a Service VM VBDF on a native device)."),
    Option("launch", ("--launch",), multiple=True, metavar="LAUNCH.xml",
           help="A legacy scenario's launch XML (repeatable)."),
    Option("shm_dir", ("--shm-dir",), default="/dev/shm", metavar="DIR",
           help="Folder of QEMU's backing files."),
    Option("acrn_version", ("--acrn-version",), default="3.3",
           metavar="X.Y", help="acrn-dm gets the region id from 3.3 on."),
    _FORMAT,
), """Show, per VM that shares a region, the region, its size, the
channel peer and how the VM reaches it under ACRN and QEMU.

Example: acrn-shm channel plan hybrid_rt.xml --board
whl-ipc-i5.xml""")

#: The channel commands, in the order of ``acrn-shm channel --help``.
COMMANDS = (INIT, SEND, RECV, STAT, BENCH, C_HEADER_COMMAND, PLAN)
