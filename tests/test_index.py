"""The song index: vectors, seeded builds, recall vs exact search, sidecar and staleness.

Also home of ``make_use_project``: a tiny fake project (catalog, balanced split, mels, clustered
embeddings, stand-in checkpoints) that the other use-command tests import.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_YAML

from vocalcli import catalog, cepstral, index
from vocalcli import project as project_mod
from vocalcli.config import IndexWeights
from vocalcli.embed import melody_settings
from vocalcli.errors import MissingArtifact, StaleArtifact
from vocalcli.vectors import l2_rows

SINGERS = {"ann": "female", "bea": "female", "cid": "male", "dan": "male", "eve": "F", "unk": ""}
"""Five labelled singers (mixed label spellings) and one without a label."""
SONGS_PER_SINGER = 6
N_MELODIES = 6
DT, DM, N_MELS, FRAMES = 16, 8, 48, 120



def sid(singer: str, j: int) -> str:
    return f"{singer}-song{j}"


def make_use_project(root: Path, seed: int = 0) -> project_mod.Project:
    """Write a fake project whose files follow the contracts of prepare, balance and embed.

    Timbre embeddings cluster by singer (and the two genders sit on opposite sides of one axis), melody
    embeddings cluster by melody id (song j of every singer sings melody j); mels carry a per-singer
    spectral tilt so mel statistics also separate the genders; pitch columns sit an octave apart.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "vocal.yaml").write_text(TINY_YAML)
    proj = project_mod.Project(root)
    for task in ("contrastive", "tcae"):
        project_mod.write_bytes(proj.checkpoint(task), f"fake {task} checkpoint".encode())
    gender_axis = rng.normal(size=DT)
    t_centres = {s: rng.normal(size=DT) + (2.0 if g.lower() in ("female", "f") else -2.0) * gender_axis
                 for s, g in SINGERS.items()}
    m_centres = rng.normal(size=(N_MELODIES, DM))
    rows, balanced, ids, timbre, melody = [], [], [], [], []
    for s, g in SINGERS.items():
        tilt = (1.0 if g.lower() in ("female", "f") else -1.0) + 0.2 * rng.normal()
        for j in range(SONGS_PER_SINGER):
            song = sid(s, j)
            mel = (np.linspace(-tilt, tilt, N_MELS)[:, None] + rng.normal(size=(N_MELS, FRAMES)) - 5.0)
            project_mod.save_npy(proj.mel_path(song), mel.astype(np.float16))
            rows.append({"song_id": song, "singer": s, "title": f"Song {j} by {s}", "source": f"{s}/{j}.wav",
                            "duration_s": "5.0", "status": "ok", "reason": "", "mel": f"mels/{song}.npy",
                            "gender": g, "genre": "pop" if j % 2 else "jazz",
                            **_register(g.lower() in ("female", "f"), rng)})
            split = "train" if j < 4 else ("val" if j == 4 else "test")
            balanced.append({"song_id": song, "singer": s, "split": split})
            ids.append(song)
            timbre.append(t_centres[s] + 0.5 * rng.normal(size=DT))
            melody.append(m_centres[j] + 0.3 * rng.normal(size=DM))
    rows.append({"song_id": "zed-short", "singer": "zed", "title": "Short", "source": "zed/s.wav",
                    "duration_s": "1.0", "status": "too_short", "reason": "1.0 s < 4 s"})
    catalog.write(proj.catalog, rows)
    project_mod.write_csv(proj.balanced, balanced, project_mod.BALANCED_FIELDS)
    write_embeddings(proj, ids, np.array(timbre), np.array(melody))
    return proj


def _register(female: bool, rng: np.random.Generator) -> dict[str, str]:
    """Pitch columns as prepare writes them: women sing about an octave above men."""
    f0 = (440.0 if female else 220.0) * 2 ** (0.08 * rng.normal())
    return {"f0_hz": f"{f0:.1f}", "f0_p75_hz": f"{f0 * 1.1:.1f}"}


def write_embeddings(proj: project_mod.Project, ids: list[str], timbre: np.ndarray, melody: np.ndarray) -> None:
    """The files vocal embed writes, recording today's checkpoint digests."""
    d = proj.embeddings
    project_mod.save_npy(d / "timbre.npy", l2_rows(timbre))
    project_mod.save_npy(d / "melody.npy", l2_rows(melody))
    project_mod.write_csv(d / "ids.csv", [{"row": i, "song_id": s} for i, s in enumerate(ids)], ["row", "song_id"])
    project_mod.write_json(d / "meta.json", {"checkpoints": index.checkpoint_digests(proj), "n": len(ids),
                                             "timbre": cepstral.settings(proj.load_config().timbre),
                                             "melody": melody_settings(proj.load_config().melody)})


@pytest.fixture
def use_project(tmp_path: Path) -> project_mod.Project:
    return make_use_project(tmp_path / "proj")


def clustered(rng: np.random.Generator, n: int, d: int, clusters: int, spread: float) -> np.ndarray:
    centres = rng.normal(size=(clusters, d))
    return centres[rng.integers(0, clusters, n)] + spread * rng.normal(size=(n, d))


# ------------------------------------------------------------------------------------------------ tests
def test_combine_normalises_and_weights_each_part():
    t = np.array([[3.0, 4.0]])
    m = np.array([[0.0, 2.0, 0.0]])
    v = index.combine(t, m, IndexWeights(timbre=1.0, melody=0.5))
    np.testing.assert_allclose(v, [[0.6, 0.8, 0.0, 0.5, 0.0]], atol=1e-6)


def test_query_vector_reweights_parts_at_search_time():
    rng = np.random.default_rng(1)
    t, m = l2_rows(rng.normal(size=(5, 4))), l2_rows(rng.normal(size=(5, 3)))
    w = {"timbre": 1.0, "melody": 0.5}
    items = index.combine(t, m, IndexWeights(**w))
    for a, b in ((1.0, 0.0), (0.0, 1.0), (0.3, 0.7)):
        q = index.query_vector(t[0], m[0], w, (a, b))
        np.testing.assert_allclose(items @ q, a * (t @ t[0]) + b * (m @ m[0]), atol=1e-5)


def test_exact_top_k_and_recall_hand_values():
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(index.exact_top_k(x, x[:1], 3), [[0, 1, 2]])
    assert index.recall_at_k([[0, 1, 3]], [[0, 1, 2]]) == pytest.approx(2 / 3)
    assert index.recall_at_k([[0, 1], [5, 6]], [[0, 1], [5, 7]]) == pytest.approx(0.75)


def test_recall_at_10_reaches_099_on_clustered_vectors():
    """3000 overlapping clusters (noise 3x the centre spread per dimension): Annoy's default search_k
    is far below target here; the chosen one must reach >= 0.99 for stored and for unseen queries."""
    rng = np.random.default_rng(0)
    v = index.combine(clustered(rng, 3000, 128, 60, 3.0), clustered(rng, 3000, 64, 40, 3.0), IndexWeights())
    n_trees = 50
    ann = index.build_annoy(v, n_trees, seed=0)
    search_k, recall = index.choose_search_k(ann, v, n_trees, seed=0)
    assert recall >= 0.99
    assert index.measure_recall(ann, v, search_k, seed=123) >= 0.99
    unseen = index.combine(clustered(rng, 200, 128, 60, 3.0), clustered(rng, 200, 64, 40, 3.0), IndexWeights())
    assert index.measure_recall(ann, v, search_k, queries=unseen) >= 0.99


def test_seeded_builds_are_identical(use_project, tmp_path):
    from vocalcli.config import Config

    digests = []
    for _ in range(2):
        index.build_index(use_project, Config())
        digests.append(hashlib.sha256((use_project.index_dir / index.ANN_NAME).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_build_writes_sidecar_and_loads(use_project):
    cfg = use_project.load_config()
    info = index.build_index(use_project, cfg)
    side = json.loads((use_project.index_dir / index.SIDECAR_NAME).read_text())
    assert side["dim"] == DT + DM and side["metric"] == "angular" and side["n"] == info.n == 36
    assert side["weights"] == {"timbre": 1.0, "melody": 0.5}
    assert side["seed"] == cfg.seed and side["n_trees"] == cfg.index.n_trees and side["search_k"] > 0
    assert set(side["sources"]["checkpoints"]) == {"contrastive", "tcae"}
    assert set(side["sources"]["embeddings"]) == {"timbre.npy", "melody.npy", "ids.csv"}
    assert side["recall_at_10"] >= 0.99
    idx = index.load_index(use_project, cfg)
    assert len(idx) == 36 and idx.ids[0] == side["ids"][0]
    assert idx.search(index.combine(idx.timbre[:1], idx.melody[:1], IndexWeights())[0], 1) == [0]


def test_missing_index_names_the_command(use_project):
    with pytest.raises(MissingArtifact, match="vocal index"):
        index.load_index(use_project)


def test_changed_embeddings_make_the_index_stale(use_project):
    cfg = use_project.load_config()
    index.build_index(use_project, cfg)
    emb = index.load_embeddings(use_project)
    write_embeddings(use_project, emb.ids, emb.timbre[::-1].copy(), emb.melody)
    with pytest.raises(StaleArtifact, match="vocal index"):
        index.load_index(use_project, cfg)


def test_changed_checkpoint_makes_the_index_stale(use_project):
    cfg = use_project.load_config()
    index.build_index(use_project, cfg)
    project_mod.write_bytes(use_project.checkpoint("contrastive"), b"retrained")
    with pytest.raises(StaleArtifact, match="vocal embed"):
        index.load_index(use_project, cfg)


def test_changed_weights_in_yaml_make_the_index_stale(use_project):
    from vocalcli import config as config_mod

    cfg = use_project.load_config()
    index.build_index(use_project, cfg)
    other = config_mod.override(cfg, {"index.weights.melody": 1.0})
    with pytest.raises(StaleArtifact, match="vocal index"):
        index.load_index(use_project, other)
