"""Outbound delivery attempts: ``to=`` lines of SMTP mailers, one row per recipient, with the client marker
that decided their encryption, their status and the cause of a TLS refusal.

Within a segment the latest marker of the same relay before a ``to=`` line (`tlslog.connections.markers`)
decides it; a ``ruleset=tls_rcpt`` reject of that queue id and recipient decides that one recipient.
"""

from __future__ import annotations

import re
from functools import partial

import numpy as np
import pandas as pd

from .causes import TLS_TEXT_HINT, on_session, text_cause
from .connections import Lines, Markers, cause_codes
from .linked import CAUSE_DTYPE, STATUS_DTYPE
from .vectors import (
    as_text,
    asof,
    categorical,
    is_one_of,
    joint,
    map_unique,
    per_value,
    series_at,
    take_or,
    text_at,
    text_of,
)

__all__ = ["SMTP_MAILERS", "SRC_DTYPE", "deliveries"]

#: Mailers whose ``to=`` lines are outbound SMTP delivery attempts.
SMTP_MAILERS = frozenset({"esmtp", "smtp", "smtp8", "dsmtp", "relay"})
#: Where a delivery's ``tls_failure`` came from: its ``tls_rcpt`` reject, its marker, or the texts.
SRC_DTYPE = pd.CategoricalDtype(["rcpt", "marker", "text"])

# These stat= texts mean no server was reached. (ASCII classes, not \s and \d: pandas runs those through
# Python's re instead of pyarrow.)
_NOT_REACHED = (
    r"Connection refused|Connection timed out|Name server timeout|Host unknown|host not found|"
    r"No route to host|Network is unreachable|Host is down|No such host|Temporary failure in name resolution"
)
_REPLY_PREFILTER = f"(?:{_NOT_REACHED})|(?:{TLS_TEXT_HINT})"
# An SMTP reply code in a stat= text means a server answered (the texts are tested as "stat_text reply",
# so a code may end the text).
_SMTP_CODE_AT_END = r"(?:^|[ \t\n\r\f\v(:])[2-5][0-9][0-9](?:[ -]|$)"
_DOMAIN = re.compile(r"@([^@]+)$")


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


def _contains(text: pd.Series, pattern: str, *, case: bool = True) -> np.ndarray:
    """Which texts match ``pattern`` (missing never does), as a bool array."""
    return text.str.contains(pattern, case=case, regex=True).fillna(False).to_numpy(dtype=bool)


def deliveries(lines: Lines, mk: Markers) -> pd.DataFrame:
    """``to=`` lines of SMTP mailers, one row per recipient, with the marker that decided each (the kept
    columns of `tlslog.linked.Linked`, before the session's crypto is attached)."""
    ev, seg = lines.ev, lines.seg
    results, key = per_value(lambda m: isinstance(m, str) and m.lower() in SMTP_MAILERS, ev["mailer"])
    smtp = np.asarray(results, dtype=bool)[key] if len(key) else np.zeros(0, dtype=bool)
    dl = np.flatnonzero(is_one_of(ev["kind"], "delivery") & smtp)
    d_rkey = lines.relays.keys(dl)
    d_rkey[d_rkey < 0] = -2
    m = asof(dl, [seg[dl], d_rkey], mk.rows, [seg[mk.rows], mk.rkey])
    # one row per recipient (an empty list still gives one): the index of the exploded list is the to= row
    recipients = series_at(ev["recipients"], dl).explode()
    line = recipients.index.to_numpy()
    m = m[np.searchsorted(dl, line)]
    recipient = pd.Series(text_of(recipients))
    # tls_rcpt: only that recipient of that queue id, in the same process
    rc = lines.ruleset("tls_rcpt")
    rcpt = np.full(len(line), -1, dtype=np.int64)
    if len(rc):
        near = np.flatnonzero(np.isin(seg[line], seg[rc]))  # (a reject never matches in another segment)
        qid = pd.Series(text_at(ev["qid"], line[near]))
        rc_qid = series_at(ev["qid"], rc)
        same = qid.isin(rc_qid.dropna()).to_numpy(dtype=bool)
        cand = near[same]
        keys = joint(
            pd.concat([qid[same], as_text(rc_qid)], ignore_index=True),
            pd.concat(
                [_recipient(recipient.iloc[cand]), _recipient(series_at(ev["arg1"], rc))], ignore_index=True
            ).fillna(""),
        )
        r = asof(line[cand], [seg[line[cand]], keys[: len(cand)]], rc, [seg[rc], keys[len(cand) :]])
        rcpt[cand] = take_or(rc, r, -1)
    relays = lines.relays
    return pd.DataFrame(
        {
            "timestamp": ev["timestamp"].array.take(line),
            **_recipients(recipient),
            **_outcomes(ev, line, rcpt, lines, mk, m),
            "_line": line.astype(np.int32),
            "_marker": take_or(mk.rows, m, -1).astype(np.int32),
            "_rcpt": rcpt.astype(np.int32),
            **relays.columns(relays.host[line], relays.ip[line]),
        },
        copy=False,
    )


def _recipients(recipient: pd.Series) -> dict[str, pd.Categorical]:
    """``recipient`` and ``recipient_domain`` as categoricals (few distinct values: each normalised once)."""
    codes, distinct = pd.factorize(recipient, use_na_sentinel=True)
    domains = pd.array([_domain(r) for r in _recipient(pd.Series(distinct, dtype="str"))], dtype="str")
    domain_codes, domain_names = pd.factorize(domains, use_na_sentinel=True)
    return {
        "recipient": pd.Categorical.from_codes(codes, categories=distinct),
        "recipient_domain": pd.Categorical.from_codes(
            take_or(domain_codes.astype(np.int64), codes, -1), categories=domain_names
        ),
    }


def _outcomes(
    ev: pd.DataFrame, line: np.ndarray, rcpt: np.ndarray, lines: Lines, mk: Markers, m: np.ndarray
) -> dict[str, object]:
    """Status, encryption, session and TLS failure of the deliveries at events rows ``line`` (``m``: the
    marker of each, ``rcpt``: its tls_rcpt row, -1 when none)."""
    n = len(line)

    def text(col: str, at: np.ndarray) -> pd.Series:  # the texts of some of the deliveries
        return pd.Series(text_at(ev[col], line[at]))

    results, key = per_value(_status_of, ev["stat"].iloc[line])
    status = categorical(results, key, STATUS_DTYPE)
    scode = np.asarray(status.codes)
    sent, deferred, bounced, queued = (scode == i for i in range(len(STATUS_DTYPE.categories)))
    r_hit = rcpt >= 0
    has_reply = ev["reply"].notna().to_numpy()[line]
    # The texts are read as "stat_text reply". With a reply the server answered (coded); without one only
    # stat_text is read, and few rows mention TLS or an unreachable server at all: one cheap pass over the
    # events column (no copy of its texts) finds them.
    alone = np.flatnonzero(~has_reply & ev["stat_text"].notna().to_numpy()[line])
    candidates = alone[_contains(as_text(ev["stat_text"]), _REPLY_PREFILTER, case=False)[line[alone]]]
    cand_text = text("stat_text", candidates)
    not_reached = np.zeros(n, dtype=bool)
    not_reached[candidates] = _contains(cand_text, _NOT_REACHED, case=False)
    hinted = np.zeros(n, dtype=bool)
    hinted[candidates] = _contains(cand_text, TLS_TEXT_HINT, case=False)
    with_reply = np.flatnonzero(has_reply)
    said = text("stat_text", with_reply).fillna("") + " " + text("reply", with_reply)
    hinted[with_reply] = said.str.contains(TLS_TEXT_HINT, case=False, regex=True).to_numpy(dtype=bool)
    unknown = m < 0
    coded = has_reply.copy()
    ask = np.flatnonzero(~has_reply & (not_reached | (unknown & (deferred | queued) & ~r_hit)))
    coded[ask] = _contains(text("stat_text", ask), _SMTP_CODE_AT_END)
    lost = not_reached & ~coded
    reached = sent | coded | r_hit | (bounced & ~lost)
    # what the texts say: our own stat= (a cached failure has no new ruleset line), or the peer's reply=;
    # only texts that mention TLS at all can name a cause
    marker_fail = take_or(mk.fail, m, -1)
    fail = np.where(r_hit, take_or(lines.causes, rcpt, -1), marker_fail)
    src = np.where(r_hit, 0, np.where(marker_fail < 0, 2, 1))
    said_cause = np.full(n, -1, dtype=np.int64)
    asked = hinted & (fail < 0)
    ours, theirs = np.flatnonzero(asked & ~has_reply), np.flatnonzero(asked & has_reply)
    said_cause[ours] = cause_codes(map_unique(text_cause, text("stat_text", ours).str.strip()))
    remote = partial(text_cause, remote=True)
    said_cause[theirs] = cause_codes(map_unique(remote, text("reply", theirs).str.strip()))
    fail = np.where(fail < 0, said_cause, fail)
    src[fail < 0] = -1
    # a marker decides the encryption; without one, a refusal only a session can give, or else whether a
    # server was reached (not at all: unknown)
    refused = np.flatnonzero(unknown & (fail >= 0))
    by_session = np.zeros(n, dtype=bool)
    if len(
        refused
    ):  # by the cause and the words of the tls_rcpt reject, else the peer's reply, else our stat=
        words = pd.Series(text_at(ev["reject"], rcpt[refused]))
        words = words.fillna(pd.Series(text_at(ev["reply"], np.where(has_reply[refused], line[refused], -1))))
        words = words.fillna(pd.Series(text("stat_text", refused)))
        cause = pd.Series(pd.Categorical.from_codes(fail[refused], dtype=CAUSE_DTYPE))
        by_session[refused] = map_unique(on_session, cause, words).astype(bool)
    enc = take_or(mk.enc, m, False) | by_session
    unknown &= ~by_session
    sess = take_or(mk.sess, m, -1)
    return {
        "status": status,
        "encrypted": pd.arrays.BooleanArray(enc & ~unknown, (unknown & ~reached) | lost | queued),
        "session_id": pd.arrays.IntegerArray(np.maximum(sess, 0), sess < 0),
        "tls_failure": pd.Categorical.from_codes(fail, dtype=CAUSE_DTYPE),
        "_src": pd.Categorical.from_codes(src, dtype=SRC_DTYPE),
    }
