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

from .causes import EXPLANATIONS, classify, result_type, text_cause
from .linking import (
    CAUSE_DTYPE,
    DIRECTION_DTYPE,
    as_text,
    is_one_of,
    link,
    map_unique,
    peer_columns,
    take_rows,
)
from .peers import InternalHosts

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
_CODE = r"^\s*(?P<code>[245]\d\d)\b"
_BITS = r"too weak (?P<actual>\d+) less than (?P<required>\d+)"


def _outcome(statuses: pd.Series, keys: pd.Series) -> pd.Series:
    """Per key: bounced if any recipient bounced, else deferred, else sent, else unknown."""
    flags = pd.DataFrame({s: (statuses == s).to_numpy() for s in ("bounced", "deferred", "sent")})
    anyof = flags.groupby(keys.to_numpy()).any()
    out = np.select(
        [anyof["bounced"], anyof["deferred"], anyof["sent"]], ["bounced", "deferred", "sent"], "unknown"
    )
    return pd.Series(out, index=anyof.index)


def _lists(values: pd.Series, keys: pd.Series) -> pd.Series:
    """Per key: the sorted distinct non-missing values."""
    known = values.notna().to_numpy()
    codes, words = pd.factorize(as_text(values[known]), sort=True)  # codes in the order of the values
    pairs = pd.DataFrame({"k": keys.to_numpy()[known], "v": codes}).drop_duplicates().sort_values(["k", "v"])
    k = pairs["k"].to_numpy()
    cut = np.flatnonzero(k[1:] != k[:-1]) + 1
    runs = np.split(np.asarray(words, dtype=object)[pairs["v"].to_numpy()], cut) if len(k) else []
    return pd.Series([run.tolist() for run in runs], index=k[np.r_[0, cut]] if len(k) else [], dtype=object)


def _singles(values: pd.Series) -> list[list[str]]:
    """Each value as a one-element list (an empty one where missing)."""
    return [[v] if isinstance(v, str) else [] for v in as_text(values)]


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
    linked = link(events, gap=gap, internal=internal)
    ev = events.reset_index(drop=True)
    d, s = linked.deliveries, linked.sessions
    ruleset = ev["ruleset"]
    session_error = s.set_index("session_id")["error"]
    session_verifymsg = s.set_index("session_id")["verifymsg"]
    parts = []

    # client: tls_server rejects and the to= lines they decided
    rows = np.flatnonzero(is_one_of(ev["kind"], "tls_reject") & is_one_of(ruleset, "tls_server"))
    mk = linked.markers.set_index("row")
    sess = mk["session_id"].reindex(rows).fillna(-1).astype("int64").to_numpy()
    src = d["_src"].to_numpy(dtype=object)
    by_marker = d.loc[src == "marker", ["qid", "recipient", "status", "_marker"]]
    parts.append(
        _from_rows(ev, rows, "client", internal).assign(
            error=session_error.reindex(sess).where(~mk["encrypted"].reindex(rows).to_numpy()).to_numpy(),
            _verifymsg=session_verifymsg.reindex(sess).to_numpy(),
            qids=_lists(by_marker["qid"], by_marker["_marker"]).reindex(rows).to_numpy(),
            recipients=_lists(by_marker["recipient"], by_marker["_marker"]).reindex(rows).to_numpy(),
            outcome=_outcome(by_marker["status"], by_marker["_marker"])
            .reindex(rows)
            .fillna("unknown")
            .to_numpy(),
        )
    )
    # client: connect failed with no ruleset line after it
    claimed = set(sess[sess >= 0].tolist())
    lone = s[
        (s["direction"] == "client") & (s["cause"] == "handshake_failed") & ~s["session_id"].isin(claimed)
    ]
    parts.append(
        _from_rows(ev, lone["_line"].to_numpy(), "client", internal).assign(
            cause="handshake_failed", verify=None
        )
    )
    # client: tls_rcpt rejects, one recipient each
    rows = np.flatnonzero(is_one_of(ruleset, "tls_rcpt"))
    by_rcpt = d.loc[src == "rcpt", ["status", "_rcpt"]]
    parts.append(
        _from_rows(ev, rows, "client", internal).assign(
            verify=None,
            qids=_singles(ev["qid"].iloc[rows]),
            recipients=_singles(ev["arg1"].iloc[rows]),
            outcome=_outcome(by_rcpt["status"], by_rcpt["_rcpt"]).reindex(rows).fillna("unknown").to_numpy(),
        )
    )
    # client: the remote side refused over TLS (its reply in stat=/reply=), one row per to= line
    remote = d[src == "text"]
    first = remote.drop_duplicates("_line")
    said = (first["reply"].fillna(first["stat_text"])).astype("str")
    parts.append(
        peer_columns(first, internal).assign(
            direction="client",
            cause=first["tls_failure"].astype(str),
            verify=None,
            reject=said,
            reply_code=said.str.extract(_CODE)["code"].astype("Int64"),
            actual_bits=said.str.extract(_BITS)["actual"].astype("Int64"),
            required_bits=said.str.extract(_BITS)["required"].astype("Int64"),
            qids=_lists(remote["qid"], remote["_line"]).reindex(first["_line"]).to_numpy(),
            recipients=_lists(remote["recipient"], remote["_line"]).reindex(first["_line"]).to_numpy(),
            outcome=_outcome(remote["status"], remote["_line"]).reindex(first["_line"]).to_numpy(),
        )
    )
    # server: accept failed, tls_client rejects, check_mail/check_rcpt rejects with a TLS text
    hs = s[(s["direction"] == "server") & (s["cause"] == "handshake_failed")]
    parts.append(
        _from_rows(ev, hs["_line"].to_numpy(), "server", internal).assign(
            cause="handshake_failed", verify=None
        )
    )
    checks = np.flatnonzero(is_one_of(ruleset, "check_mail", "check_rcpt"))
    tls_text = map_unique(lambda t: text_cause(t) is not None, ev["reject"].iloc[checks]).astype(bool)
    rows = np.union1d(np.flatnonzero(is_one_of(ruleset, "tls_client")), checks[tls_text])
    srv = _from_rows(ev, rows, "server", internal)
    srv = srv.assign(
        qids=_singles(ev["qid"].iloc[rows]),
        verify=srv["verify"].where(is_one_of(ruleset.iloc[rows], "tls_client")),
    )
    parts.append(srv)

    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else None
    return _finish(out, ev)


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
        qids=[[] for _ in rows],
        recipients=[[] for _ in rows],
    )
    return peer_columns(f, internal)


def _cause(
    kind: str | None, ruleset: str | None, verify: str | None, text: str | None, bits: int | None
) -> str:
    if kind == "tls_error":
        return "handshake_failed"
    return classify(None if ruleset == "tls_rcpt" else verify, text, actual_bits=bits)


def _finish(out: pd.DataFrame | None, ev: pd.DataFrame) -> pd.DataFrame:
    if out is None:
        out = ev.iloc[0:0].assign(
            direction=None,
            cause=None,
            verify=None,
            qids=None,
            recipients=None,
            outcome=None,
            peer=None,
            peer_domain=None,
            internal=None,
        )
    verifymsg = out["_verifymsg"] if "_verifymsg" in out else pd.Series(None, index=out.index, dtype=object)
    rtype = map_unique(
        lambda c, v, m: result_type(c, verify=v, verifymsg=m), out["cause"], out["verify"], verifymsg
    )
    out = out.assign(
        direction=as_text(out["direction"]).astype(DIRECTION_DTYPE),
        cause=out["cause"].astype(object).astype(CAUSE_DTYPE),
        result_type=pd.Series(rtype, index=out.index, dtype="str").astype("category"),
        explanation=pd.Series([EXPLANATIONS.get(c) for c in out["cause"]], index=out.index, dtype="str"),
        verify=as_text(out["verify"]).astype("category"),
        reject=as_text(out["reject"]),
        error=as_text(out["error"]),
        qids=pd.Series(
            [list(q) if isinstance(q, list) else [] for q in out["qids"]], index=out.index, dtype=LIST_DTYPE
        ),
        recipients=pd.Series(
            [list(r) if isinstance(r, list) else [] for r in out["recipients"]],
            index=out.index,
            dtype=LIST_DTYPE,
        ),
        outcome=out["outcome"].astype(object).astype(OUTCOME_DTYPE),
        internal=out["internal"].astype("boolean"),
        **{c: out[c].astype("Int64") for c in ("pid", "required_bits", "actual_bits", "reply_code")},
    )
    return out.sort_values("timestamp", kind="stable").reset_index(drop=True)[FAILURE_COLUMNS]
