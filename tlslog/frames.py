"""Events to a typed pandas DataFrame: `read_log` (files) and `events_frame` (any events).

The columns and dtypes are the "events" table of docs/tables.md. The frame is built in one pass,
column by column (no row appends, no per-column ``astype`` on object data), and keeps the order
of the input: linking relies on the order of lines within a process.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from datetime import date, datetime, timedelta, tzinfo
from functools import partial
from os import PathLike
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import memory, sources
from .cache import Cache, Identity, identity
from .fastpath import RAW_SCHEMA, raw_table
from .parse import reference_time
from .records import EVENT_FIELDS, TLS_VERSIONS, Event, Issues, ParseIssue, StrictParseError
from .workers import MIN_RANGE, Piece, Task, Whole, join, plain_text, read_source, run_parallel, split_ranges

CATEGORY_COLUMNS = (
    "kind", "host", "program", "direction", "verify", "cipher", "mailer", "stat", "proto", "daemon",
    "ruleset", "subkind", "dsn",
)  # fmt: skip
INT_COLUMNS = (
    "pid", "alg_bits", "cipher_bits", "ssl_error", "errno", "reply_code", "required_bits", "actual_bits",
    "size", "nrcpts",
)  # fmt: skip
LIST_COLUMNS = ("recipients",)
STR_COLUMNS = tuple(
    f
    for f in EVENT_FIELDS
    if f not in {*CATEGORY_COLUMNS, *INT_COLUMNS, *LIST_COLUMNS, "timestamp", "version"}
)

#: ``SSLv3 < TLSv1 < TLSv1/SSLv3 < TLSv1.1 < TLSv1.2 < TLSv1.3 < other``; compare with ``>= "TLSv1.2"``.
VERSION_DTYPE = pd.CategoricalDtype([*TLS_VERSIONS, "other"], ordered=True)
RECIPIENTS_DTYPE = pd.ArrowDtype(pa.list_(pa.string()))

_VERSION_VALUES = pa.array(list(VERSION_DTYPE.categories), type=pa.string())
_OTHER_CODE = len(TLS_VERSIONS)
_STR_DTYPE = pd.api.types.pandas_dtype("str")
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|min|s)", re.IGNORECASE)
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "min": "minutes", "s": "seconds"}

When = datetime | date | str | None
Paths = str | PathLike[str] | Iterable[str | PathLike[str]]


def read_log(
    paths: Paths,
    *,
    year: int | None = None,
    since: When = None,
    until: When = None,
    tz: str | tzinfo | None = None,
    strict: bool = False,
    on_issue: Callable[[ParseIssue], Any] | None = None,
    on_progress: Callable[[int], Any] | None = None,
    cache_dir: str | PathLike[str] | None = None,
    use_cache: bool = True,
    jobs: int | None = None,
) -> pd.DataFrame:
    """Read maillog files into the typed events frame (one row per TLS-relevant line, in file order).

    :param paths: files, directories or ``"-"`` (see `tlslog.iter_events`).
    :param year: year of BSD timestamps (default: inferred).
    :param since: keep events at or after this time (datetime, date, ``"2026-11-09"``, or ``"7d"`` /
        ``"24h"`` before the newest event); ``until``: keep events before this time.
    :param tz: zone of naive timestamps when some lines carry an offset (default: the machine's zone).
    :param cache_dir: where parsed files are kept (default ``$XDG_CACHE_HOME/tlslog``, ``~/.cache/tlslog``);
        ``use_cache=False`` neither reads nor writes it.
    :param jobs: processes that parse ranges of large files (default ``None``: one per CPU; 1: none).
        Workers are fresh interpreters that import only the parsing modules (not pandas, not the caller).
    :raises InputError: a source could not be read; ``StrictParseError`` in strict mode.
    :raises ValueError: ``since`` / ``until`` is not a time, or ``tz`` is not a zone.

    ``df.attrs["issues"]`` holds the `ParseIssue`s (an immutable `Issues` tuple) and ``df.attrs["stats"]``
    the counts (``lines``, ``events``, ``issues``, ``bytes``, ``sources``).

    >>> df = read_log("/var/log/mail.log", since="7d")              # doctest: +SKIP
    >>> df[df["version"] < "TLSv1.2"]                               # doctest: +SKIP
    """
    if tz is not None:
        resolve_zone(tz)  # fail before reading, not after
    found = sources.expand(paths)
    cache = Cache.open(cache_dir) if use_cache else None
    # new cache entries are written once the frame is built, beside the caller's work on it: frame_of's
    # threads have both cores (a cold 2M-line summary, 5.24 -> 5.01 s)
    with cache.holding() if cache is not None else nullcontext():
        pieces = _read_pieces(found, year, cache, jobs or os.cpu_count() or 1, on_progress)
        issues = _issues(pieces, strict, on_issue)
        events = sum(p.table.num_rows for p in pieces)
        memory.release()  # the parse's scratch memory, kept by the allocator
        # frame_of holds the only reference to the joined table: each column's memory goes once converted
        # (and the pages of workers' mapped files once read)
        df = frame_of(_joined_tables(pieces), tz=tz, release=partial(_trim, pieces))
    df = filter_time(df, since=since, until=until, tz=tz)
    memory.release()
    df.attrs["issues"] = Issues(issues)
    df.attrs["stats"] = {
        "lines": sum(p.lines for p in pieces),
        "events": events,
        "issues": len(issues),
        "bytes": sum(p.bytes for p in pieces),
        "sources": [s.name for s in found],
    }
    return df


def _issues(
    pieces: list[Piece], strict: bool, on_issue: Callable[[ParseIssue], Any] | None
) -> list[ParseIssue]:
    """The pieces' issues in line order, each handed to ``on_issue``; the first line that could not be
    parsed raises `StrictParseError` with ``strict``."""
    issues: list[ParseIssue] = []
    for piece in pieces:
        for _, kind, issue in sorted(piece.issues, key=lambda x: (x[0], x[1])):
            if strict and kind == 1:
                raise StrictParseError(issue)
            issues.append(issue)
            if on_issue is not None:
                on_issue(issue)
    return issues


def _read_pieces(
    found: list[sources.Source],
    year: int | None,
    cache: Cache | None,
    jobs: int,
    on_progress: Callable[[int], Any] | None,
) -> list[Piece]:
    """One piece per source: from the cache, the cache plus the file's new end, or parsed (in parallel)."""
    spill = cache.folder if cache is not None else None  # parsed batches also go to files there
    done: dict[int, Piece] = {}
    hits: set[int] = set()
    tasks: list[tuple[int, Task]] = []  # (source number, task), in the order they are taken
    whole: list[tuple[int, sources.Source, datetime, int]] = []  # files a worker may read, and their text
    to_split: list[tuple[int, sources.Source, datetime]] = []  # large plain files, cut into ranges
    kept: dict[int, Piece] = {}  # cached beginnings of grown files
    before: dict[int, Identity | None] = {}  # each file as it was before it was read
    for n, src in enumerate(found):
        reference = reference_time(src, year)
        # only regular files may be cached (a pipe's bytes are gone once read)
        regular = src.path is not None and _is_regular(src.path)
        plain = regular and plain_text(src.path)
        hit = None
        if cache is not None and regular:
            before[n] = identity(src.path)
            hit = cache.load(src.path, year=year, name=src.name, plain=plain)
        if hit is not None and not hit.grown:
            done[n] = hit.piece
            hits.add(n)
            if on_progress is not None and hit.piece.bytes:
                on_progress(hit.piece.bytes)
            continue
        if hit is not None:
            kept[n] = hit.piece
            if on_progress is not None and hit.piece.bytes:
                on_progress(hit.piece.bytes)
            tasks.append((n, (str(src.path), src.name, reference, hit.piece.end, None, hit.piece.lines)))
        elif plain and jobs > 1 and (src.size or 0) >= 2 * MIN_RANGE:
            to_split.append((n, src, reference))
        elif regular and jobs > 1 and (src.size or 0) >= MIN_RANGE:
            whole.append((n, src, reference, (src.size or 0) * (1 if plain else _PACKED)))
        else:
            # spilled only when the table is big enough to matter: one open file per log otherwise
            big = n in before and (src.size or 0) >= MIN_RANGE
            done[n] = read_source(src, reference, on_progress, spill if big else None)
    # the files that cannot be cut first, the largest first; then ranges that shrink toward the end
    whole.sort(key=lambda w: -w[3])
    tasks += [(n, Whole(src, reference)) for n, src, reference, _ in whole]
    after = sum(src.size or 0 for _, src, _ in to_split)
    for n, src, reference in to_split:
        after -= src.size or 0
        tasks += [
            (n, (str(src.path), src.name, reference, a, b, 0 if a == 0 else None))
            for a, b in split_ranges(str(src.path), 0, jobs, after)
        ]
    results = run_parallel([t for _, t in tasks], jobs, spill, on_progress)
    by_source: dict[int, list[Piece]] = {}
    for (n, _), piece in zip(tasks, results, strict=True):
        by_source.setdefault(n, []).append(piece)
    for n, parts in by_source.items():
        piece = join([kept[n], *parts] if n in kept else parts)
        if (piece.source_issues and len(parts) > 1) or (n in kept and parts[0].source_issues):
            # damage reports are capped and summarised per file: read it in one go instead
            piece.drop_spill()
            piece = read_source(found[n], reference_time(found[n], year), spill=spill)
        done[n] = piece
    if cache is not None:
        for n, src in enumerate(found):
            if n in before and n not in hits:
                cache.store(src.path, done[n], year=year, before=before[n])
    return [done[n] for n in range(len(found))]


def _joined_tables(pieces: list[Piece]) -> pa.Table:
    """The pieces' tables as one, taken out of the pieces."""
    table = pa.concat_tables([p.table for p in pieces]) if pieces else RAW_SCHEMA.empty_table()
    for piece in pieces:
        piece.table = RAW_SCHEMA.empty_table()
    return table


def _trim(pieces: list[Piece]) -> None:
    for piece in pieces:
        piece.trim()


_PACKED = 4  #: a file that is not plain text counts as this many times its size (compressed ones hold more)


def _is_regular(path: os.PathLike) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def events_frame(events: Iterable[Event], *, tz: str | tzinfo | None = None) -> pd.DataFrame:
    """The typed events frame of any events (columns ``Event._fields``, dtypes of docs/tables.md).

    >>> from tlslog.records import Event
    >>> df = events_frame([Event("starttls", version="TLSv1.2", cipher_bits=128)])
    >>> df["version"].iloc[0] >= "TLSv1.2", str(df["cipher_bits"].dtype)
    (True, 'Int64')
    """
    rows = events if isinstance(events, list | tuple) else list(events)
    return frame_of(raw_table(rows), tz=tz)


def frame_of(
    table: pa.Table, *, tz: str | tzinfo | None = None, release: Callable[[], Any] | None = None
) -> pd.DataFrame:
    """The typed events frame of a raw events table (`tlslog.fastpath.RAW_SCHEMA`).

    Text columns share the table's buffers (no copy); categoricals come from the dictionaries. Columns are
    converted two at a time (Arrow and numpy let go of the GIL), each let go of once converted, and then
    ``release`` is called. What a column's conversion frees, the next one reuses (handing it back to the
    system in between would cost a page fault a page).
    """
    aware = table.column("aware").to_numpy(zero_copy_only=False).astype(bool) if table.num_rows else None
    n = table.num_rows
    raw = {name: table.column(name) for name in EVENT_FIELDS}
    del table  # (only this function holds the table: each column's memory goes once converted)

    def convert(name: str) -> Any:
        values = raw.pop(name)
        if name == "timestamp":
            return _timestamps(values, aware, tz)
        if name == "version":
            return _versions(values)
        if name in CATEGORY_COLUMNS:
            return _categories(values)
        if name in INT_COLUMNS:
            return pd.Int64Dtype().__from_arrow__(values)
        if name in LIST_COLUMNS:
            return pd.arrays.ArrowExtensionArray(values)
        return _STR_DTYPE.__from_arrow__(values)

    columns: dict[str, Any] = {}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="tlslog-frame") as pool:
        for name, column in zip(EVENT_FIELDS, pool.map(convert, EVENT_FIELDS), strict=True):
            columns[name] = column
            if release is not None:
                release()
    return pd.DataFrame(columns, index=pd.RangeIndex(n), copy=False)


def _encoded(values: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """The dictionary and the codes (-1: missing) of a column."""
    if not pa.types.is_dictionary(values.type):
        values = pa.chunked_array([values.combine_chunks().dictionary_encode()])
    elif values.num_chunks > 1:  # (unified here, column by column in frame_of's threads)
        values = values.unify_dictionaries()
    if values.num_chunks == 0:
        return pa.array([], type=pa.string()), np.zeros(0, dtype=np.int32)
    codes = np.concatenate([c.indices.fill_null(-1).to_numpy(zero_copy_only=False) for c in values.chunks])
    codes = codes.astype(np.int32, copy=False)
    dictionary = values.chunk(0).dictionary
    used = np.bincount(codes[codes >= 0], minlength=len(dictionary)) > 0
    if not used.all():  # a sliced or filtered table: only the values present become categories
        remap = np.append(np.cumsum(used, dtype=np.int32) - 1, -1)
        dictionary, codes = dictionary.filter(pa.array(used)), remap[codes]
    return dictionary, codes


def _categories(values: pa.ChunkedArray) -> pd.Categorical:
    """Sorted ``str`` categories (also for an empty or all-missing column), missing as NaN."""
    dictionary, codes = _encoded(values)
    labels = np.array(dictionary.to_pylist(), dtype=object)
    order = np.argsort(labels, kind="stable")
    rank = np.empty(len(order) + 1, dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    rank[-1] = -1  # code -1 (missing) stays -1
    return pd.Categorical.from_codes(
        rank[codes], dtype=pd.CategoricalDtype(pd.Index(labels[order], dtype="str"))
    )


def _versions(values: pa.ChunkedArray) -> pd.Categorical:
    """Known protocol names keep their place in the order; any other value becomes ``other``."""
    dictionary, codes = _encoded(values)
    known = pc.index_in(dictionary, value_set=_VERSION_VALUES).fill_null(_OTHER_CODE)
    mapped = np.append(known.to_numpy(zero_copy_only=False).astype(np.int32), -1)
    return pd.Categorical.from_codes(mapped[codes], dtype=VERSION_DTYPE)


def _timestamps(values: pa.Array, aware: np.ndarray | None, tz: str | tzinfo | None) -> pd.DatetimeIndex:
    """``datetime64[us]`` when every timestamp is naive; ``datetime64[us, UTC]`` when any is aware."""
    stamps = pd.DatetimeIndex(values.to_numpy(zero_copy_only=False))
    if aware is None or not aware.any():
        return stamps
    naive = ~aware & stamps.notna()
    out = stamps.to_numpy(copy=True)
    if naive.any():
        out[naive] = _localize(stamps[naive], tz).tz_convert("UTC").tz_localize(None).to_numpy()
    return pd.DatetimeIndex(out).tz_localize("UTC")


def _localize(index: pd.DatetimeIndex, tz: str | tzinfo | None) -> pd.DatetimeIndex:
    """Naive local times into ``tz``: skipped (spring) times move forward; repeated (autumn) hours
    are inferred from the order of lines, or taken as standard time when that fails."""
    zone = resolve_zone(tz)
    try:
        return index.tz_localize(zone, ambiguous="infer", nonexistent="shift_forward")
    except (ValueError, TypeError):  # pytz AmbiguousTimeError is a ValueError
        return index.tz_localize(
            zone, ambiguous=np.zeros(len(index), dtype=bool), nonexistent="shift_forward"
        )


def resolve_zone(tz: str | tzinfo | None) -> tzinfo:
    """The zone for naive timestamps: a zone name (``"Europe/Berlin"``), a tzinfo, or None for the machine's.

    :raises ValueError: an unknown zone name.
    """
    if tz is None:
        from dateutil.tz import tzlocal  # a pandas dependency; follows the C library's zone and its DST

        return tzlocal()
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone: {tz!r} (use a name such as Europe/Berlin or UTC)") from None


def parse_when(value: When, *, now: datetime | None = None) -> datetime | None:
    """A point in time from a datetime, a date, an ISO string, or a span before ``now``.

    Dates mean midnight; strings are ISO 8601 (``2026-11-09``, ``2026-11-09 14:00``,
    ``2026-11-09T14:00:00+01:00``); ``"7d"``, ``"24h"``, ``"30min"``, ``"2w"``, ``"90s"`` are
    relative to ``now``.

    :raises ValueError: the value is none of these, or relative without ``now``.

    >>> parse_when("2026-11-09"), parse_when("24h", now=datetime(2026, 11, 9, 12))
    (datetime.datetime(2026, 11, 9, 0, 0), datetime.datetime(2026, 11, 8, 12, 0))
    """
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r} (use a date, a datetime, or a span such as 7d)")
    text = value.strip()
    m = _RELATIVE.fullmatch(text)
    if m:
        if now is None:
            raise ValueError(f"relative time {value!r} needs a reference time")
        try:
            return now - timedelta(**{_UNITS[m.group(2).lower()]: float(m.group(1))})
        except OverflowError:
            raise ValueError(f"span {value!r} reaches back before the year 1") from None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"not a time: {value!r} (use 2026-11-09, '2026-11-09 14:00', or a span such as 7d, 24h)"
        ) from None


def filter_time(
    df: pd.DataFrame, *, since: When = None, until: When = None, tz: str | tzinfo | None = None
) -> pd.DataFrame:
    """Rows with ``since <= timestamp < until`` (either bound optional); rows without a timestamp go.

    Relative bounds (``"7d"``) count back from the newest timestamp in ``df``. Aware bounds
    compare with naive columns in ``tz`` (default: the machine's zone) and the other way round.
    """
    if since is None and until is None:
        return df
    ts = df["timestamp"]
    newest = ts.max()
    now = None if pd.isna(newest) else newest.to_pydatetime()
    keep = ts.notna()
    for bound, is_lower in ((since, True), (until, False)):
        if bound is None:
            continue
        if now is None and isinstance(bound, str) and _RELATIVE.fullmatch(bound.strip()):
            parse_when(bound, now=datetime(2000, 1, 1))  # still reject junk; nothing to compare with
            continue
        when = _like_column(pd.Timestamp(parse_when(bound, now=now)), ts.dt.tz, tz)
        keep &= (ts >= when) if is_lower else (ts < when)
    return df.loc[keep.to_numpy()].reset_index(drop=True)


def _like_column(when: pd.Timestamp, column_tz: tzinfo | None, tz: str | tzinfo | None) -> pd.Timestamp:
    zone = resolve_zone(tz)
    if column_tz is None:  # naive local column
        return when if when.tzinfo is None else when.tz_convert(zone).tz_localize(None)
    if when.tzinfo is None:
        when = when.tz_localize(zone, ambiguous=False, nonexistent="shift_forward")
    return when.tz_convert(column_tz)
