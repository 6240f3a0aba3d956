"""Reading sources into raw event tables: whole files, the new end of a grown file, byte ranges of a
large file in worker processes.

A `Piece` is the parse of consecutive lines of one source: the raw events table (`fastpath.RAW_SCHEMA`),
the issues in the order `tlslog.iter_events` reports them, and where it ended. Pieces of one file
join into the same result as one sequential read (tests/test_parallel.py).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from . import decoding, memory, sources
from .fastpath import RAW_SCHEMA, parse_block
from .fileid import remove_stale_tmp
from .records import InputError, ParseIssue

__all__ = [
    "Piece", "Task", "Whole", "join", "let_go", "read_range", "read_source", "read_task", "run_parallel",
    "serve", "split_ranges",
]  # fmt: skip

BATCH = 100_000  #: lines parsed per columnar call
BATCH_BYTES = 256 << 20  #: or fewer: an Arrow string array holds at most 2 GiB
MIN_RANGE = 8 << 20  #: smallest byte range worth a worker process
WORKER_TIMEOUT = 300  #: seconds a worker may write nothing before it is stopped and its task read here


@dataclass
class Piece:
    """The parse of lines ``first_line`` .. ``first_line + lines - 1`` of one source."""

    table: pa.Table
    issues: list[tuple[int, int, ParseIssue]] = field(
        default_factory=list
    )  #: (line index, 0 source/1 line, issue)
    lines: int = 0
    bytes: int = 0
    end: int = 0  #: byte offset after the last line read (plain files)
    complete: bool = True  #: the source ended with a newline (a grown file may be continued)
    source_issues: bool = False  #: reading reported damage (binary, NULs, long lines, bad UTF-8...)
    first_line: int | None = 0  #: index of the first line in the source (None: not known yet)
    #: open files holding the whole table as Arrow IPC streams, in order (empty: only ``table`` holds it);
    #: the cache writes from them, so that the table's memory goes as soon as the frame is built
    spill: list[IO[bytes]] = field(default_factory=list)
    mapped: list[mmap.mmap] = field(default_factory=list)  #: memory maps the table's buffers lie in

    def trim(self) -> None:
        """Let the pages of the mapped files go from this process's memory (read again if touched)."""
        for mapping in self.mapped:
            let_go(mapping)

    def drop_spill(self) -> None:
        """Close the spill files (nothing will write from them)."""
        for file in self.spill:
            file.close()
        self.spill = []


def let_go(mapping: mmap.mmap) -> None:
    """Let a read-only file mapping's pages go from this process's memory (they are read again if touched)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # no MADV_DONTNEED here: keep them
        mapping.madvise(mmap.MADV_DONTNEED)


class _Spill:
    """An unnamed temporary file that batches are also written to (an Arrow IPC stream). A failure
    (a full disk) only ends the spilling: the piece then has no `Piece.spill`."""

    def __init__(self, folder: str | os.PathLike | None):
        self.file: IO[bytes] | None = None
        if folder is None:
            return
        try:
            self.file = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 (`Piece.spill` owns it)
            self.writer = pa.ipc.new_stream(pa.PythonFile(self.file, mode="w"), RAW_SCHEMA)
        except (OSError, pa.ArrowException):
            self._drop()

    def write(self, table: pa.Table) -> None:
        if self.file is not None:
            try:
                self.writer.write_table(table)
            except (OSError, pa.ArrowException):
                self._drop()

    def done(self) -> list[IO[bytes]]:
        """The file, read from its start, or nothing."""
        if self.file is None:
            return []
        try:
            self.writer.close()
            self.file.seek(0)
        except (OSError, pa.ArrowException):
            self._drop()
            return []
        return [self.file]

    def _drop(self) -> None:
        if self.file is not None:
            self.file.close()
        self.file = None


def _parse_blocks(
    blocks: Iterator[pa.StringArray],
    name: str,
    reference: datetime,
    base: int,
    issues: list,
    consumed: list[int],
    keep: Callable[[pa.Table], Any],
) -> int:
    """Parse the blocks in batches of about `BATCH` lines, each batch's table handed to ``keep``; the
    number of lines."""
    batch: list[pa.StringArray] = []
    size = nbytes = 0
    start = base
    for block in blocks:
        batch.append(block)
        size += len(block)
        nbytes += block.nbytes
        consumed[0] += len(block)
        if size >= BATCH or nbytes >= BATCH_BYTES:
            keep(_parse_batch(batch, name, reference, start, issues))
            start += size
            batch, size, nbytes = [], 0, 0
    if batch:
        keep(_parse_batch(batch, name, reference, start, issues))
        start += size
    return start - base


def _parse_batch(
    batch: list[pa.StringArray], name: str, reference: datetime, start: int, issues: list
) -> pa.Table:
    lines = batch[0] if len(batch) == 1 else pa.concat_arrays(batch)
    table, found = parse_block(lines, source=name, reference=reference, first_lineno=start + 1)
    memory.release_scratch()
    issues.extend((i.lineno - 1, 1, i) for i in found)
    return table


def read_source(
    source: sources.Source,
    reference: datetime,
    on_progress: Callable[[int], None] | None = None,
    spill: str | os.PathLike | None = None,
    send: Callable[[pa.Table], Any] | None = None,
) -> Piece:
    """The whole source (plain, compressed, JSON, stdin) as one piece, exactly as `iter_events` reads it.

    With ``spill`` (a folder), the batches also go to a temporary file there (`Piece.spill`); with
    ``send``, each batch's table goes there once parsed, and the piece's own table is empty.
    """
    issues: list[tuple[int, int, ParseIssue]] = []
    consumed = [0]
    nbytes = [0]

    def on_issue(issue: ParseIssue) -> None:
        # at the line it names: a block's damage is reported before any of the block's lines is counted
        issues.append((issue.lineno - 1 if issue.lineno > 0 else consumed[0], 0, issue))

    def progress(n: int) -> None:
        nbytes[0] += n
        if on_progress is not None:
            on_progress(n)

    blocks = sources.read_blocks(source, progress, on_issue)
    tables: list[pa.Table] = []
    spilled = _Spill(spill)
    keep = _both(send or tables.append, spilled)
    lines = _parse_blocks(blocks, source.name, reference, 0, issues, consumed, keep)
    end, complete = _ending(source) if plain_text(source.path or "") else (0, False)
    piece = Piece(_concat(tables), issues, lines, nbytes[0], end, complete, spill=spilled.done())
    piece.source_issues = any(kind == 0 for _, kind, _ in issues)
    return piece


def _both(keep: Callable[[pa.Table], Any], spilled: _Spill) -> Callable[[pa.Table], None]:
    def both(table: pa.Table) -> None:
        keep(table)
        spilled.write(table)

    return both


def _ending(source: sources.Source) -> tuple[int, bool]:
    if source.path is None:
        return 0, False
    try:
        with open(source.path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size:
                f.seek(size - 1)
                return size, f.read(1) == b"\n"
            return 0, True
    except OSError:
        return 0, False


def plain_text(path: str | os.PathLike) -> bool:
    """A regular file that may be read from any line boundary: not compressed, not JSON lines (a pipe's
    bytes can be read only once, so it is never plain)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as f:
            head = f.read(64 << 10)
    except OSError:
        return False
    if sources.sniff_compression(head) is not None or os.fspath(path).endswith(
        (".gz", ".bz2", ".xz", ".zst")
    ):
        return False
    first = next((line for line in head.splitlines() if line.strip()), b"")
    return not first.lstrip().startswith(b"{")


def read_range(
    path: str,
    name: str,
    reference: datetime,
    start: int,
    stop: int | None,
    first_line: int | None,
    send: Callable[[pa.Table], Any] | None = None,
    spill: str | os.PathLike | None = None,
) -> Piece:
    """Lines of a plain file from byte ``start`` (a line start) to ``stop`` (a line start, or None: the end).

    ``first_line`` is the index of the first line when known; with None, lines and issues are numbered
    from 0 and `join` shifts them. With ``send``, each batch's table goes there once parsed, and the
    piece's own table is empty; with ``spill`` (a folder), it also goes to a temporary file there.
    """
    issues: list[tuple[int, int, ParseIssue]] = []
    tables: list[pa.Table] = []
    consumed = [0]
    base = first_line or 0
    got = [0]
    try:
        raw = open(path, "rb", buffering=0)  # noqa: SIM115 (closed below)
    except OSError as e:  # gone or unreadable since it was listed
        raise InputError(f"cannot read {name}: {e.strerror or e}") from None
    with raw:
        raw.seek(start)
        left = [None if stop is None else stop - start]

        def read(n: int) -> bytes:
            if left[0] is not None:
                if left[0] <= 0:
                    return b""
                n = min(n, left[0])
            try:
                data = raw.read(n)
            except OSError as e:
                raise InputError(f"cannot read {name}: {e.strerror or e}") from None
            if left[0] is not None:
                left[0] -= len(data)
            got[0] += len(data)
            return data

        def on_issue(issue: ParseIssue) -> None:
            # at the line it names (numbered from ``base + sentinel``), as in `read_source`
            at = issue.lineno - 1 - sentinel if issue.lineno > 0 else base + consumed[0]
            issues.append((at, 0, issue))

        state = decoding.SourceState(name, on_issue)
        # never 0 inside a file: sources strips a byte-order mark only from the first line
        sentinel = 1 if start and not base else 0
        state.lineno = base + sentinel
        spilled = _Spill(spill)
        lines = _parse_blocks(
            decoding.decode_blocks(read, state), name, reference, base, issues, consumed,
            _both(send or tables.append, spilled),
        )  # fmt: skip
        if stop is None:
            state.finish()
    if sentinel:
        issues = [(i, k, replace(x, lineno=x.lineno - 1) if k == 0 and x.lineno else x) for i, k, x in issues]
    piece = Piece(_concat(tables), issues, lines, got[0], start + got[0], True, first_line=first_line)
    piece.spill = spilled.done()
    piece.source_issues = any(kind == 0 for _, kind, _ in issues)
    if stop is None:
        piece.complete = _ending(sources.Source(name, sources.Path(path), reference, None))[1]
    return piece


@dataclass(frozen=True)
class Whole:
    """A task for `run_parallel`: a whole file (a compressed one, say), read by `read_source`."""

    source: sources.Source
    reference: datetime


Task = tuple | Whole  #: `read_range`'s arguments, or a whole file


def read_task(task: Task, **options: Any) -> Piece:
    """`read_range` or `read_source` of a task, with their keyword options (``spill``, ``send``)."""
    if isinstance(task, Whole):
        return read_source(task.source, task.reference, **options)
    return read_range(*task, **options)


def split_ranges(path: str, start: int, parts: int, after: int = 0) -> list[tuple[int, int | None]]:
    """Cut a plain file from ``start`` into byte ranges at line boundaries, for ``parts`` processes that
    each take the next range when done (`run_parallel`).

    Each range is a ``2 * parts``-th of what is left to read (the rest of this file and ``after`` bytes
    of other work after it), and at least `MIN_RANGE`: ranges shrink toward the end, so the processes
    finish together however fast each one turns out to be.
    """
    size = os.path.getsize(path)
    cuts = [start]
    with open(path, "rb") as f:
        at = start
        while True:
            at += max(MIN_RANGE, (size - at + after) // (2 * max(parts, 1)))
            if at + MIN_RANGE // 2 >= size:  # (a short end goes with the range before)
                break
            f.seek(at)
            rest = f.readline(decoding.MAX_LINE)  # a run of bytes without a newline is never read whole
            while rest and not rest.endswith(b"\n"):
                more = f.readline(decoding.MAX_LINE)
                if not more:
                    break
                at, rest = at + len(rest), more
            at += len(rest)
            if at >= size:
                break
            cuts.append(at)
    return [(a, b) for a, b in zip(cuts, [*cuts[1:], None], strict=True)]


def join(pieces: Sequence[Piece]) -> Piece:
    """Consecutive pieces of one file as one; pieces numbered from 0 shift after those before."""
    tables, issues = [], []
    line = pieces[0].first_line or 0
    for p in pieces:
        shift = line if p.first_line is None else 0
        for index, kind, issue in p.issues:
            if shift and issue.lineno:
                issue = replace(issue, lineno=issue.lineno + shift)
            issues.append((index + shift, kind, issue))
        tables.append(p.table)
        line += p.lines
    first, last = pieces[0], pieces[-1]
    out = Piece(_concat(tables), issues, sum(p.lines for p in pieces), sum(p.bytes for p in pieces))
    out.end, out.complete, out.first_line = last.end, last.complete, first.first_line
    out.source_issues = any(p.source_issues for p in pieces)
    if all(p.spill or not p.table.num_rows for p in pieces):
        out.spill = [f for p in pieces for f in p.spill]
    else:  # some rows are only in memory: the cache writes from the table
        for p in pieces:
            p.drop_spill()
    out.mapped = [m for p in pieces for m in p.mapped]
    return out


def run_parallel(
    tasks: Sequence[Task],
    jobs: int,
    spill: str | os.PathLike | None = None,
    on_progress: Callable[[int], Any] | None = None,
) -> list[Piece]:
    """`read_task` for every task, in the calling process and ``jobs - 1`` worker processes, each taking
    the next task as it is done (so none waits long at the end for another); the pieces in task order.
    ``on_progress`` is given the bytes of the pieces done, always in the calling thread (a worker's as
    soon as the calling process is between two tasks of its own).

    Workers are fresh interpreters that import only the parsing modules (not pandas, not the calling
    script); each writes a task's tables to a temporary file as it parses (Arrow IPC, mapped here when it
    is done) and the piece's counts and issues to a pipe. A task whose worker failed, hung or could not
    start is read here, so the result never depends on the workers. With ``spill`` (a folder), each piece
    has its `Piece.spill`.
    """
    pieces: list[Piece | None] = [None] * len(tasks)
    queue = iter(range(len(tasks)))
    lock = threading.Lock()
    unreported: list[int] = []  # bytes of pieces workers finished, for the calling thread to report

    def take() -> int | None:
        with lock:
            return next(queue, None)

    def report(nbytes: int = 0) -> None:
        with lock:
            nbytes += sum(unreported)
            unreported.clear()
        if on_progress is not None and nbytes:
            on_progress(nbytes)

    def feed(worker: _Worker) -> None:
        while (k := take()) is not None:
            pieces[k] = piece = worker.read(tasks[k], keep=spill is not None)
            if piece is None:  # the worker is gone: its task is read here, the rest shared out here
                return
            with lock:
                unreported.append(piece.bytes)

    def read_here(k: int) -> None:
        pieces[k] = piece = read_task(tasks[k], spill=spill)
        report(piece.bytes)

    if jobs <= 1 or len(tasks) <= 1:
        for k in range(len(tasks)):
            read_here(k)
        return [p for p in pieces if p is not None]

    workers = [w for w in (_start() for _ in range(min(jobs, len(tasks)) - 1)) if w is not None]
    feeders = [threading.Thread(target=feed, args=(w,), name="tlslog-feed", daemon=True) for w in workers]
    try:
        for feeder in feeders:
            feeder.start()
        while (k := take()) is not None:
            read_here(k)
        for feeder in feeders:
            feeder.join()
    finally:  # an interrupt (a notebook's too) or an error here must not leave workers behind
        for worker in workers:
            worker.stop()
        for feeder in feeders:
            feeder.join()  # (at once: a stopped worker's task fails)
    report()
    for k in range(len(tasks)):
        if pieces[k] is None:
            read_here(k)
    return [p for p in pieces if p is not None]


_PACKAGE = __name__.rpartition(".")[0]
_PRELUDE = (  # a worker's start: the parsing modules only
    "import sys, types\n"
    "package = types.ModuleType(sys.argv[2])\n"
    "package.__path__ = [sys.argv[1]]\n"  # the package without its __init__ (which imports pandas)
    "sys.modules[sys.argv[2]] = package\n"
    "class NoPandas:\n"  # pyarrow would import pandas to look for pandas objects
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.partition('.')[0] == 'pandas':\n"
    "            raise ImportError(name)\n"
    "sys.meta_path.insert(0, NoPandas())\n"
)
_BOOT = _PRELUDE + "__import__(sys.argv[2] + '.workers', fromlist=['serve']).serve()\n"


_SCRATCH_PREFIX, _SCRATCH_SUFFIX = "tlslog-", ".arrows"  #: a worker's tables file, in the temporary folder


@dataclass
class _Worker:
    """A worker process, handed one task at a time (`read`) until it is stopped."""

    child: subprocess.Popen

    def read(self, task: Task, keep: bool = False) -> Piece | None:
        """The worker's piece of a task (with ``keep``, `Piece.spill` open on its tables), or None when
        the worker failed or wrote nothing for `WORKER_TIMEOUT` seconds (it is then stopped)."""
        try:
            fd, tables = tempfile.mkstemp(prefix=_SCRATCH_PREFIX, suffix=_SCRATCH_SUFFIX)
            os.close(fd)
        except OSError:
            self.stop()
            return None
        finished = threading.Event()
        watchdog = threading.Thread(target=self._watch, args=(tables, finished), daemon=True)
        watchdog.start()
        try:
            assert self.child.stdin is not None and self.child.stdout is not None
            pickle.dump((task, tables), self.child.stdin)
            self.child.stdin.flush()
            return _received(pickle.load(self.child.stdout), tables, keep)
        except (OSError, ValueError, TypeError, EOFError, pickle.PickleError, pa.ArrowException):
            self.stop()
            return None
        finally:
            finished.set()
            watchdog.join()
            with contextlib.suppress(OSError):
                os.unlink(tables)  # (what is mapped or open stays readable)

    def _watch(self, tables: str, finished: threading.Event) -> None:
        """Stop the worker once its tables stop growing for `WORKER_TIMEOUT` seconds (a task of any size
        may take long; a hung worker writes nothing)."""
        size = -1
        while not finished.wait(WORKER_TIMEOUT):
            try:
                now = os.path.getsize(tables)
            except OSError:
                now = size
            if now == size:
                self.child.kill()
                return
            size = now

    def stop(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
            self.child.wait()
        for pipe in (self.child.stdin, self.child.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _start() -> _Worker | None:
    """A worker process waiting for its first task, or None when none can be started."""
    scratch = Path(tempfile.gettempdir())
    remove_stale_tmp(scratch, pattern=f"{_SCRATCH_PREFIX}*{_SCRATCH_SUFFIX}")  # a killed run's
    try:
        child = subprocess.Popen(
            [sys.executable, "-P", "-c", _BOOT, *_worker_args()],  # -P: no modules from the working directory
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={"OPENBLAS_NUM_THREADS": "1", **os.environ},  # (idle BLAS threads spin at numpy's import)
        )  # fmt: skip
    except (OSError, ValueError):
        return None
    return _Worker(child)


def _worker_args() -> list[str]:
    """``sys.argv[1:]`` of a worker: the package's folder and name."""
    return [os.path.dirname(os.path.abspath(__file__)), _PACKAGE]


def serve() -> None:
    """A worker's main: pickled (task, file name) pairs on stdin until it is closed. A task's tables go
    to its file as an Arrow IPC stream as they are parsed, then its piece (counts and issues, table
    empty) to stdout."""
    memory.own_process()
    while True:
        try:
            task, tables = pickle.load(sys.stdin.buffer)
        except EOFError:
            return
        with pa.OSFile(tables, "wb") as sink, pa.ipc.new_stream(sink, RAW_SCHEMA) as writer:
            piece = read_task(task, send=writer.write_table)
        pickle.dump(piece, sys.stdout.buffer)
        sys.stdout.buffer.flush()


def _received(piece: Piece, tables: str, keep: bool = True) -> Piece:
    """A worker's piece (its table empty) with the table from its tables' file: mapped, not read
    (`Piece.mapped`; the mapping is closed when the table's buffers are let go of), and with ``keep``,
    left open for the cache to write from (`Piece.spill`)."""
    with open(tables, "rb") as file:
        mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)  # (holds its own descriptor)
        table = pa.ipc.open_stream(pa.BufferReader(pa.py_buffer(mapping))).read_all()
        piece.table, piece.mapped = _own_text(table), [mapping]
        if keep:
            piece.spill = [open(tables, "rb")]  # noqa: SIM115 (`Piece.spill` owns it)
    return piece


def _own_text(table: pa.Table) -> pa.Table:
    """The table with its text columns copied into memory of their own: the events frame keeps text as
    it is (no copy), which would keep the whole mapped file; the rest is converted soon, and let go."""
    for at, column in enumerate(table.schema):
        if table.num_rows and (pa.types.is_large_string(column.type) or pa.types.is_list(column.type)):
            copied = pa.concat_arrays(table.column(at).chunks)
            table = table.set_column(at, column, pa.chunked_array([copied], column.type))
    return table


def _concat(tables: list[pa.Table]) -> pa.Table:
    if not tables:
        return RAW_SCHEMA.empty_table()
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]
