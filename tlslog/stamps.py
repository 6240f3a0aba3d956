"""Timestamps of the fast path: a column of envelope timestamps to Arrow timestamps, vectorised.

Gives what `tlslog.parse.timestamp_of` gives line by line. BSD timestamps (``Nov  9 00:00:09``) are
dated against the source's reference time; ISO 8601 ones (RFC 3339, RFC 5424, journald) keep their
offset: those with one become UTC and are marked aware. Whatever is unusual (a day the year changes
in, leap seconds, odd offsets) is marked for the line-by-line path, which has the last word.

>>> stamps, aware, slow = timestamps(pa.array(["Nov  9 00:00:09", "2026-11-09T01:00:09.5+01:00"]),
...                                  datetime(2026, 11, 22))
>>> [str(t) for t in stamps.to_pylist()], aware.to_pylist(), slow.tolist()
(['2026-11-09 00:00:09', '2026-11-09 00:00:09.500000'], [False, True], [False, False])
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import textarrays
from .parse import bsd_time

__all__ = ["timestamps"]

_BSD_TS = (
    r"^(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>[0-9]{1,2}) (?P<h>[0-9]{2}):(?P<m>[0-9]{2}):(?P<s>[0-9]{2})"
    + (r"(?:\.(?P<frac>[0-9]{1,9}))?$")
)
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = pa.array(_MONTH_NAMES)
_MONTH_CODES, _MONTH_ORDER = (
    np.array(x, dtype=np.int64)
    for x in zip(
        *sorted((int.from_bytes(m.encode(), "big"), i) for i, m in enumerate(_MONTH_NAMES, 1)), strict=True
    )
)


_ISO_TS = (
    r"^(?P<Y>[0-9]{4})-(?P<M>[0-9]{2})-(?P<D>[0-9]{2})T(?P<h>[0-9]{2}):(?P<m>[0-9]{2}):(?P<s>[0-9]{2})"
    r"(?:[.,](?P<frac>[0-9]{1,9}))?(?P<zone>Z|(?P<sign>[+-])(?P<oh>[0-9]{2}):?(?P<om>[0-9]{2}))?$"
)


def timestamps(ts: pa.Array, reference: datetime) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """The timestamps (UTC when aware, wall-clock time when not), which are aware, and the mask of
    rows left to the line-by-line path."""
    stamps, slow = _bsd(ts, reference)
    aware = np.zeros(len(ts), dtype=bool)
    rows = np.flatnonzero(slow)
    if len(rows):
        iso = pc.match_substring_regex(ts.take(pa.array(rows)), "^[0-9]").fill_null(False)
        rows = rows[iso.to_numpy(zero_copy_only=False)]
    if len(rows):
        values, offset, good = _iso(ts.take(pa.array(rows)))
        rows, values, offset = rows[good], values[good], offset[good]
        merged = stamps.to_numpy(zero_copy_only=False).astype("datetime64[us]")
        merged[rows] = values
        stamps = pa.array(merged, type=pa.timestamp("us"), from_pandas=True)
        aware[rows] = offset
        slow[rows] = False
    return stamps, pa.array(aware), slow


def _iso(ts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ISO 8601 timestamps as UTC (with an offset) or wall-clock time, whether each had an offset, and
    the mask of those read here (the others, odd or invalid, are ``datetime.fromisoformat``'s to judge)."""
    g = pc.extract_regex(ts, _ISO_TS)
    n = len(ts)
    good = g.is_valid().to_numpy(zero_copy_only=False)

    def number(name: str) -> np.ndarray:
        return (
            pc.cast(pc.struct_field(g, name), pa.int64(), safe=False)
            .fill_null(0)
            .to_numpy(zero_copy_only=False)
        )

    if not good.any():
        return np.zeros(n, dtype="datetime64[us]"), np.zeros(n, dtype=bool), good
    empty_to_zero = {
        k: pc.if_else(pc.equal(pc.struct_field(g, k), ""), "0", pc.struct_field(g, k)) for k in ("oh", "om")
    }
    year, month, day, h, m, s = (number(k) for k in ("Y", "M", "D", "h", "m", "s"))
    frac = pc.utf8_slice_codeunits(pc.utf8_rpad(pc.struct_field(g, "frac").fill_null(""), 6, "0"), 0, 6)
    micro = pc.cast(frac, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    zone = pc.struct_field(g, "zone").fill_null("")
    has_zone = pc.not_equal(zone, "").to_numpy(zero_copy_only=False)
    oh = pc.cast(empty_to_zero["oh"], pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    om = pc.cast(empty_to_zero["om"], pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    sign = np.where(
        pc.equal(pc.struct_field(g, "sign"), "-").fill_null(False).to_numpy(zero_copy_only=False), -1, 1
    )
    good &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (h < 24) & (m < 60) & (s < 60)
    good &= (oh < 24) & (om < 60)
    month_start = (np.clip(year - 1970, -10000, 10000) * 12 + np.clip(month, 1, 12) - 1).astype(
        "datetime64[M]"
    )
    days_in_month = ((month_start + 1).astype("datetime64[D]") - month_start.astype("datetime64[D]")).astype(
        np.int64
    )
    good &= day <= days_in_month
    days = month_start.astype("datetime64[D]") + (np.clip(day, 1, 31) - 1).astype("timedelta64[D]")
    clock = ((h * 60 + m) * 60 + s) * 1_000_000 + micro - sign * (oh * 60 + om) * 60_000_000 * has_zone
    values = days.astype("datetime64[us]") + clock.astype("timedelta64[us]")
    return values, has_zone, good


def _bsd(ts: pa.Array, reference: datetime) -> tuple[pa.Array, np.ndarray]:
    """BSD timestamps dated like ``parse.bsd_time`` against ``reference``; the mask marks rows whose
    timestamp is of another kind (ISO), whose year needs the line-by-line rule (a day the year
    changes in) or that names no time (``Feb 30``), left for the slow path."""
    n = len(ts)
    month, day, h, m, s, micro = (np.zeros(n, dtype=np.int64) for _ in range(6))
    starts, ends, data = textarrays.bounds(ts.fill_null(""))
    # "Nov  9 00:00:09" / "Nov 19 00:00:09": fixed places (the envelope has checked the shape)
    fixed = ends - starts == 15
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    at = starts[fixed]
    if len(at):

        def digit(k: int) -> np.ndarray:
            return raw[at + k].astype(np.int64) - 48

        code = (raw[at].astype(np.int64) << 16) | (raw[at + 1].astype(np.int64) << 8) | raw[at + 2]
        where = np.searchsorted(_MONTH_CODES, code)
        known = _MONTH_CODES[np.minimum(where, 11)] == code
        month[fixed] = np.where(known, _MONTH_ORDER[np.minimum(where, 11)], 0)
        day[fixed] = np.where(raw[at + 4] == 32, 0, digit(4)) * 10 + digit(5)
        h[fixed] = digit(7) * 10 + digit(8)
        m[fixed] = digit(10) * 10 + digit(11)
        s[fixed] = digit(13) * 10 + digit(14)
    other = np.flatnonzero(~fixed)
    bsd = fixed.copy()
    if len(other):
        g = pc.extract_regex(ts.take(pa.array(other)), _BSD_TS)
        bsd[other] = g.is_valid().to_numpy(zero_copy_only=False)
        month[other] = (
            pc.index_in(pc.struct_field(g, "mon"), value_set=_MONTHS)
            .fill_null(-1)
            .to_numpy(zero_copy_only=False)
            + 1
        )
        for k, into in (("day", day), ("h", h), ("m", m), ("s", s)):
            number = pc.cast(pc.struct_field(g, k), pa.int64()).fill_null(0)
            into[other] = number.to_numpy(zero_copy_only=False)
        frac = pc.utf8_slice_codeunits(pc.utf8_rpad(pc.struct_field(g, "frac").fill_null(""), 6, "0"), 0, 6)
        micro[other] = pc.cast(frac, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    empty = ends == starts
    slow = ~bsd & ~empty  # ISO timestamps (or anything else): the line-by-line path
    month = np.where(bsd, month, 0)

    def year_of(key: int) -> int:
        mon, d = _MONTH_NAMES[key // 100 - 1], key % 100
        first = bsd_time(f"{mon} {d} 00:00:00", None, reference)
        last = bsd_time(f"{mon} {d} 23:59:59.999999", None, reference)
        if first is None and last is None:
            return -1  # no such day in any year tried
        if first is None or last is None or first.year != last.year:
            return -2  # the year depends on the time of day
        return first.year

    key = month * 100 + np.clip(day, 0, 99)
    keys, inverse = np.unique(np.where(month > 0, key, 0), return_inverse=True)
    years = np.array([year_of(int(k)) if k >= 100 else -1 for k in keys], dtype=np.int64)
    year = years[inverse.reshape(-1)]
    good = bsd & (year > 0) & (month > 0) & (h < 24) & (m < 60) & (s < 60)
    slow |= bsd & ~good  # a year that depends on the time of day, or no such time (an issue, line by line)
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    if good.any():
        y = year[good] - 1970
        mo = month[good] - 1
        first_of_month = (np.array(y * 12 + mo, dtype="datetime64[M]")).astype("datetime64[D]")
        days = first_of_month + (day[good] - 1).astype("timedelta64[D]")
        clock = ((h[good] * 60 + m[good]) * 60 + s[good]) * 1_000_000 + micro[good]
        out[good] = days.astype("datetime64[us]") + clock.astype("timedelta64[us]")
    return pa.array(out, type=pa.timestamp("us"), from_pandas=True), slow
