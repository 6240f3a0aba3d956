"""Paths to text lines: find the logs (`expand`), then open, decompress and decode them (`read_lines`).

`expand` turns what the user typed (files, directories, globs, ``-``) into `Source`s, checking each one
before anything is read, with rotated sets ordered oldest first. `read_lines` yields one ``str`` per
line of a source: plain, gzip, bzip2 or xz (found by magic bytes), stdin, or JSON lines from
``journalctl -o json`` or rsyslog's JSON template, which `tlslog.journal` turns into ordinary syslog
lines. `tlslog.decoding` cuts the bytes into lines. Damage (invalid UTF-8, binary garbage, huge lines,
a truncated archive) becomes `ParseIssue`s, never an exception.

>>> for source in expand("sample_logs/"):                            # doctest: +SKIP
...     for lineno, line in enumerate(read_lines(source), 1):
...         ...
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import stat
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from glob import glob
from itertools import chain
from pathlib import Path
from typing import Any

import pyarrow as pa

from . import journal
from .decoding import CHUNK, MAX_LINE, SourceState, decode_blocks, looks_like_text
from .records import InputError, ParseIssue

__all__ = ["DEFAULT_LOCATIONS", "MAX_LINE", "Source", "expand", "read_lines"]

#: Where a maillog usually lives (RHEL/BSD, Debian/Ubuntu, HP-UX); tried, with rotated siblings, by default.
DEFAULT_LOCATIONS = ("/var/log/maillog", "/var/log/mail.log", "/var/adm/syslog/mail.log")

_PROGRESS_STEP = 1 << 20
_USAGE_HINT = "pass the log's path, or - for stdin"

_COMPRESSION = r"(?:\.(?:gz|bz2|xz))?"
_ROTATION = r"(?:\.(?P<num>\d{1,3})|[-.](?P<date>(?:\d{8}(?:\d{2}){0,3}|\d{4}-\d{2}-\d{2})(?:-\d{9,10})?))?"
_NAME = re.compile(rf"(?P<base>.+?){_ROTATION}{_COMPRESSION}")
_LOG_PREFIXES = ("maillog", "mail.log", "mail.info", "mail.warn", "mail.err", "syslog", "messages")
_LOG_SUFFIXES = (".log", ".json", ".jsonl")

_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))
_SUFFIX_KIND = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zst": "zstd"}
_OPENERS: dict[str, Callable[[Any], Any]] = {
    "gzip": lambda f: gzip.GzipFile(fileobj=f, mode="rb"),
    "bzip2": lambda f: bz2.BZ2File(f),
    "xz": lambda f: lzma.LZMAFile(f),  # noqa: SIM115 (a generator's lifetime, not a block)
}
_ARCHIVE_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError)


@dataclass(frozen=True)
class Source:
    """One input to read: a file (maybe compressed), a pipe, or stdin."""

    name: str  #: the path as the user would recognise it, or ``"<stdin>"``
    path: Path | None  #: ``None`` for stdin
    reference: datetime  #: naive local time when the source ends (file mtime; now for stdin)
    size: int | None  #: bytes on disk (compressed size for archives), for progress; ``None`` when unknown


# -- expand --


def expand(paths: str | os.PathLike | Iterable[str | os.PathLike] | None) -> list[Source]:
    """Turn files, directories, globs and ``-`` (stdin) into `Source`s, oldest rotated file first.

    Directories contribute their maillog-like files (not recursively); with no paths the usual
    locations (`DEFAULT_LOCATIONS`) and their rotated siblings are tried. Every rotated set
    (``maillog.2.gz``, ``maillog.1``, ``maillog``) is ordered oldest first, sets keep the order in
    which they were first named, and a file named twice is read once.

    :raises InputError: a path is missing, unreadable, or not a file or directory; a glob or
        directory holds no log; nothing was given and no default location exists.

    >>> [s.name for s in expand("/var/log/maillog*")]                  # doctest: +SKIP
    ['/var/log/maillog-20261108.gz', '/var/log/maillog-20261115', '/var/log/maillog']
    """
    if paths is None or isinstance(paths, str | os.PathLike):
        args = [] if paths is None else [paths]
    else:
        args = list(paths)
    found = _defaults() if not args else [src for arg in args for src in _expand_one(os.fspath(arg))]
    return _order(_unique(found))


def _defaults() -> list[Source]:
    for location in DEFAULT_LOCATIONS:
        folder, base = os.path.split(location)
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        matches = [n for n in names if _split_name(n)[0] == base and os.path.isfile(os.path.join(folder, n))]
        if matches:
            return [_file_source(os.path.join(folder, n)) for n in sorted(matches)]
    raise InputError(f"no maillog found at {', '.join(DEFAULT_LOCATIONS)} ({_USAGE_HINT})")


def _expand_one(arg: str) -> list[Source]:
    if arg == "-":
        return [Source("<stdin>", None, datetime.now(), None)]
    path = os.path.expanduser(arg)
    if not os.path.lexists(path) and any(c in path for c in "*?["):
        return _expand_glob(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"no such file: {arg} ({_USAGE_HINT})") from None
    except OSError as e:
        raise InputError(f"cannot read {arg}: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        return _expand_dir(path)
    if stat.S_ISFIFO(st.st_mode):  # a pipe, e.g. bash's <(journalctl -o json); opening it would consume it
        if not os.access(path, os.R_OK):
            raise InputError(f"permission denied: {arg}")
        return [Source(path, Path(path), datetime.now(), None)]
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"not a regular file or directory: {arg} (pass a log file, a log directory, or -)")
    return [_file_source(path, st)]


def _expand_glob(pattern: str) -> list[Source]:
    files = [p for p in sorted(glob(pattern)) if os.path.isfile(p)]
    if not files:
        raise InputError(f"no file matches {pattern} (check the pattern, or {_USAGE_HINT})")
    return [_file_source(p) for p in files]


def _expand_dir(folder: str) -> list[Source]:
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if _is_log_name(e.name) and e.is_file()]
    except OSError as e:
        raise InputError(f"cannot list directory {folder}: {e.strerror}") from None
    if not names:
        raise InputError(
            f"no maillog-like files in directory {folder} (looked for maillog*, mail.log*, mail.info*, "
            f"mail.warn*, mail.err*, syslog*, messages*, *.log, *.json, *.jsonl; pass other files by name)"
        )
    return [_file_source(os.path.join(folder, n)) for n in sorted(names)]


def _is_log_name(name: str) -> bool:
    if name.startswith(".") or name.startswith("README") or name.endswith(".md"):
        return False
    base = _split_name(name)[0]
    return base.startswith(_LOG_PREFIXES) or base.endswith(_LOG_SUFFIXES)


def _split_name(name: str) -> tuple[str, tuple]:
    """``maillog.2.gz`` -> ``("maillog", sort key)``; keys order a rotated set oldest first."""
    m = _NAME.fullmatch(name)
    if m is None:  # only the empty name
        return name, (2,)
    if m["num"]:
        return m["base"], (0, -int(m["num"]))
    if m["date"]:
        return m["base"], (1, m["date"].replace("-", "").ljust(14, "0"))
    return m["base"], (2,)


def _file_source(path: str, st: os.stat_result | None = None) -> Source:
    try:
        st = st or os.stat(path)
    except OSError as e:  # gone since the directory was listed
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    _check_readable(path)
    return Source(path, Path(path), datetime.fromtimestamp(st.st_mtime), st.st_size)


def _check_readable(path: str) -> None:
    try:
        os.close(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)))
    except PermissionError:
        raise InputError(
            f"permission denied: {path} (run as a user who may read it, e.g. in group adm, or use sudo)"
        ) from None
    except OSError as e:
        raise InputError(f"cannot open {path}: {e.strerror}") from None


def _unique(sources: list[Source]) -> list[Source]:
    seen: set[object] = set()
    out = []
    for src in sources:
        if src.path is None:
            key: object = "<stdin>"
        else:
            try:
                st = os.stat(src.path)
                key = (st.st_dev, st.st_ino)
            except OSError:
                key = os.path.realpath(src.path)
        if key not in seen:
            seen.add(key)
            out.append(src)
    return out


def _order(sources: list[Source]) -> list[Source]:
    """Group rotated siblings (same directory and base name) where the set is first named, oldest first."""
    groups: dict[object, list[tuple[tuple, Source]]] = {}
    for src in sources:
        if src.path is None:
            groups[object()] = [((2,), src)]
            continue
        base, key = _split_name(src.path.name)
        groups.setdefault((os.path.realpath(src.path.parent), base), []).append((key, src))
    return [src for group in groups.values() for _, src in sorted(group, key=lambda item: item[0])]


# -- read_lines --


def read_lines(
    source: Source,
    *,
    on_progress: Callable[[int], None] | None = None,
    on_issue: Callable[[ParseIssue], None] | None = None,
) -> Iterator[str]:
    """Iterate over the text lines of `source`: decompressed, decoded, repaired, without line ends.

    Every physical line yields exactly one string, so ``enumerate(read_lines(src), 1)`` gives true
    line numbers: a line that is skipped (binary data, an undecodable JSON record) yields ``""``,
    which parses to nothing. JSON-lines input (the first non-empty line starts with ``{``) yields
    ``"{ISO 8601 time} {host} {tag}[{pid}]: {message}"`` per record. Lines over `MAX_LINE` bytes
    are cut. Problems go to `on_issue`; `on_progress` receives the number of new bytes read from
    disk (compressed bytes for archives) at least every MiB and at the end.

    :raises InputError: the source cannot be opened (e.g. it was removed after `expand`).

    >>> src = expand("sample_logs/maillog")[0]                          # doctest: +SKIP
    >>> next(read_lines(src))                                          # doctest: +SKIP
    'Nov 22 03:04:12 vm sm-mta[16051]: STARTTLS=server, relay=localhost [127.0.0.1], ...'
    """
    return chain.from_iterable(block.to_pylist() for block in read_blocks(source, on_progress, on_issue))


def read_blocks(
    source: Source, on_progress: Callable[[int], None] | None, on_issue: Callable[[ParseIssue], None] | None
) -> Iterator[pa.StringArray]:
    """The lines of `source` as Arrow arrays, one per block read (a few MB each)."""
    if source.path is None:
        raw = getattr(sys.stdin, "buffer", None)
        if raw is None:
            raise InputError("stdin is not available for reading")
    else:
        try:
            raw = open(source.path, "rb", buffering=0)  # noqa: SIM115 (closed below: generator lifetime)
        except OSError as e:
            raise InputError(f"cannot open {source.name}: {e.strerror}") from None
    try:
        reader = _Reader(raw, on_progress)
    except OSError as e:
        if source.path is not None:
            raw.close()
        raise InputError(f"cannot read {source.name}: {e.strerror or e}") from None
    state = SourceState(source.name, on_issue)
    try:
        yield from _decoded_blocks(source, reader, state)
        reader.flush()
        state.finish()  # not when the caller stopped early or a callback raised: nothing more to report
    finally:
        if source.path is not None:
            raw.close()


def _decoded_blocks(source: Source, reader: _Reader, state: SourceState) -> Iterator[pa.StringArray]:
    kind = sniff_compression(reader.head)
    suffix_kind = _SUFFIX_KIND.get(Path(source.name).suffix.lower())
    read: Callable[[int], bytes] = reader.read
    if not reader.head:
        return
    if kind == "zstd":
        state.issue("format", 0, "zstd-compressed; decompress it first (zstd -d): tlslog reads gz, bz2, xz")
        return
    if kind is not None:
        read = _guarded(_OPENERS[kind](reader).read1)
    elif suffix_kind is not None:
        if not looks_like_text(reader.head[:8192]):
            state.issue("format", 0, f"not a {suffix_kind} archive (wrong magic bytes) and not text; skipped")
            return
        state.issue("format", 0, f"named like a {suffix_kind} archive but not compressed; read as plain text")
    json_mode: bool | None = None  # decided by the first non-empty line
    try:
        for block in decode_blocks(read, state):
            if json_mode is None:
                head = next((s for s in (x.as_py() for x in block) if s.strip()), None)
                if head is not None:
                    json_mode = head.lstrip().startswith("{")
            if json_mode:
                first = state.lineno - len(block) + 1
                block = pa.array(journal.record_lines(block.to_pylist(), first, partial(state.issue, "json")))
            yield block
    except _ReadFailed as failure:
        e = failure.__cause__
        what = "truncated or corrupt archive" if kind else "read error"
        detail = str(e) or type(e).__name__
        state.issue(
            "archive", state.lineno + 1, f"{what}: {detail}; {state.lineno} lines were read before it"
        )


def sniff_compression(head: bytes) -> str | None:
    kind = next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)
    if kind == "bzip2" and not head[3:4].isdigit():  # "BZh" then the block size, 1-9
        return None
    return kind


class _Reader:
    """The raw byte stream: serves the sniffed head first, counts bytes, reports progress."""

    def __init__(self, raw: Any, on_progress: Callable[[int], None] | None):
        self._read = getattr(raw, "read1", None) or raw.read
        self._on_progress = on_progress
        head = b""
        while len(head) < 8:  # a pipe may deliver the magic bytes in pieces
            more = self._read(CHUNK)
            if not more:
                break
            head += more
        self.head = head
        self._rest = head
        self._pending = len(head)

    def read(self, n: int = -1) -> bytes:
        n = CHUNK if n is None or n < 0 else n
        if self._rest:
            data, self._rest = self._rest[:n], self._rest[n:]
            return data
        try:
            data = self._read(n)
        except OSError as e:
            raise _ReadFailed(e) from e
        self._pending += len(data)
        if self._pending >= _PROGRESS_STEP:
            self.flush()
        return data

    def flush(self) -> None:
        if self._pending and self._on_progress is not None:
            self._on_progress(self._pending)
        self._pending = 0


class _ReadFailed(Exception):
    """A read or decompression error, carried out of the block loop (the cause is the original error)."""


def _guarded(read: Callable[[int], bytes]) -> Callable[[int], bytes]:
    def guarded_read(n: int) -> bytes:
        try:
            return read(n)
        except _ARCHIVE_ERRORS as e:
            raise _ReadFailed(e) from e

    return guarded_read
