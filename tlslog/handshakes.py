"""TLS sessions: one row per handshake (``STARTTLS=server|client``) or failed one, with its certificate
line, outcome (a policy reject right after it), relay, crypto judgement and the messages it carried; and
the copy of a session's crypto onto the receipts and deliveries it carried.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from .causes import CAUSES
from .connections import Lines, Markers
from .crypto import weakness
from .linked import CAUSE_DTYPE, DIRECTION_DTYPE, OUTCOME_DTYPE
from .vectors import asof, categorical, codes, is_one_of, last_wins, per_value, take_or, values_at

__all__ = ["VERIFIED", "Crypto", "attach", "sessions"]

VERIFIED = frozenset({"OK", "TRUSTED"})
# the session columns the crypto judgement reads (the public table takes them from the events again)
_CRYPTO_EVENT_COLUMNS = ("version", "verify", "cipher", "cipher_bits")


class Crypto(NamedTuple):
    """The TLS parameters of each session (by session id), for the receipts and deliveries it carried."""

    version: pd.api.extensions.ExtensionArray
    verify: pd.api.extensions.ExtensionArray
    cipher: pd.api.extensions.ExtensionArray
    cipher_bits: pd.api.extensions.ExtensionArray
    verified: pd.arrays.BooleanArray
    weak: pd.arrays.BooleanArray
    weak_reason: pd.Categorical


def _weak_reasons(version: str | None, cipher: str | None, bits: int | None) -> str:
    return ", ".join(weakness(version, cipher, bits))


def _masked(values: np.ndarray, missing: np.ndarray) -> pd.arrays.BooleanArray:
    return pd.arrays.BooleanArray(np.asarray(values, dtype=bool), np.asarray(missing, dtype=bool))


def _crypto(ev: pd.DataFrame, rows: np.ndarray) -> Crypto:
    """The crypto of the sessions at events ``rows``: ``verified``, ``weak`` and ``weak_reason`` (a
    categorical) from their verify, version, cipher and bits."""
    taken = {c: values_at(ev[c], rows) for c in _CRYPTO_EVENT_COLUMNS}
    version, verify, cipher, bits = (pd.Series(taken[c]) for c in _CRYPTO_EVENT_COLUMNS)
    results, key = per_value(_weak_reasons, version, cipher, bits)
    weak = np.asarray([r != "" for r in results], dtype=bool)[key]
    known = (version.notna() | cipher.notna()).to_numpy()
    reason, reasons = pd.factorize(pd.array(list(results), dtype="str"))
    return Crypto(
        **taken,
        verified=_masked(is_one_of(verify, *VERIFIED), verify.isna().to_numpy()),
        weak=_masked(weak, ~known),
        weak_reason=pd.Categorical.from_codes(
            take_or(reason.astype(np.int64), np.where(known & weak, key, -1), -1), categories=reasons
        ),
    )


def _directions(col: pd.Series) -> pd.Categorical:
    """Our role as `DIRECTION_DTYPE` (other values missing)."""
    results, key = per_value(lambda v: v, col)
    return categorical(results, key, DIRECTION_DTYPE)


def _cert_rows(lines: Lines) -> np.ndarray:
    """Per session the events row of its certificate line (-1: none): the first after it in that process
    and side."""
    ev, seg, rows = lines.ev, lines.seg, lines.rows
    side = codes(ev["direction"])[0]
    cert = np.flatnonzero(
        is_one_of(ev["kind"], "tls_cert") & (ev["cert_subject"].notna() | ev["verifymsg"].notna()).to_numpy()
    )
    c = asof(cert, [seg[cert], side[cert]], rows, [seg[rows], side[rows]])
    cert_row = np.full(len(rows), -1, dtype=np.int32)
    judged, first = np.unique(c[c >= 0], return_index=True)  # cert rows are in order: the first of each
    cert_row[judged] = cert[c >= 0][first]
    return cert_row


def _outcomes(lines: Lines, mk: Markers) -> tuple[np.ndarray, np.ndarray]:
    """Per session its failure cause (position in `CAUSES`, -1: ok) and the events row of the policy reject
    that refused it (-1: none): a failed handshake, or a reject right after it (client: ``tls_server``;
    server: ``tls_client``)."""
    seg, sid, rows = lines.seg, lines.sid, lines.rows
    cause = np.where(lines.handshake[rows], CAUSES.index("handshake_failed"), -1).astype(np.int8)
    reject_row = np.full(len(rows), -1, dtype=np.int32)
    rej_on = np.flatnonzero(lines.tls_server[mk.rows] & mk.enc & (mk.sess >= 0))
    rej_on = rej_on[last_wins(mk.sess[rej_on])]
    cause[mk.sess[rej_on]] = lines.causes[mk.rows[rej_on]]
    reject_row[mk.sess[rej_on]] = mk.rows[rej_on]
    tc = lines.ruleset("tls_client")
    srv = rows[lines.server[rows] & ~lines.handshake[rows]]
    t = asof(tc, [seg[tc]], srv, [seg[srv]])
    tc, t = tc[t >= 0], t[t >= 0]
    keep = last_wins(sid[srv[t]])
    pos = sid[srv[t[keep]]]
    cause[pos] = lines.causes[tc[keep]]
    reject_row[pos] = tc[keep]
    return cause, reject_row


def _relay_rows(lines: Lines, mk: Markers, d: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per session the events rows that name its relay host and address (-1: none)."""
    relays, rows = lines.relays, lines.rows
    # connect failed: relay from the tls_server line that follows it
    relay_from = mk.relay_from[rows]
    host_row = np.where(relay_from >= 0, relay_from, rows).astype(np.int32)
    # a client summary names only the host it connected to; the to= lines it carried give the address
    d_sess = d["session_id"].to_numpy(dtype=np.int64, na_value=-1)
    d_line = d["_line"].to_numpy()
    ok = (d_sess >= 0) & (relays.ip[d_line] >= 0)
    carried, first = np.unique(d_sess[ok], return_index=True)
    ip_row = np.full(len(rows), -1, dtype=np.int32)
    ip_row[carried] = d_line[ok][first]
    named = relays.ip[host_row] >= 0
    ip_row[named] = host_row[named]
    return host_row, ip_row


def sessions(lines: Lines, mk: Markers, rcp: pd.DataFrame, d: pd.DataFrame) -> tuple[pd.DataFrame, Crypto]:
    """One row per session line, with its certificate, outcome, messages and peer (the kept columns of
    `tlslog.linked.Linked`), and the crypto of each."""
    ev, rows, relays = lines.ev, lines.rows, lines.relays
    cause, reject_row = _outcomes(lines, mk)
    linked_ids = np.concatenate([f["session_id"].dropna().to_numpy(dtype=np.int64) for f in (rcp, d)])
    messages = pd.array(np.bincount(linked_ids, minlength=len(rows)), dtype="Int64")
    del linked_ids
    host_row, ip_row = _relay_rows(lines, mk, d)
    crypto = _crypto(ev, rows)
    table = pd.DataFrame(
        {
            "_line": rows.astype(np.int32),
            "session_id": lines.sid[rows].astype(np.int64),
            "start": ev["timestamp"].array.take(rows),
            "direction": _directions(ev["direction"].iloc[rows]),
            "outcome": pd.Categorical.from_codes((cause >= 0).astype(np.int8), dtype=OUTCOME_DTYPE),
            "cause": pd.Categorical.from_codes(cause, dtype=CAUSE_DTYPE),
            "messages": messages,
            "verified": crypto.verified,
            "weak": crypto.weak,
            "weak_reason": crypto.weak_reason,
            # events rows of the texts the public table quotes (-1: none)
            "_cert": _cert_rows(lines),
            "_reject": reject_row,
            "_host_row": host_row,
            "_ip_row": ip_row,
            **relays.columns(relays.host[host_row], take_or(relays.ip, ip_row, -1)),
        },
        copy=False,
    )
    return table, crypto


def attach(frame: pd.DataFrame, crypto: Crypto) -> pd.DataFrame:
    """Copy the linked session's version/verify/cipher/bits (and what follows from them) onto receipt or
    delivery rows that were encrypted."""
    sess = frame["session_id"].to_numpy(dtype=np.int64, na_value=-1)
    use = frame["encrypted"].fillna(False).to_numpy(dtype=bool) & (sess >= 0)
    at = np.where(use, sess, -1)
    return frame.assign(**{name: col.take(at, allow_fill=True) for name, col in crypto._asdict().items()})
