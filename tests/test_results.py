"""tlslog.results: the result cache, through the CLI (cached output is the uncached output, byte for byte)
and directly (keys, damaged entries, dtypes that survive the Parquet round trip, eviction)."""

import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from tlslog import cli, frames, results
from tlslog.records import ParseIssue
from tlslog.sources import expand

SAMPLE = Path(__file__).parent.parent / "sample_logs"
GOOD = [
    "Nov  9 10:00:00 mx1 sm-mta[101]: STARTTLS=server, relay=mail.example.net [198.51.100.7], "
    "version=TLSv1.3, verify=NO, cipher=TLS_AES_256_GCM_SHA384, bits=256/256",
    "Nov  9 10:00:01 mx1 sm-mta[101]: 5A9Bx0aa000101: from=<a@example.net>, size=1200, class=0, nrcpts=1, "
    "msgid=<1@example.net>, proto=ESMTPS, daemon=MTA, relay=mail.example.net [198.51.100.7]",
    "Nov  9 10:05:00 mx1 sm-mta[102]: STARTTLS=client, relay=mx.legacy.example, version=TLSv1, "
    "verify=FAIL, cipher=DES-CBC-SHA, bits=56/56",
]
BAD = "Nov  9 10:00:02 mx1 sm-mta[103]: STARTTLS=client, relay=x, version="

runner = CliRunner()


def run(*args, input=None):
    result = runner.invoke(cli.app, [str(a) for a in args], input=input)
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture
def reads(monkeypatch):
    """Calls of `read_log` (the CLI imports it from `tlslog.frames` when it reads): a hit makes none."""
    calls = []
    real = frames.read_log
    monkeypatch.setattr(frames, "read_log", lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "maillog"
    path.write_text("\n".join(GOOD) + "\n")
    return path


def entries(cache: Path) -> list[Path]:
    return sorted((cache / results.FOLDER).glob("[!.]*.parquet"))


# -- cached output equals uncached output -------------------------------------------------------------

TABULAR = ["table", "markdown", "csv", "json"]
COMMANDS = [
    (["summary"], ["table", "markdown", "json"]),
    (["coverage", "--by", "day", "--direction", "in"], TABULAR),
    (["peers", "--sort", "failures", "--top", "5", "--by", "host"], TABULAR),
    (["ciphers", "--include-internal"], TABULAR),
    (["failures", "--internal", ".example.org"], TABULAR),
]


@pytest.mark.parametrize(("args", "formats"), COMMANDS, ids=[c[0][0] for c in COMMANDS])
def test_cached_output_is_the_uncached_output(args, formats, tmp_path, monkeypatch, reads):
    common = [*args, SAMPLE, "--year", "2026", "--cache-dir", tmp_path]
    with monkeypatch.context() as m:
        m.setattr(results.ResultCache, "open", classmethod(lambda cls, d=None: None))
        cold = {f: run(*common, "-f", f) for f in formats}
    assert all(r.exit_code == 0 for r in cold.values()) and len(reads) == len(formats)
    stored = run(*common, "-f", formats[0])  # a miss: computes and stores
    assert len(reads) == len(formats) + 1 and len(entries(tmp_path)) == 1
    for f in formats:
        hit = run(*common, "-f", f)
        assert (hit.exit_code, hit.stdout, hit.stderr) == (0, cold[f].stdout, cold[f].stderr), f
    assert stored.stdout == cold[formats[0]].stdout
    assert len(reads) == len(formats) + 1  # every format from the one entry


def _without_images(html: str) -> str:
    return re.sub(r"data:image/svg\+xml;base64,[A-Za-z0-9+/=]+", "", html)


def test_report_from_the_cache_is_the_same_report(tmp_path, monkeypatch, reads):
    def report(name: str) -> str:
        out = tmp_path / name
        result = run("report", SAMPLE, "--year", "2026", "-o", out, "--cache-dir", tmp_path / "cache")
        assert result.exit_code == 0, result.output
        return out.read_text()

    with monkeypatch.context() as m:
        m.setattr(results.ResultCache, "open", classmethod(lambda cls, d=None: None))
        m.setattr(
            cli,
            "_report_charts",
            lambda data: dict.fromkeys(("coverage", "versions", "ciphers", "failures"), "<svg/>"),
        )
        cold_md, cold_html = report("cold.md"), report("cold.html")  # charts: see the hit
    report("warm.md")
    assert len(reads) == 3
    assert report("hit.md") == cold_md
    hit_html = report("hit.html")  # the charts are drawn from the stored figures
    assert hit_html.count("data:image/svg+xml;base64,") == 4
    assert _without_images(hit_html) == _without_images(cold_html)
    assert len(reads) == 3


def test_report_note_and_issue_warnings_repeat_on_a_hit(log, tmp_path, reads):
    log.write_text("\n".join([*GOOD, BAD]) + "\n")
    args = ["report", log, "--year", "2026", "-o", tmp_path / "w.md", "--cache-dir", tmp_path / "c"]
    first, second = run(*args), run(*args)
    assert len(reads) == 1 and first.exit_code == second.exit_code == 0
    assert first.stderr == second.stderr
    assert "1 parse issues" in second.stderr and "note: nothing logged in last-week" in second.stderr


# -- what makes a miss ----------------------------------------------------------------------------------


def test_a_touched_grown_or_replaced_file_is_a_miss(log, tmp_path, reads):
    args = ["peers", log, "--year", "2026", "-f", "json", "--cache-dir", tmp_path / "c"]
    before = run(*args)
    run(*args)
    assert len(reads) == 1
    st = log.stat()
    os.utime(log, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touched
    run(*args)
    assert len(reads) == 2
    with log.open("a") as f:  # grown: one more message from the same peer
        f.write("\n".join(line.replace("[101]", "[104]").replace("0aa", "0bb") for line in GOOD[:2]) + "\n")
    grown = run(*args)
    assert len(reads) == 3 and grown.stdout != before.stdout
    replacement = tmp_path / "new"
    shutil.copy2(log, replacement)  # same size, same mtime, same content: another inode
    os.replace(replacement, log)
    run(*args)
    assert len(reads) == 4
    run(*args)
    assert len(reads) == 4


def test_another_option_name_or_scope_is_another_entry(log, tmp_path, reads):
    base = [log, "--year", "2026", "--cache-dir", tmp_path / "c"]
    variants = [
        ["peers", *base],
        ["peers", *base, "--top", "1"],
        ["peers", *base, "--sort", "unencrypted"],
        ["peers", *base, "--include-internal"],
        ["peers", *base, "--internal", "mail.example.net"],
        ["peers", *base, "--year", "2025"],
        ["peers", *base, "--since", "2026-11-09"],
        ["peers", *base, "--since", "2026-11-09", "--until", "2026-11-10"],
        ["peers", *base, "--since", "1h"],
        ["peers", *base, "--strict"],
        ["ciphers", *base],
    ]
    outputs = [run(*v).stdout for v in variants]
    assert len(reads) == len(variants) == len(entries(tmp_path / "c"))
    assert [run(*v).stdout for v in variants] == outputs and len(reads) == len(variants)
    run("peers", *base, "--since", "2026-11-09T00:00")  # the same point in time, written otherwise
    run("peers", *base, "--since", "60min")  # the same span
    assert len(reads) == len(variants)


def test_another_code_version_is_a_miss(log, tmp_path, reads, monkeypatch):
    args = ["ciphers", log, "--year", "2026", "--cache-dir", tmp_path / "c"]
    run(*args)
    monkeypatch.setattr(results, "code_version", lambda: "another version")
    run(*args)
    assert len(reads) == 2


def test_code_version_covers_modules_templates_and_versions():
    version = results.code_version()
    assert re.fullmatch(r"[0-9a-f]{40}", version)
    assert version == results.code_version()


def test_stdin_pipe_and_no_cache_are_not_cached(log, tmp_path, reads):
    cache = tmp_path / "c"
    text = log.read_text()
    for _ in range(2):
        assert run("summary", "-", "--year", "2026", "--cache-dir", cache, input=text).exit_code == 0
        assert run("summary", log, "--year", "2026", "--cache-dir", cache, "--no-cache").exit_code == 0
    assert len(reads) == 4 and entries(cache) == []


def test_the_same_file_named_otherwise_is_another_entry(log, tmp_path, reads):
    cache = ["--year", "2026", "--cache-dir", tmp_path / "c", "-f", "json"]
    plain = run("summary", log, *cache)
    other = run("summary", f"{log.parent}/./{log.name}", *cache)  # the summary names its sources
    assert len(reads) == 2 and plain.stdout != other.stdout


# -- damage, unwritable directories, issues --------------------------------------------------------------


@pytest.mark.parametrize("damage", [b"", b"PAR1 not parquet", "truncate"])
def test_a_damaged_entry_is_a_miss_and_is_replaced(damage, log, tmp_path, reads):
    cache = tmp_path / "c"
    args = ["summary", log, "--year", "2026", "--cache-dir", cache]
    first = run(*args)
    (entry,) = entries(cache)
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2] if damage == "truncate" else damage)
    again = run(*args)
    assert (again.exit_code, again.stdout, again.stderr) == (0, first.stdout, first.stderr)
    assert len(reads) == 2 and entry.read_bytes() == data
    run(*args)
    assert len(reads) == 2


def test_an_unusable_cache_directory_means_no_caching(log, tmp_path, reads, monkeypatch):
    (tmp_path / "file").write_text("")
    args = ["summary", log, "--year", "2026"]
    expected = run(*args, "--no-cache").stdout
    under_a_file = run(*args, "--cache-dir", tmp_path / "file" / "cache")
    assert (under_a_file.exit_code, under_a_file.stdout) == (0, expected)
    assert (
        f"warning: cannot make {tmp_path / 'file' / 'cache'}: Not a directory; reading without a cache"
        in (under_a_file.stderr)
    )

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(results.tempfile, "mkstemp", refuse)  # a directory we may not write in
    for _ in range(2):
        unwritable = run(*args, "--cache-dir", tmp_path / "ro")
        assert (unwritable.exit_code, unwritable.stdout) == (0, expected)
    assert len(reads) == 4 and entries(tmp_path / "ro") == []


def test_parse_issue_warnings_and_strict_are_the_same_on_a_hit(log, tmp_path, reads):
    log.write_text("\n".join([*GOOD, BAD, BAD]) + "\n")
    args = ["summary", log, "--year", "2026", "--cache-dir", tmp_path / "c"]
    cold, hit = run(*args), run(*args)
    assert len(reads) == 1
    assert (hit.exit_code, hit.stdout, hit.stderr) == (0, cold.stdout, cold.stderr)
    assert "warning: 2 parse issues" in hit.stderr and f"{log}:4: unrecognised STARTTLS line" in hit.stderr
    assert run(*args, "-q").stderr == ""
    strict = [run(*args, "--strict") for _ in range(2)]
    assert {(s.exit_code, s.stdout, s.stderr) for s in strict} == {(1, "", strict[0].stderr)}
    assert strict[0].stderr.startswith(f"error: {log}:4: unrecognised STARTTLS line")
    assert len(entries(tmp_path / "c")) == 1  # a failed run stores nothing


def test_fail_on_any_exits_1_on_a_hit_too(tmp_path, reads):
    args = ["failures", SAMPLE, "--year", "2026", "--fail-on-any", "-q", "--cache-dir", tmp_path]
    cold, hit = run(*args), run(*args)
    assert len(reads) == 1 and cold.exit_code == hit.exit_code == 1 and hit.stdout == cold.stdout


# -- the store itself ------------------------------------------------------------------------------------

LIST = pd.ArrowDtype(pa.list_(pa.string()))


def awkward_frames() -> dict:
    """The dtypes the commands' tables hold, with missing values, unused and empty categories."""
    utc = pd.to_datetime(
        ["2026-11-09 10:00:00", None, "2026-11-10 12:30:05.123456"], utc=True, format="ISO8601"
    )
    utc = utc.as_unit("us")
    full = pd.DataFrame(
        {
            "peer": pd.array(["a.example", None, "c|<b>"], dtype="str"),
            "version": pd.Categorical(
                ["TLSv1.2", None, "TLSv1"],
                categories=pd.Index(["TLSv1", "TLSv1.2", "TLSv1.3"], dtype="str"),
                ordered=True,
            ),
            "cause": pd.Categorical([None, None, None], categories=pd.Index([], dtype="str")),
            "bits": pd.array([256, None, 56], dtype="Int64"),
            "count": [1, 2, 3],
            "share": [0.5, float("nan"), 1.0],
            "weak": pd.array([True, None, False], dtype="boolean"),
            "when": utc,
            "naive": utc.tz_localize(None),
            "qids": pd.array([["q1", "q2"], None, []], dtype=LIST),
        }
    )
    return {
        "full": full,
        "empty": full.iloc[:0],
        "filtered": full.iloc[[0, 2]],  # not a RangeIndex
        "first": utc[0],
        "none": None,
        "nat": pd.NaT,
        "lines": 3,
        "share": float("nan"),
        "sources": ["a", "b"],
        "window": [utc[0], None, utc[0].tz_localize(None)],
    }


def _assert_same(a, b):
    assert type(a) is type(b)
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        for c in a.select_dtypes("category"):
            assert a[c].cat.categories.dtype == b[c].cat.categories.dtype
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, float) and a != a:
        assert b != b
    elif isinstance(a, pd.Timestamp):
        assert (a, str(a.tz), a.unit) == (b, str(b.tz), b.unit)
    else:
        assert a == b or (a is pd.NaT and b is pd.NaT)


def test_frames_and_scalars_survive_the_round_trip(tmp_path):
    store = results.ResultCache.open(tmp_path)
    value = awkward_frames()
    issues = [ParseIssue("maillog", 4, "unrecognised STARTTLS line", "x"), ParseIssue("a.gz", 0, "truncated")]
    entry = results.Entry(value, issues, {"lines": 4, "sources": ["maillog"]})
    assert store.store("k", entry)
    back = store.load("k")
    _assert_same(back.value, value)
    assert back.issues == issues and back.stats == entry.stats
    assert store.load("other key") is None
    frame = value["full"]
    assert store.store("f", results.Entry(frame)) and isinstance(store.load("f").value, pd.DataFrame)


@pytest.mark.parametrize(
    "value",
    [
        pd.DataFrame({"x": pd.Series([[1, 2], None], dtype=object)}),  # lists come back as arrays
        {"x": {1, 2}},
        {"x": object()},
    ],
    ids=["object-lists", "set", "object"],
)
def test_what_would_not_read_back_equal_is_not_stored(value, tmp_path):
    store = results.ResultCache.open(tmp_path)
    assert not store.store("k", results.Entry(value))
    assert entries(tmp_path) == [] and list((tmp_path / results.FOLDER).iterdir()) == []


def test_the_oldest_entries_are_evicted(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "MAX_ENTRIES", 2)
    store = results.ResultCache.open(tmp_path)
    frame = pd.DataFrame({"n": [1]})
    for i, key in enumerate("abc"):
        assert store.store(key, results.Entry(frame))
        os.utime(store._file(key), (1000 + i, 1000 + i))
        if key == "b":
            assert store.load("a") is not None  # used: now the newest
    assert store.store("d", results.Entry(frame))
    assert {p.stem for p in entries(tmp_path)} == {"a", "d"}


def test_key_needs_regular_files(log, tmp_path):
    (source,) = expand(log)
    key = results.ResultCache.key([source], {"year": 2026}, "summary", {})
    assert key and key == results.ResultCache.key([source], {"year": 2026}, "summary", {})
    assert key != results.ResultCache.key([source], {"year": 2025}, "summary", {})
    assert key != results.ResultCache.key([source], {"year": 2026}, "peers", {})
    stdin = source.__class__("<stdin>", None, source.reference, None)
    assert results.ResultCache.key([source, stdin], {}, "summary", {}) is None
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert (
        results.ResultCache.key([source.__class__(str(fifo), fifo, source.reference, None)], {}, "x", {})
        is None
    )
