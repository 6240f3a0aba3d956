"""The typed events frame: dtypes, version order, timestamps, time filters, and read_log's attrs."""

from __future__ import annotations

import os
import time
import warnings
from datetime import UTC, date, datetime, timedelta, timezone

import pandas as pd
import pytest

from tlslog import frames
from tlslog.frames import VERSION_DTYPE, events_frame, filter_time, parse_when, read_log
from tlslog.records import EVENT_FIELDS, Event, ParseIssue, StrictParseError

PLUS1 = timezone(timedelta(hours=1))


def starttls_server(ts, pid=16051, version="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384", bits=256, **kw):
    """[lab] Nov 22 03:04:12 vm sm-mta[16051]: STARTTLS=server, relay=localhost [127.0.0.1], ..."""
    fields = dict(
        host="vm", program="sm-mta", pid=pid, direction="server", relay_host="localhost",
        relay_ip="127.0.0.1", version=version, verify="OK", cipher=cipher, alg_bits=bits, cipher_bits=bits,
    )  # fmt: skip
    return Event("starttls", ts, **(fields | kw))


def receipt(ts):
    """[lab] ... sm-mta[16051]: 6AM34CLa016051: from=<sender@client.lab.test>, size=269, ... proto=ESMTPS"""
    return Event(
        "receipt", ts, "vm", "sm-mta", 16051, "6AM34CLa016051", relay_host="localhost", relay_ip="127.0.0.1",
        sender="<sender@client.lab.test>", size=269, nrcpts=1, proto="ESMTPS", daemon="MTA",
        msgid="<lab14321@client.lab.test>",
    )  # fmt: skip


def delivery(ts):
    """[public: sonic.net] qADMh0cd016570: to=<augie@corp.sonic.net>,<augie@sonic.net>,... mailer=esmtp"""
    return Event(
        "delivery", ts, "a.mail.sonic.net", "sm-mta", 16961, "qADMh0cd016570",
        relay_host="ign-com.mail.eo.outlook.com", relay_ip="216.32.180.22",
        recipients=("<augie@corp.sonic.net>", "<augie@sonic.net>", "<augie@schwer.us>"), mailer="esmtp",
        dsn="2.0.0", stat="Sent", stat_text="(<00b601cdc1f0$4d506a80$e7f13f80$@com> [InternalId=14475985] "
        "Queued mail for delivery)", delay="00:09:09", xdelay="00:00:09",
    )  # fmt: skip


def tls_reject(ts):
    """[public: sonic.net] sendmail[32283]: ruleset=tls_server, arg1=SOFTWARE, relay=..., reject=403 ..."""
    return Event(
        "tls_reject", ts, "c.spam.sonic.net", "sendmail", 32283, direction="client",
        relay_host="goransoncpa-com.mail.eo.outlook.com", ruleset="tls_server", arg1="SOFTWARE",
        reject="403 4.7.0 TLS handshake failed.", reply_code=403,
    )  # fmt: skip


def sample_events():
    return [
        starttls_server(datetime(2026, 11, 22, 3, 4, 12)),
        receipt(datetime(2026, 11, 22, 3, 4, 12)),
        delivery(datetime(2026, 11, 13, 14, 52, 10)),  # file order is kept, even when time goes back
        tls_reject(None),  # a pasted fragment without envelope
    ]


# --- dtypes -----------------------------------------------------------------------------------------


@pytest.fixture(params=["sample", "empty"])
def frame(request):
    return events_frame(sample_events() if request.param == "sample" else [])


def test_columns_are_the_event_fields_in_order(frame):
    assert tuple(frame.columns) == EVENT_FIELDS


@pytest.mark.parametrize("column", frames.CATEGORY_COLUMNS)
def test_low_cardinality_text_is_categorical_with_str_categories(frame, column):
    dtype = frame[column].dtype
    assert isinstance(dtype, pd.CategoricalDtype) and not dtype.ordered
    assert pd.api.types.is_string_dtype(dtype.categories.dtype)


@pytest.mark.parametrize("column", frames.INT_COLUMNS)
def test_numbers_are_nullable_int64(frame, column):
    assert frame[column].dtype == "Int64"


@pytest.mark.parametrize("column", frames.STR_COLUMNS)
def test_other_text_is_pandas_str(frame, column):
    assert frame[column].dtype == pd.StringDtype("pyarrow", na_value=float("nan"))


def test_version_recipients_timestamp_dtypes(frame):
    assert frame["version"].dtype == VERSION_DTYPE
    assert str(frame["recipients"].dtype) == "list<item: string>[pyarrow]"
    assert frame["timestamp"].dtype == "datetime64[us]"


def test_the_column_groups_cover_every_field_once():
    groups = [*frames.CATEGORY_COLUMNS, *frames.INT_COLUMNS, *frames.LIST_COLUMNS, *frames.STR_COLUMNS]
    assert sorted([*groups, "timestamp", "version"]) == sorted(EVENT_FIELDS)


def test_values_survive_typing():
    df = events_frame(sample_events())
    first = df.iloc[0]
    assert (first["kind"], first["relay_ip"], first["cipher"]) == (
        "starttls",
        "127.0.0.1",
        "TLS_AES_256_GCM_SHA384",
    )
    assert (first["pid"], first["cipher_bits"]) == (16051, 256)
    assert pd.isna(first["size"]) and pd.isna(first["qid"]) and pd.isna(first["mailer"])
    assert df["recipients"].iloc[2] == ["<augie@corp.sonic.net>", "<augie@sonic.net>", "<augie@schwer.us>"]
    assert pd.isna(df["recipients"].iloc[0])
    assert df["reply_code"].tolist() == [pd.NA, pd.NA, pd.NA, 403]
    assert df["kind"].tolist() == ["starttls", "receipt", "delivery", "tls_reject"]


def test_categories_are_sorted():
    df = events_frame(sample_events())
    assert list(df["kind"].cat.categories) == ["delivery", "receipt", "starttls", "tls_reject"]


def test_empty_and_all_missing_columns_keep_their_dtypes():
    full = events_frame(sample_events())
    # categorical dtypes differ only in their categories
    assert events_frame([]).dtypes.astype(str).equals(full.dtypes.astype(str))
    assert len(events_frame(iter([]))) == 0
    # "subkind" and "detail" are missing on every row
    assert full["subkind"].isna().all() and full["detail"].isna().all()


def test_generators_are_accepted():
    assert len(events_frame(e for e in sample_events())) == 4


def test_rows_keep_input_order():
    df = events_frame(sample_events())
    assert df.index.equals(pd.RangeIndex(4))
    assert df["timestamp"].iloc[2] < df["timestamp"].iloc[1]


# --- version order ----------------------------------------------------------------------------------


def test_version_comparison_follows_protocol_order():
    versions = ["TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1/SSLv3", "TLSv1", "SSLv3", None]
    df = events_frame([starttls_server(None, version=v) for v in versions])
    assert (df["version"] >= "TLSv1.2").tolist() == [True, True, False, False, False, False, False]
    assert (df["version"] < "TLSv1.1").tolist() == [False, False, False, True, True, True, False]
    assert df["version"].min() == "SSLv3"


def test_unknown_versions_become_other_without_warning():
    # sendmail substitutes UNKNOWN for a NULL SSL_get_version(); TLSv1.4 is a future name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = events_frame([starttls_server(None, version=v) for v in ["UNKNOWN", "TLSv1.4", "TLSv1.3"]])
    assert df["version"].tolist() == ["other", "other", "TLSv1.3"]
    assert df["version"].dtype == VERSION_DTYPE
    assert df["version"].iloc[0] > "TLSv1.3"


# --- timestamps -------------------------------------------------------------------------------------


def test_naive_timestamps_stay_naive():
    df = events_frame(sample_events())
    assert df["timestamp"].dtype == "datetime64[us]"
    assert df["timestamp"].iloc[0] == pd.Timestamp("2026-11-22 03:04:12")
    assert pd.isna(df["timestamp"].iloc[3])


def test_aware_timestamps_become_utc():
    # journalctl -o short-iso: 2026-09-21T14:13:20+0000; RSYSLOG_FileFormat with +01:00
    events = [
        starttls_server(datetime(2026, 9, 21, 14, 13, 20, tzinfo=UTC)),
        receipt(datetime(2026, 9, 21, 15, 13, 21, 801352, tzinfo=PLUS1)),
    ]
    df = events_frame(events)
    assert str(df["timestamp"].dtype) == "datetime64[us, UTC]"
    assert df["timestamp"].tolist() == [
        pd.Timestamp("2026-09-21 14:13:20", tz="UTC"),
        pd.Timestamp("2026-09-21 14:13:21.801352", tz="UTC"),
    ]


def test_naive_timestamps_among_aware_ones_are_localised_with_tz():
    events = [
        starttls_server(datetime(2026, 11, 22, 3, 4, 12)),  # BSD, local time in Berlin (CET, +01:00)
        receipt(datetime(2026, 11, 22, 2, 4, 13, tzinfo=UTC)),
        delivery(datetime(2026, 7, 1, 12, 0, 0)),  # CEST, +02:00
        tls_reject(None),
    ]
    df = events_frame(events, tz="Europe/Berlin")
    assert str(df["timestamp"].dtype) == "datetime64[us, UTC]"
    assert df["timestamp"].iloc[0] == pd.Timestamp("2026-11-22 02:04:12", tz="UTC")
    assert df["timestamp"].iloc[1] == pd.Timestamp("2026-11-22 02:04:13", tz="UTC")
    assert df["timestamp"].iloc[2] == pd.Timestamp("2026-07-01 10:00:00", tz="UTC")
    assert pd.isna(df["timestamp"].iloc[3])


def test_default_zone_is_the_machines(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        df = events_frame(
            [
                starttls_server(datetime(2026, 1, 15, 9, 0)),
                receipt(datetime(2026, 1, 15, 14, 0, 1, tzinfo=UTC)),
            ]
        )
    finally:
        monkeypatch.undo()
        time.tzset()
    assert df["timestamp"].iloc[0] == pd.Timestamp("2026-01-15 14:00:00", tz="UTC")


def test_repeated_autumn_hour_and_skipped_spring_hour_do_not_fail():
    naive = [datetime(2026, 10, 25, 2, 30), datetime(2026, 10, 25, 2, 10), datetime(2026, 3, 29, 2, 30)]
    events = [starttls_server(t) for t in naive] + [receipt(datetime(2026, 10, 25, 3, 0, tzinfo=UTC))]
    df = events_frame(events, tz="Europe/Berlin")
    assert df["timestamp"].notna().all()


# --- parse_when and filter_time ---------------------------------------------------------------------

NOW = datetime(2026, 11, 22, 3, 4, 12)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("2026-11-09", datetime(2026, 11, 9)),
        (date(2026, 11, 9), datetime(2026, 11, 9)),
        (datetime(2026, 11, 9, 14, 0), datetime(2026, 11, 9, 14, 0)),
        ("2026-11-09 14:00", datetime(2026, 11, 9, 14, 0)),
        ("2026-11-09T14:00:00+01:00", datetime(2026, 11, 9, 14, 0, tzinfo=PLUS1)),
        ("2026-11-09T13:00:00Z", datetime(2026, 11, 9, 13, 0, tzinfo=UTC)),
        ("7d", NOW - timedelta(days=7)),
        ("24h", NOW - timedelta(hours=24)),
        (" 2W ", NOW - timedelta(weeks=2)),
        ("30min", NOW - timedelta(minutes=30)),
        ("90s", NOW - timedelta(seconds=90)),
        ("1.5h", NOW - timedelta(minutes=90)),
    ],
)
def test_parse_when(value, expected):
    assert parse_when(value, now=NOW) == expected


@pytest.mark.parametrize("value", ["last tuesday", "2026-13-01", "7x", "", 7])
def test_parse_when_rejects_junk(value):
    with pytest.raises(ValueError, match="not a time"):
        parse_when(value, now=NOW)


def test_relative_time_needs_now():
    with pytest.raises(ValueError, match="reference time"):
        parse_when("7d")


def hourly(n, start=datetime(2026, 11, 9, 0, 0), tzinfo=None):
    return events_frame(
        [starttls_server((start + timedelta(hours=i)).replace(tzinfo=tzinfo)) for i in range(n)]
    )


def test_since_is_inclusive_and_until_exclusive():
    df = filter_time(hourly(48), since="2026-11-09 12:00", until=date(2026, 11, 10))
    assert df["timestamp"].min() == pd.Timestamp("2026-11-09 12:00")
    assert df["timestamp"].max() == pd.Timestamp("2026-11-09 23:00")
    assert len(df) == 12
    assert df.index.equals(pd.RangeIndex(12))


def test_relative_since_counts_back_from_the_newest_event():
    df = filter_time(hourly(48), since="24h")
    assert len(df) == 25  # newest is 2026-11-10 23:00; since 2026-11-09 23:00 inclusive
    assert filter_time(hourly(48), until="46h")["timestamp"].tolist() == [pd.Timestamp("2026-11-09 00:00")]


def test_rows_without_timestamp_go_when_filtering():
    df = events_frame([tls_reject(None), starttls_server(datetime(2026, 11, 9, 1, 0))])
    assert len(filter_time(df)) == 2
    assert filter_time(df, since="2026-11-01")["kind"].tolist() == ["starttls"]
    assert filter_time(events_frame([tls_reject(None)]), since="7d").empty


def test_aware_bound_on_naive_column_uses_tz():
    df = filter_time(hourly(24), since="2026-11-09T10:00:00+00:00", tz="Europe/Berlin")
    assert df["timestamp"].min() == pd.Timestamp("2026-11-09 11:00")


def test_naive_bound_on_aware_column_uses_tz():
    df = filter_time(hourly(24, tzinfo=UTC), since="2026-11-09 12:00", tz="Europe/Berlin")
    assert df["timestamp"].min() == pd.Timestamp("2026-11-09 11:00", tz="UTC")


def test_filter_rejects_junk():
    with pytest.raises(ValueError, match="not a time"):
        filter_time(hourly(2), until="yesterday-ish")
    with pytest.raises(ValueError, match="not a time"):
        filter_time(events_frame([]), since="7 parsecs")


# --- read_log plumbing (iter_events replaced by a stand-in) ----------------------------------------


@pytest.fixture
def fake_iter_events(monkeypatch):
    """The reading layer replaced by a stand-in that returns the sample events as one parsed piece."""
    from tlslog.fastpath import raw_table
    from tlslog.workers import Piece

    calls = {}
    issue = ParseIssue("maillog", 3, "unreadable STARTTLS line", "STARTTLS=server, relay=")

    def read_pieces(found, year, cache, jobs, on_progress):
        calls.update(paths=[s.name for s in found], year=year, jobs=jobs)
        for _ in sample_events():
            if on_progress is not None:
                on_progress(150)
        return [Piece(raw_table(sample_events()), [(2, 1, issue)], lines=5, bytes=600)]

    monkeypatch.setattr(frames.sources, "expand", lambda paths: [frames.sources.Source(paths, None, None, 0)])
    monkeypatch.setattr(frames, "_read_pieces", read_pieces)
    return calls, issue


def test_read_log_fills_attrs_and_passes_options(fake_iter_events):
    calls, issue = fake_iter_events
    seen, progress = [], []
    df = read_log(
        "maillog", year=2026, strict=False, on_issue=seen.append, on_progress=progress.append, jobs=3
    )
    assert (calls["paths"], calls["year"], calls["jobs"]) == (["maillog"], 2026, 3)
    assert progress == [150] * 4  # the caller's on_progress sees every report
    assert len(df) == 4
    assert list(df.attrs["issues"]) == [issue]
    assert seen == [issue]  # the caller's on_issue still sees every issue
    assert df.attrs["stats"] == {"lines": 5, "events": 4, "issues": 1, "bytes": 600, "sources": ["maillog"]}


def test_read_log_filters_by_time(fake_iter_events):
    df = read_log("maillog", since="2026-11-20")
    assert df["kind"].tolist() == ["starttls", "receipt"]
    assert df.attrs["stats"]["events"] == 4  # counts describe the read, not the filter


# --- read_log on real-format files --------------------------------------------------------------------

# [lab] inbound session at LogLevel 9 (sendmail-log-format.md 7.3), then more sessions of the same host
LAB_LINES = """\
Nov 22 03:04:12 vm sendmail[16050]: 6AM34CUQ016050: from=sender@client.lab.test, size=64, class=0, nrcpts=1, msgid=<lab14321@client.lab.test>, relay=root@localhost
Nov 22 03:04:12 vm sm-mta[16051]: STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:04:12 vm sendmail[16050]: STARTTLS=client, relay=[127.0.0.1], version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:04:12 vm sm-mta[16051]: 6AM34CLa016051: from=<sender@client.lab.test>, size=269, class=0, nrcpts=1, msgid=<lab14321@client.lab.test>, proto=ESMTPS, daemon=MTA, relay=localhost [127.0.0.1]
Nov 22 03:04:12 vm sendmail[16050]: 6AM34CUQ016050: to=root@lab.test, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=30064, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (6AM34CLa016051 Message accepted for delivery)
Nov 22 03:04:12 vm sm-mta[16052]: 6AM34CLa016051: to=<root@lab.test>, delay=00:00:00, xdelay=00:00:00, mailer=local, pri=30521, dsn=2.0.0, stat=Sent
Nov 22 03:06:45 vm sm-mta[17610]: STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1.2, verify=OK, cipher=ECDHE-RSA-AES128-GCM-SHA256, bits=128/128
Nov 22 03:07:00 vm sm-mta[17611]: STARTTLS=server, relay=localhost [127.0.0.1], version=UNKNOWN, verify=NO, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov 22 03:07:01 vm sm-mta[17612]: STARTTLS=server, relay=localhost [127.0.0.1], version
Dec  6 14:06:30 vm sm-mta[3306]: STARTTLS=server, relay=[184.21.104.253], version=TLSv1/SSLv3, verify=NO, cipher=RC4-MD5, bits=128/128
Dec  6 14:24:52 vm sm-mta[28606]: ruleset=check_relay, arg1=c-76-102-185-118.hsd1.ca.comcast.net, arg2=76.102.185.118, relay=c-76-102-185-118.hsd1.ca.comcast.net [76.102.185.118], reject=421 4.3.2 Connection rate limit exceeded.
"""  # noqa: E501

# RSYSLOG_FileFormat (Debian 12 default) and journalctl -o short-iso, same sessions a day later
ISO_LINES = """\
2026-11-23T03:03:48.801352+00:00 vm sm-mta[15792]: STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
2026-11-23T04:13:20+0100 vm sm-mta[15793]: STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1.1, verify=NO, cipher=ECDHE-RSA-AES256-SHA, bits=256/256
"""  # noqa: E501


@pytest.fixture
def lab_log(tmp_path):
    path = tmp_path / "maillog"
    path.write_text(LAB_LINES)
    end = datetime(2026, 12, 31, 12, 0).timestamp()
    os.utime(path, (end, end))  # BSD years are inferred against the file's end
    return path


def test_read_log_types_real_lines(lab_log):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # UNKNOWN must become "other" without a pandas warning
        df = read_log(lab_log, year=2026)
    assert tuple(df.columns) == EVENT_FIELDS
    assert (
        df["kind"].tolist()
        == ["receipt", "starttls", "starttls", "receipt", "delivery", "delivery"] + ["starttls"] * 3
    )
    assert df["timestamp"].dtype == "datetime64[us]"
    assert df["timestamp"].iloc[0] == pd.Timestamp("2026-11-22 03:04:12")
    assert df["version"].dtype == VERSION_DTYPE
    starttls = df[df["kind"] == "starttls"]
    assert starttls["version"].tolist() == ["TLSv1.3", "TLSv1.3", "TLSv1.2", "other", "TLSv1/SSLv3"]
    assert (starttls["version"] >= "TLSv1.2").tolist() == [True, True, True, True, False]
    assert starttls["cipher_bits"].dtype == "Int64" and starttls["cipher_bits"].tolist() == [
        256,
        256,
        128,
        256,
        128,
    ]
    assert df["pid"].iloc[3] == 16051 and df["size"].iloc[3] == 269 and df["proto"].iloc[3] == "ESMTPS"
    assert [r.strip("<>") for r in df["recipients"].iloc[5]] == ["root@lab.test"]
    assert df["qid"].dtype == pd.StringDtype("pyarrow", na_value=float("nan"))
    assert isinstance(df["host"].dtype, pd.CategoricalDtype)


def test_read_log_attrs_from_a_real_file(lab_log):
    progress = []
    df = read_log(lab_log, year=2026, on_progress=progress.append)
    issues = df.attrs["issues"]
    assert [i.lineno for i in issues] == [9]  # the truncated STARTTLS line
    assert issues[0].source.endswith("maillog")
    stats = df.attrs["stats"]
    assert stats["lines"] == 11 and stats["events"] == len(df) == 9 and stats["issues"] == 1
    assert stats["bytes"] == lab_log.stat().st_size == sum(progress)
    assert len(stats["sources"]) == 1 and stats["sources"][0].endswith("maillog")


def test_read_log_strict_raises_at_the_bad_line(lab_log):
    with pytest.raises(StrictParseError) as info:
        read_log(lab_log, year=2026, strict=True)
    assert info.value.issue.lineno == 9


def test_read_log_since_until(lab_log):
    df = read_log(lab_log, year=2026, since="2026-11-22 03:05", until="2026-12-01")
    assert df["pid"].tolist() == [17610, 17611]
    assert read_log(lab_log, year=2026, since="1h")["pid"].tolist() == [3306]
    assert read_log(lab_log, year=2026, since=date(2026, 12, 7)).empty


def test_read_log_mixed_envelopes_become_utc(tmp_path, lab_log):
    iso = tmp_path / "mail.log"
    iso.write_text(ISO_LINES)
    df = read_log([lab_log, iso], year=2026, tz="Europe/Berlin")
    assert str(df["timestamp"].dtype) == "datetime64[us, UTC]"
    ts = df.groupby("pid")["timestamp"].first()
    assert ts[16051] == pd.Timestamp("2026-11-22 02:04:12", tz="UTC")  # BSD in Berlin (CET)
    assert ts[15792] == pd.Timestamp("2026-11-23 03:03:48.801352", tz="UTC")
    assert ts[15793] == pd.Timestamp("2026-11-23 03:13:20", tz="UTC")
    assert (df.loc[df["pid"] == 15793, "version"] < "TLSv1.2").all()


def test_read_log_empty_file(tmp_path):
    path = tmp_path / "maillog"
    path.write_text("")
    df = read_log(path)
    assert df.empty and tuple(df.columns) == EVENT_FIELDS
    assert df.dtypes.astype(str).equals(events_frame(sample_events()).dtypes.astype(str))
    assert list(df.attrs["issues"]) == []
    assert df.attrs["stats"]["lines"] == 0 and df.attrs["stats"]["events"] == 0


def test_unknown_zone_is_a_value_error(lab_log):
    with pytest.raises(ValueError, match="unknown time zone"):
        read_log(lab_log, tz="Europe/Atlantis")
    with pytest.raises(ValueError, match="unknown time zone"):
        filter_time(hourly(2), since="2026-11-09T00:00:00+00:00", tz="../etc/passwd")


def test_events_with_wrong_field_types_are_a_type_error():
    with pytest.raises(TypeError, match="Event field types"):
        events_frame([Event("starttls", pid="16051")])


def test_frame_of_a_filtered_table_has_only_the_present_categories():
    from tlslog.fastpath import raw_table
    from tlslog.frames import frame_of

    events = [Event("starttls", host="a", version="TLSv1.2"), Event("receipt", host="b", version="TLSv1.3")]
    table = raw_table(events).slice(1)
    df = frame_of(table)
    assert list(df["host"].cat.categories) == ["b"] and list(df["kind"].cat.categories) == ["receipt"]
    assert df["host"].tolist() == ["b"]
