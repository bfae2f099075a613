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


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with real (tiny, one-epoch) models, embeddings and an index, built once per session.

    Tests that damage it copy it first (``shutil.copytree``); it is never modified in place.
    """
    import torch
    from model_fixtures import make_project, tiny_config

    from vocalcli import training
    from vocalcli.embed import embed_project
    from vocalcli.index import build_index

    cfg = tiny_config()
    for sec in (cfg.contrastive, cfg.tcae):
        sec.train.epochs, sec.train.steps_per_epoch = 1, 1
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        proj = make_project(tmp_path_factory.mktemp("trained") / "proj", cfg, singers=3, songs=3)
        for task in ("contrastive", "tcae"):
            training.train(task, proj, cfg, "cpu")
        embed_project(proj, cfg, device="cpu")
        build_index(proj, cfg)
    finally:
        torch.set_num_threads(threads)
    return proj.root
