"""Many ``acrn-shm`` commands in little time, each in its own process.

:class:`CliServer` starts one Python process that imports acrn-shm and
warms it up (imports, compiled schemas) once; each :meth:`CliServer.run`
then forks a child from it that runs ``cli.main()`` with the given
arguments in the given folder, stdin from ``/dev/null``, and answers
with its exit code, output and whether it had to be killed for running
past its time limit (a hang). A command costs milliseconds instead of
the half second a fresh interpreter takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

# argv[1]: JSON of a command to run once, in-process, to warm up (or
# null); argv[2], argv[3]: files for a child's stdout and stderr.
# Requests on stdin, one JSON object a line: argv, cwd, timeout and an
# optional "setup" (Python run in the child before cli.main, e.g. to set
# xmlio.step_hook). Replies on stdout, one JSON object a line.
SERVER = r"""
import contextlib, io, json, os, signal, sys, time
from acrn_ivshmem import cli
from acrn_ivshmem.io import xmlio

warm, out_path, err_path = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
replies = os.fdopen(os.dup(1), "w")
if warm:
    with contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        sys.argv = ["acrn-shm", *warm]
        try:
            cli.main()
        except SystemExit:
            pass
replies.write("ready\n")
replies.flush()
for line in sys.stdin:
    request = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            for fd, path in ((1, out_path), (2, err_path)):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT
                                | os.O_TRUNC), fd)
            os.chdir(request["cwd"])
            exec(request.get("setup") or "")
            sys.argv = ["acrn-shm", *request["argv"]]
            try:
                cli.main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + request["timeout"]
    hung = False
    while True:
        done, status, _usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            hung = True
            os.kill(pid, signal.SIGKILL)
            _pid, status, _usage = os.wait4(pid, 0)
            break
        time.sleep(0.005)
    replies.write(json.dumps({
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "hung": hung,
    }) + "\n")
    replies.flush()
"""


class Outcome(NamedTuple):
    """How one command ended: ``signal`` (None if it exited), exit
    ``code`` (None if killed), its ``stdout`` and ``stderr``, and
    whether it was ``hung`` (killed at its time limit)."""

    signal: int | None
    code: int | None
    stdout: str
    stderr: str
    hung: bool


class CliServer:
    """A running SERVER; use as a context manager."""

    def __init__(self, folder: Path, warm: list[str] | None = None,
                 cwd: Path | None = None):
        self.out = folder / "server-out.txt"
        self.err = folder / "server-err.txt"
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, json.dumps(warm), str(self.out),
             str(self.err)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=cwd or folder,
            env=dict(os.environ, COLUMNS="100", NO_COLOR="1", TERM="dumb"))
        assert self.process.stdout.readline() == "ready\n"

    def run(self, argv: list[str], cwd: Path, timeout: float = 20.0,
            setup: str | None = None) -> Outcome:
        """Run ``acrn-shm ARGV`` in ``cwd`` in a forked child."""
        self.process.stdin.write(json.dumps({
            "argv": argv, "cwd": str(cwd), "timeout": timeout,
            "setup": setup}) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        return Outcome(reply["signal"], reply["code"], self.out.read_text(),
                       self.err.read_text(), reply["hung"])

    def close(self) -> None:
        """Stop the server (it ends when its stdin closes)."""
        self.process.stdin.close()
        self.process.stdout.close()
        assert self.process.wait(timeout=30) == 0

    def __enter__(self) -> CliServer:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
