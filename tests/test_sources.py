"""tlslog.sources: finding logs (expand) and reading them as text lines (read_lines)."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tlslog import decoding, sources
from tlslog.records import InputError, ParseIssue
from tlslog.sources import MAX_LINE, Source, expand, read_lines

STARTTLS = (
    "Nov 22 03:04:12 vm sm-mta[16051]: STARTTLS=server, relay=localhost [127.0.0.1], "
    "version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256"
)
LINES = [
    STARTTLS,
    "Dec  4 10:24:32 c.spam.sonic.net sendmail[32283]: ruleset=tls_server, arg1=SOFTWARE, "
    "relay=goransoncpa-com.mail.eo.outlook.com, reject=403 4.7.0 TLS handshake failed.",
    "Dec  4 10:24:32 c.spam.sonic.net sendmail[32283]: STARTTLS=client, error: connect failed=0, SSL_error=5",
    "Sep  9 11:59:01 ip-172-31-40-194 sm-mta[7423]: STARTTLS=client, relay=gmail-smtp-in.l.google.com., "
    "version=TLSv1.3, verify=FAIL, cipher=TLS_AES_256_GCM_SHA384, bits=256/256",
]
TEXT = ("\n".join(LINES) + "\n").encode()


def read(source: Source) -> tuple[list[str], list[ParseIssue]]:
    issues: list[ParseIssue] = []
    return list(read_lines(source, on_issue=issues.append)), issues


def one(path: Path) -> Source:
    (source,) = expand(path)
    return source


def touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).write_bytes(TEXT)


def names(found: list[Source]) -> list[str]:
    return [Path(s.name).name for s in found]


# -- expand --


def test_rotated_set_oldest_first(tmp_path):
    touch(tmp_path, "maillog", "maillog.1", "maillog.2.gz", "maillog.3.gz", "maillog.10.gz")
    assert names(expand(tmp_path)) == [
        "maillog.10.gz",
        "maillog.3.gz",
        "maillog.2.gz",
        "maillog.1",
        "maillog",
    ]


def test_date_suffixes_oldest_first(tmp_path):
    touch(tmp_path, "maillog", "maillog-20261115", "maillog-20261108.gz", "maillog-20261101.xz")
    assert names(expand(tmp_path)) == [
        "maillog-20261101.xz",
        "maillog-20261108.gz",
        "maillog-20261115",
        "maillog",
    ]


def test_explicit_files_are_put_in_rotation_order(tmp_path):
    touch(tmp_path, "maillog", "maillog.1")
    found = expand([tmp_path / "maillog", tmp_path / "maillog.1"])
    assert names(found) == ["maillog.1", "maillog"]


def test_groups_keep_the_order_they_were_named_in(tmp_path):
    touch(tmp_path, "mail.log", "mail.log.1", "syslog", "syslog.1")
    found = expand(
        [tmp_path / "syslog", tmp_path / "mail.log", tmp_path / "syslog.1", tmp_path / "mail.log.1"]
    )
    assert names(found) == ["syslog.1", "syslog", "mail.log.1", "mail.log"]


def test_directory_keeps_log_like_files_only(tmp_path):
    logs = [
        "maillog",
        "mail.log.1",
        "mail.info",
        "mail.warn",
        "mail.err.2.gz",
        "syslog.1.bz2",
        "messages",
        "sendmail.log",
        "journal.json",
        "rsyslog.jsonl",
        "messages-20261115.xz",
    ]
    others = [
        ".maillog.swp",
        "README",
        "README.txt",
        "notes.md",
        "wtmp",
        "lastlog",
        "maillog.md",
        "dpkg.conf",
    ]
    touch(tmp_path, *logs, *others)
    (tmp_path / "sub.log").mkdir()  # a directory is not a file, and there is no recursion
    (tmp_path / "sub.log" / "maillog").write_bytes(TEXT)
    assert sorted(names(expand(tmp_path))) == sorted(logs)


def test_directory_without_logs_is_an_error(tmp_path):
    touch(tmp_path, "README", "notes.md")
    with pytest.raises(InputError, match=r"no maillog-like files in directory .*looked for maillog\*"):
        expand(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no maillog-like files in directory .*empty"):
        expand(tmp_path / "empty")


def test_glob(tmp_path):
    touch(tmp_path, "maillog", "maillog.1", "maillog-20261115.gz", "mail.log")
    found = expand(str(tmp_path / "maillog*"))
    assert names(found) == ["maillog.1", "maillog-20261115.gz", "maillog"]


def test_glob_that_matches_nothing(tmp_path):
    with pytest.raises(InputError, match=r"no file matches .*maillog\*"):
        expand(str(tmp_path / "maillog*"))


def test_duplicates_are_read_once(tmp_path):
    touch(tmp_path, "maillog", "maillog.1")
    (tmp_path / "current").symlink_to(tmp_path / "maillog")
    found = expand(
        [tmp_path / "maillog", str(tmp_path / "maillog*"), tmp_path, tmp_path / "current", "-", "-"]
    )
    assert names(found) == ["maillog.1", "maillog", "<stdin>"]


def test_missing_path_names_it_and_says_what_to_do(tmp_path):
    touch(tmp_path, "syslog")
    missing = tmp_path / "maillog"
    with pytest.raises(InputError, match=rf"no such file: {missing} \(pass the log's path, or - for stdin\)"):
        expand([tmp_path, missing])


def test_not_a_regular_file():
    with pytest.raises(InputError, match="not a regular file or directory: /dev/null"):
        expand("/dev/null")


def test_unreadable_file(tmp_path, monkeypatch):
    touch(tmp_path, "maillog")
    real_open = os.open

    def deny(path, flags, *args):
        if str(path).endswith("maillog"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(sources.os, "open", deny)
    with pytest.raises(InputError, match=r"permission denied: .*maillog \(.*sudo"):
        expand(tmp_path / "maillog")


def test_source_fields(tmp_path):
    path = tmp_path / "maillog"
    path.write_bytes(TEXT)
    os.utime(path, (1795316628, 1795316628))
    source = one(path)
    assert source == Source(str(path), path, datetime.fromtimestamp(1795316628), len(TEXT))
    stdin = expand("-")[0]
    assert (stdin.name, stdin.path, stdin.size) == ("<stdin>", None, None)
    assert abs((datetime.now() - stdin.reference).total_seconds()) < 60


def test_defaults(tmp_path, monkeypatch):
    folder = tmp_path / "log"
    folder.mkdir()
    monkeypatch.setattr(sources, "DEFAULT_LOCATIONS", (str(tmp_path / "maillog"), str(folder / "mail.log")))
    with pytest.raises(InputError, match=rf"no maillog found at {tmp_path}/maillog, {folder}/mail.log"):
        expand(None)
    touch(folder, "mail.log", "mail.log.1", "mail.log.2.gz", "mail.err", "syslog")
    assert names(expand(None)) == names(expand([])) == ["mail.log.2.gz", "mail.log.1", "mail.log"]


# -- read_lines: formats --


@pytest.mark.parametrize(
    ("name", "pack"),
    [
        ("maillog", bytes),
        ("maillog.1.gz", gzip.compress),
        ("maillog.2.bz2", bz2.compress),
        ("maillog.3.xz", lzma.compress),
    ],
)
def test_each_compression(tmp_path, name, pack):
    (tmp_path / name).write_bytes(pack(TEXT))
    assert read(one(tmp_path / name)) == (LINES, [])


@pytest.mark.parametrize("pack", [gzip.compress, bz2.compress, lzma.compress])
def test_compression_found_by_magic_bytes_not_name(tmp_path, pack):
    path = tmp_path / "maillog.1"  # logrotate without the compressext option
    path.write_bytes(pack(TEXT))
    assert read(one(path)) == (LINES, [])


def test_multi_member_gzip(tmp_path):
    path = tmp_path / "maillog.gz"
    path.write_bytes(gzip.compress(TEXT) + gzip.compress(TEXT))
    assert read(one(path)) == (LINES + LINES, [])


def test_gz_name_without_compression_is_read_as_text(tmp_path):
    path = tmp_path / "maillog.gz"
    path.write_bytes(TEXT)
    lines, issues = read(one(path))
    assert lines == LINES
    assert [i.reason for i in issues] == ["named like a gzip archive but not compressed; read as plain text"]


def test_gz_name_with_binary_content_is_one_issue(tmp_path):
    path = tmp_path / "maillog.gz"
    path.write_bytes(bytes(range(256)) * 40)
    lines, issues = read(one(path))
    assert lines == []
    assert [(i.source, i.lineno, i.reason) for i in issues] == [
        (str(path), 0, "not a gzip archive (wrong magic bytes) and not text; skipped")
    ]


def test_zstd_says_how_to_read_it(tmp_path):
    path = tmp_path / "maillog.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(20))
    lines, issues = read(Source(str(path), path, datetime.now(), 24))
    assert lines == []
    assert "zstd -d" in issues[0].reason


class FakeStdin:
    def __init__(self, data: bytes):
        self.buffer = io.BytesIO(data)


@pytest.mark.parametrize("pack", [bytes, gzip.compress])
def test_stdin(monkeypatch, pack):
    monkeypatch.setattr(sys, "stdin", FakeStdin(pack(TEXT)))
    assert read(expand("-")[0]) == (LINES, [])


def test_empty_file(tmp_path):
    (tmp_path / "maillog").write_bytes(b"")
    (tmp_path / "maillog.1.gz").write_bytes(gzip.compress(b""))
    for source in expand(tmp_path):
        assert read(source) == ([], [])


def test_line_ends(tmp_path):
    path = tmp_path / "maillog"
    path.write_bytes(
        b"\xef\xbb\xbf" + LINES[0].encode() + b"\r\n\r\n" + LINES[1].encode() + b"\r\n" + b"last\r"
    )
    assert read(one(path)) == ([LINES[0], "", LINES[1], "last"], [])


def test_lines_across_read_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "CHUNK", 7)  # every line spans several reads
    monkeypatch.setattr(decoding, "CHUNK", 7)
    path = tmp_path / "maillog"
    path.write_bytes(TEXT + LINES[0].encode())  # and the last has no newline
    assert read(one(path)) == ([*LINES, LINES[0]], [])


def test_file_removed_after_expand(tmp_path):
    path = tmp_path / "maillog"
    path.write_bytes(TEXT)
    source = one(path)
    path.unlink()
    with pytest.raises(InputError, match=r"cannot open .*maillog"):
        list(read_lines(source))


# -- read_lines: damage --


def test_invalid_utf8_is_replaced_and_counted_once(tmp_path):
    path = tmp_path / "maillog"
    latin1 = "Nov 22 03:04:15 vm sm-mta[16051]: qAM34FqK016051: from=<m\xfcller@example.org>, size=1"
    path.write_bytes(TEXT + latin1.encode("latin-1") + b"\n" + TEXT + latin1.encode("latin-1") + b"\n")
    lines, issues = read(one(path))
    assert lines[4] == latin1.replace("\xfc", "\ufffd")
    assert lines[:4] == lines[5:9] == LINES
    assert [(i.lineno, i.reason) for i in issues] == [
        (5, "2 lines have invalid UTF-8 (shown as U+FFFD), the first is line 5")
    ]


def test_nul_bytes_and_binary_garbage_keep_line_numbers(tmp_path):
    path = tmp_path / "maillog"
    garbage = bytes(range(128, 256)) + b"\x01\x02\x03"
    path.write_bytes(
        TEXT
        + b"utmp\x00\x00\x00\x07record\n"
        + garbage
        + b"\n"
        + b"\x01\x02\x03\x04\x05\x06\x07\x08\n"
        + TEXT
    )
    lines, issues = read(one(path))
    assert lines == [*LINES, "", "", "", *LINES]  # the caller's enumerate stays right
    assert [(i.lineno, i.reason) for i in issues] == [
        (5, "binary data"),
        (6, "binary data"),
        (7, "binary data"),
    ]
    assert issues[0].text.startswith("utmp\\x00")


def test_blocks_taken_whole_read_as_the_careful_path_on_every_ascii_byte(tmp_path, monkeypatch):
    """A block is taken as it is only when the line-by-line decoding would give the same lines and no
    issue: checked for every ASCII byte inside a line (tab, CR, DEL, escape...)."""
    body = b"".join(LINES[0].encode()[:20] + bytes([b]) + LINES[0].encode()[20:] + b"\n" for b in range(128))
    path = tmp_path / "maillog"
    path.write_bytes(TEXT + body + TEXT)
    for byte in range(128):
        (tmp_path / f"log{byte}").write_bytes(TEXT + body.split(b"\n")[byte] + b"\n" + TEXT)
    (tmp_path / "deleted").write_bytes(TEXT + b"\x7f" * 40 + b"\n" + TEXT)  # DEL only: binary data
    logs = [path, *(tmp_path / f"log{byte}" for byte in range(128)), tmp_path / "deleted"]
    fast = [read(one(log)) for log in logs]
    monkeypatch.setattr(decoding, "_clean", lambda *args: False)
    assert [read(one(log)) for log in logs] == fast
    assert fast[1 + ord("\t")] == ([*LINES, LINES[0][:20] + "\t" + LINES[0][20:], *LINES], [])
    assert [i.reason for i in fast[-1][1]] == ["binary data"]


def test_nul_run_before_text_is_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "CHUNK", 4096)  # the run spans many reads, as a copytruncate gap does
    monkeypatch.setattr(decoding, "CHUNK", 4096)
    path = tmp_path / "maillog"
    path.write_bytes(TEXT + bytes(100_000) + TEXT)
    lines, issues = read(one(path))
    assert lines == LINES + LINES
    assert [(i.lineno, i.reason) for i in issues] == [
        (5, "100000 NUL bytes skipped (a gap left by copytruncate or a crash?)")
    ]


def test_binary_issues_are_capped_with_a_summary(tmp_path):
    path = tmp_path / "maillog"
    path.write_bytes(b"\x00\x01\x02\n" * 30 + TEXT)
    lines, issues = read(one(path))
    assert lines == [""] * 30 + LINES
    assert [i.lineno for i in issues[:20]] == list(range(1, 21))
    assert [(i.lineno, i.reason) for i in issues[20:]] == [
        (0, "30 lines of binary data skipped in all; only the first 20 were reported")
    ]


@pytest.mark.parametrize("chunk", [60 << 10, 4096])
def test_huge_line_is_truncated(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(sources, "CHUNK", chunk)
    monkeypatch.setattr(decoding, "CHUNK", chunk)
    path = tmp_path / "maillog"
    huge = "Nov 22 03:04:12 vm sm-mta[16051]: " + "x" * 1_000_000
    path.write_bytes(TEXT + huge.encode() + b"\n" + TEXT)
    start = time.perf_counter()
    lines, issues = read(one(path))
    assert time.perf_counter() - start < 2
    assert lines[4] == huge[:MAX_LINE]
    assert lines[:4] == lines[5:] == LINES
    assert [(i.lineno, i.reason) for i in issues] == [(5, f"line of {len(huge)} bytes truncated to 65536")]


def test_a_file_with_cr_line_ends_is_named_so(tmp_path):
    path = tmp_path / "maillog"
    path.write_bytes(TEXT.replace(b"\n", b"\r") * 2000)
    _, issues = read(one(path))
    assert [i.reason.split("; ")[1] for i in issues] == [
        "its CRs look like line ends: convert them with tr '\\r' '\\n'"
    ]


def test_truncation_does_not_split_a_character(tmp_path):
    path = tmp_path / "maillog"
    path.write_bytes(b"a" * (MAX_LINE - 1) + "é".encode() * 10 + b"\n")
    lines, _ = read(one(path))
    assert lines == ["a" * (MAX_LINE - 1)]


@pytest.mark.parametrize("pack", [gzip.compress, bz2.compress, lzma.compress])
def test_truncated_archive_keeps_lines_read_before(tmp_path, pack):
    text = b"".join(f"{LINES[0]} n={n}\n".encode() for n in range(20_000))
    data = pack(text)
    path = tmp_path / "maillog.1.gz"
    path.write_bytes(data[: len(data) // 2])
    lines, issues = read(one(path))
    assert 0 < len(lines) < 20_000
    assert lines == [f"{LINES[0]} n={n}" for n in range(len(lines))]
    (issue,) = issues
    assert (issue.source, issue.lineno) == (str(path), len(lines) + 1)
    assert issue.reason.startswith("truncated or corrupt archive: ")
    assert issue.reason.endswith(f"; {len(lines)} lines were read before it")


def test_corrupt_gzip_then_next_file_is_read(tmp_path):
    data = bytearray(gzip.compress(TEXT * 100))
    data[len(data) // 2 : len(data) // 2 + 40] = bytes(40)
    (tmp_path / "maillog.1.gz").write_bytes(bytes(data))
    (tmp_path / "maillog").write_bytes(TEXT)
    old, new = expand(tmp_path)
    _, issues = read(old)
    assert [i.reason.split(":")[0] for i in issues] == ["truncated or corrupt archive"]
    assert read(new) == (LINES, [])


# -- read_lines: JSON lines --

RSYSLOG = (
    r'{"time":"2026-11-22T03:03:48.801352+00:00","hostname":"vm","syslogtag":"sm-mta[15792]:",'
    r'"programname":"sm-mta","procid":"15792","severity":"info","msg":" STARTTLS=server, '
    r'relay=localhost [127.0.0.1], version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256\/256"}'
)
MESSAGE = (
    "STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1.3, verify=OK, "
    "cipher=TLS_AES_256_GCM_SHA384, bits=256/256"
)
JOURNAL = {
    "__CURSOR": "s=8a1f;i=1c2;b=4e3d;m=2f1;t=5f0;x=9d1",
    "__REALTIME_TIMESTAMP": "1795316628801352",
    "__MONOTONIC_TIMESTAMP": "3087241",
    "_BOOT_ID": "4e3d0d6e1d3a4b3f9c0b8f2a1d5e6f70",
    "PRIORITY": "6",
    "SYSLOG_FACILITY": "2",
    "SYSLOG_IDENTIFIER": "sm-mta",
    "SYSLOG_PID": "15792",
    "SYSLOG_TIMESTAMP": "Nov 22 03:03:48 ",
    "MESSAGE": MESSAGE,
    "_PID": "15792",
    "_COMM": "sendmail-mta",
    "_HOSTNAME": "vm",
    "_TRANSPORT": "syslog",
}
EXPECTED = f"2026-11-22T03:03:48.801352+00:00 vm sm-mta[15792]: {MESSAGE}"


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_rsyslog_json(tmp_path):
    path = tmp_path / "mail.json"
    path.write_text(RSYSLOG + "\n\n" + RSYSLOG.replace('"msg":" ', '"msg":"  ') + "\n")
    lines, issues = read(one(path))
    assert lines == [EXPECTED, "", EXPECTED.replace("]: ", "]:  ")]  # only one leading space is rsyslog's
    assert issues == []


def test_journal_json(tmp_path, utc):
    kernel = {
        "__REALTIME_TIMESTAMP": "1795316628900000",
        "_HOSTNAME": "vm",
        "SYSLOG_IDENTIFIER": "kernel",
        "MESSAGE": "eth0: link up",
    }
    binary = {**JOURNAL, "MESSAGE": list(b"from=<m\xfcller@example.org>")}
    no_pid = {k: v for k, v in JOURNAL.items() if k not in ("SYSLOG_PID", "_PID")}
    odd_pids = [{**JOURNAL, "SYSLOG_PID": pid} for pid in ("abc", "-3", "1" * 20)]
    path = tmp_path / "journal.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (JOURNAL, kernel, binary, no_pid, *odd_pids)) + "\n")
    lines, issues = read(one(path))
    assert lines == [
        EXPECTED,
        "2026-11-22T03:03:48.900000+00:00 vm kernel: eth0: link up",
        "2026-11-22T03:03:48.801352+00:00 vm sm-mta[15792]: from=<m\ufffdller@example.org>",
        *[f"2026-11-22T03:03:48.801352+00:00 vm sm-mta: {MESSAGE}"] * 4,  # a pid the envelope cannot hold
    ]
    assert [(i.lineno, i.reason) for i in issues] == [(3, "a MESSAGE that is not UTF-8 (shown as U+FFFD)")]


def test_journal_time_is_local_with_offset(tmp_path):
    path = tmp_path / "journal.json"
    path.write_text(json.dumps(JOURNAL) + "\n")
    (line,) = read(one(path))[0]
    stamp = datetime.fromisoformat(line.split(" ")[0])
    assert stamp.timestamp() == 1795316628.801352
    assert stamp.utcoffset() is not None


def test_json_records_that_do_not_decode(tmp_path, utc):
    path = tmp_path / "journal.json.gz"
    bad = [
        '{"MESSAGE": "cut in the mid',
        "[1, 2]",
        '{"MESSAGE": null, "__REALTIME_TIMESTAMP": "1"}',
        '{"x": 1}',
    ]
    path.write_bytes(gzip.compress(("\n".join([json.dumps(JOURNAL), *bad, RSYSLOG]) + "\n").encode()))
    lines, issues = read(one(path))
    assert lines == [EXPECTED, "", "", "", "", EXPECTED]
    assert [i.lineno for i in issues] == [2, 3, 4, 5]
    assert all(i.reason.startswith("not a journal or rsyslog JSON record: ") for i in issues)
    assert "--all" in issues[2].reason


# -- progress --


@pytest.mark.parametrize("pack", [bytes, gzip.compress, bz2.compress, lzma.compress])
def test_progress_reaches_the_size(tmp_path, pack):
    path = tmp_path / "maillog.1"
    path.write_bytes(pack(b"".join(f"{LINES[0]} n={n}\n".encode() for n in range(30_000))))
    source = one(path)
    steps: list[int] = []
    assert sum(1 for _ in read_lines(source, on_progress=steps.append)) == 30_000
    assert sum(steps) == source.size
    assert len(steps) >= source.size // (1 << 20)


def test_named_pipe_is_a_source_of_unknown_size(tmp_path):
    fifo = tmp_path / "maillog.pipe"
    os.mkfifo(fifo)
    (source,) = expand(fifo)
    assert (source.name, source.size) == (str(fifo), None)


def test_real_corpus_reads_like_splitlines():
    corpus = Path("/work/shared/corpus/public-real-lines.txt")
    if not corpus.exists():
        pytest.skip("shared corpus not present")
    assert read(one(corpus)) == (corpus.read_text().splitlines(), [])
