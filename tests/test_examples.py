"""Every example in examples/ runs, on tiny synthetic songs, so none of them can rot.

The songs are harmonic tones with vibrato (audio_fixtures.voice), women an octave above men, laid out as
examples/songs/ says; the project uses a 3-second window and seconds-long training (tiny_config).
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from audio_fixtures import voice, write
from model_fixtures import tiny_config

from vocalcli import catalog, playlist
from vocalcli import config as config_mod
from vocalcli import project as project_mod

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
SONGS_PER_SINGER = 4


def tiny_yaml() -> str:
    cfg = tiny_config(epochs=1, steps_per_epoch=2)
    cfg.audio.start_s, cfg.audio.end_s = 1.0, 4.0
    cfg.tcae.crop_s = 2.0
    cfg.tcae.train.epochs, cfg.tcae.train.steps_per_epoch = 1, 2
    cfg.prepare.separate, cfg.prepare.workers = "harmonic", 1
    cfg.balance.songs_per_singer = 3
    cfg.report.map_method = "pca"
    return config_mod.to_yaml(cfg)


def copy_songs_example(dest: Path) -> Path:
    """examples/songs/ copied as a user would, with synthetic songs in each singer's folder."""
    songs = dest / "songs"
    shutil.copytree(EXAMPLES / "songs", songs)
    for k, (name, meta) in enumerate(catalog.read_singers(songs / "singers.csv").items()):
        f0 = 330.0 if meta["gender"] == "female" else 165.0
        for j in range(SONGS_PER_SINGER):
            write(songs / name / f"song {j + 1}.wav", voice(5.0, 16000, f0=f0 * (1 + 0.05 * k), seed=10 * k + j), 16000)
    return songs


def test_the_songs_layout_and_its_singers_csv_are_what_prepare_reads(tmp_path):
    rows = project_mod.read_csv(EXAMPLES / "songs" / "singers.csv")
    assert list(rows[0]) == ["singer", "gender", "genre"]
    assert all(catalog.normalise_gender(r["gender"]) for r in rows)


def test_the_library_api_example_prepares_embeds_and_queries(tmp_path):
    songs = copy_songs_example(tmp_path)
    proj_dir = tmp_path / "proj"
    proj_dir.mkdir()
    (proj_dir / "vocal.yaml").write_text(tiny_yaml())
    main = runpy.run_path(str(EXAMPLES / "library_api.py"))["main"]
    items = main(songs, proj_dir, device="cpu")
    rows = catalog.ok_rows(project_mod.Project(proj_dir))
    assert len(items) == 5 and all(-1.0 - 1e-5 <= it.score <= 1.0 + 1e-5 for it in items)
    # the query is the library's first song's own file: recognised as that song and left out of its results
    assert rows[0]["song_id"] not in [it.song_id for it in items]
    assert len(rows) == 4 * SONGS_PER_SINGER
    assert {(r["singer"], r["gender"], r["genre"]) for r in rows} == {
        ("alice", "female", "pop"), ("bruno", "male", "rock"), ("chiara", "female", "jazz"), ("dev", "male", "folk")}
    again = main(songs, proj_dir, device="cpu")  # a rerun reuses the prepared songs and the models
    assert [it.song_id for it in again] == [it.song_id for it in items]
    copy = shutil.copy(songs / rows[0]["source"], tmp_path / "copy.wav")  # the same audio from elsewhere
    assert main(songs, proj_dir, query=Path(copy), device="cpu")[0].song_id == rows[0]["song_id"]  # embedded


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("vocal") is None,
                    reason="needs bash and the 'vocal' command on PATH (pip install -e .)")
def test_the_shell_walkthrough_runs_the_seed_workflow(tmp_path):
    copy_songs_example(tmp_path)
    (tmp_path / "vocal.yaml").write_text(tiny_yaml())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "VOCAL_PROJECT": "", "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    r = subprocess.run(["bash", str(EXAMPLES / "walkthrough.sh")], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"open {tmp_path}/report/index.html" in r.stdout
    entries = playlist.read_m3u8(tmp_path / "sung-like-this.m3u8")
    assert len(entries) == 6 and all(Path(e).is_file() for e in entries)  # the query and its 5 matches
    assert (tmp_path / "report" / "index.html").is_file()
    assert len(list((tmp_path / "report" / "clips").glob("*.opus"))) == 2 * 4 * SONGS_PER_SINGER
