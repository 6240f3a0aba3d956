"""Linked tables: TLS sessions, receipts (inbound messages) and deliveries (outbound attempts).

Most TLS lines carry no queue id, so they are tied to ``from=`` / ``to=`` lines through the process that
wrote them (reference section 7.3): within a run of one process's lines (`tlslog.connections`) the latest
TLS line before a ``from=`` (inbound, `tlslog.inbound`) or before a ``to=`` of the same relay (outbound,
`tlslog.outbound`) decides its encryption. `link` does it once per events frame and keeps the result in
compact form (`tlslog.linked`); `sessions`, `receipts` and `deliveries` spell out the public tables.

>>> import tlslog
>>> events = tlslog.read_log("sample_logs/", year=2026)            # doctest: +SKIP
>>> tlslog.deliveries(events).groupby("peer_domain")["encrypted"].mean()  # doctest: +SKIP
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import TypeVar

import pandas as pd

from . import handshakes, inbound, outbound
from .connections import lines, markers
from .linked import (
    CAUSE_DTYPE,
    DELIVERY_COLUMNS,
    DIRECTION_DTYPE,
    OUTCOME_DTYPE,
    RECEIPT_COLUMNS,
    SESSION_COLUMNS,
    STATUS_DTYPE,
    Linked,
    public,
    spelled,
)
from .peers import InternalHosts
from .relays import peer_columns

__all__ = [
    "CAUSE_DTYPE",
    "DELIVERY_COLUMNS",
    "DIRECTION_DTYPE",
    "OUTCOME_DTYPE",
    "RECEIPT_COLUMNS",
    "SESSION_COLUMNS",
    "STATUS_DTYPE",
    "Linked",
    "deliveries",
    "internal_key",
    "link",
    "peer_columns",
    "per_frame",
    "receipts",
    "sessions",
    "spelled",
]

T = TypeVar("T")

# Every public table and metric links the same events frame again; a report asks for several of them, so the
# last few results are kept per frame object (its identity and shape; a frame that is gone is never matched).
_MEMO: dict[tuple, tuple[weakref.ref, Linked]] = {}
_MEMO_SIZE = 4


def per_frame(memo: dict, events: pd.DataFrame, key: tuple, compute: Callable[[], T], size: int = 4) -> T:
    """``compute()`` once per events frame object and ``key``, the last ``size`` results kept in ``memo``.

    The frame's identity and shape are part of the key, and a hit must still be that very object (an id is
    reused once a frame is gone). A result is dropped when its frame is. Callers must not change a result
    in place.
    """
    full = (id(events), events.shape, tuple(events.columns), *key)
    hit = memo.get(full)
    if hit is not None and hit[0]() is events:
        return hit[1]
    value = compute()
    if len(memo) >= size:
        memo.pop(next(iter(memo)))

    def forget(ref: weakref.ref) -> None:
        if memo.get(full, (None,))[0] is ref:
            del memo[full]

    memo[full] = (weakref.ref(events, forget), value)
    return value


def internal_key(internal: InternalHosts) -> tuple:
    """What identifies a set of internal hosts in a memo key."""
    return (internal.names, internal.suffixes, internal.networks)


def link(events: pd.DataFrame, *, gap: str | pd.Timedelta = "10min", internal: Iterable[str] = ()) -> Linked:
    """Link the lines of an events frame into sessions, receipts and deliveries, in compact form.

    The public `sessions`, `receipts` and `deliveries` spell these out (`tlslog.linked.spelled` gives any
    of their columns for some rows). Results are memoised per frame object, so calling several tables and
    metrics on one frame links once.

    >>> linked = link(tlslog.read_log("sample_logs/"))              # doctest: +SKIP
    >>> linked.deliveries[["_line", "encrypted", "tls_failure"]]      # doctest: +SKIP
    """
    internal = InternalHosts.coerce(internal)
    key = (str(pd.Timedelta(gap)), internal_key(internal))
    return per_frame(_MEMO, events, key, lambda: _link(events, gap=gap, internal=internal), size=_MEMO_SIZE)


def _link(events: pd.DataFrame, *, gap: str | pd.Timedelta, internal: InternalHosts) -> Linked:
    ev = events.reset_index(drop=True)
    ev.attrs = {}  # pandas deep-copies attrs at every step; the linked tables do not need them
    found = lines(ev, gap, internal)
    mk = markers(found)
    dlv = outbound.deliveries(found, mk)
    rcp = inbound.receipts(found)
    sess, crypto = handshakes.sessions(found, mk, rcp, dlv)
    mk_table = pd.DataFrame({"row": mk.rows, "session_id": mk.sess, "encrypted": mk.enc})
    relays = found.relays.table()
    del found, mk  # the per-line arrays go before the crypto is copied
    return Linked(sess, handshakes.attach(rcp, crypto), handshakes.attach(dlv, crypto), mk_table, relays)


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
    return public(link(events, gap=gap, internal=internal), "sessions", events)


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
    return public(link(events, gap=gap, internal=internal), "receipts", events)


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
    return public(link(events, gap=gap, internal=internal), "deliveries", events)
