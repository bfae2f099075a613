"""Does the melody vector's pitch part carry to voices its settings were not chosen on?

The pitch profile (vocalcli/pitch_profile.py) is training-free: it reads the f0 track prepare stored in
pitch/<id>.npy at the beat `vocal embed` finds (vocal.yaml ``melody``). This measures it on prepared
projects whose songs have melody labels, against chroma 2D-FTM in the same run (the baseline `vocal
evaluate` uses; re-decoded from the songs folder in prepare.json):

    python bench/melody_pitch.py PROJECT [PROJECT ...] --labels melody_labels.csv

Melody MAP = each labelled song a query against the songs of *other* singers, as `vocal evaluate`.
1. Every setting of the grid (loud fraction x bump width) on every voice, and the default's.
2. **Leave one voice out over the choice**: per fold, the setting with the best mean MAP over all
   projects on the other voices (queries and candidates from them only), scored on the voice left out
   (its queries against every other singer's songs), pooled over folds: "not chosen on".
3. With embeddings/melody_tcae.npy present (`vocal embed`), the TCAE latent's profile alone and the
   join `vocal embed` makes at ``melody.pitch_weight``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LOUD = (0.3, 0.5, 0.7)
SIGMA = (0.35, 0.5, 1.0)


def load(path: Path, labels: Path) -> dict:
    """A project's labelled songs: tracks, beat periods (frames, as `vocal embed` finds them), singers,
    melody ids, chroma 2D-FTM, and the TCAE part when embedded."""
    import torch

    from vocalcli import audio, catalog
    from vocalcli import project as project_mod
    from vocalcli.evaluate import _read_melody_labels, chroma_features
    from vocalcli.models.tcae import beat_period, centre_bands, note_changes, pool_frames

    proj = project_mod.Project(path.resolve())
    cfg = proj.load_config()
    ok = catalog.ok_rows(proj)
    lab = _read_melody_labels(labels, ok)
    rows = [r for r in ok if r["song_id"] in lab and r.get("pitch")]
    if not rows:
        raise SystemExit(f"{path}: no labelled song with an f0 track; rerun 'vocal prepare'")
    d, md = cfg.tcae.downsample, cfg.melody
    periods = []
    for r in rows:
        x = centre_bands(torch.from_numpy(np.load(proj.root / r["mel"]).astype(np.float32)[None]))
        on = note_changes(x, audio.mel_centres(cfg.audio), md.onset_max_hz)
        periods.append(float(beat_period(pool_frames(on, d), cfg.audio.frame_rate / d, md.tempo_prior_bpm,
                                         md.tempo_prior_octaves)[0]) * d)
    out = {"name": path.name, "tracks": [np.load(proj.root / r["pitch"]) for r in rows],
           "period": np.array(periods), "singer": np.array([r["singer"] for r in rows]),
           "melody": np.array([lab[r["song_id"]] for r in rows]), "cfg": cfg,
           "chroma": chroma_features(proj, cfg, rows)}
    emb = proj.embeddings
    if (emb / "melody_tcae.npy").exists():
        ids = [x["song_id"] for x in project_mod.read_csv(emb / "ids.csv")]
        at = {s: i for i, s in enumerate(ids)}
        if all(r["song_id"] in at for r in rows):
            out["tcae"] = np.load(emb / "melody_tcae.npy")[[at[r["song_id"]] for r in rows]]
    return out


def map_of(x: np.ndarray, p: dict, queries: np.ndarray, cands: np.ndarray) -> tuple[float, int]:
    """(mean AP, n) of ``queries`` (bool [N]) against ``cands`` of other singers, ranked by cosine."""
    from vocalcli.evaluate import average_precision

    u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    aps = []
    for i in np.flatnonzero(queries):
        idx = np.flatnonzero(cands & (p["singer"] != p["singer"][i]))
        order = idx[np.argsort(-(u[idx] @ u[i]), kind="stable")]
        ap = average_precision(p["melody"][order] == p["melody"][i])
        if not np.isnan(ap):
            aps.append(ap)
    return (float(np.mean(aps)) if aps else float("nan")), len(aps)


def _all(p: dict) -> np.ndarray:
    return np.ones(len(p["singer"]), dtype=bool)


def main() -> None:
    from vocalcli import pitch_profile

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("projects", nargs="+", type=Path)
    ap.add_argument("--labels", type=Path, required=True, help="CSV with columns source,melody")
    a = ap.parse_args()
    projects = [load(p, a.labels) for p in a.projects]
    grid = list(itertools.product(LOUD, SIGMA))
    vec = {(g, p["name"]): np.stack([pitch_profile.profile(t, per, *g) for t, per in zip(p["tracks"], p["period"],
                                                                                      strict=True)])
           for g in grid for p in projects}
    default = (projects[0]["cfg"].melody.pitch_loud_fraction, projects[0]["cfg"].melody.pitch_sigma)
    print("1. every voice (melody MAP over other singers' songs)")
    print(f"{'setting':>16} " + " ".join(f"{p['name']:>12}" for p in projects))
    for g in grid:
        mark = " (default)" if g == default else ""
        print(f"{str(g):>16} " + " ".join(f"{map_of(vec[g, p['name']], p, _all(p), _all(p))[0]:>12.3f}"
                                          for p in projects) + mark)
    print(f"{'chroma':>16} " + " ".join(f"{map_of(p['chroma'], p, _all(p), _all(p))[0]:>12.3f}"
                                       for p in projects))
    voices = sorted(set().union(*(set(p["singer"]) for p in projects)))
    pooled = {p["name"]: [0.0, 0] for p in projects}
    print("\n2. leave one voice out over the choice")
    for v in voices:
        def chosen_on(g: tuple[float, float], v: str = v) -> float:
            return float(np.mean([map_of(vec[g, p["name"]], p, p["singer"] != v, p["singer"] != v)[0]
                                  for p in projects]))
        best = max(grid, key=chosen_on)
        scores = {p["name"]: map_of(vec[best, p["name"]], p, p["singer"] == v, _all(p))
                  for p in projects}
        for name, (m, n) in scores.items():
            if n:
                pooled[name][0] += m * n
                pooled[name][1] += n
        print(f"  {v:>10}: chose {best}; on it " + ", ".join(f"{k} {m:.3f}" for k, (m, _) in scores.items()))
    print("  not chosen on: " + ", ".join(f"{k} {s / max(n, 1):.3f}" for k, (s, n) in pooled.items()))
    for p in projects:
        if "tcae" in p:
            w = p["cfg"].melody.pitch_weight
            joined = np.hstack([p["tcae"], w * vec[default, p["name"]]])
            print(f"\n3. {p['name']}: TCAE latent alone {map_of(p['tcae'], p, _all(p), _all(p))[0]:.3f}, "
                  f"joined at pitch_weight {w:g} {map_of(joined, p, _all(p), _all(p))[0]:.3f}")


if __name__ == "__main__":
    main()
