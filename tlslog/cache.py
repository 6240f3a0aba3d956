"""The columnar cache: each log file's raw events table, issues and counts as one Parquet file.

Parquet keeps the Arrow schema, so dictionary-encoded columns come back as dictionaries. Entries are
LZ4-compressed: for the 1.5M events of a 2M-line log, 43 MB (uncompressed: 180 MB), read back in 0.4 s.
They are written in the background (about 0.9 CPU s), from the files the parse spilled its batches to
(`Piece.spill`): the caller lets go of the parsed table while the entry is written.

An entry is found by the file's identity (device and inode), and trusted only when the first block
of the file still hashes the same. Same size, mtime and ctime: a hit. Larger, plain text and complete
(ended with a newline): the file grew, and only the part after the stored byte offset is read. A
rotated log (``maillog`` renamed ``maillog.1``) keeps its inode and first block: still a hit, under
its new name (a rename changes only the ctime; a file rewritten in place under its own path with size
and mtime restored, as ``cp -p`` does, is a miss). Entries are written atomically (temporary file, then
`os.replace`), and temporary files a killed writer left are removed after `fileid.STALE_TMP`; a damaged
entry is a miss, and an unwritable directory means no caching, never an error.

>>> cache = Cache.open("~/.cache/tlslog")                           # doctest: +SKIP
>>> cache.load(Path("/var/log/maillog"), year=None)                # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from .fastpath import DICTIONARY_FIELDS, RAW_SCHEMA
from .fileid import HEAD, Identity, default_dir, identity, remove_stale_tmp, unusable
from .records import ParseIssue
from .workers import Piece, let_go

__all__ = ["Cache", "Hit", "default_dir", "flush"]

MAX_ENTRIES = 512
#: rows per Parquet row group (row groups of one parse batch read 3x slower; 300k rows saved no CPU once the
#: writer ran beside the report, and held 40 MB more)
ROW_GROUP = 150_000
_CODE_FILES = (
    "grammar.py", "parse.py", "fastpath.py", "stamps.py", "textarrays.py", "sources.py", "records.py",
    "workers.py", "cache.py", "fileid.py", "values.py", "converters.py", "journal.py",
    "decoding.py", "memory.py",
)  # fmt: skip


def _code_version() -> str:
    h = hashlib.sha1(str(RAW_SCHEMA).encode())
    for package in ("pyparsing", "pyarrow"):  # an upgrade may parse differently
        h.update(f"{package}={metadata.version(package)}".encode())
    here = Path(__file__).parent
    for name in _CODE_FILES:
        try:
            h.update((here / name).read_bytes())
        except OSError:
            h.update(name.encode())
    return h.hexdigest()[:16]


_CODE = _code_version()


@dataclass
class Hit:
    """A usable entry: ``piece`` holds the stored lines; ``grown``: the file has more after ``piece.end``."""

    piece: Piece
    grown: bool


_WRITERS: list[threading.Thread] = []


def flush() -> None:
    """Wait until the entries being written are on disk (`Cache.store` writes in the background; the
    interpreter waits for it at exit, `Cache.load` before it reads)."""
    while _WRITERS:
        _WRITERS.pop().join()


class Cache:
    """A cache directory; `open` gives None when it cannot be used."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._held: list[tuple] | None = None  # entries `holding` keeps until it ends

    @classmethod
    def open(cls, folder: str | os.PathLike | None = None) -> Cache | None:
        path = Path(os.path.expanduser(folder)) if folder is not None else default_dir()
        return None if unusable(path) else cls(path)

    def _file(self, ident: Identity) -> Path:
        return self.folder / f"{ident.key}.parquet"

    def load(self, path: Path, *, year: int | None, name: str, plain: bool) -> Hit | None:
        """The stored parse of ``path`` (issues renamed to ``name``), or None."""
        flush()
        ident = identity(path)
        if ident is None:
            return None
        entry = self._file(ident)
        try:
            table = pq.read_table(entry)
            meta = json.loads(table.schema.metadata[b"tlslog"])
        except (OSError, KeyError, ValueError, TypeError, pa.ArrowException):
            return None
        if meta.get("code") != _CODE or meta.get("year") != year:
            return None
        where = os.path.realpath(path)
        same = (meta["size"], meta["mtime_ns"], meta["head"]) == (ident.size, ident.mtime_ns, ident.head)
        moved = meta.get("path") not in (None, where)  # renamed (rotated): that changed the ctime
        if same and (meta.get("ctime_ns") == ident.ctime_ns or moved):
            grown = False
        elif plain and meta["complete"] and not meta["source_issues"] and ident.size > meta["size"]:
            again = identity(path, meta["head_len"])
            if again is None or again.head != meta["head"]:
                return None
            grown = True
        else:
            return None
        try:
            issues = [(i, k, ParseIssue(name, n, r, t)) for i, k, n, r, t in meta["issues"]]
            table = table.replace_schema_metadata(None).select(RAW_SCHEMA.names).cast(RAW_SCHEMA)
        except (ValueError, TypeError, KeyError, pa.ArrowException):
            return None
        if moved and not grown:  # a rewrite in place under the new name must be a miss too
            meta.update(path=where, ctime_ns=ident.ctime_ns)
            self._write_later(table, meta, ident)
        piece = Piece(table, issues, meta["lines"], meta["bytes"], meta["end"], meta["complete"])
        return Hit(piece, grown)

    def store(self, path: Path, piece: Piece, *, year: int | None, before: Identity | None) -> None:
        """Write the parse of the whole file ``path``, read when the file was ``before``.

        Nothing is stored when the file changed during the read (a live log that grew), and failures are
        ignored (the cache is optional).
        """
        ident = identity(path)
        if ident is None or ident != before or ident.size < piece.end:
            piece.drop_spill()
            return
        meta = {
            "code": _CODE, "year": year, "path": os.path.realpath(path), "size": ident.size,
            "mtime_ns": ident.mtime_ns, "ctime_ns": ident.ctime_ns, "head": ident.head,
            "head_len": min(HEAD, ident.size), "lines": piece.lines, "bytes": piece.bytes, "end": piece.end,
            "complete": piece.complete and piece.end == ident.size, "source_issues": piece.source_issues,
            "issues": [[i, k, x.lineno, x.reason, x.text] for i, k, x in piece.issues],
        }  # fmt: skip
        self._write_later(piece.spill or piece.table, meta, ident)

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Entries stored inside are written (in the background) once it ends, however it ends: the
        caller has both cores until then (`frames.read_log` builds the frame meanwhile). Nested, the
        outermost writes them."""
        if self._held is not None:
            yield
            return
        self._held = []
        try:
            yield
        finally:
            held, self._held = self._held, None
            for entry in held:
                self._write_later(*entry)

    def _write_later(self, data: pa.Table | list[IO[bytes]], meta: dict, ident: Identity) -> None:
        # written in the background (pyarrow lets go of the GIL): the caller links and reports meanwhile.
        # From the piece's spill files when it has them: then the table's memory is not held meanwhile.
        if self._held is not None:
            self._held.append((data, meta, ident))
            return
        writer = threading.Thread(target=self._write, args=(data, meta, ident), name="tlslog-cache")
        writer.start()
        _WRITERS.append(writer)

    def _write(self, data: pa.Table | list[IO[bytes]], meta: dict, ident: Identity) -> None:
        try:
            self._write_entry(data, meta, ident)
        except Exception:  # a thread's failure would print a traceback; the cache is optional
            return
        finally:
            for file in data if isinstance(data, list) else ():
                file.close()

    def _write_entry(self, data: pa.Table | list[IO[bytes]], meta: dict, ident: Identity) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".parquet")
        os.close(fd)
        try:
            schema = RAW_SCHEMA.with_metadata({"tlslog": json.dumps(meta)})
            # no column statistics: nothing reads them, and they cost half the writing time; Parquet's
            # dictionaries only for the columns that are dictionaries already (others are mostly unique);
            # LZ4: 0.2 CPU s less than zstd for a 2M-line log, for an entry of 43 MB instead of 28 MB (zstd)
            with pq.ParquetWriter(
                tmp, schema, compression="lz4", write_statistics=False, use_dictionary=list(DICTIONARY_FIELDS)
            ) as out:
                for group in _row_groups(data):
                    out.write_table(group)
            os.replace(tmp, self._file(ident))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._prune()

    def _prune(self) -> None:
        entries = sorted(self.folder.glob("[!.]*.parquet"), key=lambda p: p.stat().st_mtime)  # not .tmp-*
        for old in entries[:-MAX_ENTRIES]:
            old.unlink(missing_ok=True)
        remove_stale_tmp(self.folder)


def _row_groups(data: pa.Table | list[IO[bytes]]) -> Iterator[pa.Table]:
    """A table, or the batches of Arrow IPC stream files, as tables of about `ROW_GROUP` rows whose
    chunks share their dictionaries (the Parquet writer then writes a column's codes as they are,
    instead of looking every value up again: 1.29 -> 1.11 CPU s for 1.5M events).

    Files are mapped, not read, and their pages let go of once a table is written.
    """
    if isinstance(data, pa.Table):
        yield from _gathered(data.replace_schema_metadata(None).to_batches(), lambda: None)
        return
    for file in data:
        mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)  # (closed when collected)
        batches = pa.ipc.open_stream(pa.BufferReader(pa.py_buffer(mapping)))
        yield from _gathered(batches, lambda mapping=mapping: let_go(mapping))


def _gathered(batches: Iterable[pa.RecordBatch], written: Callable[[], None]) -> Iterator[pa.Table]:
    """The batches in tables of about `ROW_GROUP` rows, ``written()`` called after each is written."""
    group: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        group.append(batch)
        rows += batch.num_rows
        if rows >= ROW_GROUP:
            yield pa.Table.from_batches(group).unify_dictionaries()
            group, rows = [], 0
            written()
    if group:
        yield pa.Table.from_batches(group).unify_dictionaries()
