"""The weekly encryption-coverage report: its window in the data, its numbers, and HTML or Markdown.

HTML is autoescaped by Jinja2 and self-contained (charts come in as SVG strings: this module does not import
matplotlib); Markdown is escaped through Jinja's ``finalize``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import TYPE_CHECKING

import pandas as pd

from .failures import failures
from .metrics import by_cipher, by_peer, by_version, coverage
from .records import InputError
from .report import cells, markdown_table, md_escape, numeric_columns
from .views import (
    coverage_totals,
    failure_groups,
    peer_table,
    scope_kwargs,
    stamp,
    weak_table,
    without_internal,
)

if TYPE_CHECKING:
    import jinja2


class Period(StrEnum):
    """Report periods: the last full Monday-Sunday week, the 7 days before the newest event, or all."""

    last_week = "last-week"
    last_7_days = "last-7-days"
    all = "all"


# -- weekly report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A report period ``[start, end)`` and the one before it (``None`` for ``all``)."""

    start: pd.Timestamp
    end: pd.Timestamp
    prev_start: pd.Timestamp | None
    prev_end: pd.Timestamp | None


def window(events: pd.DataFrame, period: Period | str) -> Window:
    """The report window in the data: ``last-week`` is the last full Monday-Sunday week (the week that ends
    on the day of the newest event, or before it); ``last-7-days`` the 7 days before the newest event."""
    period = Period(period)
    ts = events["timestamp"].dropna()
    if ts.empty:
        raise InputError("no events with a timestamp to report on")
    newest = ts.max()
    if period is Period.all:
        return Window(ts.min(), newest + pd.Timedelta(microseconds=1), None, None)
    if period is Period.last_7_days:
        end = newest + pd.Timedelta(microseconds=1)
    else:
        after = newest.normalize() + pd.Timedelta(days=1)
        end = after - pd.Timedelta(days=after.weekday())
    start = end - pd.Timedelta(days=7)
    return Window(start, end, start - pd.Timedelta(days=7), start)


def _between(events: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    ts = events["timestamp"]
    if ts.is_monotonic_increasing:  # the usual case (log order): a slice, not a copy of every column
        return events.iloc[ts.searchsorted(start, side="left") : ts.searchsorted(end, side="left")]
    return events[(ts >= start) & (ts < end)]


_TREND = [
    "period",
    "direction",
    "total",
    "encrypted",
    "encrypted_share",
    "verified_share",
    "tls12_share",
    "weak_share",
]


def _columns(df: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    return df[[c for c in names if c in df.columns]]


@dataclass
class Weekly:
    """The figures of one report, computed once and shared by the charts and the templates."""

    period: Period
    window: Window
    headline: pd.DataFrame
    trend: pd.DataFrame
    peers: pd.DataFrame
    versions: pd.DataFrame
    ciphers: pd.DataFrame
    failures: pd.DataFrame
    failure_rows: pd.DataFrame
    weak: pd.DataFrame

    def as_dict(self) -> dict:
        """The figures as plain values (period and window as text and timestamps), for `from_dict`."""
        frames = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("period", "window")}
        w = self.window
        return {"period": self.period.value, "window": [w.start, w.end, w.prev_start, w.prev_end], **frames}

    @classmethod
    def from_dict(cls, values: dict) -> Weekly:
        """The `Weekly` of `as_dict` (other keys are ignored)."""
        frames = {f.name: values[f.name] for f in fields(cls) if f.name not in ("period", "window")}
        return cls(period=Period(values["period"]), window=Window(*values["window"]), **frames)


def _headline_numbers(events: pd.DataFrame, scope: dict) -> dict[str, float]:
    if events.empty:
        return {}
    cov = coverage_totals(events, **scope).set_index("direction")
    fails = without_internal(failures(events, internal=scope["internal"]), scope["include_internal"])
    out: dict[str, float] = {}
    for d, label in (("inbound", "Inbound messages"), ("outbound", "Outbound attempts")):
        row = cov.loc[d] if d in cov.index else None
        out[label] = float(row["total"]) if row is not None else 0.0
        out[f"{d.title()} encrypted"] = float(row["encrypted_share"]) if row is not None else float("nan")
        out[f"{d.title()} verified"] = float(row["verified_share"]) if row is not None else float("nan")
    out["TLS failures"] = float(len(fails))
    out["Peer domains"] = float(by_peer(events, by="domain", **scope)["peer"].nunique())
    return out


def _headline(now: dict[str, float], before: dict[str, float] | None) -> pd.DataFrame:
    def show(name: str, v: float | None) -> str:
        if v is None or v != v:
            return "n/a"
        return f"{v:.1%}" if name.endswith(("encrypted", "verified")) else f"{v:,.0f}"

    def change(name: str) -> str:
        if before is None or name not in before:
            return "n/a"
        a, b = now.get(name), before[name]
        if a is None or a != a or b != b:
            return "n/a"
        if name.endswith(("encrypted", "verified")):
            return f"{(a - b) * 100:+.1f} pt"
        return f"{a - b:+,.0f}" + (f" ({(a - b) / b:+.0%})" if b else "")

    names = list(now)
    return pd.DataFrame(
        {
            "figure": names,
            "this period": [show(n, now[n]) for n in names],
            "previous": [show(n, (before or {}).get(n)) for n in names],
            "change": [change(n) for n in names],
        },
        dtype="str",
    )


def weekly_data(
    events: pd.DataFrame,
    *,
    period: Period | str = Period.last_week,
    include_internal: bool = False,
    internal: Iterable[str] = (),
    top: int = 25,
) -> Weekly:
    """Compute the figures of a report over `window` (`weekly_report` renders them)."""
    scope = scope_kwargs(include_internal, internal)
    win = window(events, period)
    cur = _between(events, win.start, win.end)
    prev = _between(events, win.prev_start, win.prev_end) if win.prev_start is not None else None
    span = win.end - win.start
    by = "day" if span <= pd.Timedelta(days=31) else "week"
    fails = without_internal(failures(cur, internal=tuple(internal)), include_internal)
    peers = peer_table(cur, top=top, **scope)
    return Weekly(
        period=Period(period),
        window=win,
        headline=_headline(
            _headline_numbers(cur, scope), _headline_numbers(prev, scope) if prev is not None else None
        ),
        trend=_columns(coverage(cur, by=by, direction="both", **scope), _TREND),
        peers=peers[
            ["peer", "direction", "total", "encrypted_share", "verified_share", "failures", "versions"]
        ],
        versions=by_version(cur, **scope),
        ciphers=by_cipher(cur, **scope)
        .sort_values(["direction", "count"], ascending=[True, False], kind="stable")
        .reset_index(drop=True),
        failures=failure_groups(fails),
        failure_rows=fails,
        weak=weak_table(cur, **scope),
    )


class _MdSafe(str):
    """Markdown produced here (already escaped): the Markdown template's finalize leaves it alone."""


def _md_finalize(value: object) -> object:
    if isinstance(value, _MdSafe) or value is None:
        return "" if value is None else value
    return md_escape(str(value))


def _environment(fmt: str) -> jinja2.Environment:
    import jinja2  # here, not at the top: a command that writes no report does not need it (25 ms)

    loader = jinja2.PackageLoader("tlslog", "templates")
    if fmt == "html":
        return jinja2.Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return jinja2.Environment(
        loader=loader, autoescape=False, finalize=_md_finalize, trim_blocks=True, lstrip_blocks=True
    )


def _svg_src(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")


def weekly_report(
    events: pd.DataFrame | None,
    *,
    period: Period | str = Period.last_week,
    fmt: str = "html",
    charts: dict[str, str] | None = None,
    include_internal: bool = False,
    internal: Iterable[str] = (),
    data: Weekly | None = None,
) -> str:
    """The weekly report as one self-contained HTML page or as mail-friendly Markdown.

    ``charts`` maps a section (``coverage``, ``versions``, ``ciphers``, ``failures``) to an SVG string; HTML
    embeds them as images, Markdown leaves them out. Pass ``data`` from `weekly_data` to reuse its figures
    (``events`` is then not read and may be None).

    >>> html = weekly_report(tlslog.read_log("sample_logs/"), period="all")        # doctest: +SKIP
    """
    if fmt not in ("html", "markdown"):
        raise ValueError(f"report format must be html or markdown, not {fmt!r}")
    data = data or weekly_data(events, period=period, include_internal=include_internal, internal=internal)
    tables = {
        "headline": data.headline,
        "trend": data.trend,
        "peers": data.peers,
        "versions": data.versions,
        "ciphers": data.ciphers,
        "failures": data.failures,
        "weak": data.weak,
    }
    if fmt == "html":
        shaped = {
            k: dict(zip(("columns", "rows"), cells(v), strict=True)) | {"numeric": numeric_columns(v)}
            for k, v in tables.items()
        }
        images = {k: _svg_src(v) for k, v in (charts or {}).items()}
    else:
        shaped = {k: _MdSafe(markdown_table(v)) if len(v) else None for k, v in tables.items()}
        images = {}
    win = data.window
    last_day = win.end - pd.Timedelta(microseconds=1)
    return (
        _environment(fmt)
        .get_template(f"weekly.{'html' if fmt == 'html' else 'md'}.j2")
        .render(
            period=data.period.value,
            start=stamp(win.start)[:10],
            end=stamp(last_day)[:10],
            previous=(
                f"{stamp(win.prev_start)[:10]} .. {stamp(win.prev_end - pd.Timedelta(microseconds=1))[:10]}"
                if win.prev_start is not None
                else None
            ),
            tables=shaped,
            charts=images,
            empty={k: v.empty for k, v in tables.items()},
        )
    )
