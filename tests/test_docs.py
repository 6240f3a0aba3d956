"""Every command has help text, and the README documents every command and every option."""

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tlslog import cli

DOC = Path(__file__).parent.parent / "README.md"
GROUP = typer.main.get_command(cli.app)
COMMANDS = sorted(GROUP.commands.items())


def test_there_are_commands():
    assert {name for name, _ in COMMANDS} >= {
        "events",
        "summary",
        "coverage",
        "peers",
        "ciphers",
        "failures",
        "trace",
        "report",
        "chart",
        "export",
    }


@pytest.mark.parametrize(("name", "command"), COMMANDS)
def test_command_and_its_parameters_have_help(name, command):
    assert command.help and len(command.help) > 20, f"{name} has no help"
    for param in command.params:
        assert getattr(param, "help", None), f"{name} {param.name} has no help"


@pytest.mark.parametrize(("name", "command"), COMMANDS)
def test_readme_documents_command_and_options(name, command):
    text = DOC.read_text()
    assert f"### `tlslog {name}" in text, f"README.md has no section for {name}"
    section = text.split(f"### `tlslog {name}", 1)[1].split("\n#", 1)[0]
    common = text.split("### Common options", 1)[1].split("\n#", 1)[0]
    for param in command.params:
        for opt in getattr(param, "opts", []):
            if opt.startswith("--") and opt != "--help":
                assert opt in section or opt in common, f"README.md does not mention {name} {opt}"


def test_readme_summary_is_the_real_output():
    text = DOC.read_text()
    command = "$ tlslog summary sample_logs/ --internal .example.org\n"
    shown = text.split(command, 1)[1].split("\n```", 1)[0]
    root = DOC.parent
    result = CliRunner().invoke(
        cli.app, ["summary", str(root / "sample_logs"), "--internal", ".example.org", "--year", "2026"]
    )
    assert result.exit_code == 0, result.output
    real = result.stdout.rstrip().replace(str(root / "sample_logs"), "sample_logs")
    assert shown == real, "README's summary is out of date: paste the output of the command it shows"


@pytest.mark.parametrize(("name", "command"), COMMANDS)
def test_readme_shows_each_command_in_an_example(name, command):
    section = DOC.read_text().split(f"### `tlslog {name}", 1)[1].split("\n### ", 1)[0]
    examples = section.split("```")[1::2]
    assert any(f"tlslog {name}" in block for block in examples), f"README.md has no example of {name}"
