"""The language server: pygls over stdio, one state per open document.

Linting runs in one worker thread, one document version at a time: a
change while a lint runs marks the document dirty, and the lint that
follows takes the newest text, so a burst of edits costs one or two
lints, not one each. After a change every rule but the structure check
(ISM001) runs at once; the structure check runs with them when the
document is opened or saved and once the text has not changed for
:data:`STRUCTURE_DELAY` seconds. Diagnostics are published only for the
version they were computed from.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from .. import __version__
from . import actions, completion, diagnostics, hover, navigation
from .engine import LintConfig, Linted, Problem, Scenario, Workspace, encode
from .text import Pos, Text

#: Seconds without a change before the structure check (ISM001) runs.
STRUCTURE_DELAY = 0.5
#: Environment variable: the address of rule pages, ``{code}`` filled in.
DOCS_URL_ENV = "ACRN_SHM_RULE_DOCS_URL"


@dataclass
class DocState:
    """An open document: its newest text and what linting it gave."""

    uri: str
    path: str
    version: int | None
    text: Text
    linted: Linted | None = None
    linted_text: Text | None = None
    good: Linted | None = None
    running: bool = False
    dirty: bool = False
    want_full: bool = False
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)
    closed: bool = False


class AcrnShmServer(LanguageServer):
    """acrn-shm's language server; see :func:`build` for its features."""

    def __init__(self, use_cache: bool = True):
        super().__init__("acrn-shm", __version__,
                         text_document_sync_kind=(
                             types.TextDocumentSyncKind.Incremental))
        self.workspace_lint = Workspace(use_cache)
        self.docs: dict[str, DocState] = {}
        self.docs_base: str | None = os.environ.get(DOCS_URL_ENV) or None
        self.structure_delay = STRUCTURE_DELAY
        self.shutdown_requested = False
        self.pool = ThreadPoolExecutor(max_workers=1,
                                       thread_name_prefix="acrn-shm-lint")

    # --- linting ---------------------------------------------------------

    def lint_now(self, path: str, text: Text,
                 full: bool) -> tuple[Linted, list[types.Diagnostic]]:
        """Lint ``text`` as the file ``path``: the result and its
        diagnostics (never raises)."""
        try:
            linted = self._lint(path, text, full)
        except Exception as exc:  # noqa: BLE001 - report, never crash
            linted = Linted(problems=[Problem(
                1, 1, f"internal error: {type(exc).__name__}: {exc}")])
        return linted, diagnostics.of(text, linted, self.docs_base)

    def _lint(self, path: str, text: Text, full: bool) -> Linted:
        try:
            data = encode(text.source)
        except ValueError as exc:
            index, message = exc.args
            line, column = text.to_loc(text.pos_at(index))
            return Linted(problems=[Problem(line, column, message)])
        config = self.workspace_lint.config_for(path)
        problems = []
        if isinstance(config, Problem):
            problems.append(config)
            config = LintConfig(use_cache=self.workspace_lint.use_cache)
        linted = self.workspace_lint.lint(path, data, config, full)
        linted.problems[:0] = problems
        return linted

    def schedule(self, state: DocState, full: bool) -> None:
        """Lint ``state`` soon (with the structure check if ``full``)."""
        state.want_full = state.want_full or full
        if state.running:
            state.dirty = True
            return
        state.running = True
        asyncio.get_running_loop().create_task(self._run(state))

    async def _run(self, state: DocState) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not state.closed:
                full, state.want_full, state.dirty = state.want_full, \
                    False, False
                version, text = state.version, state.text
                linted, found = await loop.run_in_executor(
                    self.pool, self.lint_now, state.path, text, full)
                if state.closed:
                    return
                if state.version == version and state.text is text:
                    self._store(state, text, linted)
                    self.text_document_publish_diagnostics(
                        types.PublishDiagnosticsParams(
                            uri=state.uri, version=version,
                            diagnostics=found))
                if not (state.dirty or state.want_full):
                    return
        finally:
            state.running = False

    @staticmethod
    def _store(state: DocState, text: Text, linted: Linted) -> None:
        state.linted, state.linted_text = linted, text
        if linted.document is not None:
            state.good = linted

    async def current(self, state: DocState) -> Linted:
        """The lint result of the newest text (linting it if needed;
        without the structure check, which no feature here needs)."""
        text = state.text
        if state.linted is not None and state.linted_text is text:
            return state.linted
        linted, _found = await asyncio.get_running_loop().run_in_executor(
            self.pool, self.lint_now, state.path, text, False)
        if state.text is text:
            self._store(state, text, linted)
        return linted

    def after_change(self, state: DocState) -> None:
        """Lint now without, and after a pause with, the structure check."""
        self.schedule(state, full=False)
        if state.timer is not None:
            state.timer.cancel()
        state.timer = asyncio.get_running_loop().call_later(
            self.structure_delay, self.schedule, state, True)

    async def linted(self, uri: str, fallback: bool = False
                     ) -> tuple[DocState, Linted] | None:
        """The open document ``uri`` and the lint result of its newest
        text (None when it is not open). With ``fallback``, a text that
        does not parse gives the last version that did."""
        state = self.docs.get(uri)
        if state is None:
            return None
        linted = await self.current(state)
        if fallback and linted.document is None and state.good is not None:
            linted = state.good
        return state, linted


def _path_of(uri: str) -> str:
    path = to_fs_path(uri)
    if path:
        return path
    # An unsaved buffer: lint it as a file of that name here.
    name = uri.rsplit("/", 1)[-1] or "untitled.xml"
    return os.path.join(os.getcwd(), name)


def build(use_cache: bool = True) -> AcrnShmServer:
    """The server with every feature registered."""
    server = AcrnShmServer(use_cache)

    @server.feature(types.INITIALIZE)
    def initialize(ls: AcrnShmServer, params: types.InitializeParams):
        options = params.initialization_options
        if isinstance(options, dict):
            base = options.get("ruleDocsUrl")
            if isinstance(base, str) and base:
                ls.docs_base = base
            delay = options.get("structureDelay")
            if isinstance(delay, (int, float)) and delay >= 0:
                ls.structure_delay = float(delay)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: AcrnShmServer, *_args):
        ls.shutdown_requested = True

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: AcrnShmServer,
                 params: types.DidOpenTextDocumentParams):
        item = params.text_document
        old = ls.docs.pop(item.uri, None)
        if old is not None:
            old.closed = True
        state = DocState(item.uri, _path_of(item.uri), item.version,
                         Text(item.text))
        ls.docs[item.uri] = state
        ls.schedule(state, full=True)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: AcrnShmServer,
                   params: types.DidChangeTextDocumentParams):
        state = ls.docs.get(params.text_document.uri)
        if state is None:
            return
        text = state.text
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                text = text.apply(
                    Pos(change.range.start.line,
                        change.range.start.character),
                    Pos(change.range.end.line, change.range.end.character),
                    change.text)
            else:
                text = Text(change.text)
        state.text, state.version = text, params.text_document.version
        ls.after_change(state)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE,
                    types.TextDocumentSaveRegistrationOptions(
                        include_text=False))
    def did_save(ls: AcrnShmServer,
                 params: types.DidSaveTextDocumentParams):
        state = ls.docs.get(params.text_document.uri)
        if state is not None:
            ls.schedule(state, full=True)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: AcrnShmServer,
                  params: types.DidCloseTextDocumentParams):
        state = ls.docs.pop(params.text_document.uri, None)
        if state is None:
            return
        state.closed = True
        if state.timer is not None:
            state.timer.cancel()
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=state.uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[
                        types.CodeActionKind.QuickFix,
                        types.CodeActionKind.SourceFixAll]))
    async def code_action(ls: AcrnShmServer,
                          params: types.CodeActionParams):
        found = await ls.linted(params.text_document.uri)
        if found is None:
            return None
        state, linted = found
        text, version, uri = state.text, state.version, state.uri
        wanted = params.context.only
        found: list[types.CodeAction] = []
        if not wanted or any(_kind(k).startswith("quickfix")
                             for k in wanted):
            found += actions.fixes(uri, version, text, linted.fixes,
                                   params.range, params.context.diagnostics)
            found += actions.ignores(uri, version, text, linted.document,
                                     params.context.diagnostics)
        if not wanted or any(_kind(k).startswith("source")
                             for k in wanted):
            found += actions.fix_all(uri, version, text, linted.fixes)
        return found

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def on_hover(ls: AcrnShmServer, params: types.HoverParams):
        found = await ls.linted(params.text_document.uri, fallback=True)
        if found is None:
            return None
        state, linted = found
        return hover.hover(state.text, _pos(params.position),
                           _scenario(linted), linted.board)

    @server.feature(types.TEXT_DOCUMENT_COMPLETION,
                    types.CompletionOptions(trigger_characters=[">"]))
    async def on_completion(ls: AcrnShmServer,
                            params: types.CompletionParams):
        found = await ls.linted(params.text_document.uri, fallback=True)
        if found is None:
            return None
        state, linted = found
        return types.CompletionList(is_incomplete=False, items=(
            completion.complete(state.text, _pos(params.position),
                                _scenario(linted), linted.board)))

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    async def on_definition(ls: AcrnShmServer,
                            params: types.DefinitionParams):
        found = await ls.linted(params.text_document.uri)
        if found is None:
            return None
        state, linted = found
        if linted.document is None:
            return None
        return navigation.definition(state.uri, state.text,
                                     _pos(params.position),
                                     _scenario(linted), linted.document)

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    async def on_symbols(ls: AcrnShmServer,
                         params: types.DocumentSymbolParams):
        found = await ls.linted(params.text_document.uri)
        if found is None:
            return None
        state, linted = found
        return navigation.symbols(state.text, linted.model,
                                  linted.document)

    return server


def _kind(kind) -> str:
    return getattr(kind, "value", kind)


def _pos(position: types.Position) -> Pos:
    return Pos(position.line, position.character)


def _scenario(linted: Linted) -> Scenario | None:
    return linted.model if isinstance(linted.model, Scenario) else None


def serve(use_cache: bool = True) -> int:
    """Serve LSP on stdin/stdout until the client exits or disconnects;
    0 after a shutdown request, else 1 (as LSP asks of ``exit``)."""
    server = build(use_cache)
    try:
        server.start_io()
    finally:
        server.pool.shutdown(wait=False, cancel_futures=True)
    return 0 if server.shutdown_requested else 1
