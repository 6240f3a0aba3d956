"""The relay a line names (``relay_host`` / ``relay_ip``): the key that ties lines of one peer together, and
its ``peer``, ``peer_domain`` and ``internal``, computed once per distinct (host, address) pair.

>>> relay_name("MX.Example.NET.", "192.0.2.1"), relay_name(None, "[IPv6:2001:db8::1]")
('mx.example.net', '2001:db8::1')
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .peers import InternalHosts, peer_domain
from .vectors import as_text, factorize_text, joint, map_unique

__all__ = ["RelayCodes", "peer_columns", "relay_keys", "relay_name"]


def relay_name(host: str | None, ip: str | None) -> str | None:
    """The relay a line names, normalised: host name without trailing dot, else the literal address."""
    if isinstance(host, str):
        name = host.lower().strip().rstrip(".").strip("[]")
        if name:
            return name
    return ip.lower().strip("[]").removeprefix("ipv6:") if isinstance(ip, str) else None


class RelayCodes:
    """The ``relay_host`` / ``relay_ip`` of the events as codes (``host``, ``ip``: -1 where missing), and
    what depends on the pair, computed once per distinct pair: the relay key that links lines, a number
    per pair (the ``_relay`` of the linked tables, see `table`), and ``internal``."""

    def __init__(self, ev: pd.DataFrame, internal: InternalHosts) -> None:
        self.host, self.hosts = factorize_text(ev["relay_host"])
        self.ip, self.ips = factorize_text(ev["relay_ip"])
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
            name = relay_name(host, ip)
            found = self._known[(h, i)] = (
                -1 if name is None else self._names.setdefault(name, len(self._names)),
                host if host is not None else ip,
                peer_domain(host, ip),
                self.internal.is_internal(host, ip),
                len(self._known),
            )
        return found

    def keys(self, rows: np.ndarray) -> np.ndarray:
        """Per events row a code of `relay_name` (-1 when the line names no relay)."""
        values, key = self._pairs(self.host[rows], self.ip[rows])
        return np.array([v[0] for v in values], dtype=np.int64)[key] if len(key) else key

    def columns(self, h: np.ndarray, i: np.ndarray) -> dict[str, object]:
        """``internal`` and ``_relay`` (the pair's number) of rows given by host and ip codes."""
        values, key = self._pairs(h, i)
        number = np.array([v[4] for v in values], dtype=np.int32)
        return {
            "internal": pd.array([v[3] for v in values], dtype="boolean").take(key),
            "_relay": number[key] if len(key) else key.astype(np.int32),
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


def relay_keys(ev: pd.DataFrame) -> np.ndarray:
    """Per row a code of `relay_name` (-1 when the line names no relay)."""
    return RelayCodes(ev, InternalHosts.coerce(())).keys(np.arange(len(ev)))


def peer_columns(frame: pd.DataFrame, internal: InternalHosts) -> pd.DataFrame:
    """``peer``, ``peer_domain`` and ``internal`` from ``relay_host`` / ``relay_ip``."""
    host, ip = as_text(frame["relay_host"]), as_text(frame["relay_ip"])
    return frame.assign(
        peer=host.where(host.notna(), ip),
        peer_domain=pd.Series(map_unique(peer_domain, host, ip, dtype="str"), index=frame.index),
        internal=pd.Series(map_unique(internal.is_internal, host, ip, dtype="boolean"), index=frame.index),
    )
