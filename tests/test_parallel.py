"""Byte ranges of a file, parsed apart (also in worker processes), join into the sequential result."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tlslog import frames, workers
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
    assert joined.table.equals(whole.table)
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
