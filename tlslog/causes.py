"""Why a TLS connection failed or was refused: cause identifiers, RFC 8460 result types, plain words.

Standard library only. A cause comes from the ``{verify}`` value sendmail passed to its ``tls_server`` /
``tls_client`` ruleset (``arg1``), the reject or deferral text (``cf/m4/proto.m4`` texts, reference 6.2),
or both. `classify` is the one place that decides; every table uses it.

>>> classify("NONE", "454 4.7.0 encryption too weak 0 less than 128")
'not_offered'
>>> classify("OK", "454 4.7.0 encryption too weak 256 less than 512")
'too_weak'
>>> RESULT_TYPES["cn_mismatch"]
'certificate-host-mismatch'
"""

from __future__ import annotations

import re

#: Every cause identifier, in the order reports list them.
CAUSES: tuple[str, ...] = (
    "handshake_failed",
    "too_weak",
    "not_offered",
    "verify_failed",
    "cn_mismatch",
    "subject_mismatch",
    "issuer_mismatch",
    "dane_failed",
    "protocol",
    "config",
    "disabled_locally",
    "other",
)

#: ``{verify}`` values that tls.c sets after a completed handshake: a ruleset line with one of these as
#: ``arg1`` was evaluated on an established TLS session.
SESSION_VERIFY: frozenset[str] = frozenset(
    {"OK", "NO", "NOT", "FAIL", "TRUSTED", "DANE_FAIL", "DANE_TEMP", "BOGUS_DANE_RES"}
)

#: Causes that only a completed handshake gives (the peer's certificate or the session's strength was
#: judged). ``verify_failed`` is one only in the texts of `on_session`.
ON_SESSION: frozenset[str] = frozenset({"too_weak", "cn_mismatch", "subject_mismatch", "issuer_mismatch"})

#: ``{verify}`` values that by themselves say why a connection was not (or not properly) encrypted
#: (reference section 5). ``TEMP`` (4xy reply to STARTTLS) and ``USAGE`` (501) are protocol refusals.
VERIFY_CAUSES: dict[str, str] = {
    "SOFTWARE": "handshake_failed",
    "FAILURE": "handshake_failed",
    "NONE": "not_offered",
    "CLEAR": "disabled_locally",
    "PROTOCOL": "protocol",
    "TEMP": "protocol",
    "USAGE": "protocol",
    "CONFIG": "config",
    "DANE_FAIL": "dane_failed",
    "DANE_TEMP": "dane_failed",
    "DANE_NOTLS": "dane_failed",
    "BOGUS_DANE_RES": "dane_failed",
    "FAIL": "verify_failed",
    "NO": "verify_failed",
    "NOT": "verify_failed",
}

# Reject texts whose cause does not depend on {verify}; first match wins (reference 6.2, 9).
_TEXT_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), cause)
    for pattern, cause in (
        (r"Cert Subject\b.* does not match\b", "subject_mismatch"),
        (r"Cert Issuer\b.*(?: does not match\b| not acceptable)", "issuer_mismatch"),
        (r"\bCN .* does not match\b", "cn_mismatch"),
        (r"not listed in SANs", "cn_mismatch"),
        (r"DANE check failed|DANE: missing STARTTLS", "dane_failed"),
        (r"TLS handshake(?: failed)?\.", "handshake_failed"),
        (r"STARTTLS temporarily not possible", "config"),
        (r"STARTTLS failed\.", "protocol"),
        (r"STARTTLS disabled locally", "disabled_locally"),
        (r"do not try TLS with", "disabled_locally"),
        (r"other side does not support STARTTLS", "not_offered"),
        (r"TLS not available|TLS currently not available|TLS not permitted", "protocol"),
    )
)
#: A case-insensitive pattern found in every text that `text_cause` recognises: a cheap (vectorisable)
#: prefilter for columns of reply texts, most of which are not about TLS. Keep it in step with the rules.
TLS_TEXT_HINT = r"TLS|does not match|not acceptable|not listed in SANs|DANE|too weak|authenticat"
_AUTH = re.compile(
    r"authentication (?:required|failed|failure)|not authenticated|no authentication requested", re.IGNORECASE
)
# A peer's reply names a TLS verification failure only in sendmail's own words (the whole reply text, lower
# case): "530 5.7.0 Authentication required" (RFC 4954) or "Client was not authenticated" are SMTP AUTH.
_REMOTE_AUTH = re.compile(
    r"(?:^|\s)[45]\d\d[ -](?:[45]\.\d{1,3}\.\d{1,3} )?(?:authentication (?:required|failed|failure [A-Z_]+)"
    r"|not authenticated|no authentication requested)\.?\s*$"
)
_TOO_WEAK = re.compile(r"encryption too weak (?P<actual>\d+)? ?less than (?P<required>\d+)", re.IGNORECASE)


# The VERIFY texts of a {verify} value that a completed handshake sets (reference 6.2): not
# "authentication required" (empty: no STARTTLS), nor "authentication failure TEMP" and the like.
_SESSION_AUTH = re.compile(
    r"authentication failed|(?<!server )not authenticated|no authentication requested"
    rf"|authentication failure (?:{'|'.join(sorted(SESSION_VERIFY))})\b",
    re.IGNORECASE,
)


def on_session(cause: str | None, text: str | None) -> bool:
    """Whether a refusal for ``cause``, worded ``text``, was made on a completed TLS handshake: a delivery
    refused so was encrypted, even when its ``STARTTLS=`` line is missing.

    >>> on_session("cn_mismatch", None), on_session("verify_failed", "454 4.7.0 no authentication requested")
    (True, True)
    >>> on_session("verify_failed", "454 4.7.0 authentication required")
    False
    """
    if cause in ON_SESSION:
        return True
    return cause == "verify_failed" and isinstance(text, str) and _SESSION_AUTH.search(text) is not None


def _verify(value: object) -> str:
    return value.strip().upper() if isinstance(value, str) else ""


def _bits(value: object) -> int | None:
    """An int, or None for None, NaN, pd.NA and junk."""
    try:
        return None if value is None or value != value else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def text_cause(
    text: str | None, verify: str | None = None, *, actual_bits: int | None = None, remote: bool = False
) -> str | None:
    """The cause a reject/deferral text names, or ``None`` when the text is not about TLS.

    ``remote``: the text is a peer's reply (``reply=``), where "authentication ..." names a TLS verification
    failure only in sendmail's exact words; other MTAs use the same words for SMTP AUTH.

    >>> text_cause("Deferred: 454 4.7.0 no authentication requested")
    'verify_failed'
    >>> text_cause("530 5.7.0 Authentication required", remote=True) is None
    True
    >>> text_cause("Deferred: Connection refused by mx.example.net.") is None
    True
    """
    if not isinstance(text, str) or not text:
        return None
    actual_bits = _bits(actual_bits)
    for pattern, cause in _TEXT_RULES:
        if pattern.search(text):
            return cause
    verify = _verify(verify)
    base = VERIFY_CAUSES.get(verify)
    weak = _TOO_WEAK.search(text)
    if weak:
        if actual_bits is None and weak["actual"] is not None:
            actual_bits = int(weak["actual"])
        if actual_bits:
            return "too_weak"
        if base and base != "verify_failed":
            return base
        # 0 bits with no session value: no STARTTLS was done (client: not offered; server: not used)
        return "not_offered" if verify in ("", "NONE") else "too_weak"
    if (_REMOTE_AUTH if remote else _AUTH).search(text):
        return base if base else "verify_failed"
    return None


def classify(verify: str | None, text: str | None, *, actual_bits: int | None = None) -> str:
    """The cause identifier of a TLS failure from ``{verify}`` (``arg1``) and the reject text.

    :param verify: the ``{verify}`` value (``SOFTWARE``, ``NONE``, ``FAIL``...), or ``None``
    :param text: the reject, ``stat=`` or OpenSSL reason text, or ``None``
    :param actual_bits: the actual bits of an ``encryption too weak A less than N`` check when known
    :returns: one of `CAUSES` (``other`` when neither argument says anything known)

    >>> classify("SOFTWARE", "454 4.7.0 TLS handshake failed.")
    'handshake_failed'
    >>> classify("FAIL", "403 4.7.0 authentication failed")
    'verify_failed'
    >>> classify(None, "454 4.7.0 CN mx.lab.test does not match wrong.lab.test")
    'cn_mismatch'
    """
    cause = text_cause(text, verify, actual_bits=actual_bits)
    if cause is not None:
        return cause
    return VERIFY_CAUSES.get(_verify(verify), "other")


#: RFC 8460 (SMTP TLS Reporting) result type of each cause, ``None`` where no result type applies.
#: ``handshake_failed``, ``too_weak`` and ``protocol`` are negotiation failures with no more specific type,
#: so they get the general ``validation-failure``. ``verify_failed`` is ``certificate-not-trusted``
#: (`result_type` refines it to ``certificate-expired`` when OpenSSL's verify message says so).
#: ``subject_mismatch`` (a ``+CS:`` pin on the subject DN) is reported like a host mismatch and
#: ``issuer_mismatch`` (a ``+CI:`` pin) like an untrusted chain. ``dane_failed`` is ``tlsa-invalid``
#: (``DANE_NOTLS`` becomes ``starttls-not-supported`` in `result_type`). ``config``,
#: ``disabled_locally`` and ``other`` are local decisions or unknowns, not negotiation results.
RESULT_TYPES: dict[str, str | None] = {
    "handshake_failed": "validation-failure",
    "too_weak": "validation-failure",
    "not_offered": "starttls-not-supported",
    "verify_failed": "certificate-not-trusted",
    "cn_mismatch": "certificate-host-mismatch",
    "subject_mismatch": "certificate-host-mismatch",
    "issuer_mismatch": "certificate-not-trusted",
    "dane_failed": "tlsa-invalid",
    "protocol": "validation-failure",
    "config": None,
    "disabled_locally": None,
    "other": None,
}


def result_type(cause: str | None, *, verify: str | None = None, verifymsg: str | None = None) -> str | None:
    """The RFC 8460 result type of a cause, refined by the ``{verify}`` value and verify message.

    >>> result_type("verify_failed", verifymsg="certificate has expired")
    'certificate-expired'
    >>> result_type("dane_failed", verify="DANE_NOTLS")
    'starttls-not-supported'
    """
    if not isinstance(cause, str):
        return None
    expired = isinstance(verifymsg, str) and "expired" in verifymsg.lower()
    if cause in ("verify_failed", "issuer_mismatch") and expired:
        return "certificate-expired"
    if cause == "dane_failed" and _verify(verify) == "DANE_NOTLS":
        return "starttls-not-supported"
    if cause == "dane_failed" and _verify(verify) == "DANE_TEMP":
        return "validation-failure"
    return RESULT_TYPES.get(cause)


#: What each cause means for a postmaster, which access-map entry is usually involved, what to check.
EXPLANATIONS: dict[str, str] = {
    "handshake_failed": (
        "The TLS handshake itself failed ({verify}=SOFTWARE, or a connect/accept failure): no common "
        "protocol or cipher, a peer alert, or the connection dropped. Compare protocol and cipher "
        "settings on both sides (CipherList, TLS_Srv_Features/TLS_Clt_Features, OpenSSL versions); "
        "Try_TLS:host NO or TLSFallbacktoClear lets such a peer receive mail in clear."
    ),
    "too_weak": (
        "TLS worked, but the negotiated cipher bits are below what a TLS_Srv:/TLS_Clt:/TLS_Rcpt: entry "
        "requires (ENCR:n or VERIFY:n). Check the required bits in the access map against the peer's cipher."
    ),
    "not_offered": (
        "The peer did not offer (or the client did not use) STARTTLS, but an access-map entry "
        "(TLS_Srv:, TLS_Rcpt:, or TLS_Clt: inbound) requires encryption. Ask the peer to enable STARTTLS or "
        "relax the entry for that domain."
    ),
    "verify_failed": (
        "A TLS_Srv:/TLS_Clt:/TLS_Rcpt: entry requires VERIFY, but the peer's certificate was not verified "
        "(FAIL: untrusted or expired chain; NO: none sent; NOT: none requested). Check CACertPath/"
        "CACertFile, the peer's chain (verifymsg at LogLevel 12), and whether VERIFY is really needed."
    ),
    "cn_mismatch": (
        "A +CN requirement in TLS_Srv:/TLS_Rcpt: did not match the peer certificate's CN (or SANs). "
        "Check the name in the access map against the certificate the peer presents."
    ),
    "subject_mismatch": (
        "A +CS: requirement (certificate subject DN) in the access map did not match the peer's certificate. "
        "The peer probably renewed or replaced its certificate: update the pinned subject."
    ),
    "issuer_mismatch": (
        "A +CI:/+CITag: requirement (certificate issuer) in the access map did not match or was not "
        "acceptable. The peer changed CA: update the pinned issuer or the CITag entries."
    ),
    "dane_failed": (
        "DANE verification failed: the peer's TLSA records do not match its certificate, could not be "
        "checked, or STARTTLS was missing although TLSA records exist. Check the peer's TLSA records and "
        "DNSSEC; it is the peer's fix unless the local resolver is at fault."
    ),
    "protocol": (
        "The STARTTLS command got no usable answer (not 220, or a 4xx/5xx such as 'TLS not available'), so "
        "TLS could not start. Usually a temporary problem on the peer; a TLS_Srv:/TLS_Rcpt: requirement then "
        "defers the mail."
    ),
    "config": (
        "STARTTLS was not possible because of local configuration (tls_clt_features failed, e.g. a "
        "syntax error). Check the Clt_Features:/Srv_Features: access-map entries and the sendmail logs."
    ),
    "disabled_locally": (
        "STARTTLS was turned off locally (Try_TLS:host NO, the C flag, or a clear-text retry after a failed "
        "handshake) while a TLS_Srv:/TLS_Rcpt: entry still requires it. Reconcile the two entries."
    ),
    "other": (
        "A TLS-related refusal that tlslog does not recognise. Read the reject text and the access-map "
        "entries (TLS_Srv:, TLS_Clt:, TLS_Rcpt:, Try_TLS:) that apply to this peer."
    ),
}
