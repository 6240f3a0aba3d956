"""Who is the peer: registrable domains (Public Suffix List) and the internal-hosts test.

Standard library plus ``publicsuffixlist`` (its bundled list, offline). Both helpers cache their
answers: callers map the unique values of a column, not every row.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from functools import lru_cache

from publicsuffixlist import PublicSuffixList


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    """The list, built on first use (about 35 ms: not paid by a report served from the result cache).

    ICANN section only: private-section wildcards such as *.compute-1.amazonaws.com would make every
    EC2 host its own "domain"; for mail peers the operator's domain (amazonaws.com) is the useful key.
    """
    return PublicSuffixList(only_icann=True)


_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAME = re.compile(r"(?:[\w-]+\.)*[\w-]+")
_ADDRESS_LIKE = re.compile(r"[\d.]+|.*:.*")

#: Always internal, whatever the caller lists.
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")
LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


def _text(value: object) -> str | None:
    """A usable string, or None for None, NaN, pd.NA and empty strings."""
    return value.strip() or None if isinstance(value, str) else None


def _clean_host(host: str) -> str:
    host = host.lower().rstrip(".")
    return host.rpartition("@")[2]  # ident user (user@host) is not part of the name


def _parse_ip(text: str) -> _IPAddress | None:
    text = text.strip("[]")
    if text[:5].lower() == "ipv6:":
        text = text[5:]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _clean_ip(ip: str) -> str:
    addr = _parse_ip(ip)
    return str(addr) if addr is not None else ip.lower()  # compressed IPv6, whatever IPV6_FULL said


@lru_cache(maxsize=65536)
def peer_domain(host: str | None, ip: str | None = None) -> str | None:
    """The registrable domain of ``host`` by the Public Suffix List; the address when there is no host.

    A host that is itself a public suffix or a single label (``localhost``) is returned as it is.
    Names are lower-cased and lose their trailing dot; IPv6 addresses are compressed.

    >>> peer_domain("mx2.mail.example.co.uk"), peer_domain("gmail-smtp-in.l.google.com.")
    ('example.co.uk', 'google.com')
    >>> peer_domain("localhost"), peer_domain(None, "192.0.2.7")
    ('localhost', '192.0.2.7')
    """
    host_text, ip_text = _text(host), _text(ip)
    if host_text is not None:
        name = _clean_host(host_text)
        if _parse_ip(name) is not None:  # an address literal given as a name
            return _clean_ip(name)
        if name:
            return _psl().privatesuffix(name) or name
    return _clean_ip(ip_text) if ip_text is not None else None


class InternalHosts:
    """Hosts that are not "peers": loopback, ``localhost``, and the names, addresses and CIDRs given.

    Entries: an address (``192.0.2.10``, ``2001:db8::25``), a network (``10.0.0.0/8``), a name
    (``mx2.example.org``), or a domain suffix (``.example.org`` or ``*.example.org``, which match
    ``example.org`` itself and every name below it).

    :raises ValueError: for an entry that is not a valid address, network or host name.

    >>> internal = InternalHosts(["10.0.0.0/8", "*.example.org"])
    >>> internal.is_internal("mx2.example.org.", "198.51.100.7"), internal.is_internal(None, "10.1.2.3")
    (True, True)
    >>> internal.is_internal("mx.example.net", "198.51.100.8")
    False
    """

    def __init__(self, entries: Iterable[str] = ()):
        if isinstance(entries, str):
            entries = [entries]
        names: set[str] = set(LOOPBACK_NAMES)
        suffixes: set[str] = set()
        networks: list[_IPNetwork] = [ipaddress.ip_network(n) for n in LOOPBACK_NETWORKS]
        for entry in entries:
            kind, value = _parse_entry(entry)
            if kind == "name":
                names.add(value)
            elif kind == "suffix":
                suffixes.add(value)
            else:
                networks.append(ipaddress.ip_network(value, strict=False))
        self.names = frozenset(names)
        self.suffixes = tuple(sorted(suffixes))
        self.networks = tuple(networks)
        self._cached = lru_cache(maxsize=65536)(self._is_internal)

    @classmethod
    def coerce(cls, value: InternalHosts | Iterable[str] | str | None) -> InternalHosts:
        """``value`` itself when it already is an `InternalHosts`, else one built from it."""
        if isinstance(value, cls):
            return value
        return cls(() if value is None else value)

    def __repr__(self) -> str:
        listed = [*sorted(self.names), *(f".{s}" for s in self.suffixes), *map(str, self.networks)]
        return f"InternalHosts({listed!r})"

    def is_internal(self, host: str | None = None, ip: str | None = None) -> bool:
        """True when the host name or the address is internal (either is enough)."""
        return self._cached(_text(host), _text(ip))

    def _is_internal(self, host: str | None, ip: str | None) -> bool:
        if host is not None:
            name = _clean_host(host)
            addr = _parse_ip(name)
            if addr is not None:
                if self._address_internal(addr):
                    return True
            elif name in self.names or any(name == s or name.endswith("." + s) for s in self.suffixes):
                return True
        if ip is not None:
            addr = _parse_ip(ip)
            return addr is not None and self._address_internal(addr)
        return False

    def _address_internal(self, addr: _IPAddress) -> bool:
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr.version == net.version and addr in net for net in self.networks)


def _parse_entry(entry: str) -> tuple[str, str]:
    """Classify one ``internal=`` entry as ("name" | "suffix" | "network", normalised value)."""
    if not isinstance(entry, str) or not entry.strip():
        raise ValueError(f"internal host entry {entry!r} is empty or not text")
    text = entry.strip().lower().rstrip(".")
    if "/" in text:
        try:
            return "network", str(ipaddress.ip_network(text.removeprefix("ipv6:"), strict=False))
        except ValueError as err:
            raise ValueError(f"internal host entry {entry!r} is not a valid network (CIDR): {err}") from None
    if text.startswith("[") or _ADDRESS_LIKE.fullmatch(text):
        addr = _parse_ip(text)
        if addr is None:
            raise ValueError(f"internal host entry {entry!r} is not a valid IP address")
        return "network", str(ipaddress.ip_network(addr))
    suffix = text.startswith(("*.", "."))
    name = text.removeprefix("*").removeprefix(".")
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"internal host entry {entry!r} is not a host name, address, CIDR, or .domain / *.domain suffix"
        )
    return ("suffix" if suffix else "name"), name
