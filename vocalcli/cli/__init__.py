"""The `vocal` command: the Typer app, the one error boundary, and every command registered in one place.

The commands are plain module-level functions in cli/prepare.py, cli/train.py, cli/use.py and
cli/demo.py (shared option aliases in cli/options.py), so each can be imported and tested alone. Only
typer/rich are imported at module level; each command imports the library it needs, so `vocal --help`
stays instant.
"""

from __future__ import annotations

import os

import typer
from rich.markup import escape
from typer.core import TyperGroup

from vocalcli.cli import demo, prepare, train, use
from vocalcli.cli.options import QuietOpt
from vocalcli.console import err, set_quiet
from vocalcli.errors import VocalError
from vocalcli.tasks import TASKS


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
    rich_markup_mode="markdown",
)


@app.callback()
def _root(quiet: QuietOpt = False) -> None:
    set_quiet(quiet)


def main() -> None:
    app(prog_name="vocal")


# ------------------------------------------------------------------------------- the commands, in order
app.command("prepare")(prepare.prepare)
app.command("balance")(prepare.balance)
for _task in TASKS.values():  # train-contrastive, train-tcae
    app.command(_task.command)(getattr(train, f"train_{_task.name}"))
app.command("embed")(train.embed)

gender_app = typer.Typer(
    help="Singer gender from the voice: train on labelled singers, predict files or unlabelled songs.",
    no_args_is_help=True,
)
gender_app.command("train")(use.gender_train)
gender_app.command("predict")(use.gender_predict)
app.add_typer(gender_app, name="classify-gender")

app.command("index")(use.index)
app.command("recommend")(use.recommend)
app.command("evaluate")(use.evaluate)
app.command("plot")(use.plot)
app.command("demo")(demo.demo)
