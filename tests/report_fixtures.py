"""A tiny project with real audio behind its catalog, an index and run logs: what `vocal report` reads.

Built on test_index.make_use_project (clustered embeddings, no training), plus: a synthetic song file
for every catalog row (so clips can be cut and separated), prepare.json pointing at them, the index,
an evaluate report and training logs (so the quality section has something to draw).
"""

from __future__ import annotations

import json
from pathlib import Path

from audio_fixtures import voice, write
from test_index import make_use_project

from vocalcli import catalog, index
from vocalcli import project as project_mod

SR = 16000
SONG_S = 5.0


def make_report_project(root: Path, with_index: bool = True, with_runs: bool = True) -> project_mod.Project:
    proj = make_use_project(root / "proj")
    with open(proj.config_path, "a", encoding="utf-8") as fh:  # PCA: t-SNE costs seconds even on 36 songs
        fh.write("report:\n  map_method: pca\n")
    songs = root / "songs"
    rows = project_mod.read_csv(proj.catalog)
    for k, r in enumerate(rows):
        if r["status"] == "ok":
            f0 = float(r["f0_hz"]) if r.get("f0_hz") else 220.0
            write(songs / r["source"], voice(SONG_S, SR, f0=f0 / 2, seed=k), SR)
            r["separation"] = "harmonic" if k % 2 else "none"
    catalog.write(proj.catalog, rows)
    project_mod.write_json(proj.prepare_info, {"songs_dir": str(songs.resolve()), "separation": "harmonic"})
    if with_index:
        index.build_index(proj, proj.load_config())
    if with_runs:
        write_runs(proj)
    return proj


def write_runs(proj: project_mod.Project) -> None:
    """An evaluate report and one contrastive + one tcae run log, shaped as vocal writes them."""
    ev = {"singer_id.top1": 0.8, "singer_id.top1_mfcc": 0.6, "singer_id.eer": 0.1, "singer_id.eer_mfcc": 0.2,
          "melody.map": 0.4, "melody.map_chroma": 0.5, "index.recall_at_10": 1.0, "n_songs": 36,
          "notes": ["a note from evaluate"], "report": "runs/evaluate/20260101-000000/report.json"}
    project_mod.write_json(proj.runs / "evaluate" / "20260101-000000" / "report.json", ev)
    for task, extra in (("contrastive", {"ln_n": 3.5}), ("tcae", {"recon": 0.5, "ssm": 0.1})):
        run = proj.runs / task / "20260101-000000-000000"
        project_mod.write_json(run / "config.json", {"resumed_from_epoch": 0})
        lines = []
        for step in range(1, 31):
            lines.append({"type": "step", "epoch": (step - 1) // 10, "step": step, "loss": 4.0 / step, **extra})
            if step % 10 == 0:
                lines.append({"type": "epoch", "epoch": step // 10, "step": step, "train_loss": 4.0 / step,
                              "val_singer_acc" if task == "contrastive" else "val_loss": step / 40})
        project_mod.write_text(run / "metrics.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
