"""Regressions from a review: lone surrogates in JSON logs, reading issues in line order, files rewritten
in place with size and mtime restored, the result cache's key (publicsuffixlist, the zone's rules),
timestamps before year 1 after conversion, temporary files a killed cache writer left."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tlslog import cache as cache_mod
from tlslog import cli, fileid, frames, results, views, workers
from tlslog.frames import read_log
from tlslog.sources import expand

runner = CliRunner()


def run(*args):
    result = runner.invoke(cli.app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def starttls(n: int, version: str = "TLSv1.3") -> str:
    return (
        f"Nov 22 03:{n // 60 % 60:02d}:{n % 60:02d} mx1 sm-mta[{1000 + n % 9000}]: STARTTLS=server, "
        f"relay=mail.example.net [192.0.2.{n % 250 + 1}], version={version}, verify=OK, "
        f"cipher=TLS_AES_256_GCM_SHA384, bits=256/256\n"
    )


BAD = "Nov 22 03:07:01 mx1 sm-mta[17612]: STARTTLS=server, relay=localhost [127.0.0.1], version\n"


# -- 1. a lone surrogate escape in a journald record ------------------------------------------------


def journal_record(**fields: str) -> dict:
    return {
        "__REALTIME_TIMESTAMP": "1795316628801352",
        "_HOSTNAME": "mx1",
        "SYSLOG_IDENTIFIER": "sm-mta",
        "SYSLOG_PID": "15792",
        "MESSAGE": "STARTTLS=server, relay=mail.example.net [192.0.2.1], version=TLSv1.3, verify=OK, "
        "cipher=TLS_AES_256_GCM_SHA384, bits=256/256",
        **fields,
    }


@pytest.fixture
def surrogate_journal(tmp_path: Path) -> Path:
    message = journal_record()["MESSAGE"].replace("mail.", "m\ud800il.")
    records = [
        journal_record(MESSAGE=message, _HOSTNAME="mx\udfff"),
        journal_record(SYSLOG_IDENTIFIER="sm-\ud800mta"),
    ]
    path = tmp_path / "journal.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))  # json escapes them: "\ud800"
    assert "\\ud800" in path.read_text()
    return path


def test_lone_surrogates_in_a_journal_record_become_replacement_characters(surrogate_journal):
    df = read_log(str(surrogate_journal), use_cache=False, jobs=1)
    assert df.attrs["stats"]["lines"] == 2 and len(df) == 1
    assert df["relay_host"].iloc[0] == "m\ufffdil.example.net" and df["host"].iloc[0] == "mx\ufffd"


def test_the_cli_reads_a_journal_with_lone_surrogates(surrogate_journal):
    result = run("summary", surrogate_journal, "--no-cache")
    assert result.exit_code == 0 and "Lines read: 2" in result.stdout


# -- 2. reading issues in line order -----------------------------------------------------------------


@pytest.fixture
def damaged_log(tmp_path: Path) -> tuple[Path, list[int]]:
    """Over 1 MiB: twice a parse issue, a line after a NUL run, a parse issue, each trio in one block."""
    log = tmp_path / "maillog"
    lines = [starttls(n).encode() for n in range(12_000)]
    for at in (50, 9000):
        lines[at] = BAD.encode()
        lines[at + 50] = b"\0" * 8 + lines[at + 50]
        lines[at + 100] = BAD.encode()
    log.write_bytes(b"".join(lines))
    assert log.stat().st_size > 1 << 20
    return log, [51, 101, 151, 9001, 9051, 9101]


@pytest.mark.parametrize("jobs", [1, 2])
def test_reading_issues_come_in_line_order(damaged_log, monkeypatch, jobs):
    log, expected = damaged_log
    monkeypatch.setattr(workers, "MIN_RANGE", 200_000)
    monkeypatch.setattr(frames, "MIN_RANGE", 200_000)
    issues = read_log(str(log), use_cache=False, jobs=jobs).attrs["issues"]
    assert [i.lineno for i in issues] == expected
    assert "NUL bytes skipped" in issues[1].reason and "NUL bytes skipped" in issues[4].reason


def test_ranges_put_reading_issues_where_one_read_does(damaged_log, monkeypatch):
    log, expected = damaged_log
    monkeypatch.setattr(workers, "MIN_RANGE", 200_000)
    (src,) = expand(str(log))
    tasks = [(str(log), src.name, src.reference, a, b, 0 if a == 0 else None)
             for a, b in workers.split_ranges(str(log), 0, 4)]  # fmt: skip
    assert len(tasks) > 1
    joined = workers.join([workers.read_range(*t) for t in tasks])
    assert [i.lineno for _, _, i in sorted(joined.issues, key=lambda x: x[:2])] == expected
    assert sorted(joined.issues, key=lambda x: x[:2]) == sorted(
        workers.read_source(src, src.reference).issues, key=lambda x: x[:2]
    )


# -- 3. a file rewritten in place, size and mtime restored -------------------------------------------


def rewrite_middle(log: Path) -> None:
    """Same size, same first block, same mtime (as ``cp -p`` or ``touch -r`` leave it): other versions."""
    st = log.stat()
    data = log.read_bytes()
    middle = len(data) // 2
    log.write_bytes(data[:middle] + data[middle:].replace(b"TLSv1.3", b"TLSv1.2"))
    os.utime(log, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (log.stat().st_size, log.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "maillog"
    path.write_text("".join(starttls(n) for n in range(200)))
    assert path.stat().st_size > 2 * fileid.HEAD
    return path


def versions(df: pd.DataFrame) -> dict[str, int]:
    return {str(k): v for k, v in df["version"].value_counts().items() if v}


def test_the_events_cache_sees_a_rewrite_that_kept_size_and_mtime(log, tmp_path):
    assert versions(read_log(str(log), cache_dir=tmp_path / "c", jobs=1)) == {"TLSv1.3": 200}
    cache_mod.flush()
    rewrite_middle(log)
    again = read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
    assert versions(again) == versions(read_log(str(log), use_cache=False, jobs=1))
    assert set(versions(again)) == {"TLSv1.2", "TLSv1.3"}


def test_a_rotated_log_rewritten_in_place_later_is_read_again(log, tmp_path):
    read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
    cache_mod.flush()
    rotated = log.rename(log.with_name("maillog.1"))
    cache = cache_mod.Cache(tmp_path / "c")
    assert cache.load(rotated, year=None, name=str(rotated), plain=True) is not None  # renamed: a hit
    cache_mod.flush()
    rewrite_middle(rotated)
    assert cache.load(rotated, year=None, name=str(rotated), plain=True) is None
    assert "TLSv1.2" in versions(read_log(str(rotated), cache_dir=tmp_path / "c", jobs=1))


def test_an_events_entry_without_a_ctime_is_a_miss(log, tmp_path):
    import pyarrow.parquet as pq

    read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
    cache_mod.flush()
    (entry,) = (tmp_path / "c").glob("[!.]*.parquet")
    table = pq.read_table(entry)
    meta = json.loads(table.schema.metadata[b"tlslog"])
    del meta["ctime_ns"], meta["path"]  # as an older tlslog wrote it
    pq.write_table(table.replace_schema_metadata({"tlslog": json.dumps(meta)}), entry)
    assert cache_mod.Cache(tmp_path / "c").load(log, year=None, name=str(log), plain=True) is None
    assert versions(read_log(str(log), cache_dir=tmp_path / "c", jobs=1)) == {"TLSv1.3": 200}


def test_the_result_cache_sees_a_rewrite_that_kept_size_and_mtime(log, tmp_path):
    args = ["ciphers", log, "-f", "json", "--cache-dir", tmp_path / "c"]
    before = run(*args)
    assert before.exit_code == 0 and "TLSv1.2" not in before.stdout
    rewrite_middle(log)
    after = run(*args)
    assert after.exit_code == 0 and "TLSv1.2" in after.stdout
    assert after.stdout == run("ciphers", log, "-f", "json", "--no-cache").stdout


# -- 4. the result cache's key --------------------------------------------------------------------------


@pytest.fixture
def fresh_code_version():
    results.code_version.cache_clear()
    yield
    results.code_version.cache_clear()


@pytest.mark.usefixtures("fresh_code_version")
def test_code_version_covers_publicsuffixlist(monkeypatch):
    real = results.metadata.version
    before = results.code_version()

    def version(package: str) -> str:
        if package == "publicsuffixlist":
            raise results.metadata.PackageNotFoundError(package)
        return real(package)

    with monkeypatch.context() as m:
        m.setattr(results.metadata, "version", version)
        results.code_version.cache_clear()
        without = results.code_version()  # absent: no error
    assert without != before


def test_the_key_follows_the_zone_rules_not_the_zone_path(log, tmp_path, monkeypatch):
    localtime = tmp_path / "localtime"  # a copy of a zone, as some systems keep it
    monkeypatch.setattr(results, "_LOCALTIME", str(localtime))
    sources = expand(str(log))

    def key() -> str | None:
        return results.ResultCache.key(sources, {"year": None}, "peers", {})

    localtime.write_bytes(b"TZif2 zone one")
    first = key()
    assert key() == first
    localtime.write_bytes(b"TZif2 zone two")
    assert key() != first


# -- 5. a timestamp before year 1 after conversion to UTC ----------------------------------------------

YEAR_ZERO = (
    "0001-01-01T00:30:00+01:00 mx1 sm-mta[1]: STARTTLS=server, relay=x, version=TLSv1.3, verify=OK, "
    "cipher=C, bits=256/256\n"
)


@pytest.mark.parametrize("args", [["summary"], ["summary", "-f", "json"], ["report", "-o", "report.md"]])
def test_a_year_zero_timestamp_renders(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "maillog").write_text(YEAR_ZERO)
    result = run(*args, "maillog", "--no-cache")
    assert result.exit_code == 0
    shown = result.stdout if args[0] == "summary" else (tmp_path / "report.md").read_text()
    assert ("0000-12-31 23:30:00" if args[0] == "summary" else "0000-12-31") in shown


def test_stamp_writes_times_as_strftime_does():
    t = pd.Timestamp("2026-11-09 08:05:03.75")
    assert views.stamp(t) == t.strftime("%Y-%m-%d %H:%M:%S") == "2026-11-09 08:05:03"
    assert views.stamp(None) == views.stamp(pd.NaT) == ""


# -- 6. temporary files a killed cache writer left ---------------------------------------------------


def leftovers(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    stale, fresh = folder / ".tmp-killed.parquet", folder / ".tmp-writing.parquet"
    stale.write_bytes(b"half an entry")
    fresh.write_bytes(b"an entry being written")
    old = time.time() - 2 * 86400  # well past `fileid.STALE_TMP`
    os.utime(stale, (old, old))
    return stale, fresh


def test_the_events_cache_removes_stale_temporary_files(log, tmp_path):
    stale, fresh = leftovers(tmp_path / "c")
    read_log(str(log), cache_dir=tmp_path / "c", jobs=1)
    cache_mod.flush()
    assert len(list((tmp_path / "c").glob("[!.]*.parquet"))) == 1
    assert not stale.exists() and fresh.exists()


def test_the_result_cache_removes_stale_temporary_files(log, tmp_path):
    stale, fresh = leftovers(tmp_path / "c" / results.FOLDER)
    assert run("peers", log, "--cache-dir", tmp_path / "c").exit_code == 0
    assert not stale.exists() and fresh.exists()
