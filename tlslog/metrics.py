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
from .linking import internal_key, link, per_frame
from .peers import InternalHosts
from .vectors import as_text, joint, map_unique

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
    """The rows the figures count, with ``peer`` / ``peer_domain`` as categoricals (sorted categories).

    Built column by column from the rows taken of each linked table: no copy of a whole table is made.
    """
    linked = link(events, internal=internal)
    parts: list[tuple[pd.DataFrame, np.ndarray, str]] = []  # (linked table, its rows counted, direction)

    def add(frame: pd.DataFrame, rows: np.ndarray, name: str) -> None:
        if not include_internal:
            rows = rows & ~frame["internal"].fillna(False).to_numpy(dtype=bool)
        parts.append((frame, np.flatnonzero(rows), name))

    if direction in ("inbound", "both"):
        add(linked.receipts, np.ones(len(linked.receipts), dtype=bool), "inbound")
    if direction in ("outbound", "both"):
        d = linked.deliveries  # one row per recipient; an attempt is one to= line, counted once
        attempt = ~d["_line"].duplicated().to_numpy(dtype=bool)
        add(d, attempt & d["encrypted"].notna().to_numpy(dtype=bool), "outbound")

    def column(name: str) -> pd.Series:
        taken = [frame[name].take(rows) for frame, rows, _ in parts]
        return pd.concat(taken, ignore_index=True) if len(taken) > 1 else taken[0].reset_index(drop=True)

    def flag(name: str) -> np.ndarray:  # missing is False
        return np.concatenate([frame[name].to_numpy(bool, na_value=False)[rows] for frame, rows, _ in parts])

    t = {c: column(c) for c in ("timestamp", "version", "cipher", "cipher_bits", "verify")}
    enc = flag("encrypted")
    tls12 = map_unique(is_tls12_or_newer, t["version"], t["cipher"], dtype="boolean")
    code = np.repeat(
        [_DIRECTION_DTYPE.categories.get_loc(n) for *_, n in parts], [len(r) for _, r, _ in parts]
    )
    relay = np.concatenate([frame["_relay"].to_numpy()[rows] for frame, rows, _ in parts])
    return pd.DataFrame(
        {
            "timestamp": t["timestamp"],
            "encrypted": enc,
            "verified": enc & flag("verified"),
            "version": t["version"],
            "cipher": t["cipher"],
            "cipher_bits": t["cipher_bits"],
            "verify": t["verify"],
            "weak": enc & flag("weak"),
            "direction": pd.Categorical.from_codes(code, dtype=_DIRECTION_DTYPE),
            "tls12": enc & tls12.to_numpy(dtype=bool, na_value=False),
            "peer": _by_relay(linked.relays["peer"], relay),
            "peer_domain": _by_relay(linked.relays["peer_domain"], relay),
        }
    )


def _by_relay(names: pd.Series, relay: np.ndarray) -> pd.Categorical:
    """A categorical (sorted categories) of per-relay names spread to rows by relay number."""
    codes, categories = pd.factorize(names, sort=True)
    return pd.Categorical.from_codes(codes[relay] if len(relay) else relay, categories=categories)


def _filled(col: pd.Series, fill: str) -> pd.Series:
    """A categorical with missing values replaced by ``fill``, its categories still sorted."""
    if not col.isna().any():
        return col
    categories = sorted({*col.cat.categories, fill})
    return col.cat.set_categories(categories).fillna(fill)


def _counted(
    frame: pd.DataFrame,
    keys: list[str],
    sums: list[str],
    anys: tuple[str, ...] = (),
    spans: tuple[str, ...] = (),
) -> pd.DataFrame:
    """One row per distinct combination of ``keys`` (missing is a value), with ``_n`` (rows), the sums
    of ``sums``, the any of ``anys`` and the ``first_seen`` / ``last_seen`` of ``spans``: a frame as small
    as the groups, on which pandas' own groupby gives the same groups, order and dtypes as on the full one."""
    key = joint(*(frame[k] for k in keys))
    k = int(key.max()) + 1 if len(key) else 0
    rep = np.empty(k, dtype=np.int64)
    rep[key] = np.arange(len(key))
    small = frame.iloc[np.sort(rep), [frame.columns.get_loc(c) for c in keys]]
    at = np.argsort(np.argsort(rep))  # position of each group in `small`
    where = at[key]
    out = {"_n": np.bincount(where, minlength=k)}
    for c in sums:
        out[c] = np.bincount(where, weights=frame[c].to_numpy(dtype=np.int64), minlength=k).astype(np.int64)
    for c in anys:
        out[c] = np.bincount(where, weights=frame[c].to_numpy(dtype=bool), minlength=k) > 0
    for c in spans:
        grouped = frame[c].groupby(where)
        out["first_seen"] = grouped.min().reindex(range(k)).array
        out["last_seen"] = grouped.max().reindex(range(k)).array
    return small.assign(**out)


def _shares(frame: pd.DataFrame) -> pd.DataFrame:
    with np.errstate(divide="ignore", invalid="ignore"):
        return frame.assign(
            encrypted_share=frame["encrypted"] / frame["total"].where(frame["total"] > 0),
            verified_share=frame["verified"] / frame["encrypted"].where(frame["encrypted"] > 0),
            tls12_share=frame["tls12"] / frame["encrypted"].where(frame["encrypted"] > 0),
            weak_share=frame["weak"] / frame["encrypted"].where(frame["encrypted"] > 0),
        )


_COUNTS = {
    "total": ("_n", "sum"),
    "encrypted": ("encrypted", "sum"),
    "verified": ("verified", "sum"),
    "tls12": ("tls12", "sum"),
    "weak": ("weak", "sum"),
}
_SUMS = ["encrypted", "verified", "tls12", "weak"]


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
    t = _counted(t, ["period", "direction"], _SUMS)
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
    t = t.assign(peer=_filled(t[key], "(unknown)"), _versioned=t["encrypted"] & t["version"].notna())
    t = _counted(t, ["peer", "direction", "version"], _SUMS, anys=("_versioned",), spans=("timestamp",))
    out = t.groupby(["peer", "direction"], observed=True).agg(
        **_COUNTS, first_seen=("first_seen", "min"), last_seen=("last_seen", "max")
    )
    versions = (
        t[t["_versioned"]]
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
    out["peer"] = as_text(out["peer"])
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
    t = _counted(t, ["encrypted", "direction", *keys], [], anys=("weak",))  # as small as the groups
    t = t[t["encrypted"].to_numpy(dtype=bool)]
    counts = {"count": ("_n", "sum"), **({"weak": ("weak", "any")} if weak else {})}
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
