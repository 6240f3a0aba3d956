"""tlslog.cli through typer's CliRunner: exit codes, streams, formats, escaping, files written.

`TestOnFakes` swaps the library for the hand-built frames of tests/fake_frames.py (so the CLI's own logic is
tested whatever the pipeline does); `TestOnSampleLogs` runs the real pipeline on sample_logs/.
"""

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import fake_frames as fake
import matplotlib.image as mpimg
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from tlslog import cli, frames, views, weekly
from tlslog.report import Format

runner = CliRunner()


def run(*args, input=None):
    return runner.invoke(cli.app, [str(a) for a in args], input=input)


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "maillog"
    path.write_text("Nov  9 10:00:00 mx1 sm-mta[101]: not a tls line\n")
    return path


@pytest.fixture
def fakes(monkeypatch, log):
    fake.install(monkeypatch, cli, views, weekly, frames)  # cli imports read_log from frames when it reads
    return log


# -- errors and usage (no library needed) -------------------------------------------------------------


def test_no_arguments_shows_help_with_usage_exit():
    result = run()
    assert result.exit_code == 2 and "summary" in result.output


def test_missing_file_is_one_clean_error_line(tmp_path):
    result = run("summary", tmp_path / "nope.log")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "nope.log" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout and result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["summary", "--bogus"],
        ["coverage", "--by", "year"],
        ["events", "--format", "xml"],
        ["summary", "--since", "last tuesday"],
        ["summary", "--internal", "10.0.0.0/33"],
        ["summary", "--internal", ""],
        ["peers", "--internal", "a..b"],
        ["summary", "--internal", "<script>"],
        ["summary", "--since", "99999999d"],
        ["summary", "--until", "99999999d"],
        ["summary", "--format", "csv"],
        ["report", "-o", "weekly.txt"],
        ["chart", "versions", "-o", "v.pdf"],
    ],
)
def test_usage_errors_exit_2(args, log):
    result = run(*args, log)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_version_option():
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.startswith("tlslog ")


# -- on hand-built frames ---------------------------------------------------------------------------


class TestOnFakes:
    def test_events_json_parses(self, fakes):
        result = run("events", fakes, "--format", "json")
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout)
        assert [r["kind"] for r in rows] == ["starttls", "receipt", "starttls", "delivery", "tls_reject"]

    def test_events_kind_filter_and_skipped_warning_on_stderr(self, fakes):
        result = run("events", fakes, "--kind", "starttls", "-f", "csv")
        assert result.exit_code == 0
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert [r["kind"] for r in rows] == ["starttls", "starttls"]
        assert "2 parse issues" in result.stderr and "parse issues" not in result.stdout
        assert "fake.log:7: unrecognised STARTTLS line" in result.stderr  # where, and what
        assert "fake.log: truncated or corrupt archive" in result.stderr
        assert "parse issues" not in run("events", fakes, "--quiet").stderr

    def test_strict_fails_on_any_issue_with_file_and_line(self, fakes):
        result = run("summary", fakes, "--strict")
        assert result.exit_code == 1
        assert result.stderr.startswith("error: fake.log:7: unrecognised STARTTLS line")
        assert "Traceback" not in result.output

    def test_markup_in_log_data_prints_literally(self, fakes):
        result = run("peers", fakes)
        assert result.exit_code == 0
        assert "[red]x[/red]" in result.stdout

    def test_rich_terminal_table_prints_markup_literally(self):
        buf = io.StringIO()
        cli.emit(fake.by_peer(), Format.table, console=Console(file=buf, force_terminal=True, width=200))
        out = buf.getvalue()
        assert "[red]x[/red]" in out and "\x1b[31mx" not in out
        assert "<script>alert(1)</script>.example" in out

    def test_csv_formula_cells_neutralised(self, fakes, tmp_path):
        out = tmp_path / "d.csv"
        result = run("export", fakes, "--table", "deliveries", "-o", out)  # the suffix says csv
        assert result.exit_code == 0, result.output
        with out.open(newline="") as f:
            rows = list(csv.DictReader(f))
        assert [r["recipient"] for r in rows] == ["bob@weak.example", "'" + fake.FORMULA]
        assert "wrote 2 rows" in result.stderr

    def test_failures_grouped_with_explanation(self, fakes):
        result = run("failures", fakes, "-f", "json")
        assert result.exit_code == 0
        groups = json.loads(result.stdout)
        assert [(g["cause"], g["count"]) for g in groups] == [("not_offered", 2), ("too_weak", 1)]
        assert groups[0]["explanation"] == "The peer did not offer STARTTLS."
        assert groups[0]["direction"] == "outbound"

    def test_fail_on_any_exit_codes(self, fakes):
        loud = run("failures", fakes, "--fail-on-any")
        assert loud.exit_code == 1 and "not_offered" in loud.stdout
        quiet = run("failures", fakes, "--fail-on-any", "--quiet")  # cron mails what it prints
        assert quiet.exit_code == 1 and "not_offered" in quiet.stdout
        assert quiet.stderr == "error: 3 TLS failures (--fail-on-any)\n"
        none = run("failures", fakes, "--fail-on-any", "--cause", "dane_failed", "--quiet")
        assert none.exit_code == 0 and none.stdout == "" and none.stderr == ""
        plain = run("failures", fakes)
        assert plain.exit_code == 0

    def test_report_html_escapes_and_embeds_charts(self, fakes, tmp_path):
        out = tmp_path / "weekly.html"
        result = run("report", fakes, "-o", out, "--period", "all")
        assert result.exit_code == 0, result.output
        html = out.read_text()
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert html.count('src="data:image/svg+xml;base64,') == 4
        assert f"wrote {out}" in result.stderr

    def test_report_markdown(self, fakes, tmp_path):
        out = tmp_path / "weekly.md"
        assert run("report", fakes, "-o", out, "--period", "all", "-q").exit_code == 0
        md = out.read_text()
        assert r"\<script\>" in md and "<script>" not in md

    @pytest.mark.parametrize("what", ["coverage", "versions", "ciphers", "verify", "failures"])
    def test_chart_png_and_svg(self, fakes, tmp_path, what):
        png, svg = tmp_path / f"{what}.png", tmp_path / f"{what}.svg"
        assert run("chart", what, fakes, "-o", png).exit_code == 0
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and mpimg.imread(png).ndim == 3
        assert run("chart", what, fakes, "-o", svg, "-q").exit_code == 0
        assert ET.parse(svg).getroot().tag.endswith("svg")

    def test_export_parquet_reads_back(self, fakes, tmp_path):
        out = tmp_path / "f.parquet"
        assert run("export", fakes, "-t", "failures", "-f", "parquet", "-o", out).exit_code == 0
        back = pd.read_parquet(out)
        assert len(back) == 3 and list(back["recipients"].iloc[0]) == ["bob@weak.example", fake.FORMULA]

    def test_write_error_is_exit_1(self, fakes, tmp_path):
        result = run("export", fakes, "-t", "events", "-o", tmp_path / "no" / "dir.csv")
        assert result.exit_code == 1 and result.stderr.splitlines()[-1].startswith("error: cannot write")
        assert len(result.stderr.splitlines()) == 4  # the warning, its two issues, the error

    def test_trace_nothing_found_says_so(self, fakes):
        result = run("trace", "nobody.example", fakes)
        assert result.exit_code == 0 and "nothing found for nobody.example" in result.stderr
        assert result.stdout == ""  # no line of empty headers

    def test_an_empty_table_is_not_drawn_but_other_formats_keep_their_shape(self, fakes):
        result = run("failures", fakes, "--peer", "nobody.example")
        assert result.exit_code == 0 and result.stdout == "" and "no rows" in result.stderr
        assert "no rows" not in run("failures", fakes, "--peer", "nobody.example", "-q").stderr
        header = run("failures", fakes, "--peer", "nobody.example", "-f", "csv").stdout
        assert header.startswith("cause,direction,peer,") and header.count("\n") == 1
        assert json.loads(run("failures", fakes, "--peer", "nobody.example", "-f", "json").stdout) == []

    def test_summary_markdown(self, fakes):
        result = run("summary", fakes, "-f", "markdown")
        assert result.exit_code == 0
        assert result.stdout.startswith("# tlslog summary") and "## Coverage" in result.stdout


# -- on the real pipeline and sample_logs/ ------------------------------------------------------------

SAMPLE = Path(__file__).parent.parent / "sample_logs"
TRUTH = json.loads((Path(__file__).parent / "data" / "sample_truth.json").read_text())


BY_KEY = TRUTH["totals"]["receipts_by_host_encrypted_internal"]  # "host/encrypted/internal": count
INBOUND = sum(n for k, n in BY_KEY.items() if k.endswith("/False"))
INBOUND_ENCRYPTED = sum(n for k, n in BY_KEY.items() if k.endswith("/True/False"))
FIRST_DAY = TRUTH["generator"]["start"]
LAST_DAY = str((pd.Timestamp(FIRST_DAY) + pd.Timedelta(days=TRUTH["generator"]["days"] - 1)).date())


@pytest.fixture(scope="module")
def events():
    import tlslog

    return tlslog.read_log(SAMPLE)


def sample(*args, input=None):
    result = run(*args, input=input)
    assert "Traceback" not in result.output
    return result


class TestOnSampleLogs:
    def test_export_tables_have_the_truth_row_counts(self, tmp_path):
        for table in ("receipts", "deliveries", "sessions"):
            n = TRUTH["totals"][table]
            out = tmp_path / f"{table}.json"
            assert sample("export", SAMPLE, "-t", table, "-f", "json", "-o", out, "-q").exit_code == 0
            rows = json.loads(out.read_text())
            assert len(rows) == n, table
        statuses = pd.Series([r["status"] for r in json.loads((tmp_path / "deliveries.json").read_text())])
        assert statuses.value_counts().to_dict() == TRUTH["totals"]["deliveries_by_status"]

    def test_summary_json_matches_truth_and_coverage(self, events):
        import tlslog

        result = sample("summary", SAMPLE, "-f", "json")
        assert result.exit_code == 0
        s = json.loads(result.stdout)
        assert s["lines"] == sum(f["lines"] for f in TRUTH["files"].values())
        assert s["first"].startswith(FIRST_DAY) and s["last"].startswith(LAST_DAY)
        cov = {row["direction"]: row for row in s["coverage"]}
        assert (cov["inbound"]["total"], cov["inbound"]["encrypted"]) == (INBOUND, INBOUND_ENCRYPTED)
        api = tlslog.coverage(events, by="week").groupby("direction")[["total", "encrypted"]].sum()
        for d in ("inbound", "outbound"):
            assert cov[d]["encrypted_share"] == pytest.approx(api.loc[d, "encrypted"] / api.loc[d, "total"])
        fails = tlslog.failures(events)
        assert s["failing_peers"][0]["peer"] == fails["peer"].value_counts().index[0]

    def test_summary_text_on_one_screen(self):
        result = sample("summary", SAMPLE)
        assert result.exit_code == 0
        lines = sum(f["lines"] for f in TRUTH["files"].values())
        assert f"Lines read: {lines}, parse issues: 0" in result.stdout
        assert "mail.legacy.example.jp" in result.stdout and "DES-CBC-SHA" in result.stdout
        assert len(result.stdout.splitlines()) < 80

    def test_coverage_by_day_csv(self, events):
        result = sample("coverage", SAMPLE, "--by", "day", "-f", "csv", "--direction", "in")
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        days = pd.date_range(FIRST_DAY, periods=TRUTH["generator"]["days"]).strftime("%Y-%m-%d").tolist()
        assert [r["period"][:10] for r in rows] == days
        assert {r["direction"] for r in rows} == {"inbound"}
        assert sum(int(r["total"]) for r in rows) == INBOUND

    def test_peers_sorted_by_failures(self, events):
        import tlslog

        result = sample("peers", SAMPLE, "--sort", "failures", "--top", "2", "-f", "json")
        rows = json.loads(result.stdout)
        api = tlslog.by_peer(events).sort_values("failures", ascending=False).head(2)
        assert [(r["peer"], r["failures"]) for r in rows] == list(
            zip(api["peer"], api["failures"], strict=True)
        )
        assert rows[0]["failures"] > 0 and rows[0]["peer"] == "acme.example"
        hosts = json.loads(sample("peers", SAMPLE, "--by", "host", "-f", "json", "--top", "0").stdout)
        assert "mx.acme.example" in {r["peer"] for r in hosts}

    def test_ciphers_flag_weak(self):
        rows = json.loads(sample("ciphers", SAMPLE, "-f", "json").stdout)
        des = [r for r in rows if r["cipher"] == "DES-CBC-SHA"]
        assert des and all(r["weak"] for r in des) and des[0]["direction"] == "outbound"
        assert not any(r["weak"] for r in rows if r["cipher"] == "TLS_AES_256_GCM_SHA384")

    def test_failures_match_the_api_and_fail_on_any(self, events):
        import tlslog

        result = sample("failures", SAMPLE, "-f", "json")
        groups = json.loads(result.stdout)
        assert sum(g["count"] for g in groups) == len(tlslog.failures(events))
        weak = [g for g in groups if g["cause"] == "too_weak"]
        truth = {d["relay_host"] for d in TRUTH["deliveries"] if d["tls_failure"] == "too_weak"}
        assert {g["peer"] for g in weak} == truth == {"mail.legacy.example.jp"}
        assert "bits" in weak[0]["explanation"]
        assert sample("failures", SAMPLE, "--fail-on-any", "-q").exit_code == 1
        none = sample("failures", SAMPLE, "--fail-on-any", "-q", "--peer", "mx2.example.org")
        assert none.exit_code == 0 and none.stdout == ""

    def test_trace_queue_id_shows_receipt_with_tls(self):
        r = next(x for x in TRUTH["receipts"] if x["encrypted"] and x["relay_host"] and not x["internal"])
        rows = json.loads(sample("trace", r["qid"], SAMPLE, "-f", "json").stdout)
        receipt = next(x for x in rows if x["what"] == "receipt")
        assert receipt["qid"] == r["qid"] and receipt["peer"] == r["relay_host"]
        assert receipt["tls"].startswith(f"{r['version']} {r['cipher']} {r['cipher_bits']}")
        assert "session" in {x["what"] for x in rows}

    def test_trace_peer_in_time_order(self):
        rows = json.loads(sample("trace", "mail.legacy.example.jp", SAMPLE, "-f", "json").stdout)
        assert {"session", "failure"} <= {x["what"] for x in rows}
        assert [x["time"] for x in rows] == sorted(x["time"] for x in rows)

    def test_report_html_last_week(self, tmp_path):
        out = tmp_path / "weekly.html"
        assert sample("report", SAMPLE, "-o", out, "-q").exit_code == 0
        html = out.read_text()
        assert f"STARTTLS report {FIRST_DAY} .. {LAST_DAY}" in html  # the sample week ends on a Sunday
        assert html.count("data:image/svg+xml;base64,") == 4
        assert f"<td>Inbound messages</td><td>{INBOUND}</td>" in html

    def test_report_markdown_all(self, tmp_path):
        out = tmp_path / "weekly.md"
        assert sample("report", SAMPLE, "-o", out, "--period", "all", "-q").exit_code == 0
        md = out.read_text()
        assert md.startswith(f"# STARTTLS report {FIRST_DAY} .. {LAST_DAY}")
        assert f"| Inbound messages | {INBOUND} | n/a | n/a |" in md

    @pytest.mark.parametrize("what", ["coverage", "failures"])
    def test_chart_png(self, tmp_path, what):
        out = tmp_path / f"{what}.png"
        assert sample("chart", what, SAMPLE, "-o", out, "-q").exit_code == 0
        assert mpimg.imread(out).ndim == 3

    def test_events_kind_csv_and_stdin(self, events):
        result = sample("events", SAMPLE / "mail.log", "--kind", "starttls", "-f", "csv", "-q")
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert rows and {r["kind"] for r in rows} == {"starttls"} and {r["host"] for r in rows} == {"mx2"}
        piped = sample(
            "events", "-", "--kind", "starttls", "-f", "csv", "-q", input=(SAMPLE / "mail.log").read_text()
        )
        assert piped.stdout == result.stdout

    def test_default_locations_are_named_on_stderr(self, monkeypatch):
        from tlslog import sources

        monkeypatch.setattr(sources, "DEFAULT_LOCATIONS", (str(SAMPLE / "maillog"),))
        result = sample("events", "-k", "receipt", "-f", "json")
        assert result.exit_code == 0
        assert result.stderr.startswith("reading ") and "maillog.1.gz" in result.stderr
        assert {r["host"] for r in json.loads(result.stdout)} == {"mx1"}

    def test_since_span_counts_back_from_newest_event(self, events):
        newest = events["timestamp"].max()
        s = json.loads(sample("summary", SAMPLE, "--since", "2d", "-f", "json").stdout)
        assert pd.Timestamp(s["first"]) >= (newest - pd.Timedelta(days=2)).tz_localize(None)
        assert s["last"] == newest.strftime("%Y-%m-%d %H:%M:%S")

    def test_strict_turns_a_bad_line_into_exit_1(self, tmp_path):
        bad = tmp_path / "maillog"
        bad.write_text("Nov  9 10:00:00 mx1 sm-mta[1]: STARTTLS=client, relay=x, version=\n")
        loose = sample("events", bad, "--year", "2026")
        assert loose.exit_code == 0 and "1 parse issues" in loose.stderr
        assert f"{bad}:1: unrecognised STARTTLS line" in loose.stderr
        strict = sample("events", bad, "--year", "2026", "--strict")
        assert strict.exit_code == 1 and strict.stderr.startswith("error: ") and strict.stdout == ""


def test_the_console_script_exits_with_the_commands_code_once_the_cache_is_written(tmp_path):
    """`cli.run` leaves without tearing the interpreter down; the cache's background writes finish first."""
    import subprocess
    import sys

    slow_cache = (  # the cache's write takes longer than the report
        "import sys, time\n"
        "from tlslog import cache, cli\n"
        "write = cache.Cache._write_entry\n"
        "cache.Cache._write_entry = lambda *a: (time.sleep(1), write(*a))\n"
        "sys.argv[0] = 'tlslog'\n"
        "cli.run()\n"
    )

    def tlslog(*args):
        cmd = [sys.executable, "-c", slow_cache, *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    done = tlslog("summary", SAMPLE / "maillog", "--cache-dir", tmp_path / "c", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["lines"] > 0
    assert list((tmp_path / "c").glob("*.parquet"))  # written in a thread, waited for
    missing = tlslog("summary", tmp_path / "nothing-here")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr.startswith("error: ")
    assert tlslog("summary", "--no-such-option").returncode == 2
    module = subprocess.run([sys.executable, "-m", "tlslog", "--version"], capture_output=True, text=True)
    assert (module.returncode, module.stdout.split()[0]) == (0, "tlslog")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_a_full_standard_output_is_an_error_line_not_a_traceback(tmp_path, fmt):
    import subprocess
    import sys

    command = "summary" if fmt == "table" else "events"
    args = [sys.executable, "-m", "tlslog", command, SAMPLE / "maillog", "--no-cache", "-f", fmt]
    with open("/dev/full", "w") as full:
        done = subprocess.run(args, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: cannot write the output: No space left on device"


def test_help_does_not_import_matplotlib():
    import subprocess
    import sys

    code = "import sys, tlslog.cli; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


class TestInputAndOutputChecks:
    def test_export_format_follows_the_suffix(self, tmp_path):
        out = tmp_path / "d.parquet"
        result = sample("export", SAMPLE, "-t", "deliveries", "-o", out, "--year", "2026")
        assert result.exit_code == 0, result.output
        assert out.read_bytes()[:4] == b"PAR1"
        assert len(pd.read_parquet(out)) > 0

    def test_export_suffix_and_format_must_agree(self, tmp_path):
        unknown = sample("export", SAMPLE, "-t", "events", "-o", tmp_path / "x.txt")
        assert unknown.exit_code == 2 and "--output" in unknown.stderr
        clash = sample("export", SAMPLE, "-t", "events", "-o", tmp_path / "x.csv", "-f", "json")
        assert clash.exit_code == 2 and "x.csv is not a json file" in clash.stderr

    def test_truncated_archive_is_named_and_strict_fails(self, tmp_path):
        cut = tmp_path / "maillog.1.gz"
        cut.write_bytes((SAMPLE / "maillog.1.gz").read_bytes()[:3000])
        loose = sample("summary", cut, "--year", "2026")
        assert loose.exit_code == 0, loose.output
        assert f"{cut}:" in loose.stderr and "truncated or corrupt archive" in loose.stderr
        assert "Lines read:" in loose.stdout  # what was read before the cut is reported
        strict = sample("summary", cut, "--year", "2026", "--strict")
        assert strict.exit_code == 1 and "truncated or corrupt archive" in strict.stderr
        assert "Traceback" not in strict.output

    def test_since_after_until_is_a_usage_error(self):
        bad = sample("summary", SAMPLE, "--since", "2026-11-12", "--until", "2026-11-10")
        assert bad.exit_code == 2 and "is not before --until" in bad.stderr
        spans = sample("summary", SAMPLE, "--since", "3d", "--until", "1d", "--year", "2026")
        assert spans.exit_code == 0  # spans count back from the newest event: not comparable up front


def test_trace_on_a_log_without_failures_finds_the_session(tmp_path):
    path = tmp_path / "maillog"
    path.write_text(
        "Nov 22 03:04:12 mx1 sm-mta[1]: STARTTLS=server, relay=mx.peer.example [192.0.2.7], "
        "version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256\n"
    )
    result = run("trace", "mx.peer.example", path, "--no-cache", "-f", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["what"] for r in rows] == ["session"] and rows[0]["tls"].startswith("TLSv1.3")
