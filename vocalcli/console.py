"""The one rich Console (stderr: talk) and a progress factory that stays silent when asked to.

stdout is reserved for results (tables, --json), so scripts can pipe them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

err = Console(stderr=True)
out = Console()

_state = {"quiet": False}

ProgressFn = Callable[..., None]
"""A library progress callback: ``progress(advance=1, **fields)``; libraries never print."""


def set_quiet(quiet: bool) -> None:
    _state["quiet"] = quiet


def is_quiet() -> bool:
    return _state["quiet"]


def say(message: str) -> None:
    """Talk to the user on stderr unless --quiet."""
    if not _state["quiet"]:
        err.print(message)


@contextmanager
def progress_bar(
    description: str, total: int | None, extra: str = "", **fields: object
) -> Iterator[ProgressFn]:
    """A rich progress bar with ETA; yields a callback ``update(advance=1, **fields)``.

    ``extra`` is a format string over ``fields`` (initial values) that the callback updates,
    e.g. ``extra="loss {task.fields[loss]:.3f}", loss=float("nan")``.
    Disabled under --quiet or when stderr is not a terminal, so logs stay clean.
    """
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    if extra:
        columns.append(TextColumn(extra))
    disable = _state["quiet"] or not err.is_terminal
    with Progress(*columns, console=err, disable=disable, transient=False) as prog:
        task = prog.add_task(description, total=total, **fields)

        def update(advance: float = 1, **values: object) -> None:
            prog.update(task, advance=advance, **values)

        yield update


def emit_json(obj: object) -> None:
    """A result as JSON on stdout (never coloured, so scripts can parse it)."""
    import json

    print(json.dumps(obj, indent=2, default=str))
