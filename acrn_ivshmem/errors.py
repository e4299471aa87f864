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


def located(path: str, line: int | None, column: int | None,
            message: str) -> str:
    """Format ``message`` with a ``path:line:column:`` prefix."""
    if line is None:
        return f"{path}: {message}"
    if column is None:
        return f"{path}:{line}: {message}"
    return f"{path}:{line}:{column}: {message}"


class ConcurrentEditError(AcrnShmError):
    """Another edit holds the file's lock, or changed the file meanwhile."""
