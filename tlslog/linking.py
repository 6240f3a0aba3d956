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
from .vectors import (
    as_text,
    asof,
    codes,
    is_one_of,
    joint,
    map_unique,
    per_value,
    stable_order,
    take_rows,
    text_of,
)

__all__ = [
    "DELIVERY_COLUMNS",
    "RECEIPT_COLUMNS",
    "SESSION_COLUMNS",
    "Linked",
    "as_text",
    "deliveries",
    "internal_key",
    "is_one_of",
    "link",
    "map_unique",
    "peer_columns",
    "per_frame",
    "receipts",
    "sessions",
    "take_rows",
]

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


# The events columns each linked table copies as they are: its public ones that come straight from the line,
# and what `failures` reads (``error``). The relay columns are rebuilt from codes with the peer columns, and
# what the linking computes (version, cipher... from the session) is left out.
_SESSION_EVENT_COLUMNS = ["host", "program", "pid", "version", "verify", "cipher", "alg_bits", "cipher_bits"]
_RECEIPT_EVENT_COLUMNS = [
    "timestamp",
    "host",
    "pid",
    "qid",
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
    ``row`` (events row), ``session_id`` (-1 when none) and ``encrypted``. Every table's ``_relay`` numbers
    its (``relay_host``, ``relay_ip``) pair: ``relays`` has the ``peer`` and ``peer_domain`` of each number.
    """

    sessions: pd.DataFrame
    receipts: pd.DataFrame
    deliveries: pd.DataFrame
    markers: pd.DataFrame
    relays: pd.DataFrame


# ---------------------------------------------------------------------------------------------- helpers


def _text_at(col: pd.Series, rows: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """The text of a column of the (range-indexed) events frame at ``rows`` (missing at -1), as a
    ``str`` array; a categorical is converted at those rows only."""
    rows = np.asarray(rows, dtype=np.int64)
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = pd.array(col.cat.categories.astype("str"), dtype="str")
        cc = np.asarray(col.cat.codes, dtype=np.int64)
        return cats.take(np.where(rows >= 0, cc[np.maximum(rows, 0)] if len(cc) else -1, -1), allow_fill=True)
    return text_of(pd.Series(col.array.take(rows, allow_fill=True)))


def _categorical(results: np.ndarray, key: np.ndarray, dtype: pd.CategoricalDtype) -> pd.Categorical:
    """A categorical of ``dtype`` from per-value results (`per_value`) spread by ``key``; results that are
    not categories (``None``) are missing."""
    lut = dtype.categories.get_indexer(pd.Index(list(results), dtype=object)) if len(results) else []
    return pd.Categorical.from_codes(np.asarray(lut, dtype=np.int64)[key], dtype=dtype)


def _cause_codes(results: np.ndarray) -> np.ndarray:
    """Positions in `CAUSES` of some cause names (-1 for ``None``)."""
    return CAUSE_DTYPE.categories.get_indexer(pd.Index(list(results), dtype=object)).astype(np.int64)


def _last_wins(pos: np.ndarray) -> np.ndarray:
    """Which entries of an assignment index to keep so that of repeated positions the last one is set."""
    if len(pos) == 0:
        return np.zeros(0, dtype=np.int64)
    _, last = np.unique(pos[::-1], return_index=True)
    return np.sort(len(pos) - 1 - last)


def _segments(ev: pd.DataFrame, gap: str | pd.Timedelta) -> np.ndarray:
    """Segment id per row: one process (host, pid) without a time gap above ``gap``."""
    n = len(ev)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    host = codes(ev["host"])[0].astype(np.int64) + 1
    pid = ev["pid"].astype("Int64").to_numpy(dtype=np.int64, na_value=-1)
    low, high = min(int(pid.min()), -1), int(pid.max())
    if (int(host.max()) + 1) * (high - low + 1) < 1 << 48:
        proc = host * (high - low + 1) + (pid - low)
    else:  # pids far apart: number the processes instead
        proc = joint(host, pid)
    order = stable_order(proc)  # by process, then row
    ts = ev["timestamp"].to_numpy(dtype="datetime64[us]").view(np.int64)[order]
    valid = ts != np.iinfo(np.int64).min
    limit = pd.Timedelta(gap).value // 1000
    new = np.ones(n, dtype=bool)
    sp = proc[order]
    new[1:] = (sp[1:] != sp[:-1]) | (valid[1:] & valid[:-1] & ((ts[1:] - ts[:-1]) > limit))
    seg = np.empty(n, dtype=np.int64)
    seg[order] = np.cumsum(new)
    return seg


def _relay_name(host: str | None, ip: str | None) -> str | None:
    """The relay a line names, normalised: host name without trailing dot, else the literal address."""
    if isinstance(host, str):
        name = host.lower().strip().rstrip(".").strip("[]")
        if name:
            return name
    return ip.lower().strip("[]").removeprefix("ipv6:") if isinstance(ip, str) else None


class _Relays:
    """The ``relay_host`` / ``relay_ip`` of the events as codes, and what depends on the pair: the relay
    key that links lines, ``peer``, ``peer_domain`` and ``internal`` (computed once per distinct pair)."""

    def __init__(self, ev: pd.DataFrame, internal: InternalHosts) -> None:
        self.host, hosts = pd.factorize(ev["relay_host"], use_na_sentinel=True)
        self.ip, ips = pd.factorize(ev["relay_ip"], use_na_sentinel=True)
        self.hosts, self.ips = text_of(pd.Series(hosts)), text_of(pd.Series(ips))
        self.internal = internal
        self._known: dict[tuple[int, int], tuple] = {}
        self._names: dict[str, int] = {}

    def _pairs(self, h: np.ndarray, i: np.ndarray) -> tuple[list[tuple], np.ndarray]:
        """Per distinct (host, ip) code pair its `_pair` values, and each row's pair number."""
        key = joint(h, i)
        k = int(key.max()) + 1 if len(key) else 0
        rep = np.empty(k, dtype=np.int64)
        rep[key] = np.arange(len(key))
        return [self._pair(a, b) for a, b in zip(h[rep].tolist(), i[rep].tolist(), strict=True)], key

    def _pair(self, h: int, i: int) -> tuple:
        found = self._known.get((h, i))
        if found is None:
            host = self.hosts[h] if h >= 0 else None
            ip = self.ips[i] if i >= 0 else None
            host, ip = (None if pd.isna(v) else v for v in (host, ip))
            name = _relay_name(host, ip)
            found = self._known[(h, i)] = (
                -1 if name is None else self._names.setdefault(name, len(self._names)),
                host if host is not None else ip,
                peer_domain(host, ip),
                self.internal.is_internal(host, ip),
                len(self._known),
            )
        return found

    def keys(self, rows: np.ndarray) -> np.ndarray:
        """Per events row a code of `_relay_name` (-1 when the line names no relay)."""
        values, key = self._pairs(self.host[rows], self.ip[rows])
        return np.array([v[0] for v in values], dtype=np.int64)[key] if len(key) else key

    def columns(self, h: np.ndarray, i: np.ndarray) -> dict[str, object]:
        """``relay_host``, ``relay_ip``, ``peer``, ``peer_domain`` and ``internal`` of rows given by codes."""
        values, key = self._pairs(h, i)
        return {
            "relay_host": self.hosts.take(h, allow_fill=True),
            "relay_ip": self.ips.take(i, allow_fill=True),
            "peer": pd.array([v[1] for v in values], dtype="str").take(key),
            "peer_domain": pd.array([v[2] for v in values], dtype="str").take(key),
            "internal": pd.array([v[3] for v in values], dtype="boolean").take(key),
            "_relay": np.array([v[4] for v in values], dtype=np.int64)[key] if len(key) else key,
        }

    def table(self) -> pd.DataFrame:
        """``peer`` and ``peer_domain`` by the ``_relay`` number of the linked tables."""
        values = sorted(self._known.values(), key=lambda v: v[4])
        return pd.DataFrame(
            {
                "peer": pd.array([v[1] for v in values], dtype="str"),
                "peer_domain": pd.array([v[2] for v in values], dtype="str"),
            }
        )


def _relay_keys(ev: pd.DataFrame) -> np.ndarray:
    """Per row a code of `_relay_name` (-1 when the line names no relay)."""
    return _Relays(ev, InternalHosts.coerce(())).keys(np.arange(len(ev)))


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


def _crypto(version: pd.Series, cipher: pd.Series, bits: pd.Series, verify: pd.Series) -> dict[str, object]:
    """``verified``, ``weak`` and ``weak_reason`` from a session's verify, version, cipher and bits."""
    results, key = per_value(_weak_reasons, version, cipher, bits)
    texts = pd.array(list(results), dtype="str")
    weak = np.asarray([r != "" for r in results], dtype=bool)[key]
    known = (version.notna() | cipher.notna()).to_numpy()
    return {
        "verified": _masked(is_one_of(verify, *VERIFIED), verify.isna().to_numpy()),
        "weak": _masked(weak, ~known),
        "weak_reason": texts.take(np.where(known & weak, key, -1), allow_fill=True),
    }


def _masked(values: np.ndarray, missing: np.ndarray) -> pd.arrays.BooleanArray:
    return pd.arrays.BooleanArray(np.asarray(values, dtype=bool), np.asarray(missing, dtype=bool))


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
    causes: np.ndarray  # failure cause of reject and handshake rows (position in CAUSES, -1 elsewhere)
    relays: _Relays

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
    fail: np.ndarray  # failure cause (position in CAUSES, -1 when none)
    relay_from: np.ndarray  # per events row: the row a connect failed takes its relay from, -1 elsewhere


class _Crypto(NamedTuple):
    """The TLS parameters of each session (by session id), for the receipts and deliveries it carried."""

    version: pd.Series
    verify: pd.Series
    cipher: pd.Series
    cipher_bits: pd.Series
    verified: pd.Series
    weak: pd.Series
    weak_reason: pd.Series


def _link(events: pd.DataFrame, *, gap: str | pd.Timedelta, internal: InternalHosts) -> Linked:
    ev = events.reset_index(drop=True)
    ev.attrs = {}  # pandas deep-copies attrs at every step; the linked tables do not need them
    lines = _lines(ev, gap, internal)
    mk = _markers(lines)
    dlv = _deliveries(lines, mk)
    rcp = _receipts(lines)
    sess = _sessions(lines, mk, rcp, dlv)
    crypto = _Crypto(*(sess[c] for c in _Crypto._fields))
    markers = pd.DataFrame({"row": mk.rows, "session_id": mk.sess, "encrypted": mk.enc})
    return Linked(sess, _attach(rcp, crypto), _attach(dlv, crypto), markers, lines.relays.table())


def _lines(ev: pd.DataFrame, gap: str | pd.Timedelta, internal: InternalHosts) -> _Lines:
    kind, ruleset, direction = ev["kind"], ev["ruleset"], ev["direction"]
    summary = is_one_of(kind, "starttls")
    handshake = (
        is_one_of(kind, "tls_error")
        & is_one_of(ev["subkind"], "handshake")
        & is_one_of(direction, "server", "client")
    )
    is_session = summary | handshake
    tls_server = is_one_of(kind, "tls_reject") & is_one_of(ruleset, "tls_server")
    causes = np.full(len(ev), -1, dtype=np.int64)
    rej = np.flatnonzero(tls_server | is_one_of(ruleset, "tls_rcpt", "tls_client"))
    results, key = per_value(
        lambda rs, a, t, b: classify(None if rs == "tls_rcpt" else a, t, actual_bits=b),
        *(ev[c].iloc[rej] for c in ("ruleset", "arg1", "reject", "actual_bits")),
    )
    causes[rej] = _cause_codes(results)[key]
    causes[handshake] = CAUSES.index("handshake_failed")
    relays = _Relays(ev, internal)
    return _Lines(
        ev=ev,
        seg=_segments(ev, gap),
        sid=np.where(is_session, np.cumsum(is_session) - 1, -1),
        summary=summary,
        handshake=handshake,
        server=is_one_of(direction, "server"),
        client=is_one_of(direction, "client"),
        tls_server=tls_server,
        causes=causes,
        relays=relays,
    )


def _markers(lines: _Lines) -> _Markers:
    """Outbound: the client markers of each process, keyed by relay."""
    ev, seg, sid, tls_server = lines.ev, lines.seg, lines.sid, lines.tls_server
    try_tls = is_one_of(ev["ruleset"], "try_tls")
    cm = np.flatnonzero(((sid >= 0) & lines.client) | tls_server | try_tls)
    named = lines.relays.keys(cm)  # the relay each line names
    rkey = named.copy()
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
    rkey[follows] = named[nxt[follows]]
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
    fail[try_tls[cm]] = -1
    return _Markers(cm, rkey, sess, enc, fail, relay_from)


def _take(values: np.ndarray, idx: np.ndarray, fill: object) -> np.ndarray:
    """``values[idx]`` with ``fill`` where ``idx`` is -1 (also when ``values`` is empty)."""
    out = np.full(len(idx), fill, dtype=values.dtype)
    ok = idx >= 0
    out[ok] = values[idx[ok]]
    return out


def _deliveries(lines: _Lines, mk: _Markers) -> pd.DataFrame:
    """``to=`` lines of SMTP mailers, one row per recipient, with the marker that decided each."""
    ev, seg = lines.ev, lines.seg
    results, key = per_value(lambda m: isinstance(m, str) and m.lower() in SMTP_MAILERS, ev["mailer"])
    smtp = np.asarray(results, dtype=bool)[key] if len(key) else np.zeros(0, dtype=bool)
    dl = np.flatnonzero(is_one_of(ev["kind"], "delivery") & smtp)
    d_rkey = lines.relays.keys(dl)
    d_rkey[d_rkey < 0] = -2
    m = asof(dl, [seg[dl], d_rkey], mk.rows, [seg[mk.rows], mk.rkey])
    # one row per recipient (an empty list still gives one): the index of the exploded list is the to= row
    recipients = ev["recipients"].iloc[dl].explode()
    line = recipients.index.to_numpy()
    at = np.searchsorted(dl, line)
    m = m[at]
    d = take_rows(ev, line, _DELIVERY_EVENT_COLUMNS).reset_index(drop=True)
    d = d.assign(recipient=text_of(recipients), _line=line, _marker=_take(mk.rows, m, -1))
    # tls_rcpt: only that recipient of that queue id, in the same process
    rc = lines.ruleset("tls_rcpt")
    rcpt = np.full(len(d), -1, dtype=np.int64)
    cand = np.flatnonzero(d["qid"].isin(ev["qid"].iloc[rc].dropna()).to_numpy(dtype=bool)) if len(rc) else rc
    if len(cand):
        keys = joint(
            pd.concat([as_text(d["qid"].iloc[cand]), as_text(ev["qid"].iloc[rc])], ignore_index=True),
            pd.concat(
                [_recipient(d["recipient"].iloc[cand]), _recipient(ev["arg1"].iloc[rc])], ignore_index=True
            ).fillna(""),
        )
        r = asof(line[cand], [seg[line[cand]], keys[: len(cand)]], rc, [seg[rc], keys[len(cand) :]])
        rcpt[cand] = _take(rc, r, -1)
    d["_rcpt"] = rcpt
    return _finish_deliveries(d, lines, mk, m)


_REPLY_PREFILTER = f"(?:{_NOT_REACHED})|(?:{TLS_TEXT_HINT})"
# `_SMTP_CODE` on a stat= text alone (the texts are tested as "stat_text reply", so a code may end the text)
_SMTP_CODE_AT_END = r"(?:^|[ \t\n\r\f\v(:])[2-5][0-9][0-9](?:[ -]|$)"


def _contains(text: pd.Series, rows: np.ndarray, pattern: str, *, case: bool = True) -> np.ndarray:
    """Which of ``rows`` of a ``str`` column match ``pattern`` (missing never does), as a bool array."""
    found = text.iloc[rows].str.contains(pattern, case=case, regex=True)
    return found.fillna(False).to_numpy(dtype=bool)


def _finish_deliveries(d: pd.DataFrame, lines: _Lines, mk: _Markers, m: np.ndarray) -> pd.DataFrame:
    """Status, encryption and TLS failure of each delivery row (``m``: its marker, -1 when none)."""
    n = len(d)
    stat_text, reply = as_text(d["stat_text"]), as_text(d["reply"])
    results, key = per_value(_status_of, d["stat"])
    status = _categorical(results, key, STATUS_DTYPE)
    scode = np.asarray(status.codes)
    sent, deferred, bounced, queued = (scode == i for i in range(len(STATUS_DTYPE.categories)))
    r_hit = d["_rcpt"].to_numpy() >= 0
    has_reply = reply.notna().to_numpy()
    # The texts are read as "stat_text reply". With a reply the server answered (coded); without one only
    # stat_text is read, and few rows mention TLS or an unreachable server at all: one cheap pass finds them.
    alone = np.flatnonzero(~has_reply & stat_text.notna().to_numpy())
    candidates = alone[_contains(stat_text, alone, _REPLY_PREFILTER, case=False)]
    not_reached = np.zeros(n, dtype=bool)
    not_reached[candidates] = _contains(stat_text, candidates, _NOT_REACHED, case=False)
    hinted = np.zeros(n, dtype=bool)
    hinted[candidates] = _contains(stat_text, candidates, TLS_TEXT_HINT, case=False)
    with_reply = np.flatnonzero(has_reply)
    said = stat_text.iloc[with_reply].fillna("") + " " + reply.iloc[with_reply]
    hinted[with_reply] = said.str.contains(TLS_TEXT_HINT, case=False, regex=True).to_numpy(dtype=bool)
    # a marker decides the encryption; without one, whether a server was reached
    enc = _take(mk.enc, m, False)
    unknown = m < 0
    coded = has_reply.copy()
    ask = np.flatnonzero(~has_reply & (not_reached | (unknown & (deferred | queued) & ~r_hit)))
    coded[ask] = _contains(stat_text, ask, _SMTP_CODE_AT_END)
    lost = not_reached & ~coded
    reached = sent | coded | r_hit | (bounced & ~lost)
    enc = pd.arrays.BooleanArray(enc & ~unknown, (unknown & ~reached) | lost | queued)
    # what the texts say: our own stat= (a cached failure has no new ruleset line), or the peer's reply=;
    # only texts that mention TLS at all can name a cause
    marker_fail = _take(mk.fail, m, -1)
    fail = np.where(r_hit, _take(lines.causes, d["_rcpt"].to_numpy(), -1), marker_fail)
    src = np.where(r_hit, 0, np.where(marker_fail < 0, 2, 1))
    said_cause = np.full(n, -1, dtype=np.int64)
    asked = hinted & (fail < 0)
    ours, theirs = np.flatnonzero(asked & ~has_reply), np.flatnonzero(asked & has_reply)
    said_cause[ours] = _cause_codes(map_unique(text_cause, stat_text.iloc[ours].str.strip()))
    said_cause[theirs] = _cause_codes(
        map_unique(partial(text_cause, remote=True), reply.iloc[theirs].str.strip())
    )
    fail = np.where(fail < 0, said_cause, fail)
    src[fail < 0] = -1
    # few distinct recipients: normalise each once
    recipient, distinct = pd.factorize(d["recipient"], use_na_sentinel=True)
    domains = pd.array([_domain(r) for r in _recipient(pd.Series(distinct, dtype="str"))], dtype="str")
    sess = _take(mk.sess, m, -1)
    relays = lines.relays
    line = d["_line"].to_numpy()
    return d.assign(
        recipient_domain=domains.take(recipient, allow_fill=True),
        status=status,
        encrypted=enc,
        session_id=pd.arrays.IntegerArray(np.maximum(sess, 0), sess < 0),
        tls_failure=pd.Categorical.from_codes(fail, dtype=CAUSE_DTYPE),
        stat_text=stat_text.array,
        reply=reply.array,
        _src=pd.Categorical.from_codes(src, dtype=_SRC_DTYPE),
        **relays.columns(relays.host[line], relays.ip[line]),
    )


_SRC_DTYPE = pd.CategoricalDtype(["rcpt", "marker", "text"])


def _receipts(lines: _Lines) -> pd.DataFrame:
    """``from=`` lines, linked to the server session of their process."""
    ev, seg, sid = lines.ev, lines.seg, lines.sid
    is_session = sid >= 0
    sm = np.flatnonzero((is_session & lines.server) | is_one_of(ev["kind"], "session_end"))
    starts = is_session[sm]
    rc_rows = np.flatnonzero(is_one_of(ev["kind"], "receipt"))
    mm = asof(rc_rows, [seg[rc_rows]], sm, [seg[sm]])
    matched = _take(sm, mm, -1)
    sess = np.full(len(rc_rows), -1, dtype=np.int64)
    at_start = _take(starts, mm, False)
    sess[at_start] = sid[matched[at_start]]
    # an ended connection's state, carried for the from= of the same qid logged right after the end line
    at_end = np.flatnonzero((mm >= 0) & ~at_start)
    qid = ev["qid"].array
    ends = matched[at_end]
    same_qid = pd.Series(qid.take(ends) == qid.take(rc_rows[at_end])).fillna(False).to_numpy(dtype=bool)
    first = sm[starts]
    carried = _take(first, asof(ends, [seg[ends]], first, [seg[first]]), -1)
    take = same_qid & (carried >= 0)
    sess[at_end[take]] = sid[carried[take]]
    tls_session = lines.summary[lines.rows]  # by session id: a handshake that completed
    senc = (sess >= 0) & tls_session[np.maximum(sess, 0)] if len(tls_session) else np.zeros(len(sess), bool)
    f = take_rows(ev, rc_rows, _RECEIPT_EVENT_COLUMNS).reset_index(drop=True)
    proto = f["proto"]
    results, key = per_value(lambda p: isinstance(p, str) and p.upper() in TLS_PROTOS, proto)
    tls_proto = np.asarray(results, dtype=bool)[key] if len(key) else np.zeros(0, dtype=bool)
    # 8.15.1+ marks TLS on proto=; once a host logs any such value, its proto= is authoritative
    host = codes(f["host"])[0].astype(np.int64) + 1
    marking_host = np.bincount(host, weights=tls_proto, minlength=host.max(initial=0) + 1) > 0
    authoritative = marking_host[host] & proto.notna().to_numpy()
    enc = tls_proto | (senc & ~authoritative)
    submission = proto.isna().to_numpy() & (lines.relays.ip[rc_rows] < 0)
    linked = senc & enc
    relays = lines.relays
    peers = relays.columns(relays.host[rc_rows], relays.ip[rc_rows])
    peers["internal"] = peers["internal"] | submission
    return f.assign(
        _line=rc_rows,
        encrypted=pd.array(enc, dtype="boolean"),
        session_id=pd.arrays.IntegerArray(np.where(linked, sess, 0), ~linked),
        **peers,
    )


def _sessions(lines: _Lines, mk: _Markers, rcp: pd.DataFrame, d: pd.DataFrame) -> pd.DataFrame:
    """One row per session line, with its certificate, outcome, messages and peer."""
    ev, seg, sid, rows = lines.ev, lines.seg, lines.sid, lines.rows
    s = take_rows(ev, rows, _SESSION_EVENT_COLUMNS).reset_index(drop=True)
    # certificate lines belong to the latest session of that process and side
    side = codes(ev["direction"])[0]
    cert = np.flatnonzero(
        is_one_of(ev["kind"], "tls_cert") & (ev["cert_subject"].notna() | ev["verifymsg"].notna()).to_numpy()
    )
    c = asof(cert, [seg[cert], side[cert]], rows, [seg[rows], side[rows]])
    cert_row = np.full(len(rows), -1)
    judged, first = np.unique(c[c >= 0], return_index=True)  # cert rows are in order: the first of each
    cert_row[judged] = cert[c >= 0][first]
    # outcome: failed handshake, or a policy reject on the session (client: tls_server; server: tls_client)
    cause = np.where(lines.handshake[rows], CAUSES.index("handshake_failed"), -1)
    reject_row = np.full(len(rows), -1)
    rej_on = np.flatnonzero(lines.tls_server[mk.rows] & mk.enc & (mk.sess >= 0))
    rej_on = rej_on[_last_wins(mk.sess[rej_on])]
    cause[mk.sess[rej_on]] = lines.causes[mk.rows[rej_on]]
    reject_row[mk.sess[rej_on]] = mk.rows[rej_on]
    tc = lines.ruleset("tls_client")
    srv = rows[lines.server[rows] & ~lines.handshake[rows]]
    t = asof(tc, [seg[tc]], srv, [seg[srv]])
    tc, t = tc[t >= 0], t[t >= 0]
    keep = _last_wins(sid[srv[t]])
    pos = sid[srv[t[keep]]]
    cause[pos] = lines.causes[tc[keep]]
    reject_row[pos] = tc[keep]
    error = pd.Series(_text_at(ev["error"], rows)).where(
        reject_row < 0, pd.Series(_text_at(ev["reject"], reject_row))
    )
    linked_ids = np.concatenate([f["session_id"].dropna().to_numpy(dtype=np.int64) for f in (rcp, d)])
    # connect failed: relay from the tls_server line that follows it
    relays = lines.relays
    relay_row = np.where(mk.relay_from[rows] >= 0, mk.relay_from[rows], rows)
    host, ip = relays.host[relay_row], relays.ip[relay_row]
    # a client summary names only the host it connected to; the to= lines it carried give the address
    d_sess = d["session_id"].to_numpy(dtype=np.int64, na_value=-1)
    d_ip = relays.ip[d["_line"].to_numpy()]
    ok = (d_sess >= 0) & (d_ip >= 0)
    carried, first = np.unique(d_sess[ok], return_index=True)
    address = np.full(len(rows), -1)
    address[carried] = d_ip[ok][first]
    ip = np.where(ip >= 0, ip, address)
    out = s.assign(
        _line=rows,
        session_id=sid[rows].astype(np.int64),
        start=ev["timestamp"].array.take(rows),
        direction=_directions(ev["direction"].iloc[rows]),
        outcome=pd.Categorical.from_codes(np.where(cause >= 0, 1, 0), dtype=OUTCOME_DTYPE),
        cause=pd.Categorical.from_codes(cause, dtype=CAUSE_DTYPE),
        error=error.array,
        messages=pd.array(np.bincount(linked_ids, minlength=len(rows)), dtype="Int64"),
        cert_subject=_text_at(ev["cert_subject"], cert_row),
        cert_issuer=_text_at(ev["cert_issuer"], cert_row),
        verifymsg=_text_at(ev["verifymsg"], cert_row),
        **relays.columns(host, ip),
    )
    return out.assign(**_crypto(out["version"], out["cipher"], out["cipher_bits"], out["verify"]))


def _directions(col: pd.Series) -> pd.Categorical:
    """Our role as `DIRECTION_DTYPE` (other values missing)."""
    results, key = per_value(lambda v: v, col)
    return _categorical(results, key, DIRECTION_DTYPE)


def _attach(frame: pd.DataFrame, crypto: _Crypto) -> pd.DataFrame:
    """Copy the linked session's version/verify/cipher/bits (and what follows from them) onto receipt or
    delivery rows that were encrypted."""
    sess = frame["session_id"].to_numpy(dtype=np.int64, na_value=-1)
    use = frame["encrypted"].fillna(False).to_numpy(dtype=bool) & (sess >= 0)
    at = np.where(use, sess, -1)
    return frame.assign(
        **{name: col.array.take(at, allow_fill=True) for name, col in crypto._asdict().items()}
    )


def _public(frame: pd.DataFrame, columns: list[str], time: str) -> pd.DataFrame:
    """The public columns, rows in time order (lines of one second keep their log order)."""
    frame = frame[[c for c in columns if c in frame.columns]]
    ts = frame[time]
    if ts.notna().all() and ts.is_monotonic_increasing:
        return frame.reset_index(drop=True)
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
