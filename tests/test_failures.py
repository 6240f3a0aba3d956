# ruff: noqa: E501  (sendmail log lines are long)
"""TLS-caused problems with their affected mail (design.md "Verdicts that must be consistent")."""

from __future__ import annotations

import pandas as pd
import pytest
from test_linking import HANDSHAKE, POLICY, PRE_815, frame

from tlslog import failures
from tlslog.failures import FAILURE_COLUMNS


def by_pid(text: str) -> pd.DataFrame:
    f = failures(frame(text))
    assert list(f.columns) == FAILURE_COLUMNS
    return f


def test_handshake_failure_chain_is_one_problem_with_its_mail():
    f = by_pid(HANDSHAKE)
    # connect failed + ruleset=tls_server + to= is one row per process, not three
    assert len(f) == 2
    first = f.iloc[0]
    assert first["cause"] == "handshake_failed" and first["result_type"] == "validation-failure"
    assert first["error"] == "sslv3 alert handshake failure" and first["verify"] == "SOFTWARE"
    assert first["reply_code"] == 454 and first["reject"] == "454 4.7.0 TLS handshake failed."
    # the second queue id reused the cached failure in the same process
    assert list(first["qids"]) == ["6AM35UXB016756", "6AM35UXC016756"]
    assert list(first["recipients"]) == ["other@lab.test", "root@lab.test"]
    assert first["outcome"] == "deferred" and first["direction"] == "client"
    assert f.iloc[1]["outcome"] == "sent"  # fallback to clear text delivered it
    assert "TLS_Srv" in first["explanation"]


@pytest.mark.parametrize(
    ("pid", "cause", "result_type", "outcome", "bits"),
    [
        (16385, "too_weak", "validation-failure", "deferred", (512, 256)),
        (16417, "verify_failed", "certificate-not-trusted", "deferred", (None, None)),
        (16916, "not_offered", "starttls-not-supported", "deferred", (128, 0)),
        (16887, "disabled_locally", None, "deferred", (None, None)),
        (16329, "verify_failed", "certificate-not-trusted", "deferred", (None, None)),  # remote reply
        (16340, "verify_failed", "certificate-not-trusted", "bounced", (None, None)),
    ],
)
def test_policy_failures(pid, cause, result_type, outcome, bits):
    f = by_pid(POLICY).set_index("pid")
    row = f.loc[pid]
    assert row["cause"] == cause and row["outcome"] == outcome
    assert (row["result_type"] if not pd.isna(row["result_type"]) else None) == result_type
    required, actual = (None if pd.isna(v) else int(v) for v in (row["required_bits"], row["actual_bits"]))
    assert (required, actual) == bits
    assert len(row["qids"]) == 1


def test_inbound_refusals():
    text = (
        PRE_815
        + """
Nov 22 03:05:02 vm sm-mta[16330]: STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1.3, verify=NOT, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:05:02 vm sm-mta[16330]: ruleset=tls_client, arg1=NOT, arg2=STARTTLS, relay=localhost [127.0.0.1], reject=454 4.7.0 no authentication requested
"""
    )
    f = by_pid(text).set_index("pid")
    assert f.loc[4600, "cause"] == "handshake_failed" and f.loc[4600, "outcome"] == "refused"
    assert f.loc[4600, "error"] == "no shared cipher" and f.loc[4600, "peer_domain"] == "example.com"
    assert f.loc[16330, "cause"] == "verify_failed" and f.loc[16330, "outcome"] == "refused"
    assert f.loc[16330, "verify"] == "NOT" and f.loc[16330, "internal"]
    assert set(f["direction"].astype(str)) == {"server"}


def test_tls_rcpt_failure_names_its_recipient():
    f = by_pid("""
Nov 22 03:05:16 vm sendmail[16396]: STARTTLS=client, relay=[127.0.0.1], version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:05:16 vm sendmail[16396]: 6AM35GYX016396: ruleset=tls_rcpt, arg1=root@lab.test, relay=[127.0.0.1], reject=454 4.7.0 CN mx.lab.test does not match wrong.lab.test
Nov 22 03:05:16 vm sendmail[16396]: 6AM35GYX016396: to=root@lab.test, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30064, relay=[127.0.0.1] [127.0.0.1], dsn=4.2.0, stat=Deferred
""")
    assert len(f) == 1
    row = f.iloc[0]
    assert row["cause"] == "cn_mismatch" and row["result_type"] == "certificate-host-mismatch"
    assert list(row["qids"]) == ["6AM35GYX016396"] and list(row["recipients"]) == ["root@lab.test"]
    assert row["outcome"] == "deferred"


def test_public_lines_without_to_lines():
    # sonic.net grok test lines (connect failed after the ruleset line) and an envelope-less line
    f = by_pid("""
Dec  4 10:24:32 c.spam.sonic.net sendmail[32283]: ruleset=tls_server, arg1=SOFTWARE, relay=goransoncpa-com.mail.eo.outlook.com, reject=403 4.7.0 TLS handshake failed.
Dec  4 10:24:32 c.spam.sonic.net sendmail[32283]: STARTTLS=client, error: connect failed=0, SSL_error=5
""")
    assert (f["cause"] == "handshake_failed").all()
    assert (f["outcome"] == "unknown").all()
    assert f.iloc[0]["peer_domain"] == "outlook.com" and not f.iloc[0]["internal"]


def test_no_failures_gives_empty_frame():
    f = by_pid("""
Mar 3 13:16:18 mail sendmail[17209]: STARTTLS=client, relay=[127.0.0.1], version=TLSv1/SSLv3, verify=FAIL, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256/256
""")
    assert f.empty
