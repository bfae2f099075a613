"""Issue 9's end-to-end protocol on one folder of songs, through the `vocal` command as a user runs it.

    python bench/protocol.py SONGS_DIR --out DIR --separate harmonic --melody-labels melody.csv

Steps, each a `vocal` subprocess on the project DIR: prepare -> balance -n K -> train-contrastive
--epochs E -> then, once per TCAE seed: train-tcae --epochs E -> embed -> classify-gender train -> index
-> evaluate. The seed is vocal.yaml's ``seed``, set (through vocalcli.config, which rewrites the file
with every key) before each train-tcae and put back to the first at the end; balance and the encoder keep
the first seed. So only the melody model changes between seeds, and the melody figure is reported as a
mean with its spread, as the issue asks. With ``--retrain-encoder`` every seed also trains the contrastive
encoder anew (train-contrastive --no-resume), so the encoder-alone figure gets a mean and a spread too:
seeds of the encoder trained on 15 or 27 songs differ by up to 0.10 or 0.12 in singer-ID over 41 songs
(docs/quality.md), so one seed's figure says little. The split stays the first seed's.

Prints one row per seed and the mean over seeds, in the order of issue 9's table:
singer-ID 1-NN leave-one-out (MFCC), the encoder alone, the cepstral signature alone, gender (MFCC;
per song), and melody MAP (chroma) with the margin. DIR/protocol.json holds the numbers and the
wall time of each step this run did. Each step's --json output goes to DIR/protocol/<step>.json. A
rerun skips every step whose output is already there, so an interrupted run resumes. Delete
DIR/protocol to start over.

CPU, one thread each, 41 songs (25 balanced) on 2 cores: prepare 40 s, train-contrastive 7 min, then per
seed train-tcae 3 min and embed + classify-gender + index + evaluate 1.6 min (band mixes, 2026-12-01).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLUMNS = [  # (header, evaluate key, baseline key)
    ("singer-ID LOO", "singer_id.loo_top1", "singer_id.loo_top1_mfcc"),
    ("encoder alone", "singer_id.loo_top1_encoder", None),
    ("signature alone", "singer_id.loo_top1_cepstral", None),
    ("encoder, normalised within singers (MFCC, same)", "singer_id.loo_top1_encoder_within",
     "singer_id.loo_top1_mfcc_within"),
    ("gender", "gender.balanced_accuracy", "gender.balanced_accuracy_mfcc"),
    ("gender per song", "gender.balanced_accuracy_per_song", None),
    ("melody MAP", "melody.map", "melody.map_chroma"),
]


def run_step(out: Path, name: str, args: list[str], env: dict[str, str]) -> tuple[dict, float | None]:
    """One `vocal` command with --json; its output is cached in out/protocol/<name>.json (seconds: None
    when it came from there)."""
    path = out / "protocol" / f"{name}.json"
    if path.is_file():
        return json.loads(path.read_text()), None
    cmd = [sys.executable, "-m", "vocalcli", "-q", "-p", str(out), *args, "--json"]
    print(f"[{time.strftime('%H:%M:%S')}] vocal {' '.join(args)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"step {name} failed (exit {res.returncode}): {' '.join(cmd)}\n{res.stderr[-3000:]}")
    data = json.loads(res.stdout) if res.stdout.strip() else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    return data, seconds


def set_seed(project: Path, seed: int) -> None:
    """vocal.yaml's seed, through the config module (validated and written like every other setting)."""
    from vocalcli import config

    path = project / "vocal.yaml"
    cfg = config.override(config.load(path), {"seed": seed})
    path.write_text(config.to_yaml(cfg))


def row(report: dict) -> dict[str, float | None]:
    """The table's figures from `vocal evaluate --json` (its metric keys are already dotted and flat)."""
    vals: dict[str, float | None] = {}
    for _, key, base in COLUMNS:
        for k in (key, base):
            if k:
                v = report.get(k)
                vals[k] = float(v) if isinstance(v, (int, float)) else None
    return vals


def fmt(vals: dict[str, float | None]) -> str:
    cells = []
    for name, key, base in COLUMNS:
        v, b = vals.get(key), vals.get(base) if base else None
        cell = "—" if v is None else f"{v:.3f}"
        if b is not None:
            cell += f" ({b:.3f})"
        cells.append(f"{name} {cell}")
    m, c = vals.get("melody.map"), vals.get("melody.map_chroma")
    if m is not None and c is not None:
        cells.append(f"margin {m - c:+.3f}")
    return " | ".join(cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("songs", type=Path, help="SONGS_DIR/SINGER/SONG.EXT (with singers.csv, or --meta)")
    ap.add_argument("--out", type=Path, required=True, help="project directory to create or resume")
    ap.add_argument("--meta", type=Path, help="singers.csv (default: SONGS_DIR/singers.csv)")
    ap.add_argument("--separate", default="harmonic", help="prepare --separate (none for vocal stems)")
    ap.add_argument("--songs-per-singer", type=int, default=5, help="balance -n (issue 9: 5)")
    ap.add_argument("--epochs", type=int, default=20, help="epochs of both trainings (issue 9: 20)")
    ap.add_argument("--tcae-seeds", default="0", help="comma list; the melody figure is their mean (e.g. 0,1,2)")
    ap.add_argument("--retrain-encoder", action="store_true",
                    help="train the contrastive encoder again for every seed (its figure then gets a spread too)")
    ap.add_argument("--melody-labels", type=Path, help="evaluate --melody-labels (columns source,melody)")
    ap.add_argument("--threads", type=int, default=1, help="OMP/MKL threads of each step")
    a = ap.parse_args()

    seeds = [int(s) for s in a.tcae_seeds.split(",") if s.strip()]
    if not seeds:
        sys.exit("--tcae-seeds: give at least one seed")
    out = a.out.resolve()
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)}
    seconds: dict[str, float] = {}

    def step(name: str, args: list[str]) -> dict:
        data, s = run_step(out, name, args, env)
        if s is not None:  # steps done by an earlier run are not timed again
            seconds[name] = round(s, 1)
        return data

    prep = ["prepare", str(a.songs.resolve()), "--separate", a.separate]
    if a.meta:
        prep += ["--meta", str(a.meta.resolve())]
    step("prepare", prep)
    first = seeds[0]
    set_seed(out, first)
    step("balance", ["balance", "-n", str(a.songs_per_singer)])
    contrastive = ["train-contrastive", "--epochs", str(a.epochs), "--no-embed"]
    if not a.retrain_encoder:
        step("train-contrastive", contrastive)
    rows: dict[int, dict[str, float | None]] = {}
    for seed in seeds:
        set_seed(out, seed)
        if a.retrain_encoder:
            step(f"train-contrastive-s{seed}", [*contrastive, "--no-resume"])
        step(f"train-tcae-s{seed}", ["train-tcae", "--epochs", str(a.epochs), "--no-resume", "--no-embed"])
        step(f"embed-s{seed}", ["embed"])
        step(f"classify-gender-s{seed}", ["classify-gender", "train"])
        step(f"index-s{seed}", ["index"])
        ev = ["evaluate"] + (["--melody-labels", str(a.melody_labels.resolve())] if a.melody_labels else [])
        rows[seed] = row(step(f"evaluate-s{seed}", ev))
        print(f"seed {seed}: {fmt(rows[seed])}", flush=True)
    set_seed(out, first)
    keys = rows[first].keys()
    mean = {k: (float(np.mean([r[k] for r in rows.values()])) if all(r[k] is not None for r in rows.values())
                else None) for k in keys}
    print(f"mean over {len(seeds)} seed(s): {fmt(mean)}")
    spread = [("melody MAP", "melody.map")] + ([("encoder alone", "singer_id.loo_top1_encoder")]
                                               if a.retrain_encoder else [])
    for name, key in spread:
        vals = [r[key] for r in rows.values() if r[key] is not None]
        if len(vals) > 1:
            print(f"{name} over seeds: {min(vals):.3f}-{max(vals):.3f} (spread {max(vals) - min(vals):.3f})")
    (out / "protocol.json").write_text(json.dumps(
        {"songs": str(a.songs.resolve()), "separate": a.separate, "songs_per_singer": a.songs_per_singer,
         "epochs": a.epochs, "retrain_encoder": a.retrain_encoder, "seeds": {str(s): r for s, r in rows.items()},
         "mean": mean, "step_seconds": seconds}, indent=1))


if __name__ == "__main__":
    main()
