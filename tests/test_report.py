"""tlslog.report: rendering, escaping of untrusted log text, the summary, failure groups, the weekly report.

The unit tests run on hand-built frames (tests/fake_frames.py, columns of docs/tables.md); the tests at the
end run the real pipeline on sample_logs/.
"""

import csv
import io
import json
from pathlib import Path

import fake_frames as fake
import pandas as pd
import pytest

from tlslog import report, views, weekly
from tlslog.records import InputError
from tlslog.report import Format, render
from tlslog.weekly import Period

HOSTILE = pd.DataFrame(
    {
        "peer": pd.Series(
            [fake.SCRIPT, fake.MARKUP, "a|b*c_d`e", fake.FORMULA, "-1+2", "@SUM(A1)", "\tx", "ok\x1b[31m"],
            dtype="str",
        ),
        "count": [1, -2, 3, 4, 5, 6, 7, 8],
        "share": [0.5, 0.25, 1.0, 0.0, float("nan"), 0.125, 0.2, 0.3],
    }
)


# -- render -----------------------------------------------------------------------------------------


def test_markdown_escapes_every_special_character():
    md = render(HOSTILE, Format.markdown)
    assert "<script>" not in md and r"\<script\>alert(1)\</script\>.example" in md
    assert r"\[red\]x\[/red\]" in md
    assert r"a\|b\*c\_d\`e" in md
    assert "\x1b" not in md and r"ok\\x1b\[31m" in md
    lines = md.splitlines()
    assert lines[1] == "|---|---:|---:|"
    assert len(lines) == 2 + len(HOSTILE)  # no cell broke a row
    assert all(line.count("|") - line.count(r"\|") == 4 for line in lines)


def test_csv_neutralises_formula_cells_and_keeps_numbers():
    text = render(HOSTILE, "csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["peer", "count", "share"]
    peers = [r[0] for r in rows[1:]]
    assert peers[3] == "'" + fake.FORMULA
    assert peers[4] == "'-1+2" and peers[5] == "'@SUM(A1)" and peers[6] == r"\x09x"
    assert peers[0] == fake.SCRIPT and peers[1] == fake.MARKUP  # not a formula: untouched
    assert [r[1] for r in rows[1:3]] == ["1", "-2"]  # numbers are not text cells
    assert peers[7] == r"ok\x1b[31m"  # no control character reaches a terminal or a reader


def test_csv_a_carriage_return_starts_no_row():
    df = pd.DataFrame({"stat_text": pd.Series(["454 4.7.0 handshake failed\r=1+1", "ok"], dtype="str")})
    text = render(df, "csv")
    assert list(csv.reader(io.StringIO(text))) == [
        ["stat_text"],
        [r"454 4.7.0 handshake failed\x0d=1+1"],
        ["ok"],
    ]
    assert len(pd.read_csv(io.StringIO(text))) == 2


def test_csv_joins_lists_and_neutralises_the_joined_cell():
    df = pd.DataFrame({"recipients": pd.Series([["=cmd", "b@x"], None], dtype=fake.LIST)})
    rows = list(csv.reader(io.StringIO(render(df, "csv"))))
    assert rows == [["recipients"], ["'=cmd, b@x"], [""]]


def test_json_records_iso_times_null_and_lists():
    data = json.loads(render(fake.events(), Format.json))
    assert len(data) == 5
    assert data[0]["timestamp"] == "2026-11-09T10:00:00"
    assert data[0]["cipher_bits"] == 256 and data[0]["qid"] is None
    assert data[3]["recipients"] == ["bob@weak.example", fake.FORMULA]
    assert json.loads(render(HOSTILE, "json"))[4]["share"] is None


def test_table_is_aligned_with_percent_shares_and_no_control_characters():
    text = render(HOSTILE, Format.table)
    lines = text.splitlines()
    assert lines[0].split() == ["peer", "count", "share"]
    assert "50.0%" in lines[2] and "12.5%" in text
    assert "\x1b" not in text and "\t" not in text
    ends = {len(line) for line in lines[2:] if line.endswith("%")}
    assert len(ends) == 1 and len(lines[2:]) - 1 == sum(line.endswith("%") for line in lines[2:])
    assert len(lines) == 2 + len(HOSTILE)


def test_drop_empty_keeps_only_columns_with_values():
    out = report.drop_empty(fake.events())
    assert "cert_subject" not in out.columns and "relay_host" in out.columns


def test_clean_and_md_escape_doctests_hold():
    assert report.clean("a\nb") == r"a\x0ab"
    assert report.md_escape("x_y") == r"x\_y"
    assert report.md_escape(r"$\frac{1}{0}$") == r"\$\\frac{1}{0}\$"  # GitHub would render math
    assert report.csv_safe("+1") == "'+1" and report.csv_safe("1+") == "1+"


# -- views on hand-built frames -----------------------------------------------------------------------


def test_failure_groups_count_messages_recipients_and_filter():
    groups = views.failure_groups(fake.failures())
    assert list(groups["cause"].astype(str)) == ["not_offered", "too_weak"]
    first = groups.iloc[0]
    assert (first["count"], first["messages"], first["recipients"]) == (2, 2, 1)
    assert first["first_seen"] == pd.Timestamp("2026-11-12 09:30") and first["last_seen"] == pd.Timestamp(
        "2026-11-13 09:30"
    )
    assert groups.iloc[1]["recipients"] == 2
    assert first["explanation"] == "The peer did not offer STARTTLS."
    assert len(views.failure_groups(fake.failures(), cause="too_weak")) == 1
    assert len(views.failure_groups(fake.failures(), peer=fake.SCRIPT.upper())) == 1
    assert views.failure_groups(fake.failures(), peer="nobody.example").empty


def test_summary_on_fakes_agrees_with_coverage(monkeypatch):
    fake.install(monkeypatch, views, weekly)
    s = views.summary(fake.events())
    cov = fake.coverage()
    inbound = s["coverage"].set_index("direction").loc["inbound"]
    assert inbound["total"] == 22 and inbound["encrypted_share"] == pytest.approx(21 / 22)
    assert inbound["verified_share"] == pytest.approx(16 / 21)
    out = cov[cov["direction"] == "outbound"]
    assert s["coverage"].set_index("direction").loc["outbound", "encrypted_share"] == pytest.approx(
        out["encrypted"].sum() / out["total"].sum()
    )
    assert (s["lines"], s["skipped"]) == (40, 2)
    parsed = json.loads(views.render_summary(s, "json"))
    assert parsed["lines"] == 40 and parsed["coverage"][0]["direction"] == "inbound"
    assert parsed["failing_peers"][0]["peer"] == fake.SCRIPT and parsed["failing_peers"][0]["failures"] == 2
    text = views.render_summary(s, "table")
    assert "Lines read: 40, parse issues: 2" in text and "95.5%" in text
    assert "Weak crypto still in use" in text and "DES-CBC3-SHA" in text
    with pytest.raises(ValueError, match="several tables"):
        views.render_summary(s, "csv")


def test_trace_by_queue_id_links_the_session(monkeypatch):
    fake.install(monkeypatch, views, weekly)
    t = views.trace(fake.events(), "6A9A0001000101")
    assert list(t["what"]) == ["session", "receipt"]
    assert t.iloc[0]["tls"] == "TLSv1.3 TLS_AES_256_GCM_SHA384 256 verify=OK"
    assert views.trace(fake.events(), "nobody@nowhere.example").empty


def test_trace_by_recipient_finds_delivery_session_and_failure(monkeypatch):
    fake.install(monkeypatch, views, weekly)
    t = views.trace(fake.events(), "BOB@weak.example")
    assert list(t["what"]) == ["session", "delivery", "failure"]
    assert t["time"].is_monotonic_increasing


# -- report window ----------------------------------------------------------------------------------


def _times(*stamps):
    return pd.DataFrame({"timestamp": pd.to_datetime(list(stamps), format="ISO8601")})


@pytest.mark.parametrize(
    ("newest", "start", "end"),
    [
        ("2026-11-15 23:50", "2026-11-09", "2026-11-16"),  # data ends on a Sunday: that week is full
        ("2026-11-18 08:00", "2026-11-09", "2026-11-16"),  # ends mid-week: the week before
        ("2026-11-16 00:10", "2026-11-09", "2026-11-16"),  # Monday just started
    ],
)
def test_last_week_is_the_last_full_monday_to_sunday(newest, start, end):
    w = weekly.window(_times("2026-11-01", newest), Period.last_week)
    assert (w.start, w.end) == (pd.Timestamp(start), pd.Timestamp(end))
    assert w.start.weekday() == 0 and (w.prev_start, w.prev_end) == (w.start - pd.Timedelta(days=7), w.start)


def test_last_7_days_ends_at_the_newest_event_and_all_has_no_previous():
    w = weekly.window(_times("2026-11-01", "2026-11-18 08:00"), "last-7-days")
    assert w.end - pd.Timedelta(days=7) == w.start and w.start < pd.Timestamp("2026-11-11 08:00:00.001")
    a = weekly.window(_times("2026-11-01", "2026-11-18 08:00"), "all")
    assert a.start == pd.Timestamp("2026-11-01") and a.prev_start is None
    with pytest.raises(InputError, match="no events with a timestamp"):
        weekly.window(_times(), "all")


# -- weekly report on hand-built frames ---------------------------------------------------------------


def test_weekly_html_escapes_log_text_and_embeds_charts(monkeypatch):
    fake.install(monkeypatch, views, weekly)
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><text>x</text></svg>'
    html = weekly.weekly_report(fake.events(), period="all", fmt="html", charts={"coverage": svg})
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;.example" in html
    assert "[red]x[/red]" in html  # markup is just text in HTML
    assert 'src="data:image/svg+xml;base64,' in html
    assert "<link" not in html and "http://" not in html.replace("http://www.w3.org", "")  # self-contained
    assert "STARTTLS report 2026-11-09 .. 2026-11-12" in html


def test_weekly_markdown_escapes_log_text(monkeypatch):
    fake.install(monkeypatch, views, weekly)
    md = weekly.weekly_report(fake.events(), period="all", fmt="markdown")
    assert "<script>" not in md and r"\<script\>" in md
    assert r"\[red\]x\[/red\]" in md
    assert md.startswith("# STARTTLS report 2026-11-09 .. 2026-11-12")
    assert "## Peer domains (most volume first)" in md and "data:image" not in md


def test_weekly_report_rejects_other_formats(monkeypatch):
    with pytest.raises(ValueError, match="html or markdown"):
        weekly.weekly_report(fake.events(), fmt="pdf")


# -- on the real pipeline and sample_logs/ ------------------------------------------------------------

SAMPLE = Path(__file__).parent.parent / "sample_logs"
TRUTH = json.loads((Path(__file__).parent / "data" / "sample_truth.json").read_text())


@pytest.fixture(scope="module")
def events():
    import tlslog

    return tlslog.read_log(SAMPLE)


def test_sample_summary_coverage_equals_the_api(events):
    import tlslog

    s = views.summary(events)
    cov = tlslog.coverage(events, by="day").groupby("direction")[["total", "encrypted", "verified"]].sum()
    mine = s["coverage"].set_index("direction")
    for d in ("inbound", "outbound"):
        assert mine.loc[d, "total"] == cov.loc[d, "total"]
        assert mine.loc[d, "encrypted_share"] == pytest.approx(cov.loc[d, "encrypted"] / cov.loc[d, "total"])
        assert mine.loc[d, "verified_share"] == pytest.approx(
            cov.loc[d, "verified"] / cov.loc[d, "encrypted"]
        )
    sessions = s["sessions"].groupby("direction")["sessions"].sum()
    api = tlslog.sessions(events)
    api = api[~api["internal"].fillna(False).astype(bool)]
    assert sessions["inbound"] == (api["direction"] == "server").sum()


def test_sample_weekly_data_is_the_sample_week(events):
    data = weekly.weekly_data(events, period="last-week")
    start = pd.Timestamp(TRUTH["generator"]["start"])
    assert data.window.start.tz_localize(None) == start
    assert data.window.end - data.window.start == pd.Timedelta(days=7)
    headline = data.headline.set_index("figure")
    keys = TRUTH["totals"]["receipts_by_host_encrypted_internal"]
    assert (
        headline.loc["Inbound messages", "this period"]
        == f"{sum(n for k, n in keys.items() if k.endswith('/False')):,}"
    )
    assert headline.loc["Inbound messages", "previous"] == "n/a"  # nothing logged the week before
    assert len(data.trend) == 2 * TRUTH["generator"]["days"]
    assert data.peers["total"].is_monotonic_decreasing
    truth_weak = {d["relay_host"] for d in TRUTH["deliveries"] if d["tls_failure"] == "too_weak"}
    fails = data.failures
    assert set(fails.loc[fails["cause"].astype(str) == "too_weak", "peer"]) == truth_weak
