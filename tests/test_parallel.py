"""Byte ranges of a file, parsed apart (also in worker processes), join into the sequential result."""

from __future__ import annotations

import itertools
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from tlslog import decoding, frames, workers
from tlslog.frames import events_frame, read_log
from tlslog.parse import iter_events

ROOT = Path(__file__).resolve().parent.parent
MAILLOG = ROOT / "sample_logs" / "maillog"


def test_ranges_cut_at_line_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "MIN_RANGE", 1000)
    ranges = workers.split_ranges(str(MAILLOG), 0, 7)
    data = MAILLOG.read_bytes()
    assert ranges[0][0] == 0 and ranges[-1][1] is None and len(ranges) >= 7
    for start, _ in ranges[1:]:
        assert data[start - 1 : start] == b"\n"


def test_joined_ranges_equal_one_read(monkeypatch):
    monkeypatch.setattr(workers, "MIN_RANGE", 4000)
    src = frames.sources.expand(str(MAILLOG))[0]
    whole = workers.read_source(src, src.reference)
    tasks = [(str(MAILLOG), src.name, src.reference, a, b, 0 if a == 0 else None)
             for a, b in workers.split_ranges(str(MAILLOG), 0, 5)]  # fmt: skip
    joined = workers.join([workers.read_range(*t) for t in tasks])
    assert joined.table.schema == whole.table.schema
    assert joined.table.to_pylist() == whole.table.to_pylist()
    assert joined.issues == whole.issues and joined.lines == whole.lines and joined.bytes == whole.bytes


def test_issue_line_numbers_survive_the_split(tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "MIN_RANGE", 300)
    bad = "Nov 22 03:07:01 vm sm-mta[17612]: STARTTLS=server, relay=localhost [127.0.0.1], version\n"
    good = MAILLOG.read_text().splitlines(keepends=True)[:40]
    log = tmp_path / "maillog"
    log.write_text("".join([*good[:10], bad, *good[10:30], bad, *good[30:]]))
    src = frames.sources.expand(str(log))[0]
    tasks = [(str(log), src.name, src.reference, a, b, 0 if a == 0 else None)
             for a, b in workers.split_ranges(str(log), 0, 6)]  # fmt: skip
    joined = workers.join([workers.read_range(*t) for t in tasks])
    assert [i.lineno for _, _, i in joined.issues] == [11, 32]


def test_worker_processes_give_the_sequential_frame(tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "MIN_RANGE", 20_000)
    monkeypatch.setattr(frames, "MIN_RANGE", 20_000)
    df = read_log(str(MAILLOG), use_cache=False, jobs=2)
    expected = events_frame(list(iter_events(str(MAILLOG))))
    pd.testing.assert_frame_equal(df, expected)


def test_rotated_and_compressed_files_are_shared_out_and_give_the_sequential_frame(monkeypatch):
    """Whole files (compressed, JSON) go to workers as tasks too, beside ranges of plain files."""
    logs = str(ROOT / "sample_logs")
    expected = read_log(logs, use_cache=False, jobs=1)
    monkeypatch.setattr(workers, "MIN_RANGE", 20_000)
    monkeypatch.setattr(frames, "MIN_RANGE", 20_000)
    given, here = [], []
    run, read_here = frames.run_parallel, workers.read_task
    monkeypatch.setattr(frames, "run_parallel", lambda tasks, *a: given.extend(tasks) or run(tasks, *a))
    monkeypatch.setattr(workers, "read_task", lambda task, **o: here.append(task) or read_here(task, **o))
    done: list[int] = []
    threads = set()

    def progress(n: int) -> None:
        threads.add(threading.current_thread())
        done.append(n)

    df = read_log(logs, use_cache=False, jobs=2, on_progress=progress)
    pd.testing.assert_frame_equal(df, expected)
    assert df.attrs["stats"] == expected.attrs["stats"] and df.attrs["issues"] == expected.attrs["issues"]
    assert sum(done) == df.attrs["stats"]["bytes"]
    assert threads == {threading.main_thread()}  # never from the threads that talk to workers
    whole = [t.source.name for t in given if isinstance(t, workers.Whole)]
    assert {Path(n).name for n in whole} == {"maillog.1.gz", "sm-mta.journal.json"}  # (plain ones: ranges)
    assert 0 < len(here) < len(given)  # the calling process read some tasks, the worker the others


def test_a_worker_process_sends_back_the_pieces_it_read(tmp_path, monkeypatch):
    monkeypatch.setattr(workers.tempfile, "tempdir", str(tmp_path))
    src = frames.sources.expand(str(MAILLOG))[0]
    task = (str(MAILLOG), src.name, src.reference, 1000, None, None)
    packed = frames.sources.expand(str(MAILLOG.with_name("maillog.1.gz")))[0]
    worker = workers._start()
    assert worker is not None
    try:  # one task after another, a range and a whole compressed file
        pieces = [worker.read(task, keep=True), worker.read(workers.Whole(packed, packed.reference))]
    finally:
        worker.stop()
    assert list(tmp_path.iterdir()) == []  # (the kept tables file is open, no longer named)
    expected = [workers.read_range(*task), workers.read_source(packed, packed.reference)]
    for piece, wanted in zip(pieces, expected, strict=True):
        assert piece is not None and piece.table.schema == wanted.table.schema
        assert piece.table.to_pylist() == wanted.table.to_pylist() and piece.table.num_rows
        assert (piece.issues, piece.lines, piece.bytes, piece.end) == (
            wanted.issues, wanted.lines, wanted.bytes, wanted.end,
        )  # fmt: skip
    assert len(pieces[0].spill) == 1 and not pieces[1].spill
    pieces[0].drop_spill()


def test_workers_import_neither_pandas_nor_the_package_init():
    read = f"w.read_range({str(MAILLOG)!r}, 'm', w.datetime(2026, 12, 1), 0, None, 0)\n"
    check = "print('pandas' in sys.modules, getattr(sys.modules[sys.argv[2]], '__file__', None))\n"
    code = workers._PRELUDE + f"import {workers._PACKAGE}.workers as w\n" + read + check
    out = subprocess.run(
        [sys.executable, "-c", code, *workers._worker_args()], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "None"]


def test_a_worker_that_cannot_start_is_replaced_by_reading_here(monkeypatch):
    monkeypatch.setattr(workers, "_start", lambda: None)
    monkeypatch.setattr(workers, "MIN_RANGE", 20_000)
    src = frames.sources.expand(str(MAILLOG))[0]
    tasks = [(str(MAILLOG), src.name, src.reference, a, b, 0 if a == 0 else None)
             for a, b in workers.split_ranges(str(MAILLOG), 0, 3)]  # fmt: skip
    pieces = workers.run_parallel(tasks, 3)
    whole = workers.read_source(src, src.reference)
    assert workers.join(pieces).table.to_pylist() == whole.table.to_pylist()


def test_ranges_shrink_toward_the_end_of_the_work(monkeypatch):
    monkeypatch.setattr(workers, "MIN_RANGE", 1000)
    size = MAILLOG.stat().st_size
    alone = [(b or size) - a for a, b in workers.split_ranges(str(MAILLOG), 0, 2)]
    assert alone[0] == pytest.approx(size / 4, abs=2000)  # a quarter: half of what is left per process
    assert all(a >= b - 1000 for a, b in itertools.pairwise(alone[:-1]))  # (lines are cut whole)
    assert 500 <= alone[-1] < 3000
    more = [(b or size) - a for a, b in workers.split_ranges(str(MAILLOG), 0, 2, after=10 * size)]
    assert len(more) < len(alone) and more[0] > alone[0]  # more work after it: larger ranges


def test_workers_are_stopped_when_the_calling_process_fails(monkeypatch, tmp_path):
    sleeper = []

    def start():
        pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
        sleeper.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], **pipes))
        return workers._Worker(sleeper[-1])

    def fail(*task, **options):
        raise KeyboardInterrupt  # e.g. a notebook interrupt while the calling process reads its range

    monkeypatch.setattr(workers, "_start", start)
    monkeypatch.setattr(workers, "read_range", fail)
    with pytest.raises(KeyboardInterrupt):
        workers.run_parallel([("a",), ("b",), ("c",)], 2)
    assert sleeper and sleeper[0].poll() is not None  # killed and reaped, not left running


def test_workers_do_not_import_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "json.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    monkeypatch.chdir(tmp_path)
    src = frames.sources.expand(str(MAILLOG))[0]
    worker = workers._start()
    assert worker is not None
    try:
        assert worker.read((str(MAILLOG), src.name, src.reference, 1000, None, None)) is not None
    finally:
        worker.stop()
    assert not (tmp_path / "ran").exists()


def test_ranges_cut_at_line_starts_after_a_long_run_without_newlines(tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "MIN_RANGE", 1000)
    log = tmp_path / "maillog"
    log.write_bytes(b"a line\n" * 300 + b"\0" * 200_000 + b"\n" + b"b line\n" * 300)  # a crash's NUL gap
    data = log.read_bytes()
    ranges = workers.split_ranges(str(log), 0, 4)
    assert all(a == 0 or data[a - 1 : a] == b"\n" for a, _ in ranges)
    assert ranges[0][0] == 0 and ranges[-1][1] is None


def test_a_hung_worker_is_stopped_and_its_range_read_here(monkeypatch, tmp_path):
    monkeypatch.setattr(workers, "WORKER_TIMEOUT", 0.5)
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
    hung = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], **pipes)
    monkeypatch.setattr(workers, "_start", lambda: workers._Worker(hung))
    src = frames.sources.expand(str(MAILLOG))[0]
    cut = MAILLOG.read_bytes().index(b"\n", 1000) + 1
    tasks = [
        (str(MAILLOG), src.name, src.reference, 0, cut, 0),
        (str(MAILLOG), src.name, src.reference, cut, None, None),
    ]
    pieces = workers.run_parallel(tasks, 2)
    assert hung.poll() is not None
    assert workers.join(pieces).table.to_pylist() == workers.read_source(src, src.reference).table.to_pylist()


def fake_worker_read(body: str, head: bytes, task: tuple, keep: bool = False) -> workers.Piece | None:
    """`_Worker.read` of a task by a fake worker: it runs ``body`` (with ``task`` and ``tables``), sends
    ``head`` as the piece, and is stopped after."""
    script = (
        "import pickle, sys, time\n"
        "task, tables = pickle.load(sys.stdin.buffer)\n"
        f"{body}"
        f"sys.stdout.buffer.write({head!r})\n"
        "sys.stdout.buffer.flush()\n"
        "sys.stdin.read()\n"
    )
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
    worker = workers._Worker(subprocess.Popen([sys.executable, "-c", script], **pipes))
    try:
        return worker.read(task, keep=keep)
    finally:
        worker.stop()


def test_a_slow_worker_that_keeps_writing_is_not_stopped(monkeypatch, tmp_path):
    monkeypatch.setattr(workers, "WORKER_TIMEOUT", 0.5)
    src = frames.sources.expand(str(MAILLOG))[0]
    task = (str(MAILLOG), src.name, src.reference, 0, None, 0)
    expected = workers.read_range(*task)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, workers.RAW_SCHEMA) as writer:
        writer.write_table(expected.table)
    stream = tmp_path / "stream"
    stream.write_bytes(sink.getvalue().to_pybytes())
    expected.table = workers.RAW_SCHEMA.empty_table()
    slow = (  # two seconds for the task, writing a little every 0.2 s
        f"data = open({str(stream)!r}, 'rb').read()\n"
        "with open(tables, 'wb') as f:\n"
        "    for i in range(10):\n"
        "        f.write(data[i * len(data) // 10 : (i + 1) * len(data) // 10]); f.flush(); time.sleep(0.2)\n"
    )
    piece = fake_worker_read(slow, pickle.dumps(expected), task)
    assert piece is not None and piece.table.to_pylist() == workers.read_range(*task).table.to_pylist()


def test_received_text_columns_own_their_memory():
    src = frames.sources.expand(str(MAILLOG))[0]
    table = workers.read_range(str(MAILLOG), src.name, src.reference, 0, None, 0).table
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    message = sink.getvalue()
    inside = range(message.address, message.address + message.size)
    received = workers._own_text(pa.ipc.open_stream(message).read_all())
    texts = [c for c in received.columns if pa.types.is_large_string(c.type) or pa.types.is_list(c.type)]
    assert texts and received.num_rows and received.equals(table)
    assert all(b is None or b.address not in inside for c in texts for ch in c.chunks for b in ch.buffers())


def test_a_worker_with_nothing_to_read_sends_an_empty_piece():
    src = frames.sources.expand(str(MAILLOG))[0]
    task = (str(MAILLOG), src.name, src.reference, MAILLOG.stat().st_size, None, None)
    worker = workers._start()
    try:
        piece = worker.read(task)
    finally:
        worker.stop()
    assert piece.table.num_rows == 0 and piece.table.schema == workers.RAW_SCHEMA and piece.lines == 0


def test_a_worker_sends_its_batches_as_they_are_parsed(monkeypatch):
    monkeypatch.setattr(workers, "BATCH", 500)
    monkeypatch.setattr(workers.sources, "CHUNK", 16_000)
    monkeypatch.setattr(decoding, "CHUNK", 16_000)
    src = frames.sources.expand(str(MAILLOG))[0]
    task = (str(MAILLOG), src.name, src.reference, 0, None, 0)
    sent: list[pa.Table] = []
    piece = workers.read_range(*task, send=sent.append)
    assert len(sent) > 2 and piece.table.num_rows == 0
    assert pa.concat_tables(sent).to_pylist() == workers.read_range(*task).table.to_pylist()


def test_a_worker_whose_tables_are_cut_short_gives_no_piece(tmp_path, monkeypatch):
    """(`run_parallel` then reads the task here, as for a hung worker.)"""
    monkeypatch.setattr(workers.tempfile, "tempdir", str(tmp_path))
    src = frames.sources.expand(str(MAILLOG))[0]
    task = (str(MAILLOG), src.name, src.reference, 0, None, 0)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, workers.RAW_SCHEMA) as writer:
        writer.write_table(workers.read_range(*task).table)
    cut = sink.getvalue().to_pybytes()[:5000]  # a disk that filled up, say
    head = pickle.dumps(workers.Piece(workers.RAW_SCHEMA.empty_table()))
    # writes the tables cut short, then a piece that looks fine
    assert fake_worker_read(f"open(tables, 'wb').write({cut!r})\n", head, task, keep=True) is None
    assert list(tmp_path.iterdir()) == []


def test_no_worker_file_is_left_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "MIN_RANGE", 4000)
    monkeypatch.setattr(workers.tempfile, "tempdir", str(tmp_path))
    src = frames.sources.expand(str(MAILLOG))[0]
    tasks = [(str(MAILLOG), src.name, src.reference, a, b, 0 if a == 0 else None) for a, b in
             workers.split_ranges(str(MAILLOG), 0, 3)]  # fmt: skip
    pieces = workers.run_parallel(tasks, 3)
    assert workers.join(pieces).table.to_pylist() == workers.read_source(src, src.reference).table.to_pylist()
    assert list(tmp_path.iterdir()) == []


def test_a_killed_runs_worker_files_are_removed_later(tmp_path, monkeypatch):
    monkeypatch.setattr(workers.tempfile, "tempdir", str(tmp_path))
    stale, fresh, other = (tmp_path / name for name in ("tlslog-old.arrows", "tlslog-new.arrows", "x.arrows"))
    for f in (stale, fresh, other):
        f.write_bytes(b"tables")
    os.utime(stale, (1, 1))
    os.utime(other, (1, 1))
    workers._start().stop()
    assert not stale.exists() and fresh.exists() and other.exists()


def test_a_mapping_let_go_of_reads_the_same_again(tmp_path):
    import mmap

    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 64)
    with open(path, "rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    view = pa.py_buffer(mapping)
    before = view.to_pybytes()
    workers.let_go(mapping)
    assert view.to_pybytes() == before
