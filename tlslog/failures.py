"""TLS-caused problems: one row per refusal or failed handshake, with the mail it held up.

Sources, client side (outbound): ``ruleset=tls_server`` rejects (with the queue ids and recipients of
the ``to=`` lines they decided, including later attempts that reused the cached failure), a
``connect failed`` not followed by a ruleset line, ``ruleset=tls_rcpt`` rejects (one recipient), and
``to=`` lines whose reply shows a TLS refusal by the remote side (``454 4.7.0 no authentication
requested``). Server side (inbound): ``accept failed`` and ``ruleset=tls_client`` rejects (outcome
``refused``), and ``check_mail``/``check_rcpt`` rejects with a TLS text (``authentication required``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

from .causes import CAUSES, EXPLANATIONS, classify, result_type, text_cause
from .linking import CAUSE_DTYPE, DIRECTION_DTYPE, internal_key, link, per_frame, spelled
from .peers import InternalHosts
from .relays import peer_columns
from .vectors import as_text, is_one_of, map_unique, series_at, take_rows, text_of

OUTCOME_DTYPE = pd.CategoricalDtype(["deferred", "bounced", "sent", "refused", "unknown"])
LIST_DTYPE = pd.ArrowDtype(pa.list_(pa.string()))
FAILURE_COLUMNS = [
    "timestamp",
    "direction",
    "host",
    "pid",
    "peer",
    "peer_domain",
    "cause",
    "result_type",
    "verify",
    "required_bits",
    "actual_bits",
    "reply_code",
    "reject",
    "error",
    "qids",
    "recipients",
    "outcome",
    "explanation",
    "internal",
]
# the events columns a failure row built from a ruleset or handshake line reads
_LINE_COLUMNS = [
    "kind",
    "timestamp",
    "host",
    "pid",
    "relay_host",
    "relay_ip",
    "error",
    "ruleset",
    "arg1",
    "reject",
    "reply_code",
    "required_bits",
    "actual_bits",
]
# the deliveries columns a failure row built from a refusal in the texts reads
_TEXT_COLUMNS = [
    "timestamp",
    "host",
    "pid",
    "peer",
    "peer_domain",
    "error",
    "internal",
    "reply",
    "stat_text",
    "tls_failure",
]
_CODE = r"^\s*(?P<code>[245]\d\d)\b"
_BITS = r"too weak (?P<actual>\d+) less than (?P<required>\d+)"


_STATUS = ("sent", "deferred", "bounced", "queued")


class _Lists:
    """The ``qids`` / ``recipients`` of the failure rows, gathered as (row, value) pairs while the parts are
    built; `column` turns them into one list column (sorted distinct values per row)."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.values: list[pd.api.extensions.ExtensionArray] = []
        self.start = 0  # first row of the part being built

    def add(self, owner: np.ndarray, values: pd.Series) -> None:
        """Values for rows ``owner`` (positions in the part being built; -1: belongs to no row)."""
        keep = np.flatnonzero((np.asarray(owner) >= 0) & values.notna().to_numpy())
        self.rows.append(np.asarray(owner)[keep] + self.start)
        self.values.append(text_of(values.iloc[keep]))

    def column(self, n: int) -> pd.Series:
        rows = np.concatenate([np.zeros(0, dtype=np.int64), *self.rows])
        values = pd.array(pd.concat([pd.Series(v) for v in self.values]) if self.values else [], dtype="str")
        codes, words = pd.factorize(values, sort=True)  # codes in the order of the values
        pairs = np.unique(rows * (len(words) + 1) + codes)  # by row, then value; each pair once
        rows, codes = pairs // (len(words) + 1), pairs % (len(words) + 1)
        offsets = np.searchsorted(rows, np.arange(n + 1)).astype(np.int32)
        flat = pa.array(pd.array(words, dtype="str").take(codes)).cast(pa.string())
        return pd.Series(
            pd.arrays.ArrowExtensionArray(pa.ListArray.from_arrays(offsets, flat)), dtype=LIST_DTYPE
        )


def _outcome(status: pd.Series, owner: np.ndarray, n: int) -> np.ndarray:
    """Per row 0..n-1 (``owner`` of each status, -1 for none): bounced if any recipient bounced, else
    deferred, else sent, else unknown."""
    code = np.asarray(status.cat.codes)
    found = {
        s: np.bincount(owner[(code == _STATUS.index(s)) & (owner >= 0)], minlength=n)[:n] > 0
        for s in ("bounced", "deferred", "sent")
    }
    return np.select(
        [found["bounced"], found["deferred"], found["sent"]], ["bounced", "deferred", "sent"], "unknown"
    ).astype(object)


def _owner(rows: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The position in ``rows`` (sorted) of each key, -1 where it is not one of them."""
    at = np.searchsorted(rows, keys)
    ok = at < len(rows)
    ok[ok] = rows[at[ok]] == keys[ok]
    return np.where(ok, at, -1)


# A report asks several figures of one frame (summary, by_peer, the weekly headline): failures are found once
# per frame object, gap and internal hosts.
_FAILURES: dict = {}


def failures(
    events: pd.DataFrame, *, gap: str | pd.Timedelta = "10min", internal: Iterable[str] = ()
) -> pd.DataFrame:
    """One row per TLS-caused problem, with cause, RFC 8460 result type, affected mail and plain words.

    ``outcome`` is ``deferred``/``bounced``/``sent`` (outbound, from the linked ``to=`` lines; ``sent``
    after a fallback to clear text), ``refused`` (inbound sessions we turned away) or ``unknown``.

    :param gap: lines of one process further apart than this belong to different connections
    :param internal: extra internal hosts (names, addresses, CIDRs, ``.domain`` suffixes)

    >>> f = tlslog.failures(tlslog.read_log("sample_logs/"))                       # doctest: +SKIP
    >>> f.groupby(["peer_domain", "cause"], observed=True)["qids"].agg("count")  # doctest: +SKIP
    """
    internal = InternalHosts.coerce(internal)
    key = (str(pd.Timedelta(gap)), internal_key(internal))
    found = per_frame(_FAILURES, events, key, lambda: _failures(events, gap, internal))
    return found.copy(deep=False)  # copy-on-write: changing the copy leaves the memo alone


def _failures(events: pd.DataFrame, gap: str | pd.Timedelta, internal: InternalHosts) -> pd.DataFrame:
    linked = link(events, gap=gap, internal=internal)
    ev = events.reset_index(drop=True)
    ev.attrs = {}
    d, s = linked.deliveries, linked.sessions
    ruleset = ev["ruleset"]
    src = np.asarray(d["_src"].cat.codes)
    by_marker = src == list(d["_src"].cat.categories).index("marker")
    s_direction, s_cause = np.asarray(s["direction"].cat.codes), np.asarray(s["cause"].cat.codes)
    handshake = s_cause == CAUSES.index("handshake_failed")
    parts: list[pd.DataFrame] = []
    qids, recipients = _Lists(), _Lists()

    def add(part: pd.DataFrame) -> None:
        parts.append(part)
        qids.start += len(part)
        recipients.start += len(part)

    def spell(kind: str, columns: list[str], at: np.ndarray) -> pd.DataFrame:
        return spelled(linked, kind, ev, columns, at)

    def add_mail(owner: np.ndarray) -> None:
        """The queue ids and recipients of the deliveries with an ``owner`` row in the part being built."""
        mine = np.flatnonzero(owner >= 0)
        qids.add(owner[mine], spell("deliveries", ["qid"], mine)["qid"])
        recipients.add(owner[mine], d["recipient"].iloc[mine])

    # client: tls_server rejects and the to= lines they decided
    rows = np.flatnonzero(is_one_of(ev["kind"], "tls_reject") & is_one_of(ruleset, "tls_server"))
    mk = linked.markers
    at = _owner(mk["row"].to_numpy(), rows)
    sess = np.where(at >= 0, mk["session_id"].to_numpy()[np.maximum(at, 0)], -1)
    encrypted = mk["encrypted"].to_numpy()[np.maximum(at, 0)] & (at >= 0)
    owner = np.full(len(d), -1)
    owner[by_marker] = _owner(rows, d["_marker"].to_numpy()[by_marker])
    add_mail(owner)
    add(
        _from_rows(ev, rows, "client", internal).assign(
            error=spell("sessions", ["error"], np.where(encrypted, -1, sess))["error"].array,
            _verifymsg=spell("sessions", ["verifymsg"], sess)["verifymsg"].array,
            outcome=_outcome(d["status"], owner, len(rows)),
        )
    )
    # client: connect failed with no ruleset line after it
    lone = (s_direction == DIRECTION_DTYPE.categories.get_loc("client")) & handshake
    lone &= ~np.isin(s["session_id"].to_numpy(), sess[sess >= 0])
    add(
        _from_rows(ev, s["_line"].to_numpy()[lone], "client", internal).assign(
            cause="handshake_failed", verify=None
        )
    )
    # client: tls_rcpt rejects, one recipient each
    rows = np.flatnonzero(is_one_of(ruleset, "tls_rcpt"))
    qids.add(np.arange(len(rows)), series_at(ev["qid"], rows))
    recipients.add(np.arange(len(rows)), series_at(ev["arg1"], rows))
    owner = np.where(
        src == list(d["_src"].cat.categories).index("rcpt"), _owner(rows, d["_rcpt"].to_numpy()), -1
    )
    add(
        _from_rows(ev, rows, "client", internal).assign(
            verify=None, outcome=_outcome(d["status"], owner, len(rows))
        )
    )
    # client: the remote side refused over TLS (its reply in stat=/reply=), one row per to= line
    remote = np.flatnonzero(src == list(d["_src"].cat.categories).index("text"))
    lines = d["_line"].to_numpy()
    firsts = remote[~pd.Series(lines[remote]).duplicated().to_numpy()]
    first = spell("deliveries", _TEXT_COLUMNS, firsts)
    said = first["reply"].fillna(first["stat_text"]).astype("str")
    owner = np.full(len(d), -1)
    owner[remote] = _owner(lines[firsts], lines[remote]) if len(firsts) else -1
    add_mail(owner)
    add(
        first.assign(
            direction="client",
            cause=first["tls_failure"].astype(str),
            verify=None,
            reject=said,
            reply_code=said.str.extract(_CODE)["code"].astype("Int64"),
            actual_bits=said.str.extract(_BITS)["actual"].astype("Int64"),
            required_bits=said.str.extract(_BITS)["required"].astype("Int64"),
            outcome=_outcome(d["status"], owner, len(firsts)),
        )
    )
    # server: accept failed, tls_client rejects, check_mail/check_rcpt rejects with a TLS text
    hs = (s_direction == DIRECTION_DTYPE.categories.get_loc("server")) & handshake
    add(
        _from_rows(ev, s["_line"].to_numpy()[hs], "server", internal).assign(
            cause="handshake_failed", verify=None
        )
    )
    checks = np.flatnonzero(is_one_of(ruleset, "check_mail", "check_rcpt"))
    tls_text = map_unique(lambda t: text_cause(t) is not None, series_at(ev["reject"], checks)).astype(bool)
    rows = np.union1d(np.flatnonzero(is_one_of(ruleset, "tls_client")), checks[tls_text])
    qids.add(np.arange(len(rows)), series_at(ev["qid"], rows))
    srv = _from_rows(ev, rows, "server", internal)
    add(srv.assign(verify=srv["verify"].where(is_one_of(ruleset.iloc[rows], "tls_client"))))

    kept = [p for p in parts if len(p)]
    out = pd.concat(kept, ignore_index=True) if kept else None
    return _finish(out, ev, qids, recipients)


def _from_rows(ev: pd.DataFrame, rows: np.ndarray, direction: str, internal: InternalHosts) -> pd.DataFrame:
    """Failure rows built from ruleset / handshake lines of the events frame."""
    f = take_rows(ev, rows, _LINE_COLUMNS)
    verify = as_text(f["arg1"])
    cause = map_unique(_cause, *(f[c] for c in ("kind", "ruleset", "arg1", "reject", "actual_bits")))
    f = f.assign(
        direction=direction,
        cause=cause,
        verify=verify,
        outcome="refused" if direction == "server" else "unknown",
    )
    return peer_columns(f, internal)


def _cause(
    kind: str | None, ruleset: str | None, verify: str | None, text: str | None, bits: int | None
) -> str:
    if kind == "tls_error":
        return "handshake_failed"
    return classify(None if ruleset == "tls_rcpt" else verify, text, actual_bits=bits)


def _finish(out: pd.DataFrame | None, ev: pd.DataFrame, qids: _Lists, recipients: _Lists) -> pd.DataFrame:
    if out is None:
        out = ev.iloc[0:0].assign(
            direction=None,
            cause=None,
            verify=None,
            outcome=None,
            peer=None,
            peer_domain=None,
            internal=None,
        )
    verifymsg = out["_verifymsg"] if "_verifymsg" in out else pd.Series(None, index=out.index, dtype=object)
    rtype = map_unique(
        lambda c, v, m: result_type(c, verify=v, verifymsg=m), out["cause"], out["verify"], verifymsg
    )
    cause = out["cause"].astype(object).astype(CAUSE_DTYPE)
    explanation = pd.array([EXPLANATIONS.get(c) for c in CAUSE_DTYPE.categories], dtype="str")
    out = out.assign(
        direction=as_text(out["direction"]).astype(DIRECTION_DTYPE),
        cause=cause,
        result_type=pd.Series(rtype, index=out.index, dtype="str").astype("category"),
        explanation=explanation.take(np.asarray(cause.cat.codes, dtype=np.int64), allow_fill=True),
        verify=as_text(out["verify"]).astype("category"),
        reject=as_text(out["reject"]),
        error=as_text(out["error"]),
        qids=qids.column(len(out)).set_axis(out.index),
        recipients=recipients.column(len(out)).set_axis(out.index),
        outcome=out["outcome"].astype(object).astype(OUTCOME_DTYPE),
        internal=out["internal"].astype("boolean"),
        **{c: out[c].astype("Int64") for c in ("pid", "required_bits", "actual_bits", "reply_code")},
    )
    return out.sort_values("timestamp", kind="stable").reset_index(drop=True)[FAILURE_COLUMNS]
