"""The tables the commands show: summary, coverage totals, peers, ciphers, weak crypto, failures, trace.

Each is a frame (or, for the summary, a dict of frames) built from the public API; `tlslog.report`
renders them.
"""

import json
from collections.abc import Iterable

import numpy as np
import pandas as pd

from .failures import failures
from .linking import deliveries, link, receipts, sessions, spelled
from .metrics import by_cipher, by_peer, by_version, coverage
from .report import Format, clean, md_escape, render, to_json

# -- views shared by the commands -------------------------------------------------------------------


_DIRECTION_NAMES = {"server": "inbound", "client": "outbound"}


def _inout(df: pd.DataFrame) -> pd.DataFrame:
    """Linked tables say server/client (our role); the views say inbound/outbound, like the metrics."""
    col = df["direction"]
    if isinstance(col.dtype, pd.CategoricalDtype):  # rename the few categories, then spread them by code
        names = [_DIRECTION_NAMES.get(c, c) for c in col.cat.categories.astype("str")]
        codes = np.asarray(col.cat.codes, dtype=np.int64)
        return df.assign(direction=pd.array(names, dtype="str").take(codes, allow_fill=True))
    return df.assign(direction=col.astype("str").replace(_DIRECTION_NAMES))


def without_internal(df: pd.DataFrame, include_internal: bool) -> pd.DataFrame:
    return df if include_internal else df[~df["internal"].fillna(False).to_numpy(dtype=bool)]


def scope_kwargs(include_internal: bool, internal: Iterable[str]) -> dict:
    return {"include_internal": include_internal, "internal": tuple(internal)}


def coverage_totals(
    events: pd.DataFrame, *, include_internal: bool = False, internal: Iterable[str] = ()
) -> pd.DataFrame:
    """Coverage over the whole frame, one row per direction: ``direction``, ``total``, ``encrypted``,
    ``encrypted_share`` (of total), ``verified``, ``verified_share`` (of encrypted)."""
    cov = coverage(events, by="month", direction="both", **scope_kwargs(include_internal, internal))
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
    peers = by_peer(events, by=by, direction=direction, **scope_kwargs(include_internal, internal))
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
    s = without_internal(sessions(events, internal=tuple(internal)), include_internal)
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
    """Peers still negotiating weak crypto: direction, peer, version, cipher, reason, sessions, last seen.

    ``sess``: the sessions to read (columns as `sessions`) instead of those of ``events``.
    """
    s = sess if sess is not None else _session_parts(events, include_internal, internal)[1]
    s = _inout(s[s["weak"].fillna(False).astype(bool)])
    keys = ["direction", "peer", "version", "cipher", "weak_reason"]
    out = (
        s.groupby(keys, observed=True, dropna=False)
        .agg(sessions=("session_id", "size"), last_seen=("start", "max"))
        .reset_index()
    )
    return out.sort_values("sessions", ascending=False, kind="stable").reset_index(drop=True)


_WEAK_COLUMNS = ["direction", "peer", "version", "cipher", "weak", "weak_reason", "session_id", "start"]


def _session_parts(
    events: pd.DataFrame, include_internal: bool, internal: Iterable[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sessions in scope, as a few coded columns (``direction``, ``outcome``, ``weak``, ``internal``),
    and the weak ones with the columns `weak_table` reads: text is spelled for the weak rows only.

    Rows are in link order, not time order: what is made of them does not depend on it.
    """
    linked = link(events, internal=tuple(internal))
    s = spelled(linked, "sessions", events, ["direction", "outcome", "weak", "internal"])
    keep = np.ones(len(s), dtype=bool)
    if not include_internal:
        keep = ~s["internal"].fillna(False).to_numpy(dtype=bool)
    weak = np.flatnonzero(keep & s["weak"].fillna(False).to_numpy(dtype=bool))
    return s[keep], spelled(linked, "sessions", events, _WEAK_COLUMNS, at=weak)


# -- summary ----------------------------------------------------------------------------------------


def summary(
    events: pd.DataFrame, *, include_internal: bool = False, internal: Iterable[str] = (), top: int = 5
) -> dict:
    """The numbers of ``tlslog summary``: a dict of scalars and small frames.

    Keys: ``first``, ``last``, ``lines``, ``skipped``, ``sources``, ``sessions``, ``coverage``
    (`coverage_totals`), ``versions``, ``ciphers``, ``failing_peers``, ``weak``.
    """
    scope = scope_kwargs(include_internal, internal)
    stats = events.attrs.get("stats", {})
    sess, weak = _session_parts(events, include_internal, internal)
    # counted by the coded direction, then renamed and put in the order of the names
    counts = sess.groupby(["direction", "outcome"], observed=True).size().rename("sessions").reset_index()
    counts = _inout(counts).sort_values("direction", kind="stable", ignore_index=True)
    fails = _inout(without_internal(failures(events, internal=tuple(internal)), include_internal))
    ciphers = by_cipher(events, **scope).sort_values(
        ["direction", "count"], ascending=[True, False], kind="stable"
    )
    failing = (
        fails.groupby(["peer", "direction"], observed=True)
        .agg(failures=("cause", "size"), last_seen=("timestamp", "max"))
        .reset_index()
    )
    causes: dict[
        tuple, set[str]
    ] = {}  # the distinct causes of each peer and direction, from the few combinations
    for key in fails[["peer", "direction", "cause"]].drop_duplicates().itertuples(index=False):
        causes.setdefault(key[:2], set()).add(str(key[2]))
    joined = [", ".join(sorted(causes[k])) for k in zip(failing["peer"], failing["direction"], strict=True)]
    # as pandas' groupby-agg did: a column of single causes keeps the cause dtype, one with lists is str
    dtype = fails["cause"].dtype
    single = isinstance(dtype, pd.CategoricalDtype) and all(j in dtype.categories for j in joined)
    failing = failing.assign(causes=pd.Series(joined, index=failing.index, dtype=dtype if single else "str"))[
        ["peer", "direction", "failures", "causes", "last_seen"]
    ].sort_values("failures", ascending=False, kind="stable")
    return {
        "first": events["timestamp"].min() if len(events) else None,
        "last": events["timestamp"].max() if len(events) else None,
        "lines": stats.get("lines"),
        "skipped": stats.get("issues", len(events.attrs.get("issues", []))),
        "sources": list(stats.get("sources", [])),
        "sessions": counts,
        "coverage": coverage_totals(events, **scope),
        "versions": by_version(events, **scope),
        "ciphers": ciphers.groupby("direction", observed=True).head(top).reset_index(drop=True),
        "failing_peers": failing.head(top).reset_index(drop=True),
        "weak": weak_table(events, sess=weak).head(top),
    }


_SECTIONS = {
    "sessions": "TLS sessions",
    "coverage": "Coverage",
    "versions": "Protocol versions",
    "ciphers": "Top ciphers",
    "failing_peers": "Top failing peers",
    "weak": "Weak crypto still in use",
}


def stamp(ts: object) -> str:
    if ts is None or pd.isna(ts):
        return ""
    t = pd.Timestamp(ts)  # from its fields: strftime refuses years before 1 (an early time shifted to UTC)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def render_summary(s: dict, fmt: Format | str = Format.table) -> str:
    """Render `summary` as one screen of text, Markdown or JSON (CSV has no shape for several tables)."""
    fmt = Format(fmt)
    if fmt is Format.csv:
        raise ValueError("the summary holds several tables; use --format table, markdown or json")
    head = {
        "first": stamp(s["first"]),
        "last": stamp(s["last"]),
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
        f"Lines read: {head['lines'] if head['lines'] is not None else '-'}, parse issues: {head['skipped']}",
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

    def listed(col: pd.Series) -> np.ndarray:
        return np.fromiter((v is not None and q in {x.lower() for x in v} for v in col), bool, len(col))

    in_lists = listed(fails["qids"]) | listed(fails["recipients"])
    f_hit = peer_hit(fails) | pd.Series(in_lists, index=fails.index)

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
