"""The linked tables: their public columns and dtypes, the compact form `link` keeps (`Linked`), and the
public frames spelled out of it.

A linked table keeps what the linking computed, the events row of each of its rows (``_line``) and the
events rows of the texts it quotes; the texts themselves (queue ids, addresses, relay names, certificates)
are taken from the events frame only when a public table or a failure row asks for them. So the tables a
report keeps in memory hold numbers, and a figure that needs no text copies none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from .causes import CAUSES
from .vectors import take_or, text_at, text_of, values_at

__all__ = [
    "CAUSE_DTYPE",
    "DELIVERY_COLUMNS",
    "DIRECTION_DTYPE",
    "OUTCOME_DTYPE",
    "RECEIPT_COLUMNS",
    "SESSION_COLUMNS",
    "STATUS_DTYPE",
    "Linked",
    "public",
    "spelled",
]

CAUSE_DTYPE = pd.CategoricalDtype(CAUSES)
STATUS_DTYPE = pd.CategoricalDtype(["sent", "deferred", "bounced", "queued"])
OUTCOME_DTYPE = pd.CategoricalDtype(["ok", "failed"])
DIRECTION_DTYPE = pd.CategoricalDtype(["server", "client"])

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
    """The three linked tables in compact form, `markers` and `relays`.

    A table holds the columns the linking computed (``encrypted``, ``session_id``, the session's
    ``version``/``cipher``..., ``internal``, ``status``...), ``timestamp`` (sessions: ``start``) and private
    columns (names starting with ``_``); `spelled` gives any of its public columns. ``weak_reason``,
    ``recipient`` and ``recipient_domain`` are kept as categoricals (public: ``str``).

    ``_line`` is the events row of a receipt/delivery/session, ``_marker`` the events row of the TLS line
    that decided a delivery (``STARTTLS=client``, ``connect failed``, ``ruleset=tls_server``/``try_tls``),
    ``_rcpt`` the ``ruleset=tls_rcpt`` row that deferred one recipient, ``_src`` where ``tls_failure``
    came from (``rcpt``, ``marker``, ``text``). A session's ``_cert`` is the row of its certificate line,
    ``_reject`` that of the policy reject whose text is its ``error``, ``_host_row`` / ``_ip_row`` those
    that name its relay (-1: none). ``markers`` has one row per client-side marker: ``row`` (events row),
    ``session_id`` (-1 when none) and ``encrypted``. Every table's ``_relay`` numbers its (``relay_host``,
    ``relay_ip``) pair: ``relays`` has the ``peer`` and ``peer_domain`` of each number. Row and relay
    numbers are int32.
    """

    sessions: pd.DataFrame
    receipts: pd.DataFrame
    deliveries: pd.DataFrame
    markers: pd.DataFrame
    relays: pd.DataFrame


class _Spelling(NamedTuple):
    """How a table's public columns that it does not keep come from the events frame."""

    raw: tuple[str, ...]  # events columns as they are, at the row ``_line``
    # str columns: (events column, row column) alternatives, the first whose row is not -1 giving the text
    text: dict[str, tuple[tuple[str, str], ...]]
    time: str  # the column the public table is ordered by


def _at_line(*names: str) -> dict[str, tuple[tuple[str, str], ...]]:
    return {name: ((name, "_line"),) for name in names}


_SPELLING = {
    "sessions": _Spelling(
        raw=("host", "program", "pid", "version", "verify", "cipher", "alg_bits", "cipher_bits"),
        text={
            "error": (("reject", "_reject"), ("error", "_line")),
            "cert_subject": (("cert_subject", "_cert"),),
            "cert_issuer": (("cert_issuer", "_cert"),),
            "verifymsg": (("verifymsg", "_cert"),),
            "relay_host": (("relay_host", "_host_row"),),
            "relay_ip": (("relay_ip", "_ip_row"),),
        },
        time="start",
    ),
    "receipts": _Spelling(
        raw=("host", "pid", "qid", "sender", "size", "nrcpts", "proto", "daemon", "msgid"),
        text=_at_line("relay_host", "relay_ip"),
        time="timestamp",
    ),
    "deliveries": _Spelling(
        raw=("host", "pid", "qid", "mailer", "dsn", "stat", "error"),
        text=_at_line("stat_text", "reply", "relay_host", "relay_ip"),
        time="timestamp",
    ),
}
_COLUMNS = {"sessions": SESSION_COLUMNS, "receipts": RECEIPT_COLUMNS, "deliveries": DELIVERY_COLUMNS}
# kept as categoricals (few distinct values), public as str
_CODED = frozenset({"weak_reason", "recipient", "recipient_domain"})


def spelled(
    linked: Linked, kind: str, events: pd.DataFrame, columns: Sequence[str], at: np.ndarray | None = None
) -> pd.DataFrame:
    """Some public (or kept) columns of the linked table ``kind`` (``sessions``, ``receipts``,
    ``deliveries``), at positions ``at`` of that table (all rows when None; -1: a missing row).

    ``events`` is the frame that was linked; its columns that it lacks are left out.
    """
    table, spec = getattr(linked, kind), _SPELLING[kind]

    def rows(name: str) -> np.ndarray:  # what a row column holds at the positions asked
        values = table[name].to_numpy()
        return values if at is None else take_or(values, at, -1)

    out: dict[str, object] = {}
    for name in columns:
        if name in table.columns:
            kept = table[name]  # (a Series: pandas tracks what a public table shares with the memoised one)
            kept = kept if at is None else pd.Series(pd.api.extensions.take(kept.array, at, allow_fill=True))
            out[name] = text_of(kept) if name in _CODED else kept
        elif name in spec.text:
            *first, (col, by) = spec.text[name]
            text = pd.Series(text_at(events[col], rows(by)))
            for col, by in reversed(first):
                where = rows(by)
                text = text.where(where < 0, pd.Series(text_at(events[col], where)))
            out[name] = text.array
        elif name in ("peer", "peer_domain"):
            out[name] = linked.relays[name].array.take(rows("_relay"), allow_fill=True)
        elif name in spec.raw and name in events.columns:
            out[name] = values_at(events[name], rows("_line"))
    return pd.DataFrame(out, copy=False)


def public(linked: Linked, kind: str, events: pd.DataFrame) -> pd.DataFrame:
    """The public table ``kind``, rows in time order (lines of one second keep their log order)."""
    ts = getattr(linked, kind)[_SPELLING[kind].time]
    at = None
    if not (ts.notna().all() and ts.is_monotonic_increasing):
        at = ts.reset_index(drop=True).sort_values(kind="stable", na_position="first").index.to_numpy()
    return spelled(linked, kind, events, _COLUMNS[kind], at)
