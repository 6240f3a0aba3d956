"""The Python code in the README's "Use from Python / Jupyter" section runs from the project root."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADING = "Use from Python / Jupyter"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def section() -> tuple[str, str]:
    """(file name, text) of the README section that documents the Python API."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    heading = re.search(rf"^(#+) {re.escape(HEADING)}[ \t]*$", text, re.M)
    assert heading is not None, f"README.md has no {HEADING!r} section"
    rest = text[heading.end() :]
    end = re.search(rf"^#{{1,{len(heading.group(1))}}} ", rest, re.M)
    return "README.md", rest[: end.start()] if end else rest


def test_section_has_python_code():
    name, text = section()
    assert BLOCK.findall(text), f"no ```python block in {name}'s {HEADING!r} section"


def test_python_code_runs_from_the_project_root():
    name, text = section()
    code = "\n".join(BLOCK.findall(text))
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "MPLBACKEND": "Agg"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{name}:\n{result.stderr[-3000:]}"
    assert "encrypted_share" in result.stdout
