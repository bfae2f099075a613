"""The `vocal` command: the Typer app, the one error boundary, and every command registered in one place.

The commands are plain module-level functions in cli/prepare.py, cli/train.py, cli/use.py,
cli/report.py and cli/demo.py (shared option aliases in cli/options.py), so each can be imported and
tested alone. Only typer/rich are imported at module level; each command imports the library it needs,
so `vocal --help` stays instant.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Annotated

import typer
from rich.markup import escape
from typer.core import TyperGroup

from vocalcli.cli import demo, options, prepare, report, train, use
from vocalcli.cli.options import QuietOpt, RootProjectOpt, WaitOpt
from vocalcli.console import err, set_quiet
from vocalcli.errors import VocalError
from vocalcli.tasks import TASKS


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, `kill`, a closing terminal) unwinds like Ctrl-C: workers stopped, work kept."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


class _ErrorBoundary(TyperGroup):
    """Known errors become one line and exit 1; VOCAL_DEBUG=1 shows the traceback instead.

    The line is never wrapped (soft_wrap): a log or a test sees the whole message on one line.
    """

    def invoke(self, ctx: typer.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except VocalError as e:
            if os.environ.get("VOCAL_DEBUG"):
                raise
            _error(str(e))
            raise typer.Exit(e.exit_code) from None
        except BrokenPipeError:  # the reader of stdout left (`vocal ... --json | head`): stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # the exit's own flush would fail on the closed pipe again
            raise typer.Exit(141) from None  # 128 + SIGPIPE, what the shell reports for other such tools
        except OSError as e:  # what no library turned into a VocalError: still one line, naming the file
            if os.environ.get("VOCAL_DEBUG"):
                raise
            where = f"{e.filename}: " if e.filename else ""
            _error(f"{where}{e.strerror or e}; rerun with VOCAL_DEBUG=1 for the details")
            raise typer.Exit(1) from None
        except KeyboardInterrupt as e:
            err.print("[yellow]interrupted[/]: finished work is kept; rerun to continue", soft_wrap=True)
            raise typer.Exit(143 if isinstance(e, Terminated) else 130) from None


def _error(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        import vocalcli

        print(f"vocal {vocalcli.__version__}")
        raise typer.Exit()


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
def _root(
    project: RootProjectOpt = None,
    quiet: QuietOpt = False,
    wait: WaitOpt = False,
    version: Annotated[bool, typer.Option("--version", help="Print vocal's version and exit.", is_eager=True,
                                          callback=_version)] = False,
) -> None:
    set_quiet(quiet)
    options._given.update(project=project, wait=wait)


def main() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
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
app.command("report")(report.report)
app.command("demo")(demo.demo)
