"""Frames to text: aligned tables, Markdown, CSV, JSON, and the summary and weekly report views.

Text that comes from logs is untrusted: Markdown cells are backslash-escaped, HTML is autoescaped by
Jinja2, CSV cells that a spreadsheet would run as a formula get a leading ``'``, and control characters
never reach a terminal. Charts come in as SVG strings (this module does not import matplotlib).

>>> import pandas as pd
>>> print(render(pd.DataFrame({"peer": ["a|b"], "share": [0.5]}), "markdown"))
| peer | share |
|---|---:|
| a\\|b | 50.0% |
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from os import PathLike

import jinja2
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .failures import failures
from .linking import deliveries, receipts, sessions
from .metrics import by_cipher, by_peer, by_version, coverage
from .records import InputError


class Format(StrEnum):
    """Output formats of the tabular commands."""

    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"


class Period(StrEnum):
    """Report periods: the last full Monday-Sunday week, the 7 days before the newest event, or all."""

    last_week = "last-week"
    last_7_days = "last-7-days"
    all = "all"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MD_SPECIAL = re.compile(r"([\\|<>*_`\[\]])")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def clean(text: str) -> str:
    """Make log text safe for one terminal line: control characters (ANSI escapes, newlines) become ``\\xNN``.

    >>> clean("a\\x1b[31mb")
    'a\\\\x1b[31mb'
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def md_escape(text: str) -> str:
    """Backslash-escape the characters that Markdown (and HTML inside it) would interpret.

    >>> md_escape("<b>*x*</b>")
    '\\\\<b\\\\>\\\\*x\\\\*\\\\</b\\\\>'
    """
    return _MD_SPECIAL.sub(r"\\\1", clean(text))


def csv_safe(text: str) -> str:
    """Neutralise a cell a spreadsheet would evaluate (``=``, ``+``, ``-``, ``@``, tab, CR first).

    >>> csv_safe("=1+2"), csv_safe("ok")
    ("'=1+2", 'ok')
    """
    return "'" + text if text.startswith(_FORMULA_START) else text


# -- cells ------------------------------------------------------------------------------------------


def _is_share(name: str) -> bool:
    return name == "share" or name.endswith("_share")


def _join(v: object) -> str:
    return ", ".join(map(str, v)) if isinstance(v, list | tuple) else ""


def _is_list(s: pd.Series) -> bool:
    return (isinstance(s.dtype, pd.ArrowDtype) and "list" in str(s.dtype)) or (
        s.dtype == object and any(isinstance(v, list | tuple) for v in s.head(50))
    )


def _column_text(s: pd.Series) -> list[str]:
    """One column as display strings; missing values become ``""``."""
    missing = s.isna().to_numpy()
    if _is_list(s):
        out = [_join(v) for v in s.tolist()]
    elif pd.api.types.is_datetime64_any_dtype(s):
        dates_only = bool((s.dropna() == s.dropna().dt.normalize()).all())
        out = s.dt.strftime("%Y-%m-%d" if dates_only else "%Y-%m-%d %H:%M:%S").tolist()
    elif pd.api.types.is_bool_dtype(s):
        out = ["yes" if v is True else "no" for v in s.astype(object).tolist()]
    elif pd.api.types.is_float_dtype(s):
        fmt = "{:.1%}" if _is_share(str(s.name)) else "{:,.2f}"
        out = [fmt.format(v) if v == v else "" for v in s.tolist()]
    else:
        out = [str(v) for v in s.astype(object).tolist()]
    return ["" if m else clean(v) for v, m in zip(out, missing, strict=True)]


def cells(df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Column names and rows of display strings (shares as percentages, dates ISO, lists joined)."""
    cols = [_column_text(df[c]) for c in df.columns]
    return [clean(str(c)) for c in df.columns], [list(r) for r in zip(*cols, strict=True)] if cols else []


def numeric_columns(df: pd.DataFrame) -> list[bool]:
    return [
        pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns
    ]


# -- render -----------------------------------------------------------------------------------------


def text_table(df: pd.DataFrame) -> str:
    """Plain aligned text (numbers right-aligned), for pipes and files."""
    names, rows = cells(df)
    widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]
    right = numeric_columns(df)

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(names), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-style Markdown table, every cell escaped."""
    names, rows = cells(df)
    right = numeric_columns(df)
    out = [
        "| " + " | ".join(md_escape(n) for n in names) + " |",
        "|" + "|".join("---:" if r else "---" for r in right) + "|",
    ]
    out += ["| " + " | ".join(md_escape(v) for v in row) + " |" for row in rows]
    return "\n".join(out)


def _textual(df: pd.DataFrame) -> pd.DataFrame:
    """Lists joined to text, so CSV and spreadsheet-safety see one string per cell."""
    lists = {
        c: pd.Series(
            [_join(v) if isinstance(v, list | tuple) else None for v in df[c].tolist()],
            index=df.index,
            dtype="str",
        )
        for c in df.columns
        if _is_list(df[c])
    }
    return df.assign(**lists) if lists else df


def to_csv(df: pd.DataFrame) -> str:
    """CSV with a header; text cells that a spreadsheet would evaluate are prefixed with ``'``."""
    df = _textual(df)
    text_cols = [
        c
        for c in df.columns
        if not pd.api.types.is_numeric_dtype(df[c])
        and not pd.api.types.is_datetime64_any_dtype(df[c])
        and not pd.api.types.is_bool_dtype(df[c])
    ]
    safe = {c: df[c].astype("str").map(csv_safe, na_action="ignore") for c in text_cols}
    return df.assign(**safe).to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S")


def to_json(df: pd.DataFrame) -> str:
    """JSON records: ISO timestamps, missing values as ``null``, lists as arrays."""
    return df.to_json(orient="records", date_format="iso", date_unit="s", force_ascii=False)


def to_parquet(df: pd.DataFrame, path: str | PathLike[str]) -> None:
    """Write Parquet that pandas reads back with the same dtypes.

    pandas records list columns as ``list<item: string>[pyarrow]`` in its metadata and cannot read that
    name back; those columns are recorded as ``object`` (they come back as arrays of str).
    """
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = json.loads(table.schema.metadata[b"pandas"])
    for col in meta["columns"]:
        if str(col.get("numpy_type", "")).startswith("list<"):
            col["numpy_type"] = "object"
    table = table.replace_schema_metadata({**table.schema.metadata, b"pandas": json.dumps(meta).encode()})
    pq.write_table(table, path)


def render(df: pd.DataFrame, fmt: Format | str = Format.table) -> str:
    """Render a frame as aligned text, Markdown, CSV or JSON.

    >>> import pandas as pd
    >>> print(render(pd.DataFrame({"n": [1, 22]}), "csv"))
    n
    1
    22
    <BLANKLINE>
    """
    fmt = Format(fmt)
    if fmt is Format.json:
        return to_json(df)
    if fmt is Format.csv:
        return to_csv(df)
    return markdown_table(df) if fmt is Format.markdown else text_table(df)


def drop_empty(df: pd.DataFrame) -> pd.DataFrame:
    """Drop the columns that hold no value at all (the events frame is wide and sparse)."""
    return df.loc[:, df.notna().any().to_numpy()] if len(df) else df


# -- views shared by the commands -------------------------------------------------------------------


_DIRECTION_NAMES = {"server": "inbound", "client": "outbound"}


def _inout(df: pd.DataFrame) -> pd.DataFrame:
    """Linked tables say server/client (our role); the views say inbound/outbound, like the metrics."""
    return df.assign(direction=df["direction"].astype("str").replace(_DIRECTION_NAMES))


def _external(df: pd.DataFrame, include_internal: bool) -> pd.DataFrame:
    return df if include_internal else df[~df["internal"].fillna(False).astype(bool)]


def _scope(include_internal: bool, internal: Iterable[str]) -> dict:
    return {"include_internal": include_internal, "internal": tuple(internal)}


def coverage_totals(
    events: pd.DataFrame, *, include_internal: bool = False, internal: Iterable[str] = ()
) -> pd.DataFrame:
    """Coverage over the whole frame, one row per direction: ``direction``, ``total``, ``encrypted``,
    ``encrypted_share`` (of total), ``verified``, ``verified_share`` (of encrypted)."""
    cov = coverage(events, by="month", direction="both", **_scope(include_internal, internal))
    t = cov.groupby("direction", observed=True)[["total", "encrypted", "verified"]].sum().reset_index()
    return t.assign(
        encrypted_share=t["encrypted"] / t["total"].where(t["total"] > 0),
        verified_share=t["verified"] / t["encrypted"].where(t["encrypted"] > 0),
    )[["direction", "total", "encrypted", "encrypted_share", "verified", "verified_share"]]


def failure_groups(fails: pd.DataFrame, *, peer: str | None = None, cause: str | None = None) -> pd.DataFrame:
    """Failures by cause, direction and peer: count, messages, recipients, first/last seen, explanation.

    ``peer`` matches the peer or its domain (case-insensitive); ``cause`` a cause identifier.
    """
    if peer:
        p = peer.lower().rstrip(".")
        fails = fails[(fails["peer"].str.lower() == p) | (fails["peer_domain"].str.lower() == p)]
    if cause:
        fails = fails[fails["cause"].astype("str") == cause]
    fails = _inout(fails)
    keys = ["cause", "direction", "peer"]
    grouped = fails.groupby(keys, observed=True, dropna=False)
    out = grouped.agg(
        first_seen=("timestamp", "min"),
        last_seen=("timestamp", "max"),
        count=("timestamp", "size"),
        explanation=("explanation", "first"),
    )
    outcome = grouped["outcome"].agg(lambda s: ", ".join(sorted(s.dropna().astype(str).unique())))
    qids = fails[[*keys, "qids"]].explode("qids").groupby(keys, observed=True, dropna=False)["qids"].nunique()
    rcpts = (
        fails[[*keys, "recipients"]]
        .explode("recipients")
        .groupby(keys, observed=True, dropna=False)["recipients"]
        .nunique()
    )
    out = out.assign(outcome=outcome, messages=qids, recipients=rcpts).reset_index()
    cols = [
        "cause",
        "direction",
        "peer",
        "count",
        "messages",
        "recipients",
        "first_seen",
        "last_seen",
        "outcome",
        "explanation",
    ]
    return out.sort_values(["count", "last_seen"], ascending=False, kind="stable")[cols].reset_index(
        drop=True
    )


def peer_table(
    events: pd.DataFrame,
    *,
    by: str = "domain",
    direction: str = "both",
    sort: str = "volume",
    top: int | None = 20,
    include_internal: bool = False,
    internal: Iterable[str] = (),
) -> pd.DataFrame:
    """`by_peer` sorted by ``volume`` (total), ``failures`` or ``unencrypted`` (total - encrypted), top N."""
    peers = by_peer(events, by=by, direction=direction, **_scope(include_internal, internal))
    peers = peers.assign(unencrypted=peers["total"] - peers["encrypted"])
    key = {"volume": "total", "failures": "failures", "unencrypted": "unencrypted"}[sort]
    peers = peers.sort_values([key, "total", "peer"], ascending=[False, False, True], kind="stable")
    return (peers.head(top) if top else peers).reset_index(drop=True)


def cipher_table(
    events: pd.DataFrame, *, include_internal: bool = False, internal: Iterable[str] = ()
) -> pd.DataFrame:
    """Negotiated TLS sessions by direction, protocol, cipher, bits and verify result, weak ones flagged.

    ``refused`` counts the sessions a TLS policy then turned down (too weak, verification required).
    """
    s = _external(sessions(events, internal=tuple(internal)), include_internal)
    s = _inout(s[s["cipher"].notna()])
    s = s.assign(refused=s["outcome"].astype("str") != "ok")
    keys = ["direction", "version", "cipher", "cipher_bits", "verify"]
    out = (
        s.groupby(keys, observed=True, dropna=False)
        .agg(
            sessions=("session_id", "size"),
            refused=("refused", "sum"),
            weak=("weak", "any"),
            weak_reason=("weak_reason", "first"),
        )
        .reset_index()
    )
    return out.sort_values(["direction", "sessions"], ascending=[True, False], kind="stable").reset_index(
        drop=True
    )


def weak_table(
    events: pd.DataFrame,
    *,
    include_internal: bool = False,
    internal: Iterable[str] = (),
    sess: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Peers still negotiating weak crypto: direction, peer, version, cipher, reason, sessions, last seen."""
    s = sess if sess is not None else _external(sessions(events, internal=tuple(internal)), include_internal)
    s = _inout(s[s["weak"].fillna(False).astype(bool)])
    keys = ["direction", "peer", "version", "cipher", "weak_reason"]
    out = (
        s.groupby(keys, observed=True, dropna=False)
        .agg(sessions=("session_id", "size"), last_seen=("start", "max"))
        .reset_index()
    )
    return out.sort_values("sessions", ascending=False, kind="stable").reset_index(drop=True)


# -- summary ----------------------------------------------------------------------------------------


# what the summary's session figures and `weak_table` read: a copy of the other columns would be wasted
_SUMMARY_SESSION_COLUMNS = [
    "direction",
    "outcome",
    "peer",
    "version",
    "cipher",
    "weak",
    "weak_reason",
    "session_id",
    "start",
    "internal",
]


def summary(
    events: pd.DataFrame, *, include_internal: bool = False, internal: Iterable[str] = (), top: int = 5
) -> dict:
    """The numbers of ``tlslog summary``: a dict of scalars and small frames.

    Keys: ``first``, ``last``, ``lines``, ``skipped``, ``sources``, ``sessions``, ``coverage``
    (`coverage_totals`), ``versions``, ``ciphers``, ``failing_peers``, ``weak``.
    """
    scope = _scope(include_internal, internal)
    stats = events.attrs.get("stats", {})
    sess = sessions(events, internal=tuple(internal))[_SUMMARY_SESSION_COLUMNS]
    sess = _inout(_external(sess, include_internal))
    fails = _inout(_external(failures(events, internal=tuple(internal)), include_internal))
    ciphers = by_cipher(events, **scope).sort_values(
        ["direction", "count"], ascending=[True, False], kind="stable"
    )
    failing = (
        fails.groupby(["peer", "direction"], observed=True)
        .agg(
            failures=("cause", "size"),
            causes=("cause", lambda c: ", ".join(sorted(c.astype(str).unique()))),
            last_seen=("timestamp", "max"),
        )
        .reset_index()
        .sort_values("failures", ascending=False, kind="stable")
    )
    return {
        "first": events["timestamp"].min() if len(events) else None,
        "last": events["timestamp"].max() if len(events) else None,
        "lines": stats.get("lines"),
        "skipped": stats.get("issues", len(events.attrs.get("issues", []))),
        "sources": list(stats.get("sources", [])),
        "sessions": sess.groupby(["direction", "outcome"], observed=True)
        .size()
        .rename("sessions")
        .reset_index(),
        "coverage": coverage_totals(events, **scope),
        "versions": by_version(events, **scope),
        "ciphers": ciphers.groupby("direction", observed=True).head(top).reset_index(drop=True),
        "failing_peers": failing.head(top).reset_index(drop=True),
        "weak": weak_table(events, sess=sess).head(top),
    }


_SECTIONS = {
    "sessions": "TLS sessions",
    "coverage": "Coverage",
    "versions": "Protocol versions",
    "ciphers": "Top ciphers",
    "failing_peers": "Top failing peers",
    "weak": "Weak crypto still in use",
}


def _stamp(ts: object) -> str:
    return "" if ts is None or pd.isna(ts) else pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def render_summary(s: dict, fmt: Format | str = Format.table) -> str:
    """Render `summary` as one screen of text, Markdown or JSON (CSV has no shape for several tables)."""
    fmt = Format(fmt)
    if fmt is Format.csv:
        raise ValueError("the summary holds several tables; use --format table, markdown or json")
    head = {
        "first": _stamp(s["first"]),
        "last": _stamp(s["last"]),
        "lines": s["lines"],
        "skipped": s["skipped"],
        "sources": s["sources"],
    }
    if fmt is Format.json:
        body = ", ".join(f'"{k}": {to_json(s[k])}' for k in _SECTIONS)
        return "{" + json.dumps(head, ensure_ascii=False)[1:-1] + ", " + body + "}"
    md = fmt is Format.markdown
    esc = md_escape if md else clean
    lines = [
        ("# tlslog summary" if md else "tlslog summary"),
        "",
        f"Period: {head['first'] or '-'} .. {head['last'] or '-'}",
        f"Lines read: {head['lines'] if head['lines'] is not None else '-'}, skipped (parse issues): "
        f"{head['skipped']}",
        f"Sources: {esc(', '.join(map(str, head['sources']))) or '-'}",
    ]
    for key, title in _SECTIONS.items():
        table = s[key]
        lines += [
            "",
            f"## {title}" if md else f"{title}:",
            render(table, fmt) if len(table) else "(none)",
        ]
    return "\n".join(lines) + "\n"


# -- trace ------------------------------------------------------------------------------------------


def trace(events: pd.DataFrame, query: str, *, internal: Iterable[str] = ()) -> pd.DataFrame:
    """Everything about one peer (host, domain or IP), address or queue id, in time order.

    Columns: ``time``, ``what`` (session, receipt, delivery, failure), ``direction``, ``peer``, ``qid``,
    ``address``, ``tls`` (version cipher bits verify of the linked session), ``result``.
    """
    q = query.strip().lower().rstrip(".")
    internal = tuple(internal)
    sess, rec, dlv = (
        _inout(sessions(events, internal=internal)),
        receipts(events, internal=internal),
        deliveries(events, internal=internal),
    )
    fails = _inout(failures(events, internal=internal))

    def peer_hit(df: pd.DataFrame) -> pd.Series:
        cols = [c for c in ("peer", "peer_domain", "relay_host", "relay_ip") if c in df.columns]
        return pd.concat([df[c].astype("str").str.lower() == q for c in cols], axis=1).any(axis=1)

    r_hit = peer_hit(rec) | (rec["qid"].str.lower() == q) | (rec["sender"].str.lower().str.strip("<>") == q)
    d_hit = (
        peer_hit(dlv) | (dlv["qid"].str.lower() == q) | (dlv["recipient"].str.lower().str.strip("<>") == q)
    )
    linked = set(rec.loc[r_hit, "session_id"].dropna()) | set(dlv.loc[d_hit, "session_id"].dropna())
    s_hit = peer_hit(sess) | sess["session_id"].isin(linked)
    in_lists = fails[["qids", "recipients"]].map(lambda v: v is not None and q in {x.lower() for x in v})
    f_hit = peer_hit(fails) | in_lists.any(axis=1)

    def tls(df: pd.DataFrame) -> pd.Series:
        parts = [
            df["version"].astype("str"),
            df["cipher"].astype("str"),
            df["cipher_bits"].astype("str"),
            "verify=" + df["verify"].astype("str"),
        ]
        text = parts[0].str.cat(parts[1:], sep=" ", na_rep="-")
        return text.where(df["version"].notna() | df["cipher"].notna())

    frames = [
        pd.DataFrame(
            {
                "time": sess.loc[s_hit, "start"],
                "what": "session",
                "direction": sess.loc[s_hit, "direction"],
                "peer": sess.loc[s_hit, "peer"],
                "tls": tls(sess[s_hit]),
                "result": sess.loc[s_hit, "outcome"]
                .astype("str")
                .str.cat(sess.loc[s_hit, "cause"].astype("str"), sep=": ", na_rep="")
                .str.rstrip(": "),
            }
        ),
        pd.DataFrame(
            {
                "time": rec.loc[r_hit, "timestamp"],
                "what": "receipt",
                "direction": "inbound",
                "peer": rec.loc[r_hit, "peer"],
                "qid": rec.loc[r_hit, "qid"],
                "address": rec.loc[r_hit, "sender"],
                "tls": tls(rec[r_hit]),
                "result": rec.loc[r_hit, "encrypted"].map({True: "encrypted", False: "clear"}),
            }
        ),
        pd.DataFrame(
            {
                "time": dlv.loc[d_hit, "timestamp"],
                "what": "delivery",
                "direction": "outbound",
                "peer": dlv.loc[d_hit, "peer"],
                "qid": dlv.loc[d_hit, "qid"],
                "address": dlv.loc[d_hit, "recipient"],
                "tls": tls(dlv[d_hit]),
                "result": dlv.loc[d_hit, "status"]
                .astype("str")
                .str.cat(dlv.loc[d_hit, "stat_text"].astype("str"), sep=" ", na_rep=""),
            }
        ),
        pd.DataFrame(
            {
                "time": fails.loc[f_hit, "timestamp"],
                "what": "failure",
                "direction": fails.loc[f_hit, "direction"],
                "peer": fails.loc[f_hit, "peer"],
                "qid": fails.loc[f_hit, "qids"].map(", ".join, na_action="ignore"),
                "result": fails.loc[f_hit, "cause"]
                .astype("str")
                .str.cat(fails.loc[f_hit, "reject"].astype("str"), sep=": ", na_rep=""),
            }
        ),
    ]
    cols = ["time", "what", "direction", "peer", "qid", "address", "tls", "result"]
    frames = [f.reindex(columns=cols).astype({c: "str" for c in cols[1:]}) for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in cols}).assign(
            time=pd.Series(dtype="datetime64[us]")
        )
    return pd.concat(frames, ignore_index=True).sort_values("time", kind="stable").reset_index(drop=True)


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
    return events[(events["timestamp"] >= start) & (events["timestamp"] < end)]


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


def _headline_numbers(events: pd.DataFrame, scope: dict) -> dict[str, float]:
    if events.empty:
        return {}
    cov = coverage_totals(events, **scope).set_index("direction")
    fails = _external(failures(events, internal=scope["internal"]), scope["include_internal"])
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
    scope = _scope(include_internal, internal)
    win = window(events, period)
    cur = _between(events, win.start, win.end)
    prev = _between(events, win.prev_start, win.prev_end) if win.prev_start is not None else None
    span = win.end - win.start
    by = "day" if span <= pd.Timedelta(days=31) else "week"
    fails = _external(failures(cur, internal=tuple(internal)), include_internal)
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
    loader = jinja2.PackageLoader("tlslog", "templates")
    if fmt == "html":
        return jinja2.Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return jinja2.Environment(
        loader=loader, autoescape=False, finalize=_md_finalize, trim_blocks=True, lstrip_blocks=True
    )


def _svg_src(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")


def weekly_report(
    events: pd.DataFrame,
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
    embeds them as images, Markdown leaves them out. Pass ``data`` from `weekly_data` to reuse its figures.

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
            start=_stamp(win.start)[:10],
            end=_stamp(last_day)[:10],
            previous=(
                f"{_stamp(win.prev_start)[:10]} .. {_stamp(win.prev_end - pd.Timedelta(microseconds=1))[:10]}"
                if win.prev_start is not None
                else None
            ),
            tables=shaped,
            charts=images,
            empty={k: v.empty for k, v in tables.items()},
        )
    )
