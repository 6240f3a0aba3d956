"""Linked tables: TLS sessions, receipts (inbound messages) and deliveries (outbound attempts).

Most TLS lines carry no queue id, so they are tied to ``from=`` / ``to=`` lines through the process that
wrote them (reference section 7.3). All rows are put in one order: by host, pid and file position. A
*segment* is a run of one process's lines with no time gap above ``gap`` (pids are reused over a week).
Within a segment the latest TLS line before a ``from=`` (inbound) or before a ``to=`` of the same relay
(outbound) decides its encryption; ``pd.merge_asof`` does that lookup for all rows at once.

>>> import tlslog
>>> events = tlslog.read_log("sample_logs/", year=2026)            # doctest: +SKIP
>>> tlslog.deliveries(events).groupby("peer_domain")["encrypted"].mean()  # doctest: +SKIP
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np
import pandas as pd

from .causes import CAUSES, SESSION_VERIFY, classify, text_cause
from .crypto import weakness
from .peers import InternalHosts, peer_domain

#: Mailers whose ``to=`` lines are outbound SMTP delivery attempts.
SMTP_MAILERS = frozenset({"esmtp", "smtp", "smtp8", "dsmtp", "relay"})
#: ``proto=`` values that mark a TLS-received message (8.15.1+).
TLS_PROTOS = frozenset({"ESMTPS", "ESMTPSA", "UTF8SMTPS", "UTF8SMTPSA"})
VERIFIED = frozenset({"OK", "TRUSTED"})

CAUSE_DTYPE = pd.CategoricalDtype(CAUSES)
STATUS_DTYPE = pd.CategoricalDtype(["sent", "deferred", "bounced", "queued"])
OUTCOME_DTYPE = pd.CategoricalDtype(["ok", "failed"])
DIRECTION_DTYPE = pd.CategoricalDtype(["server", "client"])

# A stat text with an SMTP reply code means a server answered; these texts mean none was reached.
_SMTP_CODE = r"(?:^|[\s(:])[2-5]\d\d[ -]"
_NOT_REACHED = (
    r"Connection refused|Connection timed out|Name server timeout|Host unknown|host not found|"
    r"No route to host|Network is unreachable|Host is down|No such host|Temporary failure in name resolution"
)

SESSION_COLUMNS = [
    "session_id",
    "direction",
    "host",
    "program",
    "pid",
    "start",
    "relay_host",
    "relay_ip",
    "peer",
    "peer_domain",
    "version",
    "verify",
    "verified",
    "cipher",
    "alg_bits",
    "cipher_bits",
    "cert_subject",
    "cert_issuer",
    "verifymsg",
    "outcome",
    "cause",
    "error",
    "weak",
    "weak_reason",
    "internal",
    "messages",
]
RECEIPT_COLUMNS = [
    "qid",
    "timestamp",
    "host",
    "pid",
    "sender",
    "size",
    "nrcpts",
    "msgid",
    "proto",
    "daemon",
    "relay_host",
    "relay_ip",
    "peer",
    "peer_domain",
    "encrypted",
    "session_id",
    "version",
    "verify",
    "verified",
    "cipher",
    "cipher_bits",
    "weak",
    "weak_reason",
    "internal",
]
DELIVERY_COLUMNS = [
    "qid",
    "timestamp",
    "host",
    "pid",
    "recipient",
    "recipient_domain",
    "mailer",
    "relay_host",
    "relay_ip",
    "peer",
    "peer_domain",
    "status",
    "stat",
    "stat_text",
    "dsn",
    "reply",
    "encrypted",
    "session_id",
    "version",
    "verify",
    "verified",
    "cipher",
    "cipher_bits",
    "weak",
    "weak_reason",
    "tls_failure",
    "internal",
]


class Linked(NamedTuple):
    """The three linked tables plus the private columns `failures` needs (names starting with ``_``).

    ``_line`` is the events row of a receipt/delivery/session, ``_marker`` the events row of the TLS line
    that decided a delivery (``STARTTLS=client``, ``connect failed``, ``ruleset=tls_server``/``try_tls``),
    ``_rcpt`` the ``ruleset=tls_rcpt`` row that deferred one recipient, ``_src`` where ``tls_failure``
    came from (``rcpt``, ``marker``, ``text``). ``markers`` has one row per client-side marker:
    ``row`` (events row), ``session_id`` (-1 when none) and ``encrypted``.
    """

    sessions: pd.DataFrame
    receipts: pd.DataFrame
    deliveries: pd.DataFrame
    markers: pd.DataFrame


# ---------------------------------------------------------------------------------------------- helpers


def _text(col: pd.Series) -> pd.Series:
    """Any column as a pandas ``str`` Series (categories and NaN preserved as missing)."""
    return col.astype("str")


def _codes(*cols: pd.Series) -> np.ndarray:
    """Integer codes of the joint values of several columns (-1 where the first column is missing)."""
    key = _text(cols[0])
    for col in cols[1:]:
        key = key + "\x1f" + _text(col).fillna("")
    return pd.factorize(key, use_na_sentinel=True)[0].astype(np.int64)


def _map_unique(fn: Callable[..., object], *cols: pd.Series) -> np.ndarray:
    """``fn(*values)`` for each row, calling ``fn`` once per distinct combination of values."""
    values = [c.astype(object).where(c.notna(), None).to_numpy(dtype=object) for c in cols]
    codes = _codes(*(pd.Series(v, dtype=object).astype("str").fillna("\x00") for v in values))
    out = np.empty(len(codes), dtype=object)
    if len(codes) == 0:
        return out
    uniq, first = np.unique(codes, return_index=True)
    results = np.empty(len(uniq), dtype=object)
    for i, row in enumerate(first):
        results[i] = fn(*(v[row] for v in values))
    return results[np.searchsorted(uniq, codes)]


def _asof(
    left_on: np.ndarray,
    left_by: list[np.ndarray],
    right_on: np.ndarray,
    right_by: list[np.ndarray],
    *,
    direction: str = "backward",
    allow_exact: bool = True,
) -> np.ndarray:
    """For each left row, the position in the right arrays of the nearest row with equal keys (or -1)."""
    if len(left_on) == 0:
        return np.empty(0, dtype=np.int64)
    if len(right_on) == 0:
        return np.full(len(left_on), -1, dtype=np.int64)
    names = [f"b{i}" for i in range(len(left_by))]
    left = pd.DataFrame(
        {"o": left_on, "i": np.arange(len(left_on)), **dict(zip(names, left_by, strict=True))}
    )
    right = pd.DataFrame(
        {"o": right_on, "r": np.arange(len(right_on)), **dict(zip(names, right_by, strict=True))}
    )
    merged = pd.merge_asof(
        left.sort_values("o", kind="stable"),
        right.sort_values("o", kind="stable"),
        on="o",
        by=names,
        direction=direction,
        allow_exact_matches=allow_exact,
    )
    out = np.full(len(left_on), -1, dtype=np.int64)
    out[merged["i"].to_numpy()] = merged["r"].fillna(-1).astype(np.int64).to_numpy()
    return out


def _take(values: np.ndarray, idx: np.ndarray, fill: object) -> np.ndarray:
    """``values[idx]`` with ``fill`` where ``idx`` is -1 (also when ``values`` is empty)."""
    out = np.full(len(idx), fill, dtype=values.dtype if fill is not None else object)
    ok = idx >= 0
    out[ok] = values[idx[ok]]
    return out


def _segments(ev: pd.DataFrame, gap: str | pd.Timedelta) -> np.ndarray:
    """Segment id per row: one process (host, pid) without a time gap above ``gap``."""
    n = len(ev)
    host = _codes(ev["host"])
    pid = ev["pid"].astype("Int64").fillna(-1).to_numpy(dtype=np.int64)
    order = np.arange(n)
    idx = np.lexsort((order, pid, host))
    ts = ev["timestamp"].to_numpy(dtype="datetime64[us]").view(np.int64)[idx]
    valid = ts != np.iinfo(np.int64).min
    limit = pd.Timedelta(gap).value // 1000
    new = np.ones(n, dtype=bool)
    if n > 1:
        same = (host[idx][1:] == host[idx][:-1]) & (pid[idx][1:] == pid[idx][:-1])
        gapped = valid[1:] & valid[:-1] & ((ts[1:] - ts[:-1]) > limit)
        new[1:] = ~same | gapped
    seg = np.empty(n, dtype=np.int64)
    seg[idx] = np.cumsum(new)
    return seg


def _relay_key(ev: pd.DataFrame) -> pd.Series:
    """The relay a line names, normalised: host name without trailing dot, else the literal address."""
    host = _text(ev["relay_host"]).str.lower().str.strip().str.rstrip(".").str.strip("[]")
    ip = _text(ev["relay_ip"]).str.lower().str.strip("[]").str.removeprefix("ipv6:")
    return host.where(host.notna() & (host != ""), ip)


def _peer_columns(frame: pd.DataFrame, internal: InternalHosts) -> pd.DataFrame:
    """``peer``, ``peer_domain`` and ``internal`` from ``relay_host`` / ``relay_ip``."""
    host, ip = _text(frame["relay_host"]), _text(frame["relay_ip"])
    return frame.assign(
        peer=host.where(host.notna(), ip),
        peer_domain=pd.Series(_map_unique(peer_domain, host, ip), index=frame.index, dtype="str"),
        internal=pd.Series(_map_unique(internal.is_internal, host, ip), index=frame.index, dtype="boolean"),
    )


def _crypto_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``verified``, ``weak`` and ``weak_reason`` from the session's verify, version, cipher and bits."""
    version, cipher = _text(frame["version"]), _text(frame["cipher"])
    reasons = pd.Series(
        _map_unique(lambda v, c, b: ", ".join(weakness(v, c, b)), version, cipher, frame["cipher_bits"]),
        index=frame.index,
        dtype="str",
    )
    known = version.notna() | cipher.notna()
    verify = _text(frame["verify"])
    return frame.assign(
        verified=pd.Series(verify.isin(VERIFIED), dtype="boolean").where(verify.notna(), pd.NA),
        weak=pd.Series(reasons != "", dtype="boolean").where(known, pd.NA),
        weak_reason=reasons.where(known & (reasons != ""), None),
    )


def _status(stat: pd.Series) -> pd.Series:
    word = _text(stat).str.strip()
    status = np.select(
        [
            word.str.startswith("Sent").fillna(False),
            word.str.startswith("Deferred").fillna(False),
            word.str.lower().eq("queued").fillna(False),
        ],
        ["sent", "deferred", "queued"],
        default="bounced",
    )
    return pd.Series(status, index=stat.index).astype(STATUS_DTYPE)


def _recipient(values: pd.Series) -> pd.Series:
    return _text(values).str.strip().str.strip("<>").str.lower()


# ----------------------------------------------------------------------------------------------- linking


# Every public table and metric links the same events frame again; a report asks for several of them, so the
# last few results are kept per frame object (its identity and shape; a frame that is gone is never matched).
_MEMO: dict[tuple, tuple[weakref.ref, Linked]] = {}
_MEMO_SIZE = 4


def link(events: pd.DataFrame, *, gap: str | pd.Timedelta = "10min", internal: Iterable[str] = ()) -> Linked:
    """Link the lines of an events frame into sessions, receipts and deliveries (with private columns).

    The public `sessions`, `receipts` and `deliveries` return these frames without the ``_`` columns.
    Results are memoised per frame object, so calling several tables and metrics on one frame links once.

    >>> linked = link(tlslog.read_log("sample_logs/"))              # doctest: +SKIP
    >>> linked.deliveries[["qid", "recipient", "encrypted", "tls_failure"]]  # doctest: +SKIP
    """
    internal = InternalHosts.coerce(internal)
    internal_key = (internal.names, internal.suffixes, internal.networks)
    key = (id(events), events.shape, tuple(events.columns), str(pd.Timedelta(gap)), internal_key)
    hit = _MEMO.get(key)
    if hit is not None and hit[0]() is events:
        return hit[1]
    linked = _link(events, gap=gap, internal=internal)
    if len(_MEMO) >= _MEMO_SIZE:
        _MEMO.pop(next(iter(_MEMO)))
    _MEMO[key] = (weakref.ref(events), linked)
    return linked


def _link(events: pd.DataFrame, *, gap: str | pd.Timedelta, internal: InternalHosts) -> Linked:
    ev = events.reset_index(drop=True)
    ev.attrs = {}  # pandas deep-copies attrs at every step; the linked tables do not need them
    n = len(ev)
    order = np.arange(n, dtype=np.int64)
    seg = _segments(ev, gap)
    kind = _text(ev["kind"]).fillna("")
    direction = _text(ev["direction"]).fillna("")
    ruleset = _text(ev["ruleset"]).fillna("")
    subkind = _text(ev["subkind"]).fillna("")
    rkey_text = _relay_key(ev)
    rkey = pd.factorize(rkey_text, use_na_sentinel=True)[0].astype(np.int64)

    summary = (kind == "starttls").to_numpy()
    handshake = (
        (kind == "tls_error") & (subkind == "handshake") & direction.isin(["server", "client"])
    ).to_numpy()
    is_session = summary | handshake
    sid = np.where(is_session, np.cumsum(is_session) - 1, -1)
    client = (direction == "client").to_numpy()
    server = (direction == "server").to_numpy()

    # ---- outbound: client markers in one process, keyed by relay
    tls_server = (kind == "tls_reject").to_numpy() & (ruleset == "tls_server").to_numpy()
    try_tls = (ruleset == "try_tls").to_numpy()
    cm = np.flatnonzero((is_session & client) | tls_server | try_tls)
    cm_rkey = rkey[cm].copy()
    cm_sess = sid[cm].copy()
    # neighbours of each marker within its segment (markers are in file order)
    by_seg = np.lexsort((cm, seg[cm]))
    prev = np.full(len(cm), -1)
    same_seg = seg[cm][by_seg][1:] == seg[cm][by_seg][:-1]
    prev[by_seg[1:][same_seg]] = by_seg[:-1][same_seg]
    nxt = np.full(len(cm), -1)
    nxt[by_seg[:-1][same_seg]] = by_seg[1:][same_seg]
    # connect failed has no relay=: it takes the relay of the tls_server line that follows it
    hs_c = handshake[cm]
    follows = hs_c & (nxt >= 0)
    follows[follows] = tls_server[cm[nxt[follows]]]
    cm_rkey[follows] = rkey[cm[nxt[follows]]]
    relay_from = np.full(n, -1)
    relay_from[cm[follows]] = cm[nxt[follows]]
    # a tls_server reject refers to the session (or failed handshake) just before it in that process
    rej = tls_server[cm] & (prev >= 0)
    p = prev[rej]
    ok_prev = (summary[cm[p]] & (cm_rkey[p] == cm_rkey[rej])) | handshake[cm[p]]
    cm_sess[np.flatnonzero(rej)[ok_prev]] = sid[cm[p[ok_prev]]]
    arg1 = _text(ev["arg1"])
    reject_text = _text(ev["reject"])
    cm_enc = np.where(summary[cm], True, False)
    cm_enc[tls_server[cm]] = arg1.iloc[cm[tls_server[cm]]].str.upper().isin(SESSION_VERIFY).to_numpy()
    causes = pd.Series(None, index=range(n), dtype=object)
    rej_rows = np.flatnonzero(
        tls_server | (ruleset == "tls_rcpt").to_numpy() | (ruleset == "tls_client").to_numpy()
    )
    if len(rej_rows):
        causes.iloc[rej_rows] = _map_unique(
            lambda rs, a, t, b: classify(None if rs == "tls_rcpt" else a, t, actual_bits=b),
            ruleset.iloc[rej_rows],
            arg1.iloc[rej_rows],
            reject_text.iloc[rej_rows],
            ev["actual_bits"].iloc[rej_rows],
        )
    causes.iloc[np.flatnonzero(handshake)] = "handshake_failed"
    cm_fail = causes.iloc[cm].to_numpy(dtype=object).copy()
    cm_fail[try_tls[cm]] = None

    # ---- deliveries: to= lines of SMTP mailers, one row per recipient
    mailer = _text(ev["mailer"]).str.lower()
    dl = np.flatnonzero(((kind == "delivery") & mailer.isin(SMTP_MAILERS)).to_numpy())
    d_rkey = np.where(rkey[dl] >= 0, rkey[dl], -2)
    m = _asof(order[dl], [seg[dl], d_rkey], order[cm], [seg[cm], cm_rkey])
    hit = m >= 0
    d = ev.iloc[dl].assign(
        _line=dl,
        _marker=_take(cm, m, -1),
        _seg=seg[dl],
        _enc=pd.array(_take(cm_enc, m, False), dtype="boolean"),
        _sess=_take(cm_sess, m, -1),
        _fail=pd.Series(_take(cm_fail, m, None), index=ev.index[dl], dtype=object),
    )
    d.loc[~hit, "_enc"] = pd.NA
    d = d.explode("recipients").rename(columns={"recipients": "recipient"}).reset_index(drop=True)
    d["recipient"] = _text(d["recipient"])
    # tls_rcpt: only that recipient of that queue id, in the same process
    rc = np.flatnonzero((ruleset == "tls_rcpt").to_numpy())
    keys = _codes(
        pd.concat([_text(d["qid"]), _text(ev["qid"].iloc[rc])], ignore_index=True),
        pd.concat([_recipient(d["recipient"]), _recipient(arg1.iloc[rc])], ignore_index=True),
    )
    r = _asof(
        d["_line"].to_numpy(), [d["_seg"].to_numpy(), keys[: len(d)]], order[rc], [seg[rc], keys[len(d) :]]
    )
    r_hit = (r >= 0) & (keys[: len(d)] >= 0)
    d["_rcpt"] = _take(rc, np.where(r_hit, r, -1), -1)
    d = _finish_deliveries(d, r_hit, causes, internal)

    # ---- receipts: from= lines, linked to the server session of their process
    sm = np.flatnonzero((is_session & server) | (kind == "session_end").to_numpy())
    starts = is_session[sm]
    # an ended connection's state, carried for the from= of the same qid logged right after the end line
    state = pd.DataFrame({"seg": seg[sm], "sess": np.where(starts, sid[sm], np.nan)})
    carried = state.groupby("seg")["sess"].ffill().to_numpy()
    rc_rows = np.flatnonzero((kind == "receipt").to_numpy())
    mm = _asof(order[rc_rows], [seg[rc_rows]], order[sm], [seg[sm]])
    qid = _text(ev["qid"])
    matched = _take(sm, mm, -1)
    sess = np.full(len(rc_rows), -1, dtype=np.int64)
    at_start = _take(starts, mm, False)
    sess[at_start] = sid[matched[at_start]]
    at_end = (mm >= 0) & ~at_start
    qids = qid.to_numpy(dtype=object)
    same_qid = at_end & (_take(qids, matched, None) == qids[rc_rows])
    same_qid &= ~np.isnan(_take(carried, mm, np.nan).astype(float))
    sess[same_qid] = carried[mm[same_qid]].astype(np.int64)
    tls_session = summary[np.flatnonzero(is_session)]  # by session id: a handshake that completed
    senc = (sess >= 0) & tls_session[np.maximum(sess, 0)] if len(tls_session) else np.zeros(len(sess), bool)
    rcp = _finish_receipts(ev.iloc[rc_rows].assign(_line=rc_rows, _sess=sess, _senc=senc), internal)

    # ---- sessions
    sessions_frame = _finish_sessions(
        ev,
        seg,
        sid,
        is_session,
        handshake,
        server,
        client,
        relay_from,
        cm,
        cm_sess,
        cm_enc,
        tls_server,
        causes,
        kind,
        ruleset,
        rcp,
        d,
        internal,
    )
    session_attrs = sessions_frame.set_index("session_id")[["version", "verify", "cipher", "cipher_bits"]]
    markers = pd.DataFrame({"row": cm, "session_id": cm_sess, "encrypted": cm_enc})
    return Linked(sessions_frame, _attach(rcp, session_attrs), _attach(d, session_attrs), markers)


def _attach(frame: pd.DataFrame, attrs: pd.DataFrame) -> pd.DataFrame:
    """Copy the linked session's version/verify/cipher/bits onto receipt or delivery rows."""
    sess = frame["session_id"]
    found = attrs.reindex(sess.fillna(-1).astype("int64").to_numpy())
    use = frame["encrypted"].fillna(False).to_numpy(dtype=bool) & sess.notna().to_numpy()
    out = frame.assign(**{c: found[c].where(use).set_axis(frame.index) for c in attrs.columns})
    out = out.assign(version=out["version"].astype(attrs["version"].dtype))
    return _crypto_columns(out)


def _finish_deliveries(
    d: pd.DataFrame, r_hit: np.ndarray, causes: pd.Series, internal: InternalHosts
) -> pd.DataFrame:
    stat_text = _text(d["stat_text"])
    reply = _text(d["reply"])
    said = stat_text.fillna("") + " " + reply.fillna("")
    status = _status(d["stat"])
    coded = said.str.contains(_SMTP_CODE, regex=True) | reply.notna()
    lost = said.str.contains(_NOT_REACHED, case=False, regex=True) & ~coded
    reached = (status == "sent") | coded | pd.Series(r_hit, index=d.index) | ((status == "bounced") & ~lost)
    enc = d["_enc"].astype("boolean")
    enc = enc.where(enc.notna() | ~reached, False)
    enc = enc.mask(lost | (status == "queued"), pd.NA)
    rcpt_cause = causes.reindex(d["_rcpt"].to_numpy()).to_numpy(dtype=object)
    remote = _map_unique(text_cause, said.str.strip())
    marker_fail = d["_fail"].to_numpy(dtype=object)
    fail = np.where(r_hit, rcpt_cause, marker_fail)
    src = np.where(r_hit, "rcpt", np.where(pd.isna(marker_fail), "text", "marker")).astype(object)
    fail = np.where(pd.isna(fail), np.array(remote, dtype=object), fail)
    src[pd.isna(fail)] = None
    recipient = _recipient(d["recipient"])
    d = d.assign(
        recipient_domain=recipient.str.extract(r"@([^@]+)$", expand=False),
        status=status,
        encrypted=enc,
        session_id=pd.array(np.where(d["_sess"] >= 0, d["_sess"], -1), dtype="Int64"),
        tls_failure=pd.Series(fail, index=d.index, dtype=object).astype(CAUSE_DTYPE),
        stat_text=stat_text,
        reply=reply,
        _src=src,
    )
    d["session_id"] = d["session_id"].mask(d["session_id"] < 0)
    return _peer_columns(d, internal).reset_index(drop=True)


def _finish_receipts(f: pd.DataFrame, internal: InternalHosts) -> pd.DataFrame:
    proto = _text(f["proto"]).str.upper()
    tls_proto = proto.isin(TLS_PROTOS)
    # 8.15.1+ marks TLS on proto=; once a host logs any such value, its proto= is authoritative
    host = _text(f["host"]).fillna("")
    authoritative = tls_proto.groupby(host).transform("any") & proto.notna()
    linked = pd.Series(f["_senc"].to_numpy(dtype=bool), index=f.index)
    enc = tls_proto | (linked & ~authoritative)
    submission = proto.isna() & _text(f["relay_ip"]).isna()
    f = f.assign(
        encrypted=pd.Series(enc, dtype="boolean"),
        session_id=pd.array(np.where(linked & enc, f["_sess"], -1), dtype="Int64"),
    )
    f["session_id"] = f["session_id"].mask(f["session_id"] < 0)
    f = _peer_columns(f, internal)
    return f.assign(internal=f["internal"] | submission).reset_index(drop=True)


def _finish_sessions(
    ev,
    seg,
    sid,
    is_session,
    handshake,
    server,
    client,
    relay_from,
    cm,
    cm_sess,
    cm_enc,
    tls_server,
    causes,
    kind,
    ruleset,
    rcp,
    d,
    internal,
) -> pd.DataFrame:
    rows = np.flatnonzero(is_session)
    s = ev.iloc[rows].assign(_line=rows, session_id=sid[rows], start=ev["timestamp"].iloc[rows])
    # connect failed: relay from the tls_server line that follows it
    src = relay_from[rows]
    has = src >= 0
    for col in ("relay_host", "relay_ip"):
        vals = _text(s[col]).to_numpy(dtype=object).copy()
        vals[has] = _text(ev[col]).to_numpy(dtype=object)[src[has]]
        s[col] = pd.Series(vals, index=s.index, dtype="str")
    # certificate lines belong to the latest session of that process and side
    order = np.arange(len(ev))
    dcode = _codes(ev["direction"])
    cert = np.flatnonzero(
        (kind == "tls_cert").to_numpy()
        & (_text(ev["cert_subject"]).notna() | _text(ev["verifymsg"]).notna()).to_numpy()
    )
    c = _asof(order[cert], [seg[cert], dcode[cert]], order[rows], [seg[rows], dcode[rows]])
    first = pd.Series(cert[c >= 0]).groupby(c[c >= 0]).first()
    for col in ("cert_subject", "cert_issuer", "verifymsg"):
        vals = np.full(len(rows), None, dtype=object)
        vals[first.index.to_numpy()] = _text(ev[col]).to_numpy(dtype=object)[first.to_numpy()]
        s[col] = pd.Series(vals, index=s.index, dtype="str")
    # outcome: failed handshake, or a policy reject on the session (client: tls_server; server: tls_client)
    cause = np.where(handshake[rows], "handshake_failed", None).astype(object)
    error = _text(s["error"]).to_numpy(dtype=object).copy()
    rej_on = tls_server[cm] & cm_enc & (cm_sess >= 0)
    pos = np.searchsorted(sid[rows], cm_sess[rej_on])
    cause[pos] = causes.to_numpy(dtype=object)[cm[rej_on]]
    error[pos] = _text(ev["reject"]).to_numpy(dtype=object)[cm[rej_on]]
    tc = np.flatnonzero((ruleset == "tls_client").to_numpy())
    srv = rows[server[rows] & ~handshake[rows]]
    t = _asof(order[tc], [seg[tc]], order[srv], [seg[srv]])
    pos = np.searchsorted(rows, srv[t[t >= 0]])
    cause[pos] = causes.to_numpy(dtype=object)[tc[t >= 0]]
    error[pos] = _text(ev["reject"]).to_numpy(dtype=object)[tc[t >= 0]]
    linked_msgs = pd.concat([rcp[["session_id", "qid"]], d[["session_id", "qid"]]], ignore_index=True)
    linked_msgs = linked_msgs[linked_msgs["session_id"].notna()]
    messages = linked_msgs.groupby(linked_msgs["session_id"].astype("int64")).size()
    # a client summary names only the host it connected to; the to= lines it carried give the address
    carried = d.loc[d["session_id"].notna() & d["relay_ip"].notna(), ["session_id", "relay_ip"]]
    address = carried.groupby(carried["session_id"].astype("int64"))["relay_ip"].first()
    s["relay_ip"] = _text(s["relay_ip"]).fillna(
        pd.Series(address.reindex(sid[rows]).to_numpy(), index=s.index, dtype="str")
    )
    s = s.assign(
        direction=_text(s["direction"]).astype(DIRECTION_DTYPE),
        outcome=pd.Series(np.where(pd.isna(cause), "ok", "failed"), index=s.index).astype(OUTCOME_DTYPE),
        cause=pd.Series(cause, index=s.index, dtype=object).astype(CAUSE_DTYPE),
        error=pd.Series(error, index=s.index, dtype="str"),
        messages=pd.array(messages.reindex(sid[rows], fill_value=0).to_numpy(), dtype="Int64"),
        session_id=sid[rows].astype(np.int64),
    )
    s = _crypto_columns(_peer_columns(s, internal))
    return s.reset_index(drop=True)


def _public(frame: pd.DataFrame, columns: list[str], time: str) -> pd.DataFrame:
    """The public columns, rows in time order (lines of one second keep their log order)."""
    frame = frame[[c for c in columns if c in frame.columns]]
    return frame.sort_values(time, kind="stable", na_position="first").reset_index(drop=True)


def sessions(
    events: pd.DataFrame, *, gap: str | pd.Timedelta = "10min", internal: Iterable[str] = ()
) -> pd.DataFrame:
    """One row per TLS handshake (``STARTTLS=server|client`` summary) or failed one (accept/connect failed).

    A session refused by policy right after the handshake (``ruleset=tls_server`` / ``tls_client``) has
    ``outcome="failed"`` and the cause of the reject. ``messages`` counts the queue ids linked to it.

    :param gap: lines of one process further apart than this belong to different connections
    :param internal: extra internal hosts (names, addresses, CIDRs, ``.domain`` suffixes)

    >>> s = tlslog.sessions(tlslog.read_log("sample_logs/"))               # doctest: +SKIP
    >>> s.groupby(["direction", "version"], observed=True).size()          # doctest: +SKIP
    """
    return _public(link(events, gap=gap, internal=internal).sessions, SESSION_COLUMNS, "start")


def receipts(
    events: pd.DataFrame, *, gap: str | pd.Timedelta = "10min", internal: Iterable[str] = ()
) -> pd.DataFrame:
    """One row per inbound message (``from=`` line), with the TLS session that carried it.

    ``encrypted`` is True when the SMTP session completed STARTTLS before MAIL (a linked
    ``STARTTLS=server`` line, or ``proto=ESMTPS``/``ESMTPSA``/``UTF8SMTPS*``); command-line submissions
    are False and internal.

    >>> r = tlslog.receipts(tlslog.read_log("sample_logs/"))               # doctest: +SKIP
    >>> r.loc[~r["internal"], "encrypted"].mean()                          # doctest: +SKIP
    """
    return _public(link(events, gap=gap, internal=internal).receipts, RECEIPT_COLUMNS, "timestamp")


def deliveries(
    events: pd.DataFrame, *, gap: str | pd.Timedelta = "10min", internal: Iterable[str] = ()
) -> pd.DataFrame:
    """One row per outbound SMTP delivery attempt and recipient (``to=`` lines of SMTP mailers).

    ``encrypted``: True over an established TLS session (also when a policy then refused it), False when a
    server was reached in clear or the handshake failed, NA when no server was reached. ``tls_failure``
    is the cause of a TLS refusal (see `tlslog.causes`).

    >>> d = tlslog.deliveries(tlslog.read_log("sample_logs/"))             # doctest: +SKIP
    >>> d[d["tls_failure"].notna()][["qid", "recipient", "tls_failure"]]   # doctest: +SKIP
    """
    return _public(link(events, gap=gap, internal=internal).deliveries, DELIVERY_COLUMNS, "timestamp")
