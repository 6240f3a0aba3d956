"""Which lines belong to one SMTP connection: process segments, session ids, policy causes and the
client-side markers that decide the encryption of the ``to=`` lines after them.

All rows are put in one order: by host, pid and file position. A *segment* is a run of one process's lines
with no time gap above ``gap`` (pids are reused over a week); lines are linked within a segment only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from .causes import CAUSES, SESSION_VERIFY, classify
from .peers import InternalHosts
from .relays import RelayCodes
from .vectors import as_text, codes, is_one_of, joint, per_value, series_at, stable_order

__all__ = ["Lines", "Markers", "cause_codes", "lines", "markers", "segments"]


class Lines(NamedTuple):
    """What every linking step needs to know about the events rows (arrays of the frame's length)."""

    ev: pd.DataFrame
    seg: np.ndarray  # segment (one process without a long pause)
    sid: np.ndarray  # session id of a session row, -1 elsewhere (int32, like the other per-row numbers)
    summary: np.ndarray  # STARTTLS=server|client summary
    handshake: np.ndarray  # failed handshake (accept/connect failed)
    server: np.ndarray
    client: np.ndarray
    tls_server: np.ndarray  # ruleset=tls_server reject
    causes: np.ndarray  # failure cause of reject and handshake rows (int8 position in CAUSES, -1 elsewhere)
    relays: RelayCodes

    @property
    def rows(self) -> np.ndarray:
        """Events rows of the sessions, in session id order."""
        return np.flatnonzero(self.sid >= 0)

    def ruleset(self, name: str) -> np.ndarray:
        return np.flatnonzero(is_one_of(self.ev["ruleset"], name))


class Markers(NamedTuple):
    """Client-side TLS lines that decide the encryption of the ``to=`` lines after them."""

    rows: np.ndarray  # events rows
    rkey: np.ndarray  # relay (a connect failed takes the relay of the tls_server line after it)
    sess: np.ndarray  # session id (a tls_server reject: that of the session it judged), -1 when none
    enc: np.ndarray  # the connection was encrypted
    fail: np.ndarray  # failure cause (position in CAUSES, -1 when none)
    relay_from: np.ndarray  # per events row: the row a connect failed takes its relay from, -1 elsewhere


def cause_codes(results: np.ndarray) -> np.ndarray:
    """Positions in `CAUSES` of some cause names (-1 for ``None``)."""
    return pd.Index(CAUSES).get_indexer(pd.Index(list(results), dtype=object)).astype(np.int64)


def segments(ev: pd.DataFrame, gap: str | pd.Timedelta) -> np.ndarray:
    """Segment id per row (int32): one process (host, pid) without a time gap above ``gap``."""
    n = len(ev)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    host = codes(ev["host"])[0].astype(np.int64) + 1
    pid = ev["pid"].astype("Int64").to_numpy(dtype=np.int64, na_value=-1)
    low, high = min(int(pid.min()), -1), int(pid.max())
    if (int(host.max()) + 1) * (high - low + 1) < 1 << 48:
        host *= high - low + 1  # (in place on our own array: pid may be a view of the events column)
        host += pid
        host -= low
        proc = host
    else:  # pids far apart: number the processes instead
        proc = joint(host, pid)
    del host, pid
    order = stable_order(proc)  # by process, then row
    new = np.empty(n, dtype=bool)
    new[0] = True
    proc = proc[order]
    np.not_equal(proc[1:], proc[:-1], out=new[1:])
    del proc
    ts = ev["timestamp"].to_numpy(dtype="datetime64[us]").view(np.int64)[order]
    valid = ts != np.iinfo(np.int64).min
    step = np.diff(ts) > pd.Timedelta(gap).value // 1000
    del ts
    new[1:] |= valid[1:] & valid[:-1] & step
    seg = np.empty(n, dtype=np.int32)
    seg[order] = np.cumsum(new, dtype=np.int32)
    return seg


def lines(ev: pd.DataFrame, gap: str | pd.Timedelta, internal: InternalHosts) -> Lines:
    """The `Lines` of a range-indexed events frame."""
    kind, ruleset, direction = ev["kind"], ev["ruleset"], ev["direction"]
    summary = is_one_of(kind, "starttls")
    handshake = (
        is_one_of(kind, "tls_error")
        & is_one_of(ev["subkind"], "handshake")
        & is_one_of(direction, "server", "client")
    )
    is_session = summary | handshake
    tls_server = is_one_of(kind, "tls_reject") & is_one_of(ruleset, "tls_server")
    causes = np.full(len(ev), -1, dtype=np.int8)
    rej = np.flatnonzero(tls_server | is_one_of(ruleset, "tls_rcpt", "tls_client"))
    results, key = per_value(
        lambda rs, a, t, b: classify(None if rs == "tls_rcpt" else a, t, actual_bits=b),
        *(series_at(ev[c], rej) for c in ("ruleset", "arg1", "reject", "actual_bits")),
    )
    causes[rej] = cause_codes(results)[key]
    causes[handshake] = CAUSES.index("handshake_failed")
    return Lines(
        ev=ev,
        seg=segments(ev, gap),
        sid=np.where(is_session, np.cumsum(is_session, dtype=np.int32) - 1, np.int32(-1)),
        summary=summary,
        handshake=handshake,
        server=is_one_of(direction, "server"),
        client=is_one_of(direction, "client"),
        tls_server=tls_server,
        causes=causes,
        relays=RelayCodes(ev, internal),
    )


def markers(lines: Lines) -> Markers:
    """Outbound: the client markers of each process, keyed by relay."""
    ev, seg, sid, tls_server = lines.ev, lines.seg, lines.sid, lines.tls_server
    try_tls = is_one_of(ev["ruleset"], "try_tls")
    cm = np.flatnonzero(((sid >= 0) & lines.client) | tls_server | try_tls)
    named = lines.relays.keys(cm)  # the relay each line names
    rkey = named.copy()
    sess = sid[cm].astype(np.int64)
    # neighbours of each marker within its segment (markers are in file order)
    by_seg = np.lexsort((cm, seg[cm]))
    prev = np.full(len(cm), -1)
    same_seg = seg[cm][by_seg][1:] == seg[cm][by_seg][:-1]
    prev[by_seg[1:][same_seg]] = by_seg[:-1][same_seg]
    nxt = np.full(len(cm), -1)
    nxt[by_seg[:-1][same_seg]] = by_seg[1:][same_seg]
    # connect failed has no relay=: it takes the relay of the tls_server line that follows it
    follows = lines.handshake[cm] & (nxt >= 0)
    follows[follows] = tls_server[cm[nxt[follows]]]
    rkey[follows] = named[nxt[follows]]
    relay_from = np.full(len(ev), -1, dtype=np.int32)
    relay_from[cm[follows]] = cm[nxt[follows]]
    # a tls_server reject refers to the session (or failed handshake) just before it in that process
    rej = tls_server[cm] & (prev >= 0)
    p = prev[rej]
    ok_prev = (lines.summary[cm[p]] & (rkey[p] == rkey[rej])) | lines.handshake[cm[p]]
    sess[np.flatnonzero(rej)[ok_prev]] = sid[cm[p[ok_prev]]]
    enc = lines.summary[cm].copy()
    judged = cm[tls_server[cm]]
    enc[tls_server[cm]] = as_text(series_at(ev["arg1"], judged)).str.upper().isin(SESSION_VERIFY).to_numpy()
    fail = lines.causes[cm].astype(np.int64)
    fail[try_tls[cm]] = -1
    return Markers(cm, rkey, sess, enc, fail, relay_from)
