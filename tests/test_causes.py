"""Cause classification of TLS rejects and deferrals (reference sections 5 and 6.2)."""

from __future__ import annotations

import re

import pytest

from tlslog import causes
from tlslog.causes import (
    CAUSES,
    EXPLANATIONS,
    RESULT_TYPES,
    TLS_TEXT_HINT,
    classify,
    result_type,
    text_cause,
)


@pytest.mark.parametrize(
    ("verify", "text", "expected"),
    [
        # reference 6.3 [lab] and [public] lines, arg1 and reject= as logged
        ("SOFTWARE", "454 4.7.0 TLS handshake failed.", "handshake_failed"),
        ("SOFTWARE", "403 4.7.0 TLS handshake failed.", "handshake_failed"),
        ("SOFTWARE", "403 4.7.0 TLS handshake.", "handshake_failed"),
        ("OK", "454 4.7.0 encryption too weak 256 less than 512", "too_weak"),
        ("FAIL", "403 4.7.0 authentication failed", "verify_failed"),
        ("CLEAR", "454 4.7.0 STARTTLS disabled locally", "disabled_locally"),
        ("NONE", "454 4.7.0 other side does not support STARTTLS", "not_offered"),
        ("NONE", "454 4.7.0 encryption too weak 0 less than 128", "not_offered"),
        ("NOT", "454 4.7.0 no authentication requested", "verify_failed"),
        ("NO", "503 5.7.0 not authenticated", "verify_failed"),
        (None, "454 4.7.0 CN mx.lab.test does not match wrong.lab.test", "cn_mismatch"),
        (None, "454 4.7.0 DANE check failed.", "dane_failed"),
        (None, "454 4.7.0 DANE: missing STARTTLS.", "dane_failed"),
        ("DANE_FAIL", "454 4.7.0 DANE check failed.", "dane_failed"),
        ("PROTOCOL", "454 4.7.0 STARTTLS failed.", "protocol"),
        ("CONFIG", "454 4.7.0 STARTTLS temporarily not possible.", "config"),
        ("OK", "454 4.7.0 Cert Subject /CN=a does not match /CN=b", "subject_mismatch"),
        ("OK", "454 4.7.0 Cert Issuer /CN=Old+20CA does not match /CN=New+20CA", "issuer_mismatch"),
        ("OK", "454 4.7.0 Cert Issuer /CN=Some+20CA not acceptable", "issuer_mismatch"),
        ("", "454 4.7.0 authentication required", "verify_failed"),
        ("TEMP", "403 4.7.0 server not authenticated.", "protocol"),
        ("FAIL", "403 4.7.0 server not authenticated.", "verify_failed"),
        ("NONE", "454 4.7.0 authentication failure NONE", "not_offered"),
        # server side: a client that did not STARTTLS, checked by TLS_Clt: ENCR
        ("", "454 4.7.0 encryption too weak 0 less than 128", "not_offered"),
        # remote sendmail's tls_client reply seen in our stat=
        (None, "Deferred: 454 4.7.0 no authentication requested", "verify_failed"),
        (None, "Deferred: 454 4.3.3 TLS not available right now", "protocol"),
        # verify value alone
        ("SOFTWARE", None, "handshake_failed"),
        ("SOFTWARE", "no shared cipher", "handshake_failed"),
        ("DANE_TEMP", None, "dane_failed"),
        (None, None, "other"),
        ("OK", "451 4.3.0 Temporary system failure. Please try again later.", "other"),
    ],
)
def test_classify(verify, text, expected):
    assert classify(verify, text) == expected


def test_too_weak_uses_actual_bits_argument():
    # the text says 0 but the caller knows the session had bits (or the other way round)
    assert classify("OK", "encryption too weak 0 less than 128", actual_bits=56) == "too_weak"
    assert classify("NONE", "encryption too weak 0 less than 128", actual_bits=0) == "not_offered"
    assert classify("CLEAR", "454 4.7.0 encryption too weak 0 less than 128") == "disabled_locally"
    assert classify("SOFTWARE", "454 4.7.0 encryption too weak 0 less than 128") == "handshake_failed"


def test_text_cause_is_none_for_non_tls_texts():
    assert text_cause("Deferred: Connection refused by mx.example.net.") is None
    assert text_cause("Sent (6AM34CLa016051 Message accepted for delivery)") is None
    assert text_cause("User unknown") is None
    assert text_cause(None) is None


# texts of every rule above plus odd cases: the linking prefilter must not hide any of them from text_cause
HINTED_TEXTS = [
    "454 4.7.0 Cert Subject /CN=a does not match /CN=b",
    "454 4.7.0 Cert Issuer /CN=Some+20CA not acceptable",
    "454 4.7.0 cn mx.lab.test DOES NOT MATCH wrong.lab.test",
    "550 5.7.1 mx.example.net not listed in SANs",
    "Deferred: 454 4.7.0 dane: missing starttls.",
    "403 4.7.0 tls handshake.",
    "454 4.7.0 Encryption Too Weak 0 less than 128",
    "Deferred: 530 5.7.0 Authentication Required",
    "503 5.7.0 not authenticated",
    "Deferred: 454 4.3.3 TLS currently not available",
    "do not try TLS with mx.example.net",
]


@pytest.mark.parametrize("text", HINTED_TEXTS)
def test_tls_text_hint_matches_every_recognised_text(text):
    assert text_cause(text) is not None
    assert re.search(TLS_TEXT_HINT, text, re.IGNORECASE)


def test_tls_text_hint_skips_ordinary_replies():
    for text in ("Sent (6AM34CLa016051 Message accepted for delivery)", "Deferred: Connection refused by mx"):
        assert not re.search(TLS_TEXT_HINT, text, re.IGNORECASE)


def test_every_cause_has_explanation_and_result_type_entry():
    assert set(EXPLANATIONS) == set(CAUSES) == set(RESULT_TYPES)
    assert set(causes.VERIFY_CAUSES.values()) <= set(CAUSES)
    for cause, words in EXPLANATIONS.items():
        assert words.strip(), cause
    entries = ("TLS_Srv:", "TLS_Clt:", "TLS_Rcpt:", "Try_TLS:")
    for cause in ("too_weak", "verify_failed", "not_offered", "handshake_failed"):
        assert any(e in EXPLANATIONS[cause] for e in entries), cause


@pytest.mark.parametrize(
    ("cause", "kwargs", "expected"),
    [
        ("not_offered", {}, "starttls-not-supported"),
        ("cn_mismatch", {}, "certificate-host-mismatch"),
        ("verify_failed", {}, "certificate-not-trusted"),
        ("verify_failed", {"verifymsg": "certificate has expired"}, "certificate-expired"),
        ("dane_failed", {}, "tlsa-invalid"),
        ("dane_failed", {"verify": "DANE_NOTLS"}, "starttls-not-supported"),
        ("handshake_failed", {}, "validation-failure"),
        ("disabled_locally", {}, None),
        (None, {}, None),
    ],
)
def test_result_type(cause, kwargs, expected):
    assert result_type(cause, **kwargs) == expected


@pytest.mark.parametrize(
    ("reply", "cause"),
    [
        ("503 5.7.0 not authenticated", "verify_failed"),  # a sendmail peer's TLS_Clt: VERIFY, {verify}=NO
        ("454 4.7.0 no authentication requested", "verify_failed"),
        ("403 4.7.0 authentication failed", "verify_failed"),
        ("530 5.7.0 Authentication required", None),  # RFC 4954 SMTP AUTH
        ("530 5.7.1 Client was not authenticated", None),  # Exchange, SMTP AUTH
        ("535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6", None),  # Postfix, SMTP AUTH
    ],
)
def test_a_peers_reply_names_tls_verification_only_in_sendmails_words(reply, cause):
    assert text_cause(reply, remote=True) == cause
