"""Find the VM a launch script starts: acrn-dm's last argument.

A launch script acrn-shm or ACRN did not write has no ``# Launch script
for VM name:`` header, but acrn-dm takes the VM name as its last
argument. :func:`acrn_dm_vm_name` splits the script into simple
commands the way bash does as far as that needs (quotes, escapes,
``$(...)``, ``${...}`` and backquotes nested to any depth, comments,
line continuations, ``;``/``&``/``|`` separators, redirections and
here-documents, array assignments), finds the ``acrn-dm`` call and reads
its last argument:

- a literal word (quotes removed) is the name as it is;
- ``$name`` or ``${name}`` (quoted or not) is the literal value the
  script assigns to ``name``, when it assigns exactly one;
- ``"${name[@]}"`` is the last element of the array ``name``, as in
  ``acrn-dm "${dm_params[@]}"``.

Anything else (a command substitution, ``$1``, a name assigned two
different values) gives no name. Nothing is ever run or expanded, and
the cost is linear in the script's length.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ..io.xmlio import Loc
from .syntax import VM_NAME

__all__ = ["DmCall", "acrn_dm_vm_name"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_ASSIGNMENT = re.compile(rf"({_NAME})(\+?)=")
_REFERENCE = re.compile(rf'("?)\$(?:\{{({_NAME})\}}|({_NAME}))\1')
_ARRAY_REFERENCE = re.compile(rf'("?)\$\{{({_NAME})\[[@*]\]\}}\1')
_PREFIXES = {"exec", "nohup", "time", "command", "sudo", "env"}
_DECLARATIONS = {"export", "local", "declare", "readonly", "typeset"}
_REDIRECTION = re.compile(r"&>>?|<<<|<<-|<<|>>|<>|[<>][&|]?")
# Runs of characters with no meaning to the scanners below.
_PLAIN = re.compile(r"[^ \t\n;&|()<>\\'\"`$]+")
_PLAIN_QUOTED = re.compile(r"[^\\\"`$'(){}]+")
_LITERAL = re.compile(r"[^\\'\"$`*?\[{~]*")
_BREAK = " \t\n;&|()<>"
#: How many references one name may go through (a=$b, b=$c, ...).
_MAX_DEPTH = 8


@dataclass(frozen=True)
class _Word:
    raw: str
    start: int


@dataclass
class _Script:
    commands: list[list[_Word]] = field(default_factory=list)
    values: dict[str, list[str | None]] = field(default_factory=dict)
    arrays: dict[str, list[list[_Word]]] = field(default_factory=dict)


@dataclass(frozen=True)
class DmCall:
    """The acrn-dm call of a script: where it starts, its last argument
    as written and the VM name that argument gives (None if none)."""

    loc: Loc
    argument: str | None
    vm_name: str | None


def _skip(text: str, index: int, stack: list[str]) -> int:
    """The index after the quoted or nested text whose closers are on
    ``stack`` (innermost last); the end of ``text`` if unclosed."""
    end = len(text)
    while index < end and stack:
        plain = _PLAIN_QUOTED.match(text, index)
        if plain:
            index = plain.end()
            continue
        char, top = text[index], stack[-1]
        if top == "'":
            close = text.find("'", index)
            if close < 0:
                return end
            stack.pop()
            index = close + 1
        elif char == "\\":
            index += 2
        elif top == "`":
            if char == "`":
                stack.pop()
            index += 1
        elif char == top:
            stack.pop()
            index += 1
        elif char == "$" and text[index + 1:index + 2] in ("(", "{"):
            stack.append(")" if text[index + 1] == "(" else "}")
            index += 2
        elif char == "`":
            stack.append("`")
            index += 1
        elif top == '"':
            index += 1
        else:
            if char in "'\"":
                stack.append(char)
            elif char == "(" and top == ")":
                stack.append(")")
            index += 1
    return min(index, end)


def _word_end(text: str, index: int) -> int:
    """The end of the shell word that starts at ``index``."""
    end = len(text)
    while index < end:
        plain = _PLAIN.match(text, index)
        if plain:
            index = plain.end()
            continue
        char = text[index]
        if char in _BREAK:
            break
        if char == "\\":
            index += 2
        elif char in "'\"`":
            index = _skip(text, index + 1, [char])
        elif char == "$" and text[index + 1:index + 2] in ("(", "{"):
            index = _skip(text, index + 2,
                          [")" if text[index + 1] == "(" else "}"])
        else:
            index += 1
    return min(index, end)


def _literal(raw: str) -> str | None:
    """The value of word ``raw`` when no expansion can change it."""
    if _LITERAL.fullmatch(raw):
        return raw
    out = []
    index, end = 0, len(raw)
    if raw.startswith("~"):
        return None
    while index < end:
        char = raw[index]
        if char == "\\":
            out.append(raw[index + 1:index + 2].replace("\n", ""))
            index += 2
        elif char == "'":
            close = raw.find("'", index + 1)
            if close < 0:
                return None
            out.append(raw[index + 1:close])
            index = close + 1
        elif char == '"':
            index += 1
            while index < end and raw[index] != '"':
                if raw[index] in "$`":
                    return None
                if raw[index] == "\\" and raw[index + 1:index + 2] in (
                        "$", "`", '"', "\\", "\n"):
                    out.append(raw[index + 1].replace("\n", ""))
                    index += 2
                else:
                    out.append(raw[index])
                    index += 1
            if index >= end:
                return None
            index += 1
        elif char in "$`*?[{":
            return None
        else:
            out.append(char)
            index += 1
    return "".join(out)


class _Reader:
    """Splits a script into simple commands; see the module doc."""

    def __init__(self, text: str):
        self.text = text
        self.index = 0
        self.script = _Script()
        self.heredocs: list[tuple[str, bool]] = []

    def read(self) -> _Script:
        words: list[_Word] = []
        text, end = self.text, len(self.text)
        while self.index < end:
            char = text[self.index]
            if self._blank(newline=False):
                continue
            if char == "\n":
                self._end(words)
                words = []
                self.index += 1
                self._heredocs()
            elif char in "<>" or (char == "&" and text.startswith(
                    "&>", self.index)):
                self._redirection()
            elif char in ";&|()":
                self._end(words)
                words = []
                self.index += 1
            else:
                word = self._word()
                if word.raw.isdigit() and text[self.index:self.index + 1] \
                        in ("<", ">"):
                    continue  # an io-number: 2>&1
                words.append(word)
        self._end(words)
        return self.script

    def _blank(self, newline: bool) -> bool:
        """Skip a blank (a newline too if ``newline``), a line
        continuation or a comment; False when there is none."""
        text = self.text
        char = text[self.index]
        if char in " \t" or (newline and char == "\n"):
            self.index += 1
        elif text.startswith("\\\n", self.index):
            self.index += 2
        elif char == "#":
            newline_at = text.find("\n", self.index)
            self.index = len(text) if newline_at < 0 else newline_at
        else:
            return False
        return True

    def _word(self, in_array: bool = False) -> _Word:
        start = self.index
        self.index = _word_end(self.text, start)
        raw = self.text[start:self.index]
        assignment = _ASSIGNMENT.fullmatch(raw)
        # Arrays do not nest: in one, "b=(" is no assignment.
        if assignment and not in_array and self.text.startswith(
                "(", self.index):
            self.index += 1
            elements = self._array()
            definitions = self.script.arrays.setdefault(
                assignment.group(1), [])
            if assignment.group(2) and definitions:
                definitions[-1] = definitions[-1] + elements
            else:
                definitions.append(elements)
            raw = self.text[start:self.index]
        return _Word(raw, start)

    def _array(self) -> list[_Word]:
        elements = []
        text, end = self.text, len(self.text)
        while self.index < end:
            char = text[self.index]
            if char == ")":
                self.index += 1
                break
            if self._blank(newline=True):
                continue
            if char in _BREAK:
                self.index += 1  # not array syntax; skipped
            else:
                elements.append(self._word(in_array=True))
        return elements

    def _redirection(self):
        text = self.text
        operator = _REDIRECTION.match(text, self.index).group()
        self.index += len(operator)
        while text[self.index:self.index + 1] in (" ", "\t"):
            self.index += 1
        if self.index >= len(text) or text[self.index] in _BREAK:
            return
        target = self._word()
        if operator in ("<<", "<<-"):
            delimiter = target.raw.replace("'", "").replace('"', "")
            self.heredocs.append((delimiter.replace("\\", ""),
                                  operator == "<<-"))

    def _heredocs(self):
        """Skip the bodies of the here-documents the last line opened."""
        text = self.text
        for delimiter, tabs in self.heredocs:
            while self.index < len(text):
                newline = text.find("\n", self.index)
                stop = len(text) if newline < 0 else newline
                line = text[self.index:stop]
                self.index = stop + 1
                if (line.lstrip("\t") if tabs else line) == delimiter:
                    break
        self.heredocs = []

    def _end(self, words: list[_Word]):
        if not words:
            return
        self.script.commands.append(words)
        if _literal(words[0].raw) in _DECLARATIONS:
            words = [word for word in words[1:]
                     if not word.raw.startswith("-")]
        if all(_ASSIGNMENT.match(word.raw) for word in words):
            for word in words:
                assignment = _ASSIGNMENT.match(word.raw)
                value = word.raw[assignment.end():]
                if not value.startswith("("):
                    self.script.values.setdefault(
                        assignment.group(1), []).append(_literal(value))


def _command_word(words: list[_Word]) -> int:
    """The index of the command word, after assignments and prefixes
    such as ``exec`` or ``sudo -E``."""
    index = 0
    prefix = False
    while index < len(words):
        raw = words[index].raw
        if _ASSIGNMENT.match(raw) or (prefix and raw.startswith("-")):
            index += 1
        elif _literal(raw) in _PREFIXES:
            prefix = True
            index += 1
        else:
            break
    return index


def _value(script: _Script, word: _Word, depth: int = 0) -> str | None:
    literal = _literal(word.raw)
    if literal is not None or depth >= _MAX_DEPTH:
        return literal
    array = _ARRAY_REFERENCE.fullmatch(word.raw)
    if array:
        definitions = script.arrays.get(array.group(2), [])
        if len(definitions) != 1 or not definitions[0]:
            return None
        return _value(script, definitions[0][-1], depth + 1)
    reference = _REFERENCE.fullmatch(word.raw)
    if reference:
        values = set(script.values.get(
            reference.group(2) or reference.group(3), []))
        if len(values) == 1:
            return values.pop()
    return None


def _loc(text: str, offset: int) -> Loc:
    line = text.count("\n", 0, offset) + 1
    return Loc(line, offset - text.rfind("\n", 0, offset))


def acrn_dm_vm_name(text: str) -> DmCall | None:
    """The script's acrn-dm call and the VM name its last argument
    gives (see the module doc); None when no command runs acrn-dm."""
    script = _Reader(text).read()
    calls = []
    for words in script.commands:
        index = _command_word(words)
        if index >= len(words):
            continue
        program = _literal(words[index].raw)
        if program is None or os.path.basename(program) != "acrn-dm":
            continue
        last = words[-1] if len(words) > index + 1 else None
        value = _value(script, last) if last is not None else None
        # acrn-dm would take a leading '-' for an option.
        named = value is not None and VM_NAME.fullmatch(value) \
            and not value.startswith("-")
        calls.append(DmCall(_loc(text, words[index].start),
                            last.raw if last is not None else None,
                            value if named else None))
    if not calls:
        return None
    names = {call.vm_name for call in calls}
    if len(names) == 1:
        return calls[0]
    return DmCall(calls[0].loc, calls[0].argument, None)
