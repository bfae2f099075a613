"""Commands that use the models: gender, index, recommend, evaluate, plot (filled by the use work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the commands to ``app``."""
    return None
