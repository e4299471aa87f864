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


def quoted(text: str) -> str:
    """``text`` in single quotes for a one-line message, with control
    characters (newlines too) escaped as ``\\xNN``."""
    return f"'{escaped(text)}'"


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
