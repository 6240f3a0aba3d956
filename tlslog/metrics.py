"""Coverage and breakdowns: how much mail went over TLS, how well, and with whom (tidy long frames).

Inbound figures count messages (receipts); outbound figures count delivery attempts (``to=`` lines,
however many recipients each carries) that reached a server (``encrypted`` not NA). Internal hops are left
out unless ``include_internal=True``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .crypto import is_tls12_or_newer
from .failures import failures
from .linking import internal_key, link, map_unique, per_frame
from .peers import InternalHosts

PERIODS = ("day", "week", "month")
DIRECTIONS = ("inbound", "outbound", "both")
_DIRECTION_DTYPE = pd.CategoricalDtype(["inbound", "outbound"])


def _period(ts: pd.Series, by: str) -> pd.Series:
    """Start of the day, week (Monday) or month of each timestamp (time zone kept)."""
    day = ts.dt.normalize()
    if by == "day":
        return day
    if by == "week":
        return day - pd.to_timedelta(ts.dt.day_of_week, unit="D")
    if by == "month":
        return day - pd.to_timedelta(ts.dt.day - 1, unit="D")
    raise ValueError(f"by must be one of {', '.join(PERIODS)}, not {by!r}")


# A report asks for coverage, versions and ciphers of one frame: the traffic table is built once for them.
_TRAFFIC: dict = {}


def _traffic(
    events: pd.DataFrame, direction: str, include_internal: bool, internal: Iterable[str]
) -> pd.DataFrame:
    """Receipts and reached delivery attempts in one frame with a ``direction`` column (memoised per
    frame object, direction and scope; a shallow copy, so the memo is never changed through it)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    internal = InternalHosts.coerce(internal)
    key = (direction, bool(include_internal), internal_key(internal))
    t = per_frame(
        _TRAFFIC, events, key, lambda: _build_traffic(events, direction, include_internal, internal)
    )
    return t.copy(deep=False)


def _build_traffic(
    events: pd.DataFrame, direction: str, include_internal: bool, internal: InternalHosts
) -> pd.DataFrame:
    linked = link(events, internal=internal)
    cols = [
        "timestamp",
        "peer",
        "peer_domain",
        "encrypted",
        "verified",
        "version",
        "cipher",
        "cipher_bits",
        "verify",
        "weak",
        "internal",
    ]

    def part(frame: pd.DataFrame, rows: np.ndarray, name: str) -> pd.DataFrame:
        if not include_internal:
            rows = rows & ~frame["internal"].fillna(False).to_numpy(dtype=bool)
        return frame.loc[rows, cols].assign(direction=name)  # one copy of the rows and columns needed

    parts = []
    if direction in ("inbound", "both"):
        parts.append(part(linked.receipts, np.ones(len(linked.receipts), dtype=bool), "inbound"))
    if direction in ("outbound", "both"):
        d = linked.deliveries  # one row per recipient; an attempt is one to= line, counted once
        attempt = ~d["_line"].duplicated().to_numpy(dtype=bool)
        parts.append(part(d, attempt & d["encrypted"].notna().to_numpy(dtype=bool), "outbound"))
    t = pd.concat(parts, ignore_index=True)
    enc = t["encrypted"].fillna(False).astype(bool)
    tls12 = pd.Series(
        map_unique(is_tls12_or_newer, t["version"], t["cipher"], dtype="boolean"), index=t.index
    )
    return t.assign(
        direction=t["direction"].astype(_DIRECTION_DTYPE),
        encrypted=enc,
        verified=enc & t["verified"].fillna(False).astype(bool),
        tls12=enc & tls12.fillna(False).astype(bool),
        weak=enc & t["weak"].fillna(False).astype(bool),
    )


def _shares(frame: pd.DataFrame) -> pd.DataFrame:
    with np.errstate(divide="ignore", invalid="ignore"):
        return frame.assign(
            encrypted_share=frame["encrypted"] / frame["total"].where(frame["total"] > 0),
            verified_share=frame["verified"] / frame["encrypted"].where(frame["encrypted"] > 0),
            tls12_share=frame["tls12"] / frame["encrypted"].where(frame["encrypted"] > 0),
            weak_share=frame["weak"] / frame["encrypted"].where(frame["encrypted"] > 0),
        )


_COUNTS = {
    "total": ("encrypted", "size"),
    "encrypted": ("encrypted", "sum"),
    "verified": ("verified", "sum"),
    "tls12": ("tls12", "sum"),
    "weak": ("weak", "sum"),
}


def coverage(
    events: pd.DataFrame,
    *,
    by: str = "week",
    direction: str = "both",
    include_internal: bool = False,
    internal: Iterable[str] = (),
) -> pd.DataFrame:
    """Share of mail over TLS per period and direction: ``total``, ``encrypted``, ``verified``, ``tls12``...

    ``encrypted_share`` is of ``total``; ``verified_share``, ``tls12_share`` and ``weak_share`` are of
    ``encrypted``. Weeks start on Monday.

    :param by: ``day``, ``week`` or ``month``
    :param direction: ``inbound``, ``outbound`` or ``both``
    :param include_internal: count loopback and internal hops too

    >>> cov = tlslog.coverage(tlslog.read_log("sample_logs/"), by="week")   # doctest: +SKIP
    >>> cov.pivot(index="period", columns="direction", values="encrypted_share")  # doctest: +SKIP
    """
    t = _traffic(events, direction, include_internal, internal)
    t = t.assign(period=_period(t["timestamp"], by))
    out = t.groupby(["period", "direction"], observed=True, sort=True).agg(**_COUNTS).reset_index()
    return _shares(out)


def by_peer(
    events: pd.DataFrame,
    *,
    by: str = "domain",
    direction: str = "both",
    include_internal: bool = False,
    internal: Iterable[str] = (),
) -> pd.DataFrame:
    """Per peer (registrable domain, or host with ``by="host"``) and direction: totals, shares, versions.

    ``failures`` counts the rows of `tlslog.failures` for that peer and direction.

    >>> tlslog.by_peer(tlslog.read_log("sample_logs/")).head()  # doctest: +SKIP
    """
    if by not in ("domain", "host"):
        raise ValueError(f"by must be 'domain' or 'host', not {by!r}")
    key = "peer_domain" if by == "domain" else "peer"
    t = _traffic(events, direction, include_internal, internal)
    t = t.assign(peer=t[key].fillna("(unknown)"))
    out = t.groupby(["peer", "direction"], observed=True).agg(
        **_COUNTS, first_seen=("timestamp", "min"), last_seen=("timestamp", "max")
    )
    versions = (
        t[t["encrypted"] & t["version"].notna()]
        .groupby(["peer", "direction"], observed=True)["version"]
        .agg(lambda v: ", ".join(sorted(map(str, v.unique()), reverse=True)))
    )
    f = failures(events, internal=internal)
    if not include_internal:
        f = f[~f["internal"].fillna(False).astype(bool)]
    f = f.assign(
        peer=f[key].fillna("(unknown)"),
        direction=f["direction"].astype(str).map({"server": "inbound", "client": "outbound"}),
    )
    fails = f.groupby(["peer", "direction"]).size()
    out = out.assign(
        failures=fails.reindex(out.index, fill_value=0).astype("int64").to_numpy(),
        versions=versions.reindex(out.index).astype("str").to_numpy(),
    ).reset_index()
    out = _shares(out)
    cols = [
        "peer",
        "direction",
        "total",
        "encrypted",
        "verified",
        "failures",
        "encrypted_share",
        "verified_share",
        "tls12_share",
        "weak_share",
        "versions",
        "first_seen",
        "last_seen",
    ]
    return out[cols].sort_values(["direction", "total"], ascending=[True, False], ignore_index=True)


def _breakdown(events, keys, direction, include_internal, internal, weak: bool) -> pd.DataFrame:
    t = _traffic(events, direction, include_internal, internal)
    t = t.loc[t["encrypted"], ["direction", *keys, "encrypted", "weak"]]
    counts = {"count": ("encrypted", "size"), **({"weak": ("weak", "any")} if weak else {})}
    out = t.groupby(["direction", *keys], observed=True, dropna=False).agg(**counts).reset_index()
    out = out.assign(share=out["count"] / out.groupby("direction", observed=True)["count"].transform("sum"))
    if weak:
        out["weak"] = out["weak"].astype("boolean")
    out = out[["direction", *keys, "count", "share", *(["weak"] if weak else [])]]
    return out.sort_values(["direction", "count"], ascending=[True, False], ignore_index=True)


def by_version(
    events: pd.DataFrame,
    *,
    direction: str = "both",
    include_internal: bool = False,
    internal: Iterable[str] = (),
) -> pd.DataFrame:
    """Encrypted messages/attempts per protocol version: ``count``, ``share`` (within direction), ``weak``.

    >>> tlslog.by_version(tlslog.read_log("sample_logs/"), direction="inbound")  # doctest: +SKIP
    """
    out = _breakdown(events, ["version"], direction, include_internal, internal, weak=False)
    old = [is_tls12_or_newer(v) is False for v in out["version"].astype(object)]
    return out.assign(weak=pd.array(old, dtype="boolean"))


def by_cipher(
    events: pd.DataFrame,
    *,
    direction: str = "both",
    include_internal: bool = False,
    internal: Iterable[str] = (),
) -> pd.DataFrame:
    """Encrypted messages/attempts per version, cipher and cipher bits, with ``weak`` (any weakness).

    >>> tlslog.by_cipher(tlslog.read_log("sample_logs/")).query("weak")   # doctest: +SKIP
    """
    return _breakdown(
        events, ["version", "cipher", "cipher_bits"], direction, include_internal, internal, weak=True
    )


def by_verify(
    events: pd.DataFrame,
    *,
    direction: str = "both",
    include_internal: bool = False,
    internal: Iterable[str] = (),
) -> pd.DataFrame:
    """Encrypted messages/attempts per ``verify`` value (``OK``, ``FAIL``, ``NO``, ``NOT``...).

    >>> tlslog.by_verify(tlslog.read_log("sample_logs/"), direction="outbound")  # doctest: +SKIP
    """
    return _breakdown(events, ["verify"], direction, include_internal, internal, weak=False)
