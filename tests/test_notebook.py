"""notebooks/explore.ipynb runs top to bottom on the sample logs, is committed clean, uses only the public
API, and its headline numbers agree with ``tlslog summary``."""

import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from typer.testing import CliRunner

import tlslog
from tlslog import charts
from tlslog.cli import app

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "explore.ipynb"
# Appended to the executed copy: proves the kernel is this project's interpreter, not some other python3.
PROBE = "import sys; print(sys.prefix)"


def _stdout(cell) -> str:
    return "".join(
        o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"
    )


@pytest.fixture(scope="module")
def executed():
    """The notebook after running every cell (kernel ``python3``, working directory ``notebooks/``)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute(env={**os.environ, "MPLBACKEND": "Agg"})  # a failing cell raises CellExecutionError
    return nb


@pytest.fixture(scope="module")
def committed():
    return nbformat.read(NOTEBOOK, as_version=4)


def test_notebook_runs_in_the_projects_interpreter(executed):
    assert _stdout(executed.cells[-1]).strip() == sys.prefix
    errors = [
        o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert errors == []


def test_notebook_draws_charts(executed):
    source = "\n".join(c.source for c in executed.cells if c.cell_type == "code")
    assert "plt.subplots(" in source
    assert re.search(r"charts\.\w+\(.*ax=axes\[0\]", source)


def test_committed_notebook_is_valid_and_has_no_outputs(committed):
    nbformat.validate(committed)
    assert committed.nbformat == 4
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [], cell.source[:60]
        assert cell.execution_count is None, cell.source[:60]


def test_each_step_opens_with_markdown(committed):
    cells = committed.cells
    assert cells[0].cell_type == "markdown"
    steps = [
        c.source.splitlines()[0] for c in cells if c.cell_type == "markdown" and c.source.startswith("## ")
    ]
    assert len(steps) >= 8
    assert sum(s.endswith("?") for s in steps) >= 6, "steps should be headed by the question they answer"


def test_notebook_uses_only_the_public_api(committed):
    source = "\n".join(c.source for c in committed.cells if c.cell_type == "code")
    assert not re.search(r"^\s*(from|import)\s+tlslog\.", source, re.M), "import of a tlslog submodule"
    assert not re.search(r"from tlslog import (?!charts\b)", source), "only `from tlslog import charts`"
    for name in set(re.findall(r"\btlslog\.(\w+)", source)):
        assert name in tlslog.__all__ or name == "charts", f"tlslog.{name} is not public"
    for name in set(re.findall(r"\bcharts\.(\w+)", source)):
        assert not name.startswith("_") and callable(getattr(charts, name, None)), f"charts.{name}"


def test_headline_numbers_agree_with_tlslog_summary(executed, monkeypatch):
    cell = next(c for c in executed.cells if "headline" in c.metadata.get("tags", []))
    headline = json.loads(_stdout(cell).strip().splitlines()[-1])

    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(
        app, ["summary", "sample_logs", "--year", "2026", "--format", "json", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)

    coverage = {row["direction"]: row for row in summary["coverage"]}
    for direction, total in (("inbound", "inbound_messages"), ("outbound", "outbound_attempts")):
        assert headline[total] == coverage[direction]["total"] > 0
        share = headline[f"{direction}_encrypted_share"]
        assert 0 < share < 1
        assert share == pytest.approx(coverage[direction]["encrypted_share"], abs=1e-9)
    sessions = {(row["direction"], row["outcome"]): row["sessions"] for row in summary["sessions"]}
    assert headline["failed_sessions_inbound"] == sessions[("inbound", "failed")]
    assert headline["failed_sessions_outbound"] == sessions[("outbound", "failed")]
    top = summary["failing_peers"][0]
    assert (headline["top_failing_peer"], headline["top_failing_peer_failures"]) == (
        top["peer"],
        top["failures"],
    )
    # a failed session is a failure row; not_offered refusals and tls_rcpt mismatches add their own
    assert (
        headline["tls_failures"] >= headline["failed_sessions_inbound"] + headline["failed_sessions_outbound"]
    )
