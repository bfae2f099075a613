"""Option aliases shared by every command, defined once so their help never drifts.

CLI options default to None, meaning "use vocal.yaml" (the one source of defaults). -p/--project,
-q/--quiet and --wait are accepted before the command (``vocal -p DIR index``) and after it
(``vocal index -q``): the root callback records them in ``_given`` and each command's option falls back
to that when it is not given itself.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from vocalcli.config import SEPARATION_METHODS
from vocalcli.console import say, set_quiet

_given: dict[str, Any] = {"project": None, "wait": False}
"""What the root callback saw before the command; reset on every invocation."""


def _project_or_root(value: Path | None) -> Path | None:
    return value if value is not None else _given["project"]


def _quiet_after(value: bool) -> bool:
    if value:
        set_quiet(True)
    return value


def _wait_after(value: bool) -> bool:
    if value:
        _given["wait"] = True
    return value


class Device(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
    MPS = "mps"


def choice_enum(name: str, values: tuple[str, ...]) -> type[StrEnum]:
    """A StrEnum for Typer's choices, made from the config's tuple so the two lists cannot drift."""
    return StrEnum(name, {v.upper(): v for v in values})


Separate = choice_enum("Separate", SEPARATION_METHODS)


SeparateOpt = Annotated[
    Separate | None,
    typer.Option("--separate", help="MR removal: auto (demucs if installed with its weights, else harmonic), "
                 "demucs, harmonic (built-in, offline), repet (classical baseline), none (input is already "
                 "a vocal stem). Default: prepare.separate in vocal.yaml.", show_default=False),
]
_PROJECT_HELP = ("Project directory (default: $VOCAL_PROJECT, or the first directory from here upwards that "
                 "holds vocal.yaml).")
ProjectOpt = Annotated[
    Path | None,
    typer.Option("--project", "-p", help=_PROJECT_HELP, show_default=False, callback=_project_or_root),
]
RootProjectOpt = Annotated[Path | None, typer.Option("--project", "-p", help=_PROJECT_HELP, show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or chatter on stderr.",
                                        callback=_quiet_after)]
WaitOpt = Annotated[bool, typer.Option(
    "--wait", help="If another vocal command is writing this project, wait for it to finish instead of "
    "stopping (readers such as recommend never wait).", callback=_wait_after)]
DeviceOpt = Annotated[
    Device, typer.Option("--device", help="Where to run: auto picks cuda, then mps, then cpu.")
]
GpuOpt = Annotated[bool, typer.Option("--gpu", help="Shortcut for --device cuda (an error if no CUDA).")]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", "-w", help="Parallel worker processes (default: vocal.yaml).",
                             min=0, show_default=False)
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Redo work that is already done.")]


def open_project(project: Path | None):
    """The project for commands that need an existing one (walks up to vocal.yaml)."""
    from vocalcli import project as project_mod

    return project_mod.find(project)


def writing(root: Path, command: str, shard: tuple[int, int] | None = None) -> AbstractContextManager[None]:
    """The project's write lock for ``command`` (e.g. 'vocal prepare'; vocalcli.lock), honouring --wait.

    Under torchrun only rank 0 takes it: the ranks are one command, and only rank 0 writes.
    """
    from vocalcli import lock

    if int(os.environ.get("RANK", "0")) > 0:
        return nullcontext()
    name = command + (f" --shard {shard[0]}/{shard[1]}" if shard else "")
    return lock.hold(root, name, shard=shard, wait=_given["wait"], on_wait=lambda m: say(f"[yellow]{m}[/]"))
