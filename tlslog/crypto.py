"""Is a negotiated TLS session weak? Protocol and cipher-suite checks on logged names.

Standard library only. Knows OpenSSL names (``ECDHE-RSA-AES128-GCM-SHA256``, ``EXP-RC4-MD5``,
``DES-CBC3-SHA``, ``ADH-AES256-SHA``) and IANA names (``TLS_AES_256_GCM_SHA384``,
``TLS_RSA_WITH_3DES_EDE_CBC_SHA``, ``TLS_DH_anon_WITH_AES_128_CBC_SHA``).

sendmail <= 8.14 logs ``version=TLSv1/SSLv3`` (OpenSSL's cipher *family*, not the negotiated
protocol) for every suite. When the suite exists only in TLS 1.2 and later (GCM, CCM, ChaCha20,
SHA-256/384 MACs) the session was TLS 1.2; any other suite with that version is counted as old.
"""

from __future__ import annotations

import re

#: Sessions with fewer cipher bits than this are weak (the usual ``ENCR:`` floor).
MIN_CIPHER_BITS = 128

#: The version sendmail <= 8.14 logs for every suite.
LEGACY_VERSION = "TLSv1/SSLv3"

_TLS_VERSION = re.compile(r"TLSv1(?:\.(\d+))?")
_SSL_VERSION = re.compile(r"SSLv\d")
_TOKENS = re.compile(r"[-_]")
# Suites that exist only from TLS 1.2 on: AEAD modes or SHA-2 MACs (TLS 1.3 names too: TLS_AES_...).
_TLS12_ONLY_TOKENS = frozenset({"GCM", "CCM", "CCM8", "CHACHA20", "POLY1305", "SHA256", "SHA384"})


def _text(value: object) -> str | None:
    """A usable string, or None for None, NaN, pd.NA and empty strings."""
    return value.strip() or None if isinstance(value, str) else None


def _number(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):  # NaN, pd.NA, junk
        return None


def _cipher_tokens(cipher: str) -> frozenset[str]:
    return frozenset(_TOKENS.split(cipher.upper()))


def _tls12_only_suite(cipher: str | None) -> bool:
    return cipher is not None and not _TLS12_ONLY_TOKENS.isdisjoint(_cipher_tokens(cipher))


def is_tls12_or_newer(version: str | None, cipher: str | None = None) -> bool | None:
    """True for TLS 1.2 and newer, False for older protocols, None when the version is unknown.

    ``TLSv1/SSLv3`` is True only with a suite that exists from TLS 1.2 on (pass ``cipher``).

    >>> is_tls12_or_newer("TLSv1.3"), is_tls12_or_newer("TLSv1"), is_tls12_or_newer("unknown")
    (True, False, None)
    >>> is_tls12_or_newer("TLSv1/SSLv3", "ECDHE-RSA-AES256-GCM-SHA384")
    True
    """
    version = _text(version)
    if version is None:
        return None
    if version == LEGACY_VERSION:
        return _tls12_only_suite(_text(cipher))
    if _SSL_VERSION.fullmatch(version):
        return False
    m = _TLS_VERSION.fullmatch(version)
    if m is None:
        return None
    return int(m.group(1) or 0) >= 2


def _cipher_reasons(cipher: str) -> list[str]:
    tokens = _cipher_tokens(cipher)
    reasons = []
    if "RC4" in tokens or "ARCFOUR" in tokens:
        reasons.append("RC4")
    if "3DES" in tokens or "CBC3" in tokens:
        reasons.append("3DES")
    elif "DES" in tokens or "DES40" in tokens:
        reasons.append("DES")
    if any(t.startswith("EXP") for t in tokens):  # EXP-, EXP1024-, _EXPORT_, _EXPORT1024_
        reasons.append("EXPORT")
    if "NULL" in tokens:
        reasons.append("NULL cipher")
    if tokens & {"ADH", "AECDH", "ANON"}:
        reasons.append("anonymous")
    return reasons


def weakness(version: str | None, cipher: str | None, cipher_bits: int | None) -> tuple[str, ...]:
    """The reasons a negotiated session is weak; an empty tuple when it is fine or unknown.

    Reasons, in this order: ``old protocol (<version>)`` (below TLS 1.2), ``RC4``, ``3DES``, ``DES``,
    ``EXPORT``, ``NULL cipher``, ``anonymous``, ``cipher bits <n> < 128``. Missing values (None, NaN,
    ``pd.NA``) count as unknown.

    >>> weakness("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256)
    ()
    >>> weakness("TLSv1/SSLv3", "EXP-RC4-MD5", 40)
    ('old protocol (TLSv1/SSLv3)', 'RC4', 'EXPORT', 'cipher bits 40 < 128')
    """
    version, cipher, bits = _text(version), _text(cipher), _number(cipher_bits)
    reasons = []
    if is_tls12_or_newer(version, cipher) is False:
        reasons.append(f"old protocol ({version})")
    if cipher is not None:
        reasons.extend(_cipher_reasons(cipher))
    # bits=0 without a cipher is sendmail's "missing value", not a zero-bit session
    if bits is not None and bits < MIN_CIPHER_BITS and (bits > 0 or cipher is not None):
        reasons.append(f"cipher bits {bits} < {MIN_CIPHER_BITS}")
    return tuple(reasons)
