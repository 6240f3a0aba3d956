"""Tests of benchmarks/generate.py: determinism, sendmail line formats, and the sample truth record."""

from __future__ import annotations

import calendar
import gzip
import importlib.util
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_logs"
TRUTH = ROOT / "tests" / "data" / "sample_truth.json"

_spec = importlib.util.spec_from_file_location("generate", ROOT / "benchmarks" / "generate.py")
gen = importlib.util.module_from_spec(_spec)
sys.modules["generate"] = gen
_spec.loader.exec_module(gen)

QID = r"[0-9A-Za-x][0-9AB][1-9A-V][0-9A-N][0-9A-Za-y]{2}[0-9A-Za-x]{2}\d{6,}"
BSD = re.compile(
    r"^(?P<ts>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d) (?P<host>\S+) (?P<prog>[\w-]+)(?:\[(?P<pid>\d+)\])?: "
    r"(?P<msg>\S.*)$"
)
RFC = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00) (?P<host>\S+) (?P<prog>[\w-]+)"
    r"(?:\[(?P<pid>\d+)\])?: (?P<msg>\S.*)$"
)
SUMMARY = re.compile(
    r"^STARTTLS=(server|client), relay=(.+?), version=(TLSv1(?:\.[123])?), verify=(OK|NO|NOT|FAIL), "
    r"cipher=[\w-]+, bits=(\d+)/(\d+)$"
)
FAILED = re.compile(
    r"^STARTTLS=(server|client), error: (accept|connect) failed=-?\d+, reason=[^,]+, SSL_error=\d, "
    r"errno=\d+, retry=-?\d+(, relay=.+)?$"
)


def run(tmp_path: Path, name: str, *args: str) -> Path:
    out = tmp_path / name
    assert gen.main([*args, "--out", str(out)]) == 0
    return out


def qid_time(qid: str) -> tuple[int, int, int, int, int]:
    """(month 1-12, day, hour, minute, second) encoded in a queue id."""
    c = gen.QCHARS.index
    return c(qid[1]) + 1, c(qid[2]), c(qid[3]), c(qid[4]), c(qid[5])


def test_queue_id_matches_the_reference_example():
    t = calendar.timegm((2026, 11, 22, 3, 4, 12)) * gen.US
    assert gen.queue_id(t, gen.QCHARS.index("L") * 60 + gen.QCHARS.index("a"), 16051) == "6AM34CLa016051"
    assert gen.queue_id(t, 0, 1240916) == "6AM34C001240916"


def test_sm_delay_format():
    assert gen.sm_delay(0) == "00:00:00"
    assert gen.sm_delay((2 * 86400 + 3661) * gen.US) == "2+01:01:01"


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = run(tmp_path, "a", "--days", "1", "--seed", "7")
    b = run(tmp_path, "b", "--days", "1", "--seed", "7")
    c = run(tmp_path, "c", "--days", "1", "--seed", "8")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_lines_stops_after_the_scenario_that_crosses_n(tmp_path):
    out = run(tmp_path, "n", "--lines", "3000", "--seed", "3")
    n = len(out.read_text().splitlines())
    assert 3000 <= n < 3100


def test_bsd_lines_follow_sendmail_formats(tmp_path):
    out = run(tmp_path, "mx1", "--days", "2", "--seed", "11")
    lines = out.read_text().splitlines()
    assert len(lines) > 300
    kinds = Counter()
    for line in lines:
        m = BSD.match(line)
        assert m, line
        assert m["host"] == "mx1"
        msg, prog = m["msg"], m["prog"]
        assert prog in {"sm-mta", "sendmail", "sm-msp-queue", "opendkim", "dovecot"}
        if msg.startswith("STARTTLS=") and ", version=" in msg:
            kinds["summary"] += 1
            s = SUMMARY.match(msg)
            assert s, msg
            if s[1] == "client" and s[2] != "[127.0.0.1]":
                assert s[2].endswith("."), msg
        elif "error: accept failed" in msg or "error: connect failed" in msg:
            kinds["failed"] += 1
            assert FAILED.match(msg), msg
            assert ("relay=" in msg) == msg.startswith("STARTTLS=server")
        elif msg.startswith("ruleset=tls_server"):
            kinds["tls_server"] += 1
            relay = re.search(r"relay=([^,]+),", msg)[1]
            assert not relay.endswith("."), msg
        elif "ruleset=tls_rcpt" in msg:
            assert re.match(
                rf"^{QID}: ruleset=tls_rcpt, arg1=\S+@\S+, relay=\S+\., reject=454 4\.7\.0 CN ", msg
            )
        q = re.match(rf"^({QID}): ", msg)
        if q:
            month, day, hour, _minute, _second = qid_time(q[1])
            ts = m["ts"]
            assert (month, day) == (11, int(ts[4:6])) or day == int(ts[4:6]) - 1 or hour == 23
            if " from=<" in msg and prog == "sm-mta" and "daemon=" in msg:
                assert q[1][8:] == f"{int(m['pid']):06d}", line
        if " to=" in msg and "mailer=esmtp" in msg and "stat=queued" not in msg:
            assert re.search(r"relay=\S+\.( \[[\d.:a-fIPv6]+\])?, dsn=", msg), msg
    assert kinds["summary"] > 50 and kinds["tls_server"] > 0


def test_no_queue_id_on_starttls_lines_and_pid_reuse_stays_apart(tmp_path):
    out = run(tmp_path, "mx1", "--lines", "40000", "--seed", "2")
    first_seen: dict[str, str] = {}
    reused = 0
    for line in out.read_text().splitlines():
        m = BSD.match(line)
        assert m
        if re.match(rf"^{QID}: STARTTLS", m["msg"]):
            pytest.fail(line)
        if m["pid"] and m["prog"] == "sm-mta":
            day = m["ts"][:6]
            if first_seen.setdefault(m["pid"], day) != day:
                reused += 1
    assert reused > 0  # pid_max 32768 wraps within the week


def test_rfc3339_and_journal_envelopes(tmp_path):
    rfc = run(tmp_path, "mx2", "--host", "mx2", "--format", "rfc3339", "--days", "2")
    for line in rfc.read_text().splitlines():
        assert RFC.match(line), line
    journal = run(tmp_path, "out1", "--host", "out1", "--format", "journal", "--days", "1")
    recs = [json.loads(line) for line in journal.read_text().splitlines()]
    assert recs
    for r in recs:
        assert r["__REALTIME_TIMESTAMP"].isdigit() and r["_HOSTNAME"] == "out1"
        assert r["SYSLOG_TIMESTAMP"].endswith(" ") and not r["MESSAGE"].startswith(" ")
        assert r["SYSLOG_FACILITY"] == "2" and r["PRIORITY"] in {"4", "5", "6"}
        assert r["__CURSOR"].startswith("s=")
    pids = {int(r["SYSLOG_PID"]) for r in recs if r["SYSLOG_IDENTIFIER"] == "sm-mta"}
    assert max(pids) >= 1_000_000  # 7-digit pids: 15-character queue ids
    assert any(re.match(r"^\w{8}\d{7}: ", r["MESSAGE"]) for r in recs)


def test_truth_written_for_a_single_run(tmp_path):
    truth = tmp_path / "t.json"
    out = run(tmp_path, "x", "--days", "1", "--seed", "4", "--truth", str(truth))
    doc = json.loads(truth.read_text())
    text = out.read_text()
    assert doc["files"][str(out)]["lines"] == len(text.splitlines())
    for r in doc["receipts"]:
        assert f"{r['qid']}: from=" in text


# ---- the committed sample set and its truth record ---------------------------------------------------


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads(TRUTH.read_text())


@pytest.fixture(scope="module")
def messages() -> dict[str, list[tuple[str, str | None, str]]]:
    """host -> [(timestamp text, pid, message)] over the sample files."""
    out: dict[str, list] = defaultdict(list)
    mx1 = (
        gzip.decompress((SAMPLES / "maillog.1.gz").read_bytes()).decode() + (SAMPLES / "maillog").read_text()
    )
    for text, pat in ((mx1, BSD), ((SAMPLES / "mail.log").read_text(), RFC)):
        for line in text.splitlines():
            m = pat.match(line)
            assert m, line
            out[m["host"]].append((m["ts"], m["pid"], m["msg"]))
    for line in (SAMPLES / "sm-mta.journal.json").read_text().splitlines():
        r = json.loads(line)
        out[r["_HOSTNAME"]].append((r["__REALTIME_TIMESTAMP"], r.get("SYSLOG_PID"), r["MESSAGE"]))
    return out


def test_sample_regenerates_identically(tmp_path, truth):
    cmd = ["--sample", str(tmp_path / "s"), "--truth", str(tmp_path / "t.json")]
    assert gen.main(cmd) == 0
    for name in truth["files"]:
        assert (tmp_path / "s" / name).read_bytes() == (SAMPLES / name).read_bytes(), name
    assert (tmp_path / "t.json").read_text() == TRUTH.read_text()


def test_sample_sizes_and_rotation(truth, messages):
    assert 3000 <= sum(f["lines"] for f in truth["files"].values()) <= 6000
    assert (
        len(messages["mx1"]) == truth["files"]["maillog.1.gz"]["lines"] + truth["files"]["maillog"]["lines"]
    )
    assert len(messages["mx2"]) == truth["files"]["mail.log"]["lines"]
    assert len(messages["out1"]) == truth["files"]["sm-mta.journal.json"]["lines"]
    assert gzip.decompress((SAMPLES / "maillog.1.gz").read_bytes()).decode().startswith("Nov  9 ")
    assert (SAMPLES / "maillog").read_text().startswith("Nov 12 ")
    assert (SAMPLES / "maillog.1.gz").read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0


def test_truth_receipts_and_deliveries_are_in_the_logs(truth, messages):
    froms = {(h, m.split(":", 1)[0]) for h, rows in messages.items() for _, _, m in rows if ": from=" in m}
    tos: set[tuple[str, str, str]] = set()
    for h, rows in messages.items():
        for _, _, m in rows:
            t = re.match(rf"^({QID}): to=(.+?), (?:ctladdr=.+?, )?delay=", m)
            if t:
                for r in t[2].split(","):
                    tos.add((h, t[1], r.strip("<>")))
    assert {(r["host"], r["qid"]) for r in truth["receipts"]} == froms
    smtp = {d for d in tos if "@" in d[2] or d[2] == "root"}
    recorded = {(d["host"], d["qid"], d["recipient"]) for d in truth["deliveries"]}
    assert recorded <= smtp
    assert len(recorded) > 300


def test_truth_sessions_match_the_starttls_lines(truth, messages):
    per_host = Counter()
    for h, rows in messages.items():
        for _, _, m in rows:
            if SUMMARY.match(m) or FAILED.match(m):
                per_host[h] += 1
    assert Counter(s["host"] for s in truth["sessions"]) == per_host
    for s in truth["sessions"]:
        assert (s["outcome"] == "ok") == (s["cause"] is None)
        assert s["messages"] >= 0


def test_truth_verdicts_follow_design(truth):
    for d in truth["deliveries"]:
        cause, enc = d["tls_failure"], d["encrypted"]
        if cause in ("too_weak", "verify_failed", "cn_mismatch"):
            assert enc is True, d
        if cause in ("handshake_failed", "not_offered"):
            assert enc is False, d
        if enc is None:
            assert d["status"] in ("deferred", "queued") and cause is None, d
            assert d["relay_ip"] in (None, "127.0.0.1"), d  # no address, or the literal [127.0.0.1]
        if d["status"] == "queued":
            assert enc is None
        if enc is True:
            assert d["session"] is not None and d["version"] is not None
    for r in truth["receipts"]:
        assert r["encrypted"] == (r["session"] is not None)
        if r["relay_host"] is None and r["relay_ip"] is None:
            assert r["internal"] and not r["encrypted"]  # command-line submission
    causes = Counter(d["tls_failure"] for d in truth["deliveries"] if d["tls_failure"])
    assert set(causes) == {"handshake_failed", "too_weak", "not_offered", "verify_failed", "cn_mismatch"}
    assert causes["cn_mismatch"] == 1
    assert any(d["stat"] == "Service unavailable" for d in truth["deliveries"])
    assert any(x["text"].startswith("Cannot send message") for x in truth["dsns"])


def test_truth_acme_breaks_on_wednesday(truth):
    acme = [d for d in truth["deliveries"] if d["peer_domain"] == "acme.example"]
    failed = [d["timestamp"] for d in acme if d["tls_failure"] == "handshake_failed"]
    assert failed and min(failed) >= "2026-11-11T09:40"
    assert any(d["status"] == "sent" and d["timestamp"] > max(failed) for d in acme)


def test_truth_peer_domains_agree_with_the_public_suffix_list(truth):
    psl = pytest.importorskip("publicsuffixlist").PublicSuffixList()
    rows = truth["receipts"] + truth["deliveries"] + truth["sessions"]
    for r in rows:
        host = r["relay_host"]
        if host and host != "localhost":
            assert psl.privatesuffix(host) == r["peer_domain"], r
        elif r["relay_ip"] and not host:
            assert r["peer_domain"] == r["relay_ip"]


def test_connection_caching_one_session_several_qids(truth):
    by_session = defaultdict(set)
    for d in truth["deliveries"]:
        if d["session"] is not None:
            by_session[d["session"]].add(d["qid"])
    assert any(len(q) > 1 for q in by_session.values())
