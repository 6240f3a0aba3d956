"""Matplotlib charts of tlslog's frames; each draws on a given Axes (or a new figure) and returns it.

Only this module imports matplotlib; import it explicitly (``from tlslog import charts``). Functions use the
object API and never call ``plt.show()``; without ``ax`` they create a figure with ``plt.subplots``, so a
notebook shows it inline. Each takes the frame of one public function, or the events frame (then it calls
that function itself):

>>> from tlslog import charts
>>> ax = charts.coverage_trend(tlslog.coverage(df, by="day"))              # doctest: +SKIP
>>> charts.save(ax.figure, "coverage.svg")                                  # doctest: +SKIP
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from .metrics import by_cipher, by_verify, by_version, coverage

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # as report.clean's (charts and report are separate layers)
_DIRECTIONS = {"inbound": "tab:blue", "outbound": "tab:orange"}
_VERSION_COLOURS = {
    "SSLv3": "#7f0000",
    "TLSv1": "#d62728",
    "TLSv1/SSLv3": "#e45756",
    "TLSv1.1": "#ff9896",
    "TLSv1.2": "#9ecae1",
    "TLSv1.3": "#2ca02c",
    "other": "#999999",
}


def _axes(ax: Axes | None, size: tuple[float, float] = (8, 4)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def _label(text: object) -> str:
    """Log text as a literal label: ``$`` would start mathtext, and control characters (which no font
    draws) are shown as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text)).replace("$", r"\$")


def _is_events(df: pd.DataFrame) -> bool:
    return "kind" in df.columns


def _no_data(ax: Axes, title: str) -> Axes:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _direction_name(d: object) -> str:
    return {"server": "inbound", "client": "outbound"}.get(str(d), str(d))


def coverage_trend(cov: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Encrypted (solid) and verified (dashed) shares per period and direction.

    ``cov`` is `tlslog.coverage` (columns ``period``, ``direction``, ``encrypted_share``, ``verified_share``),
    or the events frame (coverage by day is computed).
    """
    ax = _axes(ax)
    if _is_events(cov):
        cov = coverage(cov, by="day")
    title = "STARTTLS coverage"
    if cov.empty:
        return _no_data(ax, title)
    for direction, part in cov.sort_values("period").groupby("direction", observed=True, sort=True):
        colour = _DIRECTIONS.get(str(direction))
        name = _label(direction)
        ax.plot(part["period"], part["encrypted_share"], marker="o", color=colour, label=f"{name} encrypted")
        ax.plot(
            part["period"],
            part["verified_share"],
            marker=".",
            linestyle="--",
            color=colour,
            label=f"{name} verified (of encrypted)",
        )
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set_title(title)
    ax.set_xlabel("period")
    ax.set_ylabel("share")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="lower left")
    # This Axes' dates only: Figure.autofmt_xdate would turn every Axes of a shared figure.
    ax.tick_params(axis="x", labelrotation=30)
    return ax


def _stacked_shares(table: pd.DataFrame, key: str, ax: Axes, title: str, colours: dict[str, str]) -> Axes:
    """Horizontal 100% bars, one per direction, stacked by ``key``, labelled with percentages."""
    if table.empty:
        return _no_data(ax, title)
    wide = (
        table.assign(direction=table["direction"].map(_direction_name))
        .pivot_table(index="direction", columns=key, values="count", aggfunc="sum", observed=True)
        .fillna(0)
    )
    wide = wide.loc[:, wide.sum() > 0]
    shares = wide.div(wide.sum(axis=1), axis=0)
    left = pd.Series(0.0, index=shares.index)
    for name in shares.columns:
        bars = ax.barh(
            shares.index.astype(str),
            shares[name],
            left=left,
            label=_label(name),
            color=colours.get(str(name)),
        )
        ax.bar_label(
            bars,
            labels=[f"{v:.0%}" if v >= 0.05 else "" for v in shares[name]],
            label_type="center",
            fontsize="small",
        )
        left = left + shares[name]
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set_xlim(0, 1)
    ax.set_title(title)
    ax.set_xlabel("share")
    ax.legend(
        fontsize="small", ncols=min(len(shares.columns), 4), loc="upper center", bbox_to_anchor=(0.5, -0.2)
    )
    return ax


def versions(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Protocol versions per direction as 100% bars. ``table`` is `tlslog.by_version` or the events frame."""
    ax = _axes(ax, (8, 3))
    if _is_events(table):
        table = by_version(table)
    return _stacked_shares(table, "version", ax, "TLS protocol versions", _VERSION_COLOURS)


def verify(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Certificate verification results per direction. ``table`` is `tlslog.by_verify` or the events frame."""
    ax = _axes(ax, (8, 3))
    if _is_events(table):
        table = by_verify(table)
    colours = {
        "OK": "#2ca02c",
        "TRUSTED": "#98df8a",
        "NO": "#c7c7c7",
        "NOT": "#ff9896",
        "FAIL": "#d62728",
        "NONE": "#7f7f7f",
    }
    return _stacked_shares(table, "verify", ax, "Certificate verification", colours)


def ciphers(table: pd.DataFrame, *, ax: Axes | None = None, top: int = 12) -> Axes:
    """The most used ciphers (count per direction), weak ones in red and hatched.

    ``table`` is `tlslog.by_cipher` or the events frame.
    """
    ax = _axes(ax, (8, 5))
    if _is_events(table):
        table = by_cipher(table)
    title = "Ciphers in use"
    if table.empty:
        return _no_data(ax, title)
    t = table.assign(
        direction=table["direction"].map(_direction_name),
        label=table["cipher"].astype(str) + " (" + table["cipher_bits"].astype(str) + ")",
    )
    weak = t.groupby("label", observed=True)["weak"].any() if "weak" in t.columns else None
    wide = t.pivot_table(index="label", columns="direction", values="count", aggfunc="sum").fillna(0)
    wide = wide.loc[wide.sum(axis=1).sort_values(ascending=False).index[:top]].iloc[::-1]
    y = range(len(wide))
    height = 0.8 / max(len(wide.columns), 1)
    for i, direction in enumerate(wide.columns):
        ax.barh(
            [v + i * height for v in y],
            wide[direction],
            height=height,
            label=_label(direction),
            color=_DIRECTIONS.get(str(direction)),
        )
    if weak is not None:
        for v, label in zip(y, wide.index, strict=True):
            if bool(weak.get(label, False)):
                ax.barh(
                    v + (len(wide.columns) - 1) * height / 2,
                    wide.loc[label].sum(),
                    height=0.9,
                    fill=False,
                    edgecolor="red",
                    hatch="//",
                    linewidth=0,
                )
    ax.set_yticks(
        [v + (len(wide.columns) - 1) * height / 2 for v in y],
        [_label(x) + (" WEAK" if weak is not None and bool(weak.get(x, False)) else "") for x in wide.index],
        fontsize="small",
    )
    ax.set_title(title)
    ax.set_xlabel("sessions")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="small")
    return ax


def failures(fails: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """TLS failures per day, stacked by cause. ``fails`` is `tlslog.failures`."""
    ax = _axes(ax)
    title = "TLS failures per day"
    if fails.empty:
        return _no_data(ax, title)
    per_day = (
        fails.assign(day=fails["timestamp"].dt.normalize(), cause=fails["cause"].astype(str))
        .pivot_table(index="day", columns="cause", values="timestamp", aggfunc="size")
        .fillna(0)
    )
    bottom = pd.Series(0.0, index=per_day.index)
    labels = per_day.index.strftime("%Y-%m-%d")
    for cause in per_day.columns:
        ax.bar(labels, per_day[cause], bottom=bottom, label=_label(cause))
        bottom = bottom + per_day[cause]
    ax.set_title(title)
    ax.set_ylabel("failures")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="small", title="cause")
    ax.tick_params(axis="x", labelrotation=30)
    return ax


def new_figure(size: tuple[float, float] = (8, 4)) -> tuple[Figure, Axes]:
    """A figure outside pyplot's state (nothing to close), for scripts and the CLI."""
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots()


def to_svg(fig: Figure) -> str:
    """The figure as an SVG document (text from logs is XML-escaped by matplotlib)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue()


def save(fig: Figure, path: str | Path, *, dpi: int = 120) -> Path:
    """Save as PNG or SVG, chosen by the file suffix."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise ValueError(f"chart file must end in .png or .svg: {path}")
    fig.savefig(path, format=fmt, dpi=dpi)
    return path
