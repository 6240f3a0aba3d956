"""Inbound messages: ``from=`` lines linked to the server session of their process, and whether TLS
carried them (the session, or ``proto=`` on 8.15.1+).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .connections import Lines
from .vectors import asof, codes, is_one_of, per_value, take_or, values_at

__all__ = ["TLS_PROTOS", "receipts"]

#: ``proto=`` values that mark a TLS-received message (8.15.1+).
TLS_PROTOS = frozenset({"ESMTPS", "ESMTPSA", "UTF8SMTPS", "UTF8SMTPSA"})


def receipts(lines: Lines) -> pd.DataFrame:
    """``from=`` lines, linked to the server session of their process (the kept columns of
    `tlslog.linked.Linked`, before the session's crypto is attached)."""
    ev, seg, sid = lines.ev, lines.seg, lines.sid
    is_session = sid >= 0
    sm = np.flatnonzero((is_session & lines.server) | is_one_of(ev["kind"], "session_end"))
    starts = is_session[sm]
    rc_rows = np.flatnonzero(is_one_of(ev["kind"], "receipt"))
    mm = asof(rc_rows, [seg[rc_rows]], sm, [seg[sm]])
    matched = take_or(sm, mm, -1)
    sess = np.full(len(rc_rows), -1, dtype=np.int64)
    at_start = take_or(starts, mm, False)
    sess[at_start] = sid[matched[at_start]]
    # an ended connection's state, carried for the from= of the same qid logged right after the end line
    at_end = np.flatnonzero((mm >= 0) & ~at_start)
    ends = matched[at_end]
    same_qid = values_at(ev["qid"], ends) == values_at(ev["qid"], rc_rows[at_end])
    same_qid = pd.Series(same_qid).fillna(False).to_numpy(dtype=bool)
    first = sm[starts]
    carried = take_or(first, asof(ends, [seg[ends]], first, [seg[first]]), -1)
    take = same_qid & (carried >= 0)
    sess[at_end[take]] = sid[carried[take]]
    tls_session = lines.summary[lines.rows]  # by session id: a handshake that completed
    senc = (sess >= 0) & tls_session[np.maximum(sess, 0)] if len(tls_session) else np.zeros(len(sess), bool)
    proto = ev["proto"].iloc[rc_rows]
    results, key = per_value(lambda p: isinstance(p, str) and p.upper() in TLS_PROTOS, proto)
    tls_proto = np.asarray(results, dtype=bool)[key] if len(key) else np.zeros(0, dtype=bool)
    # 8.15.1+ marks TLS on proto=; once a host logs any such value, its proto= is authoritative
    host = codes(ev["host"].iloc[rc_rows])[0].astype(np.int64) + 1
    marking_host = np.bincount(host, weights=tls_proto, minlength=host.max(initial=0) + 1) > 0
    authoritative = marking_host[host] & proto.notna().to_numpy()
    enc = tls_proto | (senc & ~authoritative)
    submission = proto.isna().to_numpy() & (lines.relays.ip[rc_rows] < 0)
    linked = senc & enc
    relays = lines.relays
    peers = relays.columns(relays.host[rc_rows], relays.ip[rc_rows])
    peers["internal"] = peers["internal"] | submission
    return pd.DataFrame(
        {
            "timestamp": ev["timestamp"].array.take(rc_rows),
            "_line": rc_rows.astype(np.int32),
            "encrypted": pd.array(enc, dtype="boolean"),
            "session_id": pd.arrays.IntegerArray(np.where(linked, sess, 0), ~linked),
            **peers,
        },
        copy=False,
    )
