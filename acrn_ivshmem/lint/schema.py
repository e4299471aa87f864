"""The structure check (ISM001) against acrn-shm's own XSDs.

Each kind of document (legacy and v3 scenario, v2.x launch XML, board)
has an XSD 1.1 file in ``schemas/`` that describes the parts acrn-shm
reads and lets every other element through (open content). Findings
carry the line and column of the offending element.

:func:`check_structure` is the check lint runs: :mod:`.structure` walks
the tree the loader parsed against a compact description read from the
XSD, in about a millisecond, with no xmlschema import and no cache.

:func:`check_structure_xsd` validates with xmlschema (XSD 1.1) instead.
It is the oracle the fast check is compared with
(``tests/test_structure_equivalence.py``), and gives the same findings.
Building a schema costs far more than validating, so its results are
cached on disk, keyed by the SHA-256 of the schema, the installed
xmlschema and elementpath, and the document bytes; the built schema is
cached too, pickled (building it costs some 170 ms, loading the pickle
some 20 ms). A pickle is only loaded from a regular file that the user
owns and that nobody else can write, in the user's own cache folder.
Set ``ACRN_SHM_NO_CACHE=1`` (or pass ``use_cache=False``) to always
validate with a newly built schema.
"""

from __future__ import annotations

import functools
import os
import sys

from ..diagnostics import Finding
from ..io.xmlio import Document, Loc
from ..model.loader import refuse_much_to_read, schema_path, schema_text

_CACHE_FORMAT = "1"


def cache_dir() -> str:
    """Where validation results are cached."""
    configured = os.environ.get("ACRN_SHM_CACHE_DIR")
    if configured:
        return configured
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    return os.path.join(base, "acrn-shm")


def check_structure(document: Document, kind: str) -> list[Finding]:
    """Check the structure of ``document`` (of ``kind``) and return the
    findings, those :func:`check_structure_xsd` gives.

    Raises :class:`InputError` when there is too much to read (see
    :func:`~acrn_ivshmem.model.loader.refuse_much_to_read`).
    """
    from .structure import check

    refuse_much_to_read(document, kind)
    return [Finding(document.loc_or_root(error.element), error.message)
            for error in check(document.root, kind)]


def check_structure_xsd(document: Document, kind: str,
                        use_cache: bool = True) -> list[Finding]:
    """Validate ``document`` (of ``kind``) with xmlschema and return the
    findings: the oracle of :func:`check_structure`.

    Raises :class:`InputError` when there is too much to read (see
    :func:`~acrn_ivshmem.model.loader.refuse_much_to_read`): xmlschema costs
    some 8 to 25 microseconds for each child and attribute it reads.
    """
    import json

    refuse_much_to_read(document, kind)
    if os.environ.get("ACRN_SHM_NO_CACHE"):
        use_cache = False
    xsd = schema_text(kind)
    if not use_cache:
        return _validate(document, kind, use_cache=False)
    key = _cache_key(xsd, document.data)
    path = os.path.join(cache_dir(), key + ".json")
    try:
        with open(path, encoding="utf-8") as stream:
            return [Finding(Loc(line, column), message)
                    for line, column, message in json.load(stream)]
    except (OSError, ValueError, TypeError):
        pass
    findings = _validate(document, kind, use_cache=True)
    _store(path, [[f.loc.line, f.loc.column, f.message] for f in findings])
    return findings


@functools.cache
def _validator_stamp() -> bytes:
    # Identifies the installed xmlschema and elementpath without
    # importing them (importing costs more than a whole cached lint run).
    import importlib.util

    stamps = []
    for name in ("xmlschema", "elementpath"):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            stamps.append(f"{name} missing")
            continue
        info = os.stat(spec.origin)
        stamps.append(f"{spec.origin}:{info.st_size}:{info.st_mtime_ns}")
    return ";".join(stamps).encode()


def _cache_key(xsd: bytes, data: bytes) -> str:
    import hashlib

    digest = hashlib.sha256()
    for part in (_CACHE_FORMAT.encode(), _validator_stamp(), xsd, data):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


def _store(path: str, payload: list) -> None:
    import json

    _store_bytes(path, json.dumps(payload).encode())


def _store_bytes(path: str, data: bytes) -> None:
    # Best effort: a read-only or full disk only costs speed. mkstemp
    # makes the file readable and writable by the user alone.
    import tempfile

    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError:
        pass


def _validate(document: Document, kind: str,
              use_cache: bool = True) -> list[Finding]:
    import xmlschema

    schema = _compiled(kind, use_cache)
    findings = []
    for error in schema.iter_errors(document.root):
        element = error.elem
        loc = document.loc_or_root(element)
        subject = element
        index = getattr(error, "index", None)
        if (isinstance(error, xmlschema.XMLSchemaChildrenValidationError)
                and element is not None and index is not None
                and index < len(element)):
            subject = element[index]
            loc = document.loc_or_root(subject)
        findings.append(Finding(loc, _message(error, element, subject)))
    return findings


@functools.cache
def _compiled(kind: str, use_cache: bool = True):
    import xmlschema

    if not use_cache:
        return xmlschema.XMLSchema11(schema_path(kind))
    import pickle

    key = _cache_key(schema_text(kind), f"schema {kind} {sys.version}"
                     .encode())
    path = os.path.join(cache_dir(), f"schema-{key}.pickle")
    schema = _load_own_pickle(path)
    if not isinstance(schema, xmlschema.XMLSchema11):
        schema = xmlschema.XMLSchema11(schema_path(kind))
        try:
            data = pickle.dumps(schema, pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - caching is only for speed
            return schema
        _store_bytes(path, data)
    return schema


def _load_own_pickle(path: str):
    """The object pickled in ``path``, or None: when the file is missing,
    not a regular file, not the user's own, writable by others, or does
    not load. A pickle can run code, hence the checks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    import stat

    try:
        info = os.fstat(fd)
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid()
                or info.st_mode & 0o022):
            return None
        import pickle

        with os.fdopen(fd, "rb", closefd=False) as stream:
            return pickle.load(stream)
    except Exception:  # noqa: BLE001 - a bad cache entry is rebuilt
        return None
    finally:
        os.close(fd)


def _message(error, element, subject) -> str:
    reason = (error.reason or str(error.message)).rstrip(".")
    if subject is not element and subject is not None:
        where = f"<{subject.tag}> in <{element.tag}>"
    elif element is not None:
        where = f"<{element.tag}>"
    else:
        where = "document"
    reason = reason[:1].lower() + reason[1:]
    return f"{where}: {reason}"
