"""The command line (STUB: being written)."""

import typer

app = typer.Typer(no_args_is_help=True, help="Read sendmail's maillog and report on STARTTLS.")


@app.command()
def version() -> None:
    """Print tlslog's version."""
    typer.echo("tlslog 0.1.0")
