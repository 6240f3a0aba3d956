"""The ``tlslog`` command line: thin typer commands over the library, output rendered by `report`.

Data goes to stdout; progress, warnings and errors to stderr. Exit codes: 0 done, 1 a `TlsLogError`
(one line ``error: ...``), 2 a usage error. Only this module prints, colours or exits.
"""

from __future__ import annotations

import errno
import functools
import gc
import inspect
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import memory, report, sources, views, weekly
from .causes import CAUSES
from .failures import failures
from .fileid import unusable
from .linking import deliveries, receipts, sessions
from .metrics import by_cipher, by_verify, by_version, coverage
from .peers import InternalHosts
from .records import KINDS, InputError, ParseIssue, StrictParseError, TlsLogError
from .report import Format
from .weekly import Period

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
    help="Read sendmail's maillog and report on STARTTLS: coverage, peers, ciphers, failures.",
)
err = Console(stderr=True, highlight=False)
SHOWN_ISSUES = 5  #: parse issues named on stderr; the rest are counted
T = TypeVar("T")

Kind = StrEnum("Kind", {k: k for k in KINDS})
Cause = StrEnum("Cause", {c: c for c in CAUSES})


class By(StrEnum):
    day = "day"
    week = "week"
    month = "month"


class Direction(StrEnum):
    inbound = "in"
    outbound = "out"
    both = "both"

    @property
    def library(self) -> str:
        return {"in": "inbound", "out": "outbound", "both": "both"}[self.value]


class PeerKey(StrEnum):
    domain = "domain"
    host = "host"


class PeerSort(StrEnum):
    volume = "volume"
    failures = "failures"
    unencrypted = "unencrypted"


class ChartKind(StrEnum):
    coverage = "coverage"
    versions = "versions"
    ciphers = "ciphers"
    verify = "verify"
    failures = "failures"


class TableName(StrEnum):
    events = "events"
    sessions = "sessions"
    receipts = "receipts"
    deliveries = "deliveries"
    failures = "failures"


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"
    parquet = "parquet"


# -- option callbacks (bad values are usage errors, exit 2) -----------------------------------------


def _when(value: str | None) -> str | None:
    """Check --since/--until early; `read_log` takes the text (spans count back from the newest event)."""
    if value is None:
        return None
    from .frames import parse_when

    try:
        parse_when(value, now=datetime(2000, 1, 1))
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    return value


def _ordered(since: str | None, until: str | None) -> None:
    """--since must come before --until when both are points in time (spans count back from the end)."""
    if since is None or until is None:
        return
    from .frames import parse_when

    try:
        start, end = parse_when(since), parse_when(until)  # a span without a reference is a ValueError
        later = start is not None and end is not None and pd.Timestamp(start) >= pd.Timestamp(end)
    except (ValueError, TypeError):  # a span, or one date with an offset and one without: read_log decides
        return
    if later:
        raise typer.BadParameter(f"--since {since} is not before --until {until}", param_hint="--since")


def _internal(values: list[str] | None) -> list[str]:
    try:
        InternalHosts.coerce(values or ())
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    return list(values or ())


# -- shared parameters ------------------------------------------------------------------------------

Paths = Annotated[
    list[str] | None,
    typer.Argument(
        help="Log files, directories, globs or [bold]-[/bold] for stdin (.gz/.bz2/.xz ok). "
        "Default: the usual maillog locations.",
        show_default=False,
    ),
]
Since = Annotated[
    str | None,
    typer.Option(
        help="Only events at or after this time: a date, a timestamp, or a span such as 7d or 12h "
        "(before the newest event).",
        callback=_when,
        rich_help_panel="Input",
    ),
]
Until = Annotated[
    str | None,
    typer.Option(
        help="Only events before this time (same forms as --since).", callback=_when, rich_help_panel="Input"
    ),
]
Year = Annotated[
    int | None,
    typer.Option(
        help="Year in which the logs end: BSD syslog timestamps carry none (default: from the file dates).",
        min=1970,
        max=9999,
        rich_help_panel="Input",
    ),
]
Strict = Annotated[
    bool,
    typer.Option(
        "--strict", help="Treat lines that cannot be parsed as errors (exit 1).", rich_help_panel="Input"
    ),
]
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="No progress bar, notes or warnings on stderr.", rich_help_panel="Input"
    ),
]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Where parsed logs are cached (default: the user's cache directory, ~/.cache/tlslog).",
        file_okay=False,
        rich_help_panel="Input",
    ),
]
NoCache = Annotated[
    bool,
    typer.Option(
        "--no-cache",
        help="Parse everything again; neither read nor write the cache.",
        rich_help_panel="Input",
    ),
]
IncludeInternal = Annotated[
    bool,
    typer.Option(
        "--include-internal", help="Count loopback and internal hops as peers.", rich_help_panel="Scope"
    ),
]
Internal = Annotated[
    list[str] | None,
    typer.Option(
        "--internal",
        metavar="HOST_OR_CIDR",
        help="A host name, address or network that is internal (repeatable).",
        callback=_internal,
        rich_help_panel="Scope",
    ),
]
Fmt = Annotated[
    Format,
    typer.Option("--format", "-f", case_sensitive=False, help="Output format.", rich_help_panel="Output"),
]
DirectionOpt = Annotated[
    Direction, typer.Option("--direction", "-d", case_sensitive=False, help="Inbound, outbound or both.")
]
Output = Annotated[Path, typer.Option("--output", "-o", help="File to write.", dir_okay=False)]


def _input_options(
    paths: Paths = None,
    since: Since = None,
    until: Until = None,
    year: Year = None,
    strict: Strict = False,
    quiet: Quiet = False,
    cache_dir: CacheDir = None,
    no_cache: NoCache = False,
) -> None:
    """Declares the input options every command takes (`command` appends this signature)."""


def _scope_options(include_internal: IncludeInternal = False, internal: Internal = None) -> None:
    """Declares the options that say which hops are internal (`command` appends those a command takes)."""


INPUT_OPTIONS = tuple(inspect.signature(_input_options, eval_str=True).parameters.values())
SCOPE_OPTIONS = tuple(inspect.signature(_scope_options, eval_str=True).parameters.values())


@dataclass
class Input:
    """The shared input options of every command: what to read and which hops count as peers."""

    paths: list[str] | None
    since: object = None
    until: object = None
    year: int | None = None
    strict: bool = False
    quiet: bool = False
    include_internal: bool = False
    internal: list[str] = field(default_factory=list)
    cache_dir: Path | None = None
    no_cache: bool = False

    @property
    def scope(self) -> dict:
        return {"include_internal": self.include_internal, "internal": tuple(self.internal)}

    def note(self, message: str) -> None:
        if not self.quiet:
            err.print(Text(message), soft_wrap=True)

    def load(self) -> pd.DataFrame:
        """Read the logs, with a progress bar on a terminal, and warn about skipped lines."""
        _, names, total = self._sources()
        events = self._read(names, total)
        self._issues(events.attrs.get("issues", ()))
        return events

    def computed(self, command: str, options: dict, compute: Callable[[pd.DataFrame], T]) -> T:
        """``compute(events)``, or the result an earlier run of ``command`` stored for the same inputs,
        read options, ``options`` and scope (`tlslog.results`); parse issues are reported either way.

        ``compute`` returns a frame or a dict of frames and plain values. Without the cache (--no-cache,
        stdin or a pipe among the inputs, an unusable cache directory) this is ``compute(self.load())``.
        """
        from .results import Entry, ResultCache

        found, names, total = self._sources()
        store = None if self.no_cache else ResultCache.open(self.cache_dir)
        options = {**options, **self.scope}
        key = store.key(found, self._read_options(), command, options) if store else None
        entry = store.load(key) if store and key else None
        if entry is None:
            events = self._read(names, total)
            issues = events.attrs.get("issues", ())
            self._issues(issues)
            entry = Entry(compute(events), issues, dict(events.attrs.get("stats", {})))
            if store and key and key == store.key(found, self._read_options(), command, options):
                store.store(key, entry)  # only when no input changed while it was read
        else:
            self._issues(entry.issues)
        return entry.value

    def _sources(self) -> tuple[list[sources.Source], list[str], int | None]:
        """The inputs (`_sources`), once the options that need the files are checked."""
        _ordered(self.since, self.until)
        if (
            self.cache_dir is not None
            and not self.no_cache
            and (why := unusable(self.cache_dir.expanduser()))
        ):
            self.note(f"warning: {why}; reading without a cache")
        return _sources(self.paths, self.note)

    def _read_options(self) -> dict:
        return {
            "year": self.year,
            "since": _resolved(self.since),
            "until": _resolved(self.until),
            "tz": None,
            "strict": self.strict,
        }

    def _read(self, names: list[str], total: int | None) -> pd.DataFrame:
        """`read_log` with a progress bar on a terminal."""
        from .frames import read_log  # here: the parsing modules are not needed when results are cached

        with _progress(total, show=not self.quiet and err.is_terminal) as on_progress:
            return read_log(
                names,
                year=self.year,
                since=self.since,
                until=self.until,
                strict=self.strict,
                on_progress=on_progress,
                cache_dir=self.cache_dir,
                use_cache=not self.no_cache,
            )

    def _issues(self, issues: Sequence[ParseIssue]) -> None:
        """Fail on the first parse issue with --strict, else warn about them."""
        if issues and self.strict:
            raise StrictParseError(issues[0])
        if issues:
            self.note(f"warning: {len(issues)} parse issues (lines skipped or damaged); --strict fails")
            for issue in issues[:SHOWN_ISSUES]:
                self.note(f"  {issue}")
            if len(issues) > SHOWN_ISSUES:
                self.note(
                    f"  ... and {len(issues) - SHOWN_ISSUES} more (read_log(...).attrs['issues'] lists them)"
                )

    def outside(self, df: pd.DataFrame) -> pd.DataFrame:
        """Rows of a linked table that are not internal hops, unless --include-internal."""
        return df if self.include_internal else df[~df["internal"].fillna(False).astype(bool)]


def _resolved(when: str | None) -> str | None:
    """--since/--until as the result cache compares them: a point in time in ISO form, or a span as seconds
    before the newest event (which the inputs fix)."""
    if when is None:
        return None
    from .frames import parse_when

    try:
        return parse_when(when).isoformat()
    except ValueError:  # a span, relative to the newest event
        ref = datetime(2000, 1, 1)
        return f"{(ref - parse_when(when, now=ref)).total_seconds()}s before the newest event"


def _sources(
    paths: list[str] | None, note: Callable[[str], None]
) -> tuple[list[sources.Source], list[str], int | None]:
    """What to read (the usual locations when no paths are given): the sources, their names for
    `read_log`, and their total size for the progress bar."""
    found = sources.expand(paths or None)
    if any(s.path is None for s in found) and sys.stdin.isatty():
        note("reading the log from standard input (end it with Ctrl-D)")
    if not paths:
        note("reading " + ", ".join(s.name for s in found))
    sizes = [s.size for s in found]
    total = None if None in sizes else sum(sizes)
    return found, (list(paths) if paths else [s.name for s in found]), total


@contextmanager
def _progress(total: int | None, *, show: bool) -> Iterator[Callable[[int], None] | None]:
    """A progress bar over the bytes of all inputs; the callback gets the bytes read since its last call."""
    if not show or not total:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        "reading", BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task("read", total=total)
        yield lambda n: bar.advance(task, n)


def command(*args, scope: tuple[str, ...] = ("include_internal", "internal"), **kwargs):
    """`app.command` for a function ``fn(inp: Input, ...)``.

    It appends the input options and the ``scope`` options to the command's own parameters, hands the
    function their `Input`, and turns a `TlsLogError` into ``error: ...`` on stderr and exit 1.
    """
    common = [*INPUT_OPTIONS, *(p for p in SCOPE_OPTIONS if p.name in scope)]

    def register(fn):
        own = list(inspect.signature(fn, eval_str=True).parameters.values())[1:]  # all but `inp`

        @functools.wraps(fn)
        def run(**kw):
            options = {p.name: kw.pop(p.name) for p in common}
            options["internal"] = options.get("internal") or []
            try:
                return fn(Input(**options), **kw)
            except TlsLogError as e:
                _error(str(e))
            except OSError as e:  # standard output full or failing (click handles a closed pipe: EPIPE)
                if e.errno == errno.EPIPE:
                    raise
                what = e.filename or ("the output" if e.errno in _WRITE_ERRORS else None)
                _error(f"{'cannot write ' + str(what) + ': ' if what else ''}{e.strerror or e}")

        params = [*own, *common]
        run.__signature__ = inspect.Signature(params)
        run.__annotations__ = {p.name: p.annotation for p in params}
        return app.command(*args, **kwargs)(run)

    return register


_WRITE_ERRORS = frozenset({errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT})


def _error(message: str) -> NoReturn:
    """``error: message`` on stderr, then exit 1."""
    with suppress(OSError):
        err.print(Text(f"error: {message}", style="red"), soft_wrap=True)
    raise typer.Exit(1)


def _rich_table(df: pd.DataFrame) -> Table:
    """A rich Table whose cells are literal Text (markup in log data is never interpreted)."""
    names, rows = report.cells(df)
    numeric = report.numeric_columns(df)
    table = Table(box=None, header_style="bold")
    for name, right in zip(names, numeric, strict=True):
        table.add_column(Text(name), justify="right" if right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(v) for v in row))
    return table


def emit(
    df: pd.DataFrame,
    fmt: Format,
    *,
    note: Callable[[str], None] | None = None,
    console: Console | None = None,
) -> None:
    """Write a frame to stdout: a rich table on a terminal when it fits, else `report.render`.

    An empty table is not drawn (a line of headers says nothing): ``note`` tells so on stderr. Other
    formats keep their shape (a CSV header, ``[]``, an empty Markdown table).
    """
    if df.empty and fmt is Format.table:
        if note is not None:
            note("no rows")
        return
    console = console or Console(highlight=False)
    text = report.render(df, fmt).rstrip("\n")
    if (
        fmt is Format.table
        and console.is_terminal
        and max(map(len, text.splitlines()), default=0) < console.width
    ):
        console.print(_rich_table(df))
    else:
        typer.echo(text)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None


# -- commands ---------------------------------------------------------------------------------------


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"tlslog {version('tlslog')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Read sendmail's maillog and report on STARTTLS: coverage, peers, ciphers, failures."""
    memory.own_process()  # (the library leaves a caller's allocator as it is)


@command(scope=())
def events(
    inp: Input,
    kind: Annotated[
        list[Kind] | None, typer.Option("--kind", "-k", help="Only events of this kind (repeatable).")
    ] = None,
    fmt: Fmt = Format.table,
) -> None:
    """The parsed TLS-relevant events, one per log line (empty columns left out of table/markdown)."""
    ev = inp.load()
    if kind:
        ev = ev[ev["kind"].astype("str").isin([k.value for k in kind])]
    emit(report.drop_empty(ev) if fmt in (Format.table, Format.markdown) else ev, fmt, note=inp.note)


@command()
def summary(
    inp: Input,
    fmt: Fmt = Format.table,
) -> None:
    """One screen: period, lines read and skipped, sessions, coverage, versions, ciphers, failing peers,
    weak crypto."""
    if fmt is Format.csv:
        raise typer.BadParameter(
            "the summary holds several tables; use table, markdown or json", param_hint="--format"
        )
    result = inp.computed("summary", {}, lambda ev: views.summary(ev, **inp.scope))
    typer.echo(views.render_summary(result, fmt).rstrip("\n"))


@command("coverage")
def coverage_cmd(
    inp: Input,
    by: Annotated[By, typer.Option(help="Period length.")] = By.week,
    direction: DirectionOpt = Direction.both,
    fmt: Fmt = Format.table,
) -> None:
    """Share of messages received and delivery attempts made over TLS (and verified), per period."""
    options = {"by": by.value, "direction": direction.library}
    table = inp.computed("coverage", options, lambda ev: coverage(ev, **options, **inp.scope))
    emit(table, fmt, note=inp.note)


@command()
def peers(
    inp: Input,
    top: Annotated[int, typer.Option(help="How many peers (0: all).", min=0)] = 20,
    sort: Annotated[
        PeerSort, typer.Option(help="Most messages, most failures or most in clear first.")
    ] = PeerSort.volume,
    by: Annotated[
        PeerKey, typer.Option(help="Group by registrable domain or by host name.")
    ] = PeerKey.domain,
    direction: DirectionOpt = Direction.both,
    fmt: Fmt = Format.table,
) -> None:
    """The peers we exchange mail with: volume, encrypted and verified shares, failures, versions."""
    options = {"by": by.value, "direction": direction.library, "sort": sort.value, "top": top or None}
    table = inp.computed("peers", options, lambda ev: views.peer_table(ev, **options, **inp.scope))
    emit(table, fmt, note=inp.note)


@command()
def ciphers(
    inp: Input,
    fmt: Fmt = Format.table,
) -> None:
    """TLS sessions by direction, protocol, cipher, bits and verify result; weak crypto flagged."""
    emit(inp.computed("ciphers", {}, lambda ev: views.cipher_table(ev, **inp.scope)), fmt, note=inp.note)


@command("failures")
def failures_cmd(
    inp: Input,
    peer: Annotated[str | None, typer.Option(help="Only this peer host or domain.")] = None,
    cause: Annotated[Cause | None, typer.Option(help="Only this cause.")] = None,
    fail_on_any: Annotated[
        bool,
        typer.Option(
            "--fail-on-any",
            help="Exit 1 when there is any failure (for cron; with --quiet, no output when there is none).",
        ),
    ] = False,
    fmt: Fmt = Format.table,
) -> None:
    """TLS-caused deferrals, bounces and refusals grouped by cause and peer, with what each cause means."""
    options = {"peer": peer, "cause": cause.value if cause else None}

    def compute(ev: pd.DataFrame) -> pd.DataFrame:
        return views.failure_groups(inp.outside(failures(ev, internal=tuple(inp.internal))), **options)

    groups = inp.computed("failures", options, compute)
    if len(groups) or not (fail_on_any and inp.quiet):
        emit(groups, fmt, note=inp.note)
    if fail_on_any and len(groups):
        err.print(f"error: {int(groups['count'].sum())} TLS failures (--fail-on-any)")
        raise typer.Exit(1)


@command(scope=("internal",))
def trace(
    inp: Input,
    query: Annotated[str, typer.Argument(help="A peer host, domain or IP, an address, or a queue id.")],
    fmt: Fmt = Format.table,
) -> None:
    """Everything about one peer, address or queue id in time order: sessions, receipts, deliveries,
    failures, with the TLS parameters of each."""
    found = views.trace(inp.load(), query, internal=inp.internal)
    if found.empty:
        inp.note(f"nothing found for {query}")
    emit(found, fmt)


@command("report")
def report_cmd(
    inp: Input,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="weekly.html (one self-contained page) or weekly.md (Markdown for mail).",
            dir_okay=False,
        ),
    ],
    period: Annotated[
        Period,
        typer.Option(
            help="last-week: the last full Monday-Sunday week in the data; "
            "last-7-days: the 7 days before the newest event."
        ),
    ] = Period.last_week,
) -> None:
    """The weekly report: headline numbers and change, coverage trend, peer domains, versions, ciphers,
    failures, weak crypto."""
    fmt = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown"}.get(
        output.suffix.lower()
    )
    if fmt is None:
        raise typer.BadParameter("the report file must end in .html or .md", param_hint="--output")

    def compute(ev: pd.DataFrame) -> dict:
        if ev["timestamp"].dropna().empty:
            raise InputError("no events with a timestamp to report on")
        win, stamps, note = weekly.window(ev, period), ev["timestamp"], None
        if not ((stamps >= win.start) & (stamps < win.end)).any():
            note = (
                f"note: nothing logged in {period.value} ({win.start:%Y-%m-%d} .. {win.end:%Y-%m-%d}); the "
                f"logs cover {stamps.min():%Y-%m-%d} .. {stamps.max():%Y-%m-%d}: try --period last-7-days"
            )
        return {"note": note, **weekly.weekly_data(ev, period=period, **inp.scope).as_dict()}

    result = inp.computed("report", {"period": period.value}, compute)
    if result["note"]:
        inp.note(result["note"])
    data = weekly.Weekly.from_dict(result)
    svgs = _report_charts(data) if fmt == "html" else None
    _write(output, weekly.weekly_report(None, fmt=fmt, charts=svgs, data=data))
    inp.note(f"wrote {output}")


def _report_charts(data: weekly.Weekly) -> dict[str, str]:
    from . import charts

    out = {}
    for key, draw, frame in (
        ("coverage", charts.coverage_trend, data.trend),
        ("versions", charts.versions, data.versions),
        ("ciphers", charts.ciphers, data.ciphers),
        ("failures", charts.failures, data.failure_rows),
    ):
        fig, ax = charts.new_figure((8, 3.5))
        draw(frame, ax=ax)
        out[key] = charts.to_svg(fig)
    return out


@command()
def chart(
    inp: Input,
    what: Annotated[ChartKind, typer.Argument(help="Which chart.", case_sensitive=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="FILE.png or FILE.svg.", dir_okay=False)],
    by: Annotated[By, typer.Option(help="Period length of the coverage chart.")] = By.day,
) -> None:
    """Draw one chart to a PNG or SVG file (coverage trend, versions, ciphers, verify, failures)."""
    if output.suffix.lower() not in (".png", ".svg"):
        raise typer.BadParameter("the chart file must end in .png or .svg", param_hint="--output")
    from . import charts

    ev, scope = inp.load(), inp.scope
    frame = {
        "coverage": lambda: coverage(ev, by=by.value, **scope),
        "versions": lambda: by_version(ev, **scope),
        "ciphers": lambda: by_cipher(ev, **scope),
        "verify": lambda: by_verify(ev, **scope),
        "failures": lambda: inp.outside(failures(ev, internal=scope["internal"])),
    }[what.value]()
    fig, ax = charts.new_figure()
    getattr(charts, "coverage_trend" if what is ChartKind.coverage else what.value)(frame, ax=ax)
    try:
        charts.save(fig, output)
    except OSError as e:
        raise InputError(f"cannot write {output}: {e.strerror or e}") from None
    inp.note(f"wrote {output}")


def _export_format(output: Path, fmt: ExportFormat | None) -> ExportFormat:
    """The format the file's suffix names; ``--format`` must agree with it (both are usage errors)."""
    by_suffix = {f".{f.value}": f for f in ExportFormat}.get(output.suffix.lower())
    if fmt is None and by_suffix is None:
        raise typer.BadParameter(
            "name a .csv, .json or .parquet file, or give --format", param_hint="--output"
        )
    if fmt is not None and by_suffix is not None and fmt is not by_suffix:
        raise typer.BadParameter(f"{output.name} is not a {fmt.value} file", param_hint="--format")
    return fmt or by_suffix


@command(scope=("internal",))
def export(
    inp: Input,
    table: Annotated[TableName, typer.Option("--table", "-t", help="Which frame.")],
    output: Output,
    fmt: Annotated[
        ExportFormat | None,
        typer.Option("--format", "-f", help="File format (default: from the file's suffix)."),
    ] = None,
) -> None:
    """Write one frame (events or a linked table) to CSV, JSON or Parquet, with every row and column."""
    fmt = _export_format(output, fmt)
    ev, internal_hops = inp.load(), tuple(inp.internal)
    build = {
        "events": lambda: ev,
        "sessions": sessions,
        "receipts": receipts,
        "deliveries": deliveries,
        "failures": failures,
    }[table.value]
    df = ev if table is TableName.events else build(ev, internal=internal_hops)
    if fmt is ExportFormat.parquet:
        try:
            report.to_parquet(df, output)
        except OSError as e:
            raise InputError(f"cannot write {output}: {e.strerror or e}") from None
    else:
        _write(output, report.render(df, fmt.value))
    inp.note(f"wrote {len(df)} rows to {output}")


# -- the console script -----------------------------------------------------------------------------


def run() -> None:
    """The ``tlslog`` console script and ``python -m tlslog``: `app`, then a quick exit.

    Once the output is flushed and the background work done (the cache's writes), the process ends without
    tearing the interpreter down: freeing every module and object takes 0.1 s, a fifth of a report
    served from the cache, and the system takes the memory back at once anyway.
    """
    gc.freeze()  # the modules' objects: collections need not go through them again
    try:
        app()
        code: object = 0
    except SystemExit as e:
        code = e.code
    if not isinstance(code, int):  # as the interpreter does: None is success, any other value a message
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    for thread in threading.enumerate():  # what the interpreter waits for before it exits
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe (`| head`): nothing to tell
            stream.flush()
    os._exit(code)
