"""Weak-crypto classification on the protocol and cipher names sendmail logs."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tlslog.crypto import is_tls12_or_newer, weakness

OLD_TLS1 = "old protocol (TLSv1)"
OLD_FAMILY = "old protocol (TLSv1/SSLv3)"


@pytest.mark.parametrize(
    ("version", "cipher", "bits"),
    [
        ("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256),  # [lab] sm-mta[16051]
        ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256", 256),
        ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", 128),  # [lab] sm-mta[17610]
        ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", 256),
        ("TLSv1.2", "DHE-RSA-AES256-SHA", 256),
        ("TLSv1.2", "AES128-SHA", 128),
        ("TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 128),
        ("TLSv1.2", "ECDHE-ECDSA-CHACHA20-POLY1305", 256),
        # CentOS 7 (8.14): sendmail logs the family name, but a GCM suite means TLS 1.2 was negotiated
        ("TLSv1/SSLv3", "ECDHE-RSA-AES256-GCM-SHA384", 256),
    ],
)
def test_strong_sessions_have_no_reasons(version, cipher, bits):
    assert weakness(version, cipher, bits) == ()


@pytest.mark.parametrize(
    ("version", "cipher", "bits", "expected"),
    [
        # sonic.net, 2012: RC4 with sendmail's pre-8.15 family version
        ("TLSv1/SSLv3", "RC4-SHA", 128, ("old protocol (TLSv1/SSLv3)", "RC4")),
        ("TLSv1/SSLv3", "RC4-MD5", 128, ("old protocol (TLSv1/SSLv3)", "RC4")),
        ("TLSv1/SSLv3", "AES128-SHA", 128, ("old protocol (TLSv1/SSLv3)",)),
        ("TLSv1", "DHE-RSA-AES256-SHA", 256, ("old protocol (TLSv1)",)),
        ("TLSv1.1", "ECDHE-RSA-AES256-SHA", 256, ("old protocol (TLSv1.1)",)),
        ("SSLv3", "DES-CBC3-SHA", 112, ("old protocol (SSLv3)", "3DES", "cipher bits 112 < 128")),
        ("TLSv1.2", "DES-CBC3-SHA", 168, ("3DES",)),
        ("TLSv1.2", "ECDHE-RSA-DES-CBC3-SHA", 112, ("3DES", "cipher bits 112 < 128")),
        ("TLSv1.2", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", 112, ("3DES", "cipher bits 112 < 128")),
        ("TLSv1", "EDH-RSA-DES-CBC-SHA", 56, ("old protocol (TLSv1)", "DES", "cipher bits 56 < 128")),
        ("TLSv1.2", "TLS_RSA_WITH_DES_CBC_SHA", 56, ("DES", "cipher bits 56 < 128")),
        ("TLSv1/SSLv3", "EXP-RC4-MD5", 40, (OLD_FAMILY, "RC4", "EXPORT", "cipher bits 40 < 128")),
        ("TLSv1", "EXP-EDH-RSA-DES-CBC-SHA", 40, (OLD_TLS1, "DES", "EXPORT", "cipher bits 40 < 128")),
        ("TLSv1", "TLS_RSA_EXPORT_WITH_RC4_40_MD5", 40, (OLD_TLS1, "RC4", "EXPORT", "cipher bits 40 < 128")),
        ("TLSv1", "EXP1024-RC4-SHA", 56, ("old protocol (TLSv1)", "RC4", "EXPORT", "cipher bits 56 < 128")),
        ("TLSv1.2", "NULL-SHA", 0, ("NULL cipher", "cipher bits 0 < 128")),
        ("TLSv1.2", "TLS_RSA_WITH_NULL_SHA256", 0, ("NULL cipher", "cipher bits 0 < 128")),
        ("TLSv1.2", "ADH-AES256-SHA", 256, ("anonymous",)),
        ("TLSv1.2", "ADH-AES256-GCM-SHA384", 256, ("anonymous",)),
        ("TLSv1.2", "AECDH-AES128-SHA", 128, ("anonymous",)),
        ("TLSv1.2", "AECDH-NULL-SHA", 0, ("NULL cipher", "anonymous", "cipher bits 0 < 128")),
        ("TLSv1.2", "TLS_DH_anon_WITH_AES_128_CBC_SHA", 128, ("anonymous",)),
        ("TLSv1.2", "TLS_ECDH_anon_WITH_RC4_128_SHA", 128, ("RC4", "anonymous")),
        ("TLSv1.2", "IDEA-CBC-SHA", 64, ("cipher bits 64 < 128",)),
    ],
)
def test_weak_sessions_name_every_reason(version, cipher, bits, expected):
    assert weakness(version, cipher, bits) == expected


def test_unknown_values_are_not_weak():
    assert weakness(None, None, None) == ()
    assert weakness("UNKNOWN", None, None) == ()
    assert weakness("other", "SOME-FUTURE-SUITE", 256) == ()


def test_missing_values_from_a_frame_count_as_unknown():
    assert weakness(math.nan, math.nan, math.nan) == ()
    assert weakness(pd.NA, pd.NA, pd.NA) == ()
    assert weakness("TLSv1.2", "RC4-SHA", pd.NA) == ("RC4",)


def test_zero_bits_without_a_cipher_is_sendmails_missing_value():
    # "A missing value prints as 0" (bits=0/0 with no cipher) is no zero-bit session
    assert weakness("TLSv1.2", None, 0) == ()


def test_bits_at_the_floor_are_fine():
    assert weakness("TLSv1.2", "AES128-SHA256", 128) == ()
    assert weakness("TLSv1.2", "AES128-SHA256", 127) == ("cipher bits 127 < 128",)


@pytest.mark.parametrize(
    ("version", "cipher", "expected"),
    [
        ("TLSv1.3", None, True),
        ("TLSv1.2", None, True),
        ("TLSv1.4", None, True),
        ("TLSv1.1", None, False),
        ("TLSv1", None, False),
        ("SSLv3", None, False),
        ("SSLv2", None, False),
        ("TLSv1/SSLv3", None, False),
        ("TLSv1/SSLv3", "RC4-SHA", False),
        ("TLSv1/SSLv3", "DHE-RSA-AES256-SHA", False),
        ("TLSv1/SSLv3", "ECDHE-RSA-AES256-GCM-SHA384", True),
        ("TLSv1/SSLv3", "AES256-SHA256", True),
        ("unknown", None, None),
        ("UNKNOWN", None, None),
        ("other", None, None),
        (None, "TLS_AES_256_GCM_SHA384", None),
        (math.nan, None, None),
    ],
)
def test_is_tls12_or_newer(version, cipher, expected):
    assert is_tls12_or_newer(version, cipher) is expected
