"""The Parquet cache: hits, grown and rotated logs, damaged entries, unusable directories."""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from tlslog import cache as cache_mod
from tlslog import frames
from tlslog.frames import read_log

ROOT = Path(__file__).resolve().parent.parent
LINES = (ROOT / "sample_logs" / "maillog").read_text().splitlines(keepends=True)
BAD = "Nov 22 03:07:01 vm sm-mta[17612]: STARTTLS=server, relay=localhost [127.0.0.1], version\n"


def fresh(path):
    return read_log(str(path), use_cache=False, jobs=1)


def counting(monkeypatch):
    calls = []
    real_source, real_range = frames.read_source, frames.run_parallel
    monkeypatch.setattr(frames, "read_source", lambda *a: calls.append("source") or real_source(*a))
    monkeypatch.setattr(
        frames, "run_parallel", lambda t, *a: calls.extend(["range"] * len(t)) or real_range(t, *a)
    )
    return calls


def same(a, b):
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["stats"] == b.attrs["stats"] and list(a.attrs["issues"]) == list(b.attrs["issues"])


def test_second_read_comes_from_the_cache(tmp_path, monkeypatch):
    log = tmp_path / "maillog"
    log.write_text("".join([*LINES[:100], BAD, *LINES[100:200]]))
    first = read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
    calls = counting(monkeypatch)
    second = read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
    assert calls == []
    same(first, second)
    same(second, fresh(log))
    assert second.attrs["stats"]["issues"] == 1


def test_grown_log_is_read_from_where_it_was_left(tmp_path, monkeypatch):
    log = tmp_path / "maillog"
    log.write_text("".join(LINES[:100]))
    read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
    with log.open("a") as f:
        f.write("".join([*LINES[100:150], BAD, *LINES[150:200]]))
    calls = counting(monkeypatch)
    grown = read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
    assert calls == ["range"]
    same(grown, fresh(log))
    assert grown.attrs["issues"][0].lineno == 151


def test_rotated_log_is_recognised(tmp_path, monkeypatch):
    log = tmp_path / "maillog"
    log.write_text("".join(LINES[:120]))
    read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
    log.rename(tmp_path / "maillog.1")
    log.write_text("".join(LINES[120:200]))
    calls = counting(monkeypatch)
    both = read_log(str(tmp_path), cache_dir=tmp_path / "c", jobs=1)
    assert calls == ["source"]  # only the new maillog is parsed
    same(both, read_log(str(tmp_path), use_cache=False, jobs=1))


def test_compressed_logs_are_cached_whole(tmp_path, monkeypatch):
    log = tmp_path / "maillog.2.gz"
    log.write_bytes(gzip.compress("".join(LINES[:80]).encode()))
    read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
    calls = counting(monkeypatch)
    again = read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
    assert calls == []
    same(again, fresh(log))


def test_changed_file_is_parsed_again(tmp_path):
    log = tmp_path / "maillog"
    log.write_text("".join(LINES[:50]))
    read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
    log.write_text("".join(LINES[50:90]))  # rewritten, not grown
    same(read_log(str(log), cache_dir=tmp_path / "c", jobs=1), fresh(log))


def test_damaged_entry_is_ignored_and_rewritten(tmp_path):
    log = tmp_path / "maillog"
    log.write_text("".join(LINES[:60]))
    read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
    cache_mod.flush()
    (entry,) = (tmp_path / "c").glob("*.parquet")
    entry.write_bytes(b"PAR1 not really")
    same(read_log(str(log), cache_dir=tmp_path / "c", jobs=1), fresh(log))
    assert cache_mod.Cache(tmp_path / "c").load(log, year=None, name=str(log), plain=True) is not None


def test_unwritable_cache_dir_means_no_cache(tmp_path):
    log = tmp_path / "maillog"
    log.write_text("".join(LINES[:60]))
    blocker = tmp_path / "file"
    blocker.write_text("")
    df = read_log(str(log), cache_dir=blocker / "sub", jobs=1)
    same(df, fresh(log))
    assert df.attrs["stats"]["issues"] == 0


def test_year_option_is_part_of_the_key(tmp_path):
    log = tmp_path / "maillog"
    log.write_text("".join(LINES[:60]))
    read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
    df = read_log(str(log), cache_dir=tmp_path / "c", jobs=1, year=2001)
    assert df["timestamp"].dt.year.eq(2001).all()


def test_default_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_mod.default_dir() == tmp_path / "tlslog"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_mod.default_dir() == Path(os.path.expanduser("~")) / ".cache" / "tlslog"


def test_a_log_that_grows_while_it_is_read_is_not_cached(tmp_path):
    log = tmp_path / "maillog"
    log.write_text("".join(LINES[:800]))
    grown = []

    def append_once(_):  # sendmail writes while tlslog reads
        if not grown:
            grown.append(True)
            with log.open("a") as f:
                f.write("".join(LINES[800:]))

    read_log(str(log), cache_dir=tmp_path / "c", jobs=1, on_progress=append_once)
    cache_mod.flush()
    assert not list((tmp_path / "c").glob("[!.]*.parquet"))  # the read saw a moving file: nothing stored
    same(read_log(str(log), cache_dir=tmp_path / "c", jobs=1), fresh(log))


def test_a_named_pipe_is_read_once_and_whole(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    text = "".join(LINES)

    def feed():
        with fifo.open("w") as f:
            f.write(text)

    writer = threading.Thread(target=feed)
    writer.start()
    df = read_log(str(fifo), cache_dir=tmp_path / "c", jobs=2)
    writer.join()
    plain = tmp_path / "maillog"
    plain.write_text(text)
    assert len(df) == len(fresh(plain)) and df.attrs["stats"]["lines"] == len(LINES)
    cache_mod.flush()
    assert not list((tmp_path / "c").glob("*.parquet"))  # a pipe is never cached


def test_entries_are_written_in_the_background_and_flushed(tmp_path, monkeypatch):
    log = tmp_path / "maillog"
    log.write_text("".join(LINES[:200]))
    gate = threading.Event()
    real = cache_mod.pq.ParquetWriter

    def slow_writer(*args, **kwargs):
        gate.wait(5)
        return real(*args, **kwargs)

    monkeypatch.setattr(cache_mod.pq, "ParquetWriter", slow_writer)
    df = read_log(str(log), cache_dir=tmp_path / "c", jobs=1)  # returns while the entry is written
    assert len(df) and not list((tmp_path / "c").glob("[!.]*.parquet"))
    gate.set()
    cache_mod.flush()
    assert len(list((tmp_path / "c").glob("[!.]*.parquet"))) == 1


def test_a_failed_background_write_is_ignored(tmp_path, monkeypatch):
    log = tmp_path / "maillog"
    log.write_text("".join(LINES[:200]))

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(cache_mod.pq, "ParquetWriter", broken)
    first = read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
    cache_mod.flush()
    assert not list((tmp_path / "c").glob("*.parquet"))
    same(first, read_log(str(log), cache_dir=tmp_path / "c", jobs=1))


def test_the_code_version_covers_every_module_a_worker_parses_with():
    import subprocess
    import sys

    from tlslog import workers

    boot = workers._PRELUDE + (
        "__import__(sys.argv[2] + '.workers')\n"
        "print(' '.join(m.rpartition('.')[2] for m in sys.modules if m.startswith(sys.argv[2] + '.')))\n"
    )
    args = [sys.executable, "-P", "-c", boot, *workers._worker_args()]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()
    assert "fastpath" in out
    own = {"cache.py", "fileid.py"}  # how entries are stored and matched
    assert {f"{m}.py" for m in out} | own == set(cache_mod._CODE_FILES)


def test_a_parallel_read_is_stored_from_its_spill_files(tmp_path, monkeypatch):
    from tlslog import workers

    monkeypatch.setattr(workers, "MIN_RANGE", 20_000)
    monkeypatch.setattr(frames, "MIN_RANGE", 20_000)
    log = tmp_path / "maillog"
    log.write_text("".join(LINES) * 3)
    written = []
    real = cache_mod._row_groups
    monkeypatch.setattr(cache_mod, "_row_groups", lambda files: written.append(len(files)) or real(files))
    first = read_log(str(log), cache_dir=tmp_path / "c", jobs=2)
    cache_mod.flush()
    assert written and written[0] >= 2  # the calling process's spill file and the worker's
    same(first, fresh(log))
    monkeypatch.setattr(frames, "run_parallel", lambda tasks, *a: pytest.fail("parsed") if tasks else [])
    same(read_log(str(log), cache_dir=tmp_path / "c", jobs=2), first)


def test_row_groups_gather_the_batches_of_every_file(tmp_path, monkeypatch):
    import tempfile

    from tlslog import workers

    monkeypatch.setattr(cache_mod, "ROW_GROUP", 100)
    src = frames.sources.expand(str(ROOT / "sample_logs" / "maillog"))[0]
    table = workers.read_source(src, src.reference).table
    files = []
    for half in (table.slice(0, 200), table.slice(200)):
        file = tempfile.TemporaryFile(dir=tmp_path)  # noqa: SIM115 (read by _row_groups)
        with pa.ipc.new_stream(pa.PythonFile(file, mode="w"), table.schema) as out:
            for batch in half.to_batches(max_chunksize=30):
                out.write_batch(batch)
        file.seek(0)
        files.append(file)
    groups = list(cache_mod._row_groups(files))
    for file in files:
        file.close()
    assert [g.num_rows for g in groups[:3]] == [120, 80, 120]  # 4 batches of 30, then the rest of the file
    assert pa.concat_tables(groups).to_pylist() == table.to_pylist()


def test_without_spill_files_the_table_is_stored(tmp_path):
    from tlslog import workers

    src = frames.sources.expand(str(ROOT / "sample_logs" / "maillog"))[0]
    piece = workers.read_source(src, src.reference, spill=tmp_path / "missing")  # cannot spill there
    assert piece.spill == [] and piece.table.num_rows
    log = tmp_path / "maillog"
    log.write_text("".join(LINES))
    read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
    cache_mod.flush()
    same(read_log(str(log), cache_dir=tmp_path / "c", jobs=1), fresh(log))


def test_many_logs_do_not_hold_a_file_open_each(tmp_path):
    """A cold cache over more logs than the open-file limit (macOS's soft limit is 256)."""
    import subprocess
    import sys

    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(300):
        (logs / f"maillog.{i}").write_text("".join(LINES[:20]))
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (200, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "from tlslog.frames import read_log\n"
        "df = read_log(sys.argv[1], cache_dir=sys.argv[2])\n"
        "print(df.attrs['stats']['lines'])\n"
    )
    args = [sys.executable, "-c", script, str(logs), str(tmp_path / "c")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(300 * 20)


def test_entries_are_written_once_the_frame_is_built(tmp_path, monkeypatch):
    """read_log holds new entries while it builds the frame (its threads have both cores), then writes them;
    a failure while holding still writes what was stored."""
    log = tmp_path / "maillog"
    log.write_text("".join(LINES))
    cache_mod.flush()
    steps = []
    real_frame, real_write = frames.frame_of, cache_mod.Cache._write_entry
    monkeypatch.setattr(cache_mod.Cache, "_write_entry", lambda *a: steps.append("write") or real_write(*a))
    with monkeypatch.context() as m:  # (a writer started before the frame would be in _WRITERS)
        m.setattr(
            frames, "frame_of", lambda *a, **k: steps.append(len(cache_mod._WRITERS)) or real_frame(*a, **k)
        )
        first = read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
        cache_mod.flush()
    assert steps == [0, "write"]

    other = tmp_path / "other"
    other.write_text("".join(LINES))
    with pytest.raises(RuntimeError), monkeypatch.context() as m:
        m.setattr(frames, "frame_of", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
        read_log(str(other), cache_dir=tmp_path / "c", jobs=1)
    cache_mod.flush()
    assert steps[-1] == "write"
    calls = counting(monkeypatch)
    second = read_log(str(other), cache_dir=tmp_path / "c", jobs=1)
    assert calls == []
    pd.testing.assert_frame_equal(second, first)


def test_nested_holding_writes_when_the_outermost_ends(tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(cache_mod.Cache, "_write", lambda self, *entry: written.append(entry))
    cache = cache_mod.Cache(tmp_path / "c")
    with cache.holding():
        with cache.holding():
            cache._write_later("data", {}, "ident")
        assert written == []
    cache_mod.flush()
    assert written == [("data", {}, "ident")]
