"""The `vocal` command: thin Typer commands over the library, and the one error boundary.

Only typer/rich are imported at module level; each command imports the library it needs, so
`vocal --help` stays instant.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from typer.core import TyperGroup

from vocalcli import cli_train, cli_use
from vocalcli.console import err, say, set_quiet
from vocalcli.errors import VocalError
from vocalcli.options import ForceOpt, JsonOpt, ProjectOpt, QuietOpt, WorkersOpt

class _ErrorBoundary(TyperGroup):
    """Known errors become one red line and exit 1; VOCAL_DEBUG=1 shows the traceback instead."""

    def invoke(self, ctx: typer.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except VocalError as e:
            if os.environ.get("VOCAL_DEBUG"):
                raise
            err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]: finished work is kept; rerun to continue")
            raise typer.Exit(130) from None


app = typer.Typer(
    name="vocal",
    cls=_ErrorBoundary,
    help="Recommend songs by the singing voice.\n\n"
    "Typical run: vocal prepare ./songs -> vocal balance -> vocal train-contrastive -> vocal train-tcae "
    "-> vocal index -> vocal recommend song.wav.  Try 'vocal demo' for the whole tour on synthetic songs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(quiet: QuietOpt = False) -> None:
    set_quiet(quiet)


def main() -> None:
    app(prog_name="vocal")


cli_train.register(app)
cli_use.register(app)
