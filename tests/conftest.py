from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

TINY_YAML = """\
audio:
  start_s: 1.0
  end_s: 4.0
prepare:
  separate: none
  workers: 1
balance:
  songs_per_singer: 3
"""


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    """An empty project whose window is 1-4 s, so songs of a few seconds are full-length."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "vocal.yaml").write_text(TINY_YAML)
    return root
