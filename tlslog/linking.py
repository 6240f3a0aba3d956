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

import re
import weakref
from collections.abc import Callable, Iterable
from functools import partial
from typing import NamedTuple, TypeVar

import numpy as np
import pandas as pd

from .causes import CAUSES, SESSION_VERIFY, TLS_TEXT_HINT, classify, text_cause
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
# (ASCII classes, not \s and \d: pandas runs those through Python's re instead of pyarrow)
_SMTP_CODE = r"(?:^|[ \t\n\r\f\v(:])[2-5][0-9][0-9][ -]"
_NOT_REACHED = (
    r"Connection refused|Connection timed out|Name server timeout|Host unknown|host not found|"
    r"No route to host|Network is unreachable|Host is down|No such host|Temporary failure in name resolution"
)
_DOMAIN = re.compile(r"@([^@]+)$")
T = TypeVar("T")

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


# The events columns each linked table copies: its public ones that come straight from the line, and what
# `failures` reads (``error``). Columns the linking computes (version, cipher... from the session) are
# left out; copying all the events columns to every row cost about as much as linking itself.
_SESSION_EVENT_COLUMNS = [
    "host",
    "program",
    "pid",
    "direction",
    "relay_host",
    "relay_ip",
    "version",
    "verify",
    "cipher",
    "alg_bits",
    "cipher_bits",
    "error",
]
_RECEIPT_EVENT_COLUMNS = [
    "timestamp",
    "host",
    "pid",
    "qid",
    "relay_host",
    "relay_ip",
    "sender",
    "size",
    "nrcpts",
    "proto",
    "daemon",
    "msgid",
]
_DELIVERY_EVENT_COLUMNS = [
    "timestamp",
    "host",
    "pid",
    "qid",
    "relay_host",
    "relay_ip",
    "recipients",
    "mailer",
    "dsn",
    "stat",
    "stat_text",
    "reply",
    "error",
]


class Linked(NamedTuple):
    """The three linked tables plus the private columns `failures` needs (names starting with ``_``).

    Each table holds its public columns (see `SESSION_COLUMNS`...), the private ones, and of the events
    columns only ``error`` besides.

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


def as_text(col: pd.Series) -> pd.Series:
    """Any column as a pandas ``str`` Series (categories and NaN preserved as missing)."""
    return col.astype("str")


def is_one_of(col: pd.Series, *values: str) -> np.ndarray:
    """Rows whose value is one of ``values`` (never a missing one), as a bool array."""
    return col.isin(values).to_numpy(dtype=bool)


def _joint(*cols: pd.Series | np.ndarray) -> np.ndarray:
    """Codes of the joint values of several columns, numbered in order of first appearance (missing is
    a value too). Works on the columns' own codes, so categoricals and strings are never converted."""
    key = np.zeros(len(cols[0]), dtype=np.int64)
    for col in cols:
        codes, uniques = pd.factorize(col, use_na_sentinel=True)
        key = pd.factorize(key * (len(uniques) + 1) + codes + 1)[0].astype(np.int64)
    return key


def _codes(first: pd.Series, *more: pd.Series) -> np.ndarray:
    """Codes of the joint values of string columns (-1 where ``first`` is missing; missing in the others
    counts as "")."""
    key = _joint(first, *(as_text(col).fillna("") for col in more))
    return np.where(first.isna().to_numpy(), -1, key)


def _per_value(fn: Callable[..., object], *cols: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``fn(*values)`` once per distinct combination of values: ``(results, codes)``, where
    ``results[codes]`` is the answer for each row. ``fn`` gets ``None`` for a missing value."""
    codes = _joint(*cols)
    # codes are numbered in order of first appearance: the running maximum steps up at each first row
    first = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0) if len(codes) else codes
    values = [_python(col.iloc[first]) for col in cols]
    results = np.empty(len(first), dtype=object)
    for i, args in enumerate(zip(*values, strict=True)):
        results[i] = fn(*args)
    return results, codes


def _python(col: pd.Series) -> list:
    """The values of a (short) column as Python objects, ``None`` where missing."""
    values = col.astype(object)
    return values.where(values.notna(), None).tolist()


def map_unique(fn: Callable[..., object], *cols: pd.Series, dtype: str | None = None) -> np.ndarray:
    """``fn(*values)`` for each row, calling ``fn`` once per distinct combination of values.

    An object array, or a pandas array of ``dtype`` (built from the few results, then spread by position).
    """
    results, codes = _per_value(fn, *cols)
    if dtype is None:
        return results[codes]
    return pd.array(list(results), dtype=dtype).take(codes)


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


def take_rows(ev: pd.DataFrame, rows: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """Some rows and columns of the events frame (one copy of just those; absent columns left out)."""
    return ev.iloc[rows, [ev.columns.get_loc(c) for c in columns if c in ev.columns]]


def _pick(col: pd.Series, rows: np.ndarray) -> np.ndarray:
    """The text of some rows of a column, as an object array."""
    return as_text(col.iloc[rows]).to_numpy(dtype=object)


def _at(col: pd.Series, rows: np.ndarray, index: pd.Index) -> pd.Series:
    """The text of a column of the (range-indexed) events frame at ``rows`` (missing at -1), on ``index``."""
    return pd.Series(as_text(col.reindex(rows)).array, index=index)


def _segments(ev: pd.DataFrame, gap: str | pd.Timedelta) -> np.ndarray:
    """Segment id per row: one process (host, pid) without a time gap above ``gap``."""
    n = len(ev)
    host = pd.factorize(ev["host"])[0]
    pid = ev["pid"].astype("Int64").fillna(-1).to_numpy(dtype=np.int64)
    idx = np.argsort(host * (pid.max(initial=0) + 2) + pid + 1, kind="stable")  # by host, pid, row
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


def _relay_name(host: str | None, ip: str | None) -> str | None:
    """The relay a line names, normalised: host name without trailing dot, else the literal address."""
    if isinstance(host, str):
        name = host.lower().strip().rstrip(".").strip("[]")
        if name:
            return name
    return ip.lower().strip("[]").removeprefix("ipv6:") if isinstance(ip, str) else None


def _relay_keys(ev: pd.DataFrame) -> np.ndarray:
    """Per row a code of `_relay_name` (-1 when the line names no relay)."""
    names, codes = _per_value(_relay_name, ev["relay_host"], ev["relay_ip"])
    return pd.factorize(names, use_na_sentinel=True)[0].astype(np.int64)[codes]


def peer_columns(frame: pd.DataFrame, internal: InternalHosts) -> pd.DataFrame:
    """``peer``, ``peer_domain`` and ``internal`` from ``relay_host`` / ``relay_ip``."""
    host, ip = as_text(frame["relay_host"]), as_text(frame["relay_ip"])
    return frame.assign(
        peer=host.where(host.notna(), ip),
        peer_domain=pd.Series(map_unique(peer_domain, host, ip, dtype="str"), index=frame.index),
        internal=pd.Series(map_unique(internal.is_internal, host, ip, dtype="boolean"), index=frame.index),
    )


def _weak_reasons(version: str | None, cipher: str | None, bits: int | None) -> str:
    return ", ".join(weakness(version, cipher, bits))


def _crypto_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``verified``, ``weak`` and ``weak_reason`` from the session's verify, version, cipher and bits."""
    version, cipher, verify = frame["version"], frame["cipher"], frame["verify"]
    reasons = pd.Series(
        map_unique(_weak_reasons, version, cipher, frame["cipher_bits"], dtype="str"), index=frame.index
    )
    known = version.notna() | cipher.notna()
    return frame.assign(
        verified=pd.Series(verify.isin(VERIFIED), dtype="boolean").where(verify.notna(), pd.NA),
        weak=pd.Series(reasons != "", dtype="boolean").where(known, pd.NA),
        weak_reason=reasons.where(known & (reasons != ""), None),
    )


def _status_of(stat: str | None) -> str:
    word = stat.strip() if isinstance(stat, str) else ""
    if word.startswith("Sent"):
        return "sent"
    if word.startswith("Deferred"):
        return "deferred"
    return "queued" if word.lower() == "queued" else "bounced"


def _domain(recipient: str | None) -> str | None:
    found = _DOMAIN.search(recipient) if isinstance(recipient, str) else None
    return found[1] if found else None


def _recipient(values: pd.Series) -> pd.Series:
    return as_text(values).str.strip().str.strip("<>").str.lower()


# ----------------------------------------------------------------------------------------------- linking


# Every public table and metric links the same events frame again; a report asks for several of them, so the
# last few results are kept per frame object (its identity and shape; a frame that is gone is never matched).
_MEMO: dict[tuple, tuple[weakref.ref, Linked]] = {}
_MEMO_SIZE = 4


def per_frame(memo: dict, events: pd.DataFrame, key: tuple, compute: Callable[[], T], size: int = 4) -> T:
    """``compute()`` once per events frame object and ``key``, the last ``size`` results kept in ``memo``.

    The frame's identity and shape are part of the key, and a hit must still be that very object (an id is
    reused once a frame is gone). Callers must not change a result in place.
    """
    full = (id(events), events.shape, tuple(events.columns), *key)
    hit = memo.get(full)
    if hit is not None and hit[0]() is events:
        return hit[1]
    value = compute()
    if len(memo) >= size:
        memo.pop(next(iter(memo)))
    memo[full] = (weakref.ref(events), value)
    return value


def internal_key(internal: InternalHosts) -> tuple:
    """What identifies a set of internal hosts in a memo key."""
    return (internal.names, internal.suffixes, internal.networks)


def link(events: pd.DataFrame, *, gap: str | pd.Timedelta = "10min", internal: Iterable[str] = ()) -> Linked:
    """Link the lines of an events frame into sessions, receipts and deliveries (with private columns).

    The public `sessions`, `receipts` and `deliveries` return these frames without the ``_`` columns.
    Results are memoised per frame object, so calling several tables and metrics on one frame links once.

    >>> linked = link(tlslog.read_log("sample_logs/"))              # doctest: +SKIP
    >>> linked.deliveries[["qid", "recipient", "encrypted", "tls_failure"]]  # doctest: +SKIP
    """
    internal = InternalHosts.coerce(internal)
    key = (str(pd.Timedelta(gap)), internal_key(internal))
    return per_frame(_MEMO, events, key, lambda: _link(events, gap=gap, internal=internal), size=_MEMO_SIZE)


class _Lines(NamedTuple):
    """What every linking step needs to know about the events rows (arrays of the frame's length)."""

    ev: pd.DataFrame
    seg: np.ndarray  # segment (one process without a long pause)
    sid: np.ndarray  # session id of a session row, -1 elsewhere
    summary: np.ndarray  # STARTTLS=server|client summary
    handshake: np.ndarray  # failed handshake (accept/connect failed)
    server: np.ndarray
    client: np.ndarray
    tls_server: np.ndarray  # ruleset=tls_server reject
    rkey: np.ndarray  # code of the relay the line names, -1 when none
    causes: np.ndarray  # failure cause of reject and handshake rows (object, None elsewhere)

    @property
    def rows(self) -> np.ndarray:
        """Events rows of the sessions, in session id order."""
        return np.flatnonzero(self.sid >= 0)

    def ruleset(self, name: str) -> np.ndarray:
        return np.flatnonzero(is_one_of(self.ev["ruleset"], name))


class _Markers(NamedTuple):
    """Client-side TLS lines that decide the encryption of the ``to=`` lines after them."""

    rows: np.ndarray  # events rows
    rkey: np.ndarray  # relay (a connect failed takes the relay of the tls_server line after it)
    sess: np.ndarray  # session id (a tls_server reject: that of the session it judged), -1 when none
    enc: np.ndarray  # the connection was encrypted
    fail: np.ndarray  # failure cause (object)
    relay_from: np.ndarray  # per events row: the row a connect failed takes its relay from, -1 elsewhere


def _link(events: pd.DataFrame, *, gap: str | pd.Timedelta, internal: InternalHosts) -> Linked:
    ev = events.reset_index(drop=True)
    ev.attrs = {}  # pandas deep-copies attrs at every step; the linked tables do not need them
    lines = _lines(ev, gap)
    mk = _markers(lines)
    dlv = _deliveries(lines, mk, internal)
    rcp = _receipts(lines, internal)
    sess = _sessions(lines, mk, rcp, dlv, internal)
    session_attrs = sess.set_index("session_id")[["version", "verify", "cipher", "cipher_bits"]]
    markers = pd.DataFrame({"row": mk.rows, "session_id": mk.sess, "encrypted": mk.enc})
    return Linked(sess, _attach(rcp, session_attrs), _attach(dlv, session_attrs), markers)


def _lines(ev: pd.DataFrame, gap: str | pd.Timedelta) -> _Lines:
    kind = ev["kind"]
    summary = is_one_of(kind, "starttls")
    handshake = (
        is_one_of(kind, "tls_error")
        & is_one_of(ev["subkind"], "handshake")
        & is_one_of(ev["direction"], "server", "client")
    )
    is_session = summary | handshake
    tls_server = is_one_of(kind, "tls_reject") & is_one_of(ev["ruleset"], "tls_server")
    causes = np.full(len(ev), None, dtype=object)
    rej = np.flatnonzero(tls_server | is_one_of(ev["ruleset"], "tls_rcpt", "tls_client"))
    causes[rej] = map_unique(
        lambda rs, a, t, b: classify(None if rs == "tls_rcpt" else a, t, actual_bits=b),
        *(ev[c].iloc[rej] for c in ("ruleset", "arg1", "reject", "actual_bits")),
    )
    causes[handshake] = "handshake_failed"
    return _Lines(
        ev=ev,
        seg=_segments(ev, gap),
        sid=np.where(is_session, np.cumsum(is_session) - 1, -1),
        summary=summary,
        handshake=handshake,
        server=is_one_of(ev["direction"], "server"),
        client=is_one_of(ev["direction"], "client"),
        tls_server=tls_server,
        rkey=_relay_keys(ev),
        causes=causes,
    )


def _markers(lines: _Lines) -> _Markers:
    """Outbound: the client markers of each process, keyed by relay."""
    ev, seg, sid, tls_server = lines.ev, lines.seg, lines.sid, lines.tls_server
    try_tls = is_one_of(ev["ruleset"], "try_tls")
    cm = np.flatnonzero(((sid >= 0) & lines.client) | tls_server | try_tls)
    rkey = lines.rkey[cm].copy()
    sess = sid[cm].copy()
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
    rkey[follows] = lines.rkey[cm[nxt[follows]]]
    relay_from = np.full(len(ev), -1)
    relay_from[cm[follows]] = cm[nxt[follows]]
    # a tls_server reject refers to the session (or failed handshake) just before it in that process
    rej = tls_server[cm] & (prev >= 0)
    p = prev[rej]
    ok_prev = (lines.summary[cm[p]] & (rkey[p] == rkey[rej])) | lines.handshake[cm[p]]
    sess[np.flatnonzero(rej)[ok_prev]] = sid[cm[p[ok_prev]]]
    enc = lines.summary[cm].copy()
    judged = cm[tls_server[cm]]
    enc[tls_server[cm]] = as_text(ev["arg1"].iloc[judged]).str.upper().isin(SESSION_VERIFY).to_numpy()
    fail = lines.causes[cm].copy()
    fail[try_tls[cm]] = None
    return _Markers(cm, rkey, sess, enc, fail, relay_from)


def _deliveries(lines: _Lines, mk: _Markers, internal: InternalHosts) -> pd.DataFrame:
    """``to=`` lines of SMTP mailers, one row per recipient, with the marker that decided each."""
    ev, seg = lines.ev, lines.seg
    smtp = map_unique(lambda m: isinstance(m, str) and m.lower() in SMTP_MAILERS, ev["mailer"], dtype="bool")
    dl = np.flatnonzero(is_one_of(ev["kind"], "delivery") & np.asarray(smtp))
    d_rkey = np.where(lines.rkey[dl] >= 0, lines.rkey[dl], -2)
    m = _asof(dl, [seg[dl], d_rkey], mk.rows, [seg[mk.rows], mk.rkey])
    enc = pd.array(_take(mk.enc, m, False), dtype="boolean")
    enc[m < 0] = pd.NA
    # one row per recipient (an empty list still gives one): the index of the exploded list is the to= row
    recipients = ev["recipients"].iloc[dl].explode()
    line = recipients.index.to_numpy()
    at = np.searchsorted(dl, line)
    d = (
        take_rows(ev, line, _DELIVERY_EVENT_COLUMNS)
        .reset_index(drop=True)
        .assign(recipients=as_text(recipients).array)
        .rename(columns={"recipients": "recipient"})
        .assign(
            _line=line,
            _marker=_take(mk.rows, m, -1)[at],
            _seg=seg[line],
            _enc=enc[at],
            _sess=_take(mk.sess, m, -1)[at],
            _fail=pd.Series(_take(mk.fail, m, None)[at], dtype=object),
        )
    )
    # tls_rcpt: only that recipient of that queue id, in the same process
    rc = lines.ruleset("tls_rcpt")
    r_hit = np.zeros(len(d), dtype=bool)
    d["_rcpt"] = -1
    if len(rc):
        keys = _codes(
            pd.concat([as_text(d["qid"]), as_text(ev["qid"].iloc[rc])], ignore_index=True),
            pd.concat([_recipient(d["recipient"]), _recipient(ev["arg1"].iloc[rc])], ignore_index=True),
        )
        r = _asof(
            d["_line"].to_numpy(), [d["_seg"].to_numpy(), keys[: len(d)]], rc, [seg[rc], keys[len(d) :]]
        )
        r_hit = (r >= 0) & (keys[: len(d)] >= 0)
        d["_rcpt"] = _take(rc, np.where(r_hit, r, -1), -1)
    return _finish_deliveries(d, r_hit, lines.causes, internal)


def _finish_deliveries(
    d: pd.DataFrame, r_hit: np.ndarray, causes: np.ndarray, internal: InternalHosts
) -> pd.DataFrame:
    stat_text = as_text(d["stat_text"])
    reply = as_text(d["reply"])
    said = stat_text.fillna("") + " " + reply.fillna("")
    status = pd.Series(map_unique(_status_of, d["stat"]), index=d.index).astype(STATUS_DTYPE)
    coded = said.str.contains(_SMTP_CODE, regex=True) | reply.notna()
    lost = said.str.contains(_NOT_REACHED, case=False, regex=True) & ~coded
    reached = (status == "sent") | coded | pd.Series(r_hit, index=d.index) | ((status == "bounced") & ~lost)
    enc = d["_enc"].astype("boolean")
    enc = enc.where(enc.notna() | ~reached, False)
    enc = enc.mask(lost | (status == "queued"), pd.NA)
    # what the texts say: our own stat= (a cached failure has no new ruleset line), or the peer's reply=;
    # only texts that mention TLS at all can name a cause
    said_cause = np.full(len(d), None, dtype=object)
    hinted = said.str.contains(TLS_TEXT_HINT, case=False, regex=True).to_numpy(dtype=bool)
    theirs = hinted & reply.notna().to_numpy(dtype=bool)
    ours = hinted & ~theirs
    said_cause[ours] = map_unique(text_cause, stat_text[ours].str.strip())
    said_cause[theirs] = map_unique(partial(text_cause, remote=True), reply[theirs].str.strip())
    marker_fail = d["_fail"].to_numpy(dtype=object)
    fail = np.where(r_hit, _take(causes, d["_rcpt"].to_numpy(), None), marker_fail)
    src = np.where(r_hit, "rcpt", np.where(pd.isna(marker_fail), "text", "marker")).astype(object)
    fail = np.where(pd.isna(fail), said_cause, fail)
    src[pd.isna(fail)] = None
    recipient = _recipient(d["recipient"])
    d = d.assign(
        recipient_domain=pd.Series(map_unique(_domain, recipient, dtype="str"), index=d.index),
        status=status,
        encrypted=enc,
        session_id=pd.array(np.where(d["_sess"] >= 0, d["_sess"], -1), dtype="Int64"),
        tls_failure=pd.Series(fail, index=d.index, dtype=object).astype(CAUSE_DTYPE),
        stat_text=stat_text,
        reply=reply,
        _src=src,
    )
    d["session_id"] = d["session_id"].mask(d["session_id"] < 0)
    return peer_columns(d, internal).reset_index(drop=True)


def _receipts(lines: _Lines, internal: InternalHosts) -> pd.DataFrame:
    """``from=`` lines, linked to the server session of their process."""
    ev, seg, sid = lines.ev, lines.seg, lines.sid
    is_session = sid >= 0
    sm = np.flatnonzero((is_session & lines.server) | is_one_of(ev["kind"], "session_end"))
    starts = is_session[sm]
    # an ended connection's state, carried for the from= of the same qid logged right after the end line
    state = pd.DataFrame({"seg": seg[sm], "sess": np.where(starts, sid[sm], np.nan)})
    carried = state.groupby("seg")["sess"].ffill().to_numpy()
    rc_rows = np.flatnonzero(is_one_of(ev["kind"], "receipt"))
    mm = _asof(rc_rows, [seg[rc_rows]], sm, [seg[sm]])
    matched = _take(sm, mm, -1)
    sess = np.full(len(rc_rows), -1, dtype=np.int64)
    at_start = _take(starts, mm, False)
    sess[at_start] = sid[matched[at_start]]
    at_end = np.flatnonzero((mm >= 0) & ~at_start)
    same_qid = np.zeros(len(rc_rows), dtype=bool)
    same_qid[at_end] = _pick(ev["qid"], matched[at_end]) == _pick(ev["qid"], rc_rows[at_end])
    same_qid &= ~np.isnan(_take(carried, mm, np.nan).astype(float))
    sess[same_qid] = carried[mm[same_qid]].astype(np.int64)
    tls_session = lines.summary[lines.rows]  # by session id: a handshake that completed
    senc = (sess >= 0) & tls_session[np.maximum(sess, 0)] if len(tls_session) else np.zeros(len(sess), bool)
    return _finish_receipts(
        take_rows(ev, rc_rows, _RECEIPT_EVENT_COLUMNS).assign(_line=rc_rows, _sess=sess, _senc=senc), internal
    )


def _finish_receipts(f: pd.DataFrame, internal: InternalHosts) -> pd.DataFrame:
    proto = f["proto"]
    tls_proto = map_unique(lambda p: isinstance(p, str) and p.upper() in TLS_PROTOS, proto).astype(bool)
    # 8.15.1+ marks TLS on proto=; once a host logs any such value, its proto= is authoritative
    host = pd.factorize(f["host"])[0] + 1
    marking_host = np.bincount(host, weights=tls_proto, minlength=host.max(initial=0) + 1) > 0
    authoritative = marking_host[host] & proto.notna().to_numpy()
    linked = f["_senc"].to_numpy(dtype=bool)
    enc = tls_proto | (linked & ~authoritative)
    submission = proto.isna() & f["relay_ip"].isna()
    f = f.assign(
        encrypted=pd.array(enc, dtype="boolean"),
        session_id=pd.array(np.where(linked & enc, f["_sess"], -1), dtype="Int64"),
    )
    f["session_id"] = f["session_id"].mask(f["session_id"] < 0)
    f = peer_columns(f, internal)
    return f.assign(internal=f["internal"] | submission).reset_index(drop=True)


def _sessions(
    lines: _Lines, mk: _Markers, rcp: pd.DataFrame, d: pd.DataFrame, internal: InternalHosts
) -> pd.DataFrame:
    """One row per session line, with its certificate, outcome, messages and peer."""
    ev, seg, sid, rows = lines.ev, lines.seg, lines.sid, lines.rows
    s = take_rows(ev, rows, _SESSION_EVENT_COLUMNS).assign(
        _line=rows, session_id=sid[rows], start=ev["timestamp"].iloc[rows]
    )
    # connect failed: relay from the tls_server line that follows it
    relay_row = np.where(mk.relay_from[rows] >= 0, mk.relay_from[rows], rows)
    for col in ("relay_host", "relay_ip"):
        s[col] = _at(ev[col], relay_row, s.index)
    # certificate lines belong to the latest session of that process and side
    side = pd.factorize(ev["direction"])[0]
    cert = np.flatnonzero(
        is_one_of(ev["kind"], "tls_cert") & (ev["cert_subject"].notna() | ev["verifymsg"].notna())
    )
    c = _asof(cert, [seg[cert], side[cert]], rows, [seg[rows], side[rows]])
    first = pd.Series(cert[c >= 0]).groupby(c[c >= 0]).first()
    cert_row = np.full(len(rows), -1)
    cert_row[first.index.to_numpy()] = first.to_numpy()
    for col in ("cert_subject", "cert_issuer", "verifymsg"):
        s[col] = _at(ev[col], cert_row, s.index)
    # outcome: failed handshake, or a policy reject on the session (client: tls_server; server: tls_client)
    cause = np.where(lines.handshake[rows], "handshake_failed", None).astype(object)
    error = as_text(s["error"]).to_numpy(dtype=object).copy()
    rej_on = lines.tls_server[mk.rows] & mk.enc & (mk.sess >= 0)
    pos = mk.sess[rej_on]  # session ids are positions in rows
    cause[pos] = lines.causes[mk.rows[rej_on]]
    error[pos] = _pick(ev["reject"], mk.rows[rej_on])
    tc = lines.ruleset("tls_client")
    srv = rows[lines.server[rows] & ~lines.handshake[rows]]
    t = _asof(tc, [seg[tc]], srv, [seg[srv]])
    pos = sid[srv[t[t >= 0]]]
    cause[pos] = lines.causes[tc[t >= 0]]
    error[pos] = _pick(ev["reject"], tc[t >= 0])
    linked_ids = pd.concat([rcp["session_id"], d["session_id"]]).dropna().to_numpy(dtype=np.int64)
    # a client summary names only the host it connected to; the to= lines it carried give the address
    carried = d.loc[d["session_id"].notna() & d["relay_ip"].notna(), ["session_id", "relay_ip"]]
    address = carried.groupby(carried["session_id"].astype("int64"))["relay_ip"].first()
    s["relay_ip"] = as_text(s["relay_ip"]).fillna(
        pd.Series(address.reindex(sid[rows]).to_numpy(), index=s.index, dtype="str")
    )
    s = s.assign(
        direction=as_text(s["direction"]).astype(DIRECTION_DTYPE),
        outcome=pd.Series(np.where(pd.isna(cause), "ok", "failed"), index=s.index).astype(OUTCOME_DTYPE),
        cause=pd.Series(cause, index=s.index, dtype=object).astype(CAUSE_DTYPE),
        error=pd.Series(error, index=s.index, dtype="str"),
        messages=pd.array(np.bincount(linked_ids, minlength=len(rows)), dtype="Int64"),
        session_id=sid[rows].astype(np.int64),
    )
    s = _crypto_columns(peer_columns(s, internal))
    return s.reset_index(drop=True)


def _attach(frame: pd.DataFrame, attrs: pd.DataFrame) -> pd.DataFrame:
    """Copy the linked session's version/verify/cipher/bits onto receipt or delivery rows."""
    sess = frame["session_id"]
    found = attrs.reindex(sess.fillna(-1).astype("int64").to_numpy())
    use = frame["encrypted"].fillna(False).to_numpy(dtype=bool) & sess.notna().to_numpy()
    out = frame.assign(**{c: found[c].where(use).set_axis(frame.index) for c in attrs.columns})
    out = out.assign(version=out["version"].astype(attrs["version"].dtype))
    return _crypto_columns(out)


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
