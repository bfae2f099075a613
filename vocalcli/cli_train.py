"""Commands that train models and write embeddings (filled by the models work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the training commands to ``app``."""
    return None
