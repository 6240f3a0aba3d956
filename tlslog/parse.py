"""Lines to events: `parse_line` for one line, `iter_events` for files (STUB: being written)."""

from __future__ import annotations


def parse_line(line, *, year=None):
    raise NotImplementedError


def iter_events(paths, *, year=None, strict=False, on_issue=None, on_progress=None, stats=None):
    raise NotImplementedError
