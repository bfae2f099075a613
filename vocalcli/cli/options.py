"""Option aliases shared by every command, defined once so their help never drifts.

CLI options default to None, meaning "use vocal.yaml" (the one source of defaults).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from vocalcli.config import SEPARATION_METHODS


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
ProjectOpt = Annotated[
    Path | None,
    typer.Option("--project", "-p", help="Project directory (default: $VOCAL_PROJECT, or the first "
                 "directory from here upwards that holds vocal.yaml).", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or chatter on stderr.")]
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
