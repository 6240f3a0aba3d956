"""The summary and the weak-crypto table read only the session columns they need (text for the weak
sessions only), with the same results as from the full public `sessions` table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
from test_linking import EVERYTHING, frame

from tlslog import read_log, sessions, views

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("generate", ROOT / "benchmarks" / "generate.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)

SCOPES = [(False, ()), (True, ()), (False, ("mx2.example.org",)), (True, ("mx2.example.org",))]


@pytest.fixture(scope="module", params=["lines", "week"])
def events(request, tmp_path_factory) -> pd.DataFrame:
    if request.param == "lines":
        return frame(EVERYTHING)
    log = tmp_path_factory.mktemp("week") / "week.log"
    assert generate.main(["--lines", "6000", "--seed", "5", "--out", str(log)]) == 0
    return read_log(log, year=2026)


def _from_public(events: pd.DataFrame, include_internal: bool, internal: tuple) -> pd.DataFrame:
    return views.without_internal(sessions(events, internal=internal), include_internal)


@pytest.mark.parametrize(("include_internal", "internal"), SCOPES)
def test_summary_sessions_and_weak_as_from_the_public_table(events, include_internal, internal):
    s = views.summary(events, include_internal=include_internal, internal=internal, top=1000)
    full = views._inout(_from_public(events, include_internal, internal))
    counts = full.groupby(["direction", "outcome"], observed=True).size().rename("sessions").reset_index()
    pd.testing.assert_frame_equal(s["sessions"], counts)
    pd.testing.assert_frame_equal(s["weak"], views.weak_table(events, sess=full))
    assert s["sessions"]["sessions"].sum() == len(full) > 0


@pytest.mark.parametrize(("include_internal", "internal"), SCOPES)
def test_weak_table_of_events_as_of_the_public_table(events, include_internal, internal):
    scope = views.scope_kwargs(include_internal, internal)
    expected = views.weak_table(events, sess=_from_public(events, include_internal, internal))
    pd.testing.assert_frame_equal(views.weak_table(events, **scope), expected)


def test_summary_spells_text_for_weak_sessions_only(events, monkeypatch):
    calls = []

    def spelled(linked, kind, ev, columns, at=None):
        calls.append((kind, list(columns), len(linked.sessions) if at is None else len(at)))
        return real(linked, kind, ev, columns, at)

    real = views.spelled
    monkeypatch.setattr(views, "spelled", spelled)
    views.summary(events)
    full = _from_public(events, False, ())
    weak = int(full["weak"].fillna(False).to_numpy(dtype=bool).sum())
    assert 0 < weak < len(full)
    texts = [n for kind, columns, n in calls if {"peer", "version", "cipher"} & set(columns)]
    assert texts == [weak]
