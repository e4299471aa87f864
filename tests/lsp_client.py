"""A small LSP client for the tests: starts ``acrn-shm lsp`` as a new
process and talks JSON-RPC to it over its stdin and stdout.

Written here on purpose, frame by frame, so that the tests see exactly
the bytes the server sends and can misbehave as clients do (vanish
without ``shutdown``, close the pipe mid-lint).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

TIMEOUT = 60.0


class LspClient:
    """One server process and the messages it sent, in order."""

    def __init__(self, cwd: Path, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "acrn_ivshmem", "lsp", *args],
            cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=dict(os.environ, **(env or {})))
        self.inbox: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            length = None
            while True:
                header = stream.readline()
                if not header:
                    self.inbox.put(None)
                    return
                if header in (b"\r\n", b"\n"):
                    break
                name, _, value = header.decode("ascii").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = stream.read(length)
            self.inbox.put(json.loads(body))

    def send(self, message: dict) -> None:
        """Write one JSON-RPC message."""
        body = json.dumps(message).encode("utf-8")
        self.process.stdin.write(
            b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def notify(self, method: str, params: dict | None = None) -> None:
        """Send a notification."""
        self.send({"jsonrpc": "2.0", "method": method,
                   "params": params or {}})

    def request(self, method: str, params: dict | None = None):
        """Send a request and return its result (raise on an error)."""
        self.next_id += 1
        ident = self.next_id
        self.send({"jsonrpc": "2.0", "id": ident, "method": method,
                   "params": params or {}})
        reply = self.wait(lambda m: m.get("id") == ident
                          and "method" not in m)
        if "error" in reply:
            raise AssertionError(f"{method} failed: {reply['error']}")
        return reply["result"]

    def wait(self, wanted, timeout: float = TIMEOUT) -> dict:
        """The first message (seen before or arriving) ``wanted`` takes;
        it is consumed."""
        for index, message in enumerate(self.seen):
            if wanted(message):
                return self.seen.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no such message in {timeout} s; got: {self.seen}")
            try:
                message = self.inbox.get(timeout=left)
            except queue.Empty:
                continue
            if message is None:
                raise AssertionError(
                    "the server closed its output: "
                    + self.process.stderr.read().decode(errors="replace"))
            if wanted(message):
                return message
            self.seen.append(message)

    def initialize(self, options: dict | None = None,
                   root: Path | None = None) -> dict:
        """The LSP handshake; returns the server's capabilities."""
        result = self.request("initialize", {
            "processId": os.getpid(),
            "rootUri": root.as_uri() if root else None,
            "capabilities": {"textDocument": {
                "publishDiagnostics": {"versionSupport": True},
                "hover": {"contentFormat": ["markdown"]},
            }},
            "initializationOptions": options or {},
        })
        self.notify("initialized")
        return result["capabilities"]

    def open(self, path: Path, text: str | None = None,
             version: int = 1) -> str:
        """didOpen ``path`` (its text from disk unless given); its URI."""
        uri = path.as_uri()
        if text is None:
            text = path.read_bytes().decode("utf-8")
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "xml", "version": version,
            "text": text}})
        return uri

    def change(self, uri: str, version: int, changes: list[dict]) -> None:
        """didChange with the given content changes."""
        self.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": changes})

    def diagnostics(self, uri: str, version: int | None = None,
                    wanted=None, timeout: float = TIMEOUT) -> list[dict]:
        """The next diagnostics published for ``uri`` (for ``version``,
        and that ``wanted`` takes, when given)."""
        def match(message: dict) -> bool:
            if message.get("method") != "textDocument/publishDiagnostics":
                return False
            params = message["params"]
            return (params["uri"] == uri
                    and (version is None or params.get("version") == version)
                    and (wanted is None or wanted(params["diagnostics"])))
        return self.wait(match, timeout)["params"]["diagnostics"]

    def stop(self, timeout: float = 30) -> int:
        """shutdown, exit; the exit status."""
        self.request("shutdown")
        self.notify("exit")
        return self.process.wait(timeout)

    def kill(self) -> None:
        """End the process if it still runs (test clean-up)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout,
                       self.process.stderr):
            try:
                stream.close()
            except OSError:
                pass


def whl_with_3mb_region(acrn_data: Path, folder: Path) -> Path:
    """Copy ACRN v3.3 whl-ipc-i5's board and hybrid_rt.xml into
    ``folder``, the region made 3 MB (ISM201); the scenario's path."""
    source = acrn_data / "v3.3" / "whl-ipc-i5"
    for name in ("whl-ipc-i5.xml", "hybrid_rt.xml"):
        shutil.copyfile(source / name, folder / name)
    scenario = folder / "hybrid_rt.xml"
    scenario.write_text(scenario.read_text().replace(
        "<IVSHMEM_SIZE>2<", "<IVSHMEM_SIZE>3<", 1))
    return scenario


def position(line: int, character: int) -> dict:
    """An LSP position."""
    return {"line": line, "character": character}


def span(start: tuple[int, int], end: tuple[int, int]) -> dict:
    """An LSP range from two (line, character) pairs."""
    return {"start": position(*start), "end": position(*end)}


def apply_edits(text: str, edits: list[dict]) -> str:
    """``text`` with LSP text edits applied (lines end in \\n here;
    characters are UTF-16 units)."""
    lines = text.split("\n")

    def offset(pos: dict) -> int:
        before = sum(len(line) + 1 for line in lines[:pos["line"]])
        line = lines[pos["line"]] if pos["line"] < len(lines) else ""
        units = 0
        for index, char in enumerate(line):
            if units >= pos["character"]:
                return before + index
            units += 2 if ord(char) > 0xFFFF else 1
        return before + len(line)

    ordered = sorted(edits, key=lambda e: (e["range"]["start"]["line"],
                                           e["range"]["start"]["character"]),
                     reverse=True)
    for edit in ordered:
        start, end = offset(edit["range"]["start"]), offset(
            edit["range"]["end"])
        text = text[:start] + edit["newText"] + text[end:]
    return text
