"""The one exception family for user-fixable problems."""


class AcrnShmError(Exception):
    """A problem the user can fix: bad input, bad usage, missing file.

    The message is one line and, where known, starts with
    ``path:line:column:`` so that editors can jump to it.
    """


class InputError(AcrnShmError):
    """An input file cannot be read or is not the kind of XML expected."""


class UsageError(AcrnShmError):
    """Command-line or configuration values that make no sense."""


#: Most characters of input text a message shows (:func:`quoted`).
MAX_SHOWN = 80


def quoted(text: object) -> str:
    """``text`` in single quotes for a one-line message: control
    characters (newlines too) escaped as ``\\xNN``, and cut to
    :data:`MAX_SHOWN` characters with an ellipsis (see :func:`shortened`).
    """
    return f"'{shortened(text)}'"


def shortened(text: object) -> str:
    """``text`` as :func:`quoted` shows it, without the quotes.

    Input text in a message goes through here (or :func:`quoted`), so
    that a 5 MB region name does not make a 5 MB line: at most
    :data:`MAX_SHOWN` characters of the escaped text, the last one an
    ellipsis when it was cut. An escape is never cut in two.
    """
    text = str(text)
    if len(text) <= MAX_SHOWN and text.isprintable():
        return text  # the usual case: nothing to escape or cut
    pieces = []
    size = 0
    for char in text:
        piece = f"\\x{ord(char):02x}" if _is_control(char) else char
        pieces.append(piece)
        size += len(piece)
        if size > MAX_SHOWN:
            break
    else:
        return "".join(pieces)
    while size > MAX_SHOWN - 1:
        size -= len(pieces.pop())
    return "".join(pieces) + "\u2026"


def escaped(text: str) -> str:
    """``text`` with control characters escaped as ``\\xNN``, unquoted."""
    # No imports here: the guest tool runs with this file alone.
    return "".join(f"\\x{ord(char):02x}" if _is_control(char) else char
                   for char in text)


def _is_control(char: str) -> bool:
    return ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F


def located(path: str, line: int | None, column: int | None,
            message: str) -> str:
    """Format ``message`` with a ``path:line:column:`` prefix.

    Control characters in ``message`` (input text quoted in it, say)
    are escaped as :func:`quoted` does, so that it stays one line.
    """
    message = escaped(message)
    if line is None:
        return f"{path}: {message}"
    if column is None:
        return f"{path}:{line}: {message}"
    return f"{path}:{line}:{column}: {message}"


class ConcurrentEditError(AcrnShmError):
    """Another edit holds the file's lock, or changed the file meanwhile."""


class GraphvizError(AcrnShmError):
    """Graphviz's ``dot`` is missing, failed or took too long."""


class IvshmemProtocolError(AcrnShmError):
    """An ivshmem server sent what the doorbell protocol does not allow."""


class SourceTreeError(InputError):
    """An ACRN source tree that cannot be used (``--acrn-schema``): it
    stops the whole run, since every file would fail the same way."""
