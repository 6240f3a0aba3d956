"""tlslog.charts: each chart draws on a given Axes, titles and percentages are set, files load back."""

import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import fake_frames as fake
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from tlslog import charts


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def ax():
    _fig, ax = charts.new_figure()
    return ax


def test_coverage_trend_plots_shares_per_direction(ax):
    out = charts.coverage_trend(fake.coverage(), ax=ax)
    assert out is ax
    assert ax.get_title() == "STARTTLS coverage"
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == [
        "inbound encrypted",
        "inbound verified (of encrypted)",
        "outbound encrypted",
        "outbound verified (of encrypted)",
    ]
    assert list(ax.get_lines()[0].get_ydata()) == [0.9, 1.0]
    assert ax.yaxis.get_major_formatter()(0.5, 0) == "50%"


def test_versions_are_100_percent_bars_with_labels(ax):
    charts.versions(fake.by_version(), ax=ax)
    assert ax.get_title() == "TLS protocol versions"
    texts = [t.get_text() for t in ax.texts]
    assert "71%" in texts and "29%" in texts and "100%" in texts
    assert [t.get_text() for t in ax.get_yticklabels()] == ["inbound", "outbound"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["TLSv1", "TLSv1.2", "TLSv1.3"]
    assert sorted(round(p.get_width(), 3) for p in ax.patches if p.get_width() > 0) == [0.286, 0.714, 1.0]


def test_verify_chart_from_by_verify(ax):
    charts.verify(fake.by_verify(), ax=ax)
    assert ax.get_title() == "Certificate verification"
    assert {t.get_text() for t in ax.texts} >= {"100%", "67%", "33%"}


def test_ciphers_flags_weak_and_escapes_dollar(ax):
    table = pd.concat(
        [
            fake.by_cipher(),
            pd.DataFrame(
                {
                    "direction": ["inbound", "inbound"],
                    "version": ["TLSv1.2", "TLSv1.2"],
                    "cipher": ["$x$", "ESC\x1b[31m"],
                    "cipher_bits": [128, 128],
                    "count": [1, 1],
                    "share": [1.0, 1.0],
                    "weak": [False, False],
                }
            ),
        ],
        ignore_index=True,
    )
    charts.ciphers(table, ax=ax)
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[-1] == "TLS_AES_256_GCM_SHA384 (256)"  # most used at the top
    assert "DES-CBC3-SHA (112) WEAK" in ticks
    assert r"\$x\$ (128)" in ticks  # log text is never mathtext
    assert r"ESC\x1b[31m (128)" in ticks  # no font has a glyph for a control character
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of a missing glyph
        ax.figure.canvas.draw()  # mathtext would raise on unbalanced input; literal text draws


def test_failures_per_day_stacked_by_cause(ax):
    charts.failures(fake.failures(), ax=ax)
    assert ax.get_title() == "TLS failures per day"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2026-11-10", "2026-11-12", "2026-11-13"]
    heights = sorted(p.get_height() for p in ax.patches if p.get_height() > 0)
    assert heights == [1, 1, 1]


@pytest.mark.parametrize(
    "draw", [charts.coverage_trend, charts.versions, charts.verify, charts.ciphers, charts.failures]
)
def test_empty_frames_say_no_data(draw, ax):
    empty = {
        charts.coverage_trend: fake.coverage(),
        charts.versions: fake.by_version(),
        charts.verify: fake.by_verify(),
        charts.ciphers: fake.by_cipher(),
        charts.failures: fake.failures(),
    }
    draw(empty[draw].iloc[0:0], ax=ax)
    assert [t.get_text() for t in ax.texts] == ["no data"]


def test_without_ax_a_new_pyplot_figure_is_made():
    before = len(plt.get_fignums())
    ax = charts.versions(fake.by_version())
    assert len(plt.get_fignums()) == before + 1 and ax.figure is plt.gcf()


def test_to_svg_parses_as_xml_and_escapes_text(ax):
    charts.failures(fake.failures().assign(cause=pd.Categorical(["<b>&", "too_weak", "too_weak"])), ax=ax)
    svg = charts.to_svg(ax.figure)
    root = ET.fromstring(svg.encode())
    assert root.tag.endswith("svg")
    assert "<b>&" not in svg


def test_save_png_and_svg_load_back(ax, tmp_path):
    charts.coverage_trend(fake.coverage(), ax=ax)
    png = charts.save(ax.figure, tmp_path / "c.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert mpimg.imread(png).shape[2] in (3, 4)
    svg = charts.save(ax.figure, tmp_path / "c.SVG")
    ET.parse(svg)
    with pytest.raises(ValueError, match=r"png or \.svg"):
        charts.save(ax.figure, tmp_path / "c.pdf")


def test_every_chart_takes_the_sample_events_frame():
    import tlslog

    events = tlslog.read_log(Path(__file__).parent.parent / "sample_logs")
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for draw, ax in zip(
        (charts.coverage_trend, charts.versions, charts.verify, charts.ciphers), axes.flat, strict=False
    ):
        assert draw(events, ax=ax) is ax
        assert ax.get_title() and "no data" not in [t.get_text() for t in ax.texts]
    charts.failures(tlslog.failures(events), ax=axes.flat[4])
    assert (
        sum(p.get_height() for p in axes.flat[4].patches)
        == tlslog.failures(events)["timestamp"].notna().sum()
    )
    ET.fromstring(charts.to_svg(fig).encode())
